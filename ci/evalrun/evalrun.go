// Package evalrun holds the logic of the pipeline's eval function: the
// runner's command line, the shell script that keeps the reports of a
// failed run, the meaning of its exit codes and the one-line summary read
// from its JSON report. The Dagger function (ci/eval.go) only composes
// containers around it.
package evalrun

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"dagger/voice/shellquote"
)

// Paths inside the eval container.
const (
	// Binary is where the runner is built.
	Binary = "/usr/local/bin/eval"
	// OutDir holds every report.
	OutDir       = "/out"
	JUnitPath    = OutDir + "/junit.xml"
	JSONPath     = OutDir + "/report.json"
	MarkdownPath = OutDir + "/summary.md"
	OutputPath   = OutDir + "/output.txt"
	ExitCodePath = OutDir + "/exit-code"
	// MutationPath is the mutation-testing summary (JSON) of a run with
	// Mutants > 0; MutationOutputPath is that command's output.
	MutationPath       = OutDir + "/mutation.json"
	MutationOutputPath = OutDir + "/mutation.txt"
	// Package is the runner's package in the product module.
	Package = "./evals/cmd/eval"
	// MutatePackage applies source mutations to the agent and runs the
	// scripted gate on each (evals/README.md, "Mutation testing").
	MutatePackage = "./evals/cmd/mutate"
)

// KeyEnv and BaseURLEnv are the environment variables the runner reads.
const (
	KeyEnv     = "OPENAI_API_KEY"
	BaseURLEnv = "OPENAI_BASE_URL"
	// NonceEnv carries a random value into live runs only, so the engine
	// never serves a live run's result from its cache.
	NonceEnv = "EVAL_LIVE_RUN_NONCE"
)

// Options describe one eval run.
type Options struct {
	// Suite is a suite name under evals/suites or a path in the source.
	Suite string
	// Threshold is the minimum score, 0..1.
	Threshold float64
	// Live runs against the model (an API key is given); otherwise the
	// run is scripted.
	Live bool
	// Repeat runs each case K times (pass^K, pass@K, flaky cases).
	Repeat int
	// Parallel is the number of concurrent conversations.
	Parallel int
	// Model overrides the agent's production model ("" keeps it).
	Model string
	// Filter selects cases by tag ("" selects all).
	Filter string
	// BaseURL overrides the OpenAI API base URL ("" keeps the default).
	BaseURL string
	// Mutants, when above 0, first runs that many of the committed agent
	// mutants (a random sample chosen with Seed) through the scripted gate;
	// the run fails when the kill ratio is below the committed floor, and
	// the reports carry the ratio and the survivors.
	Mutants int
	// Seed chooses the sample of Mutants (a number, e.g. the pipeline id);
	// "" means 1.
	Seed string
}

var (
	suiteRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}$`)
	wordRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}$`)
	seedRE  = regexp.MustCompile(`^[0-9]{1,19}$`)
)

// Validate reports the first problem, naming the argument and the fix.
func (o Options) Validate() error {
	switch {
	case !suiteRE.MatchString(o.Suite) || strings.Contains(o.Suite, ".."):
		return fmt.Errorf("eval: suite %q is not a suite name or a relative path inside the source (e.g. voice or evals/suites/voice)", o.Suite)
	case o.Threshold < 0 || o.Threshold > 1 || o.Threshold != o.Threshold:
		return fmt.Errorf("eval: threshold %v is outside 0..1: pass the minimum pass rate as a fraction, e.g. --threshold 0.92", o.Threshold)
	case o.Repeat < 1 || o.Repeat > 100:
		return fmt.Errorf("eval: repeat %d is outside 1..100", o.Repeat)
	case o.Parallel < 1 || o.Parallel > 256:
		return fmt.Errorf("eval: parallel %d is outside 1..256", o.Parallel)
	case o.Model != "" && !wordRE.MatchString(o.Model):
		return fmt.Errorf("eval: model %q is not a model name (e.g. gpt-realtime)", o.Model)
	case o.Filter != "" && !wordRE.MatchString(o.Filter):
		return fmt.Errorf("eval: filter %q is not a tag (letters, digits, - _ . :)", o.Filter)
	case o.Mutants < 0 || o.Mutants > 1000:
		return fmt.Errorf("eval: mutants %d is outside 0..1000 (0 runs no mutation testing)", o.Mutants)
	case o.Seed != "" && !seedRE.MatchString(o.Seed):
		return fmt.Errorf("eval: seed %q is not a number: pass e.g. --seed \"$CI_PIPELINE_IID\"", o.Seed)
	}
	if o.BaseURL != "" {
		u, err := url.Parse(o.BaseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return fmt.Errorf("eval: base URL %q is not an http(s) URL without credentials (e.g. https://api.openai.com/v1)", o.BaseURL)
		}
	}
	return nil
}

