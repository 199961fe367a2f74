package sbom

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dagger/voice/gobuild"
	"dagger/voice/platform"
)

const (
	commit = "0123456789abcdef0123456789abcdef01234567"
	base   = "gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639"
)

// buildAgent cross-compiles the stand-in agent with the pipeline's exact
// arguments and returns the binary path.
func buildAgent(t *testing.T, plat string) string {
	t.Helper()
	p, err := platform.Parse(plat)
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "voice-agent")
	o := gobuild.Options{Package: "./testdata/build/agent", Output: out, Platform: p, Version: "1.4.2", Commit: commit}
	args, err := o.Args()
	require.NoError(t, err)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = ".." // the ci module root
	cmd.Env = os.Environ()
	for _, kv := range o.Env() {
		cmd.Env = append(cmd.Env, kv[0]+"="+kv[1])
	}
	cmd.Env = append(cmd.Env, "GOTOOLCHAIN=local")
	outb, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", outb)
	return out
}

func fileSHA256(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func validateSchema(t *testing.T, doc []byte) {
	t.Helper()
	c := jsonschema.NewCompiler()
	for _, name := range []string{"bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json"} {
		f, err := os.Open(filepath.Join("testdata", "schema", name))
		require.NoError(t, err)
		s, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		require.NoError(t, err)
		require.NoError(t, c.AddResource("http://cyclonedx.org/schema/"+name, s))
	}
	sch, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	require.NoError(t, err)
	require.NoError(t, sch.Validate(inst), "SBOM must validate against the CycloneDX 1.6 schema")
}

func TestGenerateFromRealBinary(t *testing.T) {
	ts := time.Date(2026, 11, 26, 13, 8, 22, 0, time.UTC)
	for _, plat := range []string{"linux/amd64", "linux/arm64"} {
		t.Run(plat, func(t *testing.T) {
			bin := buildAgent(t, plat)
			// The module reads the build information with `go version -m -json`.
			js, err := exec.Command("go", "version", "-m", "-json", bin).Output()
			require.NoError(t, err)
			bi, err := ParseBuildInfo(js)
			require.NoError(t, err)
			direct, err := buildinfo.ReadFile(bin)
			require.NoError(t, err)
			assert.Equal(t, direct.String(), bi.String(), "go version -m -json and debug/buildinfo agree")

			opts := Options{Name: "voice-agent", Version: "1.4.2", Platform: plat, BinarySHA256: fileSHA256(t, bin), BaseImage: base, Timestamp: ts, ToolName: "dagger/voice", ToolVersion: commit}
			bom, err := Generate(bi, opts)
			require.NoError(t, err)
			doc, err := Encode(bom)
			require.NoError(t, err)
			validateSchema(t, doc)

			again, err := Generate(bi, opts)
			require.NoError(t, err)
			doc2, err := Encode(again)
			require.NoError(t, err)
			assert.Equal(t, string(doc), string(doc2), "same inputs, same bytes")

			var got cdx.BOM
			require.NoError(t, cdx.NewBOMDecoder(bytes.NewReader(doc), cdx.BOMFileFormatJSON).Decode(&got))
			assert.Equal(t, cdx.SpecVersion1_6, got.SpecVersion)
			assert.Equal(t, "2026-11-26T13:08:22Z", got.Metadata.Timestamp)
			app := got.Metadata.Component
			assert.Equal(t, "voice-agent", app.Name)
			assert.Equal(t, "pkg:golang/dagger/voice/testdata/build/agent@1.4.2", app.PackageURL)
			assert.Equal(t, []cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: opts.BinarySHA256}}, *app.Hashes)
			props := map[string]string{}
			for _, p := range *app.Properties {
				props[p.Name] = p.Value
			}
			assert.Equal(t, strings.Split(plat, "/")[1], props[PropBuildSetting+"GOARCH"])
			assert.Equal(t, "0", props[PropBuildSetting+"CGO_ENABLED"])
			assert.Equal(t, "true", props[PropBuildSetting+"-trimpath"])

			byName := map[string]cdx.Component{}
			for _, c := range *got.Components {
				byName[c.Name] = c
			}
			uuidC, ok := byName["github.com/google/uuid"]
			require.True(t, ok, "the dependency is listed")
			assert.Equal(t, "pkg:golang/github.com/google/uuid@v1.6.0", uuidC.PackageURL)
			assert.Nil(t, uuidC.Hashes, "h1: sums are not file hashes")
			require.NotNil(t, uuidC.Properties)
			assert.Equal(t, PropModuleSum, (*uuidC.Properties)[0].Name)
			assert.True(t, strings.HasPrefix((*uuidC.Properties)[0].Value, "h1:"))

			baseC, ok := byName["gcr.io/distroless/static-debian12"]
			require.True(t, ok, "the base image is listed")
			assert.Equal(t, cdx.ComponentTypeContainer, baseC.Type)
			assert.Equal(t, "pkg:oci/static-debian12@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639?repository_url=gcr.io%2Fdistroless%2Fstatic-debian12&tag=nonroot", baseC.PackageURL)

			std, ok := byName["stdlib"]
			require.True(t, ok)
			assert.Equal(t, bi.GoVersion, std.Version)
			require.NotNil(t, got.Dependencies)
			assert.Len(t, *(*got.Dependencies)[0].Dependencies, len(*got.Components))
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	bi := &debugBuildInfo
	ok := Options{Name: "voice-agent", Version: "1", Platform: "linux/amd64", BinarySHA256: strings.Repeat("a", 64), BaseImage: base, Timestamp: time.Unix(1, 0)}
	_, err := Generate(bi, ok)
	require.NoError(t, err)
	tests := []struct {
		name    string
		mod     func(*Options)
		wantErr string
	}{
		{"no name", func(o *Options) { o.Name = "" }, "need a name"},
		{"bad hash", func(o *Options) { o.BinarySHA256 = "h1:abc" }, "64 lowercase hex"},
		{"no time", func(o *Options) { o.Timestamp = time.Time{} }, "commit time"},
		{"base by tag", func(o *Options) { o.BaseImage = "gcr.io/distroless/static-debian12:nonroot" }, "base image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mod(&o)
			_, err := Generate(bi, o)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
	_, err = Generate(nil, ok)
	require.Error(t, err)
	_, err = ParseBuildInfo([]byte(`{"GoVersion":"go1.26.8"}`))
	require.ErrorContains(t, err, "main package")
	_, err = ParseBuildInfo([]byte(`not json`))
	require.ErrorContains(t, err, "go version -m -json")
	b, _ := json.Marshal(map[string]any{"GoVersion": "go1", "Path": "x", "Bogus": 1})
	_, err = ParseBuildInfo(b)
	require.ErrorContains(t, err, "Bogus")
}

type debugBI = debug.BuildInfo

var debugBuildInfo = func() (bi debugBI) {
	bi.GoVersion, bi.Path = "go1.26.8", "example.com/x"
	return bi
}()
