// Command mutate is the evals' mutation testing: it copies the tree
// (go.mod, go.sum, agent/, evals/) to a temporary directory, checks that the
// scripted gate passes on the unchanged copy, then applies each mutant of
// evals/mutate, builds the eval binary and runs the scripted gate
//
//	eval --suite voice --threshold 0.92 --mode scripted
//
// on it. A mutant the gate fails is killed, one it passes survived. It
// prints killed/survived with the surviving mutants named, writes an
// optional JSON summary (for `eval --mutation FILE`), and exits 1 when the
// kill ratio is below the committed floor (mutate.KillFloor).
//
//	go run ./evals/cmd/mutate                    # every mutant
//	go run ./evals/cmd/mutate --sample 6 --seed 1  # a sampled subset (CI)
//
// Exit codes: 0 ratio >= floor, 1 below, 2 bad input (a mutant no longer
// applies or does not compile, the gate fails on the unchanged tree).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"gitlab.com/acme/voice-agent/evals/mutate"
	"gitlab.com/acme/voice-agent/evals/runner"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// Result is one mutant's outcome.
type Result struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind"`
	Killed bool     `json:"killed"`
	By     []string `json:"killed_by,omitempty"`
	Secs   float64  `json:"seconds"`
}

// Summary is the JSON output.
type Summary struct {
	runner.MutationSummary
	Results []Result `json:"results"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("mutate", flag.ContinueOnError)
	fl.SetOutput(stderr)
	root := fl.String("root", ".", "repository root")
	suiteName := fl.String("suite", "voice", "suite the gate runs")
	sample := fl.Int("sample", 0, "run only this many mutants, chosen at random with --seed (0: all)")
	seed := fl.Uint64("seed", 1, "seed of --sample")
	floor := fl.Float64("floor", mutate.KillFloor, "minimum kill ratio")
	jsonOut := fl.String("json", "", "write the summary as JSON to this file")
	only := fl.String("only", "", "run only the mutant with this name")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	bad := func(f string, a ...any) int { fmt.Fprintf(stderr, "mutate: "+f+"\n", a...); return 2 }
	ms := append([]mutate.Mutant(nil), mutate.Mutants...)
	if *only != "" {
		var sel []mutate.Mutant
		for _, m := range ms {
			if m.Name == *only {
				sel = append(sel, m)
			}
		}
		if len(sel) == 0 {
			return bad("no mutant named %q", *only)
		}
		ms = sel
	}
	sampled := false
	if *sample > 0 && *sample < len(ms) {
		r := rand.New(rand.NewPCG(*seed, *seed))
		r.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
		ms = ms[:*sample]
		sampled = true
	}
	tmp, err := os.MkdirTemp("", "mutate-*")
	if err != nil {
		return bad("%v", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	tree := filepath.Join(tmp, "tree")
	for _, p := range []string{"go.mod", "go.sum", "agent", "evals"} {
		if err := copyTree(filepath.Join(*root, p), filepath.Join(tree, p)); err != nil {
			return bad("copy the tree: %v", err)
		}
	}
	gate := func(name string) (bool, []string, error) {
		bin := filepath.Join(tmp, "eval-"+name)
		build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./evals/cmd/eval")
		build.Dir = tree
		if out, err := build.CombinedOutput(); err != nil {
			return false, nil, fmt.Errorf("does not compile: %v\n%s", err, out)
		}
		defer func() { _ = os.Remove(bin) }()
		report := filepath.Join(tmp, "report-"+name+".json")
		cmd := exec.CommandContext(ctx, bin, "--root", tree, "--suite", *suiteName, "--threshold", "0.92", "--mode", "scripted", "--json", report)
		cmd.Env = append(os.Environ(), "OPENAI_API_KEY=")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return false, nil, nil
		case errors.As(err, &exit) && exit.ExitCode() == 1:
			return true, failedCases(report), nil
		default:
			return false, nil, fmt.Errorf("the gate could not run: %v\n%s", err, tail(out))
		}
	}
	fmt.Fprintf(stdout, "mutate: %d mutant(s)%s; the scripted gate: eval --suite %s --threshold 0.92 --mode scripted\n", len(ms), map[bool]string{true: fmt.Sprintf(" (sampled with seed %d)", *seed)}[sampled], *suiteName)
	if killed, by, err := gate("baseline"); err != nil || killed {
		if err == nil {
			err = fmt.Errorf("it fails: %s", strings.Join(by, ", "))
		}
		return bad("the gate must pass on the unchanged tree first: %v", err)
	}
	sum := Summary{MutationSummary: runner.MutationSummary{Mutants: len(ms), Floor: *floor, Sampled: sampled, Survived: []string{}}}
	for i, m := range ms {
		t0 := time.Now()
		orig, err := mutate.Apply(tree, m)
		if err != nil {
			return bad("%v", err)
		}
		killed, by, gerr := gate(fmt.Sprint(i))
		if err := os.WriteFile(filepath.Join(tree, filepath.FromSlash(m.File)), orig, 0o644); err != nil {
			return bad("restore %s: %v", m.File, err)
		}
		if gerr != nil {
			return bad("mutant %s %v", m.Name, gerr)
		}
		res := Result{Name: m.Name, Kind: m.Kind, Killed: killed, By: by, Secs: time.Since(t0).Seconds()}
		sum.Results = append(sum.Results, res)
		if killed {
			sum.Killed++
			fmt.Fprintf(stdout, "[%d/%d] KILLED   %s (%s, %.0fs): %s\n", i+1, len(ms), m.Name, m.Kind, res.Secs, short(by))
		} else {
			sum.Survived = append(sum.Survived, m.Name)
			fmt.Fprintf(stdout, "[%d/%d] SURVIVED %s (%s, %.0fs): the gate passed with this bug in %s\n", i+1, len(ms), m.Name, m.Kind, res.Secs, m.File)
		}
	}
	if sum.Mutants > 0 {
		sum.Ratio = float64(sum.Killed) / float64(sum.Mutants)
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(sum, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return bad("%v", err)
		}
	}
	verdict := "PASS"
	code := 0
	if sum.Ratio < *floor {
		verdict, code = "FAIL", 1
	}
	fmt.Fprintf(stdout, "mutate: %s killed %d/%d (%.1f%%, floor %.1f%%)", verdict, sum.Killed, sum.Mutants, sum.Ratio*100, *floor*100)
	if len(sum.Survived) > 0 {
		fmt.Fprintf(stdout, "; survived: %s", strings.Join(sum.Survived, ", "))
	}
	fmt.Fprintln(stdout)
	return code
}

// failedCases reads the names of the failed and stale cases from a report.
func failedCases(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var rep struct {
		Cases []struct{ Name, Status string }
	}
	_ = json.Unmarshal(data, &rep)
	var out []string
	for _, c := range rep.Cases {
		if c.Status == runner.StatusFailed || c.Status == runner.StatusStale {
			out = append(out, c.Name+" ("+c.Status+")")
		}
	}
	return out
}

func short(names []string) string {
	if len(names) > 3 {
		return fmt.Sprintf("%s and %d more", strings.Join(names[:3], ", "), len(names)-3)
	}
	return strings.Join(names, ", ")
}

func tail(b []byte) string {
	s := string(b)
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
