package gobuild

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"dagger/voice/platform"
)

// stageModule copies the stand-in agent and the ci module's go.mod/go.sum
// into a fresh directory, so that builds run from different paths.
func stageModule(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join("..", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), data, 0o644))
	}
	src := filepath.Join("..", "testdata", "build", "agent", "main.go")
	data, err := os.ReadFile(src)
	require.NoError(t, err)
	pkg := filepath.Join(dir, "testdata", "build", "agent")
	require.NoError(t, os.MkdirAll(pkg, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(pkg, "main.go"), data, 0o644))
	return dir
}

// goBuild runs the exact command line and environment of Options in dir,
// with the given GOCACHE, and returns the binary's SHA-256.
func goBuild(t testing.TB, dir, gocache string, o Options) string {
	t.Helper()
	args, err := o.Args()
	require.NoError(t, err)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOCACHE="+gocache)
	for _, kv := range o.Env() {
		cmd.Env = append(cmd.Env, kv[0]+"="+kv[1])
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s\n%s", strings.Join(args, " "), out)
	data, err := os.ReadFile(o.Output)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// TestReproducibleBinary builds the agent stand-in twice with the
// pipeline's exact arguments: from two different directories, once with
// an empty build cache and once with the developer's warm one. The
// binaries must be byte-identical: no paths, build IDs, VCS data or cache
// state leak into them. VOICE_REPRO_MODULE/VOICE_REPRO_PKG point it at the
// real agent (e.g. /work/main and ./agent/cmd/voice-agent).
func TestReproducibleBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the standard library from an empty cache")
	}
	p, err := platform.Parse("linux/arm64")
	require.NoError(t, err)
	o := Options{Package: "./testdata/build/agent", Platform: p, Version: "1.4.2", Commit: "0123456789abcdef0123456789abcdef01234567"}
	dirA, dirB := stageModule(t), stageModule(t)
	if m := os.Getenv("VOICE_REPRO_MODULE"); m != "" {
		dirA, dirB = m, m
		o.Package = os.Getenv("VOICE_REPRO_PKG")
	}
	warm, err := exec.Command("go", "env", "GOCACHE").Output()
	require.NoError(t, err)

	o.Output = filepath.Join(t.TempDir(), "a", "voice-agent")
	start := time.Now()
	a := goBuild(t, dirA, t.TempDir(), o)
	t.Logf("clean build: %s", time.Since(start).Round(time.Millisecond))
	o.Output = filepath.Join(t.TempDir(), "b", "voice-agent")
	b := goBuild(t, dirB, strings.TrimSpace(string(warm)), o)
	require.Equal(t, a, b, "two builds of the same source with the same arguments must be identical")
	t.Logf("sha256 %s", a)

	// The stamped values are in the binary; a different version changes it.
	o.Version = "1.4.3"
	o.Output = filepath.Join(t.TempDir(), "c", "voice-agent")
	c := goBuild(t, dirB, strings.TrimSpace(string(warm)), o)
	require.NotEqual(t, a, c, "the version is stamped into the binary")
}

// BenchmarkCrossCompile compiles the agent stand-in from an empty build
// cache for amd64 and arm64 on this (amd64) machine, with the pipeline's
// arguments. Compare the two ns/op figures: cross-compiling arm64 should
// cost about the same as the native build (no emulation). Point it at the
// real agent with VOICE_REPRO_MODULE and VOICE_REPRO_PKG.
//
//	go test ./gobuild -run '^$' -bench CrossCompile -benchtime 3x
func BenchmarkCrossCompile(b *testing.B) {
	dir := stageModule(b)
	pkg := "./testdata/build/agent"
	if m := os.Getenv("VOICE_REPRO_MODULE"); m != "" {
		dir, pkg = m, os.Getenv("VOICE_REPRO_PKG")
	}
	for _, arch := range []string{"amd64", "arm64"} {
		b.Run(arch, func(b *testing.B) {
			p, err := platform.Parse("linux/" + arch)
			require.NoError(b, err)
			o := Options{Package: pkg, Platform: p, Version: "1.4.2", Commit: "0123456789abcdef0123456789abcdef01234567", Output: filepath.Join(b.TempDir(), "voice-agent")}
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				cache := b.TempDir()
				b.StartTimer()
				goBuild(b, dir, cache, o)
			}
		})
	}
}
