// Package ocipush uploads the image of an OCI layout tarball (what `build
// tarball` exports, normalized by ocilayout) to a registry with
// go-containerregistry, exactly as it is: the registry stores the index and
// manifests byte for byte, so the digest pushed is the digest computed
// before pushing, and pushing the same tarball again changes nothing.
package ocipush

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"dagger/voice/imageref"
	"dagger/voice/ocilayout"
)

// Options of Push.
type Options struct {
	// Address is registry/repository[:tag]; the tag defaults to latest.
	Address string
	// Username and Password for the registry; both empty: anonymous.
	Username, Password string
	// Transport for the registry requests; default remote's.
	Transport http.RoundTripper
}

// Push uploads the image in the layout tarball at path and returns its
// digest reference, repository@sha256:...
func Push(ctx context.Context, path string, o Options) (string, error) {
	addr, err := imageref.ParseAddress(o.Address)
	if err != nil {
		return "", err
	}
	repo := addr.Repository
	tag, err := name.NewTag(o.Address, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("publish address %q: %w", o.Address, err)
	}
	if (o.Username == "") != (o.Password == "") {
		return "", errors.New("pass both a registry username and a password, or neither")
	}
	var auth authn.Authenticator = authn.Anonymous
	if o.Username != "" {
		auth = authn.FromConfig(authn.AuthConfig{Username: o.Username, Password: o.Password})
	}

	dir, err := os.MkdirTemp("", "ocipush-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open the image tarball: %w", err)
	}
	err = ocilayout.Extract(f, dir)
	_ = f.Close()
	if err != nil {
		return "", err
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return "", fmt.Errorf("read the image layout: %w", err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return "", fmt.Errorf("read the image layout: %w", err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		return "", fmt.Errorf("read the image layout: %w", err)
	}
	if len(im.Manifests) != 1 {
		return "", fmt.Errorf("the image layout holds %d images, want exactly 1", len(im.Manifests))
	}
	desc := im.Manifests[0]
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth)}
	if o.Transport != nil {
		opts = append(opts, remote.WithTransport(o.Transport))
	}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := top.ImageIndex(desc.Digest)
		if err != nil {
			return "", fmt.Errorf("read the image index: %w", err)
		}
		err = remote.WriteIndex(tag, idx, opts...)
		if err != nil {
			return "", fmt.Errorf("push %s: %w", repo, err)
		}
	case desc.MediaType.IsImage():
		img, err := top.Image(desc.Digest)
		if err != nil {
			return "", fmt.Errorf("read the image: %w", err)
		}
		if err := remote.Write(tag, img, opts...); err != nil {
			return "", fmt.Errorf("push %s: %w", repo, err)
		}
	default:
		return "", fmt.Errorf("the image layout points to media type %q, not an image", desc.MediaType)
	}
	return confirm(tag, desc, repo, opts)
}

// confirm asks the registry for what the tag now names: it must be the
// digest pushed.
func confirm(tag name.Tag, desc v1.Descriptor, repo string, opts []remote.Option) (string, error) {
	got, err := remote.Head(tag, opts...)
	if err != nil {
		return "", fmt.Errorf("push %s: check the pushed tag: %w", repo, err)
	}
	if got.Digest != desc.Digest {
		return "", fmt.Errorf("push %s: the registry says %s is %s, but %s was pushed (another push to the same tag?)", repo, tag.TagStr(), got.Digest, desc.Digest)
	}
	pushed, err := imageref.ParseDigest(repo + "@" + desc.Digest.String())
	if err != nil {
		return "", err
	}
	return pushed.String(), nil
}
