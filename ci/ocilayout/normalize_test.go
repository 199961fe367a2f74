package ocilayout

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var commitTime = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)

// build makes what an engine exports for one build: a two-platform OCI
// index over fixed layers, whose configs and annotations carry the clock
// of the export (exported at `at`).
func build(t *testing.T, layers map[string][]v1.Layer, at time.Time) []byte {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layers[arch]...)
		require.NoError(t, err)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		cf = cf.DeepCopy()
		cf.Architecture, cf.OS = arch, "linux"
		cf.Created = v1.Time{Time: at}
		cf.Config.User = "65532"
		cf.Config.Entrypoint = []string{"/app/voice-agent"}
		cf.Config.Labels = map[string]string{"org.opencontainers.image.created": commitTime.Format(time.RFC3339), "org.opencontainers.image.revision": "abc"}
		cf.History = []v1.History{{Created: v1.Time{Time: at.Add(-time.Hour)}, CreatedBy: "base"}, {Created: v1.Time{Time: at}, CreatedBy: "COPY /app"}}
		img, err = mutate.ConfigFile(img, cf)
		require.NoError(t, err)
		img = mutate.Annotations(img, map[string]string{"org.opencontainers.image.created": at.Format(time.RFC3339)}).(v1.Image)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	idx = mutate.Annotations(idx, map[string]string{"org.opencontainers.image.created": at.Format(time.RFC3339)}).(v1.ImageIndex)
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	require.NoError(t, err)
	require.NoError(t, p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"})))
	return tarDir(t, dir)
}

func fixedLayers(t *testing.T) map[string][]v1.Layer {
	t.Helper()
	out := map[string][]v1.Layer{}
	for _, arch := range []string{"amd64", "arm64"} {
		for range 2 {
			l, err := random.Layer(512, types.OCILayer)
			require.NoError(t, err)
			out[arch] = append(out[arch], l)
		}
	}
	return out
}

func normalize(t *testing.T, src []byte, opts ...Option) ([]byte, string) {
	t.Helper()
	var out bytes.Buffer
	d, err := Normalize(bytes.NewReader(src), &out, commitTime, opts...)
	require.NoError(t, err)
	return out.Bytes(), d
}

// Two exports of one build a minute apart differ; normalized, they are the
// same image, byte for byte, and a valid one.
func TestNormalizeMakesTheDigestReproducible(t *testing.T) {
	layers := fixedLayers(t)
	a := build(t, layers, time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	b := build(t, layers, time.Date(2026, 11, 26, 10, 1, 0, 0, time.UTC))
	require.NotEqual(t, topDigest(t, a), topDigest(t, b), "the exports differ before normalizing")

	// The first layer of each platform stands for the base image's.
	var base []string
	for _, arch := range []string{"amd64", "arm64"} {
		d, err := layers[arch][0].DiffID()
		require.NoError(t, err)
		base = append(base, d.String())
	}
	keep := KeepBaseLayers(base...)
	na, nda := normalize(t, a, keep)
	nb, ndb := normalize(t, b, keep)
	assert.Equal(t, nda, ndb)
	assert.Equal(t, na, nb, "normalized tarballs are byte-identical")
	assert.Equal(t, nda, topDigest(t, na), "the returned digest is the one index.json names")

	// Normalizing twice changes nothing more.
	again, dAgain := normalize(t, na, keep)
	assert.Equal(t, nda, dAgain)
	assert.Equal(t, na, again)

	// The result is a valid index whose images keep their layers and
	// platforms and carry the commit time everywhere.
	idx := readIndex(t, na)
	require.NoError(t, validate.Index(idx))
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 2)
	assert.Equal(t, commitTime.Format(time.RFC3339), im.Annotations["org.opencontainers.image.created"])
	for i, arch := range []string{"amd64", "arm64"} {
		assert.Equal(t, arch, im.Manifests[i].Platform.Architecture)
		img, err := idx.Image(im.Manifests[i].Digest)
		require.NoError(t, err)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		assert.True(t, cf.Created.Time.Equal(commitTime))
		for _, h := range cf.History {
			assert.True(t, h.Created.Time.Equal(commitTime))
		}
		assert.Equal(t, "65532", cf.Config.User)
		assert.Equal(t, []string{"/app/voice-agent"}, cf.Config.Entrypoint)
		assert.Equal(t, "abc", cf.Config.Labels["org.opencontainers.image.revision"])
		got, err := img.Layers()
		require.NoError(t, err)
		require.Len(t, got, 2)
		want, err := layers[arch][0].Digest()
		require.NoError(t, err)
		have, err := got[0].Digest()
		require.NoError(t, err)
		assert.Equal(t, want, have, "the base layer is copied, not recompressed")
		want, err = layers[arch][1].Digest()
		require.NoError(t, err)
		have, err = got[1].Digest()
		require.NoError(t, err)
		assert.NotEqual(t, want, have, "the build's layer is rewritten")
	}
}

// Different content still gives different digests.
func TestNormalizeKeepsContentDifferences(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	_, d1 := normalize(t, build(t, fixedLayers(t), at))
	_, d2 := normalize(t, build(t, fixedLayers(t), at))
	assert.NotEqual(t, d1, d2)
}

