package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"dagger/voice/cosignargs"
	"dagger/voice/gobuild"
	"dagger/voice/imagemeta"
	"dagger/voice/imageref"
	"dagger/voice/internal/dagger"
	"dagger/voice/platform"
	provenancepkg "dagger/voice/provenance"
	"dagger/voice/registryauth"
)

const (
	// cosignUser runs cosign as distroless's non-root user.
	cosignUser = "65532"
	// cosignHome is cosign's home: Sigstore's TUF metadata is cached there.
	cosignHome = "/home/cosign"
	// dockerConfigDir holds the mounted registry credentials (config.json).
	dockerConfigDir = "/run/docker"
	// publicKeyPath is where Verify mounts the public key.
	publicKeyPath = "/run/cosign/cosign.pub"
	// predicateDir holds the SBOM and provenance files to attest.
	predicateDir = "/work"
	// trustedRootPath is where the Sigstore trusted root is mounted: a
	// private Sigstore's, or cosignargs.OfflineTrustedRoot for --offline.
	trustedRootPath = "/run/sigstore/trusted_root.json"
)

// cosign returns the cosign container for a registry host: non-root, a
// cache volume as home, registry credentials (when given) only as a
// mounted docker config secret, and a run nonce so that signing and
// verifying really run every time (their results depend on the registry,
// not only on the inputs).
func (m *Voice) cosign(ctx context.Context, registry, username string, password *dagger.Secret) (*dagger.Container, error) {
	ctr := dag.Container().
		From(m.CosignImage).
		WithUser(cosignUser).
		WithMountedCache(cosignHome, dag.CacheVolume("voice-cosign-home"), dagger.ContainerWithMountedCacheOpts{Owner: cosignUser}).
		WithEnvVariable("HOME", cosignHome).
		WithEnvVariable("VOICE_COSIGN_RUN", time.Now().UTC().Format(time.RFC3339Nano))
	if (username == "") != (password == nil) {
		return nil, fmt.Errorf("pass both --registry-username and --registry-password (e.g. $CI_REGISTRY_USER and env://CI_REGISTRY_PASSWORD), or neither")
	}
	if password == nil {
		return ctr, nil
	}
	plain, err := password.Plaintext(ctx)
	if err != nil {
		return nil, fmt.Errorf("read registry password: %w", err)
	}
	cfg, err := registryauth.DockerConfig(registry, username, plain)
	if err != nil {
		return nil, err
	}
	// The secret's name is derived from its content, so equal credentials
	// share one secret and different ones never collide.
	sum := sha256.Sum256(cfg)
	secret := dag.SetSecret("voice-docker-config-"+hex.EncodeToString(sum[:8]), string(cfg))
	return ctr.
		WithMountedSecret(dockerConfigDir+"/config.json", secret, dagger.ContainerWithMountedSecretOpts{Owner: cosignUser, Mode: 0o400}).
		WithEnvVariable(cosignargs.EnvDockerConfig, dockerConfigDir), nil
}

