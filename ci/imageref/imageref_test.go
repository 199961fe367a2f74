package imageref

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParse(t *testing.T) {
	tests := []struct {
		in                                     string
		name, repo, registry, tag, digest, str string
	}{
		{in: "registry.gitlab.com/acme/voice-agent@sha256:" + hex64, name: "registry.gitlab.com/acme/voice-agent", repo: "registry.gitlab.com/acme/voice-agent", registry: "registry.gitlab.com", digest: "sha256:" + hex64, str: "registry.gitlab.com/acme/voice-agent@sha256:" + hex64},
		{in: "registry.gitlab.com/acme/voice-agent:1.2.3@sha256:" + hex64, name: "registry.gitlab.com/acme/voice-agent", repo: "registry.gitlab.com/acme/voice-agent", registry: "registry.gitlab.com", tag: "1.2.3", digest: "sha256:" + hex64, str: "registry.gitlab.com/acme/voice-agent@sha256:" + hex64},
		{in: "127.0.0.1:5000/voice@sha256:" + hex64, name: "127.0.0.1:5000/voice", repo: "127.0.0.1:5000/voice", registry: "127.0.0.1:5000", digest: "sha256:" + hex64, str: "127.0.0.1:5000/voice@sha256:" + hex64},
		{in: "localhost:5000/a/b:latest@sha256:" + hex64, name: "localhost:5000/a/b", repo: "localhost:5000/a/b", registry: "localhost:5000", tag: "latest", digest: "sha256:" + hex64, str: "localhost:5000/a/b@sha256:" + hex64},
		// Names as written stay as written; the repository is normalized.
		{in: "voice-agent@sha256:" + hex64, name: "voice-agent", repo: "index.docker.io/library/voice-agent", registry: "index.docker.io", digest: "sha256:" + hex64, str: "index.docker.io/library/voice-agent@sha256:" + hex64},
		{in: "golang:1.26.8-bookworm@sha256:" + hex64, name: "golang", repo: "index.docker.io/library/golang", registry: "index.docker.io", tag: "1.26.8-bookworm", digest: "sha256:" + hex64, str: "index.docker.io/library/golang@sha256:" + hex64},
		// Without a digest (an image in a manifest).
		{in: "nginx", name: "nginx", repo: "index.docker.io/library/nginx", registry: "index.docker.io", str: "index.docker.io/library/nginx"},
		{in: "registry.example.com:5000/base:v1", name: "registry.example.com:5000/base", repo: "registry.example.com:5000/base", registry: "registry.example.com:5000", tag: "v1", str: "registry.example.com:5000/base:v1"},
		{in: "  voice-agent:v2\n", name: "voice-agent", repo: "index.docker.io/library/voice-agent", registry: "index.docker.io", tag: "v2", str: "index.docker.io/library/voice-agent:v2"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			require.NoError(t, err)
			assert.Equal(t, Ref{Name: tt.name, Repository: tt.repo, Registry: tt.registry, Tag: tt.tag, Digest: tt.digest}, r)
			assert.Equal(t, tt.str, r.String())
		})
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		"": "empty",
		"registry.gitlab.com/acme/voice-agent@sha256:abc":              "not a valid",
		"registry.gitlab.com/acme/voice-agent@sha512:" + hex64 + hex64: "sha256",
		"registry.gitlab.com/Acme/voice@sha256:" + hex64:               "not a valid",
		"Voice:1":                        "not a valid",
		"a@b@sha256:" + hex64:            "not a valid",
		"@sha256:" + hex64:               "not a valid",
		"voice@sha256:":                  "not a valid",
		"registry.gitlab.com/acme/v:a:b": "not a valid",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := Parse(in)
			require.ErrorContains(t, err, want)
		})
	}
}

func TestParseDigest(t *testing.T) {
	r, err := ParseDigest("registry.gitlab.com/acme/voice-agent:1.2.3@sha256:" + hex64)
	require.NoError(t, err)
	assert.Equal(t, "registry.gitlab.com/acme/voice-agent@sha256:"+hex64, r.String())
	assert.Equal(t, "registry.gitlab.com/acme/voice-agent@sha256:"+hex64, r.Pinned())
	assert.Equal(t, "0123456789ab", r.ShortDigest())
	assert.Equal(t, "voice-agent", r.LastElement())

	r, err = ParseDigest("voice-agent@sha256:" + hex64)
	require.NoError(t, err)
	assert.Equal(t, "voice-agent@sha256:"+hex64, r.Pinned(), "pinned keeps the name as written")

	_, err = ParseDigest("registry.gitlab.com/acme/voice-agent:1.2.3")
	require.ErrorContains(t, err, "has no digest")
	_, err = ParseDigest("registry.gitlab.com/acme/voice-agent")
	require.ErrorContains(t, err, "has no digest")
	_, err = ParseDigest("")
	require.ErrorContains(t, err, "empty")
}

