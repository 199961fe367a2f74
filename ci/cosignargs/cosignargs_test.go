package cosignargs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	ref   = "registry.gitlab.com/acme/voice-agent@sha256:" + hex64
)

func TestSign(t *testing.T) {
	tests := []struct {
		name    string
		s       Signer
		in      string
		want    []string
		wantErr string
	}{
		{name: "key", in: ref, want: []string{"cosign", "sign", "--yes", "--key", "env://COSIGN_PRIVATE_KEY", ref}},
		{name: "key, tag dropped", in: "registry.gitlab.com/acme/voice-agent:1.4.2@sha256:" + hex64, want: []string{"cosign", "sign", "--yes", "--key", "env://COSIGN_PRIVATE_KEY", ref}},
		{name: "keyless public", s: Signer{Keyless: true}, in: ref, want: []string{"cosign", "sign", "--yes", ref}},
		{name: "keyless private sigstore", s: Signer{Keyless: true, FulcioURL: "https://fulcio.example.com", RekorURL: "https://rekor.example.com", TrustedRootPath: "/run/sigstore/trusted_root.json"}, in: ref,
			want: []string{"cosign", "sign", "--yes", "--fulcio-url", "https://fulcio.example.com", "--rekor-url", "https://rekor.example.com", "--trusted-root", "/run/sigstore/trusted_root.json", ref}},
		{name: "key, private rekor", s: Signer{RekorURL: "https://rekor.example.com"}, in: ref,
			want: []string{"cosign", "sign", "--yes", "--key", "env://COSIGN_PRIVATE_KEY", "--rekor-url", "https://rekor.example.com", ref}},
		{name: "offline", s: Signer{Offline: true}, in: ref,
			want: []string{"cosign", "sign", "--yes", "--key", "env://COSIGN_PRIVATE_KEY", "--tlog-upload=false", ref}},
		{name: "offline, test registry", s: Signer{Offline: true, Registry: Registry{AllowInsecure: true, AllowHTTP: true}}, in: ref,
			want: []string{"cosign", "sign", "--yes", "--key", "env://COSIGN_PRIVATE_KEY", "--tlog-upload=false", "--allow-insecure-registry", "--allow-http-registry", ref}},
		{name: "tag only", in: "registry.gitlab.com/acme/voice-agent:1.4.2", wantErr: "has no digest"},
		{name: "keyless offline", s: Signer{Keyless: true, Offline: true}, in: ref, wantErr: "keyless signing needs the transparency log"},
		{name: "offline with a rekor", s: Signer{Offline: true, RekorURL: "https://rekor.example.com"}, in: ref, wantErr: "uses no Sigstore service"},
		{name: "offline with a trusted root", s: Signer{Offline: true, TrustedRootPath: "tr.json"}, in: ref, wantErr: "uses no Sigstore service"},
		{name: "fulcio with a key", s: Signer{FulcioURL: "https://fulcio.example.com"}, in: ref, wantErr: "Fulcio URL is for keyless"},
		{name: "private fulcio without its root", s: Signer{Keyless: true, FulcioURL: "https://fulcio.example.com"}, in: ref, wantErr: "needs its trusted root"},
		{name: "trusted root not a path", s: Signer{Keyless: true, FulcioURL: "https://fulcio.example.com", TrustedRootPath: `{"mediaType":"x"}`}, in: ref, wantErr: "must be a file path"},
		{name: "rekor without fulcio", s: Signer{Keyless: true, RekorURL: "https://rekor.example.com"}, in: ref, wantErr: "Fulcio URL too"},
		{name: "url with credentials", s: Signer{Keyless: true, FulcioURL: "https://user:pw@fulcio.example.com"}, in: ref, wantErr: "without credentials"},
		{name: "not a url", s: Signer{RekorURL: "rekor"}, in: ref, wantErr: "http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Sign(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestAttest(t *testing.T) {
	got, err := Signer{}.Attest(ref, "/work/sbom-linux-amd64.cdx.json", TypeCycloneDX)
	require.NoError(t, err)
	assert.Equal(t, []string{"cosign", "attest", "--type", "cyclonedx", "--predicate", "/work/sbom-linux-amd64.cdx.json", "--yes", "--key", "env://COSIGN_PRIVATE_KEY", ref}, got)

	got, err = Signer{Keyless: true}.Attest(ref, "/work/provenance.json", TypeSLSA1)
	require.NoError(t, err)
	assert.Equal(t, []string{"cosign", "attest", "--type", "slsaprovenance1", "--predicate", "/work/provenance.json", "--yes", ref}, got)

	_, err = Signer{}.Attest(ref, "/p.json", "spdx")
	require.ErrorContains(t, err, "not one the pipeline attests")
	_, err = Signer{}.Attest(ref, "", TypeSLSA1)
	require.ErrorContains(t, err, "file path")
	_, err = Signer{}.Attest(ref, "--key=x", TypeSLSA1)
	require.ErrorContains(t, err, "file path")
	_, err = Signer{}.Attest("repo:tag", "/p.json", TypeSLSA1)
	require.ErrorContains(t, err, "no digest")
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name    string
		v       Verifier
		verify  []string
		attest  []string
		wantErr string
	}{
		{name: "key", v: Verifier{KeyPath: "/run/cosign/cosign.pub"},
			verify: []string{"cosign", "verify", "--output", "json", "--key", "/run/cosign/cosign.pub", ref},
			attest: []string{"cosign", "verify-attestation", "--type", "cyclonedx", "--output", "json", "--key", "/run/cosign/cosign.pub", ref}},
		{name: "keyless", v: Verifier{CertificateIdentity: "https://gitlab.com/acme/voice-agent//.gitlab-ci.yml@refs/heads/main", CertificateOIDCIssuer: "https://gitlab.com"},
			verify: []string{"cosign", "verify", "--output", "json", "--certificate-identity", "https://gitlab.com/acme/voice-agent//.gitlab-ci.yml@refs/heads/main", "--certificate-oidc-issuer", "https://gitlab.com", ref},
			attest: []string{"cosign", "verify-attestation", "--type", "cyclonedx", "--output", "json", "--certificate-identity", "https://gitlab.com/acme/voice-agent//.gitlab-ci.yml@refs/heads/main", "--certificate-oidc-issuer", "https://gitlab.com", ref}},
		{name: "offline", v: Verifier{KeyPath: "k.pub", Offline: true, TrustedRootPath: "tr.json", Registry: Registry{AllowHTTP: true}},
			verify: []string{"cosign", "verify", "--output", "json", "--key", "k.pub", "--insecure-ignore-tlog", "--trusted-root", "tr.json", "--allow-http-registry", ref},
			attest: []string{"cosign", "verify-attestation", "--type", "cyclonedx", "--output", "json", "--key", "k.pub", "--insecure-ignore-tlog", "--trusted-root", "tr.json", "--allow-http-registry", ref}},
		{name: "keyless private sigstore", v: Verifier{CertificateIdentity: "i", CertificateOIDCIssuer: "https://gitlab.example.com", RekorURL: "https://rekor.example.com", TrustedRootPath: "/run/sigstore/trusted_root.json"},
			verify: []string{"cosign", "verify", "--output", "json", "--certificate-identity", "i", "--certificate-oidc-issuer", "https://gitlab.example.com", "--rekor-url", "https://rekor.example.com", "--trusted-root", "/run/sigstore/trusted_root.json", ref},
			attest: []string{"cosign", "verify-attestation", "--type", "cyclonedx", "--output", "json", "--certificate-identity", "i", "--certificate-oidc-issuer", "https://gitlab.example.com", "--rekor-url", "https://rekor.example.com", "--trusted-root", "/run/sigstore/trusted_root.json", ref}},
		{name: "offline without a trusted root", v: Verifier{KeyPath: "k.pub", Offline: true}, wantErr: "needs a trusted root file"},
		{name: "offline keyless", v: Verifier{CertificateIdentity: "i", CertificateOIDCIssuer: "y", Offline: true, TrustedRootPath: "tr.json"}, wantErr: "offline verification is for key-signed images"},
		{name: "offline with a rekor", v: Verifier{KeyPath: "k.pub", Offline: true, TrustedRootPath: "tr.json", RekorURL: "https://rekor.example.com"}, wantErr: "uses no Rekor"},
		{name: "private rekor without its root", v: Verifier{CertificateIdentity: "i", CertificateOIDCIssuer: "y", RekorURL: "https://rekor.example.com"}, wantErr: "trusted root"},
		{name: "rekor not a url", v: Verifier{KeyPath: "k.pub", RekorURL: "rekor", TrustedRootPath: "tr.json"}, wantErr: "http(s) URL"},
		{name: "nothing", v: Verifier{}, wantErr: "nothing to verify against"},
		{name: "both", v: Verifier{KeyPath: "k.pub", CertificateIdentity: "x", CertificateOIDCIssuer: "y"}, wantErr: "not both"},
		{name: "identity only", v: Verifier{CertificateIdentity: "x"}, wantErr: "needs both"},
		{name: "key contents instead of path", v: Verifier{KeyPath: "-----BEGIN PUBLIC KEY-----"}, wantErr: "file path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.v.Verify(ref)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				_, err = tt.v.VerifyAttestation(ref, TypeSLSA1)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.verify, got)
			got, err = tt.v.VerifyAttestation(ref, TypeCycloneDX)
			require.NoError(t, err)
			assert.Equal(t, tt.attest, got)
		})
	}
	_, err := Verifier{KeyPath: "k.pub"}.Verify("registry.gitlab.com/acme/voice-agent:latest")
	require.ErrorContains(t, err, "no digest")
	_, err = Verifier{KeyPath: "k.pub"}.VerifyAttestation(ref, "vuln")
	require.ErrorContains(t, err, "not one the pipeline attests")
}

