package bindings

import (
	"context"
	"go/types"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dagger/voice/callcheck"
)

func TestNames(t *testing.T) {
	for _, tc := range []struct{ dep, mod, object, want string }{
		{"voice", "voice", "Voice", "Voice"},
		{"voice", "voice", "TestRun", "VoiceTestRun"},
		{"voice", "voice", "VoiceBuild", "VoiceBuild"},
		{"voice", "voice", "Voicemail", "VoiceVoicemail"},
		{"pipeline", "voice", "Voice", "Pipeline"},
		{"pipeline", "voice", "VoiceBuild", "PipelineBuild"},
		{"pipeline", "voice", "TestRun", "PipelineTestRun"},
		{"my-mod", "my-mod", "MyMod", "MyMod"},
		{"my-mod", "my-mod", "Thing", "MyModThing"},
	} {
		assert.Equal(t, tc.want, TypeName(tc.dep, tc.mod, tc.object), "%+v", tc)
	}
	for in, want := range map[string]string{
		"sourceUrl":     "SourceURL",
		"sshKey":        "SSHKey",
		"gitlabApi":     "GitlabAPI",
		"json":          "JSON",
		"binarySha256":  "BinarySha256",
		"mr":            "Mr",
		"waitReady":     "WaitReady",
		"httpAuthToken": "HTTPAuthToken",
		"visitorId":     "VisitorID",
		"sbomDirectory": "SbomDirectory",
	} {
		assert.Equal(t, want, FormatName(in), "FormatName(%q)", in)
	}
	for in, want := range map[string]string{
		"WaitReady": "waitReady", "SourceUrl": "sourceUrl", "Ci": "ci", "BinarySha256": "binarySha256", "deployRepo": "deployRepo",
	} {
		assert.Equal(t, want, GraphQLName(in), "GraphQLName(%q)", in)
	}
}

func loadVoice(t *testing.T) *callcheck.Schema {
	t.Helper()
	s, err := callcheck.Load(context.Background(), "..", "Voice", "typecheck")
	require.NoError(t, err)
	return s
}

// TestVoiceBindings pins the signatures a consumer of the voice module
// codes against, one of each kind.
func TestVoiceBindings(t *testing.T) {
	out, err := Render(Dependency{Name: "voice", ModuleName: "voice", Schema: loadVoice(t)}, nil)
	require.NoError(t, err)
	src := string(out)
	for _, want := range []string{
		"func (r *Client) Voice(opts ...VoiceOpts) *Voice {",
		"func (r *Voice) Test(opts ...VoiceTestOpts) *VoiceTestRun {",
		"func (r *VoiceTestRun) Check(ctx context.Context) (string, error) {",
		"func (r *VoiceTestRun) Report() *File {",
		"func (r *VoiceTestRun) ExitCode(ctx context.Context) (int, error) {",
		"func (r *Voice) Build(opts ...VoiceBuildOpts) *VoiceBuild {",
		"func (r *VoiceBuild) Publish(ctx context.Context, address string) (string, error) {",
		"func (r *Voice) WithRegistryAuth(address string, username string, secret *Secret) *Voice {",
		"func (r *VoiceBuild) Containers(ctx context.Context) ([]Container, error) {",
		"func (r *VoiceBuild) Platforms(ctx context.Context) ([]Platform, error) {",
		"func (r *VoiceBuild) SourceURL(ctx context.Context) (string, error) {",
		"func (r *Voice) DeployRepo(url string, opts ...VoiceDeployRepoOpts) *VoiceDeployRepo {",
		"func (r *VoiceDeployRepo) Bump(image string, opts ...VoiceDeployRepoBumpOpts) *VoiceDeployChange {",
		"func (r *VoiceDeployRepo) Preview() *VoiceDeployRepo {",
		"func (r *VoiceEvalRun) Score(ctx context.Context) (float64, error) {",
		"func (r *VoiceDeployChange) ID(ctx context.Context) (VoiceDeployChangeID, error) {",
		"func (r *Client) LoadVoiceTestRunFromID(id VoiceTestRunID) *VoiceTestRun {",
	} {
		assert.Contains(t, src, want)
	}
	for _, re := range []string{
		`type VoiceBuildOpts struct \{[^}]*\n\tPlatforms +\[\]Platform\n`,
		`type VoiceBuildOpts struct \{[^}]*\n\tSourceURL +string\n`,
		`type VoiceDeployRepoOpts struct \{[^}]*\n\tSSHKey +\*Secret\n`,
		`type VoiceWithKeylessSigningOpts struct \{[^}]*\n\tIDToken +\*Secret\n`,
		`type VoiceTestOpts struct \{[^}]*\n\tSource +\*Directory\n`,
		`type VoiceTestOpts struct \{[^}]*\n\tRace +bool\n`,
	} {
		assert.Regexp(t, re, src)
	}
	assert.NotContains(t, src, "+optional", "pragmas are not part of the generated comments")
	assert.NotContains(t, src, "type VoiceVoice")

	omitted, err := Render(Dependency{Name: "voice", ModuleName: "voice", Schema: loadVoice(t)}, map[string]bool{"Voice.Test": true})
	require.NoError(t, err)
	assert.NotContains(t, string(omitted), "func (r *Voice) Test(")
	assert.Contains(t, string(omitted), "func (r *VoiceTestRun) Check(")
}

