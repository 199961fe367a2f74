package ocilayout

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// Normalize makes an image's digest a function of its files and one
// time: it rewrites the OCI image layout tarball src (one image: a
// multi-platform index or a manifest, as `build tarball` exports) so that
// every timestamp the image carries is created:
//
//   - outside the layers: the configs' "created" and history times, and
//     every annotation or label whose key ends in "created";
//   - inside the layers: every file and directory entry (NormalizeTar:
//     commit-time mtimes, no user names, no atime/ctime or other PAX
//     records but extended attributes, sorted entries), recompressed with
//     gzip at the fixed GzipLevel and a header without name or time, so the
//     layer bytes no longer depend on the engine that made them or on its
//     cache. The configs' diff_ids follow.
//
// Which layers are rewritten: all of them, unless KeepBaseLayers names the
// base image's layers; those (the leading layers whose diffIDs it lists)
// are then copied byte for byte, so the image keeps sharing them with its
// base image in the registry and the base's layer digests stay
// recognizable. Rewriting all layers is deterministic too, only it also
// stamps the base image's files with the commit time.
//
// Manifests, index and configs are re-encoded (keys sorted, unknown fields
// kept) with their digests recomputed up to index.json. dst receives a
// tarball with sorted entries and fixed headers. It returns the image's
// new digest, the one a registry stores when the layout is pushed.
//
// Two exports of the same build, on one engine or on two with empty
// caches, then give the same digest, so a rerun of a pipeline publishes
// the same image and the deploy step finds nothing to change.
func Normalize(src io.Reader, dst io.Writer, created time.Time, opts ...Option) (string, error) {
	blobs, indexJSON, err := readLayout(src)
	if err != nil {
		return "", err
	}
	n := &normalizer{
		in: blobs, out: map[string][]byte{}, layers: map[string]layerResult{},
		createdTime: created.UTC().Truncate(time.Second),
		created:     created.UTC().Format(time.RFC3339),
		keep:        map[string]bool{},
	}
	for _, o := range opts {
		o(n)
	}
	var idx map[string]any
	if err := decode(indexJSON, &idx); err != nil {
		return "", fmt.Errorf("ocilayout: parse index.json: %w", err)
	}
	descs, _ := idx["manifests"].([]any)
	if len(descs) != 1 {
		return "", fmt.Errorf("ocilayout: index.json lists %d images, want exactly 1", len(descs))
	}
	top, ok := descs[0].(map[string]any)
	if !ok {
		return "", errors.New("ocilayout: index.json: a manifest entry is not an object")
	}
	if err := n.descriptor(top); err != nil {
		return "", err
	}
	n.annotations(idx)
	newIndex, err := encode(idx)
	if err != nil {
		return "", err
	}
	if err := writeLayout(dst, n.out, newIndex); err != nil {
		return "", err
	}
	return top["digest"].(string), nil
}

// An Option changes what Normalize does.
type Option func(*normalizer)

// KeepBaseLayers copies the image's leading layers whose diffIDs (the
// sha256 of the uncompressed layer, "sha256:...") are listed byte for
// byte: pass the base image's diffIDs of every platform (DiffIDs of the
// base image's own export). The first layer not listed, and every layer
// after it, is rewritten.
func KeepBaseLayers(diffIDs ...string) Option {
	return func(n *normalizer) {
		for _, d := range diffIDs {
			n.keep[d] = true
		}
	}
}

type normalizer struct {
	in, out     map[string][]byte      // digest -> blob
	layers      map[string]layerResult // input layer digest -> rewritten layer
	keep        map[string]bool        // diffIDs of the base layers
	createdTime time.Time
	created     string
}

// Media types of image configs.
const (
	MediaTypeConfig       = "application/vnd.oci.image.config.v1+json"
	MediaTypeDockerConfig = "application/vnd.docker.container.image.v1+json"
)

// descriptor rewrites the blob desc points to (recursively) and updates
// desc's digest and size.
func (n *normalizer) descriptor(desc map[string]any) error {
	mediaType, _ := desc["mediaType"].(string)
	return n.rewrite(desc, func(blob []byte) ([]byte, error) {
		switch mediaType {
		case MediaTypeIndex, MediaTypeDockerList:
			return n.index(blob)
		case MediaTypeManifest, MediaTypeDockerManifest:
			return n.manifest(blob)
		case MediaTypeConfig, MediaTypeDockerConfig:
			return n.config(blob, nil)
		}
		return blob, nil // anything else: untouched
	})
}

