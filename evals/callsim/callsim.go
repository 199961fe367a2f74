// Package callsim runs eval calls on the loopback Realtime API of
// agent/realtimetest (OpenAI's side: webhook delivery, accept, sideband
// WebSocket, audio playback, REFER and hangup), with a Model answering
// each response, and waits for each caller turn to settle: the responses
// the turn needs are done and their audio has played.
package callsim

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"gitlab.com/acme/voice-agent/agent/realtimetest"
	"gitlab.com/acme/voice-agent/evals/replay"
)

// Model produces the model's side of each response.
type Model interface {
	Respond(ctx context.Context, req replay.Request) ([]replay.Output, error)
}

// Server is the loopback Realtime API for eval calls.
type Server struct {
	rt *realtimetest.Server
	// AgentWait bounds how long a turn waits for the agent's next step (a
	// response it asks for, a REFER or hangup it owes) before treating the
	// agent as silent. The agent answers in milliseconds; the wait only
	// runs out when it does not.
	AgentWait time.Duration
	// Quiet is how long a live turn must stay quiet to be over.
	Quiet time.Duration
}

// AudioPace is how long one character of speech plays on eval calls: long
// enough that an agent acting on response.done instead of the end of the
// audio cuts speech off every time (not by chance), short enough for fast
// suites.
const AudioPace = time.Millisecond

// New starts a server requiring apiKey.
func New(apiKey string) *Server {
	return &Server{rt: realtimetest.New(apiKey, realtimetest.WithAudioPace(AudioPace)), AgentWait: 5 * time.Second, Quiet: time.Second}
}

// URL is the API base URL ending in /v1 (OPENAI_BASE_URL).
func (s *Server) URL() string { return s.rt.URL() }

// Close stops the server.
func (s *Server) Close() { s.rt.Close() }

// Event is one step of a call as the evals read it.
type Event struct {
	// Kind: caller, say, call, output, refer, hangup, silent, model_error.
	Kind      string `json:"kind"`
	Response  string `json:"response,omitempty"`
	Text      string `json:"text,omitempty"`
	Name      string `json:"name,omitempty"`
	CallID    string `json:"call_id,omitempty"`
	Arguments string `json:"arguments,omitempty"`
	Output    string `json:"output,omitempty"`
	Target    string `json:"target,omitempty"`
	// AfterResponse is, for a refer or hangup, the response whose audio
	// had last stopped playing; Playing the response whose audio was still
	// playing ("" when silent).
	AfterResponse string `json:"after_response,omitempty"`
	Playing       string `json:"playing,omitempty"`
}

// Call is one phone call.
type Call struct {
	s   *Server
	rt  *realtimetest.Call
	tap *tap

	mu     sync.Mutex
	turn   int
	notes  []Event // silent turns, by turn
	noteAt []int
}

// NewCall registers an incoming call answered by m.
func (s *Server) NewCall(m Model) *Call {
	c := &Call{s: s, rt: s.rt.NewCall(), tap: &tap{inner: m, changed: make(chan struct{})}}
	c.rt.SetModel(realtimetest.ModelFunc(c.tap.respond))
	return c
}

// ID is the call id (rtc_...).
func (c *Call) ID() string { return c.rt.ID }

// Deliver sends the signed realtime.call.incoming webhook to the agent.
func (c *Call) Deliver(ctx context.Context, url, secret, from string) (int, error) {
	return realtimetest.DeliverIncoming(ctx, nil, url, secret, c.rt, from)
}

// Session is the session the agent accepted the call with (the accept body).
func (c *Call) Session() json.RawMessage { return c.rt.Session() }

// Connect waits for the accept and the sideband connection.
func (c *Call) Connect(ctx context.Context) error {
	if err := c.rt.WaitAccepted(ctx); err != nil {
		return err
	}
	return c.rt.WaitConnected(ctx)
}

// tap is the model behind the server: it converts the server's request,
// asks the eval's model, and tells the call what happened per turn.
type tap struct {
	inner Model

	mu      sync.Mutex
	byTurn  map[int]int
	err     error
	changed chan struct{}
}

