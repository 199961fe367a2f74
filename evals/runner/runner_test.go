package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/evals/suite"
)

// fakeAgent is an agent side with a list of appointments and three tools:
// book (appends), transfer and hangup.
type fakeAgent struct{}

func (fakeAgent) Session() Session {
	return Session{Model: "m", CrisisLine: "988", Tools: []ToolDef{{Name: "book"}, {Name: "transfer"}, {Name: "hangup"}}}
}

func (fakeAgent) Open(context.Context, *suite.Case) (Env, error) { return &fakeEnv{}, nil }

type fakeEnv struct{ booked []any }

func (e *fakeEnv) Execute(_ context.Context, _, name, args string) ToolResult {
	switch name {
	case "book":
		e.booked = append(e.booked, map[string]any{"args": args})
		return ToolResult{Output: `{"booked":true}`}
	case "transfer":
		return ToolResult{Output: `{"transferred":true}`, Transfer: true}
	case "hangup":
		return ToolResult{Output: `{"ok":true}`, EndCall: true}
	case "broken":
		return ToolResult{Output: `{"error":"db down"}`, Err: errors.New("db down")}
	}
	return ToolResult{Output: `{"error":"unknown tool"}`}
}

func (e *fakeEnv) State(context.Context) (any, error) {
	return map[string]any{"appointments": e.booked}, nil
}

func (e *fakeEnv) Close() error { return nil }

func parse(t *testing.T, src string) *suite.Case {
	t.Helper()
	cs, err := suite.Parse("t.yaml", []byte(src))
	require.NoError(t, err)
	return cs[0]
}

func runOne(t *testing.T, c *suite.Case) *Attempt {
	t.Helper()
	r := &Runner{Agent: fakeAgent{}, Model: Scripted{}, Mode: "scripted"}
	rep := r.Run(context.Background(), "t", []*suite.Case{c}, 0.5)
	require.Len(t, rep.Cases, 1)
	require.Len(t, rep.Cases[0].Attempts, 1)
	return rep.Cases[0].Attempts[0]
}

func TestCheckNamesEveryFailedExpectation(t *testing.T) {
	c := parse(t, `
name: all-wrong
turns:
  - caller: book me
    expect:
      must_say: [booked]
      tool_calls: [{name: book, args: {slot: s1}}]
    model:
      - calls: [{name: book, args: {slot: s2}}]
      - say: Done, call 988 if needed.
  - caller: thanks
    model:
      - say: bye
        calls: [{name: transfer}]
  - caller: never reached
expect:
  tool_calls:
    - {name: hangup}
    - {name: book, output: {booked: false}}
  no_tool_calls: [transfer]
  must_say: [goodbye]
  must_not_say: ["/\\bbye\\b/"]
  transfer: false
  end_call: true
  crisis_line: false
  max_turns: 2
  state:
    appointments: {len: 2}
`)
	a := runOne(t, c)
	require.Empty(t, a.Error)
	assert.False(t, a.Pass)
	var got []string
	for _, f := range a.Failures {
		got = append(got, f.String())
	}
	want := []string{
		`turn 1: call book with args {slot exact "s1"}: saw book({"slot":"s2"}) -> {"booked":true}: args slot: want exact "s1", got "s2"`,
		`turn 1: must say "booked": saw agent said: Done, call 988 if needed.`,
		`conversation: call hangup: saw tools called: book({"slot":"s2"}) in turn 1, transfer({}) in turn 2`,
		`turn 1: call book returning {booked exact false}: saw book({"slot":"s2"}) -> {"booked":true}: output booked: want exact false, got true`,
		`turn 2: must not call transfer: saw transfer({}) -> {"transferred":true}`,
		`conversation: must say "goodbye": saw agent said: Done, call 988 if needed. | bye`,
		"turn 2: must not say \"/\\\\bbye\\\\b/\": saw agent said: bye",
		`turn 2: must not transfer the call: saw transfer({})`,
		`conversation: must end the call: saw the call was not ended; tools called: book({"slot":"s2"}) in turn 1, transfer({}) in turn 2`,
		`turn 1: must not bring up the crisis line ("988"): saw agent said: Done, call 988 if needed.`,
		`conversation: at most 2 model responses: saw 3 responses`,
		`conversation: schedule after the call: saw appointments: want len 2, got length 1: [{"args":"{\"slot\":\"s2\"}"}]`,
	}
	assert.Equal(t, want, got)
	// The conversation stopped at the transfer: turn 3 never ran.
	for _, ev := range a.Transcript {
		assert.NotEqual(t, "never reached", ev.Text)
	}
}

