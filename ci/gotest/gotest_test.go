package gotest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"defaults", Options{JUnitPath: "/out/junit.xml"}, ""},
		{"patterns", Options{JUnitPath: "j.xml", Packages: []string{"./agent/...", "./evals/cmd/eval", "gitlab.com/acme/x/..."}}, ""},
		{"no junit path", Options{}, "JUnitPath is empty"},
		{"shell injection", Options{JUnitPath: "j.xml", Packages: []string{"./...; rm -rf /"}}, `"./...; rm -rf /" is not a Go package pattern`},
		{"flag smuggled as package", Options{JUnitPath: "j.xml", Packages: []string{"-exec=evil"}}, "is not a Go package pattern"},
		{"negative timeout", Options{JUnitPath: "j.xml", Timeout: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestArgs(t *testing.T) {
	o := Options{JUnitPath: "/out/junit.xml", Race: true, Timeout: 5 * time.Minute}
	assert.Equal(t, []string{"go", "vet", "./..."}, o.VetArgs())
	args := o.TestArgs()
	assert.Equal(t, "gotestsum", args[0])
	sep := indexOf(args, "--")
	require.Positive(t, sep, "gotestsum flags and go test flags are separated by --")
	assert.Equal(t, []string{"-race", "-timeout", "5m0s", "./..."}, args[sep+1:])
	assert.Equal(t, "/out/junit.xml", args[indexOf(args, "--junitfile")+1])

	o = Options{JUnitPath: "j.xml", Packages: []string{"./agent/..."}}
	args = o.TestArgs()
	assert.Equal(t, []string{"./agent/..."}, args[indexOf(args, "--")+1:], "no -race unless asked")
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// TestScriptRuns executes the generated script with sh and stand-in
// commands on PATH, checking that tests run even when vet fails and that the
// first failure's exit code is what the caller sees.
func TestScriptRuns(t *testing.T) {
	for _, tc := range []struct {
		name             string
		vetRC, testRC    int
		wantRC           string
		wantTestsStarted bool
	}{
		{"all pass", 0, 0, "0", true},
		{"vet fails, tests still run", 3, 0, "3", true},
		{"tests fail", 0, 1, "1", true},
		{"both fail: vet's code wins", 2, 1, "2", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := t.TempDir()
			out := t.TempDir()
			writeStub(t, bin, "go", tc.vetRC, out)
			writeStub(t, bin, "gotestsum", tc.testRC, out)
			o := Options{JUnitPath: filepath.Join(out, "junit.xml"), ExitCodePath: filepath.Join(out, "rc")}
			script, err := o.Script()
			require.NoError(t, err)
			cmd := exec.Command("sh", "-c", script)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
			b, err := cmd.CombinedOutput()
			require.NoError(t, err, "with ExitCodePath the script itself exits 0:\n%s", b)
			rc, err := os.ReadFile(filepath.Join(out, "rc"))
			require.NoError(t, err)
			assert.Equal(t, tc.wantRC, strings.TrimSpace(string(rc)))
			_, err = os.Stat(filepath.Join(out, "gotestsum.ran"))
			assert.Equal(t, tc.wantTestsStarted, err == nil)
		})
	}
}

func writeStub(t *testing.T, dir, name string, rc int, out string) {
	t.Helper()
	script := "#!/bin/sh\ntouch " + filepath.Join(out, name+".ran") + "\nexit " + string(rune('0'+rc)) + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755))
}