func loadShop(t *testing.T) *callcheck.Schema {
	t.Helper()
	s, err := callcheck.Load(context.Background(), filepath.Join("testdata", "shop"), "Shop")
	require.NoError(t, err)
	return s
}

// TestShopBindingsCompile renders a dependency installed under another
// name, checks the shapes the voice module lacks, and compiles the result
// with a consumer that uses each of them.
func TestShopBindingsCompile(t *testing.T) {
	out, err := Render(Dependency{Name: "store", ModuleName: "shop", Schema: loadShop(t)}, nil)
	require.NoError(t, err)
	src := string(out)
	for _, want := range []string{
		"func (r *Client) Store(city string, opts ...StoreOpts) *Store {",
		"func (r *Store) Close(ctx context.Context) error {",
		"func (r *Store) WithName(name string) *Store {",
		"func (r *Store) With(f WithStoreFunc) *Store {",
		"func (r *Store) Items(ctx context.Context) ([]StoreItem, error) {",
		"func (r *Store) Visitor(opts ...StoreVisitorOpts) *StoreShopper {",
		"func (r *Store) Name(ctx context.Context) (string, error) {",
		"func (r *StoreItem) Price(ctx context.Context, opts ...StoreItemPriceOpts) (float64, error) {",
		"func (r *StoreShopper) Tags(ctx context.Context, opts ...StoreShopperTagsOpts) ([]string, error) {",
	} {
		assert.Contains(t, src, want)
	}
	assert.Regexp(t, `type StoreVisitorOpts struct \{\n\t// Shopper's ID.\n\tVisitorID string\n\}`, src)
	assert.Regexp(t, `type StoreOpts struct \{\n\t// Opening hour.\n\tOpens int\n\}`, src)

	goBin, err := exec.LookPath("go")
	require.NoError(t, err)
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":      "module example.com/consumer\n\ngo 1.26\n",
		"client.go":   "package dagger\n\n// Client stands in for the SDK's.\ntype Client struct{}\n",
		"bindings.go": "package dagger\n\nimport \"context\"\n\n" + src,
		"use.go": `package dagger

import "context"

func use(ctx context.Context, dag *Client) {
	shop := dag.Store("Lyon", StoreOpts{Opens: 8}).WithName("Le Shop").With(func(s *Store) *Store { return s })
	_ = shop.Close(ctx)
	items, _ := shop.Items(ctx)
	for _, it := range items {
		_, _ = it.Price(ctx, StoreItemPriceOpts{Currency: "USD", Discount: 0.1})
	}
	_, _ = shop.Visitor(StoreVisitorOpts{VisitorID: "v1"}).Tags(ctx, StoreShopperTagsOpts{Filter: []string{"vip"}})
	_, _ = shop.Name(ctx)
	var _ StoreID
}
`,
	}
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	build := func() (string, error) {
		cmd := exec.Command(goBin, "vet", ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out2, err := build()
	require.NoError(t, err, "rendered bindings and their consumer must compile:\n%s", out2)

	// The check has teeth: without WithName the consumer no longer builds.
	less, err := Render(Dependency{Name: "store", ModuleName: "shop", Schema: loadShop(t)}, map[string]bool{"Store.WithName": true})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bindings.go"), []byte("package dagger\n\nimport \"context\"\n\n"+string(less)), 0o644))
	out2, err = build()
	require.Error(t, err)
	assert.Contains(t, out2, "WithName undefined")
}

func TestUnsupportedType(t *testing.T) {
	s := loadShop(t)
	// A dependency function whose result has no binding (a map) is refused
	// with its name, instead of rendering code that would not compile.
	fn := s.Objects["Shop"].Functions["close"]
	fn.ResultType = types.NewMap(types.Typ[types.String], types.Typ[types.String])
	_, err := Render(Dependency{Name: "shop", ModuleName: "shop", Schema: s}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Shop.Close")
	assert.Contains(t, err.Error(), "has no binding")
	assert.True(t, strings.Contains(err.Error(), "map[string]string"), err.Error())
}
