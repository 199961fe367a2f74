// Package ocilayout rewrites the OCI image layout tarball the engine
// exports (`build tarball`) so that its digest depends only on the image's
// files and the commit time (Normalize, NormalizeTar), reads the layer
// diffIDs of a layout (DiffIDs, for the base image's layers Normalize
// keeps) and unpacks a layout for tools that read it from disk (Extract).
package ocilayout

import (
	"errors"
	"fmt"
	"io"
	"regexp"
)

// maxIndex bounds how much of index.json is read (the tarball is untrusted input).
const maxIndex = 1 << 20

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Media types an image layout's top-level index may point to.
const (
	MediaTypeIndex          = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest       = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
)

// DiffIDs returns the layer diffIDs ("sha256:...", the digests of the
// uncompressed layers) of every image in a layout tarball, platform after
// platform, in manifest order: for an export of the base image, what
// KeepBaseLayers takes.
func DiffIDs(r io.Reader) ([]string, error) {
	blobs, indexJSON, err := readLayout(r)
	if err != nil {
		return nil, err
	}
	var idx struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := decode(indexJSON, &idx); err != nil {
		return nil, fmt.Errorf("ocilayout: parse index.json: %w", err)
	}
	var out []string
	var walk func(d descriptor, depth int) error
	walk = func(d descriptor, depth int) error {
		if depth > 4 {
			return errors.New("ocilayout: indexes nested too deep")
		}
		if !digestRE.MatchString(d.Digest) {
			return fmt.Errorf("ocilayout: %q is not a sha256 digest", d.Digest)
		}
		blob, ok := blobs[d.Digest]
		if !ok {
			return fmt.Errorf("ocilayout: blob %s is referenced but not in the layout", d.Digest)
		}
		switch d.MediaType {
		case MediaTypeIndex, MediaTypeDockerList:
			var sub struct {
				Manifests []descriptor `json:"manifests"`
			}
			if err := decode(blob, &sub); err != nil {
				return fmt.Errorf("ocilayout: parse index %s: %w", d.Digest, err)
			}
			for _, m := range sub.Manifests {
				if err := walk(m, depth+1); err != nil {
					return err
				}
			}
		case MediaTypeManifest, MediaTypeDockerManifest:
			var m struct {
				Config descriptor `json:"config"`
			}
			if err := decode(blob, &m); err != nil {
				return fmt.Errorf("ocilayout: parse manifest %s: %w", d.Digest, err)
			}
			cfg, ok := blobs[m.Config.Digest]
			if !ok {
				return fmt.Errorf("ocilayout: config %s is referenced but not in the layout", m.Config.Digest)
			}
			ids, err := configDiffIDs(cfg)
			if err != nil {
				return fmt.Errorf("ocilayout: config %s: %w", m.Config.Digest, err)
			}
			out = append(out, ids...)
		default:
			return fmt.Errorf("ocilayout: media type %q is not an image", d.MediaType)
		}
		return nil
	}
	for _, m := range idx.Manifests {
		if err := walk(m, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
}
