package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	junit "github.com/joshdk/go-junit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/evals/runner"
)

func sample() *runner.Report {
	fail := &runner.Attempt{Failures: []runner.Failure{{Turn: 2, Expectation: `must say "988"`, Seen: "agent said: <bye> | ok"}},
		Transcript: []runner.Event{{Turn: 1, Kind: "caller", Text: "hi"}, {Turn: 1, Kind: "tool", Tool: "book", Arguments: `{"a":1}`, Output: `{"ok":true}`}, {Turn: 1, Kind: "agent", Text: "hello & welcome"}},
		Duration:   runner.Duration(1500 * time.Millisecond)}
	pass := &runner.Attempt{Pass: true, Duration: runner.Duration(time.Second), Transcript: []runner.Event{}}
	errA := &runner.Attempt{Error: "turn 1: model: HTTP 500", Transcript: []runner.Event{}}
	return &runner.Report{
		Suite: "voice", Mode: "live", Model: "gpt-realtime", Note: "live", Threshold: 0.92, Score: 0.5, PassAtK: 0.75, Repeat: 2,
		Total: 4, Ran: 3, Passed: 1, Failed: 2, Skipped: 1, Flaky: 1, CriticalFailed: 1,
		StartedAt: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), Duration: runner.Duration(3 * time.Second),
		Latency: runner.LatencySummary{Responses: 4, P50Ms: 800, P95Ms: 1900, Turns: 3, TurnP50Ms: 1200, TurnP95Ms: 2500},
		Cases: []*runner.CaseResult{
			{Name: "ok", File: "voice/a.yaml:1", Weight: 1, Status: runner.StatusPassed, Passes: 2, PassAll: true, PassAny: true, Attempts: []*runner.Attempt{pass, pass}, Duration: runner.Duration(2 * time.Second)},
			{Name: "crisis", File: "voice/b.yaml:7", Weight: 3, Critical: true, Status: runner.StatusFailed, Passes: 1, PassAny: true, Flaky: true, Attempts: []*runner.Attempt{pass, fail}},
			{Name: "down", File: "voice/b.yaml:30", Weight: 1, Status: runner.StatusFailed, Attempts: []*runner.Attempt{errA, errA}},
			{Name: "noscript", File: "voice/c.yaml:1", Weight: 1, Status: runner.StatusSkipped, SkipReason: "no scripted model transcript"},
		},
	}
}

// TestJUnitParsesBack writes the JUnit report and reads it with an
// independent JUnit parser (github.com/joshdk/go-junit).
func TestJUnitParsesBack(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteJUnit(&buf, sample()))
	suites, err := junit.Ingest(buf.Bytes())
	require.NoError(t, err)
	require.Len(t, suites, 1)
	s := suites[0]
	assert.Equal(t, "evals/voice (live)", s.Name)
	assert.Equal(t, "live", s.Properties["mode"])
	assert.Equal(t, "0.5000", s.Properties["score"])
	assert.Equal(t, "1", s.Properties["critical_failed"])
	require.Len(t, s.Tests, 4)
	status := map[string]junit.Status{}
	for _, tc := range s.Tests {
		status[tc.Name] = tc.Status
		assert.Equal(t, "evals.voice", tc.Classname)
	}
	assert.Equal(t, junit.StatusPassed, status["ok"])
	assert.Equal(t, junit.StatusFailed, status["crisis"])
	assert.Equal(t, junit.StatusError, status["down"])
	assert.Equal(t, junit.StatusSkipped, status["noscript"])
	assert.Equal(t, 1, s.Totals.Passed)
	assert.Equal(t, 1, s.Totals.Failed)
	assert.Equal(t, 1, s.Totals.Error)
	assert.Equal(t, 1, s.Totals.Skipped)
	for _, tc := range s.Tests {
		if tc.Name == "crisis" {
			require.NotNil(t, tc.Error)
			assert.Contains(t, tc.Message, "flaky (1 of 2 passed): turn 2: must say \"988\": saw agent said: <bye> | ok")
			assert.Contains(t, tc.SystemOut, "[1] tool book({\"a\":1}) -> {\"ok\":true}")
			assert.Contains(t, tc.SystemOut, "hello & welcome")
		}
	}
}

