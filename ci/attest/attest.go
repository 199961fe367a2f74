// Package attest assembles what the pipeline attests about an image: the
// SLSA provenance statement of a build (from its platforms' binary and
// SBOM digests), and, for an image that was published earlier, what its
// labels and binaries say about how it was built (the labels every
// platform must carry and agree on, and the main package).
//
// The Dagger functions gather the inputs (files, labels, build
// information) from containers; everything decided about them is here.
package attest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"dagger/voice/gobuild"
	"dagger/voice/imagemeta"
	"dagger/voice/platform"
	"dagger/voice/provenance"
)

// BinaryName is the agent binary's file name in the image and in the
// provenance's byproducts ("linux-arm64/voice-agent").
const BinaryName = "voice-agent"

// SBOMName is the file name of a platform's SBOM, e.g.
// "sbom-linux-arm64.cdx.json".
func SBOMName(p platform.Platform) string {
	return "sbom-" + p.Slug() + ".cdx.json"
}

// Built is what one platform of a build produced.
type Built struct {
	// Platform built for.
	Platform platform.Platform
	// BinarySHA256 is the agent binary's SHA-256 (hex).
	BinarySHA256 string
	// SBOM is the platform's CycloneDX JSON document.
	SBOM []byte
}

// Module identifies the pipeline that made the build.
type Module struct {
	// Version of this Dagger module (its commit).
	Version string
	// DaggerVersion is the SDK and engine version.
	DaggerVersion string
}

// Provenance completes the provenance options with the platforms, the
// binaries' and SBOMs' digests (as byproducts) and the module's identity,
// and returns the statement. o.Platforms and o.Byproducts must be empty:
// they come from built.
func Provenance(o provenance.Options, built []Built, m Module) (*provenance.Statement, error) {
	if len(o.Platforms) != 0 || len(o.Byproducts) != 0 {
		return nil, fmt.Errorf("provenance options already list platforms or byproducts: pass them as built platforms")
	}
	if len(built) == 0 {
		return nil, fmt.Errorf("no platform was built")
	}
	for _, b := range built {
		o.Platforms = append(o.Platforms, b.Platform.String())
		sum := sha256.Sum256(b.SBOM)
		o.Byproducts = append(o.Byproducts,
			provenance.Artifact{Name: b.Platform.Slug() + "/" + BinaryName, SHA256: b.BinarySHA256},
			provenance.Artifact{Name: SBOMName(b.Platform), SHA256: hex.EncodeToString(sum[:])})
	}
	o.ModuleVersion = m.Version
	o.DaggerVersion = m.DaggerVersion
	return provenance.New(o)
}

// RequiredLabels are the labels Build sets that a published image must
// carry on every platform for its SBOMs and provenance to be rebuilt.
var RequiredLabels = []string{
	imagemeta.LabelVersion, imagemeta.LabelRevision, imagemeta.LabelCreated,
	imagemeta.LabelBaseName, imagemeta.LabelBaseDigest,
}

// ReadLabels are the labels to read from a published image: the required
// ones and the source repository (optional).
var ReadLabels = append(append([]string(nil), RequiredLabels...), imagemeta.LabelSource)

// Published is what the labels of a published image's platforms say
// about how it was built.
type Published struct {
	// Version, Revision (commit) and Source (repository URL) of the build.
	Version, Revision, Source string
	// CommitTime is the build's commit time (every timestamp of the image).
	CommitTime time.Time
	// BaseImage is the base image, pinned by digest.
	BaseImage string
}

// FromLabels checks the labels of every platform of a published image
// (in the order of platforms): each carries the required labels, and all
// agree on them (an index that mixes builds is refused).
func FromLabels(platforms []platform.Platform, labels []map[string]string) (Published, error) {
	if len(platforms) == 0 || len(platforms) != len(labels) {
		return Published{}, fmt.Errorf("need the labels of every platform: %d platform(s), %d label set(s)", len(platforms), len(labels))
	}
	for i, p := range platforms {
		for _, name := range RequiredLabels {
			if labels[i][name] == "" {
				return Published{}, fmt.Errorf("%s: the image has no %s label: was it made by `dagger call build --commit ... --created ...`?", p, name)
			}
		}
	}
	first := labels[0]
	for i := range labels[1:] {
		for _, name := range ReadLabels {
			if labels[i+1][name] != first[name] {
				return Published{}, fmt.Errorf("platforms %s and %s disagree on label %s (%q, %q): the index mixes builds", platforms[0], platforms[i+1], name, first[name], labels[i+1][name])
			}
		}
	}
	t, err := imagemeta.ParseCommitTime(first[imagemeta.LabelCreated])
	if err != nil {
		return Published{}, err
	}
	return Published{
		Version: first[imagemeta.LabelVersion], Revision: first[imagemeta.LabelRevision], Source: first[imagemeta.LabelSource],
		CommitTime: t, BaseImage: first[imagemeta.LabelBaseName] + "@" + first[imagemeta.LabelBaseDigest],
	}, nil
}

// MainPackage is the main package a binary was built from, relative to
// its module root ("./agent/cmd/voice-agent"), from its Go build
// information; gobuild.DefaultPackage when the information does not say.
func MainPackage(info *debug.BuildInfo) string {
	if info == nil || info.Main.Path == "" {
		return gobuild.DefaultPackage
	}
	if info.Path == info.Main.Path {
		return "."
	}
	if rel, ok := strings.CutPrefix(info.Path, info.Main.Path+"/"); ok {
		return "./" + rel
	}
	return gobuild.DefaultPackage
}
