package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"dagger/voice/attest"
	"dagger/voice/cosignargs"
	"dagger/voice/imageref"
	"dagger/voice/internal/dagger"
	"dagger/voice/platform"
	slsa "dagger/voice/provenance"
	"dagger/voice/registryauth"
	"dagger/voice/sbom"
)

const (
	// cosignUser runs cosign as distroless's non-root user.
	cosignUser = "65532"
	// cosignHome is cosign's home: Sigstore's TUF metadata is cached there.
	cosignHome = "/home/cosign"
	// dockerConfigDir holds the mounted registry credentials (config.json).
	dockerConfigDir = "/run/docker"
	// publicKeyPath is where verify mounts the public key.
	publicKeyPath = "/run/cosign/cosign.pub"
	// trustedRootPath is where the Sigstore trusted root is mounted: a
	// private Sigstore's, or cosignargs.OfflineTrustedRoot offline.
	trustedRootPath = "/run/sigstore/trusted_root.json"
	// predicateDir holds the SBOM and provenance files to attest.
	predicateDir = "/work"
)

// SignSettings is how images are signed and verified: with a cosign key
// pair, or keyless with an OIDC identity. Set with with-signing-key or
// with-keyless-signing; sign, verify, deploy-repo bump and release use it.
type SignSettings struct {
	// Keyless: sign with a Fulcio certificate for an OIDC token.
	Keyless bool
	// Private key (PEM) for signing.
	Key *dagger.Secret
	// Password of the private key.
	KeyPassword *dagger.Secret
	// Public key (PEM) for verifying.
	PublicKey *dagger.Secret
	// Offline: no transparency log when signing nor when verifying (key mode).
	Offline bool
	// OIDC token for keyless signing.
	IdToken *dagger.Secret
	// Keyless: the signer's certificate identity and its OIDC issuer.
	CertificateIdentity   string
	CertificateOidcIssuer string
	// Private Sigstore: Fulcio and Rekor URLs and its trusted root.
	FulcioUrl   string
	RekorUrl    string
	TrustedRoot *dagger.File
}

// WithSigningKey signs and verifies with a cosign key pair (cosign
// generate-key-pair). Sign needs the private key, verify the public key;
// give what the job needs.
//
// By default signatures are also recorded in the transparency log
// (rekor.sigstore.dev, or --rekor-url with its --trusted-root). With
// --offline nothing leaves your network (private and air-gapped
// registries): the signature is stored only in the registry and verify
// trusts the public key alone. The trade-off: without the log nobody can
// audit what the key signed and when, so a signature made with a stolen
// key cannot be told apart from yours; keep the private key in a secret
// store and rotate it when in doubt.
//
//	dagger call with-signing-key --key=env://COSIGN_PRIVATE_KEY --password=env://COSIGN_PASSWORD --offline sign --image=$REF
//	dagger call with-signing-key --public-key=env://COSIGN_PUBLIC_KEY --offline verify --image=$REF
func (m *Voice) WithSigningKey(
	// Cosign private key (PEM), e.g. env://COSIGN_PRIVATE_KEY; needed to sign.
	//
	// +optional
	key *dagger.Secret,
	// Password of the private key, e.g. env://COSIGN_PASSWORD.
	//
	// +optional
	password *dagger.Secret,
	// Cosign public key (PEM), e.g. env://COSIGN_PUBLIC_KEY or file://cosign.pub; needed to verify.
	//
	// +optional
	publicKey *dagger.Secret,
	// No transparency log: sign without uploading to Rekor and verify with
	// the public key alone (private or air-gapped setups). The signature
	// then has no public, timestamped record: a stolen key's signatures
	// cannot be told apart from yours.
	//
	// +optional
	offline bool,
	// Rekor URL of a private transparency log (public Rekor when empty); pass its --trusted-root too.
	//
	// +optional
	rekorUrl string,
	// Trusted root (JSON) of the private Sigstore whose Rekor is named by --rekor-url.
	//
	// +optional
	trustedRoot *dagger.File,
) (*Voice, error) {
	if key == nil && publicKey == nil {
		return nil, fmt.Errorf("with-signing-key needs --key (to sign) or --public-key (to verify), or both")
	}
	if key == nil && password != nil {
		return nil, fmt.Errorf("--password is the private key's: pass --key too")
	}
	if offline && (rekorUrl != "" || trustedRoot != nil) {
		return nil, fmt.Errorf("--offline uses no transparency log: drop --rekor-url and --trusted-root, or drop --offline")
	}
	out := *m
	out.Signing = &SignSettings{Key: key, KeyPassword: password, PublicKey: publicKey, Offline: offline, RekorUrl: rekorUrl, TrustedRoot: trustedRoot}
	return &out, nil
}

