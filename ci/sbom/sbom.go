// Package sbom writes a CycloneDX 1.6 JSON software bill of materials for
// one platform's image of the agent, from the Go build information embedded
// in the binary (`go version -m -json`, debug/buildinfo) and the base image
// reference.
//
// Go's module sums ("h1:...") hash a module's file tree, not a file, so they
// are recorded as properties, never as SHA-256 component hashes. The only
// SHA-256 hash given is the binary's own.
package sbom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"
	"github.com/package-url/packageurl-go"

	"dagger/voice/imageref"
)

// Property names (Go facts are namespaced "golang:").
const (
	PropModuleSum    = "golang:module:sum" // Go module sum (h1: dirhash), not a file hash
	PropBuildSetting = "golang:build:"     // prefix for Go build settings (GOOS, GOARCH, CGO_ENABLED, -trimpath, ...)
	PropPlatform     = "voice:platform"    // OCI platform of the image
)

// Options describe the image the SBOM is for.
type Options struct {
	// Name of the application component, e.g. "voice-agent".
	Name string
	// Version stamped into the binary, e.g. "1.4.2".
	Version string
	// Platform of this image, e.g. "linux/arm64".
	Platform string
	// BinarySHA256 is the hex SHA-256 of the binary file.
	BinarySHA256 string
	// BaseImage is the base image reference, pinned by digest.
	BaseImage string
	// Timestamp is the commit time (used instead of the clock).
	Timestamp time.Time
	// ToolName and ToolVersion name the generator (this Dagger module).
	ToolName, ToolVersion string
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ParseBuildInfo decodes the output of `go version -m -json <binary>`.
func ParseBuildInfo(data []byte) (*debug.BuildInfo, error) {
	var bi debug.BuildInfo
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&bi); err != nil {
		return nil, fmt.Errorf("decode Go build information (output of go version -m -json): %w", err)
	}
	if bi.GoVersion == "" || bi.Path == "" {
		return nil, fmt.Errorf("Go build information has no Go version or main package: was the binary built with Go modules?")
	}
	return &bi, nil
}

// Generate builds the SBOM. Everything in it is derived from its inputs:
// the same binary and options give the same document byte for byte.
func Generate(bi *debug.BuildInfo, o Options) (*cdx.BOM, error) {
	if bi == nil {
		return nil, fmt.Errorf("no Go build information given")
	}
	if o.Name == "" || o.Version == "" || o.Platform == "" {
		return nil, fmt.Errorf("SBOM options need a name, a version and a platform (got %q, %q, %q)", o.Name, o.Version, o.Platform)
	}
	if !hexSHA256.MatchString(o.BinarySHA256) {
		return nil, fmt.Errorf("binary SHA-256 %q is not 64 lowercase hex digits", o.BinarySHA256)
	}
	if o.Timestamp.IsZero() {
		return nil, fmt.Errorf("no timestamp given: pass the commit time (the clock is never used)")
	}
	base, err := imageref.ParseDigest(o.BaseImage)
	if err != nil {
		return nil, fmt.Errorf("base image: %w", err)
	}

	app := cdx.Component{
		BOMRef:     "app:" + o.Name,
		Type:       cdx.ComponentTypeApplication,
		Name:       o.Name,
		Version:    o.Version,
		PackageURL: goPURL(bi.Path, o.Version),
		Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: o.BinarySHA256}},
		Properties: buildProperties(bi, o.Platform),
	}

	var comps []cdx.Component
	var deps []string
	add := func(c cdx.Component) {
		comps = append(comps, c)
		deps = append(deps, c.BOMRef)
	}

	add(baseComponent(base))
	std := cdx.Component{
		BOMRef:     goPURL("stdlib", bi.GoVersion),
		Type:       cdx.ComponentTypeLibrary,
		Name:       "stdlib",
		Version:    bi.GoVersion,
		PackageURL: goPURL("stdlib", bi.GoVersion),
	}
	add(std)
	if bi.Main.Path != "" {
		add(moduleComponent(bi.Main, o.Version))
	}
	mods := append([]*debug.Module(nil), bi.Deps...)
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	for _, m := range mods {
		if m == nil {
			continue
		}
		add(moduleComponent(*m, ""))
	}

	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + uuid.NewSHA1(uuid.NameSpaceURL, []byte("sbom:"+o.BinarySHA256+":"+o.Platform+":"+base.String()+":"+o.Version)).String()
	bom.Metadata = &cdx.Metadata{
		Timestamp:  o.Timestamp.UTC().Format(time.RFC3339),
		Component:  &app,
		Properties: &[]cdx.Property{{Name: PropPlatform, Value: o.Platform}},
	}
	if o.ToolName != "" {
		bom.Metadata.Tools = &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: o.ToolName, Version: o.ToolVersion,
		}}}
	}
	bom.Components = &comps
	sort.Strings(deps)
	dependencies := []cdx.Dependency{{Ref: app.BOMRef, Dependencies: &deps}}
	for _, ref := range deps {
		dependencies = append(dependencies, cdx.Dependency{Ref: ref})
	}
	bom.Dependencies = &dependencies
	return bom, nil
}