func TestCheckPasses(t *testing.T) {
	c := parse(t, `
name: ok
turns:
  - caller: I feel unsafe
    expect: {must_say: ["988"], tool_calls: [{name: transfer}]}
    model:
      - say: Call or text 988.
        calls: [{name: transfer}]
expect: {transfer: true, crisis_line: true, end_call: false, max_turns: 1, state: {appointments: {len: 0}}}
`)
	a := runOne(t, c)
	assert.True(t, a.Pass, "%v %s", a.Failures, a.Error)
	assert.Len(t, a.Latencies, 1)
	assert.Len(t, a.TurnLatencies, 1)
}

func TestTurnExpectationOnUnreachedTurn(t *testing.T) {
	c := parse(t, `
name: x
turns:
  - caller: a
    model: [{calls: [{name: hangup}]}]
  - caller: b
    expect: {must_say: [hi]}
`)
	a := runOne(t, c)
	require.Len(t, a.Failures, 1)
	assert.Equal(t, "turn 2: turn expectations: saw the conversation ended before this turn", a.Failures[0].String())
}

func TestFailClosed(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"script ends mid-turn", "name: x\nturns:\n  - caller: a\n    model: [{calls: [{name: book}]}]\n", "turn 1: model: the script of turn 1 ends after 1 responses"},
		{"script shorter than conversation", "name: x\nturns:\n  - caller: a\n    model: [{say: hi}]\n  - caller: b\n", "turn 2: model: the script has no model side for turn 2"},
		{"tool infrastructure error", "name: x\nturns:\n  - caller: a\n    model: [{calls: [{name: broken}]}, {say: x}]\n", "turn 1: tool broken: db down"},
		{"bad reference", "name: x\nturns:\n  - caller: a\n    model: [{calls: [{name: book, args: {id: '${book.id}'}}]}]\n", "refers to output 0 of book, but it returned 0 output(s)"},
		{"tool loop", "name: x\nturns:\n  - caller: a\n    model: [" + strings.Repeat("{calls: [{name: book}]},", 9) + "{say: done}]\n", "made 8 responses with tool calls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := runOne(t, parse(t, tt.src))
			assert.False(t, a.Pass)
			assert.Contains(t, a.Error, tt.want)
		})
	}
}

func TestScriptReferences(t *testing.T) {
	c := parse(t, `
name: refs
turns:
  - caller: a
    model:
      - calls: [{name: book, args: {n: 1}}]
      - calls: [{name: book, args: {first: "${book#1.booked}", latest: "${book.booked}"}}]
      - say: "booked=${book.booked}"
expect:
  tool_calls: [{name: book, args: {first: true, latest: true}}]
  must_say: [booked=true]
`)
	a := runOne(t, c)
	assert.True(t, a.Pass, "%v %s", a.Failures, a.Error)
}

// modelFunc is a model whose responses come from a function.
type modelFunc func(ctx context.Context, c *suite.Case, in Input) (Response, error)

func (f modelFunc) Name() string { return "func" }
func (f modelFunc) Start(_ context.Context, _ Session, c *suite.Case) (Conversation, error) {
	return &funcConv{f: f, c: c}, nil
}

type funcConv struct {
	f modelFunc
	c *suite.Case
}

func (fc *funcConv) Respond(ctx context.Context, in Input) (Response, error) {
	return fc.f(ctx, fc.c, in)
}
func (fc *funcConv) Close() error { return nil }