// Sign signs an image digest with cosign and attests its SBOMs
// (CycloneDX) and its SLSA provenance, in one of two modes:
//
// key-based:
//
//	dagger call sign --ref=$REF --key=env://COSIGN_PRIVATE_KEY --key-password=env://COSIGN_PASSWORD \
//	  --registry-username=$CI_REGISTRY_USER --registry-password=env://CI_REGISTRY_PASSWORD --sbom=sbom-linux-amd64.cdx.json,sbom-linux-arm64.cdx.json --provenance=provenance.json
//
// keyless (GitLab id_tokens SIGSTORE_ID_TOKEN with aud "sigstore"):
//
//	dagger call sign --ref=$REF --id-token=env://SIGSTORE_ID_TOKEN ...
//
// offline, key-based without any Sigstore service (a private or air-gapped
// setup; verify with `verify --offline`):
//
//	dagger call sign --ref=$REF --key=env://COSIGN_PRIVATE_KEY --key-password=env://COSIGN_PASSWORD --offline ...
//
// Secrets reach cosign only as environment variables and mounted files.
// `build release` publishes and calls this in one go.
//
// +cache="never"
func (m *Voice) Sign(
	ctx context.Context,
	// Image reference pinned by digest (repo@sha256:...), the output of publish. Tags are refused.
	ref string,
	// Cosign private key (PEM), e.g. env://COSIGN_PRIVATE_KEY. Key-based mode.
	//
	// +optional
	key *dagger.Secret,
	// Password of the private key, e.g. env://COSIGN_PASSWORD.
	//
	// +optional
	keyPassword *dagger.Secret,
	// OIDC identity token, e.g. env://SIGSTORE_ID_TOKEN. Keyless mode.
	//
	// +optional
	idToken *dagger.Secret,
	// Fulcio URL of a private Sigstore (keyless only; public Sigstore when empty).
	//
	// +optional
	fulcioUrl string,
	// Rekor URL of a private Sigstore (public Sigstore when empty).
	//
	// +optional
	rekorUrl string,
	// Registry user, e.g. $CI_REGISTRY_USER.
	//
	// +optional
	registryUsername string,
	// Registry password or token, e.g. env://CI_REGISTRY_PASSWORD.
	//
	// +optional
	registryPassword *dagger.Secret,
	// CycloneDX SBOM files to attest (one per platform, from build sbom-directory).
	// Without them the SBOMs are rebuilt from the published image: its
	// binaries' build information and its base image labels.
	//
	// +optional
	sbom []*dagger.File,
	// SLSA provenance to attest: the statement from build provenance, or a
	// bare predicate. Without it the provenance is made from the published
	// image's labels (source, revision, version, created) and the ci-* arguments.
	//
	// +optional
	provenance *dagger.File,
	// Platforms of the image whose SBOMs are rebuilt when --sbom is not given.
	//
	// +optional
	// +default=["linux/amd64", "linux/arm64"]
	platforms []dagger.Platform,
	// $CI_COMMIT_REF_NAME, for a provenance made here.
	//
	// +optional
	ciCommitRefName string,
	// $CI_PIPELINE_URL, for a provenance made here.
	//
	// +optional
	ciPipelineUrl string,
	// $CI_JOB_URL, for a provenance made here.
	//
	// +optional
	ciJobUrl string,
	// Key-based signing without the transparency log: nothing is uploaded
	// to Rekor, so signing needs no network beyond the registry (private or
	// air-gapped setups); verify with `verify --offline`. The trade-off:
	// without the log nobody can audit what the key signed and when; a
	// signature made with a stolen key looks like yours and cannot be told
	// apart by its time from one made before the key was revoked. The
	// public key is the only trust anchor: keep the private key in a secret
	// store and rotate it when in doubt.
	//
	// +optional
	offline bool,
	// Trusted root (trusted_root.json: Fulcio CA, Rekor and CT log keys) of
	// the private Sigstore given by --fulcio-url and --rekor-url (keyless).
	//
	// +optional
	trustedRoot *dagger.File,
) (string, error) {
	d, err := imageref.ParseDigest(ref)
	if err != nil {
		return "", err
	}
	signer := cosignargs.Signer{Keyless: idToken != nil, FulcioURL: fulcioUrl, RekorURL: rekorUrl, Offline: offline}
	if trustedRoot != nil {
		signer.TrustedRootPath = trustedRootPath
	}
	switch {
	case key != nil && idToken != nil:
		return "", fmt.Errorf("pass either --key (key-based) or --id-token (keyless), not both")
	case key == nil && idToken == nil:
		return "", fmt.Errorf("nothing to sign with: pass --key=env://COSIGN_PRIVATE_KEY --key-password=env://COSIGN_PASSWORD, or --id-token=env://SIGSTORE_ID_TOKEN")
	case key == nil && keyPassword != nil:
		return "", fmt.Errorf("--key-password is only for key-based signing: pass --key too")
	}
	// Check the options before describing the image.
	if _, err := signer.Sign(d.String()); err != nil {
		return "", err
	}
	if len(sbom) == 0 || provenance == nil {
		sboms, prov, err := m.imageAttestations(ctx, d, platforms, registryUsername, registryPassword, provenancepkg.GitLab{
			CommitRefName: ciCommitRefName, PipelineURL: ciPipelineUrl, JobURL: ciJobUrl,
		})
		if err != nil {
			return "", fmt.Errorf("describe %s for its attestations (or pass --sbom and --provenance): %w", d, err)
		}
		if len(sbom) == 0 {
			sbom = sboms
		}
		if provenance == nil {
			provenance = prov
		}
	}
	ctr, err := m.cosign(ctx, d.Registry, registryUsername, registryPassword)
	if err != nil {
		return "", err
	}
	if key != nil {
		ctr = ctr.WithSecretVariable(cosignargs.EnvPrivateKey, key)
		if keyPassword != nil {
			ctr = ctr.WithSecretVariable(cosignargs.EnvPassword, keyPassword)
		} else {
			// An unencrypted key: cosign must not prompt.
			ctr = ctr.WithEnvVariable(cosignargs.EnvPassword, "")
		}
	} else {
		ctr = ctr.WithSecretVariable(cosignargs.EnvIDToken, idToken)
	}

	provDoc, err := provenance.Contents(ctx)
	if err != nil {
		return "", fmt.Errorf("read provenance: %w", err)
	}
	pred, err := provenancePredicate(provDoc)
	if err != nil {
		return "", err
	}

	// Run exactly the steps cosignargs plans (what its cosign test runs).
	sbomPaths := make([]string, len(sbom))
	for i, f := range sbom {
		sbomPaths[i] = fmt.Sprintf("%s/sbom-%d.cdx.json", predicateDir, i)
		ctr = ctr.WithMountedFile(sbomPaths[i], f)
	}
	provPath := predicateDir + "/provenance.predicate.json"
	steps, err := signer.Plan(d.String(), sbomPaths, provPath)
	if err != nil {
		return "", err
	}
	ctr = ctr.WithMountedFile(provPath, dag.Directory().WithNewFile("p.json", string(pred)).File("p.json"))
	if trustedRoot != nil {
		ctr = ctr.WithMountedFile(trustedRootPath, trustedRoot)
	}
	for _, s := range steps {
		ctr = ctr.WithExec(s.Args)
	}
	if _, err := ctr.Sync(ctx); err != nil {
		return "", fmt.Errorf("sign %s: %w", d, err)
	}
	return fmt.Sprintf("signed %s and attested %d SBOM(s) and the SLSA provenance", d, len(sbom)), nil
}

