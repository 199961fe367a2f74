package ocilayout

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The wall clocks of the two builds the issue compared (the /app/ entry
// carried them instead of the commit time).
var (
	clockA = time.Date(2026, 11, 30, 11, 55, 30, 0, time.UTC)
	clockB = time.Date(2026, 11, 30, 12, 2, 6, 0, time.UTC)
)

// engine describes how one engine writes the layer a build adds: the tar
// format, the entry order, the names it records, and its gzip settings.
type engine struct {
	clock     time.Time
	pax       bool // PAX headers with atime, ctime and a tool's record
	reverse   bool // entries in another order
	dotPrefix bool // "./app/" instead of "app/"
	uname     string
	gzipLevel int
	gzipName  string
}

var (
	engineA = engine{clock: clockA, uname: "root", gzipLevel: gzip.BestSpeed, gzipName: "layer.tar"}
	engineB = engine{clock: clockB, pax: true, reverse: true, dotPrefix: true, gzipLevel: gzip.DefaultCompression}
)

// writeTree makes what the build puts into the image (build.go: /app with
// the binary stamped with the commit time, and an empty /data), the way
// an engine's snapshot holds it: the directories carry the engine's clock.
func writeTree(t *testing.T, clock time.Time) string {
	t.Helper()
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "app"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "data"), 0o755))
	bin := filepath.Join(root, "app", "voice-agent")
	require.NoError(t, os.WriteFile(bin, bytes.Repeat([]byte("\x7fELF voice-agent 1.4.2\n"), 512), 0o755))
	require.NoError(t, os.Chtimes(bin, commitTime, commitTime))
	for _, d := range []string{"app", "data"} {
		require.NoError(t, os.Chtimes(filepath.Join(root, d), clock, clock))
	}
	return root
}

// layerOf tars root the way e does and gzips it.
func layerOf(t *testing.T, root string, e engine) []byte {
	t.Helper()
	var hdrs []*tar.Header
	var datas [][]byte
	require.NoError(t, filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		require.NoError(t, err)
		rel, err := filepath.Rel(root, p)
		require.NoError(t, err)
		if rel == "." {
			return nil
		}
		hdr, err := tar.FileInfoHeader(info, "")
		require.NoError(t, err)
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		if e.dotPrefix {
			hdr.Name = "./" + hdr.Name
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, e.uname, e.uname
		if strings.HasPrefix(rel, "data") {
			hdr.Uid, hdr.Gid = 65532, 65532
		}
		if e.pax {
			hdr.Format = tar.FormatPAX
			hdr.AccessTime, hdr.ChangeTime = e.clock, e.clock
			hdr.PAXRecords = map[string]string{"LIBARCHIVE.creationtime": "1796040930"}
		} else {
			hdr.Format = tar.FormatUSTAR
			hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		}
		var data []byte
		if info.Mode().IsRegular() {
			data, err = os.ReadFile(p)
			require.NoError(t, err)
		}
		hdrs, datas = append(hdrs, hdr), append(datas, data)
		return nil
	}))
	if e.reverse {
		slices.Reverse(hdrs)
		slices.Reverse(datas)
	}
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for i, h := range hdrs {
		require.NoError(t, tw.WriteHeader(h))
		_, err := tw.Write(datas[i])
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, e.gzipLevel)
	require.NoError(t, err)
	zw.Name, zw.ModTime = e.gzipName, e.clock
	_, err = zw.Write(raw.Bytes())
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return gz.Bytes()
}

func ggcrLayer(t *testing.T, blob []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil },
		tarball.WithMediaType(types.OCILayer))
	require.NoError(t, err)
	return l
}

type entry struct {
	Name     string
	Type     byte
	Mode     int64
	Uid, Gid int
	Uname    string
	ModTime  time.Time
	Linkname string
	PAX      map[string]string
}

// entries lists a tar's headers as written.
func entries(t testing.TB, r io.Reader) []entry {
	t.Helper()
	var out []entry
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		require.True(t, h.AccessTime.IsZero() && h.ChangeTime.IsZero(), "%s records no atime/ctime", h.Name)
		out = append(out, entry{Name: h.Name, Type: h.Typeflag, Mode: h.Mode, Uid: h.Uid, Gid: h.Gid, Uname: h.Uname + h.Gname, ModTime: h.ModTime.UTC(), Linkname: h.Linkname, PAX: h.PAXRecords})
	}
}

