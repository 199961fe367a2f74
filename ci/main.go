// Package main is the Dagger module "voice": the pipeline that tests,
// evaluates, builds, signs, publishes and deploys the voice agent.
//
// Functions here stay thin: they compose containers and call the plain Go
// packages beside them (gotest, ...), which hold the logic and its tests.
//
//go:generate go run ./cmd/typecheckgen
//go:generate go run ./cmd/typecheckgen -dir examples/greeter/ci
package main

import (
	"dagger/voice/internal/dagger"
)

// Default container images, pinned by digest. Override them with the
// constructor's arguments (for GitLab's Dependency Proxy, a mirror or an
// air-gapped registry).
const (
	// DefaultGoImage is the Go toolchain used to vet, test and build.
	DefaultGoImage = "golang:1.26.8-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d"
	// DefaultBaseImage is the runtime base of the agent image: distroless
	// static, non-root, with CA certificates and timezone data.
	DefaultBaseImage = "gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639"
	// DefaultCosignImage signs, attests and verifies images.
	DefaultCosignImage = "ghcr.io/sigstore/cosign/cosign:v2.6.5@sha256:ad281047f85c5e1fc6ffbc30c2b55be3b07b4032bef715a12122ce5829619aca"
)

// Voice is the pipeline of the voice agent.
type Voice struct {
	// Go toolchain image (pinned by digest).
	GoImage string
	// Runtime base image of the agent (pinned by digest).
	BaseImage string
	// Cosign image (pinned by digest).
	CosignImage string
}

// New configures the pipeline. Every image it uses is an argument with a
// default pinned by digest, so mirrors and proxies can replace them.
func New(
	// Go toolchain image used to vet, test and build, pinned by digest.
	// Point it at a mirror, e.g. "$CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX/golang:1.26.8-bookworm@sha256:...".
	//
	// +optional
	// +default="golang:1.26.8-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d"
	goImage string,
	// Runtime base image of the agent, pinned by digest: distroless static,
	// non-root, with CA certificates and timezone data.
	//
	// +optional
	// +default="gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639"
	baseImage string,
	// Cosign image used to sign, attest and verify, pinned by digest.
	//
	// +optional
	// +default="ghcr.io/sigstore/cosign/cosign:v2.6.5@sha256:ad281047f85c5e1fc6ffbc30c2b55be3b07b4032bef715a12122ce5829619aca"
	cosignImage string,
) *Voice {
	if goImage == "" {
		goImage = DefaultGoImage
	}
	if baseImage == "" {
		baseImage = DefaultBaseImage
	}
	if cosignImage == "" {
		cosignImage = DefaultCosignImage
	}
	return &Voice{GoImage: goImage, BaseImage: baseImage, CosignImage: cosignImage}
}

// goToolchain returns the Go image with the module and build caches mounted
// as cache volumes.
func (m *Voice) goToolchain() *dagger.Container {
	return dag.Container().
		From(m.GoImage).
		WithMountedCache("/go/pkg/mod", dag.CacheVolume("voice-go-mod")).
		WithEnvVariable("GOMODCACHE", "/go/pkg/mod").
		WithMountedCache("/root/.cache/go-build", dag.CacheVolume("voice-go-build")).
		WithEnvVariable("GOCACHE", "/root/.cache/go-build").
		WithEnvVariable("GOFLAGS", "-buildvcs=false")
}

// goEnv is goToolchain with the source at /src as the working directory.
func (m *Voice) goEnv(source *dagger.Directory) *dagger.Container {
	return withSource(m.goToolchain(), source)
}

func withSource(ctr *dagger.Container, source *dagger.Directory) *dagger.Container {
	return ctr.WithDirectory("/src", source).WithWorkdir("/src")
}
