package cosignargs

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dagger/voice/provenance"
	"dagger/voice/registryauth"
	"dagger/voice/sbom"

	"dagger/voice/registrytest"
)

const (
	regUser = "ci-user"
	regPass = "loopback-registry-password"
	keyPass = "cosign-key-password"
	// trustedRoot is a minimal Sigstore trusted root: with
	// --insecure-ignore-tlog it keeps cosign from fetching TUF metadata.
	trustedRoot = `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`
)

// cosignBin finds the cosign CLI (installed by .ci/setup) or skips.
func cosignBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("cosign")
	if err != nil {
		gobin := filepath.Join(os.Getenv("HOME"), "go", "bin", "cosign")
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gobin = filepath.Join(strings.TrimSpace(string(out)), "bin", "cosign")
		}
		if _, err := os.Stat(gobin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("cosign CLI not found on PATH nor in $(go env GOPATH)/bin: .ci/setup installs it")
			}
			t.Skip("cosign CLI not found on PATH nor in $(go env GOPATH)/bin: run .ci/setup (go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5)")
		}
		p = gobin
	}
	return p
}

// pushIndex pushes a random two-platform image index and returns its
// digest reference.
func pushIndex(t *testing.T, host, repo string) string {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, "application/vnd.oci.image.index.v1+json")
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(512, 2)
		require.NoError(t, err)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	ref, err := name.ParseReference(host + "/" + repo + ":test")
	require.NoError(t, err)
	require.NoError(t, remote.WriteIndex(ref, idx, remote.WithAuth(&authn.Basic{Username: regUser, Password: regPass})))
	d, err := idx.Digest()
	require.NoError(t, err)
	return host + "/" + repo + "@" + d.String()
}

type cosignEnv struct {
	bin  string
	env  []string
	dir  string
	logs *bytes.Buffer
}

// run executes args (as built by this package) with the secrets in the
// environment only; it returns stdout and cosign's exit code.
func (c cosignEnv) run(t *testing.T, args []string, extraEnv ...string) (string, int) {
	t.Helper()
	require.Equal(t, "cosign", args[0])
	for _, a := range args {
		for _, secret := range []string{regPass, keyPass, "PRIVATE KEY"} {
			require.NotContains(t, a, secret, "a secret reached the command line")
		}
	}
	cmd := exec.Command(c.bin, args[1:]...)
	cmd.Dir = c.dir
	cmd.Env = append(append([]string{}, c.env...), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	c.logs.WriteString(strings.Join(args, " ") + "\n" + stderr.String())
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return stdout.String(), exit.ExitCode()
	}
	require.NoError(t, err)
	return stdout.String(), 0
}

func genKey(t *testing.T, c cosignEnv, dir string) (private []byte, publicPath string) {
	t.Helper()
	cmd := exec.Command(c.bin, "generate-key-pair")
	cmd.Dir = dir
	cmd.Env = append(append([]string{}, c.env...), EnvPassword+"="+keyPass)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	private, err = os.ReadFile(filepath.Join(dir, "cosign.key"))
	require.NoError(t, err)
	return private, filepath.Join(dir, "cosign.pub")
}

// payloads decodes the in-toto statements of verify-attestation's output.
func payloads(t *testing.T, out string) []map[string]any {
	t.Helper()
	var res []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var env struct{ Payload string }
		require.NoError(t, json.Unmarshal([]byte(line), &env))
		raw, err := base64.StdEncoding.DecodeString(env.Payload)
		require.NoError(t, err)
		var st map[string]any
		require.NoError(t, json.Unmarshal(raw, &st))
		res = append(res, st)
	}
	return res
}

