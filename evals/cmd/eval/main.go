// Command eval runs an eval suite against the voice agent and gates on its
// score.
//
//	go run ./evals/cmd/eval --suite voice --threshold 0.92 --junit j.xml --json r.json
//
// Modes: live (the agent's session configuration and tools against the
// OpenAI Realtime API in text mode), scripted (replays each case's recorded
// model side: checks the agent's own side offline, does not measure the
// model; the default without OPENAI_API_KEY) and record (live, and writes
// the model's side into the case files as their scripts).
//
// Exit codes: 0 score >= threshold, 1 below, 2 bad input (bad suite or
// flags, zero cases selected or run, unwritable report).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	_ "time/tzdata" // cases name clinic time zones; images without zoneinfo still run them

	"gitlab.com/acme/voice-agent/agent/session"
	"gitlab.com/acme/voice-agent/evals/agentenv"
	"gitlab.com/acme/voice-agent/evals/callsim"
	"gitlab.com/acme/voice-agent/evals/live"
	"gitlab.com/acme/voice-agent/evals/replay"
	"gitlab.com/acme/voice-agent/evals/report"
	"gitlab.com/acme/voice-agent/evals/runner"
	"gitlab.com/acme/voice-agent/evals/suite"
)

// Exit codes.
const (
	exitPass     = 0
	exitBelow    = 1
	exitBadInput = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, isTerminal(os.Stdout), nil))
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

type config struct {
	suite, model, mode, junit, jsonOut, markdown, filter, root, judgeModel, mutation string
	threshold                                                                        float64
	parallel, repeat                                                                 int
	timeout                                                                          time.Duration
}