func TestParseJUnit(t *testing.T) {
	const report = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="4" failures="1" errors="0">
  <testsuite tests="3" failures="1" name="agent/tools">
    <testcase classname="agent/tools" name="TestBook" time="0.01"></testcase>
    <testcase classname="agent/tools" name="TestCancel" time="0.01"><failure message="Failed">boom</failure></testcase>
    <testcase classname="agent/tools" name="TestSlow" time="0"><skipped message="short"></skipped></testcase>
  </testsuite>
  <testsuite tests="1" name="evals/score">
    <testcase classname="evals/score" name="TestScore" time="0.02"></testcase>
  </testsuite>
</testsuites>`
	s, err := ParseJUnit(strings.NewReader(report))
	require.NoError(t, err)
	assert.Equal(t, 4, s.Tests)
	assert.Equal(t, 1, s.Failures)
	assert.Equal(t, 1, s.Skipped)
	assert.Equal(t, []string{"agent/tools/TestCancel"}, s.Failed)
	assert.False(t, s.Passed())
	assert.Equal(t, "2 passed, 1 failed, 1 skipped (failed: agent/tools/TestCancel)", s.String())

	_, err = ParseJUnit(strings.NewReader("<testsuites><testsuite>"))
	assert.ErrorContains(t, err, "parse JUnit report")
	empty, err := ParseJUnit(strings.NewReader("<testsuites></testsuites>"))
	require.NoError(t, err)
	assert.False(t, empty.Passed(), "a report without tests is not a pass")
}

// TestRealGotestsum runs the pinned gotestsum (installed by .ci/setup) over a
// small module with a passing, a failing and a skipped test, and reads the
// report it writes.
func TestRealGotestsum(t *testing.T) {
	needGotestsum(t)
	mod := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/m\n\ngo 1.22\n",
		"m_test.go": `package m
import "testing"
func TestPass(t *testing.T) {}
func TestFail(t *testing.T) { t.Fatal("boom") }
func TestSkip(t *testing.T) { t.Skip("later") }
`,
	}
	for name, src := range files {
		require.NoError(t, os.WriteFile(filepath.Join(mod, name), []byte(src), 0o644))
	}
	out := t.TempDir()
	o := Options{JUnitPath: filepath.Join(out, "junit.xml"), ExitCodePath: filepath.Join(out, "rc")}
	script, err := o.Script()
	require.NoError(t, err)
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	rc, err := os.ReadFile(filepath.Join(out, "rc"))
	require.NoError(t, err)
	assert.Equal(t, "1", strings.TrimSpace(string(rc)), "a failing test fails the run")

	f, err := os.Open(filepath.Join(out, "junit.xml"))
	require.NoError(t, err)
	defer f.Close()
	s, err := ParseJUnit(f)
	require.NoError(t, err)
	assert.Equal(t, 1, s.Failures)
	assert.Equal(t, 1, s.Skipped)
	assert.Equal(t, []string{"./TestFail"}, s.Failed, "suites are named relative to the module root")
	assert.GreaterOrEqual(t, s.Tests, 3)
}

func FuzzParseJUnit(f *testing.F) {
	f.Add([]byte(`<testsuites><testsuite name="a"><testcase name="b"><failure/></testcase></testsuite></testsuites>`))
	f.Add([]byte(`<testsuites></testsuites>`))
	f.Add([]byte(`<x>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseJUnit(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		if s.Failures+s.Errors+s.Skipped > s.Tests {
			t.Fatalf("counts exceed tests: %+v", s)
		}
		if len(s.Failed) != s.Failures+s.Errors {
			t.Fatalf("failed names %d != failures+errors %d", len(s.Failed), s.Failures+s.Errors)
		}
	})
}

