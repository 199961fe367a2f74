//go:build typecheck

package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dagger/voice/cosignargs"
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
	_, err := b.Publish(context.Background(), "registry.gitlab.com/acme/voice-agent:1")
	require.ErrorContains(t, err, "without a commit")

	b.Commit = "0123456789abcdef0123456789abcdef01234567"
	_, err = b.Publish(context.Background(), "voice-agent:1")
	require.ErrorContains(t, err, "no registry host")
}

func TestWithRegistryAuth(t *testing.T) {
	var a, b dagger.Secret
	m := New("", "", "")
	m1, err := m.WithRegistryAuth("registry.gitlab.com", "ci", &a)
	require.NoError(t, err)
	m2, err := m1.WithRegistryAuth("127.0.0.1:5000/acme/voice-agent:1", "local", &b)
	require.NoError(t, err)
	m3, err := m2.WithRegistryAuth("registry.gitlab.com/acme/voice-agent", "deploy", &b)
	require.NoError(t, err)
	assert.Empty(t, m.RegistryAuths, "chaining never changes the object it starts from")
	assert.Equal(t, &RegistryAuth{Host: "127.0.0.1:5000", Username: "local", Secret: &b}, m3.registryAuth("127.0.0.1:5000"))
	assert.Equal(t, "deploy", m3.registryAuth("registry.gitlab.com").Username, "the last credentials of a host win")
	assert.Equal(t, "ci", m1.registryAuth("registry.gitlab.com").Username)
	assert.Nil(t, m3.registryAuth("ghcr.io"))

	_, err = m.WithRegistryAuth("registry.gitlab.com", "", &a)
	require.ErrorContains(t, err, "needs --username and --secret")
	_, err = m.WithRegistryAuth("Not A Host/x", "u", &a)
	require.ErrorContains(t, err, "--address")
}

func TestSignAndVerifyRefuseBadSettings(t *testing.T) {
	m := New("", "", "")
	ctx := context.Background()
	const ref = "registry.gitlab.com/acme/voice-agent@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	var secret dagger.Secret

	_, err := m.Sign(ctx, ref, nil, nil, nil, "", "", "")
	require.ErrorContains(t, err, "nothing to sign with")
	_, err = m.Verify(ctx, ref)
	require.ErrorContains(t, err, "nothing to verify against")

	verifyOnly, err := m.WithSigningKey(nil, nil, &secret, false, "", nil)
	require.NoError(t, err)
	_, err = verifyOnly.Sign(ctx, ref, nil, nil, nil, "", "", "")
	require.ErrorContains(t, err, "needs the private key")
	signOnly, err := m.WithSigningKey(&secret, nil, nil, false, "", nil)
	require.NoError(t, err)
	_, err = signOnly.Verify(ctx, ref)
	require.ErrorContains(t, err, "--public-key")
	_, err = signOnly.Sign(ctx, "registry.gitlab.com/acme/voice-agent:1.4.2", nil, nil, nil, "", "", "")
	require.ErrorContains(t, err, "has no digest")

	_, err = m.WithSigningKey(nil, nil, nil, false, "", nil)
	require.ErrorContains(t, err, "needs --key")
	_, err = m.WithSigningKey(nil, &secret, &secret, false, "", nil)
	require.ErrorContains(t, err, "pass --key too")
	_, err = m.WithSigningKey(&secret, nil, nil, true, "https://rekor.example.com", nil)
	require.ErrorContains(t, err, "drop --rekor-url")

	_, err = m.WithKeylessSigning(nil, "", "", "", "", nil)
	require.ErrorContains(t, err, "needs --id-token")
	verifyKeyless, err := m.WithKeylessSigning(nil, "https://gitlab.com/acme/voice-agent//.gitlab-ci.yml@refs/heads/main", "", "", "", nil)
	require.NoError(t, err)
	_, err = verifyKeyless.Sign(ctx, ref, nil, nil, nil, "", "", "")
	require.ErrorContains(t, err, "needs the OIDC token")
	assert.Equal(t, "https://gitlab.com", verifyKeyless.Signing.CertificateOidcIssuer, "the default issuer")
}

// The sign settings map onto cosign's options: the transparency log off
// in both directions, and keyless verification by identity.
func TestSignSettingsToCosign(t *testing.T) {
	var key, pub dagger.Secret
	var root dagger.File
	m := New("", "", "")
	offline, err := m.WithSigningKey(&key, nil, &pub, true, "", nil)
	require.NoError(t, err)
	signer, err := offline.Signing.signer()
	require.NoError(t, err)
	assert.Equal(t, cosignargs.Signer{Offline: true}, signer)
	v, err := offline.Signing.verifier()
	require.NoError(t, err)
	assert.Equal(t, cosignargs.Verifier{KeyPath: publicKeyPath, Offline: true, TrustedRootPath: trustedRootPath}, v,
		"offline verification trusts the key alone, with an empty trusted root so cosign fetches nothing")
	// The exact cosign runs of the module's sign and verify paths.
	const ref = "registry.gitlab.com/acme/voice-agent@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	signSteps, err := signer.Plan(ref, []string{predicateDir + "/sbom-0.cdx.json"}, predicateDir+"/provenance.predicate.json")
	require.NoError(t, err)
	require.Len(t, signSteps, 3)
	assert.Equal(t, []string{"cosign", "sign", "--yes", "--key", "env://COSIGN_PRIVATE_KEY", "--tlog-upload=false", ref}, signSteps[0].Args)
	verifySteps, err := v.Plan(ref)
	require.NoError(t, err)
	require.Len(t, verifySteps, 3)
	assert.Equal(t, []string{"cosign", "verify", "--output", "json", "--key", publicKeyPath, "--insecure-ignore-tlog", "--trusted-root", trustedRootPath, ref}, verifySteps[0].Args)

	online, err := m.WithSigningKey(&key, nil, &pub, false, "https://rekor.example.com", &root)
	require.NoError(t, err)
	signer, err = online.Signing.signer()
	require.NoError(t, err)
	assert.Equal(t, cosignargs.Signer{RekorURL: "https://rekor.example.com", TrustedRootPath: trustedRootPath}, signer)
	v, err = online.Signing.verifier()
	require.NoError(t, err)
	assert.Equal(t, cosignargs.Verifier{KeyPath: publicKeyPath, RekorURL: "https://rekor.example.com", TrustedRootPath: trustedRootPath}, v)

	keyless, err := m.WithKeylessSigning(&key, "id", "https://gitlab.example.com", "https://fulcio.example.com", "https://rekor.example.com", &root)
	require.NoError(t, err)
	signer, err = keyless.Signing.signer()
	require.NoError(t, err)
	assert.Equal(t, cosignargs.Signer{Keyless: true, FulcioURL: "https://fulcio.example.com", RekorURL: "https://rekor.example.com", TrustedRootPath: trustedRootPath}, signer)
	v, err = keyless.Signing.verifier()
	require.NoError(t, err)
	assert.Equal(t, cosignargs.Verifier{CertificateIdentity: "id", CertificateOIDCIssuer: "https://gitlab.example.com", RekorURL: "https://rekor.example.com", TrustedRootPath: trustedRootPath}, v)

	// What cosignargs refuses reaches the caller before anything runs.
	noRoot, err := m.WithKeylessSigning(&key, "", "", "https://fulcio.example.com", "https://rekor.example.com", nil)
	require.NoError(t, err)
	_, err = noRoot.Sign(context.Background(), "registry.gitlab.com/acme/voice-agent@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", nil, nil, nil, "", "", "")
	require.ErrorContains(t, err, "needs its trusted root")
}
