// Package ocilayout reads an OCI image layout tarball (what `build tarball`
// exports) to find the digest of the image it holds: the digest a registry
// stores for the same index, so a local dry run can show the exact
// `images:` change a release would commit.
package ocilayout

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
)

// maxIndex bounds how much of index.json is read (the tarball is untrusted input).
const maxIndex = 1 << 20

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

type index struct {
	SchemaVersion int `json:"schemaVersion"`
	Manifests     []struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
	} `json:"manifests"`
}

// Media types an image layout's top-level index may point to.
const (
	MediaTypeIndex          = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest       = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
)

// ImageDigest returns the digest of the single image (a multi-platform
// index or a single manifest) referenced by the tarball's index.json.
func ImageDigest(r io.Reader) (string, error) {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", errors.New("ocilayout: no index.json in the tarball: is it an OCI image layout (build tarball)?")
		}
		if err != nil {
			return "", fmt.Errorf("ocilayout: read tarball: %w", err)
		}
		if hdr.Name != "index.json" && hdr.Name != "./index.json" {
			continue
		}
		var idx index
		if err := json.NewDecoder(io.LimitReader(tr, maxIndex)).Decode(&idx); err != nil {
			return "", fmt.Errorf("ocilayout: parse index.json: %w", err)
		}
		if idx.SchemaVersion != 2 {
			return "", fmt.Errorf("ocilayout: index.json has schemaVersion %d, want 2", idx.SchemaVersion)
		}
		if len(idx.Manifests) != 1 {
			return "", fmt.Errorf("ocilayout: index.json lists %d images, want exactly 1", len(idx.Manifests))
		}
		m := idx.Manifests[0]
		switch m.MediaType {
		case MediaTypeIndex, MediaTypeManifest, MediaTypeDockerList, MediaTypeDockerManifest:
		default:
			return "", fmt.Errorf("ocilayout: index.json points to media type %q, not an image", m.MediaType)
		}
		if !digestRE.MatchString(m.Digest) {
			return "", fmt.Errorf("ocilayout: %q is not a sha256 digest", m.Digest)
		}
		return m.Digest, nil
	}
}
