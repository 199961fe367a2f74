package main

import (
	"context"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sync/errgroup"

	"dagger/voice/gitops"
	"dagger/voice/internal/dagger"
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
	test, eval, build, err := m.gatesAndBuild(ctx, source, suite, threshold, apiKey,
		platforms, version, commit, created, "", mainPackage)
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
	ref, err := gitops.ParseImageRef(image + "@" + digest)
	if err != nil {
		return nil, fmt.Errorf("--image %q: %w", image, err)
	}
	diff, err := gitops.PreviewBump(files, path, gitops.ImageUpdate{Ref: ref})
	if err != nil {
		return nil, fmt.Errorf("dry-run bump of %s: %w", path, err)
	}
	if diff == "" {
		diff = "unchanged: " + path + " already deploys " + ref.String() + "\n"
	}

	out := dag.Directory().
		WithFile("voice.tar", tarball).
		WithDirectory("test", test.Reports()).
		WithDirectory("eval", eval.Reports()).
		WithDirectory("sbom", build.SbomDirectory()).
		WithNewFile("bump.diff", diff).
		WithNewFile("summary.txt", ciSummary(test, eval, ref.String(), diff))
	if test.ExitCode != 0 || eval.ExitCode != 0 {
		// The CLI exports nothing from a failed call, so the failure carries
		// the outputs; `dagger call test reports` / `eval reports` export them.
		return nil, fmt.Errorf("main job failed\n%s\n--- test output\n%s\n--- eval output\n%s",
			ciSummary(test, eval, ref.String(), diff), test.Output, eval.Output)
	}
	return out, nil
}

// gatesAndBuild runs the tests and the evals in parallel with the builds of
// every platform. It fails only when a step cannot run; whether the gates
// passed is in the TestRun and EvalRun.
func (m *Voice) gatesAndBuild(ctx context.Context, source *dagger.Directory, suite string, threshold float64,
	apiKey *dagger.Secret, platforms []dagger.Platform, version, commit, created, sourceUrl, mainPackage string,
) (test *TestRun, eval *EvalRun, build *Build, err error) {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { test, err = m.Test(gctx, source, nil, true); return err })
	g.Go(func() (err error) {
		eval, err = m.Eval(gctx, source, suite, threshold, apiKey, 1, 4, "", "", "")
		return err
	})
	g.Go(func() (err error) {
		build, err = m.Build(gctx, source, platforms, version, commit, created, sourceUrl, mainPackage)
		return err
	})
	err = g.Wait()
	return test, eval, build, err
}

func ciSummary(test *TestRun, eval *EvalRun, ref, diff string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tests:  %s\n", test.Summary)
	fmt.Fprintf(&b, "evals:  %s\n", eval.Summary)
	fmt.Fprintf(&b, "image:  %s (voice.tar; the digest a push of this build stores)\n", ref)
	fmt.Fprintf(&b, "bump (dry run):\n%s", diff)
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
	// Commit in the deploy repository ("unchanged" when it already deployed
	// the image; in merge-request mode, on the bump branch).
	DeployCommit string
	// Diff committed to the deploy repository.
	Diff string
	// Merge request opened or updated (merge-request mode).
	MergeRequestUrl string
	// Test summary line.
	Tests string
	// Eval summary line (mode, score, threshold).
	Evals string
	// Eval score.
	EvalScore float64
	// Signature and attestation verification output.
	Verification string
}

// Summary is a readable report of the release.
func (r *ReleaseSummary) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "image:   %s\n", r.Image)
	fmt.Fprintf(&b, "tests:   %s\n", r.Tests)
	fmt.Fprintf(&b, "evals:   %s\n", r.Evals)
	fmt.Fprintf(&b, "verify:  %s\n", strings.TrimSpace(r.Verification))
	fmt.Fprintf(&b, "deploy:  %s\n", r.DeployCommit)
	if r.MergeRequestUrl != "" {
		fmt.Fprintf(&b, "merge request: %s\n", r.MergeRequestUrl)
	}
	b.WriteString(r.Diff)
	return b.String()
}

