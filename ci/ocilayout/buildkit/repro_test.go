package buildkit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/platforms"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tonistiigi/fsutil"

	"dagger/voice/ocilayout"
)

// commitTime is the commit the two builds are of ($CI_COMMIT_TIMESTAMP).
var commitTime = time.Date(2026, 11, 30, 9, 15, 0, 0, time.UTC)

var targets = []ocispecs.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64"},
}

// pushBase pushes a two-platform base image to the loopback registry and
// returns its reference by digest, its images and their layers' diffIDs.
func pushBase(t *testing.T, reg *httptest.Server) (string, map[string]v1.Image, []string) {
	t.Helper()
	idx := v1.ImageIndex(empty.Index)
	imgs := map[string]v1.Image{}
	var diffIDs []string
	for _, p := range targets {
		img, err := random.Image(2048, 2)
		require.NoError(t, err)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = p.OS, p.Architecture
		cf.Created = v1.Time{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		img, err = mutate.ConfigFile(img, cf)
		require.NoError(t, err)
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		imgs[platforms.Format(p)] = img
		ids, err := img.ConfigFile()
		require.NoError(t, err)
		for _, d := range ids.RootFS.DiffIDs {
			diffIDs = append(diffIDs, d.String())
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: p.OS, Architecture: p.Architecture}}})
	}
	idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	ref, err := name.ParseReference(strings.TrimPrefix(reg.URL, "http://") + "/distroless/static:nonroot")
	require.NoError(t, err)
	require.NoError(t, remote.WriteIndex(ref, idx))
	d, err := idx.Digest()
	require.NoError(t, err)
	return ref.Context().Name() + "@" + d.String(), imgs, diffIDs
}

// build builds the image as the module's build step does, on one engine,
// and exports it as an OCI layout tarball (what Container.AsTarball gives).
func build(t *testing.T, e *engine, base string, bases map[string]v1.Image, contextDir, out string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f, err := os.Create(out)
	require.NoError(t, err)
	fs, err := fsutil.NewFS(contextDir)
	require.NoError(t, err)
	_, err = e.Build(ctx, client.SolveOpt{
		LocalMounts: map[string]fsutil.FS{"context": fs},
		Exports: []client.ExportEntry{{
			Type:   client.ExporterOCI,
			Attrs:  map[string]string{"name": "voice-agent:test", "oci-mediatypes": "true"},
			Output: func(map[string]string) (io.WriteCloser, error) { return f, nil },
		}},
	}, "", func(ctx context.Context, c gateway.Client) (*gateway.Result, error) {
		res := gateway.NewResult()
		var ps exptypes.Platforms
		for _, p := range targets {
			key := platforms.Format(p)
			st := llb.Image(base, llb.Platform(p)).
				File(llb.Copy(llb.Local("context"), "voice-agent", "/app/voice-agent", &llb.CopyInfo{
					CreateDestPath: true, ChownOpt: &llb.ChownOpt{User: &llb.UserOpt{UID: 0}, Group: &llb.UserOpt{UID: 0}},
				})).
				File(llb.Mkdir("/data", 0o755, llb.WithUIDGID(65532, 65532)))
			def, err := st.Marshal(ctx, llb.Platform(p))
			if err != nil {
				return nil, err
			}
			r, err := c.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB()})
			if err != nil {
				return nil, err
			}
			ref, err := r.SingleRef()
			if err != nil {
				return nil, err
			}
			cf, err := bases[key].ConfigFile()
			if err != nil {
				return nil, err
			}
			cf = cf.DeepCopy()
			cf.Config.Entrypoint = []string{"/app/voice-agent"}
			cf.Config.User = "65532"
			cf.Config.WorkingDir = "/data"
			cfg, err := json.Marshal(cf)
			if err != nil {
				return nil, err
			}
			res.AddRef(key, ref)
			res.AddMeta(exptypes.ExporterImageConfigKey+"/"+key, cfg)
			ps.Platforms = append(ps.Platforms, exptypes.Platform{ID: key, Platform: p})
		}
		pb, err := json.Marshal(ps)
		if err != nil {
			return nil, err
		}
		res.AddMeta(exptypes.ExporterPlatformsKey, pb)
		return res, nil
	}, nil)
	require.NoError(t, err, "build on buildkitd:\n%s", e.log.String())
}

