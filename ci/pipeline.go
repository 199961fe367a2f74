package main

import (
	"context"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sync/errgroup"

	"dagger/voice/evalrun"
	"dagger/voice/gitops"
	"dagger/voice/gotest"
	"dagger/voice/imageref"
	"dagger/voice/internal/dagger"
	"dagger/voice/provenance"
)

// Ci is the main job for a laptop, with no credentials: the tests and the
// evals (scripted unless a key is given) run in parallel with the builds of
// both platforms; then the image tarball is written and a dry-run bump of a
// local deploy directory shows the exact diff a release would commit. It
// fails, after writing every report, when tests or evals fail.
//
//	dagger call ci export --path=out
//
// out/ holds voice.tar, test/ and eval/ reports, sbom/ and bump.diff. For the
// digest (and so the diff) a release of the same commit would produce, pass
// the same --version, --commit and --created as the release.
func (m *Voice) Ci(
	ctx context.Context,
	// Repository root.
	//
	// +defaultPath="/"
	// +ignore=[".git", "**/node_modules", ".ci/tools", ".ci/reports", "reports", "out", "voice.tar", "ci/dagger.gen.go", "ci/internal/dagger", "ci/internal/querybuilder", "ci/internal/telemetry"]
	source *dagger.Directory,
	// Tree of the GitOps deploy repository to preview the bump in (default:
	// this repository's deploy/ directory).
	//
	// +defaultPath="/deploy"
	// +ignore=["**/*.go", "go.mod", "go.sum", "**/testdata"]
	deploy *dagger.Directory,
	// Directory of the kustomization in the deploy tree.
	//
	// +optional
	// +default="voice"
	path string,
	// Image repository a release publishes to (the bump pins it by digest).
	//
	// +optional
	// +default="registry.gitlab.com/acme/voice-agent"
	image string,
	// OpenAI API key for live evals, e.g. env://OPENAI_API_KEY; without it the
	// evals run scripted.
	//
	// +optional
	apiKey *dagger.Secret,
	// Eval suite: a name under evals/suites or a path inside the source.
	//
	// +optional
	// +default="voice"
	suite string,
	// Minimum eval score (0..1).
	//
	// +optional
	// +default=0.92
	threshold float64,
	// Target platforms of the image.
	//
	// +optional
	// +default=["linux/amd64", "linux/arm64"]
	platforms []dagger.Platform,
	// Version stamped into the binary and the image.
	//
	// +optional
	// +default="0.0.0-dev"
	version string,
	// Full commit SHA stamped into the binary, e.g. $(git rev-parse HEAD).
	//
	// +optional
	commit string,
	// Commit time, e.g. $(git log -1 --format=%cI): the image's timestamps.
	//
	// +optional
	// +default="1970-01-01T00:00:00Z"
	created string,
	// Main package to build.
	//
	// +optional
	// +default="./agent/cmd/voice-agent"
	mainPackage string,
) (*dagger.Directory, error) {
	if path == "" {
		path = "voice"
	}
	if image == "" {
		image = "registry.gitlab.com/acme/voice-agent"
	}
	test, eval, build, err := m.gatesAndBuild(ctx, source, gateOptions{
		Eval: evalrun.Options{Suite: suite, Threshold: threshold}, APIKey: apiKey,
	}, buildOptions{
		Platforms: platforms, Version: version, Commit: commit, Created: created, MainPackage: mainPackage,
	})
	if err != nil {
		return nil, err
	}

	// The normalized tarball: its digest is the one a release of this
	// commit publishes.
	img, err := build.image(ctx)
	if err != nil {
		return nil, err
	}
	tarball, digest := img.file, img.digest
	files, err := readTree(ctx, deploy)
	if err != nil {
		return nil, err
	}
	ref, err := imageref.ParseDigest(image + "@" + digest)
	if err != nil {
		return nil, fmt.Errorf("--image %q: %w", image, err)
	}
	diff, entry, err := gitops.PreviewBump(files, path, gitops.ImageUpdate{Ref: ref})
	if err != nil {
		return nil, fmt.Errorf("dry-run bump of %s: %w", path, err)
	}
	if diff == "" {
		diff = "unchanged: " + path + " already deploys " + ref.Pinned() + "\n"
	}
	// The summary says which images entry the bump changes; bump.diff is the diff.
	preview := fmt.Sprintf("images entry %q of %s (chosen by %s)\n%s", entry.Name, path, entry.Rule, diff)

	out := dag.Directory().
		WithFile("voice.tar", tarball).
		WithDirectory("test", test.Reports()).
		WithDirectory("eval", eval.Reports()).
		WithDirectory("sbom", build.SbomDirectory()).
		WithNewFile("bump.diff", diff).
		WithNewFile("summary.txt", ciSummary(test, eval, ref.Pinned(), preview))
	if test.ExitCode != 0 || eval.ExitCode != 0 {
		// The CLI exports nothing from a failed call, so the failure carries
		// the outputs; `dagger call test reports` / `eval reports` export them.
		return nil, fmt.Errorf("main job failed\n%s\n--- test output\n%s\n--- eval output\n%s",
			ciSummary(test, eval, ref.Pinned(), preview), test.Output, eval.Output)
	}
	return out, nil
}