func TestJSONReport(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, sample()))
	var got map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
	assert.Equal(t, 0.5, got["score"])
	assert.Equal(t, "live", got["mode"])
	assert.Equal(t, 3000.0, got["duration_ms"])
	assert.Equal(t, 1900.0, got["latency"].(map[string]any)["p95_ms"])
	cases := got["cases"].([]any)
	require.Len(t, cases, 4)
	crisis := cases[1].(map[string]any)
	assert.Equal(t, true, crisis["flaky"])
	f := crisis["attempts"].([]any)[1].(map[string]any)["failures"].([]any)[0].(map[string]any)
	assert.Equal(t, 2.0, f["turn"])
	assert.Equal(t, "agent said: <bye> | ok", f["seen"])
}

func TestMarkdown(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteMarkdown(&buf, sample()))
	md := buf.String()
	assert.True(t, strings.HasPrefix(md, "## ❌ Evals `voice`: score 50.0% (threshold 92.0%)"), md)
	assert.Contains(t, md, "**1 critical case(s) failed**")
	assert.Contains(t, md, "**Mode: live**, model `gpt-realtime`")
	assert.Contains(t, md, "<code>crisis</code> (weight 3, **critical** — flaky, 1 of 2 attempts passed)")
	assert.Contains(t, md, "- turn 2: must say \"988\": saw agent said: &lt;bye&gt; \\| ok")
	assert.Contains(t, md, "error: turn 1: model: HTTP 500")
	assert.Contains(t, md, "1 skipped")
	assert.Contains(t, md, "| 800 / 1900 ms | 1200 / 2500 ms |")
	// The heaviest failure is listed first.
	assert.Less(t, strings.Index(md, "<code>crisis</code>"), strings.Index(md, "<code>down</code>"))

	r := sample()
	r.Mode = "scripted"
	buf.Reset()
	require.NoError(t, WriteMarkdown(&buf, r))
	assert.Contains(t, buf.String(), "NOT a measurement of the model")
}

func TestConsoleLines(t *testing.T) {
	r := sample()
	assert.True(t, strings.HasPrefix(Headline("scripted", "scripted", "voice", 62, 4, 1), "eval: mode=scripted suite=voice cases=62: scripted: "))
	assert.Contains(t, Headline("scripted", "scripted", "voice", 62, 4, 1), "NOT a measurement of the model")
	assert.Equal(t, "eval: mode=live model=gpt-realtime suite=voice cases=3 parallel=4 repeat=2", Headline("live", "gpt-realtime", "voice", 3, 4, 2))
	assert.Equal(t, "[1/4] PASS ok (2.00s)", CaseLine(1, 4, r.Cases[0]))
	assert.Equal(t, "[3/4] FAIL down (0.00s): error: turn 1: model: HTTP 500", CaseLine(3, 4, r.Cases[2]))
	assert.Equal(t, "[4/4] SKIP noscript: no scripted model transcript", CaseLine(4, 4, r.Cases[3]))
	assert.Equal(t, "[###############...............] 2/4 cases, pass rate so far 50.0%", Progress(2, 4, 1, 2))
	sum := Summary(r)
	assert.Contains(t, sum, "FAIL crisis (voice/b.yaml:7)\nattempt 2 of 2:\n  turn 2: must say")
	assert.Contains(t, sum, "eval: FAIL score 0.5000 (threshold 0.92) mode=live: 1 passed, 2 failed (0 stale), 1 skipped of 4; 0 ran on matching recordings (0 recorded from a model, 0 hand-written); 1 critical case(s) failed")
	assert.Contains(t, sum, "repeat 2: pass^2 0.5000, pass@2 0.7500, 1 flaky")
	assert.Contains(t, sum, "per response p50 800ms p95 1900ms over 4, per caller turn p50 1200ms p95 2500ms over 3")
}