func provenancePredicate(doc string) ([]byte, error) {
	pred, err := provenancepkg.PredicateOf([]byte(doc))
	if err != nil {
		return nil, fmt.Errorf("provenance file: %w", err)
	}
	return pred, nil
}

// Verify fails unless the image digest has a valid cosign signature, a
// CycloneDX SBOM attestation and a SLSA provenance v1 attestation, all
// made with the given key or by the given keyless identity. The deploy
// step runs it before bumping the image:
//
//	dagger call verify --ref=$REF --key=env://COSIGN_PUBLIC_KEY
//	dagger call verify --ref=$REF --key=env://COSIGN_PUBLIC_KEY --offline
//	dagger call verify --ref=$REF --certificate-identity="$CI_PROJECT_URL//.gitlab-ci.yml@refs/heads/main" --certificate-oidc-issuer=$CI_SERVER_URL
//
// +cache="never"
func (m *Voice) Verify(
	ctx context.Context,
	// Image reference pinned by digest (repo@sha256:...). Tags are refused.
	ref string,
	// Cosign public key (PEM) for key-based verification, e.g. env://COSIGN_PUBLIC_KEY or file://cosign.pub.
	//
	// +optional
	key *dagger.Secret,
	// Keyless: the signer's certificate identity, e.g. https://gitlab.com/acme/voice-agent//.gitlab-ci.yml@refs/heads/main.
	//
	// +optional
	certificateIdentity string,
	// Keyless: the OIDC issuer of the identity, e.g. https://gitlab.com.
	//
	// +optional
	certificateOidcIssuer string,
	// Registry user, e.g. $CI_REGISTRY_USER.
	//
	// +optional
	registryUsername string,
	// Registry password or token, e.g. env://CI_REGISTRY_PASSWORD.
	//
	// +optional
	registryPassword *dagger.Secret,
	// Check a key-signed image without the transparency log (signed with
	// `sign --offline`): the public key alone, and no network beyond the
	// registry (no Rekor, no Sigstore TUF metadata). Key mode only; see
	// `sign --offline` for what is given up.
	//
	// +optional
	offline bool,
	// Rekor URL of a private Sigstore the signatures were logged in (needs --trusted-root).
	//
	// +optional
	rekorUrl string,
	// Trusted root (trusted_root.json: Fulcio CA, Rekor and CT log keys) of a private Sigstore.
	//
	// +optional
	trustedRoot *dagger.File,
) (string, error) {
	d, err := imageref.ParseDigest(ref)
	if err != nil {
		return "", err
	}
	v := cosignargs.Verifier{CertificateIdentity: certificateIdentity, CertificateOIDCIssuer: certificateOidcIssuer, Offline: offline, RekorURL: rekorUrl}
	if key != nil {
		v.KeyPath = publicKeyPath
	}
	if offline || trustedRoot != nil {
		v.TrustedRootPath = trustedRootPath
	}
	// Check the arguments before starting anything; run exactly these
	// steps (what cosignargs' cosign test runs).
	steps, err := v.Plan(d.String())
	if err != nil {
		return "", err
	}
	if offline && trustedRoot == nil {
		trustedRoot = dag.Directory().WithNewFile("trusted_root.json", cosignargs.OfflineTrustedRoot).File("trusted_root.json")
	}
	ctr, err := m.cosign(ctx, d.Registry, registryUsername, registryPassword)
	if err != nil {
		return "", err
	}
	if key != nil {
		ctr = ctr.WithMountedSecret(publicKeyPath, key, dagger.ContainerWithMountedSecretOpts{Owner: cosignUser, Mode: 0o400})
	}
	if trustedRoot != nil {
		ctr = ctr.WithMountedFile(trustedRootPath, trustedRoot)
	}
	for _, s := range steps {
		run := ctr.WithExec(s.Args, dagger.ContainerWithExecOpts{Expect: dagger.ReturnTypeAny})
		code, err := run.ExitCode(ctx)
		if err != nil {
			return "", fmt.Errorf("%s of %s: %w", s.Name, d, err)
		}
		if code != 0 {
			stderr, _ := run.Stderr(ctx)
			return "", fmt.Errorf("%s: %w", d, cosignargs.VerifyError(s.Name, code, stderr))
		}
	}
	by := "key"
	if offline {
		by = "key, offline (no transparency log)"
	}
	if key == nil {
		by = fmt.Sprintf("identity %s (issuer %s)", certificateIdentity, certificateOidcIssuer)
	}
	return fmt.Sprintf("verified %s: signature, %s and %s attestations by %s", d, cosignargs.TypeCycloneDX, cosignargs.TypeSLSA1, strings.TrimSpace(by)), nil
}