// TestLayerDigestIgnoresTheClock builds the layer the build adds twice,
// as two engines with different wall clocks would (different directory
// mtimes, tar formats, entry order, user names, gzip level and header),
// on one base layer: the raw exports differ, the normalized images are
// byte-identical, the base layer is untouched and every entry of the
// build's layer carries the commit time.
func TestLayerDigestIgnoresTheClock(t *testing.T) {
	base, err := random.Layer(1024, types.OCILayer)
	require.NoError(t, err)
	baseDigest, err := base.Digest()
	require.NoError(t, err)
	baseDiffID, err := base.DiffID()
	require.NoError(t, err)

	export := func(e engine) []byte {
		added := ggcrLayer(t, layerOf(t, writeTree(t, e.clock), e))
		return build(t, map[string][]v1.Layer{"amd64": {base, added}, "arm64": {base, added}}, e.clock)
	}
	a, b := export(engineA), export(engineB)
	require.NotEqual(t, topDigest(t, a), topDigest(t, b))

	na, da := normalize(t, a, KeepBaseLayers(baseDiffID.String()))
	nb, db := normalize(t, b, KeepBaseLayers(baseDiffID.String()))
	require.Equal(t, da, db, "one digest for both builds")
	require.Equal(t, na, nb, "byte-identical tarballs")

	idx := readIndex(t, na)
	require.NoError(t, validate.Index(idx), "diffIDs, digests and sizes agree")
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	img, err := idx.Image(im.Manifests[0].Digest)
	require.NoError(t, err)
	ls, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, ls, 2)
	got, err := ls[0].Digest()
	require.NoError(t, err)
	assert.Equal(t, baseDigest, got, "the base layer is copied byte for byte")

	mt, err := ls[1].MediaType()
	require.NoError(t, err)
	assert.Equal(t, types.OCILayer, mt)
	rc, err := ls[1].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	assert.Equal(t, []entry{
		{Name: "app/", Type: tar.TypeDir, Mode: 0o755, ModTime: commitTime},
		{Name: "app/voice-agent", Type: tar.TypeReg, Mode: 0o755, ModTime: commitTime},
		{Name: "data/", Type: tar.TypeDir, Mode: 0o755, Uid: 65532, Gid: 65532, ModTime: commitTime},
	}, entries(t, rc))

	// The compressed layer has the fixed gzip header: no name, no time.
	cr, err := ls[1].Compressed()
	require.NoError(t, err)
	defer cr.Close()
	zr, err := gzip.NewReader(cr)
	require.NoError(t, err)
	assert.Empty(t, zr.Name)
	assert.True(t, zr.ModTime.IsZero())

	// The layer is exactly the tar written here by hand, and its diffID is
	// pinned: if it changes, a new module version gives the builds of
	// existing commits new digests (say so in the release notes).
	var want bytes.Buffer
	tw := tar.NewWriter(&want)
	bin := bytes.Repeat([]byte("\x7fELF voice-agent 1.4.2\n"), 512)
	for _, h := range []*tar.Header{
		{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: commitTime, Format: tar.FormatPAX},
		{Name: "app/voice-agent", Typeflag: tar.TypeReg, Mode: 0o755, ModTime: commitTime, Size: int64(len(bin)), Format: tar.FormatPAX},
		{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 65532, Gid: 65532, ModTime: commitTime, Format: tar.FormatPAX},
	} {
		require.NoError(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write(bin)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	rc2, err := ls[1].Uncompressed()
	require.NoError(t, err)
	defer rc2.Close()
	gotTar, err := io.ReadAll(rc2)
	require.NoError(t, err)
	assert.Equal(t, want.Bytes(), gotTar)
	diffID, err := ls[1].DiffID()
	require.NoError(t, err)
	assert.Equal(t, "sha256:4b03a7681d188748f78b7b756d4ba47d1166979e239a4db07d8df4cf5fb33e8d", diffID.String())
}

// Without KeepBaseLayers every layer is rewritten, still deterministically.
func TestNormalizeRewritesAllLayersByDefault(t *testing.T) {
	base, err := random.Layer(1024, types.OCILayer)
	require.NoError(t, err)
	baseDigest, err := base.Digest()
	require.NoError(t, err)
	export := func(e engine) []byte {
		added := ggcrLayer(t, layerOf(t, writeTree(t, e.clock), e))
		return build(t, map[string][]v1.Layer{"amd64": {base, added}, "arm64": {base, added}}, e.clock)
	}
	na, da := normalize(t, export(engineA))
	_, db := normalize(t, export(engineB))
	assert.Equal(t, da, db)
	img, err := readIndex(t, na).Image(mustFirst(t, readIndex(t, na)))
	require.NoError(t, err)
	ls, err := img.Layers()
	require.NoError(t, err)
	got, err := ls[0].Digest()
	require.NoError(t, err)
	assert.NotEqual(t, baseDigest, got)
	rc, err := ls[0].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	for _, e := range entries(t, rc) {
		assert.Equal(t, commitTime, e.ModTime, e.Name)
	}
}

func mustFirst(t *testing.T, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	return im.Manifests[0].Digest
}

// file is what an extracted path holds (hard links resolved).
type file struct {
	Type     byte
	Mode     int64
	Uid, Gid int
	Linkname string
	SHA256   string
	Xattrs   map[string]string
}

// extracted reads a flattened file system tar (mutate.Extract) or a layer
// into path -> file, resolving hard links to the file they name.
func extracted(t testing.TB, r io.Reader) map[string]file {
	t.Helper()
	out := map[string]file{}
	links := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name := path.Clean(strings.TrimLeft(h.Name, "/"))
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		sum := sha256.Sum256(data)
		f := file{Type: h.Typeflag, Mode: h.Mode & 0o7777, Uid: h.Uid, Gid: h.Gid, SHA256: hex.EncodeToString(sum[:])}
		if f.Type == tar.TypeRegA || f.Type == tar.TypeGNUSparse {
			f.Type = tar.TypeReg
		}
		switch f.Type {
		case tar.TypeSymlink:
			f.Linkname = h.Linkname
		case tar.TypeLink:
			links[name] = path.Clean(strings.TrimLeft(h.Linkname, "/"))
		}
		for k, v := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				if f.Xattrs == nil {
					f.Xattrs = map[string]string{}
				}
				f.Xattrs[k] = v
			}
		}
		out[name] = f
	}
	for name, target := range links {
		for range 16 {
			next, ok := links[target]
			if !ok {
				break
			}
			target = next
		}
		if f, ok := out[target]; ok && f.Type == tar.TypeReg {
			out[name] = f
		}
	}
	return out
}

