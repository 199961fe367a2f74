// Package runner plays eval cases against the agent's side (its session
// configuration, tool executor and schedule store) and a model (live, or a
// scripted transcript), checks the expectations and scores the suite.
//
// The agent and the model are interfaces, so the same runner drives the
// production agent packages (package agentenv) and, in tests, deliberately
// broken variants of them to prove the suite catches regressions.
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"gitlab.com/acme/voice-agent/evals/suite"
)

// ToolDef is one tool the agent offers the model.
type ToolDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

// Session is the agent's production session configuration as the runner
// needs it.
type Session struct {
	// Model is the agent's production model (the default of --model).
	Model string
	// Instructions is the system prompt.
	Instructions string
	// Tools are the function tools offered to the model.
	Tools []ToolDef
	// CrisisLine is the phrase (e.g. "988") that offering the crisis line
	// must include.
	CrisisLine string
	// Object, when set, builds the agent's own Realtime session object for
	// session.update with the given model in text mode and the clinic's
	// clock at the start of the call (what production tells the model as
	// today's date); live mode sends it as is, so evals see exactly what
	// production configures.
	Object func(model string, now time.Time) (json.RawMessage, error)
}

// ToolNames lists the names of the session's tools.
func (s Session) ToolNames() []string {
	out := make([]string, len(s.Tools))
	for i, t := range s.Tools {
		out[i] = t.Name
	}
	return out
}

// Agent is the agent's side of an eval: its session configuration and, per
// conversation, an environment with a seeded schedule and the tool executor.
type Agent interface {
	Session() Session
	Open(ctx context.Context, c *suite.Case) (Env, error)
}

// Env is one conversation's agent side.
type Env interface {
	// Execute runs a tool call as production would.
	Execute(ctx context.Context, callID, name, arguments string) ToolResult
	// State returns the schedule after the call in its JSON shape.
	State(ctx context.Context) (any, error)
	Close() error
}

// ToolResult is what the agent's executor returned.
type ToolResult struct {
	Output   string
	Transfer bool
	EndCall  bool
	// Err is an infrastructure failure (the attempt fails).
	Err error
}

// Model produces the model side of conversations.
type Model interface {
	// Name is the model's name for reports.
	Name() string
	// Start opens a conversation with the agent's session configuration.
	Start(ctx context.Context, s Session, c *suite.Case) (Conversation, error)
}

// Conversation is one conversation with the model.
type Conversation interface {
	// Respond adds the caller's words (a new turn) or the outputs of the
	// previous response's tool calls, and returns the model's next response.
	Respond(ctx context.Context, in Input) (Response, error)
	Close() error
}

// Input is what the model sees next: the caller's words or tool outputs.
type Input struct {
	Caller string
	// Audio is the caller's speech (PCM16 mono 24 kHz), sent instead of
	// the Caller text when set (live mode with caller audio files).
	Audio   []byte
	Outputs []ToolOutput
}

// ToolOutput is one tool call's output given back to the model.
type ToolOutput struct {
	CallID string
	Name   string
	Output string
}

// Response is one model response.
type Response struct {
	Text  string
	Calls []ToolCall
	Usage Usage
}

// ToolCall is a function call the model made.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string
}

// Usage counts tokens.
type Usage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

func (u *Usage) add(o Usage) {
	u.InputTokens += o.InputTokens
	u.OutputTokens += o.OutputTokens
	u.TotalTokens += o.TotalTokens
}

// Judge grades a transcript against a rubric (live mode).
type Judge interface {
	Grade(ctx context.Context, rubric string, transcript []Event) (pass bool, reason string, err error)
}

