package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"dagger/voice/attest"
	"dagger/voice/gobuild"
	"dagger/voice/imagemeta"
	"dagger/voice/imageref"
	"dagger/voice/internal/dagger"
	"dagger/voice/ocilayout"
	"dagger/voice/ocipush"
	"dagger/voice/platform"
	"dagger/voice/provenance"
)

const (
	// daggerVersion is the SDK and engine version, named in the provenance.
	daggerVersion = "v0.21.8"
	// zeroCommit marks a build without a known commit (local experiments);
	// such a build cannot be published.
	zeroCommit = "0000000000000000000000000000000000000000"
	// agentPath is where the binary lives in the image.
	agentPath = "/app/voice-agent"
	// agentPort is the port the agent listens on.
	agentPort = 8080
	// dataDir is the image's working directory, writable by nonRootUser.
	dataDir = "/data"
	// nonRootUser is distroless's "nonroot" user.
	nonRootUser = "65532"
)

// Build is the agent cross-compiled for every platform, each on the
// pinned base image. Export it as a multi-platform OCI tarball, publish it
// (then sign it), or inspect one platform's container. Lists are in the
// order of Platforms.
type Build struct {
	// Platforms built, e.g. linux/amd64, linux/arm64.
	Platforms []dagger.Platform
	// One image per platform.
	Containers []*dagger.Container
	// The agent binary per platform.
	Binaries []*dagger.File
	// SHA-256 (hex) of each binary.
	BinarySha256 []string
	// CycloneDX JSON SBOM per platform.
	Sboms []*dagger.File
	// Version stamped into the binary and the image label.
	Version string
	// Source commit (full SHA) stamped into the binary.
	Commit string
	// Commit time (RFC 3339, UTC): every timestamp of the image.
	CommitTime string
	// Repository URL of the source ($CI_PROJECT_URL).
	SourceUrl string
	// Main package built.
	MainPackage string
	// Go toolchain image used (pinned by digest).
	GoImage string
	// Base image used (pinned by digest).
	BaseImage string
	// The pipeline it was built by: its registry credentials and signing
	// settings publish and release it.
	//
	// +private
	Pipeline *Voice
}

// buildOptions is what a build is made of, besides the source.
type buildOptions struct {
	Platforms   []dagger.Platform
	Version     string
	Commit      string
	Created     string
	SourceURL   string
	MainPackage string
}

// Build cross-compiles the agent on the engine's native platform for each
// target platform (GOOS/GOARCH, CGO_ENABLED=0, -trimpath, no build ID or
// VCS stamping; version and commit stamped with -ldflags) with the Go
// module and build caches as cache volumes, and puts each binary on the
// base image with commit-time timestamps, USER 65532, the entrypoint, port
// 8080 and OCI labels. An SBOM is written per platform.
//
//	dagger call build --version=1.4.2 --commit=$(git rev-parse HEAD) --created=$(git log -1 --format=%cI) tarball export --path=voice.tar
func (m *Voice) Build(
	ctx context.Context,
	// Repository root holding the product's go.mod.
	//
	// +defaultPath="/"
	// +ignore=[".git", ".ci", "ci", "deploy", "**/node_modules", "voice.tar", "junit.xml", "reports"]
	source *dagger.Directory,
	// Target platforms.
	//
	// +optional
	// +default=["linux/amd64", "linux/arm64"]
	platforms []dagger.Platform,
	// Version stamped into the binary and the image label, e.g. $CI_COMMIT_TAG.
	//
	// +optional
	// +default="0.0.0-dev"
	version string,
	// Full commit SHA of the source, e.g. $CI_COMMIT_SHA or $(git rev-parse HEAD).
	// Without it the build is for local use only and cannot be published.
	//
	// +optional
	commit string,
	// Commit time: RFC 3339 ($CI_COMMIT_TIMESTAMP, git log -1 --format=%cI) or
	// Unix seconds ($SOURCE_DATE_EPOCH). It is the image's creation time and
	// every file timestamp: the clock is never read.
	//
	// +optional
	// +default="1970-01-01T00:00:00Z"
	created string,
	// Repository URL for the image's source label and the provenance ($CI_PROJECT_URL).
	//
	// +optional
	sourceUrl string,
	// Main package to build, relative to the repository root.
	//
	// +optional
	// +default="./agent/cmd/voice-agent"
	mainPackage string,
) (*Build, error) {
	return m.build(ctx, source, buildOptions{
		Platforms: platforms, Version: version, Commit: commit, Created: created, SourceURL: sourceUrl, MainPackage: mainPackage,
	})
}