// layersOf returns, per platform ("linux/amd64"), the digests of the
// layers of the image in a layout tarball, base image first.
func layersOf(t *testing.T, tarball []byte) map[string][]string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, ocilayout.Extract(bytes.NewReader(tarball), dir))
	p, err := layout.FromPath(dir)
	require.NoError(t, err)
	idx, err := p.ImageIndex()
	require.NoError(t, err)
	// The OCI exporter nests the image index in the layout's index.
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1)
	inner, err := idx.ImageIndex(im.Manifests[0].Digest)
	require.NoError(t, err)
	iim, err := inner.IndexManifest()
	require.NoError(t, err)
	out := map[string][]string{}
	for _, m := range iim.Manifests {
		if m.Platform == nil {
			continue // attestation manifests
		}
		img, err := inner.Image(m.Digest)
		require.NoError(t, err)
		ls, err := img.Layers()
		require.NoError(t, err)
		key := m.Platform.OS + "/" + m.Platform.Architecture
		for _, l := range ls {
			d, err := l.Digest()
			require.NoError(t, err)
			out[key] = append(out[key], d.String())
		}
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func normalize(t *testing.T, tarball string, baseDiffIDs []string) ([]byte, string) {
	t.Helper()
	in, err := os.Open(tarball)
	require.NoError(t, err)
	defer in.Close()
	var out bytes.Buffer
	d, err := ocilayout.Normalize(in, &out, commitTime, ocilayout.KeepBaseLayers(baseDiffIDs...))
	require.NoError(t, err)
	return out.Bytes(), d
}

// TestTwoEnginesWithEmptyCachesGiveOneDigest is issue 13's "two builds of
// one commit on engines with empty caches give the same image index
// digest", on BuildKit: the raw exports of the two engines differ in the
// layer the build adds (its directory entries carry each engine's wall
// clock), and after ocilayout.Normalize the two tarballs are one.
func TestTwoEnginesWithEmptyCachesGiveOneDigest(t *testing.T) {
	bin := buildkitd(t)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	base, bases, baseDiffIDs := pushBase(t, reg)

	// The binary the build step made, with the commit time as its mtime
	// (as the module's WithTimestamps sets it).
	contextDir := t.TempDir()
	bin0 := filepath.Join(contextDir, "voice-agent")
	require.NoError(t, os.WriteFile(bin0, bytes.Repeat([]byte("\x7fELF voice-agent 1.4.2\n"), 4096), 0o755))
	require.NoError(t, os.Chtimes(bin0, commitTime, commitTime))

	dir := t.TempDir()
	raw := [2]string{filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")}
	for i := range raw {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // another wall-clock second
		}
		e := startEngine(t, bin, reg) // a fresh state directory: an empty cache
		build(t, e, base, bases, contextDir, raw[i])
	}

	a, b := layersOf(t, readFile(t, raw[0])), layersOf(t, readFile(t, raw[1]))
	require.Len(t, a, len(targets))
	for _, p := range targets {
		key := platforms.Format(p)
		require.Len(t, a[key], 4, "%s: two base layers and the two the build adds", key)
		assert.NotEqual(t, a[key][2:], b[key][2:], "%s: the raw exports of two engines differ in the layers the build adds (what ocilayout.Normalize exists for)", key)
	}

	na, da := normalize(t, raw[0], baseDiffIDs)
	nb, db := normalize(t, raw[1], baseDiffIDs)
	assert.Equal(t, da, db, "one index digest for both engines")
	assert.True(t, bytes.Equal(na, nb), "byte-identical normalized tarballs")
	// The base image's layers are the registry's blobs, byte for byte.
	normalized := layersOf(t, na)
	for _, p := range targets {
		key := platforms.Format(p)
		ls, err := bases[key].Layers()
		require.NoError(t, err)
		var want []string
		for _, l := range ls {
			d, err := l.Digest()
			require.NoError(t, err)
			want = append(want, d.String())
		}
		require.Len(t, normalized[key], 4)
		assert.Equal(t, want, normalized[key][:2], "%s: base layers kept as pulled", key)
	}

	// Before the layer rewrite, Normalize copied every layer byte for byte
	// (configs and annotations only): that is what the real engine run
	// showed, two digests for one commit.
	every := append(diffIDsOf(t, raw[0]), diffIDsOf(t, raw[1])...)
	_, oldA := normalize(t, raw[0], every)
	_, oldB := normalize(t, raw[1], every)
	assert.NotEqual(t, oldA, oldB, "with the layers copied as they are, the engines disagree")
}

func diffIDsOf(t *testing.T, tarball string) []string {
	t.Helper()
	f, err := os.Open(tarball)
	require.NoError(t, err)
	defer f.Close()
	ids, err := ocilayout.DiffIDs(f)
	require.NoError(t, err)
	return ids
}
