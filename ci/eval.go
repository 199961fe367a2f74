package main

import (
	"context"
	"fmt"
	"strings"

	"dagger/voice/evalrun"
	"dagger/voice/internal/dagger"
)

// EvalRun is the outcome of an eval run. Its reports can be exported whether
// the run passed or not; Check fails when the score is below the threshold
// (or a critical case failed, or the run could not start).
type EvalRun struct {
	// JUnit XML report, one test case per eval case, for GitLab's
	// artifacts:reports:junit.
	Junit *dagger.File
	// JSON report: score, mode, per-case results, failed expectations,
	// transcripts, timings, latency percentiles and token counts.
	Json *dagger.File
	// Markdown summary fit for a merge-request comment.
	Markdown *dagger.File
	// Output of the runner; its first line states the mode.
	Output string
	// Exit code of the runner: 0 passed, 1 below the threshold, 2 bad input.
	ExitCode int
	// Mode: "live" (a key was given) or "scripted" (no key: replays recorded
	// model transcripts; checks the agent's side, does not measure the model).
	Mode string
	// Score: the weighted pass rate over the cases that ran (pass^K with
	// --repeat K); 0 when the runner did not run.
	Score float64
	// One-line summary, e.g. "scripted (not a measurement of the model):
	// score 1.0000, threshold 0.92: 62 passed, 0 failed, 0 skipped".
	Summary string
}

// Reports returns a directory with junit.xml, report.json, summary.md,
// output.txt, summary.txt and exit-code, so a CI job can keep every report
// of a failed run and then fail on exit-code without running the evals
// twice.
func (r *EvalRun) Reports() *dagger.Directory {
	return gateReports(r.Output, r.Summary, r.ExitCode).
		WithFile("junit.xml", r.Junit).
		WithFile("report.json", r.Json).
		WithFile("summary.md", r.Markdown)
}

// Check fails, with the runner's output, unless the score reached the
// threshold. On success it returns the summary line.
func (r *EvalRun) Check() (string, error) {
	return gateCheck("evals", r.Output, r.Summary, r.ExitCode)
}

// Eval builds the eval runner (evals/cmd/eval) from the source and runs a
// suite against the voice agent's own session configuration, tools and
// schedule store.
//
// With --api-key the run is live: the agent's configuration against the
// OpenAI Realtime API in text mode, the key passed only as a secret
// environment variable (never in arguments, logs or reports). Without a key
// the run is scripted and says so on the first line of its output: it
// replays each case's recorded model transcript, checking the agent's side
// offline, and is not a measurement of the model.
//
// Caching: the function is marked +cache="never" because a pragma cannot
// depend on an argument, and a live result must never be served from the
// function cache. In addition, only the live path sets a random
// EVAL_LIVE_RUN_NONCE on the runner's container, so the engine's operation
// cache can never replay a live run either, while a scripted run (a pure
// function of the source) still reuses its cached result for an unchanged
// source.
//
// Export the reports, then fail on the exit code (what CI does):
//
//	dagger call eval --suite voice --threshold 0.92 --api-key env://OPENAI_API_KEY reports export --path=reports/eval
//	exit "$(cat reports/eval/exit-code)"
//
// or `dagger call eval --suite voice --threshold 0.92 check`.
//
// +cache="never"
func (m *Voice) Eval(
	ctx context.Context,
	// Repository root holding the product's go.mod, the agent and the evals.
	//
	// +defaultPath="/"
	// +ignore=[".git", "**/node_modules", ".ci/tools", ".ci/reports", "reports", "ci/dagger.gen.go", "ci/internal/dagger", "ci/internal/querybuilder", "ci/internal/telemetry"]
	source *dagger.Directory,
	// Suite to run: a name under evals/suites or a path inside the source.
	//
	// +optional
	// +default="voice"
	suite string,
	// Minimum score (weighted pass rate over the cases that ran, 0..1).
	//
	// +optional
	// +default=0.92
	threshold float64,
	// OpenAI API key, e.g. env://OPENAI_API_KEY. Without it the run is
	// scripted (not a measurement of the model).
	//
	// +optional
	apiKey *dagger.Secret,
	// Run each case K times; the score is then pass^K and the reports add
	// pass@K and flaky cases.
	//
	// +optional
	// +default=1
	repeat int,
	// Conversations run at once.
	//
	// +optional
	// +default=4
	parallel int,
	// Realtime model for a live run (default: the agent's production model).
	//
	// +optional
	model string,
	// Run only the cases carrying this tag, e.g. crisis.
	//
	// +optional
	filter string,
	// OpenAI API base URL for a live run (default https://api.openai.com/v1),
	// e.g. an egress proxy.
	//
	// +optional
	baseUrl string,
	// Mutation testing first: apply this many of the committed agent
	// mutants (evals/mutate, a random sample chosen by --seed) and run the
	// scripted gate on each; the run fails when the kill ratio is below the
	// committed floor, and the reports carry the ratio and the survivors.
	// 0 runs none.
	//
	// +optional
	mutants int,
	// Seed of the --mutants sample, a number such as the pipeline id, so
	// successive pipelines cover the whole set.
	//
	// +optional
	seed string,
) (*EvalRun, error) {
	return m.eval(ctx, source, evalrun.Options{Suite: suite, Threshold: threshold, Repeat: repeat,
		Parallel: parallel, Model: model, Filter: filter, BaseURL: baseUrl, Mutants: mutants, Seed: seed}, apiKey)
}