// TestSuiteScript runs the suite script with the pinned gotestsum over a
// repository of three modules: one passes, one fails only with its build
// tag, and an optional one is missing. Every module runs whatever the
// others did, each gets its report and its exit code.
func TestSuiteScript(t *testing.T) {
	needGotestsum(t)
	repo := t.TempDir()
	files := map[string]string{
		"go.mod":              "module example.com/root\n\ngo 1.22\n",
		"root_test.go":        "package root\nimport \"testing\"\nfunc TestShort(t *testing.T) { if !testing.Short() { t.Fatal(\"want -short\") } }\n",
		"sub/go.mod":          "module example.com/sub\n\ngo 1.22\n",
		"sub/sub_test.go":     "//go:build special\n\npackage sub\nimport \"testing\"\nfunc TestTagged(t *testing.T) { t.Fatal(\"ran with the tag\") }\n",
		"sub/untagged.go":     "package sub\n",
		"short/go.mod":        "module example.com/short\n\ngo 1.22\n",
		"short/short_test.go": "package short\nimport \"testing\"\nfunc TestShort(t *testing.T) { if !testing.Short() { t.Fatal(\"want -short\") } }\n",
	}
	for name, src := range files {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(repo, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(repo, name), []byte(src), 0o644))
	}
	out := t.TempDir()
	script, err := SuiteScript([]Module{
		{Name: "root", Dir: "."},
		{Name: "sub", Dir: "sub", Tags: []string{"special"}},
		{Name: "gone", Dir: "gone", Optional: true},
	}, true, out)
	require.NoError(t, err)
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	for name, want := range map[string]string{"root": "0", "sub": "1", "gone": "skipped"} {
		rc, err := os.ReadFile(filepath.Join(out, name+".exit-code"))
		require.NoError(t, err, name)
		assert.Equal(t, want, strings.TrimSpace(string(rc)), name)
	}

	// A module marked Short gets -short even when the suite does not.
	script, err = SuiteScript([]Module{{Name: "short", Dir: "short", Short: true}, {Name: "long", Dir: "short"}}, false, out)
	require.NoError(t, err)
	cmd = exec.Command("sh", "-c", script)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	b, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	for name, want := range map[string]string{"short": "0", "long": "1"} {
		rc, err := os.ReadFile(filepath.Join(out, name+".exit-code"))
		require.NoError(t, err, name)
		assert.Equal(t, want, strings.TrimSpace(string(rc)), name)
	}
	f, err := os.Open(filepath.Join(out, "sub.xml"))
	require.NoError(t, err)
	defer f.Close()
	s, err := ParseJUnit(f)
	require.NoError(t, err)
	assert.Equal(t, []string{"./TestTagged"}, s.Failed, "the tag was passed: the tagged test ran")

	_, err = SuiteScript([]Module{{Name: "x", Dir: "../up"}}, false, out)
	require.ErrorContains(t, err, "inside the repository")
	_, err = SuiteScript([]Module{{Name: "x", Dir: "a"}, {Name: "x", Dir: "b"}}, false, out)
	require.ErrorContains(t, err, "unique")
	_, err = SuiteScript([]Module{{Name: "x", Dir: "a", Tags: []string{"a b"}}}, false, out)
	require.ErrorContains(t, err, "build tag")
}

// needGotestsum skips without the pinned gotestsum, and fails in CI,
// where .ci/setup must have installed it.
func needGotestsum(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("gotestsum"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("gotestsum not on PATH: .ci/setup installs it")
		}
		t.Skip("gotestsum not on PATH; .ci/setup installs it")
	}
}

// TestRepositoryModulesMatchCITest: the modules test-all runs are the ones
// .ci/test runs, with the same directories, tags and race detector, so
// GitLab's test job and the README's test command test the same things.
func TestRepositoryModulesMatchCITest(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("..", "..", ".ci", "test"))
	if os.IsNotExist(err) {
		t.Skip(".ci/test is not in this checkout")
	}
	require.NoError(t, err)
	var fromScript []Module
	for _, line := range strings.Split(string(script), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "if [ -f deploy/go.mod ]; then"))
		f := strings.Fields(line)
		if len(f) < 5 || f[0] != "run_module" || strings.HasPrefix(f[1], "()") {
			continue
		}
		m := Module{Name: f[1], Dir: f[2], Race: f[4] == "race"}
		if tags := strings.Trim(f[3], `"`); tags != "" {
			m.Tags = []string{tags}
		}
		fromScript = append(fromScript, m)
	}
	require.NotEmpty(t, fromScript, "no run_module lines found in .ci/test")
	var ours []Module
	for _, m := range RepositoryModules {
		m.Optional, m.Short = false, false
		ours = append(ours, m)
	}
	assert.ElementsMatch(t, fromScript, ours)
}