// TestStaleIsNeverPassed: a stale case is a failure in every report, named
// with the refresh commands, and the counts of matching recordings and of
// how recordings were made are shown.
func TestStaleIsNeverPassed(t *testing.T) {
	st := &runner.Attempt{Stale: "stale recording: turn 1 response 1: ... (tool book_appointment: description or JSON schema changed)", Error: "stale recording: turn 1 response 1: ... (tool book_appointment: description or JSON schema changed)", Transcript: []runner.Event{}}
	ok := &runner.Attempt{Pass: true, Matched: true, Transcript: []runner.Event{}}
	r := &runner.Report{Suite: "voice", Mode: "scripted", Threshold: 0.5, Score: 0.5, Total: 2, Ran: 2, Passed: 1, Failed: 1, Stale: 1, Matched: 1, HandWritten: 1, Recorded: 1,
		Mutation: &runner.MutationSummary{Mutants: 20, Killed: 19, Survived: []string{"tz-shift"}, Ratio: 0.95, Floor: 0.9},
		Cases: []*runner.CaseResult{
			{Name: "fresh", File: "voice/a.yaml:1", Weight: 1, Status: runner.StatusPassed, Attempts: []*runner.Attempt{ok}, Recording: "hand-written"},
			{Name: "old", File: "voice/a.yaml:9", Weight: 1, Status: runner.StatusStale, Attempts: []*runner.Attempt{st}, Recording: "recorded from gpt-realtime on 2026-11-30"},
		}}
	var j bytes.Buffer
	require.NoError(t, WriteJUnit(&j, r))
	suites, err := junit.Ingest(j.Bytes())
	require.NoError(t, err)
	require.Len(t, suites[0].Tests, 2)
	assert.Equal(t, junit.StatusFailed, suites[0].Tests[1].Status)
	assert.Equal(t, "0.9500", suites[0].Properties["mutation_kill_ratio"])
	assert.Equal(t, "1", suites[0].Properties["stale"])

	sum := Summary(r)
	assert.Contains(t, sum, "STALE old (voice/a.yaml:9)")
	assert.Contains(t, sum, "eval: 1 stale recording(s), failed closed: old")
	assert.Contains(t, sum, `go run ./evals/cmd/rekey --suite voice --by "Your Name"`)
	assert.Contains(t, sum, "--mode record")
	assert.Contains(t, sum, "1 passed, 1 failed (1 stale)")
	assert.Contains(t, sum, "1 ran on matching recordings (1 recorded from a model, 1 hand-written)")
	assert.Contains(t, sum, "mutants killed 19/20 (95.0%, floor 90.0%)")
	assert.Contains(t, CaseLine(2, 2, r.Cases[1]), "[2/2] STALE old")

	var md bytes.Buffer
	require.NoError(t, WriteMarkdown(&md, r))
	assert.Contains(t, md.String(), "### Stale recordings (failed closed)")
	assert.Contains(t, md.String(), "`old`")
	assert.Contains(t, md.String(), "1 of 2 cases ran on recordings matching")
	assert.Contains(t, md.String(), "Survived: `tz-shift`")
	assert.NotContains(t, md.String(), "✅")

	var js bytes.Buffer
	require.NoError(t, WriteJSON(&js, r))
	var back struct {
		Stale, Matched, Recorded, HandWritten int
		Mutation                              struct {
			KillRatio float64 `json:"kill_ratio"`
		}
		Cases []struct{ Status string }
	}
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	assert.Equal(t, 1, back.Stale)
	assert.Equal(t, "stale", back.Cases[1].Status)
	assert.Equal(t, 0.95, back.Mutation.KillRatio)
}
