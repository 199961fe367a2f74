// The greeter's own Dagger module: the pattern for a repository that wants
// functions of its own on top of the voice pipeline. It depends on the
// voice module (dagger.json, what `dagger install` writes) and calls it from
// Go through the generated bindings: dag.Voice().Test(...), .Build(...),
// .DeployRepo(...).Bump(...). The voice module's functions default to the
// voice repository's own source, so every call passes the greeter's; its
// images are passed through, so a mirror-only setup can point them at a
// mirror (empty: the voice module's pinned defaults).
package main

import (
	"context"
	"fmt"
	"strings"

	"dagger/greeter/internal/dagger"
)

// Greeter is the pipeline of the greeter service, built from the voice
// pipeline module.
type Greeter struct {
	// Source of the greeter service (its repository root).
	Source *dagger.Directory
	// Images the voice module runs (empty: its pinned defaults).
	GoImage, BaseImage, CosignImage string
}

// New loads the greeter's source and the images the voice pipeline runs.
//
//	dagger call --go-image=mirror.example.com/golang:1.26.8-bookworm@sha256:... check
func New(
	// Repository root of the greeter service (holding its go.mod).
	//
	// +defaultPath="."
	// +ignore=["ci", "reports", "*.tar"]
	source *dagger.Directory,
	// Go toolchain image, pinned by digest, e.g. a mirror's copy of the
	// voice module's default (empty: that default).
	//
	// +optional
	goImage string,
	// Runtime base image, pinned by digest (empty: the voice module's default).
	//
	// +optional
	baseImage string,
	// Cosign image, pinned by digest (empty: the voice module's default).
	//
	// +optional
	cosignImage string,
) *Greeter {
	return &Greeter{Source: source, GoImage: goImage, BaseImage: baseImage, CosignImage: cosignImage}
}

// voice is the voice pipeline module, as installed, with the greeter's
// images (an empty option is not sent: the voice default applies).
func (m *Greeter) voice() *dagger.Voice {
	return dag.Voice(dagger.VoiceOpts{GoImage: m.GoImage, BaseImage: m.BaseImage, CosignImage: m.CosignImage})
}

// Check vets and tests the greeter (with the race detector) and fails
// unless every test passed; it returns the summary line.
//
//	dagger call check
func (m *Greeter) Check(ctx context.Context) (string, error) {
	return m.voice().Test(dagger.VoiceTestOpts{Source: m.Source}).Check(ctx)
}

// Reports returns the test reports (junit.xml, output.txt, summary.txt,
// exit-code) whether the tests passed or not, for CI to keep them and then
// fail on exit-code.
//
//	dagger call reports export --path=reports/test
func (m *Greeter) Reports() *dagger.Directory {
	return m.voice().Test(dagger.VoiceTestOpts{Source: m.Source}).Reports()
}

// build is the voice module's multi-arch build of the greeter binary.
func (m *Greeter) build(voice *dagger.Voice, opts dagger.VoiceBuildOpts) *dagger.VoiceBuild {
	opts.Source, opts.MainPackage = m.Source, "./cmd/greeter"
	return voice.Build(opts)
}

// Image builds the greeter for linux/amd64 and linux/arm64 and returns the
// multi-platform OCI tarball.
//
//	dagger call image export --path=greeter.tar
func (m *Greeter) Image(
	// Version stamped into the binary and the image label.
	//
	// +optional
	// +default="0.0.0-dev"
	version string,
) *dagger.File {
	return m.build(m.voice(), dagger.VoiceBuildOpts{Version: version}).Tarball()
}

// Publish builds and pushes the greeter image and returns its
// digest-pinned reference (repository@sha256:...).
//
//	dagger call publish --address="$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA" --commit="$CI_COMMIT_SHA" --created="$CI_COMMIT_TIMESTAMP" --username="$CI_REGISTRY_USER" --secret=env://CI_REGISTRY_PASSWORD
func (m *Greeter) Publish(
	ctx context.Context,
	// Registry address with tag, e.g. $CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA.
	address string,
	// Full commit SHA of the source, e.g. $CI_COMMIT_SHA.
	commit string,
	// Commit time, RFC 3339, e.g. $CI_COMMIT_TIMESTAMP.
	created string,
	// Version stamped into the binary and the image label.
	//
	// +optional
	// +default="0.0.0-dev"
	version string,
	// Repository URL for the image's source label ($CI_PROJECT_URL).
	//
	// +optional
	sourceUrl string,
	// Registry user, e.g. $CI_REGISTRY_USER.
	//
	// +optional
	username string,
	// Registry password or token, e.g. env://CI_REGISTRY_PASSWORD.
	//
	// +optional
	secret *dagger.Secret,
) (string, error) {
	voice := m.voice()
	if secret != nil {
		voice = voice.WithRegistryAuth(address, username, secret)
	}
	ref, err := m.build(voice, dagger.VoiceBuildOpts{Version: version, Commit: commit, Created: created, SourceURL: sourceUrl}).
		Publish(ctx, address)
	if err != nil {
		return "", fmt.Errorf("publish the greeter: %w", err)
	}
	return strings.TrimSpace(ref), nil
}

// Deploy commits the image bump to the GitOps deploy repository (the
// greeter/ directory of it) and returns what changed.
//
//	dagger call deploy --repo=https://gitlab.example.com/acme/deploy.git --image="$IMAGE_REF" --token=env://DEPLOY_TOKEN
func (m *Greeter) Deploy(
	ctx context.Context,
	// Clone URL of the deploy repository.
	repo string,
	// Digest-pinned image reference to deploy (repository@sha256:...).
	image string,
	// Token with write access to the deploy repository.
	token *dagger.Secret,
	// Show the change without pushing it.
	//
	// +optional
	dryRun bool,
) (string, error) {
	r := m.voice().DeployRepo(repo, dagger.VoiceDeployRepoOpts{Token: token})
	if dryRun {
		r = r.Preview()
	}
	return r.Bump(image, dagger.VoiceDeployRepoBumpOpts{Path: "greeter"}).Summary(ctx)
}
