package cosignargs

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
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

// egressTrap is an HTTP proxy on loopback that forwards nothing: cosign
// runs with it as HTTP(S)_PROXY, so every connection beyond loopback (Go
// never proxies loopback) is refused and recorded.
type egressTrap struct {
	mu    sync.Mutex
	hosts []string
	url   string
}

func startEgressTrap(t *testing.T) *egressTrap {
	t.Helper()
	e := &egressTrap{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.hosts = append(e.hosts, r.Host)
		e.mu.Unlock()
		http.Error(w, "no network beyond loopback in this test", http.StatusForbidden)
	}))
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

func (e *egressTrap) env() []string {
	return []string{"HTTPS_PROXY=" + e.url, "HTTP_PROXY=" + e.url, "https_proxy=" + e.url, "http_proxy=" + e.url, "NO_PROXY=", "no_proxy="}
}

func (e *egressTrap) seen() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.hosts...)
}

// TestCosignOfflineRoundTrip signs a multi-platform index on a loopback
// registry with the real cosign CLI in offline key mode, attests a
// CycloneDX SBOM per platform and a SLSA provenance made by this module's
// packages, and verifies all three offline, running exactly the steps
// Signer.Plan and Verifier.Plan return (what the module runs); nothing
// leaves loopback. Then the failures: tampered digest, unsigned image,
// wrong key, missing registry credentials, and the two ways cosign would
// reach for the public Sigstore without the offline options.
func TestCosignOfflineRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the cosign CLI against a loopback registry")
	}
	bin := cosignBin(t)
	host := registrytest.Start(t, regUser, regPass)
	trap := startEgressTrap(t)
	work := t.TempDir()

	dockerCfg, err := registryauth.DockerConfig(host, regUser, regPass)
	require.NoError(t, err)
	cfgDir := filepath.Join(work, "docker")
	require.NoError(t, os.MkdirAll(cfgDir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(cfgDir, "config.json"), dockerCfg, 0o600))
	trPath := filepath.Join(work, "trusted_root.json")
	require.NoError(t, os.WriteFile(trPath, []byte(OfflineTrustedRoot), 0o644))

	logs := &bytes.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cosign output:\n%s", logs)
		}
	})
	c := cosignEnv{bin: bin, dir: work, logs: logs, env: append([]string{
		"HOME=" + work, "PATH=" + os.Getenv("PATH"),
		EnvDockerConfig + "=" + cfgDir,
		"TUF_ROOT=" + filepath.Join(work, "tuf"),
	}, trap.env()...)}
	keyDir := filepath.Join(work, "key")
	wrongDir := filepath.Join(work, "wrong")
	require.NoError(t, os.MkdirAll(keyDir, 0o700))
	require.NoError(t, os.MkdirAll(wrongDir, 0o700))
	privateKey, pubPath := genKey(t, c, keyDir)
	_, wrongPub := genKey(t, c, wrongDir)

	ref := pushIndex(t, host, "acme/voice-agent")
	unsigned := pushIndex(t, host, "acme/voice-agent")
	digest := ref[strings.Index(ref, "@sha256:")+len("@sha256:"):]

	// The predicates, made by the module's own packages, as sign.go
	// attests them (one SBOM per platform, the provenance's predicate).
	bi, ok := debug.ReadBuildInfo()
	require.True(t, ok)
	var sbomPaths []string
	for _, plat := range []string{"linux/amd64", "linux/arm64"} {
		bom, err := sbom.Generate(bi, sbom.Options{Name: "voice-agent", Version: "1.4.2", Platform: plat, BinarySHA256: digest,
			BaseImage: "gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639", Timestamp: time.Unix(1795698502, 0)})
		require.NoError(t, err)
		sbomJSON, err := sbom.Encode(bom)
		require.NoError(t, err)
		p := filepath.Join(work, "sbom-"+strings.ReplaceAll(plat, "/", "-")+".cdx.json")
		require.NoError(t, os.WriteFile(p, sbomJSON, 0o644))
		sbomPaths = append(sbomPaths, p)
	}
	commit := "0123456789abcdef0123456789abcdef01234567"
	st, err := provenance.New(provenance.Options{Image: ref, Platforms: []string{"linux/amd64", "linux/arm64"}, Version: "1.4.2", Commit: commit, Package: "./agent/cmd/voice-agent"})
	require.NoError(t, err)
	stJSON, err := st.JSON()
	require.NoError(t, err)
	predJSON, err := provenance.PredicateOf(stJSON)
	require.NoError(t, err)
	provPath := filepath.Join(work, "provenance.predicate.json")
	require.NoError(t, os.WriteFile(provPath, predJSON, 0o644))

	secrets := []string{EnvPrivateKey + "=" + string(privateKey), EnvPassword + "=" + keyPass}
	testRegistry := Registry{AllowInsecure: true, AllowHTTP: true}
	signSteps, err := Signer{Offline: true, Registry: testRegistry}.Plan(ref, sbomPaths, provPath)
	require.NoError(t, err)
	require.Len(t, signSteps, 4)
	for _, s := range signSteps {
		_, code := c.run(t, s.Args, secrets...)
		require.Zero(t, code, s.Name)
	}

	verifier := Verifier{KeyPath: pubPath, Offline: true, TrustedRootPath: trPath, Registry: testRegistry}
	verifySteps, err := verifier.Plan(ref)
	require.NoError(t, err)
	require.Len(t, verifySteps, 3)
	var outs []string
	for _, s := range verifySteps {
		out, code := c.run(t, s.Args)
		require.Zero(t, code, s.Name)
		outs = append(outs, out)
	}
	assert.Contains(t, outs[0], "sha256:"+digest, "the verified payload names the digest")
	sts := payloads(t, outs[1])
	require.Len(t, sts, 2, "one SBOM attestation per platform")
	for _, st := range sts {
		assert.Equal(t, "https://cyclonedx.org/bom", st["predicateType"])
		assert.Contains(t, string(mustJSON(t, st["subject"])), digest)
	}
	sts = payloads(t, outs[2])
	require.NotEmpty(t, sts)
	assert.Equal(t, provenance.PredicateType, sts[0]["predicateType"])
	assert.Contains(t, string(mustJSON(t, sts[0]["predicate"])), commit, "the attested provenance names the commit")
	require.Empty(t, trap.seen(), "signing and verifying offline reached beyond loopback")

	// runAll runs every step and returns the first non-zero exit code.
	runAll := func(t *testing.T, steps []Step, env ...string) int {
		for _, s := range steps {
			if _, code := c.run(t, s.Args, env...); code != 0 {
				return code
			}
		}
		return 0
	}
	t.Run("tampered digest fails", func(t *testing.T) {
		last := digest[len(digest)-1:]
		flip := map[string]string{"0": "1"}[last]
		if flip == "" {
			flip = "0"
		}
		steps, err := verifier.Plan(ref[:len(ref)-1] + flip)
		require.NoError(t, err)
		for _, s := range steps {
			_, code := c.run(t, s.Args)
			assert.NotZero(t, code, s.Name)
		}
	})
	t.Run("unsigned image fails", func(t *testing.T) {
		steps, err := verifier.Plan(unsigned)
		require.NoError(t, err)
		_, code := c.run(t, steps[0].Args)
		assert.Equal(t, ExitNoSignature, code, "no signatures found")
		for _, s := range steps[1:] {
			_, code := c.run(t, s.Args)
			assert.NotZero(t, code, s.Name)
		}
	})
	t.Run("wrong key fails", func(t *testing.T) {
		wrong := verifier
		wrong.KeyPath = wrongPub
		steps, err := wrong.Plan(ref)
		require.NoError(t, err)
		_, code := c.run(t, steps[0].Args)
		assert.Equal(t, ExitNoMatchingSignature, code, "signature does not match the key")
		for _, s := range steps[1:] {
			_, code := c.run(t, s.Args)
			assert.NotZero(t, code, s.Name)
		}
	})
	t.Run("missing registry credentials fail", func(t *testing.T) {
		assert.NotZero(t, runAll(t, verifySteps, EnvDockerConfig+"="+t.TempDir()), "the registry demands the credentials of the docker config")
	})
	require.Empty(t, trap.seen(), "the failures above reached beyond loopback")

	// Without the offline options cosign goes to the public Sigstore,
	// which the trap refuses: the options are what keeps it on loopback.
	t.Run("signing without offline reaches for the transparency log", func(t *testing.T) {
		steps, err := Signer{Registry: testRegistry}.Plan(unsigned, sbomPaths, provPath)
		require.NoError(t, err)
		_, code := c.run(t, steps[0].Args, secrets...)
		assert.NotZero(t, code, "no transparency log, no signature")
		assert.Contains(t, strings.Join(trap.seen(), " "), "rekor.sigstore.dev", "cosign tried to reach the public Rekor")
	})
	// cosign then carries on without it (a warning), but in an air-gapped
	// network that attempt waits for a timeout; the trusted root file
	// avoids it.
	t.Run("verifying without the trusted root reaches for TUF", func(t *testing.T) {
		args := slices.Clone(verifySteps[0].Args)
		i := slices.Index(args, "--trusted-root")
		require.GreaterOrEqual(t, i, 0)
		args = slices.Delete(args, i, i+2)
		c.run(t, args)
		assert.Contains(t, strings.Join(trap.seen(), " "), "tuf-repo-cdn.sigstore.dev", "cosign tried to fetch Sigstore's TUF metadata")
	})
}