// Options tune a run.
type Options struct {
	// Parallel is how many conversations run at once (default 1).
	Parallel int
	// Repeat runs each case this many times (default 1).
	Repeat int
	// CaseTimeout bounds one conversation (default 2 minutes).
	CaseTimeout time.Duration
	// MaxRounds bounds model responses in one caller turn (default 8), so
	// a model looping on tool calls fails instead of hanging.
	MaxRounds int
	// Judge grades rubrics; nil leaves rubrics ungraded (noted in reports).
	Judge Judge
	// Progress is called after each case finishes (all repetitions), from
	// one goroutine at a time.
	Progress func(done, total int, r *CaseResult)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Runner runs cases.
type Runner struct {
	Agent Agent
	Model Model
	// Calls, when set, runs every case as a call through the agent
	// service (Model and Agent's Open are then unused).
	Calls CallPath
	// ModelName names the model in reports when Model is unset.
	ModelName string
	// Mode is recorded in the report (live, scripted, record).
	Mode string
	Opts Options
}

// Case statuses.
const (
	StatusPassed  = "passed"
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
	// StatusStale: the recording did not match what the model was given;
	// the case failed closed (it counts as failed in the score).
	StatusStale = "stale"
)

// Report is the outcome of a run.
type Report struct {
	Suite     string  `json:"suite"`
	Mode      string  `json:"mode"`
	Model     string  `json:"model"`
	Note      string  `json:"note"`
	Threshold float64 `json:"threshold"`
	// Score is the weighted pass rate over cases that ran, where a case
	// passes when all its repetitions pass (pass^K).
	Score float64 `json:"score"`
	// PassAtK is the weighted rate of cases passing in at least one of K
	// repetitions.
	PassAtK float64 `json:"pass_at_k"`
	Repeat  int     `json:"repeat"`
	Total   int     `json:"total"`
	Ran     int     `json:"ran"`
	Passed  int     `json:"passed"`
	Failed  int     `json:"failed"`
	Skipped int     `json:"skipped"`
	Flaky   int     `json:"flaky"`
	// Stale counts cases whose recording no longer matched what the model
	// was given (failed closed; included in Failed).
	Stale int `json:"stale"`
	// Matched counts cases that ran on recordings matching what the model
	// was given at every response (scripted mode).
	Matched int `json:"matched"`
	// Recorded and HandWritten count the selected cases by how their
	// recording was made (recorded from a model, or written by hand).
	Recorded    int `json:"recorded"`
	HandWritten int `json:"hand_written"`
	// Mutation is the mutation-testing summary, when one was run.
	Mutation *MutationSummary `json:"mutation,omitempty"`
	// CriticalFailed counts failed critical cases; any fails the run.
	CriticalFailed int            `json:"critical_failed"`
	StartedAt      time.Time      `json:"started_at"`
	Duration       Duration       `json:"duration_ms"`
	Latency        LatencySummary `json:"latency"`
	Usage          Usage          `json:"usage"`
	Cases          []*CaseResult  `json:"cases"`
}

// Passes reports whether the score reaches the threshold, no critical
// case failed and no recording was stale (a stale recording fails the run
// closed whatever the score: the gate no longer knows what it checks).
func (r *Report) Passes() bool {
	return r.Ran > 0 && r.Score >= r.Threshold && r.CriticalFailed == 0 && r.Stale == 0
}

// LatencySummary is the model latency per response, and per caller turn
// (from the caller's words to the agent's answer, tool rounds included).
type LatencySummary struct {
	Responses int     `json:"responses"`
	P50Ms     float64 `json:"p50_ms"`
	P95Ms     float64 `json:"p95_ms"`
	Turns     int     `json:"turns"`
	TurnP50Ms float64 `json:"turn_p50_ms"`
	TurnP95Ms float64 `json:"turn_p95_ms"`
}

// Duration is a time.Duration written as milliseconds in JSON.
type Duration time.Duration

// MarshalJSON writes milliseconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(float64(time.Duration(d).Microseconds()) / 1000)
}

// Seconds returns the duration in seconds.
func (d Duration) Seconds() float64 { return time.Duration(d).Seconds() }

// CaseResult is the outcome of one case over its repetitions.
type CaseResult struct {
	Name        string   `json:"name"`
	File        string   `json:"file"`
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	Weight      float64  `json:"weight"`
	Critical    bool     `json:"critical,omitempty"`
	Status      string   `json:"status"`
	SkipReason  string   `json:"skip_reason,omitempty"`
	// Recording is how the case's model side was made: "recorded from M
	// on D", "hand-written" or "" (none).
	Recording string `json:"recording,omitempty"`
	// Passes counts passing repetitions.
	Passes int `json:"passes"`
	// PassAll is pass^K: every repetition passed.
	PassAll bool `json:"pass_all"`
	// PassAny is pass@K: at least one repetition passed.
	PassAny bool `json:"pass_any"`
	// Flaky: some repetitions passed and some failed.
	Flaky    bool       `json:"flaky"`
	Duration Duration   `json:"duration_ms"`
	Attempts []*Attempt `json:"attempts,omitempty"`
}