// topEntry reads a layout tarball's index.json with go-containerregistry:
// the index and its one entry.
func topEntry(t *testing.T, tarball []byte) (v1.ImageIndex, v1.Descriptor) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, Extract(bytes.NewReader(tarball), dir))
	p, err := layout.FromPath(dir)
	require.NoError(t, err)
	top, err := p.ImageIndex()
	require.NoError(t, err)
	m, err := top.IndexManifest()
	require.NoError(t, err)
	require.Len(t, m.Manifests, 1)
	return top, m.Manifests[0]
}

// topDigest is the digest index.json names.
func topDigest(t *testing.T, tarball []byte) string {
	t.Helper()
	_, d := topEntry(t, tarball)
	return d.Digest.String()
}

func readIndex(t *testing.T, tarball []byte) v1.ImageIndex {
	t.Helper()
	top, d := topEntry(t, tarball)
	assert.Equal(t, "latest", d.Annotations["org.opencontainers.image.ref.name"], "index.json annotations are kept")
	idx, err := top.ImageIndex(d.Digest)
	require.NoError(t, err)
	return idx
}

func TestNormalizeRefusesBrokenLayouts(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"no index", map[string]string{"oci-layout": "{}"}, "no index.json"},
		{"two images", map[string]string{"index.json": `{"schemaVersion":2,"manifests":[{"mediaType":"` + MediaTypeIndex + `","digest":"` + d + `"},{"mediaType":"` + MediaTypeIndex + `","digest":"` + d + `"}]}`}, "lists 2 images"},
		{"missing blob", map[string]string{"index.json": `{"schemaVersion":2,"manifests":[{"mediaType":"` + MediaTypeIndex + `","digest":"` + d + `"}]}`}, "not in the layout"},
		{"corrupt blob", map[string]string{"blobs/sha256/" + d[7:]: "{}"}, "does not match its digest"},
		{"bad digest", map[string]string{"index.json": `{"schemaVersion":2,"manifests":[{"mediaType":"` + MediaTypeIndex + `","digest":"md5:x"}]}`}, "not a sha256 digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Normalize(bytes.NewReader(tarOf(t, tc.files)), &out, commitTime)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Zero(t, out.Len(), "nothing is written for a broken layout")
		})
	}
}

// singleManifest is a minimal layout holding one image (no index), made
// by hand: a config with the clock in it, and no layers.
func singleManifest(t testing.TB) ([]byte, string) {
	cfg := `{"created":"2020-01-01T00:00:00Z","history":[{"created":"2020-01-01T00:00:00Z","created_by":"x"}],"config":{"Labels":{"a.created":"2020-01-01T00:00:00Z"}}}`
	cfgDigest := sha([]byte(cfg))
	man := `{"schemaVersion":2,"mediaType":"` + MediaTypeManifest + `","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cfgDigest + `","size":` + fmt.Sprint(len(cfg)) + `},"layers":[]}`
	manDigest := sha([]byte(man))
	return tarOf(t, map[string]string{
		"index.json":                    `{"schemaVersion":2,"manifests":[{"mediaType":"` + MediaTypeManifest + `","digest":"` + manDigest + `","size":` + fmt.Sprint(len(man)) + `}]}`,
		"blobs/sha256/" + cfgDigest[7:]: cfg,
		"blobs/sha256/" + manDigest[7:]: man,
	}), manDigest
}

func TestNormalizeSingleManifest(t *testing.T) {
	src, before := singleManifest(t)
	out, digest := normalize(t, src)
	assert.NotEqual(t, before, digest)
	blobs, _, err := readLayout(bytes.NewReader(out))
	require.NoError(t, err)
	var m struct{ Config struct{ Digest string } }
	require.NoError(t, decode(blobs[digest], &m))
	cfg := string(blobs[m.Config.Digest])
	assert.Equal(t, `{"config":{"Labels":{"a.created":"2026-11-20T09:30:00Z"}},"created":"2026-11-20T09:30:00Z","history":[{"created":"2026-11-20T09:30:00Z","created_by":"x"}]}`, cfg)
	assert.Len(t, blobs, 2, "only the blobs the image references are written")
}

// FuzzNormalize feeds arbitrary tarballs: Normalize must not panic, and
// whatever it accepts normalizes to itself.
func FuzzNormalize(f *testing.F) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	f.Add([]byte("not a tarball"))
	f.Add(tarOf(f, map[string]string{"index.json": `{"schemaVersion":2,"manifests":[{"mediaType":"` + MediaTypeIndex + `","digest":"` + d + `"}]}`}))
	seed, _ := singleManifest(f)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		digest, err := Normalize(bytes.NewReader(data), &out, commitTime)
		if err != nil {
			return
		}
		var again bytes.Buffer
		d2, err := Normalize(bytes.NewReader(out.Bytes()), &again, commitTime)
		if err != nil {
			t.Fatalf("normalized output does not normalize: %v", err)
		}
		if d2 != digest || !bytes.Equal(again.Bytes(), out.Bytes()) {
			t.Fatalf("normalizing twice changed the image: %s then %s", digest, d2)
		}
	})
}