func TestParseAddress(t *testing.T) {
	tests := []struct{ in, repo, registry, tag, wantErr string }{
		{in: "registry.gitlab.com/acme/voice-agent:v1", repo: "registry.gitlab.com/acme/voice-agent", registry: "registry.gitlab.com", tag: "v1"},
		{in: "registry.gitlab.com/acme/voice-agent", repo: "registry.gitlab.com/acme/voice-agent", registry: "registry.gitlab.com"},
		{in: "localhost/voice:1", repo: "localhost/voice", registry: "localhost", tag: "1"},
		{in: "127.0.0.1:5000/voice:1", repo: "127.0.0.1:5000/voice", registry: "127.0.0.1:5000", tag: "1"},
		{in: "voice-agent:1.0", wantErr: "no registry host"},
		{in: "acme/voice-agent:1.0", wantErr: "no registry host"},
		{in: "registry.gitlab.com/acme/voice@sha256:" + hex64, wantErr: "has a digest"},
		{in: "registry.gitlab.com/acme/Voice:1", wantErr: "not a valid"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseAddress(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.repo, r.Repository)
			assert.Equal(t, tt.registry, r.Registry)
			assert.Equal(t, tt.tag, r.Tag)
		})
	}
}

func TestHost(t *testing.T) {
	for in, want := range map[string]string{
		"registry.gitlab.com":                  "registry.gitlab.com",
		"127.0.0.1:5000":                       "127.0.0.1:5000",
		"registry.gitlab.com/acme/voice-agent": "registry.gitlab.com",
		"localhost:5000/a/b:1@sha256:" + hex64: "localhost:5000",
		"docker.io":                            "index.docker.io",
	} {
		got, err := Host(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := Host("")
	require.Error(t, err)
}

// The base image label (RepositoryTag) plus the digest gives back the
// reference Build started from, so Sign can rebuild the SBOM from a
// published image.
func TestRepositoryTagRoundTrip(t *testing.T) {
	for _, in := range []string{
		"gcr.io/distroless/static-debian12:nonroot@sha256:" + hex64,
		"alpine:3.22@sha256:" + hex64,
		"registry.example.com:5000/base@sha256:" + hex64,
	} {
		r, err := ParseDigest(in)
		require.NoError(t, err)
		again, err := ParseDigest(r.RepositoryTag() + "@" + r.Digest)
		require.NoError(t, err)
		assert.Equal(t, r.Repository, again.Repository, in)
		assert.Equal(t, r.Tag, again.Tag, in)
		assert.Equal(t, r.Digest, again.Digest, in)
	}
}

// FuzzParse checks that the parser never panics and that whatever it
// accepts round-trips: through its canonical form, and (with the name as
// written) through Pinned.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"registry.gitlab.com/acme/voice-agent@sha256:" + hex64,
		"registry.gitlab.com/acme/voice-agent:1.2.3@sha256:" + hex64,
		"127.0.0.1:5000/voice@sha256:" + hex64,
		"voice-agent@sha256:" + hex64,
		"voice:latest", "nginx", "a/b@sha512:abc", "::@@", "@sha256:" + hex64, "a@", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, err := Parse(in)
		if err != nil {
			return
		}
		require.NotEmpty(t, r.Name)
		require.NotEmpty(t, r.Registry)
		require.True(t, strings.HasPrefix(r.Repository, r.Registry+"/"), "repository %q of registry %q", r.Repository, r.Registry)
		again, err := Parse(r.String())
		require.NoError(t, err, "canonical form %q must parse", r.String())
		require.Equal(t, r.String(), again.String())
		if r.Digest == "" {
			return
		}
		require.True(t, strings.HasPrefix(r.Digest, "sha256:") && len(r.Digest) == 71, "digest %q", r.Digest)
		d, err := ParseDigest(r.Pinned())
		require.NoError(t, err, "pinned form %q must parse", r.Pinned())
		require.Equal(t, r.Name, d.Name)
		require.Equal(t, r.Repository, d.Repository)
		require.Equal(t, r.Digest, d.Digest)
		require.Empty(t, d.Tag)
	})
}