// gateOptions configure the gates of a release: the product's tests and
// the evals.
type gateOptions struct {
	Eval   evalrun.Options
	APIKey *dagger.Secret
}

// gatesAndBuild runs the tests and the evals in parallel with the builds of
// every platform. It fails only when a step cannot run; whether the gates
// passed is in the TestRun and EvalRun.
func (m *Voice) gatesAndBuild(ctx context.Context, source *dagger.Directory, gates gateOptions, bo buildOptions,
) (test *TestRun, eval *EvalRun, build *Build, err error) {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { test, err = m.test(gctx, source, gotest.Options{Race: true}); return err })
	g.Go(func() (err error) { eval, err = m.eval(gctx, source, gates.Eval, gates.APIKey); return err })
	g.Go(func() (err error) { build, err = m.build(gctx, source, bo); return err })
	err = g.Wait()
	return test, eval, build, err
}

func ciSummary(test *TestRun, eval *EvalRun, ref, preview string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tests:  %s\n", test.Summary)
	fmt.Fprintf(&b, "evals:  %s\n", eval.Summary)
	fmt.Fprintf(&b, "image:  %s (voice.tar; the digest a push of this build stores)\n", ref)
	fmt.Fprintf(&b, "bump (dry run): %s", preview)
	return b.String()
}

// readTree reads the YAML files of a deploy tree into memory (path -> content).
func readTree(ctx context.Context, dir *dagger.Directory) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, pattern := range []string{"**/*.yaml", "**/*.yml"} {
		names, err := dir.Glob(ctx, pattern)
		if err != nil {
			return nil, fmt.Errorf("list the deploy tree: %w", err)
		}
		for _, name := range names {
			if strings.HasSuffix(name, "/") {
				continue
			}
			text, err := dir.File(name).Contents(ctx)
			if err != nil {
				return nil, fmt.Errorf("read %s of the deploy tree: %w", name, err)
			}
			files[path.Clean(name)] = []byte(text)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("the deploy tree has no YAML files: pass --deploy=<directory of the deploy repository>")
	}
	return files, nil
}

// ReleaseSummary is what a release did.
type ReleaseSummary struct {
	// Published image, pinned by digest.
	Image string
	// Test summary line.
	Tests string
	// Eval summary line (mode, score, threshold).
	Evals string
	// Eval score.
	EvalScore float64
	// What the deploy did: the commit ("unchanged" when the repository
	// already deployed the image), the images entry, the signature
	// verification, the diff.
	Deploy *DeployChange
}

// Summary is a readable report of the release.
func (r *ReleaseSummary) Summary() string {
	return fmt.Sprintf("image:   %s\ntests:   %s\nevals:   %s\n%s", r.Image, r.Tests, r.Evals, r.Deploy.Summary())
}

// Release runs the whole pipeline for a version into this deploy
// repository: tests and evals (in parallel with the builds of every
// platform) gate everything; then the image is published as one
// multi-platform index, signed and attested (SBOMs and SLSA provenance),
// verified, and the kustomization at --path is bumped to its digest.
// Nothing is published when a gate fails; nothing is deployed that does
// not verify. Registry credentials and signing come from the module
// (with-registry-auth, with-keyless-signing or with-signing-key); the tag
// pipeline's exact line is in .gitlab-ci.yml.
//
// +cache="never"
func (r *DeployRepo) Release(
	ctx context.Context,
	// Repository root.
	//
	// +defaultPath="/"
	// +ignore=[".git", "**/node_modules", ".ci/tools", ".ci/reports", "reports", "out", "voice.tar", "ci/dagger.gen.go", "ci/internal/dagger", "ci/internal/querybuilder", "ci/internal/telemetry"]
	source *dagger.Directory,
	// Image repository to publish to, without tag, e.g. $CI_REGISTRY_IMAGE.
	repository string,
	// Version: the image tag and the version stamped into the binary, e.g. $CI_COMMIT_TAG.
	version string,
	// Full commit SHA of the source, e.g. $CI_COMMIT_SHA.
	commit string,
	// Commit time, e.g. $CI_COMMIT_TIMESTAMP: the image's timestamps.
	created string,
	// Repository URL for the image's source label and the provenance, e.g. $CI_PROJECT_URL.
	//
	// +optional
	sourceUrl string,
	// $CI_PIPELINE_URL, recorded in the provenance and the deploy commit.
	//
	// +optional
	pipelineUrl string,
	// Directory of the kustomization in the deploy repository.
	//
	// +optional
	// +default="voice"
	path string,
	// OpenAI API key for live evals, e.g. env://OPENAI_API_KEY; without it the
	// evals run scripted.
	//
	// +optional
	apiKey *dagger.Secret,
	// Eval suite: a name under evals/suites or a path inside the source.
	//
	// +optional
	// +default="voice"
	suite string,
	// Minimum eval score (0..1).
	//
	// +optional
	// +default=0.92
	threshold float64,
	// Target platforms.
	//
	// +optional
	// +default=["linux/amd64", "linux/arm64"]
	platforms []dagger.Platform,
) (*ReleaseSummary, error) {
	plan, err := planRelease(releaseInput{
		Repository: repository, Version: version, Commit: commit, Created: created, SourceURL: sourceUrl,
		PipelineURL: pipelineUrl, Path: path, APIKey: apiKey, Suite: suite, Threshold: threshold, Platforms: platforms,
	})
	if err != nil {
		return nil, err
	}
	return r.release(ctx, source, plan)
}

