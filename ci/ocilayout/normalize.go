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

// Normalize makes an image's digest a function of its content and one
// time: it rewrites the OCI image layout tarball src (one image: a
// multi-platform index or a manifest, as `build tarball` exports) so that
// every timestamp the image carries outside its layers is created: the
// configs' "created" and history times, and every annotation whose key ends
// in "created". Layers are copied byte for byte; manifests, index and
// configs are re-encoded (keys sorted, unknown fields kept) with their
// digests recomputed up to index.json. dst receives a tarball with sorted
// entries and fixed headers. It returns the image's new digest, the one a
// registry stores when the layout is pushed.
//
// Two exports of the same build then give the same digest, so a rerun of a
// pipeline publishes the same image and the deploy step finds nothing to
// change.
func Normalize(src io.Reader, dst io.Writer, created time.Time) (string, error) {
	blobs, indexJSON, err := readLayout(src)
	if err != nil {
		return "", err
	}
	n := &normalizer{in: blobs, out: map[string][]byte{}, created: created.UTC().Format(time.RFC3339)}
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

type normalizer struct {
	in, out map[string][]byte // digest -> blob
	created string
}

// descriptor rewrites the blob desc points to (recursively) and updates
// desc's digest and size.
func (n *normalizer) descriptor(desc map[string]any) error {
	digest, _ := desc["digest"].(string)
	if !digestRE.MatchString(digest) {
		return fmt.Errorf("ocilayout: %q is not a sha256 digest", digest)
	}
	blob, ok := n.in[digest]
	if !ok {
		return fmt.Errorf("ocilayout: blob %s is referenced but not in the layout", digest)
	}
	mediaType, _ := desc["mediaType"].(string)
	var out []byte
	var err error
	switch mediaType {
	case MediaTypeIndex, MediaTypeDockerList:
		out, err = n.index(blob)
	case MediaTypeManifest, MediaTypeDockerManifest:
		out, err = n.manifest(blob)
	case "application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json":
		out, err = n.config(blob)
	default:
		out = blob // a layer, or anything else: untouched
	}
	if err != nil {
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
	if err := n.descriptor(cfg); err != nil {
		return nil, err
	}
	layers, _ := m["layers"].([]any)
	for _, l := range layers {
		desc, ok := l.(map[string]any)
		if !ok {
			return nil, errors.New("a layer entry is not an object")
		}
		if err := n.descriptor(desc); err != nil {
			return nil, err
		}
	}
	n.annotations(m)
	return encode(m)
}

func (n *normalizer) config(blob []byte) ([]byte, error) {
	var c map[string]any
	if err := decode(blob, &c); err != nil {
		return nil, err
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
