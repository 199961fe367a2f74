package ocilayout

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// Layer media types Normalize rewrites. Others (zstd, non-distributable,
// foreign) are refused when they would have to be rewritten.
const (
	MediaTypeLayerGzip       = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeLayer           = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// GzipLevel is the fixed compression level of rewritten layers. The
// compressed bytes are a function of the tar bytes, this level and the
// compress/flate of the Go toolchain that builds the module.
const GzipLevel = gzip.BestCompression

// maxLayerTar bounds the uncompressed size of one layer (a gzip bomb
// would otherwise fill the memory). A variable for the fuzz test.
var maxLayerTar int64 = 2 << 30

// layerResult is a rewritten layer: its blob and its diffID.
type layerResult struct {
	blob   []byte
	diffID string
}

// normalizeLayer rewrites one layer blob of the given media type: the tar
// through normalizeTar, then compressed again the way the media type says
// (gzip with a fixed header and level, or not at all).
func normalizeLayer(blob []byte, mediaType string, created time.Time) (layerResult, error) {
	var r io.Reader = bytes.NewReader(blob)
	gz := false
	switch mediaType {
	case MediaTypeLayerGzip, MediaTypeDockerLayerGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return layerResult{}, fmt.Errorf("layer is not gzip: %w", err)
		}
		defer zr.Close()
		r, gz = zr, true
	case MediaTypeLayer:
	default:
		return layerResult{}, fmt.Errorf("layer media type %q cannot be rewritten: export the image with gzip layers (Container.AsTarball with ForcedCompression: Gzip)", mediaType)
	}
	var tarBytes bytes.Buffer
	if err := NormalizeTar(io.LimitReader(r, maxLayerTar+1), &tarBytes, created); err != nil {
		return layerResult{}, err
	}
	if int64(tarBytes.Len()) > maxLayerTar {
		return layerResult{}, fmt.Errorf("layer is more than %d bytes uncompressed", maxLayerTar)
	}
	diffID := sha(tarBytes.Bytes())
	if !gz {
		return layerResult{blob: tarBytes.Bytes(), diffID: diffID}, nil
	}
	var out bytes.Buffer
	// The zero gzip.Header: no file name, no comment, mtime 0, OS 255.
	zw, err := gzip.NewWriterLevel(&out, GzipLevel)
	if err != nil {
		return layerResult{}, err
	}
	if _, err := zw.Write(tarBytes.Bytes()); err != nil {
		return layerResult{}, err
	}
	if err := zw.Close(); err != nil {
		return layerResult{}, err
	}
	return layerResult{blob: out.Bytes(), diffID: diffID}, nil
}

type tarEntry struct {
	hdr  *tar.Header
	key  string // cleaned name, the sort key
	data []byte
}

// NormalizeTar rewrites a layer's tar stream so that its bytes depend only
// on the files it holds and on created:
//
//   - every entry's modification time is created (whole seconds); access
//     and change times are not recorded (an extractor then sets the access
//     time to the modification time too);
//   - user and group names are dropped, numeric owners kept (what the
//     runtime uses); modes keep their permission, setuid/setgid and sticky
//     bits only;
//   - PAX records are dropped except extended attributes (SCHILY.xattr.*,
//     e.g. file capabilities): no times, inode numbers or tool comments;
//     global headers are dropped;
//   - names are cleaned ("./a/b" and "a/b" are one name, directories end in
//     "/"); a name that leaves the root, or occurs twice, is refused;
//   - entries are sorted by path, component by component (a directory
//     before its contents), and hard links within the layer point to the
//     first name of their group in that order;
//   - every header is written in the PAX format (USTAR where it fits).
//
// The content, owners, modes, link targets, device numbers and extended
// attributes are kept, so the layer extracts to the same files.
func NormalizeTar(r io.Reader, w io.Writer, created time.Time) error {
	mtime := created.UTC().Truncate(time.Second)
	tr := tar.NewReader(r)
	byName := map[string]*tarEntry{}
	var order []*tarEntry
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read layer tar: %w", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		e, err := canonicalEntry(hdr, mtime)
		if err != nil {
			return err
		}
		if e.hdr.Typeflag == tar.TypeReg {
			if total += hdr.Size; hdr.Size > maxLayerTar || total > maxLayerTar {
				return fmt.Errorf("layer is more than %d bytes uncompressed", maxLayerTar)
			}
			if e.data, err = io.ReadAll(tr); err != nil {
				return fmt.Errorf("read layer entry %s: %w", hdr.Name, err)
			}
			e.hdr.Size = int64(len(e.data))
		}
		if _, dup := byName[e.key]; dup {
			return fmt.Errorf("layer has two entries named %q: a layer made by a build has one per path", e.key)
		}
		byName[e.key] = e
		order = append(order, e)
	}
	sort.SliceStable(order, func(i, j int) bool { return pathLess(order[i].key, order[j].key) })
	if err := relinkHardLinks(order, byName); err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, e := range order {
		if err := tw.WriteHeader(e.hdr); err != nil {
			return fmt.Errorf("write layer entry %s: %w", e.hdr.Name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return fmt.Errorf("write layer entry %s: %w", e.hdr.Name, err)
		}
	}
	return tw.Close()
}

