//go:build typecheck

package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dagger/voice/imageref"
	"dagger/voice/internal/dagger"
)

// These tests cover the module's argument checks, which run before any
// engine call (the package-level dag client is nil here).

func TestBuildRejectsBadArguments(t *testing.T) {
	m := New("", "", "")
	ctx := context.Background()
	tests := []struct {
		name      string
		platforms []dagger.Platform
		version   string
		created   string
		base      string
		wantErr   string
	}{
		{name: "windows", platforms: []dagger.Platform{"windows/amd64"}, wantErr: "not supported"},
		{name: "twice", platforms: []dagger.Platform{"linux/arm64", "linux/arm64/v8"}, wantErr: "listed twice"},
		{name: "bad time", created: "yesterday", wantErr: "neither RFC 3339"},
		{name: "base by tag", base: "gcr.io/distroless/static-debian12:nonroot", wantErr: "base image must be pinned by digest"},
		{name: "version with space", version: "1 -X main.commit=x", wantErr: "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mm := *m
			if tt.base != "" {
				mm.BaseImage = tt.base
			}
			_, err := mm.Build(ctx, nil, tt.platforms, tt.version, "", tt.created, "", "")
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestPublishRefusesUncommittedBuild(t *testing.T) {
	b := &Build{Commit: zeroCommit, Containers: []*dagger.Container{nil}}
	_, err := b.Publish(context.Background(), "registry.gitlab.com/acme/voice-agent:1", "", nil)
	require.ErrorContains(t, err, "without a commit")

	b.Commit = "0123456789abcdef0123456789abcdef01234567"
	_, err = b.Publish(context.Background(), "voice-agent:1", "", nil)
	require.ErrorContains(t, err, "no registry host")
	_, err = b.Publish(context.Background(), "registry.gitlab.com/acme/voice-agent:1", "ci-user", nil)
	require.ErrorContains(t, err, "both --username and --password")
}

func TestSignAndVerifyRefuseBadArguments(t *testing.T) {
	m := New("", "", "")
	ctx := context.Background()
	const ref = "registry.gitlab.com/acme/voice-agent@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	var secret dagger.Secret

	_, err := m.Sign(ctx, "registry.gitlab.com/acme/voice-agent:1.4.2", &secret, nil, nil, "", "", "", nil, nil, nil, nil, "", "", "", false, nil)
	require.ErrorContains(t, err, "has no digest")
	_, err = m.Sign(ctx, ref, nil, nil, nil, "", "", "", nil, nil, nil, nil, "", "", "", false, nil)
	require.ErrorContains(t, err, "nothing to sign with")
	_, err = m.Sign(ctx, ref, &secret, nil, &secret, "", "", "", nil, nil, nil, nil, "", "", "", false, nil)
	require.ErrorContains(t, err, "not both")
	_, err = m.Sign(ctx, ref, nil, &secret, &secret, "", "", "", nil, nil, nil, nil, "", "", "", false, nil)
	require.ErrorContains(t, err, "only for key-based")
	_, err = m.Sign(ctx, ref, nil, nil, &secret, "", "", "", nil, nil, nil, nil, "", "", "", true, nil)
	require.ErrorContains(t, err, "keyless signing needs the transparency log")
	_, err = m.Sign(ctx, ref, nil, nil, &secret, "https://fulcio.example.com", "", "", nil, nil, nil, nil, "", "", "", false, nil)
	require.ErrorContains(t, err, "needs its trusted root")

	_, err = m.Verify(ctx, "registry.gitlab.com/acme/voice-agent:latest", &secret, "", "", "", nil, false, "", nil)
	require.ErrorContains(t, err, "has no digest")
	_, err = m.Verify(ctx, ref, nil, "", "", "", nil, false, "", nil)
	require.ErrorContains(t, err, "nothing to verify against")
	_, err = m.Verify(ctx, ref, &secret, "https://gitlab.com/acme/voice-agent//.gitlab-ci.yml@refs/heads/main", "https://gitlab.com", "", nil, false, "", nil)
	require.ErrorContains(t, err, "not both")
	_, err = m.Verify(ctx, ref, nil, "https://gitlab.com/acme/voice-agent//.gitlab-ci.yml@refs/heads/main", "", "", nil, false, "", nil)
	require.ErrorContains(t, err, "needs both")
	_, err = m.Verify(ctx, ref, nil, "https://gitlab.com/acme/voice-agent//.gitlab-ci.yml@refs/heads/main", "https://gitlab.com", "", nil, true, "", nil)
	require.ErrorContains(t, err, "offline verification is for key-signed images")
	_, err = m.Verify(ctx, ref, nil, "https://gitlab.com/acme/voice-agent//.gitlab-ci.yml@refs/heads/main", "https://gitlab.com", "", nil, false, "https://rekor.example.com", nil)
	require.ErrorContains(t, err, "trusted root")
}

func TestNames(t *testing.T) {
	assert.Equal(t, "sbom-linux-arm-v7.cdx.json", sbomName("linux/arm/v7"))
	_, err := provenancePredicate(`{"a":1}`)
	require.ErrorContains(t, err, "provenance file")
}

// The base image labels Build writes must give back the same reference
// when Sign rebuilds the SBOM from a published image.
func TestBaseImageLabelsRoundTrip(t *testing.T) {
	for _, ref := range []string{DefaultBaseImage, "alpine:3.22@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "registry.example.com:5000/base@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"} {
		d, err := imageref.ParseDigest(ref)
		require.NoError(t, err)
		again, err := imageref.ParseDigest(baseName(d) + "@" + d.Digest)
		require.NoError(t, err)
		assert.Equal(t, d, again, ref)
	}
}
