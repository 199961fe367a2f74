package ocipush

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dagger/voice/ocilayout"

	"dagger/voice/registrytest"
)

const password = "registry-PASSWORD-do-not-print"

// tarball writes a normalized two-platform layout tarball and returns its
// path and digest.
func tarball(t *testing.T) (string, string) {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(1024, 2)
		require.NoError(t, err)
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	dir := t.TempDir()
	p, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	require.NoError(t, err)
	require.NoError(t, p.AppendIndex(idx))

	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	root := filepath.Join(dir, "layout")
	require.NoError(t, filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		require.NoError(t, err)
		if info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(data))}))
		_, err = tw.Write(data)
		return err
	}))
	require.NoError(t, tw.Close())

	out := filepath.Join(dir, "image.tar")
	f, err := os.Create(out)
	require.NoError(t, err)
	digest, err := ocilayout.Normalize(&raw, f, time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return out, digest
}

func TestPushKeepsTheDigest(t *testing.T) {
	host := registrytest.Start(t, "ci", password)
	path, digest := tarball(t)
	ctx := context.Background()

	ref, err := Push(ctx, path, Options{Address: host + "/acme/voice-agent:1.4.2", Username: "ci", Password: password})
	require.NoError(t, err)
	assert.Equal(t, host+"/acme/voice-agent@"+digest, ref)

	// The registry serves the index under that digest, with both platforms.
	r, err := name.ParseReference(ref)
	require.NoError(t, err)
	idx, err := remote.Index(r, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: "ci", Password: password})))
	require.NoError(t, err)
	got, err := idx.Digest()
	require.NoError(t, err)
	assert.Equal(t, digest, got.String())
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	assert.Len(t, im.Manifests, 2)

	// Pushing again (a rerun) gives the same reference.
	again, err := Push(ctx, path, Options{Address: host + "/acme/voice-agent:1.4.2", Username: "ci", Password: password})
	require.NoError(t, err)
	assert.Equal(t, ref, again)
}

func TestPushErrors(t *testing.T) {
	host := registrytest.Start(t, "ci", password)
	path, _ := tarball(t)
	ctx := context.Background()

	_, err := Push(ctx, path, Options{Address: host + "/acme/voice-agent:1", Username: "ci", Password: "wrong-" + password})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "401")
	assert.NotContains(t, err.Error(), password)

	_, err = Push(ctx, path, Options{Address: host + "/acme/voice-agent:1"})
	require.Error(t, err, "anonymous push to a registry that needs a login")

	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Address: "voice-agent:1"}, "no registry host"},
		{Options{Address: host + "/acme/voice-agent@sha256:" + strings.Repeat("a", 64)}, "has a digest"},
		{Options{Address: host + "/acme/voice-agent:1", Username: "ci"}, "both a registry username and a password"},
	} {
		_, err := Push(ctx, path, tc.o)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
	_, err = Push(ctx, filepath.Join(t.TempDir(), "missing.tar"), Options{Address: host + "/acme/voice-agent:1"})
	assert.ErrorContains(t, err, "open the image tarball")
}