// Encode writes the SBOM as CycloneDX 1.6 JSON.
func Encode(bom *cdx.BOM) ([]byte, error) {
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).SetPretty(true)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return nil, fmt.Errorf("encode CycloneDX SBOM: %w", err)
	}
	return buf.Bytes(), nil
}

func moduleComponent(m debug.Module, fallbackVersion string) cdx.Component {
	version := m.Version
	if version == "" || version == "(devel)" {
		version = fallbackVersion
	}
	c := cdx.Component{
		BOMRef:     goPURL(m.Path, version),
		Type:       cdx.ComponentTypeLibrary,
		Name:       m.Path,
		Version:    version,
		PackageURL: goPURL(m.Path, version),
	}
	var props []cdx.Property
	if m.Sum != "" {
		props = append(props, cdx.Property{Name: PropModuleSum, Value: m.Sum})
	}
	if m.Replace != nil {
		r := moduleComponent(*m.Replace, "")
		c.Pedigree = &cdx.Pedigree{Notes: fmt.Sprintf("replaced by %s %s", m.Replace.Path, m.Replace.Version)}
		c.PackageURL = r.PackageURL
		c.BOMRef = r.BOMRef
		if m.Replace.Sum != "" {
			props = []cdx.Property{{Name: PropModuleSum, Value: m.Replace.Sum}}
		}
	}
	if len(props) > 0 {
		c.Properties = &props
	}
	return c
}

func baseComponent(base imageref.Ref) cdx.Component {
	repo := base.Repository
	last := base.LastElement()
	q := packageurl.Qualifiers{{Key: "repository_url", Value: repo}}
	if base.Tag != "" {
		q = append(q, packageurl.Qualifier{Key: "tag", Value: base.Tag})
	}
	purl := packageurl.NewPackageURL(packageurl.TypeOCI, "", last, base.Digest, q, "").ToString()
	return cdx.Component{
		BOMRef:      purl,
		Type:        cdx.ComponentTypeContainer,
		Name:        repo,
		Version:     base.Digest,
		Description: "base image",
		PackageURL:  purl,
		Hashes:      &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: strings.TrimPrefix(base.Digest, "sha256:")}},
	}
}

// goPURL returns pkg:golang/<path>@<version>.
func goPURL(path, version string) string {
	ns, name := "", path
	if i := strings.LastIndex(path, "/"); i >= 0 {
		ns, name = path[:i], path[i+1:]
	}
	return packageurl.NewPackageURL(packageurl.TypeGolang, ns, name, version, nil, "").ToString()
}

func buildProperties(bi *debug.BuildInfo, platform string) *[]cdx.Property {
	props := []cdx.Property{{Name: PropPlatform, Value: platform}}
	for _, s := range bi.Settings {
		props = append(props, cdx.Property{Name: PropBuildSetting + s.Key, Value: s.Value})
	}
	return &props
}
