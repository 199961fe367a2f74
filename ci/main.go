// Package main is the Dagger module "voice": the pipeline that tests,
// evaluates, builds, signs, publishes and deploys the voice agent.
//
// The files here are the pipeline's table of contents:
//
//	main.go      the module object: images, with-registry-auth
//	test.go      test (the product), test-all and the tests check (every module)
//	eval.go      eval
//	build.go     build, and on its result: container, sbom, tarball, publish, provenance, release
//	sign.go      with-signing-key, with-keyless-signing, sign, verify
//	deploy.go    deploy-repo, and on it: bump, preview, review, stop-review
//	pipeline.go  ci (the laptop's main job) and deploy-repo release (the tag's job)
//	comment.go, ready.go  the merge-request comment and the review app's readiness
//
// Functions stay thin: they gather inputs from containers and call the
// plain Go packages beside them (gotest, attest, gitops, cosignargs, ...),
// which hold the logic and its tests. No Dagger function calls another:
// they share unexported functions that take option structs.
//
//go:generate go run ./cmd/typecheckgen
//go:generate go run ./cmd/typecheckgen -dir examples/greeter/ci
package main

import (
	"fmt"

	"dagger/voice/imageref"
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
	// Registry credentials, from with-registry-auth.
	//
	// +private
	RegistryAuths []*RegistryAuth
	// Signing and verification settings, from with-signing-key or
	// with-keyless-signing.
	//
	// +private
	Signing *SignSettings
}

// RegistryAuth is one registry's credentials.
type RegistryAuth struct {
	// Registry host, e.g. registry.gitlab.com.
	Host string
	// User name, e.g. $CI_REGISTRY_USER.
	Username string
	// Password or token.
	//
	// +private
	Secret *dagger.Secret
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

// WithRegistryAuth adds credentials for a registry, used by every step
// that talks to it: build publish, sign, verify, and the signature check
// of deploy-repo bump and release. Chain it once per registry:
//
//	dagger call with-registry-auth --address=$CI_REGISTRY --username=$CI_REGISTRY_USER --secret=env://CI_REGISTRY_PASSWORD build ... publish --address=$CI_REGISTRY_IMAGE:1.4.2
func (m *Voice) WithRegistryAuth(
	// Registry host, e.g. $CI_REGISTRY (registry.gitlab.com); an image address on it
	// (registry.gitlab.com/acme/voice-agent) is taken as its host.
	address string,
	// User name, e.g. $CI_REGISTRY_USER.
	username string,
	// Password or token, e.g. env://CI_REGISTRY_PASSWORD.
	secret *dagger.Secret,
) (*Voice, error) {
	host, err := imageref.Host(address)
	if err != nil {
		return nil, fmt.Errorf("with-registry-auth --address: %w", err)
	}
	if username == "" || secret == nil {
		return nil, fmt.Errorf("with-registry-auth needs --username and --secret for %s (e.g. --username=$CI_REGISTRY_USER --secret=env://CI_REGISTRY_PASSWORD)", host)
	}
	out := *m
	out.RegistryAuths = append([]*RegistryAuth{{Host: host, Username: username, Secret: secret}}, m.RegistryAuths...)
	return &out, nil
}

// registryAuth returns the credentials for a registry host, nil when
// with-registry-auth named none (an anonymous registry). The last
// with-registry-auth of a host wins.
func (m *Voice) registryAuth(host string) *RegistryAuth {
	for _, a := range m.RegistryAuths {
		if a.Host == host {
			return a
		}
	}
	return nil
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
