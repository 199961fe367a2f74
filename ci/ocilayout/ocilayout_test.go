package ocilayout

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// tarDir packs a directory the way an exported OCI layout tarball is laid out.
func tarDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		require.NoError(t, err)
		rel, err := filepath.Rel(dir, p)
		require.NoError(t, err)
		if rel == "." {
			return nil
		}
		hdr, err := tar.FileInfoHeader(info, "")
		require.NoError(t, err)
		hdr.Name = filepath.ToSlash(rel)
		require.NoError(t, tw.WriteHeader(hdr))
		if !info.IsDir() {
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			_, err = tw.Write(data)
			require.NoError(t, err)
		}
		return nil
	}))
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// TestDiffIDs writes a real two-platform image index with
// go-containerregistry's layout package and reads its diffIDs back.
func TestDiffIDs(t *testing.T) {
	var adds []mutate.IndexAddendum
	var want []string
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(256, 2)
		require.NoError(t, err)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		for _, d := range cf.RootFS.DiffIDs {
			want = append(want, d.String())
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)

	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	require.NoError(t, err)
	require.NoError(t, p.AppendIndex(idx))

	got, err := DiffIDs(bytes.NewReader(tarDir(t, dir)))
	require.NoError(t, err)
	require.Len(t, got, 4)
	assert.Equal(t, want, got)
}

func tarOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}))
		_, err := tw.Write([]byte(body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

func TestDiffIDsOfBadLayouts(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"no index", map[string]string{"oci-layout": "{}"}, "no index.json"},
		{"not json", map[string]string{"index.json": "{"}, "parse index.json"},
		{"not an image", map[string]string{"index.json": `{"schemaVersion":2,"manifests":[{"mediaType":"text/plain","digest":"` + d + `"}]}`}, "not in the layout"},
		{"bad digest", map[string]string{"index.json": `{"schemaVersion":2,"manifests":[{"mediaType":"` + MediaTypeIndex + `","digest":"sha256:xyz"}]}`}, "not a sha256 digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DiffIDs(bytes.NewReader(tarOf(t, tc.files)))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := DiffIDs(bytes.NewReader([]byte("not a tarball at all, just text")))
	assert.ErrorContains(t, err, "read tarball")
}