// Attempt is one repetition of a case.
type Attempt struct {
	Pass bool `json:"pass"`
	// Error is a model or infrastructure error, or a timeout (the attempt
	// fails closed).
	Error string `json:"error,omitempty"`
	// Stale is set when the case's recording did not match what the model
	// was given (the attempt fails closed; Error says what changed).
	Stale string `json:"stale,omitempty"`
	// Matched: the attempt replayed a recording that matched what the
	// model was given at every response (scripted).
	Matched  bool      `json:"matched,omitempty"`
	Failures []Failure `json:"failures,omitempty"`
	// Rubric is the judge's verdict ("" when the case has no rubric).
	Rubric     string     `json:"rubric,omitempty"`
	Transcript []Event    `json:"transcript"`
	Duration   Duration   `json:"duration_ms"`
	Latencies  []Duration `json:"latencies_ms,omitempty"`
	// TurnLatencies are per caller turn, tool rounds included.
	TurnLatencies []Duration `json:"turn_latencies_ms,omitempty"`
	Usage         Usage      `json:"usage"`
}

// Failure is one unmet expectation.
type Failure struct {
	// Turn is the caller turn (1-based); 0 for the conversation as a whole.
	Turn        int    `json:"turn"`
	Expectation string `json:"expectation"`
	Seen        string `json:"seen"`
}

// String is "turn 2: <expectation>: saw <seen>".
func (f Failure) String() string {
	where := "conversation"
	if f.Turn > 0 {
		where = fmt.Sprintf("turn %d", f.Turn)
	}
	return fmt.Sprintf("%s: %s: saw %s", where, f.Expectation, f.Seen)
}

// Event is one step of a transcript.
type Event struct {
	Turn int `json:"turn"`
	// Kind is caller, agent or tool.
	Kind      string `json:"kind"`
	Text      string `json:"text,omitempty"`
	Tool      string `json:"tool,omitempty"`
	Arguments string `json:"arguments,omitempty"`
	Output    string `json:"output,omitempty"`
	Transfer  bool   `json:"transfer,omitempty"`
	EndCall   bool   `json:"end_call,omitempty"`
	// Target is a REFER's target URI (kind refer).
	Target string `json:"target,omitempty"`
	// After is what the agent said in the response completed just before
	// a refer or hangup.
	After string `json:"after,omitempty"`
	// CutOff is the speech still playing when a refer or hangup happened.
	CutOff string `json:"cut_off,omitempty"`
}

// ScriptedNote is what every scripted report says about itself.
const ScriptedNote = "scripted: replays recorded model responses, keyed by what the model was given, through agent/service and a loopback Realtime API to check the agent's own side (prompt and tools as sent, tool outputs, call flow, schedule state, safety rules); this is NOT a measurement of the model"