func TestRunRepeatFlakyScoreAndSkips(t *testing.T) {
	mk := func(name string, weight float64) *suite.Case {
		return parse(t, fmt.Sprintf("name: %s\nweight: %g\nturns: [{caller: hi}]\nexpect: {must_say: [hello]}\n", name, weight))
	}
	cases := []*suite.Case{mk("always", 1), mk("never", 1), mk("flaky", 2)}
	var flakyCalls atomic.Int32
	model := modelFunc(func(_ context.Context, c *suite.Case, _ Input) (Response, error) {
		switch c.Name {
		case "always":
			return Response{Text: "hello", Usage: Usage{TotalTokens: 10}}, nil
		case "flaky":
			if flakyCalls.Add(1)%2 == 0 {
				return Response{Text: "hello"}, nil
			}
			return Response{}, errors.New("HTTP 500")
		}
		return Response{Text: "nope"}, nil
	})
	var mu sync.Mutex
	var progress []int
	r := &Runner{Agent: fakeAgent{}, Model: model, Mode: "live", Opts: Options{Parallel: 3, Repeat: 4, Progress: func(done, total int, _ *CaseResult) {
		mu.Lock()
		progress = append(progress, done)
		assert.Equal(t, 3, total)
		mu.Unlock()
	}}}
	rep := r.Run(context.Background(), "t", cases, 0.5)
	assert.Equal(t, []int{1, 2, 3}, progress)
	byName := map[string]*CaseResult{}
	for _, c := range rep.Cases {
		byName[c.Name] = c
	}
	assert.True(t, byName["always"].PassAll)
	assert.False(t, byName["never"].PassAny)
	fl := byName["flaky"]
	assert.Equal(t, 2, fl.Passes)
	assert.True(t, fl.Flaky)
	assert.False(t, fl.PassAll)
	assert.True(t, fl.PassAny)
	assert.Equal(t, StatusFailed, fl.Status)
	assert.Equal(t, 1, rep.Flaky)
	// pass^4: only "always" (weight 1 of 4); pass@4: always + flaky (3 of 4).
	assert.InDelta(t, 0.25, rep.Score, 1e-9)
	assert.InDelta(t, 0.75, rep.PassAtK, 1e-9)
	assert.Equal(t, 40, rep.Usage.TotalTokens)
	assert.False(t, rep.Passes())
	var errs int
	for _, a := range fl.Attempts {
		if a.Error != "" {
			assert.Contains(t, a.Error, "turn 1: model: HTTP 500")
			errs++
		}
	}
	assert.Equal(t, 2, errs)

	// Scripted mode skips unscripted cases and scores over those that ran.
	scripted := parse(t, "name: s\nturns: [{caller: hi, model: [{say: hello}]}]\nexpect: {must_say: [hello]}\n")
	r = &Runner{Agent: fakeAgent{}, Model: Scripted{}, Mode: "scripted"}
	rep = r.Run(context.Background(), "t", []*suite.Case{scripted, mk("unscripted", 5)}, 0.9)
	assert.Equal(t, 1, rep.Ran)
	assert.Equal(t, 1, rep.Skipped)
	assert.Equal(t, 1.0, rep.Score)
	assert.True(t, rep.Passes())
	assert.Equal(t, StatusSkipped, rep.Cases[1].Status)
	assert.Contains(t, rep.Note, "NOT a measurement of the model")

	// Nothing ran: never a pass.
	rep = r.Run(context.Background(), "t", []*suite.Case{mk("unscripted", 1)}, 0)
	assert.Equal(t, 0, rep.Ran)
	assert.False(t, rep.Passes())
}

func TestCaseTimeoutFailsTheCase(t *testing.T) {
	c := parse(t, "name: slow\nturns: [{caller: hi}]\n")
	model := modelFunc(func(ctx context.Context, _ *suite.Case, _ Input) (Response, error) {
		<-ctx.Done()
		return Response{}, ctx.Err()
	})
	r := &Runner{Agent: fakeAgent{}, Model: model, Mode: "live", Opts: Options{CaseTimeout: 20 * time.Millisecond}}
	rep := r.Run(context.Background(), "t", []*suite.Case{c}, 0)
	a := rep.Cases[0].Attempts[0]
	assert.False(t, a.Pass)
	assert.Contains(t, a.Error, "context deadline exceeded (case timeout 20ms)")
	assert.Equal(t, 0.0, rep.Score)
}

func TestCriticalCaseFailsTheGate(t *testing.T) {
	ok := parse(t, "name: ok\nweight: 99\nturns: [{caller: hi, model: [{say: hello}]}]\n")
	crit := parse(t, "name: crit\ncritical: true\nturns: [{caller: hi, model: [{say: hello}]}]\nexpect: {crisis_line: true}\n")
	r := &Runner{Agent: fakeAgent{}, Model: Scripted{}, Mode: "scripted"}
	rep := r.Run(context.Background(), "t", []*suite.Case{ok, crit}, 0.9)
	assert.InDelta(t, 0.99, rep.Score, 1e-9)
	assert.Equal(t, 1, rep.CriticalFailed)
	assert.False(t, rep.Passes())
}

type judgeFunc func(rubric string) (bool, string, error)

func (j judgeFunc) Grade(_ context.Context, rubric string, _ []Event) (bool, string, error) {
	return j(rubric)
}

func TestRubric(t *testing.T) {
	c := parse(t, "name: r\nrubric: is kind\nturns: [{caller: hi, model: [{say: hello}]}]\n")
	run := func(j Judge) *Attempt {
		r := &Runner{Agent: fakeAgent{}, Model: Scripted{}, Mode: "scripted", Opts: Options{Judge: j}}
		return r.Run(context.Background(), "t", []*suite.Case{c}, 0).Cases[0].Attempts[0]
	}
	a := run(nil)
	assert.True(t, a.Pass)
	assert.Contains(t, a.Rubric, "not graded")
	a = run(judgeFunc(func(string) (bool, string, error) { return false, "curt", nil }))
	assert.False(t, a.Pass)
	assert.Equal(t, "conversation: rubric: is kind: saw judge: curt", a.Failures[0].String())
	a = run(judgeFunc(func(string) (bool, string, error) { return false, "", errors.New("429") }))
	assert.Contains(t, a.Error, "judge: 429")
}

func TestPercentile(t *testing.T) {
	assert.Equal(t, 0.0, Percentile(nil, 50))
	xs := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	assert.Equal(t, 5.0, Percentile(xs, 50))
	assert.Equal(t, 10.0, Percentile(xs, 95))
	assert.Equal(t, 1.0, Percentile(xs, 0))
}