// richLayer has every kind of entry a layer can hold, in walk order.
func richLayer(t testing.TB) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	add := func(h *tar.Header, data string) {
		h.Size = int64(len(data))
		h.ModTime = clockA
		require.NoError(t, tw.WriteHeader(h))
		_, err := tw.Write([]byte(data))
		require.NoError(t, err)
	}
	add(&tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "app/voice-agent", Typeflag: tar.TypeReg, Mode: 0o4755, Uname: "root",
		Format: tar.FormatPAX, PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02", "mtime": "1796040930.5"}}, "binary")
	add(&tar.Header{Name: "app/va", Typeflag: tar.TypeLink, Linkname: "app/voice-agent"}, "")
	add(&tar.Header{Name: "app/current", Typeflag: tar.TypeSymlink, Linkname: "voice-agent", Mode: 0o777}, "")
	add(&tar.Header{Name: "app/.wh.old-config", Typeflag: tar.TypeReg, Mode: 0o600}, "")
	add(&tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o1777, Uid: 65532, Gid: 65532, Uname: "nonroot", Gname: "nonroot"}, "")
	add(&tar.Header{Name: "data/fifo", Typeflag: tar.TypeFifo, Mode: 0o600, Uid: 65532, Gid: 65532}, "")
	add(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, "")
	add(&tar.Header{Name: "etc/a.b", Typeflag: tar.TypeReg, Mode: 0o644}, "a.b")
	add(&tar.Header{Name: "etc/a/b", Typeflag: tar.TypeReg, Mode: 0o644}, "a/b")
	require.NoError(t, tw.Close())
	return raw.Bytes()
}