// Run plays the cases and returns the report. Cases that cannot run in this
// mode (scripted without a script) are skipped, never passed.
func (r *Runner) Run(ctx context.Context, suiteName string, cases []*suite.Case, threshold float64) *Report {
	o := r.Opts
	if o.Parallel < 1 {
		o.Parallel = 1
	}
	if o.Repeat < 1 {
		o.Repeat = 1
	}
	if o.CaseTimeout <= 0 {
		o.CaseTimeout = 2 * time.Minute
	}
	if o.MaxRounds <= 0 {
		o.MaxRounds = 8
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	var sess Session
	if sp, ok := r.Calls.(interface{ Session() Session }); ok {
		sess = sp.Session()
	} else if r.Agent != nil {
		sess = r.Agent.Session()
	}
	name := r.ModelName
	if name == "" && r.Model != nil {
		name = r.Model.Name()
	}
	rep := &Report{Suite: suiteName, Mode: r.Mode, Model: name, Threshold: threshold, Repeat: o.Repeat, Total: len(cases), StartedAt: now().UTC()}
	if r.Mode == "scripted" {
		rep.Note = ScriptedNote
	} else {
		rep.Note = r.Mode + ": calls through agent/service with its production session object, answered by the model " + rep.Model
	}
	start := time.Now()

	results := make([]*CaseResult, len(cases))
	type job struct{ ci, rep int }
	var jobs []job
	for i, c := range cases {
		results[i] = &CaseResult{Name: c.Name, File: c.Where(), Description: c.Description, Tags: c.Tags, Weight: c.EffectiveWeight(), Critical: c.Critical}
		if rec := c.Recording; rec != nil {
			switch rec.Source {
			case suite.SourceRecorded:
				rep.Recorded++
				results[i].Recording = "recorded from " + rec.Model + " on " + rec.Date
			default:
				rep.HandWritten++
				results[i].Recording = rec.Source
			}
		}
		if r.Mode == "scripted" && !c.Scripted() {
			results[i].Status = StatusSkipped
			results[i].SkipReason = "no scripted model transcript (record one with --mode record)"
			continue
		}
		results[i].Attempts = make([]*Attempt, o.Repeat)
		for k := 0; k < o.Repeat; k++ {
			jobs = append(jobs, job{i, k})
		}
	}

	var mu sync.Mutex
	remaining := make([]int, len(cases))
	done := 0
	for i := range cases {
		if results[i].Status == StatusSkipped {
			done++
			if o.Progress != nil {
				o.Progress(done, len(cases), results[i])
			}
		} else {
			remaining[i] = o.Repeat
		}
	}
	work := make(chan job)
	var wg sync.WaitGroup
	for w := 0; w < o.Parallel && w < len(jobs); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				a := r.attempt(ctx, sess, cases[j.ci], o)
				mu.Lock()
				results[j.ci].Attempts[j.rep] = a
				remaining[j.ci]--
				if remaining[j.ci] == 0 {
					finish(results[j.ci])
					done++
					if o.Progress != nil {
						o.Progress(done, len(cases), results[j.ci])
					}
				}
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()

	rep.Cases = results
	rep.Duration = Duration(time.Since(start))
	score(rep)
	return rep
}

func finish(cr *CaseResult) {
	var d time.Duration
	for _, a := range cr.Attempts {
		d += time.Duration(a.Duration)
		if a.Pass {
			cr.Passes++
		}
	}
	cr.Duration = Duration(d)
	cr.PassAll = cr.Passes == len(cr.Attempts)
	cr.PassAny = cr.Passes > 0
	cr.Flaky = cr.PassAny && !cr.PassAll
	switch {
	case cr.PassAll:
		cr.Status = StatusPassed
	case stale(cr):
		cr.Status = StatusStale
	default:
		cr.Status = StatusFailed
	}
}

func stale(cr *CaseResult) bool {
	for _, a := range cr.Attempts {
		if a != nil && a.Stale != "" {
			return true
		}
	}
	return false
}

// MutationSummary is the outcome of mutation testing (evals/cmd/mutate).
type MutationSummary struct {
	Mutants  int      `json:"mutants"`
	Killed   int      `json:"killed"`
	Survived []string `json:"survived"`
	Ratio    float64  `json:"kill_ratio"`
	Floor    float64  `json:"floor"`
	Sampled  bool     `json:"sampled"`
}

func score(rep *Report) {
	var wAll, wPass, wAny float64
	var lat, turnLat []float64
	for _, c := range rep.Cases {
		switch c.Status {
		case StatusSkipped:
			rep.Skipped++
			continue
		case StatusPassed:
			rep.Passed++
		case StatusStale:
			rep.Stale++
			rep.Failed++
			if c.Critical {
				rep.CriticalFailed++
			}
		default:
			rep.Failed++
			if c.Critical {
				rep.CriticalFailed++
			}
		}
		rep.Ran++
		if c.Flaky {
			rep.Flaky++
		}
		matched := len(c.Attempts) > 0
		for _, a := range c.Attempts {
			matched = matched && a.Matched
		}
		if matched {
			rep.Matched++
		}
		wAll += c.Weight
		if c.PassAll {
			wPass += c.Weight
		}
		if c.PassAny {
			wAny += c.Weight
		}
		for _, a := range c.Attempts {
			rep.Usage.add(a.Usage)
			for _, l := range a.Latencies {
				lat = append(lat, float64(time.Duration(l).Microseconds())/1000)
			}
			for _, l := range a.TurnLatencies {
				turnLat = append(turnLat, float64(time.Duration(l).Microseconds())/1000)
			}
		}
	}
	switch {
	case wAll > 0:
		rep.Score, rep.PassAtK = wPass/wAll, wAny/wAll
	case rep.Ran > 0:
		// Every case that ran weighs 0: score by count.
		rep.Score = float64(rep.Passed) / float64(rep.Ran)
		rep.PassAtK = rep.Score
	}
	rep.Latency = LatencySummary{Responses: len(lat), P50Ms: Percentile(lat, 50), P95Ms: Percentile(lat, 95),
		Turns: len(turnLat), TurnP50Ms: Percentile(turnLat, 50), TurnP95Ms: Percentile(turnLat, 95)}
}

// Percentile is the nearest-rank percentile of xs (0 when empty).
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	return s[rank-1]
}