// Mode is "live" or "scripted".
func (o Options) Mode() string {
	if o.Live {
		return "live"
	}
	return "scripted"
}

// Args is the runner's command line. It never carries the key (that comes
// from the environment as a secret).
func (o Options) Args() []string {
	args := []string{Binary,
		"--suite", o.Suite,
		"--threshold", strconv.FormatFloat(o.Threshold, 'f', -1, 64),
		"--mode", o.Mode(),
		"--repeat", strconv.Itoa(o.Repeat),
		"--parallel", strconv.Itoa(o.Parallel),
		"--junit", JUnitPath,
		"--json", JSONPath,
		"--markdown", MarkdownPath,
	}
	if o.Model != "" {
		args = append(args, "--model", o.Model)
	}
	if o.Filter != "" {
		args = append(args, "--filter", o.Filter)
	}
	return args
}

// MutateArgs is the mutation-testing command line of a run with
// Mutants > 0 (nil otherwise). It runs in the source directory.
func (o Options) MutateArgs() []string {
	if o.Mutants <= 0 {
		return nil
	}
	seed := o.Seed
	if seed == "" {
		seed = "1"
	}
	return []string{"go", "run", MutatePackage, "--suite", o.Suite,
		"--sample", strconv.Itoa(o.Mutants), "--seed", seed, "--json", MutationPath}
}

// BuildArgs builds the runner binary (a tool of the pipeline, never
// shipped: built like the tests build it, sharing their build cache).
func BuildArgs() []string {
	return []string{"go", "build", "-o", Binary, Package}
}

// Script runs the runner, keeps its combined output in OutputPath and its
// exit code in ExitCodePath, prints the output, and exits 0 so the reports
// of a failing run stay available; the caller decides on the exit code.
func (o Options) Script() (string, error) {
	if err := o.Validate(); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("set -u\n")
	fmt.Fprintf(&b, "mkdir -p %s\n", shellquote.Quote(OutDir))
	if m := o.MutateArgs(); m != nil {
		// Mutation testing first, so the eval's reports carry its summary;
		// a kill ratio below the floor (or a mutation run that could not
		// finish) fails the run even when the eval itself passes.
		fmt.Fprintf(&b, "mcode=0\n%s > %s 2>&1 || mcode=$?\n", shellquote.Join(m), shellquote.Quote(MutationOutputPath))
		// The eval's reports carry the summary when the run wrote one.
		fmt.Fprintf(&b, "set --\nif [ -s %s ]; then set -- --mutation %s; fi\n", shellquote.Quote(MutationPath), shellquote.Quote(MutationPath))
	}
	fmt.Fprintf(&b, "code=0\n%s \"$@\" > %s 2>&1 || code=$?\n", shellquote.Join(o.Args()), shellquote.Quote(OutputPath))
	if o.MutateArgs() != nil {
		fmt.Fprintf(&b, "cat %s >> %s\n", shellquote.Quote(MutationOutputPath), shellquote.Quote(OutputPath))
		b.WriteString("if [ \"$code\" = 0 ] && [ \"$mcode\" != 0 ]; then code=1; fi\n")
	}
	fmt.Fprintf(&b, "cat %s\n", shellquote.Quote(OutputPath))
	fmt.Fprintf(&b, "echo \"$code\" > %s\nexit 0\n", shellquote.Quote(ExitCodePath))
	return b.String(), nil
}

// Nonce returns a random value for NonceEnv.
func Nonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail on supported platforms
	return hex.EncodeToString(b[:])
}

// Outcome is the meaning of the runner's exit code.
type Outcome int

// Outcomes.
const (
	// Passed: the score reached the threshold (exit 0).
	Passed Outcome = iota
	// Below: the score is below the threshold or a critical case failed
	// (exit 1); the reports are complete.
	Below
	// BadInput: bad suite, flags, or zero cases selected (exit 2); there
	// are no reports.
	BadInput
)