func (t *tap) respond(ctx context.Context, req realtimetest.ResponseRequest) ([]realtimetest.Output, error) {
	r := replay.Request{CallID: req.CallID, Session: req.Session, Instructions: req.Instructions, Tools: req.Tools}
	var sess struct {
		Model string `json:"model"`
	}
	_ = json.Unmarshal(req.Session, &sess)
	r.Model = sess.Model
	turn := 0
	for _, it := range req.Conversation {
		r.Conversation = append(r.Conversation, replay.Item(it))
		if it.Type == "message" && it.Role == "user" {
			turn++
		}
	}
	outs, err := t.inner.Respond(ctx, r)
	t.mu.Lock()
	if t.byTurn == nil {
		t.byTurn = map[int]int{}
	}
	if err != nil && t.err == nil {
		t.err = err
	}
	t.byTurn[turn]++
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
	if err != nil {
		return nil, err
	}
	res := make([]realtimetest.Output, len(outs))
	for i, o := range outs {
		res[i] = realtimetest.Output{Text: o.Text}
		if o.FunctionCall != nil {
			res[i].FunctionCall = &realtimetest.FunctionCall{Name: o.FunctionCall.Name, Arguments: o.FunctionCall.Arguments}
		}
	}
	return res, nil
}

func (t *tap) state(turn int) (int, error, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byTurn[turn], t.err, t.changed
}

// Err is the first error of the model, if any.
func (c *Call) Err() error {
	_, err, _ := c.tap.state(0)
	return err
}

// Over reports whether the call left the agent (REFER or hangup) or ended.
func (c *Call) Over() bool {
	_, refer := c.rt.Action(realtimetest.KindRefer)
	_, hang := c.rt.Action(realtimetest.KindHangup)
	return refer || hang || len(c.rt.Events(realtimetest.KindEnded, "")) > 0
}

// Greet waits for a greeting: responses the agent asks for before the
// caller speaks (want of them; 0 waits for none; < 0 until quiet).
func (c *Call) Greet(ctx context.Context, want int) error {
	if want == 0 {
		return nil
	}
	return c.settle(ctx, 0, want)
}

// CallerSays is one caller turn (server VAD: the server starts a response
// after it). It returns once the turn settled: want responses answered
// (want < 0: until the call stays quiet) and their audio played.
func (c *Call) CallerSays(ctx context.Context, text string, want int) error {
	c.mu.Lock()
	c.turn++
	turn := c.turn
	c.mu.Unlock()
	if err := c.rt.CallerSays(ctx, text); err != nil {
		return fmt.Errorf("callsim: the caller cannot speak: %w", err)
	}
	return c.settle(ctx, turn, want)
}

func (c *Call) settle(ctx context.Context, turn, want int) error {
	for {
		n, err, changed := c.tap.state(turn)
		if err != nil {
			return err
		}
		if want >= 0 && n >= want {
			break
		}
		if c.Over() && (want < 0 || n > 0) {
			break
		}
		wait := c.s.AgentWait
		if want < 0 {
			wait = c.s.Quiet
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
			t.Stop()
			continue
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if want < 0 {
			// Live: the turn is over once nothing is in progress or
			// playing and nothing happened for Quiet.
			if !c.busy() {
				break
			}
			continue
		}
		{
			c.note(turn, Event{Kind: "silent", Text: fmt.Sprintf("the agent asked the model for %d of the %d responses recorded for this turn within %s", n, want, c.s.AgentWait)})
			break
		}
	}
	// The turn's responses are answered: wait until they are done, their
	// audio played (or was cut off) and the agent answered their calls.
	c.Settle(ctx)
	return nil
}

// Settle waits (up to AgentWait) until no response is in progress, no
// audio plays and every function call has the agent's output.
func (c *Call) Settle(ctx context.Context) {
	deadline := time.Now().Add(c.s.AgentWait)
	for ctx.Err() == nil && c.busy() && time.Now().Before(deadline) {
		wctx, cancel := context.WithDeadline(ctx, deadline)
		before := len(c.rt.Timeline())
		_, _ = c.rt.WaitFor(wctx, "a change", func(e realtimetest.Event) bool { return e.Seq >= before })
		cancel()
	}
}

// busy: a response is in progress, audio is playing, or a function call
// still waits for the agent's output.
func (c *Call) busy() bool {
	for _, r := range c.rt.Responses() {
		if r.Status == "in_progress" || r.Audio == "playing" {
			return true
		}
	}
	if len(c.rt.Events(realtimetest.KindSidebandClosed, "")) > 0 || len(c.rt.Events(realtimetest.KindEnded, "")) > 0 {
		return false // nothing more can come from the agent
	}
	pending := map[string]bool{}
	for _, e := range c.rt.Timeline() {
		var ev struct {
			CallID string `json:"call_id"`
			Item   struct {
				Type   string `json:"type"`
				CallID string `json:"call_id"`
			} `json:"item"`
		}
		switch {
		case e.Kind == realtimetest.KindServer && e.Type == "response.function_call_arguments.done":
			_ = json.Unmarshal(e.Raw, &ev)
			pending[ev.CallID] = true
		case e.Kind == realtimetest.KindClient && e.Type == "conversation.item.create":
			_ = json.Unmarshal(e.Raw, &ev)
			if ev.Item.Type == "function_call_output" {
				delete(pending, ev.Item.CallID)
			}
		}
	}
	return len(pending) > 0
}

func (c *Call) note(turn int, ev Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notes = append(c.notes, ev)
	c.noteAt = append(c.noteAt, turn)
}

// WaitAction waits up to AgentWait for a REFER or hangup.
func (c *Call) WaitAction(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.s.AgentWait)
	defer cancel()
	_, _ = c.rt.WaitFor(ctx, "REFER or hangup", func(e realtimetest.Event) bool {
		return e.Kind == realtimetest.KindRefer || e.Kind == realtimetest.KindHangup
	})
}