// attempt plays one conversation and checks it.
func (r *Runner) attempt(ctx context.Context, sess Session, c *suite.Case, o Options) *Attempt {
	start := time.Now()
	a := &Attempt{Transcript: []Event{}}
	defer func() { a.Duration = Duration(time.Since(start)) }()
	ctx, cancel := context.WithTimeout(ctx, o.CaseTimeout)
	defer cancel()
	fail := func(format string, args ...any) *Attempt {
		msg := fmt.Sprintf(format, args...)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			msg += fmt.Sprintf(" (case timeout %s)", o.CaseTimeout)
		}
		a.Error = msg
		a.Pass = false
		return a
	}

	if r.Calls != nil {
		return r.playCall(ctx, sess, c, o, a, fail)
	}
	env, err := r.Agent.Open(ctx, c)
	if err != nil {
		return fail("agent: open environment: %v", err)
	}
	defer func() { _ = env.Close() }()
	conv, err := r.Model.Start(ctx, sess, c)
	if err != nil {
		return fail("model: start conversation: %v", err)
	}
	defer func() { _ = conv.Close() }()

	responses := 0
	ended := false
	for ti, turn := range c.Turns {
		if ended {
			break
		}
		tn := ti + 1
		a.Transcript = append(a.Transcript, Event{Turn: tn, Kind: "caller", Text: turn.Caller})
		in := Input{Caller: turn.Caller}
		turnStart := time.Now()
		for round := 0; ; round++ {
			if round >= o.MaxRounds {
				return fail("turn %d: the model made %d responses with tool calls without answering the caller (limit %d)", tn, round, o.MaxRounds)
			}
			t0 := time.Now()
			resp, err := conv.Respond(ctx, in)
			if err != nil {
				return fail("turn %d: model: %v", tn, err)
			}
			a.Latencies = append(a.Latencies, Duration(time.Since(t0)))
			a.Usage.add(resp.Usage)
			responses++
			if resp.Text != "" {
				a.Transcript = append(a.Transcript, Event{Turn: tn, Kind: "agent", Text: resp.Text})
			}
			if len(resp.Calls) == 0 {
				a.TurnLatencies = append(a.TurnLatencies, Duration(time.Since(turnStart)))
				break
			}
			in = Input{}
			for _, call := range resp.Calls {
				res := env.Execute(ctx, call.ID, call.Name, call.Arguments)
				if res.Err != nil {
					return fail("turn %d: tool %s: %v", tn, call.Name, res.Err)
				}
				a.Transcript = append(a.Transcript, Event{Turn: tn, Kind: "tool", Tool: call.Name, Arguments: call.Arguments, Output: res.Output, Transfer: res.Transfer, EndCall: res.EndCall})
				in.Outputs = append(in.Outputs, ToolOutput{CallID: call.ID, Name: call.Name, Output: res.Output})
				if res.Transfer || res.EndCall {
					ended = true
				}
			}
			if ended {
				// The call left the agent (SIP refer or hangup): no more turns.
				a.TurnLatencies = append(a.TurnLatencies, Duration(time.Since(turnStart)))
				break
			}
		}
	}
	state, err := env.State(ctx)
	if err != nil {
		return fail("agent: read schedule state: %v", err)
	}
	a.Failures = Check(c, a.Transcript, state, sess.CrisisLine, responses)
	if c.Rubric != "" {
		r.grade(ctx, c, o, a)
	}
	a.Pass = a.Error == "" && len(a.Failures) == 0
	return a
}

func (r *Runner) grade(ctx context.Context, c *suite.Case, o Options, a *Attempt) {
	if o.Judge == nil {
		a.Rubric = "not graded (no judge in this mode)"
		return
	}
	ok, reason, err := o.Judge.Grade(ctx, c.Rubric, a.Transcript)
	switch {
	case err != nil:
		a.Error = fmt.Sprintf("judge: %v", err)
	case ok:
		a.Rubric = "pass: " + reason
	default:
		a.Rubric = "fail: " + reason
		a.Failures = append(a.Failures, Failure{Expectation: "rubric: " + c.Rubric, Seen: "judge: " + reason})
	}
}