// Release runs the whole pipeline for a version: tests and evals (in
// parallel with the builds of every platform) gate everything; then the
// image is published as one multi-platform index, signed and attested
// (SBOMs and SLSA provenance), verified, and the deploy repository is bumped
// to its digest. Nothing is published when a gate fails; nothing is
// deployed that does not verify.
//
// +cache="never"
func (m *Voice) Release(
	ctx context.Context,
	// Repository root.
	//
	// +defaultPath="/"
	// +ignore=[".git", "**/node_modules", ".ci/tools", ".ci/reports", "reports", "out", "voice.tar", "ci/dagger.gen.go", "ci/internal/dagger", "ci/internal/querybuilder", "ci/internal/telemetry"]
	source *dagger.Directory,
	// Image repository to publish to, without tag, e.g. $CI_REGISTRY_IMAGE.
	registry string,
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
	// Registry user, e.g. $CI_REGISTRY_USER.
	//
	// +optional
	registryUsername string,
	// Registry password or token, e.g. env://CI_REGISTRY_PASSWORD.
	//
	// +optional
	registryPassword *dagger.Secret,
	// OIDC token for keyless signing, e.g. env://SIGSTORE_ID_TOKEN.
	//
	// +optional
	idToken *dagger.Secret,
	// Cosign private key for key-based signing, e.g. env://COSIGN_PRIVATE_KEY.
	//
	// +optional
	key *dagger.Secret,
	// Password of the private key, e.g. env://COSIGN_PASSWORD.
	//
	// +optional
	keyPassword *dagger.Secret,
	// Public key that verifies a key-based signature, e.g. env://COSIGN_PUBLIC_KEY.
	//
	// +optional
	verifyKey *dagger.Secret,
	// Certificate identity that verifies a keyless signature, e.g.
	// $CI_PROJECT_URL//.gitlab-ci.yml@refs/tags/$CI_COMMIT_TAG.
	//
	// +optional
	certificateIdentity string,
	// OIDC issuer of the keyless signing certificate, e.g. $CI_SERVER_URL.
	//
	// +optional
	// +default="https://gitlab.com"
	certificateOidcIssuer string,
	// Fulcio URL of a private Sigstore.
	//
	// +optional
	fulcioUrl string,
	// Rekor URL of a private Sigstore.
	//
	// +optional
	rekorUrl string,
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
	// Deploy repository, e.g. https://gitlab.com/acme/deploy.git.
	deployRepo string,
	// Token with write_repository on the deploy repository, e.g. env://DEPLOY_TOKEN.
	token *dagger.Secret,
	// Directory of the kustomization in the deploy repository.
	//
	// +optional
	// +default="voice"
	path string,
	// Branch of the deploy repository.
	//
	// +optional
	// +default="main"
	deployBranch string,
	// Open a merge request in the deploy repository instead of pushing to its branch.
	//
	// +optional
	mergeRequest bool,
	// $CI_PIPELINE_URL, recorded in the provenance and the deploy commit.
	//
	// +optional
	pipelineUrl string,
	// Target platforms.
	//
	// +optional
	// +default=["linux/amd64", "linux/arm64"]
	platforms []dagger.Platform,
	// Main package to build.
	//
	// +optional
	// +default="./agent/cmd/voice-agent"
	mainPackage string,
) (*ReleaseSummary, error) {
	if key == nil && idToken == nil {
		return nil, fmt.Errorf("release signs the image: pass --id-token=env://SIGSTORE_ID_TOKEN (keyless) or --key=env://COSIGN_PRIVATE_KEY")
	}
	if verifyKey == nil && certificateIdentity == "" {
		return nil, fmt.Errorf("release verifies the signature before deploying: pass --certificate-identity (keyless) or --verify-key (key-based)")
	}
	if registry == "" || strings.ContainsAny(registry, "@") {
		return nil, fmt.Errorf("--registry %q must be an image repository without tag or digest, e.g. registry.gitlab.com/acme/voice-agent", registry)
	}
	test, eval, build, err := m.gatesAndBuild(ctx, source, suite, threshold, apiKey,
		platforms, version, commit, created, sourceUrl, mainPackage)
	if err != nil {
		return nil, err
	}
	if _, err := test.Check(); err != nil {
		return nil, fmt.Errorf("release stopped before publishing: %w", err)
	}
	if _, err := eval.Check(); err != nil {
		return nil, fmt.Errorf("release stopped before publishing: %w", err)
	}
	ref, err := build.Release(ctx, registry+":"+version, registryUsername, registryPassword,
		key, keyPassword, idToken, fulcioUrl, rekorUrl, version, pipelineUrl, "", "", "")
	if err != nil {
		return nil, err
	}
	verification, err := m.Verify(ctx, ref, verifyKey, certificateIdentity, certificateOidcIssuer, registryUsername, registryPassword, false, "", nil)
	if err != nil {
		return nil, fmt.Errorf("published and signed %s, but it does not verify; not deploying: %w", ref, err)
	}
	if deployBranch == "" {
		deployBranch = "main"
	}
	change, err := m.Bump(ctx, deployRepo, ref, token, nil, "", path, "", false, deployBranch, false, mergeRequest,
		"", "", nil, "voice-agent CI", "ci@voice-agent.invalid", commit, pipelineUrl,
		nil, "", "", "", nil, 50)
	if err != nil {
		return nil, fmt.Errorf("published, signed and verified %s, but the deploy bump failed (rerun the deploy job; the bump is idempotent): %w", ref, err)
	}
	return &ReleaseSummary{
		Image: ref, DeployCommit: change.Commit, Diff: change.Diff, MergeRequestUrl: change.MergeRequestURL,
		Tests: test.Summary, Evals: eval.Summary, EvalScore: eval.Score, Verification: verification,
	}, nil
}
