package imageref

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseDigest(t *testing.T) {
	tests := []struct {
		in, repo, registry, tag, want, wantErr string
	}{
		{in: "registry.gitlab.com/acme/voice-agent@sha256:" + hex64, repo: "registry.gitlab.com/acme/voice-agent", registry: "registry.gitlab.com", want: "registry.gitlab.com/acme/voice-agent@sha256:" + hex64},
		{in: "registry.gitlab.com/acme/voice-agent:1.2.3@sha256:" + hex64, repo: "registry.gitlab.com/acme/voice-agent", registry: "registry.gitlab.com", tag: "1.2.3", want: "registry.gitlab.com/acme/voice-agent@sha256:" + hex64},
		{in: "127.0.0.1:5000/voice@sha256:" + hex64, repo: "127.0.0.1:5000/voice", registry: "127.0.0.1:5000", want: "127.0.0.1:5000/voice@sha256:" + hex64},
		{in: "localhost:5000/a/b:latest@sha256:" + hex64, repo: "localhost:5000/a/b", registry: "localhost:5000", tag: "latest", want: "localhost:5000/a/b@sha256:" + hex64},
		{in: "registry.gitlab.com/acme/voice-agent:1.2.3", wantErr: "has no digest"},
		{in: "", wantErr: "empty"},
		{in: "registry.gitlab.com/acme/voice-agent@sha256:abc", wantErr: "not a valid"},
		{in: "registry.gitlab.com/acme/voice-agent@sha512:" + hex64 + hex64, wantErr: "sha256"},
		{in: "registry.gitlab.com/Acme/voice@sha256:" + hex64, wantErr: "not a valid"},
		{in: "a@b@sha256:" + hex64, wantErr: "not a valid"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := ParseDigest(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.repo, d.Repository)
			assert.Equal(t, tt.registry, d.Registry)
			assert.Equal(t, tt.tag, d.Tag)
			assert.Equal(t, "sha256:"+hex64, d.Digest)
			assert.Equal(t, tt.want, d.String())
			n, err := Normalize(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, n)
		})
	}
}

func TestRepository(t *testing.T) {
	tests := []struct{ in, repo, registry, wantErr string }{
		{in: "registry.gitlab.com/acme/voice-agent:v1", repo: "registry.gitlab.com/acme/voice-agent", registry: "registry.gitlab.com"},
		{in: "registry.gitlab.com/acme/voice-agent", repo: "registry.gitlab.com/acme/voice-agent", registry: "registry.gitlab.com"},
		{in: "localhost/voice:1", repo: "localhost/voice", registry: "localhost"},
		{in: "127.0.0.1:5000/voice:1", repo: "127.0.0.1:5000/voice", registry: "127.0.0.1:5000"},
		{in: "voice-agent:1.0", wantErr: "no registry host"},
		{in: "acme/voice-agent:1.0", wantErr: "no registry host"},
		{in: "registry.gitlab.com/acme/voice@sha256:" + hex64, wantErr: "has a digest"},
		{in: "registry.gitlab.com/acme/Voice:1", wantErr: "not a valid"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			repo, reg, err := Repository(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.repo, repo)
			assert.Equal(t, tt.registry, reg)
		})
	}
}

// FuzzParseDigest checks that the parser never panics and that whatever it
// accepts is a canonical digest reference that parses to itself.
func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{
		"registry.gitlab.com/acme/voice-agent@sha256:" + hex64,
		"registry.gitlab.com/acme/voice-agent:1.2.3@sha256:" + hex64,
		"127.0.0.1:5000/voice@sha256:" + hex64,
		"voice:latest",
		"@sha256:" + hex64,
		"a@",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		d, err := ParseDigest(in)
		if err != nil {
			return
		}
		s := d.String()
		require.True(t, strings.HasPrefix(d.Digest, "sha256:") && len(d.Digest) == 71, "digest %q", d.Digest)
		require.Equal(t, 1, strings.Count(s, "@"))
		again, err := ParseDigest(s)
		require.NoError(t, err, "canonical form %q must parse", s)
		require.Equal(t, s, again.String())
		require.Empty(t, again.Tag)
	})
}

func TestParseDigestDockerHub(t *testing.T) {
	d, err := ParseDigest("golang:1.26.8-bookworm@sha256:" + hex64)
	require.NoError(t, err)
	assert.Equal(t, "index.docker.io/library/golang", d.Repository)
	assert.Equal(t, "index.docker.io", d.Registry)
	assert.Equal(t, "1.26.8-bookworm", d.Tag)
}