// blob returns the blob desc points to.
func (n *normalizer) blob(desc map[string]any) (string, []byte, error) {
	digest, _ := desc["digest"].(string)
	if !digestRE.MatchString(digest) {
		return "", nil, fmt.Errorf("ocilayout: %q is not a sha256 digest", digest)
	}
	blob, ok := n.in[digest]
	if !ok {
		return "", nil, fmt.Errorf("ocilayout: blob %s is referenced but not in the layout", digest)
	}
	return digest, blob, nil
}

// rewrite replaces the blob desc points to by f's result and updates
// desc's digest, size and "created" annotations.
func (n *normalizer) rewrite(desc map[string]any, f func([]byte) ([]byte, error)) error {
	digest, blob, err := n.blob(desc)
	if err != nil {
		return err
	}
	out, err := f(blob)
	if err != nil {
		mediaType, _ := desc["mediaType"].(string)
		return fmt.Errorf("ocilayout: %s %s: %w", mediaType, digest, err)
	}
	n.annotations(desc)
	d := sha(out)
	n.out[d] = out
	desc["digest"] = d
	desc["size"] = json.Number(fmt.Sprint(len(out)))
	return nil
}

func (n *normalizer) index(blob []byte) ([]byte, error) {
	var idx map[string]any
	if err := decode(blob, &idx); err != nil {
		return nil, err
	}
	list, _ := idx["manifests"].([]any)
	for _, m := range list {
		desc, ok := m.(map[string]any)
		if !ok {
			return nil, errors.New("a manifest entry is not an object")
		}
		if err := n.descriptor(desc); err != nil {
			return nil, err
		}
	}
	n.annotations(idx)
	return encode(idx)
}

func (n *normalizer) manifest(blob []byte) ([]byte, error) {
	var m map[string]any
	if err := decode(blob, &m); err != nil {
		return nil, err
	}
	cfg, ok := m["config"].(map[string]any)
	if !ok {
		return nil, errors.New("manifest has no config")
	}
	_, cfgBlob, err := n.blob(cfg)
	if err != nil {
		return nil, err
	}
	diffIDs, err := configDiffIDs(cfgBlob)
	if err != nil {
		return nil, err
	}
	layers, _ := m["layers"].([]any)
	if len(diffIDs) != len(layers) {
		return nil, fmt.Errorf("the config lists %d diff_ids for %d layers", len(diffIDs), len(layers))
	}
	base := true
	for i, l := range layers {
		desc, ok := l.(map[string]any)
		if !ok {
			return nil, errors.New("a layer entry is not an object")
		}
		if base && n.keep[diffIDs[i]] {
			if err := n.rewrite(desc, func(b []byte) ([]byte, error) { return b, nil }); err != nil {
				return nil, err
			}
			continue
		}
		base = false
		mediaType, _ := desc["mediaType"].(string)
		err := n.rewrite(desc, func(b []byte) ([]byte, error) {
			d := sha(b)
			res, done := n.layers[d]
			if !done {
				var err error
				if res, err = normalizeLayer(b, mediaType, n.createdTime); err != nil {
					return nil, err
				}
				n.layers[d] = res
			}
			diffIDs[i] = res.diffID
			return res.blob, nil
		})
		if err != nil {
			return nil, err
		}
		if a, ok := desc["annotations"].(map[string]any); ok {
			if _, has := a["containerd.io/uncompressed"]; has {
				a["containerd.io/uncompressed"] = diffIDs[i]
			}
		}
	}
	if err := n.rewrite(cfg, func(b []byte) ([]byte, error) { return n.config(b, diffIDs) }); err != nil {
		return nil, err
	}
	n.annotations(m)
	return encode(m)
}

// configDiffIDs reads rootfs.diff_ids of an image config.
func configDiffIDs(blob []byte) ([]string, error) {
	var c struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(blob, &c); err != nil {
		return nil, fmt.Errorf("parse the image config: %w", err)
	}
	return c.RootFS.DiffIDs, nil
}

