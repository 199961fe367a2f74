package evalrun

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func valid() Options {
	return Options{Suite: "voice", Threshold: 0.92, Repeat: 1, Parallel: 4}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"defaults", func(*Options) {}, ""},
		{"path suite", func(o *Options) { o.Suite = "evals/suites/voice" }, ""},
		{"live with model and filter", func(o *Options) {
			o.Live, o.Model, o.Filter, o.BaseURL = true, "gpt-realtime-2025-08-28", "crisis", "https://proxy.internal/v1"
		}, ""},
		{"threshold above 1", func(o *Options) { o.Threshold = 1.5 }, "threshold 1.5 is outside 0..1"},
		{"threshold negative", func(o *Options) { o.Threshold = -0.1 }, "outside 0..1"},
		{"suite escapes source", func(o *Options) { o.Suite = "../etc" }, "not a suite name"},
		{"suite absolute", func(o *Options) { o.Suite = "/etc" }, "not a suite name"},
		{"suite injection", func(o *Options) { o.Suite = "voice; curl evil" }, "not a suite name"},
		{"flag as suite", func(o *Options) { o.Suite = "--mode=live" }, "not a suite name"},
		{"repeat zero", func(o *Options) { o.Repeat = 0 }, "repeat 0"},
		{"parallel too high", func(o *Options) { o.Parallel = 1000 }, "parallel 1000"},
		{"bad model", func(o *Options) { o.Model = "gpt realtime" }, "not a model name"},
		{"bad filter", func(o *Options) { o.Filter = "-x" }, "not a tag"},
		{"base URL with credentials", func(o *Options) { o.BaseURL = "https://user:sk-123@api.openai.com/v1" }, "without credentials"},
		{"base URL not http", func(o *Options) { o.BaseURL = "file:///etc/passwd" }, "not an http(s) URL"},
		{"sampled mutants", func(o *Options) { o.Mutants, o.Seed = 6, "1234" }, ""},
		{"negative mutants", func(o *Options) { o.Mutants = -1 }, "mutants -1 is outside"},
		{"seed injection", func(o *Options) { o.Mutants, o.Seed = 6, "1; curl evil" }, "not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid()
			tt.edit(&o)
			err := o.Validate()
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestArgs(t *testing.T) {
	o := valid()
	assert.Equal(t, []string{Binary, "--suite", "voice", "--threshold", "0.92", "--mode", "scripted", "--repeat", "1", "--parallel", "4",
		"--junit", JUnitPath, "--json", JSONPath, "--markdown", MarkdownPath}, o.Args())
	o.Live, o.Model, o.Filter, o.Repeat = true, "gpt-realtime", "crisis", 3
	args := strings.Join(o.Args(), " ")
	assert.Contains(t, args, "--mode live --repeat 3")
	assert.Contains(t, args, "--model gpt-realtime --filter crisis")
	assert.NotContains(t, args, "KEY")
	assert.Equal(t, []string{"go", "build", "-o", Binary, "./evals/cmd/eval"}, BuildArgs())
}

// TestScriptKeepsReportsOfAFailingRun runs the generated script with sh
// against a stand-in runner that writes a report and exits 1.
func TestScriptKeepsReportsOfAFailingRun(t *testing.T) {
	for _, code := range []int{0, 1, 2, 137} {
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		stub := filepath.Join(dir, "eval")
		require.NoError(t, os.WriteFile(stub, []byte("#!/bin/sh\necho \"eval: mode=scripted args: $*\"\necho oops >&2\nfor a in \"$@\"; do case $a in *junit.xml) echo '<testsuites/>' > \"$a\";; esac; done\nexit "+itoa(code)+"\n"), 0o755))
		script, err := valid().Script()
		require.NoError(t, err)
		script = strings.ReplaceAll(script, Binary, stub)
		script = strings.ReplaceAll(script, OutDir+"/", out+"/")
		script = strings.ReplaceAll(script, "mkdir -p "+OutDir+"\n", "mkdir -p "+out+"\n")
		cmd := exec.Command("sh", "-c", script)
		stdout, err := cmd.CombinedOutput()
		require.NoError(t, err, "the script exits 0 whatever the runner did")
		assert.True(t, strings.HasPrefix(string(stdout), "eval: mode=scripted"), string(stdout))
		assert.Contains(t, string(stdout), "oops", "stderr is kept in the output")
		got, err := os.ReadFile(filepath.Join(out, "exit-code"))
		require.NoError(t, err)
		assert.Equal(t, itoa(code)+"\n", string(got))
		_, err = os.Stat(filepath.Join(out, "junit.xml"))
		assert.NoError(t, err)
	}
	_, err := Options{Suite: "voice", Threshold: 2, Repeat: 1, Parallel: 1}.Script()
	assert.Error(t, err)
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestScriptRunsMutationTestingFirst runs the generated script with stand-in
// runners: the mutation run's verdict fails a passing eval, its summary
// reaches the eval only when it was written, and nothing runs without
// Mutants.
func TestScriptRunsMutationTestingFirst(t *testing.T) {
	for _, tc := range []struct {
		name              string
		evalCode, mutCode int
		writesSummary     bool
		wantCode          string
		wantMutationFlag  bool
	}{
		{"all killed", 0, 0, true, "0", true},
		{"kill ratio below the floor fails a passing eval", 0, 1, true, "1", true},
		{"mutation run broke before a summary", 0, 2, false, "1", false},
		{"a failing eval keeps its own code", 1, 0, true, "1", true},
		{"bad eval input keeps its code", 2, 1, true, "2", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			evalStub := filepath.Join(dir, "eval")
			mutStub := filepath.Join(dir, "mutate")
			require.NoError(t, os.WriteFile(evalStub, []byte("#!/bin/sh\necho \"eval: mode=scripted args: $*\"\nexit "+itoa(tc.evalCode)+"\n"), 0o755))
			summary := ""
			if tc.writesSummary {
				summary = "for a in \"$@\"; do last=$a; done\necho '{\"mutants\":6}' > \"$last\"\n"
			}
			require.NoError(t, os.WriteFile(mutStub, []byte("#!/bin/sh\necho \"mutate: args: $*\"\n"+summary+"exit "+itoa(tc.mutCode)+"\n"), 0o755))
			o := valid()
			o.Mutants, o.Seed = 6, "4242"
			script, err := o.Script()
			require.NoError(t, err)
			script = strings.ReplaceAll(script, "go run "+MutatePackage, mutStub)
			script = strings.ReplaceAll(script, Binary, evalStub)
			script = strings.ReplaceAll(script, OutDir+"/", out+"/")
			script = strings.ReplaceAll(script, "mkdir -p "+OutDir+"\n", "mkdir -p "+out+"\n")
			stdout, err := exec.Command("sh", "-c", script).CombinedOutput()
			require.NoError(t, err, string(stdout))
			assert.Contains(t, string(stdout), "mutate: args: --suite voice --sample 6 --seed 4242 --json "+out+"/mutation.json", "the mutation run's output is kept")
			assert.Equal(t, tc.wantMutationFlag, strings.Contains(string(stdout), "--mutation "+out+"/mutation.json"), string(stdout))
			got, err := os.ReadFile(filepath.Join(out, "exit-code"))
			require.NoError(t, err)
			assert.Equal(t, tc.wantCode+"\n", string(got))
		})
	}
	script, err := valid().Script()
	require.NoError(t, err)
	assert.NotContains(t, script, MutatePackage, "no mutation testing unless asked")
	assert.Nil(t, valid().MutateArgs())
}

func TestInterpret(t *testing.T) {
	for _, tc := range []struct {
		in      string
		code    int
		outcome Outcome
		wantErr string
	}{
		{"0\n", 0, Passed, ""},
		{"1", 1, Below, ""},
		{" 2 \n", 2, BadInput, ""},
		{"137\n", 137, BadInput, "exited 137"},
		{"", 0, BadInput, "not a number"},
	} {
		code, outcome, err := Interpret(tc.in)
		assert.Equal(t, tc.code, code, tc.in)
		assert.Equal(t, tc.outcome, outcome, tc.in)
		if tc.wantErr == "" {
			assert.NoError(t, err)
		} else {
			assert.ErrorContains(t, err, tc.wantErr)
		}
	}
}

// TestParseSummary reads a report written by the real runner
// (testdata/report.json: `go run ./evals/cmd/eval --filter end-call`).
func TestParseSummary(t *testing.T) {
	f, err := os.Open("testdata/report.json")
	require.NoError(t, err)
	defer f.Close()
	s, err := ParseSummary(f)
	require.NoError(t, err)
	assert.Equal(t, "scripted", s.Mode)
	assert.Equal(t, 1.0, s.Score)
	assert.Equal(t, 3, s.Passed)
	assert.Equal(t, "scripted (not a measurement of the model): score 1.0000, threshold 0.92: 3 passed, 0 failed, 0 skipped", s.String())

	s = Summary{Mode: "live", Model: "gpt-realtime", Score: 0.5, PassAtK: 0.75, Threshold: 0.92, Repeat: 3, Passed: 1, Failed: 1, Flaky: 1, CriticalFailed: 1}
	assert.Equal(t, "live gpt-realtime: score 0.5000, threshold 0.92: 1 passed, 1 failed, 0 skipped; pass^3 0.5000, pass@3 0.7500, 1 flaky; 1 critical case(s) failed", s.String())

	for _, bad := range []string{`{"mode":"other"}`, `{"mode":"live","score":2}`, `not json`} {
		_, err := ParseSummary(strings.NewReader(bad))
		assert.Error(t, err, bad)
	}
}

func TestErrorReports(t *testing.T) {
	out := "eval: mode=scripted\neval: --threshold 1.5 is outside 0..1 <&> ```"
	j, js, md := ErrorReports("scripted", 2, out)
	var doc struct {
		Suites []struct {
			Cases []struct {
				Error struct {
					Message string `xml:"message,attr"`
					Body    string `xml:",chardata"`
				} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	require.NoError(t, xml.Unmarshal([]byte(j), &doc))
	require.Len(t, doc.Suites, 1)
	require.Len(t, doc.Suites[0].Cases, 1)
	assert.Equal(t, "exit code 2: eval: --threshold 1.5 is outside 0..1 <&> ```", doc.Suites[0].Cases[0].Error.Message)
	assert.Equal(t, out, doc.Suites[0].Cases[0].Error.Body)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(js), &m))
	assert.Equal(t, 2.0, m["exit_code"])
	assert.Contains(t, md, "Evals did not run (scripted, exit code 2)")
	assert.Equal(t, 2, strings.Count(md, "```"), "the output cannot close the code block")
}

func TestNonce(t *testing.T) {
	a, b := Nonce(), Nonce()
	assert.Len(t, a, 32)
	assert.NotEqual(t, a, b)
}

// TestScriptWithTheRealRunner builds the product's eval runner from the
// repository and runs the generated script with it, so the command line
// this package builds stays in step with the runner's flags, exit codes and
// JSON report.
func TestScriptWithTheRealRunner(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the eval runner")
	}
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(repo, "evals", "cmd", "eval")); err != nil {
		t.Skip("the product's eval runner is not in this checkout")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "eval")
	args := BuildArgs()
	args[len(args)-2] = bin
	build := exec.Command(args[0], args[1:]...)
	build.Dir = repo
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	for _, tc := range []struct {
		opts    Options
		outcome Outcome
	}{
		{Options{Suite: "voice", Threshold: 0.92, Repeat: 1, Parallel: 4, Filter: "crisis"}, Passed},
		{Options{Suite: "evals/suites/voice", Threshold: 0.92, Repeat: 2, Parallel: 2, Filter: "end-call"}, Passed},
		{Options{Suite: "voice", Threshold: 0.92, Repeat: 1, Parallel: 1, Filter: "no-such-tag"}, BadInput},
		// One sampled mutant through the real mutation command: its flags
		// and summary stay in step with what the script passes.
		{Options{Suite: "voice", Threshold: 0.92, Repeat: 1, Parallel: 4, Filter: "crisis", Mutants: 1, Seed: "3"}, Passed},
	} {
		outDir := filepath.Join(t.TempDir(), "out")
		script, err := tc.opts.Script()
		require.NoError(t, err)
		script = strings.ReplaceAll(script, Binary, bin)
		script = strings.ReplaceAll(script, OutDir+"/", outDir+"/")
		script = strings.ReplaceAll(script, "mkdir -p "+OutDir+"\n", "mkdir -p "+outDir+"\n")
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), KeyEnv+"=")
		stdout, err := cmd.Output()
		require.NoError(t, err)
		codeText, err := os.ReadFile(filepath.Join(outDir, "exit-code"))
		require.NoError(t, err)
		_, outcome, err := Interpret(string(codeText))
		require.NoError(t, err)
		assert.Equal(t, tc.outcome, outcome, string(stdout))
		if outcome != Passed {
			assert.Contains(t, string(stdout), `no case in suite voice carries tag "no-such-tag"`)
			continue
		}
		assert.True(t, strings.HasPrefix(string(stdout), "eval: mode=scripted"), string(stdout))
		f, err := os.Open(filepath.Join(outDir, "report.json"))
		require.NoError(t, err)
		s, err := ParseSummary(f)
		_ = f.Close()
		require.NoError(t, err)
		assert.Equal(t, "scripted", s.Mode)
		assert.Equal(t, tc.opts.Repeat, s.Repeat)
		assert.Equal(t, 1.0, s.Score)
		if tc.opts.Mutants > 0 {
			assert.Contains(t, string(stdout), "mutate:", "the mutation run's output is in the output")
			md, err := os.ReadFile(filepath.Join(outDir, "summary.md"))
			require.NoError(t, err)
			assert.Contains(t, strings.ToLower(string(md)), "mutant", "the summary carries the mutation result")
		}
		for _, name := range []string{"junit.xml", "summary.md", "output.txt"} {
			_, err := os.Stat(filepath.Join(outDir, name))
			assert.NoError(t, err, name)
		}
	}
}

// FuzzParseSummary: the JSON report is written by code under test.
func FuzzParseSummary(f *testing.F) {
	data, err := os.ReadFile("testdata/report.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"mode":"live","score":0.5}`))
	f.Add([]byte(`{"mode":"live","score":1e309}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSummary(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		if s.Score < 0 || s.Score > 1 || (s.Mode != "live" && s.Mode != "scripted" && s.Mode != "record") {
			t.Fatalf("accepted an invalid summary: %+v", s)
		}
		_ = s.String()
	})
}
