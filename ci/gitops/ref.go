package gitops

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// ImageRef is an image reference pinned by digest:
// "registry.example.com/group/app@sha256:<64 hex>".
type ImageRef struct {
	// Repository is the image name without tag or digest,
	// e.g. "registry.gitlab.com/acme/voice-agent".
	Repository string
	// Digest is "sha256:<64 hex>".
	Digest string
}

// String returns "repository@digest".
func (r ImageRef) String() string { return r.Repository + "@" + r.Digest }

// ShortDigest returns the first 12 hex characters of the digest.
func (r ImageRef) ShortDigest() string {
	_, hex, _ := strings.Cut(r.Digest, ":")
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}

// ParseImageRef parses an image reference that must carry a sha256 digest.
// It keeps the repository as written ("nginx" stays "nginx"), as the
// `images:` entries of a kustomization must match it; imageref.ParseDigest
// is the registry-side parser, which normalizes ("index.docker.io/library/nginx").
// A tag alone is refused: a tag can move, a digest cannot, and the deploy
// repository must say exactly which bytes run. "repo:tag@sha256:..." is
// accepted; the tag is dropped because the digest decides.
func ParseImageRef(s string) (ImageRef, error) {
	if s == "" {
		return ImageRef{}, fmt.Errorf("image reference is empty: pass repo@sha256:<64 hex>")
	}
	if strings.TrimSpace(s) != s {
		return ImageRef{}, fmt.Errorf("image reference %q has surrounding whitespace: pass repo@sha256:<64 hex>", s)
	}
	ref, err := reference.Parse(s)
	if err != nil {
		return ImageRef{}, fmt.Errorf("invalid image reference %q: %w (expected repo@sha256:<64 hex>)", s, err)
	}
	named, ok := ref.(reference.Named)
	if !ok {
		return ImageRef{}, fmt.Errorf("invalid image reference %q: no repository name (expected repo@sha256:<64 hex>)", s)
	}
	digested, ok := ref.(reference.Digested)
	if !ok {
		return ImageRef{}, fmt.Errorf("image reference %q has no digest: a tag can move, so pass the digest the build published, e.g. %s@sha256:<64 hex>", s, named.Name())
	}
	d := digested.Digest()
	if d.Algorithm() != digest.SHA256 {
		return ImageRef{}, fmt.Errorf("image reference %q uses digest algorithm %q: only sha256 is accepted", s, d.Algorithm())
	}
	if err := d.Validate(); err != nil {
		return ImageRef{}, fmt.Errorf("image reference %q has an invalid digest: %w", s, err)
	}
	return ImageRef{Repository: named.Name(), Digest: d.String()}, nil
}

// BaseName returns the last path element of the repository ("voice-agent").
func (r ImageRef) BaseName() string {
	return r.Repository[strings.LastIndex(r.Repository, "/")+1:]
}
