package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// moduleRoot is the Dagger module (ci/), two levels above this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "go.mod"))
	return root
}

// TestStandInIsCurrent fails when the committed stand-in differs from what
// the generator produces from the SDK version pinned in ci/go.mod: after
// bumping dagger.io/dagger, run `go generate` in ci/.
func TestStandInIsCurrent(t *testing.T) {
	root := moduleRoot(t)
	for dir, nfiles := range map[string]int{
		root: 2,
		// The example consumer module: its stand-in also holds the voice
		// module's bindings, so it goes stale when the module changes.
		filepath.Join(root, "examples", "greeter", "ci"): 3,
	} {
		files, err := Generate(context.Background(), dir)
		require.NoError(t, err)
		require.Len(t, files, nfiles)
		for name, want := range files {
			got, err := os.ReadFile(filepath.Join(dir, name))
			require.NoError(t, err, "stand-in %s is missing: run `go generate` in ci/", name)
			assert.Equal(t, string(want), string(got), "stand-in %s of %s is stale against the pinned SDK or the voice module: run `go generate` in ci/", name, dir)
		}
	}
}

func TestStandInShape(t *testing.T) {
	files, err := Generate(context.Background(), moduleRoot(t))
	require.NoError(t, err)
	pkg := string(files[PackageFile])
	assert.Contains(t, pkg, "//go:build typecheck\n", "the stand-in must be invisible without the tag")
	assert.Contains(t, pkg, "dagger.io/dagger v0.21.8", "the stand-in names the pinned SDK version")
	for _, want := range []string{
		"type Container = sdk.Container\n",
		"type ContainerPublishOpts = sdk.ContainerPublishOpts\n",
		"type Loadable[T any] = sdk.Loadable[T]\n",
		"func Ref[T Loadable[T]](p0 *Client, p1 ID) T {",
	} {
		assert.Contains(t, pkg, want)
	}
	assert.Regexp(t, `\n\tReturnTypeAny\s+= sdk.ReturnTypeAny\n`, pkg)
	main := string(files[MainFile])
	assert.Contains(t, main, "//go:build typecheck\n")
	assert.Contains(t, main, "var dag *dagger.Client")
}

// TestTypecheckIsReal proves the check has teeth: with an identifier the
// module uses left out of the stand-in, the module no longer compiles.
func TestTypecheckIsReal(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the module twice")
	}
	root := moduleRoot(t)
	out, err := buildWithStandIn(t, root, nil)
	require.NoError(t, err, "the full stand-in must compile the module:\n%s", out)

	out, err = buildWithStandIn(t, root, map[string]bool{"Container": true})
	require.Error(t, err, "leaving Container out of the stand-in must break the module's build:\n%s", out)
	assert.Contains(t, out, "undefined: dagger.Container")

	out, err = buildWithStandIn(t, root, map[string]bool{"File": true})
	require.Error(t, err, "leaving File out of the stand-in must break the module's build:\n%s", out)
	assert.Contains(t, out, "undefined: dagger.File")
}

// TestConsumerTypecheckIsReal proves the example consumer module is
// checked against the voice module's bindings: without a function it
// calls, it no longer compiles.
func TestConsumerTypecheckIsReal(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the consumer three times")
	}
	dir := filepath.Join(moduleRoot(t), "examples", "greeter", "ci")
	out, err := buildWithStandIn(t, dir, nil)
	require.NoError(t, err, "the full stand-in must compile the consumer:\n%s", out)

	out, err = buildWithStandIn(t, dir, map[string]bool{"Voice.Test": true})
	require.Error(t, err, "without Voice.Test the consumer must not build:\n%s", out)
	assert.Contains(t, out, "m.voice().Test undefined")

	out, err = buildWithStandIn(t, dir, map[string]bool{"VoiceBuild.Publish": true})
	require.Error(t, err, "without VoiceBuild.Publish the consumer must not build:\n%s", out)
	assert.Contains(t, out, "Publish undefined")
}

// buildWithStandIn compiles the module in root with the stand-in generated
// without the identifiers in omit (an overlay: the files on disk stay).
func buildWithStandIn(t *testing.T, root string, omit map[string]bool) (string, error) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	require.NoError(t, err)
	files, err := GenerateExcept(context.Background(), root, omit)
	require.NoError(t, err)
	dir := t.TempDir()
	replace := map[string]string{}
	for name, src := range files {
		p := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
		require.NoError(t, os.WriteFile(p, src, 0o644))
		replace[filepath.Join(root, name)] = p
	}
	overlay, err := json.Marshal(map[string]any{"Replace": replace})
	require.NoError(t, err)
	op := filepath.Join(dir, "overlay.json")
	require.NoError(t, os.WriteFile(op, overlay, 0o644))
	cmd := exec.Command(goBin, "build", "-tags", "typecheck", "-overlay", op, "-o", os.DevNull, ".")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestIsLocal(t *testing.T) {
	for src, want := range map[string]bool{
		"../../..":                           true,
		"./lib":                              true,
		"/abs/mod":                           true,
		"lib/mod":                            true,
		"gitlab.com/acme/voice-agent@v1.0.0": false,
		"github.com/org/repo/mod":            false,
		"git@gitlab.com:acme/voice-agent":    false,
		"https://gitlab.com/acme/voice.git":  false,
	} {
		assert.Equal(t, want, isLocal(src), src)
	}
}

// A consumer whose dependency is remote, or whose dependency has no
// dagger.json, gets an error naming the dependency and the way out.
func TestDependencyErrors(t *testing.T) {
	writeModule := func(t *testing.T, depSource string) string {
		dir := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "ci"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "ci", "go.mod"), []byte("module dagger/c\n\ngo 1.26\n"), 0o644))
		cfg := `{"name": "c", "sdk": {"source": "go"}, "source": "ci", "dependencies": [{"name": "voice", "source": "` + depSource + `"}]}`
		require.NoError(t, os.WriteFile(filepath.Join(dir, "dagger.json"), []byte(cfg), 0o644))
		return filepath.Join(dir, "ci")
	}
	_, err := loadModuleInfo(context.Background(), writeModule(t, "gitlab.com/acme/voice-agent@v1.0.0"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `dependency "voice"`)
	assert.Contains(t, err.Error(), "is not a local path")

	_, err = loadModuleInfo(context.Background(), writeModule(t, "../nowhere"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read the dependency's dagger.json")

	// A module whose dagger.json names another source directory has no
	// config of its own: no dependencies.
	base := t.TempDir()
	dir := filepath.Join(base, "mod")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module dagger/d\n\ngo 1.26\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(base, "dagger.json"), []byte(`{"name": "x", "source": "elsewhere"}`), 0o644))
	info, err := loadModuleInfo(context.Background(), dir)
	require.NoError(t, err)
	assert.Equal(t, "dagger/d", info.goPath)
	assert.Empty(t, info.deps)
}