// TestNormalizedImageExtractsToTheSameFiles flattens the image before and
// after Normalize with go-containerregistry's mutate.Extract: the same
// paths with the same types, contents, modes, owners, link targets and
// extended attributes.
func TestNormalizedImageExtractsToTheSameFiles(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err := zw.Write(richLayer(t))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	base, err := random.Layer(512, types.OCILayer)
	require.NoError(t, err)
	added := ggcrLayer(t, gz.Bytes())
	src := build(t, map[string][]v1.Layer{"amd64": {base, added}, "arm64": {base, added}}, clockA)
	out, _ := normalize(t, src)

	flatten := func(tarball []byte) map[string]file {
		idx := readIndex(t, tarball)
		img, err := idx.Image(mustFirst(t, idx))
		require.NoError(t, err)
		rc := mutate.Extract(img)
		defer rc.Close()
		return extracted(t, rc)
	}
	before, after := flatten(src), flatten(out)
	require.Len(t, before, 10, "the base's file and the build's 9 entries (the whiteout applied)")
	assert.Equal(t, before, after)
	assert.Equal(t, map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}, after["app/voice-agent"].Xattrs)
	assert.Equal(t, int64(0o4755), after["app/va"].Mode)
}

func tarOfEntries(t testing.TB, hs ...*tar.Header) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, h := range hs {
		data := ""
		if h.Typeflag == tar.TypeReg {
			data = "content of " + h.Name
			h.Size = int64(len(data))
		}
		require.NoError(t, tw.WriteHeader(h))
		_, err := tw.Write([]byte(data))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return raw.Bytes()
}

func normalizeTar(t testing.TB, in []byte) ([]byte, error) {
	var out bytes.Buffer
	err := NormalizeTar(bytes.NewReader(in), &out, commitTime)
	return out.Bytes(), err
}

func TestNormalizeTar(t *testing.T) {
	t.Run("order: a directory before its contents, then its siblings", func(t *testing.T) {
		out, err := normalizeTar(t, tarOfEntries(t,
			&tar.Header{Name: "b", Typeflag: tar.TypeReg},
			&tar.Header{Name: "a.b", Typeflag: tar.TypeReg},
			&tar.Header{Name: "a/c", Typeflag: tar.TypeReg},
			&tar.Header{Name: "./a", Typeflag: tar.TypeDir},
			&tar.Header{Name: "/a/b/", Typeflag: tar.TypeDir},
			&tar.Header{Name: "-x", Typeflag: tar.TypeReg},
			&tar.Header{Name: "./", Typeflag: tar.TypeDir},
		))
		require.NoError(t, err)
		var names []string
		for _, e := range entries(t, bytes.NewReader(out)) {
			names = append(names, e.Name)
		}
		assert.Equal(t, []string{"./", "-x", "a/", "a/b/", "a/c", "a.b", "b"}, names)
	})
	t.Run("hard links point to the first name of their group", func(t *testing.T) {
		out, err := normalizeTar(t, tarOfEntries(t,
			&tar.Header{Name: "z", Typeflag: tar.TypeReg, Mode: 0o700, Uid: 7},
			&tar.Header{Name: "m", Typeflag: tar.TypeLink, Linkname: "z"},
			&tar.Header{Name: "a", Typeflag: tar.TypeLink, Linkname: "m"},
			&tar.Header{Name: "outside", Typeflag: tar.TypeLink, Linkname: "lower/layer/file"},
		))
		require.NoError(t, err)
		assert.Equal(t, []entry{
			{Name: "a", Type: tar.TypeReg, Mode: 0o700, Uid: 7, ModTime: commitTime},
			{Name: "m", Type: tar.TypeLink, Mode: 0o700, Uid: 7, ModTime: commitTime, Linkname: "a"},
			{Name: "outside", Type: tar.TypeLink, ModTime: commitTime, Linkname: "lower/layer/file"},
			{Name: "z", Type: tar.TypeLink, Mode: 0o700, Uid: 7, ModTime: commitTime, Linkname: "a"},
		}, entries(t, bytes.NewReader(out)))
		assert.Equal(t, "content of z", extractedData(t, out, "a"))
	})
	t.Run("times, names and tool records go, xattrs and ids stay", func(t *testing.T) {
		out, err := normalizeTar(t, tarOfEntries(t,
			&tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o100640, Uid: 65532, Gid: 65533, Uname: "nonroot", Gname: "nonroot",
				ModTime: clockB, AccessTime: clockB, ChangeTime: clockB, Format: tar.FormatPAX,
				PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v", "LIBARCHIVE.creationtime": "1", "SCHILY.ino": "42", "comment": "made by x"}},
		))
		require.NoError(t, err)
		assert.Equal(t, []entry{{Name: "f", Type: tar.TypeReg, Mode: 0o640, Uid: 65532, Gid: 65533, ModTime: commitTime, PAX: map[string]string{"SCHILY.xattr.user.k": "v"}}},
			entries(t, bytes.NewReader(out)))
	})
	t.Run("a global header is dropped", func(t *testing.T) {
		out, err := normalizeTar(t, tarOfEntries(t,
			&tar.Header{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "abc"}},
			&tar.Header{Name: "f", Typeflag: tar.TypeReg},
		))
		require.NoError(t, err)
		assert.Len(t, entries(t, bytes.NewReader(out)), 1)
	})
	for _, tc := range []struct {
		name string
		in   []*tar.Header
		want string
	}{
		{"escape", []*tar.Header{{Name: "../etc/passwd", Typeflag: tar.TypeReg}}, "leaves the root"},
		{"escaping link", []*tar.Header{{Name: "l", Typeflag: tar.TypeLink, Linkname: "../../x"}}, "leaves the root"},
		{"twice", []*tar.Header{{Name: "a/", Typeflag: tar.TypeDir}, {Name: "./a", Typeflag: tar.TypeDir}}, `two entries named "a"`},
		{"root as a file", []*tar.Header{{Name: ".", Typeflag: tar.TypeReg}}, "names the root"},
		{"link loop", []*tar.Header{{Name: "a", Typeflag: tar.TypeLink, Linkname: "b"}, {Name: "b", Typeflag: tar.TypeLink, Linkname: "a"}}, "hard link loop"},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			_, err := normalizeTar(t, tarOfEntries(t, tc.in...))
			require.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("refuses a zstd layer with the fix", func(t *testing.T) {
		_, err := normalizeLayer([]byte{0x28, 0xb5, 0x2f, 0xfd}, "application/vnd.oci.image.layer.v1.tar+zstd", commitTime)
		require.ErrorContains(t, err, "ForcedCompression: Gzip")
	})
}