// cleanName returns the cleaned relative name of a tar entry, or an error
// if it is empty or leaves the root.
func cleanName(name string) (string, error) {
	n := path.Clean(strings.TrimLeft(name, "/"))
	if n == "." || n == "" {
		return ".", nil
	}
	if n == ".." || strings.HasPrefix(n, "../") {
		return "", fmt.Errorf("layer entry %q leaves the root", name)
	}
	return n, nil
}

func canonicalEntry(hdr *tar.Header, mtime time.Time) (*tarEntry, error) {
	key, err := cleanName(hdr.Name)
	if err != nil {
		return nil, err
	}
	h := &tar.Header{
		Name:     key,
		Mode:     hdr.Mode & 0o7777,
		Uid:      hdr.Uid,
		Gid:      hdr.Gid,
		ModTime:  mtime,
		Format:   tar.FormatPAX,
		Typeflag: hdr.Typeflag,
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse: // sparse files read back expanded
		h.Typeflag = tar.TypeReg
	case tar.TypeDir:
		h.Name = key + "/"
		if key == "." {
			h.Name = "./"
		}
	case tar.TypeSymlink:
		h.Linkname = hdr.Linkname
	case tar.TypeLink:
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return nil, err
		}
		h.Linkname = target
	case tar.TypeChar, tar.TypeBlock:
		h.Devmajor, h.Devminor = hdr.Devmajor, hdr.Devminor
	case tar.TypeFifo:
	default:
		return nil, fmt.Errorf("layer entry %q has tar type %q, which an image layer does not use", hdr.Name, hdr.Typeflag)
	}
	if h.Typeflag != tar.TypeDir && key == "." {
		return nil, fmt.Errorf("layer entry %q names the root but is not a directory", hdr.Name)
	}
	for k, v := range hdr.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords[k] = v
		}
	}
	return &tarEntry{hdr: h, key: key}, nil
}

// pathLess orders paths component by component: "a" < "a/b" < "a.b"
// (a plain string order puts "a.b" before "a/b"), so a directory comes
// before everything under it; the root (".") comes first.
func pathLess(a, b string) bool {
	if a == "." || b == "." {
		return a == "." && b != "."
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return true
		}
		if cb == '/' {
			return false
		}
		return ca < cb
	}
	return len(a) < len(b)
}

// relinkHardLinks makes every group of hard links in the layer canonical:
// the first name of the group (in the sorted order) holds the file, the
// others link to it, all with the file's header. Links to files outside
// the layer are kept as they are.
func relinkHardLinks(order []*tarEntry, byName map[string]*tarEntry) error {
	groups := map[string][]*tarEntry{} // file's name -> its links
	for _, e := range order {
		if e.hdr.Typeflag != tar.TypeLink {
			continue
		}
		target := e.hdr.Linkname
		seen := map[string]bool{e.key: true}
		for {
			t, ok := byName[target]
			if !ok || t.hdr.Typeflag != tar.TypeLink {
				break
			}
			if seen[target] {
				return fmt.Errorf("layer entry %q is a hard link loop", e.hdr.Name)
			}
			seen[target] = true
			target = t.hdr.Linkname
		}
		if t, ok := byName[target]; ok && t.hdr.Typeflag == tar.TypeReg {
			groups[target] = append(groups[target], e)
		}
	}
	for target, links := range groups {
		file := byName[target]
		members := append([]*tarEntry{file}, links...)
		first := file
		for _, m := range members {
			if pathLess(m.key, first.key) {
				first = m
			}
		}
		hdr, data := file.hdr, file.data
		for _, m := range members {
			h := *hdr
			h.PAXRecords = copyRecords(hdr.PAXRecords)
			h.Name = m.key
			if m == first {
				m.hdr, m.data = &h, data
				continue
			}
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first.key, 0
			m.hdr, m.data = &h, nil
		}
	}
	return nil
}

func copyRecords(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
