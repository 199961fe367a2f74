// Package report writes an eval run's reports: JSON (everything, for
// tools), JUnit XML (one test case per eval case, for CI test views),
// Markdown (a summary fit for a merge-request comment) and the console
// lines (progress on a terminal, one line per case in CI logs).
package report

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"gitlab.com/acme/voice-agent/evals/runner"
)

// WriteJSON writes the whole report as indented JSON.
func WriteJSON(w io.Writer, r *runner.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",chardata"`
}

func secs(d runner.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes a JUnit XML report: one <testsuite> named after the
// suite and mode, one <testcase> per eval case. A case whose attempts
// failed on a model error or timeout is an <error>, an unmet expectation a
// <failure>, a case that could not run in this mode <skipped>.
func WriteJUnit(w io.Writer, r *runner.Report) error {
	s := junitSuite{
		Name:      fmt.Sprintf("evals/%s (%s)", r.Suite, r.Mode),
		Time:      secs(r.Duration),
		Timestamp: r.StartedAt.Format(time.RFC3339),
		Properties: []junitProperty{
			{"mode", r.Mode}, {"model", r.Model}, {"note", r.Note},
			{"score", fmt.Sprintf("%.4f", r.Score)}, {"threshold", fmt.Sprintf("%.4f", r.Threshold)},
			{"repeat", fmt.Sprint(r.Repeat)}, {"pass_at_k", fmt.Sprintf("%.4f", r.PassAtK)},
			{"critical_failed", fmt.Sprint(r.CriticalFailed)},
			{"stale", fmt.Sprint(r.Stale)}, {"matched", fmt.Sprint(r.Matched)},
			{"recorded", fmt.Sprint(r.Recorded)}, {"hand_written", fmt.Sprint(r.HandWritten)},
		},
	}
	if m := r.Mutation; m != nil {
		s.Properties = append(s.Properties, junitProperty{"mutation_kill_ratio", fmt.Sprintf("%.4f", m.Ratio)})
	}
	for _, c := range r.Cases {
		jc := junitCase{Name: c.Name, Classname: "evals." + r.Suite, File: fileOnly(c.File), Time: secs(c.Duration)}
		switch c.Status {
		case runner.StatusSkipped:
			jc.Skipped = &junitMessage{Message: c.SkipReason}
			s.Skipped++
		case runner.StatusStale:
			msg, body, _ := failureText(c)
			jc.Failure = &junitMessage{Message: msg, Type: "stale-recording", Body: body}
			s.Failures++
		case runner.StatusFailed:
			msg, body, isErr := failureText(c)
			if isErr {
				jc.Error = &junitMessage{Message: msg, Type: "error", Body: body}
				s.Errors++
			} else {
				jc.Failure = &junitMessage{Message: msg, Type: "expectation", Body: body}
				s.Failures++
			}
		}
		if c.Status != runner.StatusSkipped {
			jc.SystemOut = transcriptText(c)
		}
		s.Tests++
		s.Cases = append(s.Cases, jc)
	}
	doc := junitSuites{Name: "evals", Tests: s.Tests, Failures: s.Failures, Errors: s.Errors, Skipped: s.Skipped, Time: s.Time, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write JUnit report: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write JUnit report: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write JUnit report: %w", err)
	}
	return nil
}

func fileOnly(where string) string {
	if i := strings.LastIndexByte(where, ':'); i > 0 {
		return where[:i]
	}
	return where
}

// failureText summarises a failed case: a one-line message, the full list,
// and whether every failing attempt failed on an error (not an expectation).
func failureText(c *runner.CaseResult) (string, string, bool) {
	var b strings.Builder
	first := ""
	onlyErrors := true
	for i, a := range c.Attempts {
		if a == nil || a.Pass {
			continue
		}
		if len(c.Attempts) > 1 {
			fmt.Fprintf(&b, "attempt %d of %d:\n", i+1, len(c.Attempts))
		}
		if a.Error != "" {
			fmt.Fprintf(&b, "  error: %s\n", a.Error)
			if first == "" {
				first = "error: " + a.Error
			}
			continue
		}
		onlyErrors = false
		for _, f := range a.Failures {
			fmt.Fprintf(&b, "  %s\n", f)
			if first == "" {
				first = f.String()
			}
		}
	}
	if c.Flaky {
		first = fmt.Sprintf("flaky (%d of %d passed): %s", c.Passes, len(c.Attempts), first)
	}
	return first, b.String(), onlyErrors
}

// transcriptText renders the first failed attempt's transcript (or the
// first attempt's when all passed).
func transcriptText(c *runner.CaseResult) string {
	attempts := make([]*runner.Attempt, 0, len(c.Attempts))
	for _, a := range c.Attempts {
		if a != nil && !a.Pass {
			attempts = append(attempts, a)
		}
	}
	attempts = append(attempts, c.Attempts...)
	for _, a := range attempts {
		if a == nil {
			continue
		}
		var b strings.Builder
		for _, ev := range a.Transcript {
			switch ev.Kind {
			case "caller":
				fmt.Fprintf(&b, "[%d] caller: %s\n", ev.Turn, ev.Text)
			case "agent":
				fmt.Fprintf(&b, "[%d] agent: %s\n", ev.Turn, ev.Text)
			case "tool":
				fmt.Fprintf(&b, "[%d] tool %s(%s) -> %s\n", ev.Turn, ev.Tool, ev.Arguments, ev.Output)
			}
		}
		return b.String()
	}
	return ""
}

// Headline is the first line of every run's output: it states the mode
// (and, for scripted runs, that they do not measure the model).
func Headline(mode, model, suiteName string, cases, parallel, repeat int) string {
	switch mode {
	case "scripted":
		return fmt.Sprintf("eval: mode=scripted suite=%s cases=%d: %s", suiteName, cases, runner.ScriptedNote)
	default:
		return fmt.Sprintf("eval: mode=%s model=%s suite=%s cases=%d parallel=%d repeat=%d", mode, model, suiteName, cases, parallel, repeat)
	}
}

// CaseLine is the one line per case of non-terminal output.
func CaseLine(done, total int, c *runner.CaseResult) string {
	switch c.Status {
	case runner.StatusSkipped:
		return fmt.Sprintf("[%d/%d] SKIP %s: %s", done, total, c.Name, c.SkipReason)
	case runner.StatusPassed:
		return fmt.Sprintf("[%d/%d] PASS %s (%.2fs)", done, total, c.Name, c.Duration.Seconds())
	case runner.StatusStale:
		msg, _, _ := failureText(c)
		return fmt.Sprintf("[%d/%d] STALE %s (%.2fs): %s", done, total, c.Name, c.Duration.Seconds(), msg)
	}
	msg, _, _ := failureText(c)
	return fmt.Sprintf("[%d/%d] FAIL %s (%.2fs): %s", done, total, c.Name, c.Duration.Seconds(), msg)
}

// Progress renders a terminal progress line (no newline; the caller
// rewrites it with \r).
func Progress(done, total, passed, ran int) string {
	rate := 0.0
	if ran > 0 {
		rate = float64(passed) / float64(ran)
	}
	const width = 30
	filled := 0
	if total > 0 {
		filled = done * width / total
	}
	return fmt.Sprintf("[%s%s] %d/%d cases, pass rate so far %.1f%%", strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total, rate*100)
}

// RekeyCommand re-keys the hand-written recordings of a suite.
func RekeyCommand(suiteName string) string {
	return fmt.Sprintf(`go run ./evals/cmd/rekey --suite %s --by "Your Name"`, suiteName)
}

// RecordCommand re-records a suite from the live model.
func RecordCommand(suiteName string) string {
	return fmt.Sprintf("OPENAI_API_KEY=... go run ./evals/cmd/eval --suite %s --mode record (on a protected branch)", suiteName)
}

// Summary is the closing lines of console output: score, counts, latency,
// and every failed expectation.
func Summary(r *runner.Report) string {
	var b strings.Builder
	var stale []string
	for _, c := range r.Cases {
		switch c.Status {
		case runner.StatusStale:
			stale = append(stale, c.Name)
			_, body, _ := failureText(c)
			fmt.Fprintf(&b, "STALE %s (%s)\n%s", c.Name, c.File, body)
		case runner.StatusFailed:
			_, body, _ := failureText(c)
			fmt.Fprintf(&b, "FAIL %s (%s)\n%s", c.Name, c.File, body)
		}
	}
	if len(stale) > 0 {
		fmt.Fprintf(&b, "eval: %d stale recording(s), failed closed: %s\n  refresh hand-written recordings (prompt or schema changes only): %s\n  refresh recordings made from a model: %s\n",
			len(stale), strings.Join(stale, ", "), RekeyCommand(r.Suite), RecordCommand(r.Suite))
	}
	verdict := "PASS"
	if !r.Passes() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "eval: %s score %.4f (threshold %.2f) mode=%s: %d passed, %d failed (%d stale), %d skipped of %d; %d ran on matching recordings (%d recorded from a model, %d hand-written)",
		verdict, r.Score, r.Threshold, r.Mode, r.Passed, r.Failed, r.Stale, r.Skipped, r.Total, r.Matched, r.Recorded, r.HandWritten)
	if m := r.Mutation; m != nil {
		fmt.Fprintf(&b, "; mutants killed %d/%d (%.1f%%, floor %.1f%%)", m.Killed, m.Mutants, m.Ratio*100, m.Floor*100)
	}
	if r.CriticalFailed > 0 {
		fmt.Fprintf(&b, "; %d critical case(s) failed (the run fails whatever the score)", r.CriticalFailed)
	}
	if r.Repeat > 1 {
		fmt.Fprintf(&b, "; repeat %d: pass^%d %.4f, pass@%d %.4f, %d flaky", r.Repeat, r.Repeat, r.Score, r.Repeat, r.PassAtK, r.Flaky)
	}
	fmt.Fprintf(&b, "; latency per response p50 %.0fms p95 %.0fms over %d, per caller turn p50 %.0fms p95 %.0fms over %d; tokens %d; %.1fs\n",
		r.Latency.P50Ms, r.Latency.P95Ms, r.Latency.Responses, r.Latency.TurnP50Ms, r.Latency.TurnP95Ms, r.Latency.Turns, r.Usage.TotalTokens, r.Duration.Seconds())
	return b.String()
}

// WriteMarkdown writes a summary for a merge-request comment: verdict,
// score against threshold, counts, latency and tokens, failed and flaky
// cases with their failed expectations, and skipped cases.
func WriteMarkdown(w io.Writer, r *runner.Report) error {
	var b strings.Builder
	icon := "✅"
	if !r.Passes() {
		icon = "❌"
	}
	fmt.Fprintf(&b, "## %s Evals `%s`: score %.1f%% (threshold %.1f%%)\n\n", icon, r.Suite, r.Score*100, r.Threshold*100)
	if r.CriticalFailed > 0 {
		fmt.Fprintf(&b, "**%d critical case(s) failed**: crisis safety, privacy or double-booking regressions fail the gate whatever the score.\n\n", r.CriticalFailed)
	}
	if r.Mode == "scripted" {
		fmt.Fprintf(&b, "> **Mode: scripted.** %s.\n\n", strings.TrimPrefix(runner.ScriptedNote, "scripted: "))
	} else {
		fmt.Fprintf(&b, "> **Mode: %s**, model `%s`.\n\n", r.Mode, r.Model)
	}
	fmt.Fprintf(&b, "Recordings: %d of %d cases ran on recordings matching what the model was given; %d recorded from a model, %d hand-written.", r.Matched, r.Total, r.Recorded, r.HandWritten)
	if m := r.Mutation; m != nil {
		sampled := ""
		if m.Sampled {
			sampled = " (sampled subset)"
		}
		fmt.Fprintf(&b, " Mutation testing%s: %d of %d mutants killed (%.1f%%, floor %.1f%%).", sampled, m.Killed, m.Mutants, m.Ratio*100, m.Floor*100)
		if len(m.Survived) > 0 {
			fmt.Fprintf(&b, " Survived: %s.", "`"+strings.Join(m.Survived, "`, `")+"`")
		}
	}
	fmt.Fprintf(&b, "\n\n")
	fmt.Fprintf(&b, "| passed | failed | stale | skipped | total | repeat | pass^k | pass@k | flaky | p50 / p95 per response | p50 / p95 per turn | tokens | time |\n")
	fmt.Fprintf(&b, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %d | %.1f%% | %.1f%% | %d | %.0f / %.0f ms | %.0f / %.0f ms | %d | %.1fs |\n\n",
		r.Passed, r.Failed-r.Stale, r.Stale, r.Skipped, r.Total, r.Repeat, r.Score*100, r.PassAtK*100, r.Flaky, r.Latency.P50Ms, r.Latency.P95Ms,
		r.Latency.TurnP50Ms, r.Latency.TurnP95Ms, r.Usage.TotalTokens, r.Duration.Seconds())
	var failed, skipped, stale []*runner.CaseResult
	for _, c := range r.Cases {
		switch c.Status {
		case runner.StatusStale:
			stale = append(stale, c)
		case runner.StatusFailed:
			failed = append(failed, c)
		case runner.StatusSkipped:
			skipped = append(skipped, c)
		}
	}
	sort.SliceStable(failed, func(i, j int) bool { return failed[i].Weight > failed[j].Weight })
	if len(failed) > 0 {
		fmt.Fprintf(&b, "### Failed cases\n\n")
		for _, c := range failed {
			flaky := ""
			if c.Flaky {
				flaky = fmt.Sprintf(" — flaky, %d of %d attempts passed", c.Passes, len(c.Attempts))
			}
			crit := ""
			if c.Critical {
				crit = ", **critical**"
			}
			fmt.Fprintf(&b, "<details><summary><code>%s</code> (weight %g%s%s)</summary>\n\n", c.Name, c.Weight, crit, flaky)
			_, body, _ := failureText(c)
			for _, line := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
				fmt.Fprintf(&b, "- %s\n", mdEscape(strings.TrimSpace(line)))
			}
			fmt.Fprintf(&b, "\n`%s`\n\n</details>\n\n", c.File)
		}
	}
	if len(stale) > 0 {
		fmt.Fprintf(&b, "### Stale recordings (failed closed)\n\nThe agent now gives the model something else than these recordings were made for.\n\n")
		for _, c := range stale {
			_, body, _ := failureText(c)
			fmt.Fprintf(&b, "- `%s` (`%s`): %s\n", c.Name, c.File, mdEscape(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(body), "error: "))))
		}
		fmt.Fprintf(&b, "\nRefresh hand-written recordings (re-keys prompt and schema changes only, review the diff): `%s`. Recordings made from a model: `%s`.\n\n", RekeyCommand(r.Suite), RecordCommand(r.Suite))
	}
	if len(skipped) > 0 {
		names := make([]string, len(skipped))
		for i, c := range skipped {
			names[i] = "`" + c.Name + "`"
		}
		fmt.Fprintf(&b, "<details><summary>%d skipped</summary>\n\n%s (%s)\n\n</details>\n", len(skipped), strings.Join(names, ", "), skipped[0].SkipReason)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write Markdown report: %w", err)
	}
	return nil
}

func mdEscape(s string) string {
	r := strings.NewReplacer("<", "&lt;", ">", "&gt;", "|", `\|`)
	return r.Replace(s)
}