// WithKeylessSigning signs with a short-lived Fulcio certificate for the
// job's OIDC identity (GitLab id_tokens with aud "sigstore") and verifies
// against that identity. Public Sigstore by default; a private one with
// --fulcio-url, --rekor-url and its --trusted-root.
//
//	dagger call with-keyless-signing --id-token=env://SIGSTORE_ID_TOKEN sign --image=$REF
//	dagger call with-keyless-signing --certificate-identity="$CI_PROJECT_URL//.gitlab-ci.yml@refs/heads/main" --certificate-oidc-issuer=$CI_SERVER_URL verify --image=$REF
func (m *Voice) WithKeylessSigning(
	// OIDC identity token, e.g. env://SIGSTORE_ID_TOKEN; needed to sign.
	//
	// +optional
	idToken *dagger.Secret,
	// Certificate identity a signature must carry, e.g.
	// https://gitlab.com/acme/voice-agent//.gitlab-ci.yml@refs/heads/main; needed to verify.
	//
	// +optional
	certificateIdentity string,
	// OIDC issuer of the identity, e.g. $CI_SERVER_URL.
	//
	// +optional
	// +default="https://gitlab.com"
	certificateOidcIssuer string,
	// Fulcio URL of a private Sigstore (public Sigstore when empty).
	//
	// +optional
	fulcioUrl string,
	// Rekor URL of a private Sigstore (public Sigstore when empty).
	//
	// +optional
	rekorUrl string,
	// Trusted root (JSON) of a private Sigstore: its Fulcio CA, Rekor and CT log keys.
	//
	// +optional
	trustedRoot *dagger.File,
) (*Voice, error) {
	if idToken == nil && certificateIdentity == "" {
		return nil, fmt.Errorf("with-keyless-signing needs --id-token (to sign) or --certificate-identity (to verify), or both")
	}
	out := *m
	out.Signing = &SignSettings{
		Keyless: true, IdToken: idToken, CertificateIdentity: certificateIdentity,
		CertificateOidcIssuer: orDefault(certificateOidcIssuer, "https://gitlab.com"),
		FulcioUrl:             fulcioUrl, RekorUrl: rekorUrl, TrustedRoot: trustedRoot,
	}
	return &out, nil
}

// signer returns the cosign signing options, or an error naming what is
// missing.
func (s *SignSettings) signer() (cosignargs.Signer, error) {
	switch {
	case s == nil:
		return cosignargs.Signer{}, fmt.Errorf("nothing to sign with: chain with-signing-key --key=env://COSIGN_PRIVATE_KEY --password=env://COSIGN_PASSWORD, or with-keyless-signing --id-token=env://SIGSTORE_ID_TOKEN, before this step")
	case s.Keyless && s.IdToken == nil:
		return cosignargs.Signer{}, fmt.Errorf("keyless signing needs the OIDC token: pass --id-token=env://SIGSTORE_ID_TOKEN to with-keyless-signing")
	case !s.Keyless && s.Key == nil:
		return cosignargs.Signer{}, fmt.Errorf("signing needs the private key: pass --key=env://COSIGN_PRIVATE_KEY to with-signing-key")
	}
	signer := cosignargs.Signer{Keyless: s.Keyless, FulcioURL: s.FulcioUrl, RekorURL: s.RekorUrl, Offline: s.Offline}
	if s.TrustedRoot != nil {
		signer.TrustedRootPath = trustedRootPath
	}
	return signer, nil
}