// TestCosignKnowsTheFlags checks every flag the builders emit, in every
// mode, against the installed cosign's own --help, so a renamed or
// removed flag fails here rather than in a pipeline.
func TestCosignKnowsTheFlags(t *testing.T) {
	bin := cosignBin(t)
	help := map[string]string{}
	helpOf := func(sub string) string {
		if h, ok := help[sub]; ok {
			return h
		}
		out, err := exec.Command(bin, sub, "--help").CombinedOutput()
		require.NoError(t, err, "%s", out)
		help[sub] = string(out)
		return help[sub]
	}
	const ref = "registry.example.com/acme/voice-agent@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	var steps []Step
	for _, s := range []Signer{
		{}, {Offline: true}, {Keyless: true}, {RekorURL: "https://rekor.example.com"},
		{Keyless: true, FulcioURL: "https://fulcio.example.com", RekorURL: "https://rekor.example.com", TrustedRootPath: "tr.json"},
		{Offline: true, Registry: Registry{AllowInsecure: true, AllowHTTP: true}},
	} {
		p, err := s.Plan(ref, []string{"s.json"}, "p.json")
		require.NoError(t, err)
		steps = append(steps, p...)
	}
	for _, v := range []Verifier{
		{KeyPath: "k.pub"}, {KeyPath: "k.pub", Offline: true, TrustedRootPath: "tr.json", Registry: Registry{AllowInsecure: true, AllowHTTP: true}},
		{CertificateIdentity: "i", CertificateOIDCIssuer: "https://gitlab.com"},
		{CertificateIdentity: "i", CertificateOIDCIssuer: "https://gitlab.com", RekorURL: "https://rekor.example.com", TrustedRootPath: "tr.json"},
	} {
		p, err := v.Plan(ref)
		require.NoError(t, err)
		steps = append(steps, p...)
	}
	checked := map[string]bool{}
	for _, s := range steps {
		sub := s.Args[1]
		for _, a := range s.Args[2:] {
			if !strings.HasPrefix(a, "--") {
				continue
			}
			flag, _, _ := strings.Cut(a, "=")
			// Flags are listed as "    --name=default:" or "    -n, --name=default:".
			if !regexp.MustCompile(`(?m)^\s+(-\w, )?` + regexp.QuoteMeta(flag) + `=`).MatchString(helpOf(sub)) {
				t.Errorf("cosign %s has no flag %s", sub, flag)
			}
			checked[sub+" "+flag] = true
		}
	}
	for _, want := range []string{"sign --tlog-upload", "attest --tlog-upload", "verify --insecure-ignore-tlog", "verify --trusted-root", "verify-attestation --trusted-root", "sign --fulcio-url", "sign --trusted-root", "verify --rekor-url"} {
		assert.True(t, checked[want], "%s is checked", want)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