// TestNoSecretFlags checks every builder in every mode: secrets only ever
// travel through the environment, so no argument list may carry a flag
// that takes a secret value or anything else than the env:// key reference.
func TestNoSecretFlags(t *testing.T) {
	secretFlags := []string{"--identity-token", "--registry-password", "--registry-token", "--registry-username", "--oidc-client-secret-file", "--key-password"}
	var lists [][]string
	for _, s := range []Signer{{}, {Keyless: true}, {Keyless: true, FulcioURL: "https://f.example", RekorURL: "https://r.example", TrustedRootPath: "tr.json"}, {Offline: true, Registry: Registry{true, true}}} {
		a, err := s.Sign(ref)
		require.NoError(t, err)
		lists = append(lists, a)
		for _, typ := range []string{TypeCycloneDX, TypeSLSA1} {
			a, err := s.Attest(ref, "/work/p.json", typ)
			require.NoError(t, err)
			lists = append(lists, a)
		}
	}
	for _, v := range []Verifier{{KeyPath: "/run/cosign/cosign.pub"}, {CertificateIdentity: "i", CertificateOIDCIssuer: "https://gitlab.com"}, {KeyPath: "k.pub", Offline: true, TrustedRootPath: "tr.json"}} {
		a, err := v.Verify(ref)
		require.NoError(t, err)
		lists = append(lists, a)
	}
	require.Len(t, lists, 15)
	for _, args := range lists {
		joined := strings.Join(args, " ")
		for _, f := range secretFlags {
			assert.NotContains(t, joined, f)
		}
		for i, a := range args {
			if a == "--key" && args[0] == "cosign" && (args[1] == "sign" || args[1] == "attest") {
				assert.Equal(t, "env://"+EnvPrivateKey, args[i+1], "the private key is only referenced through the environment")
			}
		}
	}
}