// imageAttestations makes the SBOM of every platform and the provenance of
// a published image from the image itself: the binary's Go build
// information and SHA-256, and the labels Build sets (version, revision,
// created, source, base image). They match what Build produced.
func (m *Voice) imageAttestations(ctx context.Context, d imageref.Digest, platforms []dagger.Platform, username string, password *dagger.Secret, gl provenancepkg.GitLab) ([]*dagger.File, *dagger.File, error) {
	if len(platforms) == 0 {
		platforms = []dagger.Platform{"linux/amd64", "linux/arm64"}
	}
	names := make([]string, len(platforms))
	for i, p := range platforms {
		names[i] = string(p)
	}
	plats, err := platform.ParseList(names)
	if err != nil {
		return nil, nil, err
	}
	type described struct {
		labels map[string]string
		sum    string
		doc    []byte
		pkg    string
	}
	out := make([]described, len(plats))
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range plats {
		img := dag.Container(dagger.ContainerOpts{Platform: dagger.Platform(p.String())})
		if password != nil {
			img = img.WithRegistryAuth(d.Registry, username, password)
		}
		img = img.From(d.String())
		g.Go(func() error {
			labels := map[string]string{}
			for _, name := range []string{imagemeta.LabelVersion, imagemeta.LabelRevision, imagemeta.LabelCreated, imagemeta.LabelSource, imagemeta.LabelBaseName, imagemeta.LabelBaseDigest} {
				v, err := img.Label(gctx, name)
				if err != nil {
					return fmt.Errorf("%s: read label %s: %w", p, name, err)
				}
				labels[name] = v
			}
			for _, name := range []string{imagemeta.LabelVersion, imagemeta.LabelRevision, imagemeta.LabelCreated, imagemeta.LabelBaseName, imagemeta.LabelBaseDigest} {
				if labels[name] == "" {
					return fmt.Errorf("%s: the image has no %s label: was it made by `dagger call build --commit ... --created ...`?", p, name)
				}
			}
			commitTime, err := imagemeta.ParseCommitTime(labels[imagemeta.LabelCreated])
			if err != nil {
				return err
			}
			inspect := describeExecs(dag.Container().From(m.GoImage).WithFile("/in/voice-agent", img.File(agentPath)), "/in")
			base := labels[imagemeta.LabelBaseName] + "@" + labels[imagemeta.LabelBaseDigest]
			sum, doc, info, err := describeBinary(gctx, inspect, "/in", p.String(), labels[imagemeta.LabelVersion], labels[imagemeta.LabelRevision], base, commitTime)
			if err != nil {
				return err
			}
			pkg := gobuild.DefaultPackage
			if rel, ok := strings.CutPrefix(info.Path, info.Main.Path+"/"); ok && info.Main.Path != "" {
				pkg = "./" + rel
			}
			out[i] = described{labels: labels, sum: sum, doc: doc, pkg: pkg}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	first := out[0].labels
	for i := range out {
		for _, name := range []string{imagemeta.LabelVersion, imagemeta.LabelRevision, imagemeta.LabelCreated, imagemeta.LabelBaseName, imagemeta.LabelBaseDigest} {
			if out[i].labels[name] != first[name] {
				return nil, nil, fmt.Errorf("platforms %s and %s disagree on label %s (%q, %q): the index mixes builds", plats[0], plats[i], name, first[name], out[i].labels[name])
			}
		}
	}
	commitTime, err := imagemeta.ParseCommitTime(first[imagemeta.LabelCreated])
	if err != nil {
		return nil, nil, err
	}
	sboms := make([]*dagger.File, len(plats))
	sums := make([]string, len(plats))
	docs := make([]string, len(plats))
	built := make([]dagger.Platform, len(plats))
	for i, p := range plats {
		sboms[i] = sbomFile(p.String(), out[i].doc, commitTime)
		sums[i], docs[i], built[i] = out[i].sum, string(out[i].doc), dagger.Platform(p.String())
	}
	st, err := newStatement(provenancepkg.Options{
		Image: d.String(), Version: first[imagemeta.LabelVersion], Commit: first[imagemeta.LabelRevision], Package: out[0].pkg,
		SourceURL: first[imagemeta.LabelSource], CommitTime: commitTime, GoImage: m.GoImage,
		BaseImage: first[imagemeta.LabelBaseName] + "@" + first[imagemeta.LabelBaseDigest], GitLab: gl,
	}, built, sums, docs)
	if err != nil {
		return nil, nil, err
	}
	doc, err := st.JSON()
	if err != nil {
		return nil, nil, err
	}
	return sboms, dag.Directory().WithNewFile("provenance.json", string(doc)).File("provenance.json"), nil
}