func extractedData(t *testing.T, tarBytes []byte, name string) string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(tarBytes))
	for {
		h, err := tr.Next()
		require.NoError(t, err, "no %s", name)
		if h.Name == name {
			b, err := io.ReadAll(tr)
			require.NoError(t, err)
			return string(b)
		}
	}
}

// FuzzNormalizeTar feeds arbitrary tar streams: NormalizeTar must not
// panic; what it accepts extracts to the same files (hard links resolved),
// every entry carries the commit time, and normalizing again changes
// nothing.
func FuzzNormalizeTar(f *testing.F) {
	f.Add(richLayer(f))
	f.Add(tarOfEntries(f, &tar.Header{Name: "z", Typeflag: tar.TypeReg}, &tar.Header{Name: "a", Typeflag: tar.TypeLink, Linkname: "z"}))
	f.Add(tarOfEntries(f, &tar.Header{Name: "./a/", Typeflag: tar.TypeDir}, &tar.Header{Name: "a.b", Typeflag: tar.TypeReg, Format: tar.FormatPAX, AccessTime: clockA}))
	f.Add([]byte("not a tarball"))
	// Sparse entries expand to their declared size: keep that small here.
	defer func(old int64) { maxLayerTar = old }(maxLayerTar)
	maxLayerTar = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := normalizeTar(t, data)
		if err != nil {
			return
		}
		for _, e := range entries(t, bytes.NewReader(out)) {
			if !e.ModTime.Equal(commitTime) || e.Uname != "" {
				t.Fatalf("entry %s keeps time %s or name %q", e.Name, e.ModTime, e.Uname)
			}
		}
		if in, got := extracted(t, bytes.NewReader(data)), extracted(t, bytes.NewReader(out)); !mapsEqual(in, got) {
			t.Fatalf("the normalized layer extracts to other files:\n%v\n%v", in, got)
		}
		again, err := normalizeTar(t, out)
		if err != nil {
			t.Fatalf("the normalized layer does not normalize: %v", err)
		}
		if !bytes.Equal(again, out) {
			t.Fatal("normalizing twice changed the layer")
		}
	})
}

func mapsEqual(a, b map[string]file) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || va.Type != vb.Type || va.Mode != vb.Mode || va.Uid != vb.Uid || va.Gid != vb.Gid || va.Linkname != vb.Linkname || va.SHA256 != vb.SHA256 || len(va.Xattrs) != len(vb.Xattrs) {
			return false
		}
		for x, v := range va.Xattrs {
			if vb.Xattrs[x] != v {
				return false
			}
		}
	}
	return true
}