// eval runs the suite of opts; live when apiKey is given.
func (m *Voice) eval(ctx context.Context, source *dagger.Directory, opts evalrun.Options, apiKey *dagger.Secret) (*EvalRun, error) {
	opts.Live = apiKey != nil
	if opts.Repeat == 0 {
		opts.Repeat = 1
	}
	if opts.Parallel == 0 {
		opts.Parallel = 4
	}
	script, err := opts.Script()
	if err != nil {
		return nil, err
	}
	ctr := m.goEnv(source).
		WithEnvVariable("CGO_ENABLED", "0").
		WithExec(evalrun.BuildArgs())
	if opts.Live {
		ctr = ctr.WithSecretVariable(evalrun.KeyEnv, apiKey).
			WithEnvVariable(evalrun.NonceEnv, evalrun.Nonce())
		if opts.BaseURL != "" {
			ctr = ctr.WithEnvVariable(evalrun.BaseURLEnv, opts.BaseURL)
		}
	} else {
		ctr = ctr.WithoutEnvVariable(evalrun.KeyEnv)
	}
	ctr = ctr.WithExec([]string{"sh", "-c", script})

	output, err := ctr.Stdout(ctx)
	if err != nil {
		return nil, fmt.Errorf("run evals: %w", err)
	}
	codeText, err := ctr.File(evalrun.ExitCodePath).Contents(ctx)
	if err != nil {
		return nil, fmt.Errorf("read exit code of the eval runner: %w", err)
	}
	code, outcome, err := evalrun.Interpret(codeText)
	run := &EvalRun{Output: output, ExitCode: code, Mode: opts.Mode()}
	if err != nil || outcome == evalrun.BadInput {
		// No reports were written: stand-ins carry the runner's message.
		junitXML, jsonText, md := evalrun.ErrorReports(run.Mode, code, output)
		dir := dag.Directory().
			WithNewFile("junit.xml", junitXML).
			WithNewFile("report.json", jsonText).
			WithNewFile("summary.md", md)
		run.Junit, run.Json, run.Markdown = dir.File("junit.xml"), dir.File("report.json"), dir.File("summary.md")
		run.Summary = fmt.Sprintf("%s: the eval runner did not run (exit code %d): %s", run.Mode, code, lastLine(output))
		if run.ExitCode == 0 {
			run.ExitCode = 2
		}
		return run, nil
	}
	run.Junit = ctr.File(evalrun.JUnitPath)
	run.Json = ctr.File(evalrun.JSONPath)
	run.Markdown = ctr.File(evalrun.MarkdownPath)
	jsonText, err := run.Json.Contents(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the JSON report of the evals: %w", err)
	}
	summary, err := evalrun.ParseSummary(strings.NewReader(jsonText))
	if err != nil {
		return nil, err
	}
	run.Summary = summary.String()
	run.Score = summary.Score
	return run, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