// CallerHangsUp ends the call from the caller's side.
func (c *Call) CallerHangsUp() { c.rt.CallerHangsUp() }

// Timeline returns the call as the evals read it, from the server's
// timeline: caller turns, spoken text, function calls and the agent's
// outputs, REFERs and hangups with the audio state, silences.
func (c *Call) Timeline() []Event {
	var out []Event
	c.mu.Lock()
	notes, noteAt := append([]Event(nil), c.notes...), append([]int(nil), c.noteAt...)
	c.mu.Unlock()
	turn := 0
	flush := func() {
		for len(noteAt) > 0 && noteAt[0] <= turn {
			out = append(out, notes[0])
			notes, noteAt = notes[1:], noteAt[1:]
		}
	}
	for _, e := range c.rt.Timeline() {
		switch e.Kind {
		case realtimetest.KindCallerSpeech:
			flush()
			turn++
			out = append(out, Event{Kind: "caller", Text: e.Target})
		case realtimetest.KindRefer:
			out = append(out, Event{Kind: "refer", Target: e.Target, AfterResponse: e.Audio.LastStopped, Playing: e.Audio.Playing})
		case realtimetest.KindHangup:
			out = append(out, Event{Kind: "hangup", AfterResponse: e.Audio.LastStopped, Playing: e.Audio.Playing})
		case realtimetest.KindServer:
			var ev struct {
				ResponseID string `json:"response_id"`
				CallID     string `json:"call_id"`
				Name       string `json:"name"`
				Arguments  string `json:"arguments"`
				Transcript string `json:"transcript"`
				Text       string `json:"text"`
				Response   struct {
					ID     string `json:"id"`
					Status string `json:"status"`
				} `json:"response"`
			}
			_ = json.Unmarshal(e.Raw, &ev)
			switch e.Type {
			case "response.output_audio_transcript.done":
				out = append(out, Event{Kind: "say", Response: ev.ResponseID, Text: ev.Transcript})
			case "response.output_text.done":
				out = append(out, Event{Kind: "say", Response: ev.ResponseID, Text: ev.Text})
			case "response.function_call_arguments.done":
				out = append(out, Event{Kind: "call", Response: ev.ResponseID, Name: ev.Name, CallID: ev.CallID, Arguments: ev.Arguments})
			case "response.done":
				if ev.Response.Status == "failed" {
					out = append(out, Event{Kind: "model_error", Response: ev.Response.ID})
				}
			}
		case realtimetest.KindClient:
			if e.Type != "conversation.item.create" {
				continue
			}
			var ev struct {
				Item struct {
					Type   string `json:"type"`
					CallID string `json:"call_id"`
					Output string `json:"output"`
				} `json:"item"`
			}
			_ = json.Unmarshal(e.Raw, &ev)
			if ev.Item.Type == "function_call_output" {
				out = append(out, Event{Kind: "output", CallID: ev.Item.CallID, Output: ev.Item.Output})
			}
		}
	}
	turn = 1 << 30
	flush()
	return out
}

// Spoken joins what a response said.
func Spoken(tl []Event, responseID string) string {
	var parts []string
	for _, e := range tl {
		if e.Kind == "say" && e.Response == responseID {
			parts = append(parts, e.Text)
		}
	}
	return strings.Join(parts, " ")
}
