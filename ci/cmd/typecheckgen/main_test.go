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
	files, err := Generate(context.Background(), root)
	require.NoError(t, err)
	require.Len(t, files, 2)
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(root, name))
		require.NoError(t, err, "stand-in %s is missing: run `go generate` in ci/", name)
		assert.Equal(t, string(want), string(got), "stand-in %s is stale against the pinned SDK: run `go generate` in ci/", name)
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
	goBin, err := exec.LookPath("go")
	require.NoError(t, err)

	vet := func(t *testing.T, omit map[string]bool) (string, error) {
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

	out, err := vet(t, nil)
	require.NoError(t, err, "the full stand-in must compile the module:\n%s", out)

	out, err = vet(t, map[string]bool{"Container": true})
	require.Error(t, err, "leaving Container out of the stand-in must break the module's build:\n%s", out)
	assert.Contains(t, out, "undefined: dagger.Container")

	out, err = vet(t, map[string]bool{"File": true})
	require.Error(t, err, "leaving File out of the stand-in must break the module's build:\n%s", out)
	assert.Contains(t, out, "undefined: dagger.File")
}