func (m *Voice) build(ctx context.Context, source *dagger.Directory, o buildOptions) (*Build, error) {
	version, commit, created, sourceUrl, mainPackage := o.Version, o.Commit, o.Created, o.SourceURL, o.MainPackage
	if version == "" {
		version = "0.0.0-dev"
	}
	if commit == "" {
		commit = zeroCommit
	}
	if created == "" {
		created = "0"
	}
	if mainPackage == "" {
		mainPackage = gobuild.DefaultPackage
	}
	plats, err := parsePlatforms(o.Platforms)
	if err != nil {
		return nil, err
	}
	commitTime, err := imagemeta.ParseCommitTime(created)
	if err != nil {
		return nil, err
	}
	base, err := imageref.ParseDigest(m.BaseImage)
	if err != nil {
		return nil, fmt.Errorf("base image must be pinned by digest: %w", err)
	}
	meta := sbomMeta{Version: version, BaseImage: m.BaseImage, CommitTime: commitTime}
	if commit != zeroCommit {
		meta.Revision = commit
	}
	labels := imagemeta.Labels(imagemeta.Meta{
		Title: "voice-agent", Source: sourceUrl, Revision: meta.Revision, Version: version, Created: commitTime,
		BaseName: base.RepositoryTag(), BaseDigest: base.Digest,
	})

	b := &Build{
		Platforms:    make([]dagger.Platform, len(plats)),
		Containers:   make([]*dagger.Container, len(plats)),
		Binaries:     make([]*dagger.File, len(plats)),
		BinarySha256: make([]string, len(plats)),
		Sboms:        make([]*dagger.File, len(plats)),
		Version:      version,
		Commit:       commit,
		CommitTime:   commitTime.Format(time.RFC3339),
		SourceUrl:    sourceUrl,
		MainPackage:  mainPackage,
		GoImage:      m.GoImage,
		BaseImage:    m.BaseImage,
		Pipeline:     m,
	}
	// Build the platforms in parallel: each waits for its compile to read
	// the build information and hash.
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range plats {
		opts := gobuild.Options{
			Package: mainPackage, Output: "/out/voice-agent", Platform: p, Version: version, Commit: commit,
		}
		args, err := opts.Args()
		if err != nil {
			return nil, err
		}
		builder := m.goEnv(source)
		for _, kv := range opts.Env() {
			builder = builder.WithEnvVariable(kv[0], kv[1])
		}
		builder = builder.
			WithExec([]string{"mkdir", "-p", "/out"}).
			WithExec(args)
		builder = describeExecs(builder, "/out")

		bin := builder.File("/out/voice-agent").WithTimestamps(int(commitTime.Unix()))
		app := dag.Directory().
			WithFile("voice-agent", bin, dagger.DirectoryWithFileOpts{Permissions: 0o755}).
			WithTimestamps(int(commitTime.Unix()))
		ctr := dag.Container(dagger.ContainerOpts{Platform: dagger.Platform(p.String())}).
			From(m.BaseImage).
			WithDirectory("/app", app, dagger.ContainerWithDirectoryOpts{Owner: "0:0"}).
			// The only writable place: the working directory, owned by the
			// non-root user (the agent's default database is data/schedule.db
			// under it; Kubernetes mounts a volume at /data).
			WithDirectory(dataDir, dag.Directory().WithTimestamps(int(commitTime.Unix())),
				dagger.ContainerWithDirectoryOpts{Owner: nonRootUser + ":" + nonRootUser}).
			WithUser(nonRootUser).
			WithWorkdir(dataDir).
			WithEntrypoint([]string{agentPath}).
			WithExposedPort(agentPort)
		for _, l := range labels {
			ctr = ctr.WithLabel(l.Name, l.Value)
		}
		b.Platforms[i] = dagger.Platform(p.String())
		b.Containers[i] = ctr
		b.Binaries[i] = bin

		g.Go(func() error {
			desc, err := describeBinary(gctx, builder, "/out", p, meta)
			if err != nil {
				return err
			}
			b.BinarySha256[i] = desc.BinarySHA256
			b.Sboms[i] = sbomFile(desc.Built, commitTime)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return b, nil
}

// parsePlatforms checks a list of platforms (default: amd64 and arm64).
func parsePlatforms(platforms []dagger.Platform) ([]platform.Platform, error) {
	if len(platforms) == 0 {
		platforms = []dagger.Platform{"linux/amd64", "linux/arm64"}
	}
	names := make([]string, len(platforms))
	for i, p := range platforms {
		names[i] = string(p)
	}
	return platform.ParseList(names)
}

// describeExecs adds, to a container holding dir/voice-agent, the files
// describeBinary reads: the Go build information and the SHA-256.
func describeExecs(ctr *dagger.Container, dir string) *dagger.Container {
	return ctr.
		WithExec([]string{"go", "version", "-m", "-json", dir + "/voice-agent"}, dagger.ContainerWithExecOpts{RedirectStdout: dir + "/buildinfo.json"}).
		WithExec([]string{"sha256sum", dir + "/voice-agent"}, dagger.ContainerWithExecOpts{RedirectStdout: dir + "/voice-agent.sha256"})
}

// sbomFile stores a platform's SBOM as a file with the commit time as
// timestamp.
func sbomFile(b attest.Built, commitTime time.Time) *dagger.File {
	name := attest.SBOMName(b.Platform)
	return dag.Directory().
		WithNewFile(name, string(b.SBOM)).
		WithTimestamps(int(commitTime.Unix())).
		File(name)
}

// statementFile stores a provenance statement as provenance.json.
func statementFile(st *provenance.Statement) (*dagger.File, error) {
	doc, err := st.JSON()
	if err != nil {
		return nil, err
	}
	return dag.Directory().WithNewFile("provenance.json", string(doc)).File("provenance.json"), nil
}

// moduleIdentity names this module at a commit in the provenance.
func moduleIdentity(commit string) attest.Module {
	return attest.Module{Version: commit, DaggerVersion: daggerVersion}
}

// index returns the position of a platform in the build (linux/amd64 when
// empty).
func (b *Build) index(p dagger.Platform) (int, error) {
	want, err := platform.Parse(orDefault(string(p), "linux/amd64"))
	if err != nil {
		return 0, err
	}
	for i, have := range b.Platforms {
		if string(have) == want.String() {
			return i, nil
		}
	}
	return 0, fmt.Errorf("platform %s was not built (built: %v): add it to --platforms", want, b.Platforms)
}

// Container returns one platform's image, e.g. to run or inspect it:
//
//	dagger call build container --platform=linux/amd64 with-exec --args=/app/voice-agent,-version stdout
func (b *Build) Container(
	// Platform of the image.
	//
	// +optional
	// +default="linux/amd64"
	platform dagger.Platform,
) (*dagger.Container, error) {
	i, err := b.index(platform)
	if err != nil {
		return nil, err
	}
	return b.Containers[i], nil
}

// Sbom returns one platform's CycloneDX JSON SBOM:
//
//	dagger call build sbom --platform=linux/arm64 export --path=sbom-linux-arm64.cdx.json
func (b *Build) Sbom(
	// Platform of the image.
	//
	// +optional
	// +default="linux/amd64"
	platform dagger.Platform,
) (*dagger.File, error) {
	i, err := b.index(platform)
	if err != nil {
		return nil, err
	}
	return b.Sboms[i], nil
}

// SbomDirectory returns every platform's SBOM in one directory
// (sbom-<os>-<arch>.cdx.json), e.g. for GitLab artifacts:
//
//	dagger call build sbom-directory export --path=sbom
func (b *Build) SbomDirectory() *dagger.Directory {
	dir := dag.Directory()
	for i, p := range b.Platforms {
		plat, err := platform.Parse(string(p))
		if err != nil {
			continue // Build wrote only parsed platforms
		}
		dir = dir.WithFile(attest.SBOMName(plat), b.Sboms[i])
	}
	return dir
}

// Tarball returns all platforms as one multi-platform OCI image tarball,
// for laptops without a registry (`docker load` or `podman load`). It is
// the image publish pushes, digest for digest: the timestamps the engine
// puts in the image configs and in the entries of the layers the build
// adds are set to the commit time and those layers are recompressed with
// fixed settings, so the same build gives the same digest every time, on
// any engine.
//
//	dagger call build tarball export --path=voice.tar
func (b *Build) Tarball(ctx context.Context) (*dagger.File, error) {
	img, err := b.image(ctx)
	if err != nil {
		return nil, err
	}
	return img.file, nil
}

// builtImage is the normalized image tarball in the module's working
// directory.
type builtImage struct {
	path   string // on the module's disk
	file   *dagger.File
	digest string
}

// image exports the engine's multi-platform tarball into the module's
// working directory and normalizes it (ocilayout.Normalize): the digest
// then depends only on the content and the commit time, on any engine.
func (b *Build) image(ctx context.Context) (*builtImage, error) {
	if len(b.Containers) == 0 {
		return nil, fmt.Errorf("nothing to export: the build has no platforms")
	}
	created, err := time.Parse(time.RFC3339, b.CommitTime)
	if err != nil {
		return nil, fmt.Errorf("build has no valid commit time %q: %w", b.CommitTime, err)
	}
	dir, err := os.MkdirTemp(".", "image-")
	if err != nil {
		return nil, fmt.Errorf("make a working directory for the image: %w", err)
	}
	raw, err := filepath.Abs(filepath.Join(dir, "engine.tar"))
	if err != nil {
		return nil, err
	}
	engineTar := dag.Container().AsTarball(dagger.ContainerAsTarballOpts{
		PlatformVariants: b.Containers,
		MediaTypes:       dagger.ImageMediaTypesOcimediaTypes,
	})
	if _, err := engineTar.Export(ctx, raw); err != nil {
		return nil, fmt.Errorf("export the image tarball: %w", err)
	}
	base, err := b.baseDiffIDs(ctx, dir)
	if err != nil {
		return nil, err
	}
	in, err := os.Open(raw)
	if err != nil {
		return nil, fmt.Errorf("read the image tarball: %w", err)
	}
	defer in.Close()
	outPath := filepath.Join(dir, "image.tar")
	out, err := os.Create(outPath)
	if err != nil {
		return nil, err
	}
	// The layers the build adds get commit-time entries and fixed gzip;
	// the base image's layers stay as they are.
	digest, err := ocilayout.Normalize(in, out, created, ocilayout.KeepBaseLayers(base...))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	_ = os.Remove(raw)
	return &builtImage{path: outPath, file: dag.CurrentModule().WorkdirFile(outPath), digest: digest}, nil
}

// baseDiffIDs exports the base image of every platform and returns its
// layers' diffIDs, the layers Normalize keeps byte for byte.
func (b *Build) baseDiffIDs(ctx context.Context, dir string) ([]string, error) {
	bases := make([]*dagger.Container, len(b.Platforms))
	for i, p := range b.Platforms {
		bases[i] = dag.Container(dagger.ContainerOpts{Platform: p}).From(b.BaseImage)
	}
	path, err := filepath.Abs(filepath.Join(dir, "base.tar"))
	if err != nil {
		return nil, err
	}
	if _, err := dag.Container().AsTarball(dagger.ContainerAsTarballOpts{PlatformVariants: bases, MediaTypes: dagger.ImageMediaTypesOcimediaTypes}).Export(ctx, path); err != nil {
		return nil, fmt.Errorf("export the base image %s: %w", b.BaseImage, err)
	}
	defer os.Remove(path)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ids, err := ocilayout.DiffIDs(f)
	if err != nil {
		return nil, fmt.Errorf("base image %s: %w", b.BaseImage, err)
	}
	return ids, nil
}

// Publish pushes all platforms as one multi-platform image index and
// returns its digest reference (repo@sha256:...), which every later step
// uses instead of the tag. What is pushed is the Tarball, byte for byte
// (go-containerregistry), so a rerun publishes the same digest. The
// registry's credentials come from with-registry-auth (none: anonymous):
//
//	dagger call with-registry-auth --address=$CI_REGISTRY --username=$CI_REGISTRY_USER --secret=env://CI_REGISTRY_PASSWORD \
//	  build --version=$CI_COMMIT_TAG --commit=$CI_COMMIT_SHA --created=$CI_COMMIT_TIMESTAMP --source-url=$CI_PROJECT_URL \
//	  publish --address=$CI_REGISTRY_IMAGE:$CI_COMMIT_TAG
//
// +cache="never"
func (b *Build) Publish(
	ctx context.Context,
	// Registry address with tag, e.g. registry.gitlab.com/acme/voice-agent:1.4.2.
	address string,
) (string, error) {
	return b.publish(ctx, address)
}

func (b *Build) publish(ctx context.Context, address string) (string, error) {
	if b.Commit == "" || b.Commit == zeroCommit {
		return "", fmt.Errorf("refusing to publish a build without a commit: pass --commit=$CI_COMMIT_SHA and --created=$CI_COMMIT_TIMESTAMP to build")
	}
	if len(b.Containers) == 0 {
		return "", fmt.Errorf("nothing to publish: the build has no platforms")
	}
	addr, err := imageref.ParseAddress(address)
	if err != nil {
		return "", err
	}
	opts := ocipush.Options{Address: address}
	if b.Pipeline != nil {
		if auth := b.Pipeline.registryAuth(addr.Registry); auth != nil {
			pw, err := auth.Secret.Plaintext(ctx)
			if err != nil {
				return "", fmt.Errorf("read the registry secret of %s: %w", addr.Registry, err)
			}
			opts.Username, opts.Password = auth.Username, strings.TrimSpace(pw)
		}
	}
	img, err := b.image(ctx)
	if err != nil {
		return "", err
	}
	return ocipush.Push(ctx, img.path, opts)
}

// Provenance returns the SLSA provenance v1 in-toto statement for a
// published image: builder (this module at the commit), source repository
// and commit, build parameters, resolved dependencies and the digests of
// the image, the binaries and the SBOMs. Pass GitLab's variables:
//
//	dagger call build ... provenance --image=$REF --pipeline-url=$CI_PIPELINE_URL --job-url=$CI_JOB_URL export --path=provenance.json
func (b *Build) Provenance(
	ctx context.Context,
	// Published digest reference (repo@sha256:...), the output of publish.
	image string,
	// $CI_COMMIT_REF_NAME: branch or tag built.
	//
	// +optional
	commitRefName string,
	// $CI_PIPELINE_URL.
	//
	// +optional
	pipelineUrl string,
	// $CI_JOB_URL: the invocation id.
	//
	// +optional
	jobUrl string,
	// $CI_JOB_STARTED_AT (RFC 3339).
	//
	// +optional
	jobStartedAt string,
	// $CI_RUNNER_ID.
	//
	// +optional
	runnerId string,
) (*dagger.File, error) {
	return b.provenance(ctx, image, provenance.GitLab{
		CommitRefName: commitRefName, PipelineURL: pipelineUrl, JobURL: jobUrl,
		JobStartedAt: jobStartedAt, RunnerID: runnerId,
	})
}

func (b *Build) provenance(ctx context.Context, image string, gl provenance.GitLab) (*dagger.File, error) {
	if b.Commit == zeroCommit {
		return nil, fmt.Errorf("no commit: pass --commit=$CI_COMMIT_SHA to build")
	}
	commitTime, err := imagemeta.ParseCommitTime(b.CommitTime)
	if err != nil {
		return nil, err
	}
	built := make([]attest.Built, len(b.Sboms))
	for i, f := range b.Sboms {
		p, err := platform.Parse(string(b.Platforms[i]))
		if err != nil {
			return nil, err
		}
		doc, err := f.Contents(ctx)
		if err != nil {
			return nil, fmt.Errorf("read SBOM of %s: %w", p, err)
		}
		built[i] = attest.Built{Platform: p, BinarySHA256: b.BinarySha256[i], SBOM: []byte(doc)}
	}
	st, err := attest.Provenance(provenance.Options{
		Image: image, Version: b.Version, Commit: b.Commit, Package: b.MainPackage,
		SourceURL: b.SourceUrl, CommitTime: commitTime, GoImage: b.GoImage, BaseImage: b.BaseImage, GitLab: gl,
	}, built, moduleIdentity(b.Commit))
	if err != nil {
		return nil, err
	}
	return statementFile(st)
}

// Release publishes the image, then signs its digest and attests every
// SBOM and the provenance with cosign, and returns the digest reference.
// Registry credentials and signing settings come from the module's
// with-registry-auth and with-signing-key / with-keyless-signing:
//
//	dagger call with-registry-auth --address=$CI_REGISTRY --username=$CI_REGISTRY_USER --secret=env://CI_REGISTRY_PASSWORD \
//	  with-keyless-signing --id-token=env://SIGSTORE_ID_TOKEN \
//	  build --version=$CI_COMMIT_TAG --commit=$CI_COMMIT_SHA --created=$CI_COMMIT_TIMESTAMP --source-url=$CI_PROJECT_URL \
//	  release --address=$CI_REGISTRY_IMAGE:$CI_COMMIT_TAG --commit-ref-name=$CI_COMMIT_REF_NAME --pipeline-url=$CI_PIPELINE_URL --job-url=$CI_JOB_URL
//
// +cache="never"
func (b *Build) Release(
	ctx context.Context,
	// Registry address with tag, e.g. registry.gitlab.com/acme/voice-agent:1.4.2.
	address string,
	// $CI_COMMIT_REF_NAME.
	//
	// +optional
	commitRefName string,
	// $CI_PIPELINE_URL.
	//
	// +optional
	pipelineUrl string,
	// $CI_JOB_URL.
	//
	// +optional
	jobUrl string,
) (string, error) {
	return b.release(ctx, address, provenance.GitLab{CommitRefName: commitRefName, PipelineURL: pipelineUrl, JobURL: jobUrl})
}

// release publishes, makes the provenance and signs: the build's part of
// a release.
func (b *Build) release(ctx context.Context, address string, gl provenance.GitLab) (string, error) {
	if _, err := b.Pipeline.Signing.signer(); err != nil {
		return "", fmt.Errorf("release signs the image: %w", err)
	}
	ref, err := b.publish(ctx, address)
	if err != nil {
		return "", err
	}
	prov, err := b.provenance(ctx, ref, gl)
	if err != nil {
		return "", err
	}
	if _, err := b.Pipeline.sign(ctx, ref, attestations{Sboms: b.Sboms, Provenance: prov, Platforms: b.Platforms, GitLab: gl}); err != nil {
		return "", fmt.Errorf("published %s but signing failed: %w", ref, err)
	}
	return ref, nil
}
