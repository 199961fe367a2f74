// Package cosignargs builds the cosign command lines the pipeline runs to
// sign, attest and verify the agent image. No builder takes a secret:
// private key, key password and OIDC token reach cosign only through the
// environment (COSIGN_PRIVATE_KEY, COSIGN_PASSWORD, SIGSTORE_ID_TOKEN),
// registry credentials only through a docker config file (DOCKER_CONFIG).
// Every reference must be pinned by digest.
package cosignargs

import (
	"fmt"
	"net/url"
	"strings"

	"dagger/voice/imageref"
)

// Environment variables cosign reads.
const (
	// EnvPrivateKey holds the PEM private key; --key env://COSIGN_PRIVATE_KEY.
	EnvPrivateKey = "COSIGN_PRIVATE_KEY"
	// EnvPassword holds the private key's password (cosign reads it itself).
	EnvPassword = "COSIGN_PASSWORD"
	// EnvIDToken holds the OIDC token for keyless signing (GitLab id_tokens).
	EnvIDToken = "SIGSTORE_ID_TOKEN"
	// EnvDockerConfig is the directory of the registry credentials' config.json.
	EnvDockerConfig = "DOCKER_CONFIG"
)

// Predicate types attested and verified.
const (
	TypeCycloneDX = "cyclonedx"
	TypeSLSA1     = "slsaprovenance1"
)

// Registry holds registry options. They exist for the tests' loopback
// registry and are off by default; never enable them for a real registry.
type Registry struct {
	// AllowInsecure skips TLS verification (--allow-insecure-registry).
	AllowInsecure bool
	// AllowHTTP talks plain HTTP (--allow-http-registry).
	AllowHTTP bool
}

func (r Registry) args() []string {
	var a []string
	if r.AllowInsecure {
		a = append(a, "--allow-insecure-registry")
	}
	if r.AllowHTTP {
		a = append(a, "--allow-http-registry")
	}
	return a
}

// OfflineTrustedRoot is a Sigstore trusted root with no authorities at
// all. Offline verification gives it to cosign (--trusted-root) so that
// cosign does not fetch Sigstore's TUF metadata from the network; a
// key-based verification without the transparency log needs nothing else.
const OfflineTrustedRoot = `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`

// Signer configures `cosign sign` and `cosign attest`.
type Signer struct {
	// Keyless signs with a Fulcio certificate for the OIDC token in
	// SIGSTORE_ID_TOKEN; otherwise the key in COSIGN_PRIVATE_KEY is used.
	Keyless bool
	// FulcioURL and RekorURL point at a private Sigstore (the public one
	// when empty). A private Fulcio needs TrustedRootPath.
	FulcioURL, RekorURL string
	// TrustedRootPath is the private Sigstore's trusted root (Fulcio CA,
	// Rekor and CT log keys) for keyless signing against it
	// (--trusted-root; cosign checks the new signature with it).
	TrustedRootPath string
	// Offline signs with the key only, without uploading to a transparency
	// log (--tlog-upload=false): for private and air-gapped setups, verified
	// with Verifier.Offline. Key mode only. The trade-off (no audit trail of
	// what the key signed and when) is stated in ci/BUILD.md and in
	// `sign --offline`'s help.
	Offline bool
	// Registry options (test-only).
	Registry Registry
}

func checkURL(kind, s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return fmt.Errorf("%s URL %q must be an http(s) URL without credentials, e.g. https://fulcio.sigstore.dev", kind, s)
	}
	return nil
}

func checkPath(kind, p string) error {
	if p != "" && (strings.HasPrefix(p, "-") || strings.ContainsAny(p, "{\n")) {
		return fmt.Errorf("%s %q must be a file path", kind, p)
	}
	return nil
}

func (s Signer) common() ([]string, error) {
	if err := checkURL("Fulcio", s.FulcioURL); err != nil {
		return nil, err
	}
	if err := checkURL("Rekor", s.RekorURL); err != nil {
		return nil, err
	}
	if err := checkPath("trusted root path", s.TrustedRootPath); err != nil {
		return nil, err
	}
	switch {
	case s.Offline && s.Keyless:
		return nil, fmt.Errorf("keyless signing needs the transparency log: drop the offline option or sign with a key")
	case s.Offline && (s.RekorURL != "" || s.FulcioURL != "" || s.TrustedRootPath != ""):
		return nil, fmt.Errorf("offline signing uses no Sigstore service: drop the Fulcio/Rekor URLs and the trusted root")
	case !s.Keyless && s.FulcioURL != "":
		return nil, fmt.Errorf("a Fulcio URL is for keyless signing: drop it, or sign keyless with an OIDC token")
	case s.Keyless && s.FulcioURL == "" && s.RekorURL != "":
		return nil, fmt.Errorf("a private Rekor URL needs its Fulcio URL too for keyless signing")
	case s.Keyless && s.FulcioURL != "" && s.TrustedRootPath == "":
		return nil, fmt.Errorf("a private Fulcio needs its trusted root (trusted_root.json with its CA, Rekor and CT log keys): pass it, or use the public Sigstore")
	}
	a := []string{"--yes"}
	if !s.Keyless {
		a = append(a, "--key", "env://"+EnvPrivateKey)
	} else if s.FulcioURL != "" {
		a = append(a, "--fulcio-url", s.FulcioURL)
	}
	if s.RekorURL != "" {
		a = append(a, "--rekor-url", s.RekorURL)
	}
	if s.TrustedRootPath != "" {
		a = append(a, "--trusted-root", s.TrustedRootPath)
	}
	if s.Offline {
		a = append(a, "--tlog-upload=false")
	}
	return append(a, s.Registry.args()...), nil
}