// deps lets tests swap the agent and the HTTP client.
type deps struct {
	httpClient *http.Client
	// service, when set, replaces the production agent service path
	// (scripted mode).
	service *agentenv.Service
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, tty bool, d *deps) int {
	key := strings.TrimSpace(getenv("OPENAI_API_KEY"))
	// Defence in depth: nothing this command prints may contain the key.
	stdout, stderr = &redactor{w: stdout, secret: key}, &redactor{w: stderr, secret: key}
	if d == nil {
		d = &deps{}
	}

	var c config
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.suite, "suite", "voice", "suite name under evals/suites, or a directory path")
	fs.Float64Var(&c.threshold, "threshold", 0.92, "minimum score (weighted pass rate, 0..1) for exit code 0")
	fs.StringVar(&c.model, "model", session.DefaultModel, "Realtime model for live and record modes (default: the agent's production model)")
	fs.StringVar(&c.mode, "mode", "", "live, scripted or record (default: live when OPENAI_API_KEY is set, else scripted)")
	fs.IntVar(&c.parallel, "parallel", 4, "conversations run at once")
	fs.IntVar(&c.repeat, "repeat", 1, "run each case K times; reports pass^K (the score), pass@K and flaky cases")
	fs.StringVar(&c.junit, "junit", "", "write a JUnit XML report to this file")
	fs.StringVar(&c.jsonOut, "json", "", "write the JSON report to this file")
	fs.StringVar(&c.markdown, "markdown", "", "write a Markdown summary (for a merge-request comment) to this file")
	fs.StringVar(&c.filter, "filter", "", "run only the cases carrying this tag")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Minute, "per-case timeout (a timeout fails the case)")
	fs.StringVar(&c.root, "root", ".", "repository root holding evals/suites")
	fs.StringVar(&c.judgeModel, "judge-model", "", "model grading rubrics in live mode (default: --model)")
	fs.StringVar(&c.mutation, "mutation", "", "include the mutation-testing summary written by `go run ./evals/cmd/mutate --json FILE` in the reports")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitPass
		}
		return exitBadInput
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "eval: "+format+"\n", a...)
		return exitBadInput
	}
	if fs.NArg() > 0 {
		return bad("unexpected arguments %q: every option is a flag (see -h)", fs.Args())
	}
	if c.mode == "" {
		c.mode = "scripted"
		if key != "" {
			c.mode = "live"
		}
	}
	switch {
	case c.threshold < 0 || c.threshold > 1 || c.threshold != c.threshold:
		return bad("--threshold %v is outside 0..1: pass the minimum pass rate as a fraction, e.g. --threshold 0.92", c.threshold)
	case c.mode != "live" && c.mode != "scripted" && c.mode != "record":
		return bad("--mode %q is not one of live, scripted, record", c.mode)
	case c.mode != "scripted" && key == "":
		return bad("--mode %s needs OPENAI_API_KEY in the environment (or use --mode scripted)", c.mode)
	case c.parallel < 1 || c.parallel > 256:
		return bad("--parallel %d is outside 1..256", c.parallel)
	case c.repeat < 1 || c.repeat > 100:
		return bad("--repeat %d is outside 1..100", c.repeat)
	case c.mode == "record" && c.repeat != 1:
		return bad("--mode record records one conversation per case: use --repeat 1")
	case c.timeout <= 0:
		return bad("--timeout %s must be positive", c.timeout)
	case c.model == "":
		return bad("--model is empty")
	}

	dir, err := suite.Resolve(c.root, c.suite)
	if err != nil {
		return bad("%v", err)
	}
	s, err := suite.LoadDir(dir)
	if err != nil {
		return bad("bad suite: %v", err)
	}
	cases := s.Select(c.filter)
	if len(cases) == 0 {
		return bad("no case in suite %s carries tag %q (tags: %s)", s.Name, c.filter, strings.Join(s.Tags(), ", "))
	}
	svc := d.service
	if svc == nil {
		svc = agentenv.NewService(nil)
	}
	defer svc.Close()
	sess := svc.Session()
	known := map[string]bool{}
	for _, n := range sess.ToolNames() {
		known[n] = true
	}
	for _, cs := range cases {
		if err := checkToolNames(cs, known); err != nil {
			return bad("bad suite: %s: case %q: %v (agent tools: %s)", cs.Where(), cs.Name, err, strings.Join(sess.ToolNames(), ", "))
		}
	}

	// Every mode runs each case as a phone call through agent/service
	// against the loopback Realtime API; only the model behind it differs.
	modelName := "scripted"
	var judge runner.Judge
	var rmu sync.Mutex
	recorders := map[string]*replay.Recorder{}
	suiteName := s.Name
	if c.mode == "scripted" {
		svc.Model = func(cs *suite.Case) (callsim.Model, error) { return replay.NewPlayer(cs, suiteName), nil }
	} else {
		modelName = c.model
		client := &live.Client{BaseURL: getenv("OPENAI_BASE_URL"), APIKey: key, HTTPClient: d.httpClient}
		jm := c.judgeModel
		if jm == "" {
			jm = c.model
		}
		judge = &live.Judge{Client: client, Model: jm}
		svc.Model = func(cs *suite.Case) (callsim.Model, error) {
			m := live.NewCallModel(client, c.model)
			m.Audio = cs.AudioFiles()
			if c.mode != "record" {
				return m, nil
			}
			rec := &replay.Recorder{Inner: m, WallClock: cs.Now == nil}
			rmu.Lock()
			recorders[cs.Name] = rec
			rmu.Unlock()
			return rec, nil
		}
	}

	fmt.Fprintln(stdout, report.Headline(c.mode, modelName, s.Name, len(cases), c.parallel, c.repeat))
	var pmu sync.Mutex
	passed, ran := 0, 0
	progress := func(done, total int, cr *runner.CaseResult) {
		pmu.Lock()
		defer pmu.Unlock()
		if cr.Status != runner.StatusSkipped {
			ran++
			if cr.Status == runner.StatusPassed {
				passed++
			}
		}
		if tty {
			line := report.Progress(done, total, passed, ran)
			if cr.Status == runner.StatusFailed {
				fmt.Fprintf(stdout, "\r\033[K%s\n", report.CaseLine(done, total, cr))
			}
			fmt.Fprintf(stdout, "\r\033[K%s", line)
			if done == total {
				fmt.Fprintln(stdout)
			}
			return
		}
		fmt.Fprintln(stdout, report.CaseLine(done, total, cr))
	}
	r := &runner.Runner{Calls: svc, ModelName: modelName, Mode: c.mode, Opts: runner.Options{
		Parallel: c.parallel, Repeat: c.repeat, CaseTimeout: c.timeout, Judge: judge, Progress: progress,
	}}
	rep := r.Run(ctx, s.Name, cases, c.threshold)
	if c.mutation != "" {
		data, err := os.ReadFile(c.mutation)
		if err != nil {
			return bad("--mutation: %v", err)
		}
		var m runner.MutationSummary
		if err := json.Unmarshal(data, &m); err != nil || m.Mutants == 0 {
			return bad("--mutation %s is not a summary of evals/cmd/mutate (%v)", c.mutation, err)
		}
		rep.Mutation = &m
	}

	if err := writeReports(c, rep, key); err != nil {
		return bad("%v", err)
	}
	if c.mode == "record" {
		if err := writeRecordings(stdout, rep, recorders, cases, c.model); err != nil {
			return bad("%v", err)
		}
	}
	fmt.Fprint(stdout, report.Summary(rep))
	if rep.Ran == 0 {
		return bad("no case ran: all %d selected cases were skipped (%s)", rep.Skipped, rep.Cases[0].SkipReason)
	}
	if !rep.Passes() {
		return exitBelow
	}
	return exitPass
}

