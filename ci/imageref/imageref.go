// Package imageref parses container image references that must be pinned
// by digest (repo@sha256:...), the only form the pipeline signs, verifies
// and deploys. It wraps go-containerregistry's reference parser and
// normalizes names for registry work; gitops.ParseImageRef keeps names as
// written, for kustomization `images:` entries.
package imageref

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Digest is an image reference pinned by a SHA-256 digest.
type Digest struct {
	// Repository is the full repository, e.g. "registry.gitlab.com/acme/voice-agent".
	Repository string
	// Registry is the registry host (and port), e.g. "registry.gitlab.com".
	Registry string
	// Digest is "sha256:" followed by 64 lowercase hex digits.
	Digest string
	// Tag is the tag the reference carried next to its digest, if any
	// ("repo:tag@sha256:..."); it is informational only.
	Tag string
}

// String returns the canonical digest reference "repository@sha256:...",
// without any tag.
func (d Digest) String() string { return d.Repository + "@" + d.Digest }

// ParseDigest parses a reference that must carry a SHA-256 digest. A tag
// next to the digest ("repo:tag@sha256:...", as Container.Publish returns)
// is accepted and dropped from String. A reference without a digest is
// refused: a tag can be moved, a digest cannot.
func ParseDigest(ref string) (Digest, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return Digest{}, fmt.Errorf("image reference is empty: pass repo@sha256:<digest>, the output of `dagger call build publish`")
	}
	if !strings.Contains(ref, "@") {
		return Digest{}, fmt.Errorf("image reference %q has no digest: pass repo@sha256:<digest> (the output of `dagger call build publish`), never a tag", ref)
	}
	d, err := name.NewDigest(ref)
	if err != nil {
		return Digest{}, fmt.Errorf("image reference %q is not a valid repo@sha256:<digest> reference: %w", ref, err)
	}
	dig := d.DigestStr()
	if !strings.HasPrefix(dig, "sha256:") {
		return Digest{}, fmt.Errorf("image reference %q: digest algorithm %q is not supported, use sha256", ref, strings.SplitN(dig, ":", 2)[0])
	}
	out := Digest{
		Repository: d.Context().Name(),
		Registry:   d.Context().RegistryStr(),
		Digest:     dig,
	}
	base := ref[:strings.LastIndex(ref, "@")]
	if t, err := name.NewTag(base); err == nil && strings.Contains(base[strings.LastIndex(base, "/")+1:], ":") {
		out.Tag = t.TagStr()
	}
	return out, nil
}

// Normalize returns the canonical "repository@sha256:..." form of a
// reference with a digest (for example what Container.Publish returns).
func Normalize(ref string) (string, error) {
	d, err := ParseDigest(ref)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// Repository validates a publish address ("registry/repo[:tag]") and
// returns its repository and registry host. Publishing needs an explicit
// registry host, so "voice-agent:1.0" is refused.
func Repository(address string) (repository, registry string, err error) {
	address = strings.TrimSpace(address)
	if strings.Contains(address, "@") {
		return "", "", fmt.Errorf("publish address %q has a digest: pass registry/repository[:tag], the digest is computed when pushing", address)
	}
	first := strings.SplitN(address, "/", 2)[0]
	if !strings.Contains(address, "/") || !(strings.ContainsAny(first, ".:") || first == "localhost") {
		return "", "", fmt.Errorf("publish address %q has no registry host: pass e.g. registry.gitlab.com/acme/voice-agent:1.2.3 ($CI_REGISTRY_IMAGE:$CI_COMMIT_TAG)", address)
	}
	t, err := name.NewTag(address, name.StrictValidation)
	if err != nil {
		r, rerr := name.NewRepository(address, name.StrictValidation)
		if rerr != nil {
			return "", "", fmt.Errorf("publish address %q is not a valid registry/repository[:tag]: %w", address, err)
		}
		return r.Name(), r.RegistryStr(), nil
	}
	return t.Context().Name(), t.Context().RegistryStr(), nil
}