func TestPlan(t *testing.T) {
	steps, err := Signer{Offline: true}.Plan(ref, []string{"/work/sbom-0.cdx.json", "/work/sbom-1.cdx.json"}, "/work/provenance.predicate.json")
	require.NoError(t, err)
	key := []string{"--yes", "--key", "env://COSIGN_PRIVATE_KEY", "--tlog-upload=false", ref}
	assert.Equal(t, []Step{
		{Name: "sign", Args: append([]string{"cosign", "sign"}, key...)},
		{Name: "attest SBOM /work/sbom-0.cdx.json", Args: append([]string{"cosign", "attest", "--type", "cyclonedx", "--predicate", "/work/sbom-0.cdx.json"}, key...)},
		{Name: "attest SBOM /work/sbom-1.cdx.json", Args: append([]string{"cosign", "attest", "--type", "cyclonedx", "--predicate", "/work/sbom-1.cdx.json"}, key...)},
		{Name: "attest provenance", Args: append([]string{"cosign", "attest", "--type", "slsaprovenance1", "--predicate", "/work/provenance.predicate.json"}, key...)},
	}, steps)
	_, err = Signer{}.Plan(ref, nil, "/work/p.json")
	require.ErrorContains(t, err, "no SBOM")
	_, err = Signer{Keyless: true, Offline: true}.Plan(ref, []string{"/s.json"}, "/p.json")
	require.ErrorContains(t, err, "transparency log")

	steps, err = Verifier{KeyPath: "k.pub", Offline: true, TrustedRootPath: "tr.json"}.Plan(ref)
	require.NoError(t, err)
	opts := []string{"--output", "json", "--key", "k.pub", "--insecure-ignore-tlog", "--trusted-root", "tr.json", ref}
	assert.Equal(t, []Step{
		{Name: "verify signature", Args: append([]string{"cosign", "verify"}, opts...)},
		{Name: "verify SBOM attestation", Args: append([]string{"cosign", "verify-attestation", "--type", "cyclonedx"}, opts...)},
		{Name: "verify provenance attestation", Args: append([]string{"cosign", "verify-attestation", "--type", "slsaprovenance1"}, opts...)},
	}, steps)
	_, err = Verifier{KeyPath: "k.pub", Offline: true}.Plan(ref)
	require.ErrorContains(t, err, "trusted root")
}

func TestVerifyError(t *testing.T) {
	err := VerifyError("verify signature", ExitNoSignature, "Error: no signatures found\n")
	require.ErrorContains(t, err, "verify signature: no signature or attestation found")
	require.ErrorContains(t, err, "exit code 10): Error: no signatures found")
	require.ErrorContains(t, VerifyError("verify", 12, ""), "no signature matches")
	require.ErrorContains(t, VerifyError("verify", 11, ""), "does not exist")
	require.ErrorContains(t, VerifyError("verify", 1, "boom"), "cosign failed (cosign exit code 1): boom")
	long := strings.Repeat("x", 5000)
	assert.Less(t, len(VerifyError("v", 1, long).Error()), 2100)
}