// checkToolNames catches typos in expectations: every tool named must be
// one of the agent's, or one the case's own script calls on purpose (to
// check how the agent handles an unknown tool).
func checkToolNames(c *suite.Case, known map[string]bool) error {
	scripted := map[string]bool{}
	for _, t := range c.Turns {
		for _, r := range t.Model {
			for _, call := range r.Calls {
				scripted[call.Name] = true
			}
		}
	}
	check := func(name string) error {
		if !known[name] && !scripted[name] {
			return fmt.Errorf("unknown tool %q", name)
		}
		return nil
	}
	for _, tc := range c.Expect.ToolCalls {
		if err := check(tc.Name); err != nil {
			return err
		}
	}
	for _, n := range c.Expect.NoToolCalls {
		if err := check(n); err != nil {
			return err
		}
	}
	for _, t := range c.Turns {
		if t.Expect == nil {
			continue
		}
		for _, tc := range t.Expect.ToolCalls {
			if err := check(tc.Name); err != nil {
				return err
			}
		}
		for _, n := range t.Expect.NoToolCalls {
			if err := check(n); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeReports(c config, rep *runner.Report, key string) error {
	outputs := []struct {
		path  string
		write func(io.Writer, *runner.Report) error
	}{{c.junit, report.WriteJUnit}, {c.jsonOut, report.WriteJSON}, {c.markdown, report.WriteMarkdown}}
	for _, o := range outputs {
		if o.path == "" {
			continue
		}
		var buf bytes.Buffer
		if err := o.write(&buf, rep); err != nil {
			return err
		}
		data := buf.Bytes()
		if len(key) >= minSecret {
			data = bytes.ReplaceAll(data, []byte(key), []byte("[REDACTED]"))
		}
		if dir := filepath.Dir(o.path); dir != "." {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("create report directory: %w", err)
			}
		}
		if err := os.WriteFile(o.path, data, 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

func writeRecordings(w io.Writer, rep *runner.Report, recs map[string]*replay.Recorder, cases []*suite.Case, model string) error {
	ok := map[string]bool{}
	for _, cr := range rep.Cases {
		if len(cr.Attempts) == 1 && cr.Attempts[0] != nil && cr.Attempts[0].Error == "" {
			ok[cr.Name] = true
		}
	}
	date := time.Now().UTC().Format("2006-01-02")
	scripts := map[string]map[string][][]suite.Response{}
	greetings := map[string]map[string][]suite.Response{}
	keyed := map[string]map[string]suite.Keyed{}
	for _, c := range cases {
		rec := recs[c.Name]
		if !ok[c.Name] || rec == nil {
			continue
		}
		greeting, turns, seen := rec.Recording()
		if len(turns) == 0 {
			continue
		}
		if scripts[c.File] == nil {
			scripts[c.File], keyed[c.File], greetings[c.File] = map[string][][]suite.Response{}, map[string]suite.Keyed{}, map[string][]suite.Response{}
		}
		scripts[c.File][c.Name] = turns
		greetings[c.File][c.Name] = greeting
		keyed[c.File][c.Name] = suite.Keyed{Keys: rec.Keys(), Greeting: rec.GreetingKeys(), Recording: suite.Recording{Source: suite.SourceRecorded, Model: model, Date: date, Seen: seen}}
	}
	for file, sc := range scripts {
		if err := suite.WriteScripts(file, sc); err != nil {
			return err
		}
		if err := suite.WriteGreetings(file, greetings[file]); err != nil {
			return err
		}
		if err := suite.WriteKeys(file, keyed[file]); err != nil {
			return err
		}
		fmt.Fprintf(w, "record: wrote the model side of %d case(s) to %s (recorded from %s on %s)\n", len(sc), file, model, date)
	}
	return nil
}

// minSecret is the shortest value treated as a secret to redact (shorter
// values are not API keys, and replacing them would garble the output).
const minSecret = 8

// redactor replaces a secret in everything written through it. Callers
// write whole lines, so the secret is never split across writes.
type redactor struct {
	w      io.Writer
	secret string
}

func (r *redactor) Write(p []byte) (int, error) {
	if len(r.secret) < minSecret || !bytes.Contains(p, []byte(r.secret)) {
		return r.w.Write(p)
	}
	if _, err := r.w.Write(bytes.ReplaceAll(p, []byte(r.secret), []byte("[REDACTED]"))); err != nil {
		return 0, err
	}
	return len(p), nil
}