// config stamps the config's times and, when diffIDs is not nil, sets
// rootfs.diff_ids to them.
func (n *normalizer) config(blob []byte, diffIDs []string) ([]byte, error) {
	var c map[string]any
	if err := decode(blob, &c); err != nil {
		return nil, err
	}
	if rootfs, ok := c["rootfs"].(map[string]any); ok && len(diffIDs) > 0 {
		list := make([]any, len(diffIDs))
		for i, d := range diffIDs {
			list[i] = d
		}
		rootfs["diff_ids"] = list
	}
	c["created"] = n.created
	history, _ := c["history"].([]any)
	for _, h := range history {
		if entry, ok := h.(map[string]any); ok {
			if _, has := entry["created"]; has {
				entry["created"] = n.created
			}
		}
	}
	if cfg, ok := c["config"].(map[string]any); ok {
		n.labels(cfg)
	}
	return encode(c)
}

// annotations sets every "...created" annotation of an object to the time.
func (n *normalizer) annotations(obj map[string]any) { n.stamp(obj["annotations"]) }

// labels sets a "...created" label of a config's container config, as
// annotations.
func (n *normalizer) labels(cfg map[string]any) { n.stamp(cfg["Labels"]) }

// stamp sets every value of a string map whose key ends in "created".
func (n *normalizer) stamp(m any) {
	if kv, ok := m.(map[string]any); ok {
		for k := range kv {
			if strings.HasSuffix(k, "created") {
				kv[k] = n.created
			}
		}
	}
}

func decode(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

// encode writes JSON with sorted keys and no HTML escaping, without the
// trailing newline of json.Encoder.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// maxBlob bounds one blob of the tarball.
const maxBlob = 4 << 30

// readLayout reads a layout tarball's blobs (checking each against its
// digest) and index.json.
func readLayout(r io.Reader) (map[string][]byte, []byte, error) {
	blobs := map[string][]byte{}
	var indexJSON []byte
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("ocilayout: read tarball: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimPrefix(path.Clean(hdr.Name), "./")
		switch {
		case name == "index.json":
			if indexJSON, err = io.ReadAll(io.LimitReader(tr, maxIndex)); err != nil {
				return nil, nil, fmt.Errorf("ocilayout: read index.json: %w", err)
			}
		case strings.HasPrefix(name, "blobs/sha256/"):
			if hdr.Size > maxBlob {
				return nil, nil, fmt.Errorf("ocilayout: blob %s is %d bytes, more than allowed", name, hdr.Size)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, nil, fmt.Errorf("ocilayout: read %s: %w", name, err)
			}
			d := "sha256:" + strings.TrimPrefix(name, "blobs/sha256/")
			if !digestRE.MatchString(d) {
				return nil, nil, fmt.Errorf("ocilayout: %s is not named by a sha256 digest", name)
			}
			if sha(b) != d {
				return nil, nil, fmt.Errorf("ocilayout: %s does not match its digest: the tarball is corrupt", name)
			}
			blobs[d] = b
		}
	}
	if indexJSON == nil {
		return nil, nil, errors.New("ocilayout: no index.json in the tarball: is it an OCI image layout (build tarball)?")
	}
	return blobs, indexJSON, nil
}

// writeLayout writes oci-layout, index.json and the blobs, sorted, with
// fixed headers, so equal layouts give equal tarballs.
func writeLayout(w io.Writer, blobs map[string][]byte, indexJSON []byte) error {
	tw := tar.NewWriter(w)
	file := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, Format: tar.FormatPAX, ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir, Format: tar.FormatPAX, ModTime: time.Unix(0, 0)})
	}
	if err := file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := file("index.json", indexJSON); err != nil {
		return err
	}
	if err := dir("blobs/"); err != nil {
		return err
	}
	if err := dir("blobs/sha256/"); err != nil {
		return err
	}
	names := make([]string, 0, len(blobs))
	for d := range blobs {
		names = append(names, d)
	}
	sort.Strings(names)
	for _, d := range names {
		if err := file("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), blobs[d]); err != nil {
			return err
		}
	}
	return tw.Close()
}