// canVerify reports whether the settings hold something to verify with.
func (s *SignSettings) canVerify() bool {
	return s != nil && (s.PublicKey != nil || s.CertificateIdentity != "")
}

// verifier returns the cosign verification options (with the paths where
// verify mounts the key and trusted root), or an error naming what is
// missing.
func (s *SignSettings) verifier() (cosignargs.Verifier, error) {
	switch {
	case s == nil:
		return cosignargs.Verifier{}, fmt.Errorf("nothing to verify against: chain with-signing-key --public-key=env://COSIGN_PUBLIC_KEY, or with-keyless-signing --certificate-identity=... --certificate-oidc-issuer=..., before this step")
	case !s.canVerify():
		return cosignargs.Verifier{}, fmt.Errorf("nothing to verify against: pass --public-key to with-signing-key, or --certificate-identity to with-keyless-signing")
	}
	v := cosignargs.Verifier{Offline: s.Offline, RekorURL: s.RekorUrl}
	if s.Keyless {
		v.CertificateIdentity, v.CertificateOIDCIssuer = s.CertificateIdentity, s.CertificateOidcIssuer
	} else {
		v.KeyPath = publicKeyPath
	}
	if s.TrustedRoot != nil || s.Offline {
		v.TrustedRootPath = trustedRootPath
	}
	return v, nil
}

// trustedRootFile is the trusted root verify mounts: the private
// Sigstore's, or the empty one of offline verification.
func (s *SignSettings) trustedRootFile() *dagger.File {
	if s.TrustedRoot != nil {
		return s.TrustedRoot
	}
	return dag.Directory().WithNewFile("trusted_root.json", cosignargs.OfflineTrustedRoot).File("trusted_root.json")
}

