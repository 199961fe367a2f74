package attest

import (
	"encoding/json"
	"runtime/debug"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dagger/voice/imagemeta"
	"dagger/voice/platform"
	"dagger/voice/provenance"
)

const (
	image  = "registry.gitlab.com/acme/voice-agent@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	commit = "89abcdef0123456789abcdef0123456789abcdef"
	base   = "gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639"
	sumA   = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	sumB   = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func plat(t *testing.T, s string) platform.Platform {
	p, err := platform.Parse(s)
	require.NoError(t, err)
	return p
}

func TestSBOMName(t *testing.T) {
	assert.Equal(t, "sbom-linux-arm-v7.cdx.json", SBOMName(plat(t, "linux/arm/v7")))
	assert.Equal(t, "sbom-linux-arm64.cdx.json", SBOMName(plat(t, "linux/arm64/v8")))
}

func TestProvenance(t *testing.T) {
	built := []Built{
		{Platform: plat(t, "linux/amd64"), BinarySHA256: sumA, SBOM: []byte("amd64 sbom")},
		{Platform: plat(t, "linux/arm64"), BinarySHA256: sumB, SBOM: []byte("arm64 sbom")},
	}
	st, err := Provenance(provenance.Options{
		Image: image, Version: "1.4.2", Commit: commit, Package: "./agent/cmd/voice-agent",
		SourceURL: "https://gitlab.com/acme/voice-agent", CommitTime: time.Date(2026, 11, 26, 13, 8, 22, 0, time.UTC),
		BaseImage: base,
	}, built, Module{Version: commit, DaggerVersion: "v0.21.8"})
	require.NoError(t, err)
	doc, err := st.JSON()
	require.NoError(t, err)
	var got struct {
		Predicate struct {
			BuildDefinition struct {
				ExternalParameters struct {
					Platforms []string `json:"platforms"`
				} `json:"externalParameters"`
			} `json:"buildDefinition"`
			RunDetails struct {
				Builder struct {
					ID      string            `json:"id"`
					Version map[string]string `json:"version"`
				} `json:"builder"`
				Byproducts []struct {
					Name   string            `json:"name"`
					Digest map[string]string `json:"digest"`
				} `json:"byproducts"`
			} `json:"runDetails"`
		} `json:"predicate"`
	}
	require.NoError(t, json.Unmarshal(doc, &got))
	assert.Equal(t, []string{"linux/amd64", "linux/arm64"}, got.Predicate.BuildDefinition.ExternalParameters.Platforms)
	assert.Equal(t, "https://gitlab.com/acme/voice-agent/-/tree/"+commit+"/ci", got.Predicate.RunDetails.Builder.ID)
	assert.Equal(t, map[string]string{"dagger/voice": commit, "dagger.io/dagger": "v0.21.8"}, got.Predicate.RunDetails.Builder.Version)
	type bp = struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	}
	// sha256("amd64 sbom") and sha256("arm64 sbom"), computed with sha256sum.
	assert.Equal(t, []bp{
		{"linux-amd64/voice-agent", map[string]string{"sha256": sumA}},
		{"linux-arm64/voice-agent", map[string]string{"sha256": sumB}},
		{"sbom-linux-amd64.cdx.json", map[string]string{"sha256": "fd731d6abfe5fd4f819a64716f8133b6a77015700bde3f7302aaaf4d4c7bdd82"}},
		{"sbom-linux-arm64.cdx.json", map[string]string{"sha256": "6b111f67da40f3646cb4347fae34840afaa54cc24d22d03639141135bd5185fa"}},
	}, got.Predicate.RunDetails.Byproducts)

	_, err = Provenance(provenance.Options{Image: image, Commit: commit}, nil, Module{})
	require.ErrorContains(t, err, "no platform")
	_, err = Provenance(provenance.Options{Image: image, Commit: commit, Platforms: []string{"linux/amd64"}}, built, Module{})
	require.ErrorContains(t, err, "already list platforms")
}

func labels(rev string) map[string]string {
	return map[string]string{
		imagemeta.LabelVersion: "1.4.2", imagemeta.LabelRevision: rev, imagemeta.LabelCreated: "2026-11-26T13:08:22Z",
		imagemeta.LabelBaseName:   "gcr.io/distroless/static-debian12:nonroot",
		imagemeta.LabelBaseDigest: "sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639",
		imagemeta.LabelSource:     "https://gitlab.com/acme/voice-agent",
	}
}

func TestFromLabels(t *testing.T) {
	plats := []platform.Platform{plat(t, "linux/amd64"), plat(t, "linux/arm64")}
	got, err := FromLabels(plats, []map[string]string{labels(commit), labels(commit)})
	require.NoError(t, err)
	assert.Equal(t, Published{
		Version: "1.4.2", Revision: commit, Source: "https://gitlab.com/acme/voice-agent",
		CommitTime: time.Date(2026, 11, 26, 13, 8, 22, 0, time.UTC), BaseImage: base,
	}, got)

	mixed := labels("0000000000000000000000000000000000000001")
	_, err = FromLabels(plats, []map[string]string{labels(commit), mixed})
	require.ErrorContains(t, err, "platforms linux/amd64 and linux/arm64 disagree on label "+imagemeta.LabelRevision)

	for _, name := range RequiredLabels {
		l := labels(commit)
		delete(l, name)
		_, err = FromLabels(plats, []map[string]string{labels(commit), l})
		require.ErrorContains(t, err, "linux/arm64: the image has no "+name+" label", name)
	}
	noSource := labels(commit)
	delete(noSource, imagemeta.LabelSource)
	_, err = FromLabels(plats[:1], []map[string]string{noSource})
	require.NoError(t, err, "the source label is optional")

	_, err = FromLabels(plats, []map[string]string{labels(commit)})
	require.ErrorContains(t, err, "every platform")
	bad := labels(commit)
	bad[imagemeta.LabelCreated] = "yesterday"
	_, err = FromLabels(plats[:1], []map[string]string{bad})
	require.ErrorContains(t, err, "RFC 3339")
}

func TestMainPackage(t *testing.T) {
	info := func(path, main string) *debug.BuildInfo {
		return &debug.BuildInfo{Path: path, Main: debug.Module{Path: main}}
	}
	assert.Equal(t, "./agent/cmd/voice-agent", MainPackage(info("github.com/acme/voice-agent/agent/cmd/voice-agent", "github.com/acme/voice-agent")))
	assert.Equal(t, "./cmd/greeter", MainPackage(info("example.com/greeter/cmd/greeter", "example.com/greeter")))
	assert.Equal(t, ".", MainPackage(info("example.com/tool", "example.com/tool")))
	assert.Equal(t, "./agent/cmd/voice-agent", MainPackage(info("command-line-arguments", "")), "no module: the default")
	assert.Equal(t, "./agent/cmd/voice-agent", MainPackage(nil))
	assert.Equal(t, "./agent/cmd/voice-agent", MainPackage(info("example.com/other/x", "example.com/greeter")), "not inside the main module")
}
