// Package imageref is the pipeline's one parser of container image
// references. It wraps go-containerregistry's reference parser and keeps
// both forms a reference has:
//
//   - the name as written ("voice-agent", "registry.gitlab.com/acme/voice-agent"),
//     which kustomization `images:` entries and manifests use, and
//   - the normalized repository ("index.docker.io/library/voice-agent") and
//     registry host, which registry work (push, sign, verify, credentials) uses.
//
// The entry points say what a reference must carry: ParseDigest (pinned by
// digest: what the pipeline signs, verifies and deploys), ParseAddress (a
// publish address with an explicit registry host and no digest), and Parse
// (anything, e.g. an image found in a manifest).
package imageref

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Ref is a parsed image reference.
type Ref struct {
	// Name is the repository as written, without tag or digest,
	// e.g. "voice-agent" or "registry.gitlab.com/acme/voice-agent".
	Name string
	// Repository is the normalized full repository,
	// e.g. "registry.gitlab.com/acme/voice-agent" or "index.docker.io/library/golang".
	Repository string
	// Registry is the registry host (and port), e.g. "registry.gitlab.com".
	Registry string
	// Tag is the tag the reference carried, if any; next to a digest it is
	// informational only.
	Tag string
	// Digest is "sha256:" followed by 64 lowercase hex digits, or empty.
	Digest string
}

// String returns the canonical registry form: "repository@sha256:..."
// when the reference has a digest (the tag is dropped: the digest
// decides), else "repository[:tag]".
func (r Ref) String() string {
	if r.Digest != "" {
		return r.Repository + "@" + r.Digest
	}
	return r.RepositoryTag()
}

// Pinned returns "name@sha256:..." with the name as written: what a
// kustomization's `images:` entry and a deploy commit record.
func (r Ref) Pinned() string { return r.Name + "@" + r.Digest }

// RepositoryTag returns "repository[:tag]" (normalized), e.g. for the base
// image's OCI label: with Digest it gives back the reference.
func (r Ref) RepositoryTag() string {
	if r.Tag == "" {
		return r.Repository
	}
	return r.Repository + ":" + r.Tag
}

// ShortDigest returns the first 12 hex characters of the digest.
func (r Ref) ShortDigest() string {
	_, hex, _ := strings.Cut(r.Digest, ":")
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}

// LastElement returns the last path element of the name ("voice-agent").
func (r Ref) LastElement() string {
	return r.Name[strings.LastIndex(r.Name, "/")+1:]
}

// Parse parses any image reference: "name", "name:tag", "name@sha256:..."
// or "name:tag@sha256:...". Only sha256 digests are accepted.
func Parse(s string) (Ref, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Ref{}, fmt.Errorf("image reference is empty: pass e.g. registry.gitlab.com/acme/voice-agent@sha256:<64 hex>")
	}
	base, dig, hasDigest := strings.Cut(s, "@")
	var out Ref
	if hasDigest {
		d, err := name.NewDigest(s)
		if err != nil {
			return Ref{}, fmt.Errorf("image reference %q is not a valid name[:tag]@sha256:<64 hex>: %w", s, err)
		}
		if !strings.HasPrefix(d.DigestStr(), "sha256:") {
			return Ref{}, fmt.Errorf("image reference %q: digest algorithm %q is not supported, use sha256", s, strings.SplitN(dig, ":", 2)[0])
		}
		out = Ref{Repository: d.Context().Name(), Registry: d.Context().RegistryStr(), Digest: d.DigestStr()}
	}
	// The name as written, and the tag: everything before the digest, with
	// a colon after the last slash starting the tag.
	out.Name = base
	if i := strings.LastIndex(base, ":"); i > strings.LastIndex(base, "/") {
		out.Name, out.Tag = base[:i], base[i+1:]
	}
	if out.Tag != "" || !hasDigest {
		t, err := name.NewTag(base)
		if err != nil {
			return Ref{}, fmt.Errorf("image reference %q is not a valid name[:tag][@sha256:<64 hex>]: %w", s, err)
		}
		if !hasDigest {
			out.Repository, out.Registry = t.Context().Name(), t.Context().RegistryStr()
		}
	}
	if r, err := name.NewRepository(out.Name); err != nil || r.Name() != out.Repository {
		return Ref{}, fmt.Errorf("image reference %q has no valid repository name", s)
	}
	return out, nil
}

// ParseDigest parses a reference that must carry a SHA-256 digest. A tag
// next to the digest ("repo:tag@sha256:...", as Container.Publish returns)
// is accepted and dropped from String. A reference without a digest is
// refused: a tag can be moved, a digest cannot.
func ParseDigest(s string) (Ref, error) {
	r, err := Parse(s)
	if err != nil {
		return Ref{}, err
	}
	if r.Digest == "" {
		return Ref{}, fmt.Errorf("image reference %q has no digest: pass %s@sha256:<64 hex> (the output of `dagger call build publish`), never a tag: a tag can move", strings.TrimSpace(s), r.Name)
	}
	return r, nil
}

// ParseAddress validates a publish address ("registry/repository[:tag]").
// Publishing needs an explicit registry host, so "voice-agent:1.0" is
// refused, and no digest (the push computes it).
func ParseAddress(address string) (Ref, error) {
	address = strings.TrimSpace(address)
	if strings.Contains(address, "@") {
		return Ref{}, fmt.Errorf("publish address %q has a digest: pass registry/repository[:tag], the digest is computed when pushing", address)
	}
	if !HasRegistryHost(address) {
		return Ref{}, fmt.Errorf("publish address %q has no registry host: pass e.g. registry.gitlab.com/acme/voice-agent:1.2.3 ($CI_REGISTRY_IMAGE:$CI_COMMIT_TAG)", address)
	}
	r, err := Parse(address)
	if err != nil {
		return Ref{}, fmt.Errorf("publish address %q is not a valid registry/repository[:tag]: %w", address, err)
	}
	return r, nil
}

// HasRegistryHost reports whether a reference names its registry host
// explicitly ("registry.gitlab.com/...", "localhost:5000/...") rather than
// defaulting to Docker Hub.
func HasRegistryHost(s string) bool {
	first, _, ok := strings.Cut(strings.TrimSpace(s), "/")
	return ok && (strings.ContainsAny(first, ".:") || first == "localhost")
}

// Host returns the registry host of a registry address or of an image
// reference: "registry.gitlab.com" for "registry.gitlab.com",
// "registry.gitlab.com/acme/voice-agent" or ".../voice-agent:1@sha256:...".
func Host(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s != "" && !strings.Contains(s, "/") {
		reg, err := name.NewRegistry(s)
		if err != nil {
			return "", fmt.Errorf("registry address %q is not a host[:port]: %w", s, err)
		}
		return reg.RegistryStr(), nil
	}
	r, err := Parse(s)
	if err != nil {
		return "", err
	}
	return r.Registry, nil
}