// cosign returns the cosign container for a registry host: non-root, a
// cache volume as home, the registry's credentials (with-registry-auth)
// only as a mounted docker config secret, and a run nonce so that signing
// and verifying really run every time (their results depend on the
// registry, not only on the inputs).
func (m *Voice) cosign(ctx context.Context, registry string) (*dagger.Container, error) {
	ctr := dag.Container().
		From(m.CosignImage).
		WithUser(cosignUser).
		WithMountedCache(cosignHome, dag.CacheVolume("voice-cosign-home"), dagger.ContainerWithMountedCacheOpts{Owner: cosignUser}).
		WithEnvVariable("HOME", cosignHome).
		WithEnvVariable("VOICE_COSIGN_RUN", time.Now().UTC().Format(time.RFC3339Nano))
	auth := m.registryAuth(registry)
	if auth == nil {
		return ctr, nil
	}
	plain, err := auth.Secret.Plaintext(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the registry secret of %s: %w", registry, err)
	}
	cfg, err := registryauth.DockerConfig(registry, auth.Username, strings.TrimSpace(plain))
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
// (CycloneDX) and its SLSA provenance, with the settings of
// with-signing-key or with-keyless-signing:
//
//	dagger call with-registry-auth --address=$CI_REGISTRY --username=$CI_REGISTRY_USER --secret=env://CI_REGISTRY_PASSWORD \
//	  with-keyless-signing --id-token=env://SIGSTORE_ID_TOKEN sign --image=$REF
//
// Without --sbom and --provenance they are rebuilt from the published
// image itself. Secrets reach cosign only as environment variables and
// mounted files. `build ... release` publishes and signs in one go.
//
// +cache="never"
func (m *Voice) Sign(
	ctx context.Context,
	// Image reference pinned by digest (repo@sha256:...), the output of publish. Tags are refused.
	image string,
	// CycloneDX SBOM files to attest (one per platform, from build sbom-directory).
	// Without them the SBOMs are rebuilt from the published image: its
	// binaries' build information and its base image labels.
	//
	// +optional
	sbom []*dagger.File,
	// SLSA provenance to attest: the statement from build provenance, or a
	// bare predicate. Without it the provenance is made from the published
	// image's labels and the commit-ref-name, pipeline-url and job-url arguments.
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
	commitRefName string,
	// $CI_PIPELINE_URL, for a provenance made here.
	//
	// +optional
	pipelineUrl string,
	// $CI_JOB_URL, for a provenance made here.
	//
	// +optional
	jobUrl string,
) (string, error) {
	return m.sign(ctx, image, attestations{
		Sboms: sbom, Provenance: provenance, Platforms: platforms,
		GitLab: slsa.GitLab{CommitRefName: commitRefName, PipelineURL: pipelineUrl, JobURL: jobUrl},
	})
}

// attestations is what sign attests; missing SBOMs and provenance are
// rebuilt from the published image.
type attestations struct {
	Sboms      []*dagger.File
	Provenance *dagger.File
	// Platforms whose SBOMs are rebuilt (default: amd64 and arm64).
	Platforms []dagger.Platform
	// GitLab CI's variables, for a provenance made here.
	GitLab slsa.GitLab
}

func (m *Voice) sign(ctx context.Context, ref string, a attestations) (string, error) {
	d, err := imageref.ParseDigest(ref)
	if err != nil {
		return "", err
	}
	signer, err := m.Signing.signer()
	if err != nil {
		return "", err
	}
	// Check the options before describing the image.
	if _, err := signer.Sign(d.String()); err != nil {
		return "", err
	}
	if len(a.Sboms) == 0 || a.Provenance == nil {
		sboms, prov, err := m.imageAttestations(ctx, d, a.Platforms, a.GitLab)
		if err != nil {
			return "", fmt.Errorf("describe %s for its attestations (or pass --sbom and --provenance): %w", d, err)
		}
		if len(a.Sboms) == 0 {
			a.Sboms = sboms
		}
		if a.Provenance == nil {
			a.Provenance = prov
		}
	}
	ctr, err := m.cosign(ctx, d.Registry)
	if err != nil {
		return "", err
	}
	s := m.Signing
	if s.Keyless {
		ctr = ctr.WithSecretVariable(cosignargs.EnvIDToken, s.IdToken)
	} else {
		ctr = ctr.WithSecretVariable(cosignargs.EnvPrivateKey, s.Key)
		if s.KeyPassword != nil {
			ctr = ctr.WithSecretVariable(cosignargs.EnvPassword, s.KeyPassword)
		} else {
			// An unencrypted key: cosign must not prompt.
			ctr = ctr.WithEnvVariable(cosignargs.EnvPassword, "")
		}
	}
	provDoc, err := a.Provenance.Contents(ctx)
	if err != nil {
		return "", fmt.Errorf("read provenance: %w", err)
	}
	pred, err := slsa.PredicateOf([]byte(provDoc))
	if err != nil {
		return "", fmt.Errorf("provenance file: %w", err)
	}
	// Run exactly the steps cosignargs plans (what its cosign test runs).
	sbomPaths := make([]string, len(a.Sboms))
	for i, f := range a.Sboms {
		sbomPaths[i] = fmt.Sprintf("%s/sbom-%d.cdx.json", predicateDir, i)
		ctr = ctr.WithMountedFile(sbomPaths[i], f)
	}
	provPath := predicateDir + "/provenance.predicate.json"
	steps, err := signer.Plan(d.String(), sbomPaths, provPath)
	if err != nil {
		return "", err
	}
	ctr = ctr.WithMountedFile(provPath, dag.Directory().WithNewFile("p.json", string(pred)).File("p.json"))
	if signer.TrustedRootPath != "" {
		ctr = ctr.WithMountedFile(trustedRootPath, s.TrustedRoot, dagger.ContainerWithMountedFileOpts{Owner: cosignUser})
	}
	for _, st := range steps {
		ctr = ctr.WithExec(st.Args)
	}
	if _, err := ctr.Sync(ctx); err != nil {
		return "", fmt.Errorf("sign %s: %w", d, err)
	}
	return fmt.Sprintf("signed %s and attested %d SBOM(s) and the SLSA provenance", d, len(a.Sboms)), nil
}

// Verify fails unless the image digest has a valid cosign signature, a
// CycloneDX SBOM attestation and a SLSA provenance v1 attestation, all
// made with the key or by the identity of with-signing-key or
// with-keyless-signing. Deploy-repo bump and release run it before
// deploying:
//
//	dagger call with-signing-key --public-key=env://COSIGN_PUBLIC_KEY verify --image=$REF
//	dagger call with-keyless-signing --certificate-identity="$CI_PROJECT_URL//.gitlab-ci.yml@refs/heads/main" --certificate-oidc-issuer=$CI_SERVER_URL verify --image=$REF
//
// +cache="never"
func (m *Voice) Verify(
	ctx context.Context,
	// Image reference pinned by digest (repo@sha256:...). Tags are refused.
	image string,
) (string, error) {
	return m.verify(ctx, image)
}

func (m *Voice) verify(ctx context.Context, ref string) (string, error) {
	d, err := imageref.ParseDigest(ref)
	if err != nil {
		return "", err
	}
	v, err := m.Signing.verifier()
	if err != nil {
		return "", err
	}
	// Check the arguments before starting anything; run exactly these
	// steps (what cosignargs' cosign test runs).
	steps, err := v.Plan(d.String())
	if err != nil {
		return "", err
	}
	ctr, err := m.cosign(ctx, d.Registry)
	if err != nil {
		return "", err
	}
	s := m.Signing
	if v.KeyPath != "" {
		ctr = ctr.WithMountedSecret(publicKeyPath, s.PublicKey, dagger.ContainerWithMountedSecretOpts{Owner: cosignUser, Mode: 0o400})
	}
	if v.TrustedRootPath != "" {
		ctr = ctr.WithMountedFile(trustedRootPath, s.trustedRootFile(), dagger.ContainerWithMountedFileOpts{Owner: cosignUser})
	}
	for _, st := range steps {
		run := ctr.WithExec(st.Args, dagger.ContainerWithExecOpts{Expect: dagger.ReturnTypeAny})
		code, err := run.ExitCode(ctx)
		if err != nil {
			return "", fmt.Errorf("%s of %s: %w", st.Name, d, err)
		}
		if code != 0 {
			stderr, _ := run.Stderr(ctx)
			return "", fmt.Errorf("%s: %w", d, cosignargs.VerifyError(st.Name, code, stderr))
		}
	}
	by := "key"
	if s.Keyless {
		by = fmt.Sprintf("identity %s (issuer %s)", s.CertificateIdentity, s.CertificateOidcIssuer)
	}
	if s.Offline {
		by += ", offline (no transparency log)"
	}
	return fmt.Sprintf("verified %s: signature, %s and %s attestations by %s", d, cosignargs.TypeCycloneDX, cosignargs.TypeSLSA1, by), nil
}

// imageAttestations makes the SBOM of every platform and the provenance of
// a published image from the image itself: the binary's Go build
// information and SHA-256, and the labels Build sets (attest.FromLabels
// checks them). They match what Build produced.
func (m *Voice) imageAttestations(ctx context.Context, d imageref.Ref, platforms []dagger.Platform, gl slsa.GitLab) ([]*dagger.File, *dagger.File, error) {
	plats, err := parsePlatforms(platforms)
	if err != nil {
		return nil, nil, err
	}
	labels := make([]map[string]string, len(plats))
	images := make([]*dagger.Container, len(plats))
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range plats {
		img := dag.Container(dagger.ContainerOpts{Platform: dagger.Platform(p.String())})
		if auth := m.registryAuth(d.Registry); auth != nil {
			img = img.WithRegistryAuth(d.Registry, auth.Username, auth.Secret)
		}
		images[i] = img.From(d.String())
		labels[i] = map[string]string{}
		g.Go(func() error {
			for _, name := range attest.ReadLabels {
				v, err := images[i].Label(gctx, name)
				if err != nil {
					return fmt.Errorf("%s: read label %s: %w", p, name, err)
				}
				labels[i][name] = v
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	pub, err := attest.FromLabels(plats, labels)
	if err != nil {
		return nil, nil, err
	}
	built := make([]attest.Built, len(plats))
	infos := make([]string, len(plats))
	g, gctx = errgroup.WithContext(ctx)
	for i, p := range plats {
		g.Go(func() error {
			inspect := describeExecs(dag.Container().From(m.GoImage).WithFile("/in/voice-agent", images[i].File(agentPath)), "/in")
			desc, err := describeBinary(gctx, inspect, "/in", p, sbomMeta{Version: pub.Version, Revision: pub.Revision, BaseImage: pub.BaseImage, CommitTime: pub.CommitTime})
			if err != nil {
				return err
			}
			built[i], infos[i] = desc.Built, desc.MainPackage
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	st, err := attest.Provenance(slsa.Options{
		Image: d.String(), Version: pub.Version, Commit: pub.Revision, Package: infos[0],
		SourceURL: pub.Source, CommitTime: pub.CommitTime, GoImage: m.GoImage, BaseImage: pub.BaseImage, GitLab: gl,
	}, built, moduleIdentity(pub.Revision))
	if err != nil {
		return nil, nil, err
	}
	sboms := make([]*dagger.File, len(built))
	for i, b := range built {
		sboms[i] = sbomFile(b, pub.CommitTime)
	}
	prov, err := statementFile(st)
	return sboms, prov, err
}

// sbomMeta is what an SBOM records besides the binary.
type sbomMeta struct {
	Version, Revision, BaseImage string
	CommitTime                   time.Time
}

// described is a binary as describeBinary read it.
type described struct {
	attest.Built
	// MainPackage the binary was built from.
	MainPackage string
}

// describeBinary reads what describeExecs wrote and returns the binary's
// SHA-256, its platform's CycloneDX SBOM and its main package.
func describeBinary(ctx context.Context, ctr *dagger.Container, dir string, p platform.Platform, meta sbomMeta) (described, error) {
	sumLine, err := ctr.File(dir + "/voice-agent.sha256").Contents(ctx)
	if err != nil {
		return described{}, fmt.Errorf("build %s: %w", p, err)
	}
	sum := strings.Fields(sumLine)
	if len(sum) == 0 {
		return described{}, fmt.Errorf("build %s: sha256sum printed nothing", p)
	}
	infoJSON, err := ctr.File(dir + "/buildinfo.json").Contents(ctx)
	if err != nil {
		return described{}, fmt.Errorf("build %s: read build information: %w", p, err)
	}
	info, err := sbom.ParseBuildInfo([]byte(infoJSON))
	if err != nil {
		return described{}, fmt.Errorf("build %s: %w", p, err)
	}
	bom, err := sbom.Generate(info, sbom.Options{
		Name: "voice-agent", Version: meta.Version, Platform: p.String(), BinarySHA256: sum[0],
		BaseImage: meta.BaseImage, Timestamp: meta.CommitTime, ToolName: "dagger/voice", ToolVersion: meta.Revision,
	})
	if err != nil {
		return described{}, fmt.Errorf("SBOM of %s: %w", p, err)
	}
	doc, err := sbom.Encode(bom)
	if err != nil {
		return described{}, err
	}
	return described{Built: attest.Built{Platform: p, BinarySHA256: sum[0], SBOM: doc}, MainPackage: attest.MainPackage(info)}, nil
}