// releaseInput is what release is called with.
type releaseInput struct {
	Repository, Version, Commit, Created, SourceURL, PipelineURL, Path, Suite string
	Threshold                                                                 float64
	Platforms                                                                 []dagger.Platform
	APIKey                                                                    *dagger.Secret
}

// releasePlan is every step's options of a release, derived from its
// input in one place (planRelease) so that no value lands in the wrong
// step.
type releasePlan struct {
	Gates gateOptions
	Build buildOptions
	// Address is the registry address with the version as tag.
	Address string
	// GitLab CI's variables for the provenance: the tag pipeline's ref is
	// the tag, which is the version.
	GitLab provenance.GitLab
	// Bump of the deploy repository; its Image is the published digest.
	Bump bumpRequest
}

// planRelease checks a release's input and maps it onto its steps.
func planRelease(in releaseInput) (releasePlan, error) {
	if in.Repository == "" || strings.Contains(in.Repository, "@") {
		return releasePlan{}, fmt.Errorf("--repository %q must be an image repository without tag or digest, e.g. registry.gitlab.com/acme/voice-agent", in.Repository)
	}
	if in.Version == "" || in.Commit == "" || in.Created == "" {
		return releasePlan{}, fmt.Errorf("a release needs --version, --commit and --created (e.g. $CI_COMMIT_TAG, $CI_COMMIT_SHA, $CI_COMMIT_TIMESTAMP)")
	}
	address := in.Repository + ":" + in.Version
	if _, err := imageref.ParseAddress(address); err != nil {
		return releasePlan{}, fmt.Errorf("--repository and --version: %w", err)
	}
	return releasePlan{
		Gates: gateOptions{Eval: evalrun.Options{Suite: orDefault(in.Suite, "voice"), Threshold: in.Threshold}, APIKey: in.APIKey},
		Build: buildOptions{
			Platforms: in.Platforms, Version: in.Version, Commit: in.Commit, Created: in.Created, SourceURL: in.SourceURL,
		},
		Address: address,
		GitLab:  provenance.GitLab{CommitRefName: in.Version, PipelineURL: in.PipelineURL},
		Bump:    bumpRequest{Path: orDefault(in.Path, "voice"), SourceCommit: in.Commit, PipelineURL: in.PipelineURL},
	}, nil
}

func (r *DeployRepo) release(ctx context.Context, source *dagger.Directory, plan releasePlan) (*ReleaseSummary, error) {
	m := r.Pipeline
	if _, err := m.Signing.signer(); err != nil {
		return nil, fmt.Errorf("release signs the image: %w", err)
	}
	if !m.Signing.canVerify() {
		return nil, fmt.Errorf("release verifies the signature before deploying: pass --certificate-identity to with-keyless-signing, or --public-key to with-signing-key")
	}
	test, eval, build, err := m.gatesAndBuild(ctx, source, plan.Gates, plan.Build)
	if err != nil {
		return nil, err
	}
	if _, err := test.Check(); err != nil {
		return nil, fmt.Errorf("release stopped before publishing: %w", err)
	}
	if _, err := eval.Check(); err != nil {
		return nil, fmt.Errorf("release stopped before publishing: %w", err)
	}
	ref, err := build.release(ctx, plan.Address, plan.GitLab)
	if err != nil {
		return nil, err
	}
	plan.Bump.Image = ref
	change, err := r.bump(ctx, plan.Bump)
	if err != nil {
		return nil, fmt.Errorf("published and signed %s, but the deploy failed (rerun the deploy job; the bump is idempotent): %w", ref, err)
	}
	return &ReleaseSummary{Image: ref, Tests: test.Summary, Evals: eval.Summary, EvalScore: eval.Score, Deploy: change}, nil
}