// TestCosignRoundTrip signs a multi-platform index on a loopback registry
// with the real cosign CLI, attests a CycloneDX SBOM and a SLSA provenance
// made by this module's packages, and verifies all three with exactly the
// argument lists the builders produce; then checks the failures.
func TestCosignRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the cosign CLI against a loopback registry")
	}
	bin := cosignBin(t)
	host := registrytest.Start(t, regUser, regPass)
	work := t.TempDir()

	dockerCfg, err := registryauth.DockerConfig(host, regUser, regPass)
	require.NoError(t, err)
	cfgDir := filepath.Join(work, "docker")
	require.NoError(t, os.MkdirAll(cfgDir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(cfgDir, "config.json"), dockerCfg, 0o600))
	trPath := filepath.Join(work, "trusted_root.json")
	require.NoError(t, os.WriteFile(trPath, []byte(trustedRoot), 0o644))

	logs := &bytes.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cosign output:\n%s", logs)
		}
	})
	c := cosignEnv{bin: bin, dir: work, logs: logs, env: []string{
		"HOME=" + work, "PATH=" + os.Getenv("PATH"),
		EnvDockerConfig + "=" + cfgDir,
		"TUF_ROOT=" + filepath.Join(work, "tuf"),
	}}
	keyDir := filepath.Join(work, "key")
	wrongDir := filepath.Join(work, "wrong")
	require.NoError(t, os.MkdirAll(keyDir, 0o700))
	require.NoError(t, os.MkdirAll(wrongDir, 0o700))
	privateKey, pubPath := genKey(t, c, keyDir)
	_, wrongPub := genKey(t, c, wrongDir)

	ref := pushIndex(t, host, "acme/voice-agent")
	unsigned := pushIndex(t, host, "acme/voice-agent")
	digest := ref[strings.Index(ref, "@sha256:")+len("@sha256:"):]

	// The predicates, made by the module's own packages.
	bi, ok := debug.ReadBuildInfo()
	require.True(t, ok)
	bom, err := sbom.Generate(bi, sbom.Options{Name: "voice-agent", Version: "1.4.2", Platform: "linux/amd64", BinarySHA256: digest,
		BaseImage: "gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639", Timestamp: time.Unix(1795698502, 0)})
	require.NoError(t, err)
	sbomJSON, err := sbom.Encode(bom)
	require.NoError(t, err)
	commit := "0123456789abcdef0123456789abcdef01234567"
	st, err := provenance.New(provenance.Options{Image: ref, Platforms: []string{"linux/amd64", "linux/arm64"}, Version: "1.4.2", Commit: commit, Package: "./agent/cmd/voice-agent"})
	require.NoError(t, err)
	predJSON, err := st.PredicateJSON()
	require.NoError(t, err)
	sbomPath, provPath := filepath.Join(work, "sbom.cdx.json"), filepath.Join(work, "provenance.json")
	require.NoError(t, os.WriteFile(sbomPath, sbomJSON, 0o644))
	require.NoError(t, os.WriteFile(provPath, predJSON, 0o644))

	secrets := []string{EnvPrivateKey + "=" + string(privateKey), EnvPassword + "=" + keyPass}
	signer := Signer{NoTlogUpload: true, Registry: Registry{AllowInsecure: true, AllowHTTP: true}}
	args, err := signer.Sign(ref)
	require.NoError(t, err)
	_, code := c.run(t, args, secrets...)
	require.Zero(t, code, "sign")
	for _, a := range []struct{ path, typ string }{{sbomPath, TypeCycloneDX}, {provPath, TypeSLSA1}} {
		args, err := signer.Attest(ref, a.path, a.typ)
		require.NoError(t, err)
		_, code := c.run(t, args, secrets...)
		require.Zero(t, code, "attest %s", a.typ)
	}

	verifier := Verifier{KeyPath: pubPath, InsecureIgnoreTlog: true, TrustedRootPath: trPath, Registry: Registry{AllowInsecure: true, AllowHTTP: true}}
	args, err = verifier.Verify(ref)
	require.NoError(t, err)
	out, code := c.run(t, args)
	require.Zero(t, code, "verify the signature")
	assert.Contains(t, out, "sha256:"+digest, "the verified payload names the digest")

	args, err = verifier.VerifyAttestation(ref, TypeCycloneDX)
	require.NoError(t, err)
	out, code = c.run(t, args)
	require.Zero(t, code, "verify the SBOM attestation")
	sts := payloads(t, out)
	require.NotEmpty(t, sts)
	assert.Equal(t, "https://cyclonedx.org/bom", sts[0]["predicateType"])
	assert.Contains(t, string(mustJSON(t, sts[0]["subject"])), digest)

	args, err = verifier.VerifyAttestation(ref, TypeSLSA1)
	require.NoError(t, err)
	out, code = c.run(t, args)
	require.Zero(t, code, "verify the provenance attestation")
	sts = payloads(t, out)
	require.NotEmpty(t, sts)
	assert.Equal(t, provenance.PredicateType, sts[0]["predicateType"])
	assert.Contains(t, string(mustJSON(t, sts[0]["predicate"])), commit, "the attested provenance names the commit")

	t.Run("tampered digest fails", func(t *testing.T) {
		last := digest[len(digest)-1:]
		flip := map[string]string{"0": "1"}[last]
		if flip == "" {
			flip = "0"
		}
		tampered := ref[:len(ref)-1] + flip
		args, err := verifier.Verify(tampered)
		require.NoError(t, err)
		_, code := c.run(t, args)
		assert.NotZero(t, code)
		args, err = verifier.VerifyAttestation(tampered, TypeSLSA1)
		require.NoError(t, err)
		_, code = c.run(t, args)
		assert.NotZero(t, code)
	})
	t.Run("unsigned image fails", func(t *testing.T) {
		args, err := verifier.Verify(unsigned)
		require.NoError(t, err)
		_, code := c.run(t, args)
		assert.Equal(t, ExitNoSignature, code, "no signatures found")
		args, err = verifier.VerifyAttestation(unsigned, TypeCycloneDX)
		require.NoError(t, err)
		_, code = c.run(t, args)
		assert.NotZero(t, code)
	})
	t.Run("wrong key fails", func(t *testing.T) {
		wrong := verifier
		wrong.KeyPath = wrongPub
		args, err := wrong.Verify(ref)
		require.NoError(t, err)
		_, code := c.run(t, args)
		assert.Equal(t, ExitNoMatchingSignature, code, "signature does not match the key")
		args, err = wrong.VerifyAttestation(ref, TypeSLSA1)
		require.NoError(t, err)
		_, code = c.run(t, args)
		assert.NotZero(t, code)
	})
	t.Run("missing registry credentials fail", func(t *testing.T) {
		args, err := verifier.Verify(ref)
		require.NoError(t, err)
		_, code := c.run(t, args, EnvDockerConfig+"="+t.TempDir())
		assert.NotZero(t, code, "the registry demands the credentials of the docker config")
	})
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