// Interpret reads the runner's exit code file.
func Interpret(exitCodeText string) (int, Outcome, error) {
	code, err := strconv.Atoi(strings.TrimSpace(exitCodeText))
	if err != nil {
		return 0, BadInput, fmt.Errorf("eval: exit code %q is not a number", exitCodeText)
	}
	switch code {
	case 0:
		return code, Passed, nil
	case 1:
		return code, Below, nil
	case 2:
		return code, BadInput, nil
	}
	return code, BadInput, fmt.Errorf("eval: the runner exited %d (crashed or was killed); see its output", code)
}

// Summary is what the pipeline reads from the JSON report.
type Summary struct {
	Mode           string  `json:"mode"`
	Model          string  `json:"model"`
	Score          float64 `json:"score"`
	PassAtK        float64 `json:"pass_at_k"`
	Threshold      float64 `json:"threshold"`
	Repeat         int     `json:"repeat"`
	Ran            int     `json:"ran"`
	Passed         int     `json:"passed"`
	Failed         int     `json:"failed"`
	Skipped        int     `json:"skipped"`
	Flaky          int     `json:"flaky"`
	CriticalFailed int     `json:"critical_failed"`
}

// maxReport bounds how much of a report is read (it is produced by code
// under test).
const maxReport = 64 << 20

// ParseSummary reads the runner's JSON report.
func ParseSummary(r io.Reader) (Summary, error) {
	var s Summary
	if err := json.NewDecoder(io.LimitReader(r, maxReport)).Decode(&s); err != nil {
		return Summary{}, fmt.Errorf("eval: read JSON report: %w", err)
	}
	if s.Mode != "live" && s.Mode != "scripted" && s.Mode != "record" {
		return Summary{}, fmt.Errorf("eval: JSON report has mode %q: not a report of the eval runner", s.Mode)
	}
	if s.Score < 0 || s.Score > 1 {
		return Summary{}, errors.New("eval: JSON report has a score outside 0..1")
	}
	return s, nil
}

// String is a one-line summary, e.g. "scripted (not a measurement of the
// model): score 1.0000, threshold 0.92: 62 passed, 0 failed, 0 skipped".
func (s Summary) String() string {
	mode := s.Mode
	if mode == "scripted" {
		mode = "scripted (not a measurement of the model)"
	} else if s.Model != "" {
		mode += " " + s.Model
	}
	line := fmt.Sprintf("%s: score %.4f, threshold %.2f: %d passed, %d failed, %d skipped", mode, s.Score, s.Threshold, s.Passed, s.Failed, s.Skipped)
	if s.Repeat > 1 {
		line += fmt.Sprintf("; pass^%d %.4f, pass@%d %.4f, %d flaky", s.Repeat, s.Score, s.Repeat, s.PassAtK, s.Flaky)
	}
	if s.CriticalFailed > 0 {
		line += fmt.Sprintf("; %d critical case(s) failed", s.CriticalFailed)
	}
	return line
}

// ErrorReports are the stand-in reports of a run that produced none (bad
// input): a JUnit file with one errored case carrying the runner's output,
// a JSON object and a Markdown note, so CI artifacts always exist.
func ErrorReports(mode string, code int, output string) (junitXML, jsonText, markdown string) {
	msg := firstLine(lastLines(output, 1))
	type failure struct {
		Message string `xml:"message,attr"`
		Body    string `xml:",chardata"`
	}
	type tc struct {
		Name      string  `xml:"name,attr"`
		Classname string  `xml:"classname,attr"`
		Error     failure `xml:"error"`
	}
	type suite struct {
		XMLName xml.Name `xml:"testsuite"`
		Name    string   `xml:"name,attr"`
		Tests   int      `xml:"tests,attr"`
		Errors  int      `xml:"errors,attr"`
		Cases   []tc     `xml:"testcase"`
	}
	type suites struct {
		XMLName xml.Name `xml:"testsuites"`
		Suites  []suite  `xml:"testsuite"`
	}
	doc := suites{Suites: []suite{{Name: "evals (" + mode + ")", Tests: 1, Errors: 1,
		Cases: []tc{{Name: "eval runner", Classname: "evals", Error: failure{Message: fmt.Sprintf("exit code %d: %s", code, msg), Body: output}}}}}}
	x, _ := xml.MarshalIndent(doc, "", "  ") // plain structs of strings always marshal
	j, _ := json.MarshalIndent(map[string]any{"mode": mode, "exit_code": code, "error": output}, "", "  ")
	md := fmt.Sprintf("## ❌ Evals did not run (%s, exit code %d)\n\n```\n%s\n```\n", mode, code, strings.ReplaceAll(output, "```", "'''"))
	return xml.Header + string(x) + "\n", string(j) + "\n", md
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