func canonical(ref string) (string, error) {
	d, err := imageref.ParseDigest(ref)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// Sign returns `cosign sign` for the digest reference.
func (s Signer) Sign(ref string) ([]string, error) {
	r, err := canonical(ref)
	if err != nil {
		return nil, err
	}
	c, err := s.common()
	if err != nil {
		return nil, err
	}
	return append(append([]string{"cosign", "sign"}, c...), r), nil
}

// Attest returns `cosign attest` attaching the predicate file of the given
// type (TypeCycloneDX or TypeSLSA1) to the digest reference.
func (s Signer) Attest(ref, predicatePath, predicateType string) ([]string, error) {
	r, err := canonical(ref)
	if err != nil {
		return nil, err
	}
	if err := checkType(predicateType); err != nil {
		return nil, err
	}
	if predicatePath == "" || strings.HasPrefix(predicatePath, "-") {
		return nil, fmt.Errorf("predicate path %q must be a file path", predicatePath)
	}
	c, err := s.common()
	if err != nil {
		return nil, err
	}
	a := append([]string{"cosign", "attest", "--type", predicateType, "--predicate", predicatePath}, c...)
	return append(a, r), nil
}

func checkType(t string) error {
	if t != TypeCycloneDX && t != TypeSLSA1 {
		return fmt.Errorf("predicate type %q is not one the pipeline attests: use %s or %s", t, TypeCycloneDX, TypeSLSA1)
	}
	return nil
}

// Verifier configures `cosign verify` and `cosign verify-attestation`.
// Exactly one of KeyPath or the certificate identity and issuer is set.
type Verifier struct {
	// KeyPath is the path of the public key file (not a secret, but
	// mounted like one).
	KeyPath string
	// CertificateIdentity and CertificateOIDCIssuer identify the keyless
	// signer, e.g. "https://gitlab.com/acme/voice-agent//.gitlab-ci.yml@refs/heads/main"
	// and "https://gitlab.com".
	CertificateIdentity, CertificateOIDCIssuer string
	// Offline checks signatures made by Signer.Offline with the public key
	// alone: no transparency log (--insecure-ignore-tlog) and trust
	// material only from TrustedRootPath, which must then be a file holding
	// OfflineTrustedRoot (cosign would otherwise fetch Sigstore's TUF
	// metadata). Key mode only.
	Offline bool
	// RekorURL is a private Sigstore's Rekor the signatures were logged in
	// (needs TrustedRootPath, which holds that Rekor's key).
	RekorURL string
	// TrustedRootPath is a Sigstore trusted root file (--trusted-root): the
	// private Sigstore's (keyless), or OfflineTrustedRoot (Offline).
	TrustedRootPath string
	// Registry options (test-only).
	Registry Registry
}

func (v Verifier) common() ([]string, error) {
	hasKey := v.KeyPath != ""
	hasCert := v.CertificateIdentity != "" || v.CertificateOIDCIssuer != ""
	switch {
	case hasKey && hasCert:
		return nil, fmt.Errorf("pass either a public key or a certificate identity and OIDC issuer, not both")
	case !hasKey && !hasCert:
		return nil, fmt.Errorf("nothing to verify against: pass --key (public key) or --certificate-identity and --certificate-oidc-issuer (keyless)")
	case hasCert && (v.CertificateIdentity == "" || v.CertificateOIDCIssuer == ""):
		return nil, fmt.Errorf("keyless verification needs both --certificate-identity and --certificate-oidc-issuer")
	case v.Offline && hasCert:
		return nil, fmt.Errorf("offline verification is for key-signed images: keyless signatures are checked against the transparency log")
	case v.Offline && v.TrustedRootPath == "":
		return nil, fmt.Errorf("offline verification needs a trusted root file (cosignargs.OfflineTrustedRoot), or cosign fetches Sigstore's TUF metadata from the network")
	case v.Offline && v.RekorURL != "":
		return nil, fmt.Errorf("offline verification uses no Rekor: drop the Rekor URL")
	case v.RekorURL != "" && v.TrustedRootPath == "":
		return nil, fmt.Errorf("a private Rekor needs its Sigstore's trusted root (trusted_root.json): pass it too")
	}
	if err := checkURL("Rekor", v.RekorURL); err != nil {
		return nil, err
	}
	if err := checkPath("trusted root path", v.TrustedRootPath); err != nil {
		return nil, err
	}
	var a []string
	if hasKey {
		if strings.HasPrefix(v.KeyPath, "-") || strings.Contains(v.KeyPath, "BEGIN") {
			return nil, fmt.Errorf("public key path %q must be a file path", v.KeyPath)
		}
		a = append(a, "--key", v.KeyPath)
	} else {
		a = append(a, "--certificate-identity", v.CertificateIdentity, "--certificate-oidc-issuer", v.CertificateOIDCIssuer)
	}
	if v.RekorURL != "" {
		a = append(a, "--rekor-url", v.RekorURL)
	}
	if v.Offline {
		a = append(a, "--insecure-ignore-tlog")
	}
	if v.TrustedRootPath != "" {
		a = append(a, "--trusted-root", v.TrustedRootPath)
	}
	return append(a, v.Registry.args()...), nil
}

// Verify returns `cosign verify` for the digest reference.
func (v Verifier) Verify(ref string) ([]string, error) {
	r, err := canonical(ref)
	if err != nil {
		return nil, err
	}
	c, err := v.common()
	if err != nil {
		return nil, err
	}
	return append(append([]string{"cosign", "verify", "--output", "json"}, c...), r), nil
}

// VerifyAttestation returns `cosign verify-attestation` requiring an
// attestation of the given predicate type on the digest reference.
func (v Verifier) VerifyAttestation(ref, predicateType string) ([]string, error) {
	r, err := canonical(ref)
	if err != nil {
		return nil, err
	}
	if err := checkType(predicateType); err != nil {
		return nil, err
	}
	c, err := v.common()
	if err != nil {
		return nil, err
	}
	return append(append([]string{"cosign", "verify-attestation", "--type", predicateType, "--output", "json"}, c...), r), nil
}

// Step is one cosign run: what it does (for errors) and its arguments.
type Step struct {
	Name string
	Args []string
}

// Plan returns every cosign run that signs the digest reference and
// attests its SBOMs (CycloneDX, one file per platform) and its SLSA
// provenance predicate, in order. The module runs exactly these.
func (s Signer) Plan(ref string, sbomPaths []string, provenancePath string) ([]Step, error) {
	if len(sbomPaths) == 0 {
		return nil, fmt.Errorf("no SBOM to attest: pass one CycloneDX file per platform")
	}
	args, err := s.Sign(ref)
	if err != nil {
		return nil, err
	}
	steps := []Step{{Name: "sign", Args: args}}
	for _, p := range sbomPaths {
		args, err := s.Attest(ref, p, TypeCycloneDX)
		if err != nil {
			return nil, err
		}
		steps = append(steps, Step{Name: "attest SBOM " + p, Args: args})
	}
	args, err = s.Attest(ref, provenancePath, TypeSLSA1)
	if err != nil {
		return nil, err
	}
	return append(steps, Step{Name: "attest provenance", Args: args}), nil
}

// Plan returns the cosign runs that verify the digest reference's
// signature, its CycloneDX SBOM attestation and its SLSA provenance
// attestation, in order. The module runs exactly these; a step that exits
// non-zero is explained by VerifyError.
func (v Verifier) Plan(ref string) ([]Step, error) {
	verify, err := v.Verify(ref)
	if err != nil {
		return nil, err
	}
	sbom, err := v.VerifyAttestation(ref, TypeCycloneDX)
	if err != nil {
		return nil, err
	}
	prov, err := v.VerifyAttestation(ref, TypeSLSA1)
	if err != nil {
		return nil, err
	}
	return []Step{
		{Name: "verify signature", Args: verify},
		{Name: "verify SBOM attestation", Args: sbom},
		{Name: "verify provenance attestation", Args: prov},
	}, nil
}

// Exit codes of `cosign verify` and `cosign verify-attestation`
// (cosign's docs/exit_codes.md).
const (
	ExitNoSignature         = 10
	ExitNoSuchTag           = 11
	ExitNoMatchingSignature = 12
)

// VerifyError turns a failed verification step into an error that says
// what is wrong and what to do. stderr is cosign's error output (it holds
// no secret: secrets never reach cosign's arguments).
func VerifyError(step string, code int, stderr string) error {
	var why string
	switch code {
	case ExitNoSignature:
		why = "no signature or attestation found: sign the digest with `dagger call sign` (or `build release`) before deploying it"
	case ExitNoSuchTag:
		why = "the image does not exist in the registry: check the reference"
	case ExitNoMatchingSignature:
		why = "no signature matches the given key or certificate identity/issuer: check --key or --certificate-identity/--certificate-oidc-issuer"
	default:
		why = "cosign failed"
	}
	msg := strings.TrimSpace(stderr)
	if len(msg) > 2000 {
		msg = msg[len(msg)-2000:]
	}
	return fmt.Errorf("%s: %s (cosign exit code %d): %s", step, why, code, msg)
}
