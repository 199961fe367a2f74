// Package callsim plays the Realtime API's side of a phone call for the
// evals: it drives the loopback Realtime server of agent/realtimetest
// (webhook delivery, accept, sideband WebSocket, REFER and hangup) and
// answers each response with a Model, keeping the conversation as the
// model sees it and a timeline of the call.
//
// It implements the Model contract of /work/wt/_notes/REALTIME_SERVER_API.md
// (the model sees ResponseRequest-like input: the accepted session's
// model, instructions and tools, and the conversation so far) on top of
// the server's raw event primitives. When agent/realtimetest serves
// WithModel itself, this package shrinks to an adapter.
package callsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
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
	// AgentWait bounds how long the simulated API waits for the agent's
	// next client event (a function_call_output, a response.create) before
	// treating the agent as silent. The agent answers in milliseconds; the
	// wait only runs out when the agent does not answer.
	AgentWait time.Duration
	// MaxRounds bounds responses in one caller turn.
	MaxRounds int
}

// New starts a server requiring apiKey.
func New(apiKey string) *Server {
	return &Server{rt: realtimetest.New(apiKey), AgentWait: 2 * time.Second, MaxRounds: 8}
}

// URL is the API base URL ending in /v1 (OPENAI_BASE_URL).
func (s *Server) URL() string { return s.rt.URL }

// Close stops the server.
func (s *Server) Close() { s.rt.Close() }

// Event is one step of a call's timeline.
type Event struct {
	Seq int `json:"seq"`
	// Kind: caller, response (a response started: Response, Trigger),
	// say, call, output, refer, hangup, silent (the agent did not ask for
	// the next response), model_error, agent_event (other client events).
	Kind      string    `json:"kind"`
	At        time.Time `json:"-"`
	Response  string    `json:"response,omitempty"`
	Trigger   string    `json:"trigger,omitempty"`
	Text      string    `json:"text,omitempty"`
	Name      string    `json:"name,omitempty"`
	CallID    string    `json:"call_id,omitempty"`
	Arguments string    `json:"arguments,omitempty"`
	Output    string    `json:"output,omitempty"`
	Target    string    `json:"target,omitempty"`
	// AfterResponse is the last response completed before a refer or
	// hangup.
	AfterResponse string `json:"after_response,omitempty"`
}

// Call is one phone call.
type Call struct {
	s     *Server
	rt    *realtimetest.Call
	model Model

	mu       sync.Mutex
	timeline []Event
	conv     []replay.Item
	session  struct {
		Model        string          `json:"model"`
		Instructions string          `json:"instructions"`
		Tools        json.RawMessage `json:"tools"`
	}
	events   chan realtimetest.ClientEvent
	pending  []realtimetest.ClientEvent
	referred int
	hungUp   bool
	lastResp string
	n        atomic.Int64
}

// NewCall registers an incoming call answered by m.
func (s *Server) NewCall(m Model) *Call {
	return &Call{s: s, rt: s.rt.NewCall(), model: m, events: make(chan realtimetest.ClientEvent, 64)}
}

// ID is the call id (rtc_...).
func (c *Call) ID() string { return c.rt.ID }

// Deliver sends the signed realtime.call.incoming webhook to the agent.
func (c *Call) Deliver(ctx context.Context, url, secret, from string) (int, error) {
	return realtimetest.DeliverIncoming(ctx, nil, url, secret, c.rt, from)
}

// Session is the session the agent accepted the call with (the accept body).
func (c *Call) Session() json.RawMessage { return c.rt.Session() }

// Connect waits for the accept and the sideband connection, then starts
// reading the agent's client events.
func (c *Call) Connect(ctx context.Context) error {
	if err := c.rt.WaitAccepted(ctx); err != nil {
		return err
	}
	if err := json.Unmarshal(c.rt.Session(), &c.session); err != nil {
		return fmt.Errorf("callsim: the accept body is not a session object: %w", err)
	}
	if err := c.rt.WaitConnected(ctx); err != nil {
		return err
	}
	go func() {
		defer close(c.events)
		for {
			ev, err := c.rt.Next(context.Background())
			if err != nil {
				return
			}
			c.events <- ev
		}
	}()
	return nil
}

func (c *Call) add(ev Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev.Seq = len(c.timeline) + 1
	ev.At = time.Now()
	c.timeline = append(c.timeline, ev)
}

// Timeline returns what happened on the call, in order.
func (c *Call) Timeline() []Event {
	c.noteCallControl()
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.timeline...)
}

// Over reports whether the call left the agent (transferred or hung up).
func (c *Call) Over() bool {
	c.noteCallControl()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.referred > 0 || c.hungUp
}

// noteCallControl adds REFERs and the hangup the server saw to the timeline.
func (c *Call) noteCallControl() {
	refs := c.rt.Referred()
	hung := c.rt.HungUp()
	c.mu.Lock()
	var add []Event
	for _, t := range refs[c.referred:] {
		add = append(add, Event{Kind: "refer", Target: t, AfterResponse: c.lastResp})
	}
	c.referred = len(refs)
	if hung && !c.hungUp {
		c.hungUp = true
		add = append(add, Event{Kind: "hangup", AfterResponse: c.lastResp})
	}
	c.mu.Unlock()
	for _, ev := range add {
		c.add(ev)
	}
}

func (c *Call) request() replay.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return replay.Request{CallID: c.rt.ID, Session: c.rt.Session(), Model: c.session.Model, Instructions: c.session.Instructions,
		Tools: c.session.Tools, Conversation: append([]replay.Item(nil), c.conv...)}
}

// CallerSays is one caller turn: the user item is added (as a transcript
// of the caller's speech) and, as server VAD does, a response starts; tool
// rounds follow while the agent sends outputs and asks for responses.
func (c *Call) CallerSays(ctx context.Context, text string) error {
	if c.Over() {
		return errors.New("callsim: the call already left the agent")
	}
	c.mu.Lock()
	c.conv = append(c.conv, replay.Item{Type: "message", Role: "user", Text: text})
	c.mu.Unlock()
	c.add(Event{Kind: "caller", Text: text})
	trigger := "turn_detection"
	for round := 0; ; round++ {
		if round >= c.s.MaxRounds {
			return fmt.Errorf("callsim: %d responses in one caller turn without answering the caller", round)
		}
		calls, err := c.respond(ctx, trigger)
		if err != nil {
			return err
		}
		if len(calls) == 0 {
			return nil
		}
		for _, id := range calls {
			ev, ok := c.waitFor(ctx, func(ev realtimetest.ClientEvent) bool {
				return ev.Type == "conversation.item.create" && ev.Item.Type == "function_call_output" && ev.Item.CallID == id
			})
			if !ok {
				c.add(Event{Kind: "silent", CallID: id, Text: "no function_call_output"})
				return fmt.Errorf("callsim: the agent sent no function_call_output for call %s within %s", id, c.s.AgentWait)
			}
			c.mu.Lock()
			c.conv = append(c.conv, replay.Item{Type: "function_call_output", CallID: id, Output: ev.Item.Output})
			c.mu.Unlock()
			c.add(Event{Kind: "output", CallID: id, Output: ev.Item.Output})
		}
		if c.Over() {
			return nil
		}
		if _, ok := c.waitFor(ctx, func(ev realtimetest.ClientEvent) bool { return ev.Type == "response.create" }); !ok {
			c.add(Event{Kind: "silent", Text: "no response.create after the tool outputs"})
			return nil
		}
		trigger = "response.create"
	}
}

// respond runs one response and returns the call ids of its function calls.
func (c *Call) respond(ctx context.Context, trigger string) ([]string, error) {
	req := c.request()
	n := strconv.FormatInt(c.n.Add(1), 10)
	respID := "resp_" + c.rt.ID[4:] + "_" + n
	c.add(Event{Kind: "response", Response: respID, Trigger: trigger})
	outs, err := c.model.Respond(ctx, req)
	if err != nil {
		c.add(Event{Kind: "model_error", Response: respID, Text: err.Error()})
		_ = c.rt.Send(ctx, map[string]any{"type": "response.done", "event_id": "event_" + respID + "_f", "response": map[string]any{
			"id": respID, "object": "realtime.response", "status": "failed", "output": []any{},
			"status_details": map[string]any{"type": "failed", "error": map[string]any{"type": "server_error", "code": "model_error"}}}})
		return nil, err
	}
	if err := c.rt.Send(ctx, map[string]any{"type": "response.created", "event_id": "event_" + respID + "_a", "response": map[string]any{"id": respID, "object": "realtime.response", "status": "in_progress", "output": []any{}}}); err != nil {
		return nil, c.sendErr(err)
	}
	var items []any
	var calls []string
	for i, o := range outs {
		itemID := fmt.Sprintf("item_%s_%d", respID[5:], i)
		switch {
		case o.FunctionCall != nil:
			callID := fmt.Sprintf("call_%s_%d", respID[5:], i)
			fc := o.FunctionCall
			item := map[string]any{"id": itemID, "object": "realtime.item", "type": "function_call", "status": "completed", "name": fc.Name, "call_id": callID, "arguments": fc.Arguments}
			items = append(items, item)
			calls = append(calls, callID)
			c.mu.Lock()
			c.conv = append(c.conv, replay.Item{Type: "function_call", Name: fc.Name, CallID: callID, Arguments: fc.Arguments})
			c.mu.Unlock()
			c.add(Event{Kind: "call", Response: respID, Name: fc.Name, CallID: callID, Arguments: fc.Arguments})
			if err := c.rt.Send(ctx, map[string]any{"type": "response.function_call_arguments.done", "event_id": "event_" + itemID + "_b", "response_id": respID, "item_id": itemID, "output_index": i, "call_id": callID, "name": fc.Name, "arguments": fc.Arguments}); err != nil {
				return nil, c.sendErr(err)
			}
		default:
			items = append(items, map[string]any{"id": itemID, "object": "realtime.item", "type": "message", "role": "assistant", "status": "completed",
				"content": []any{map[string]any{"type": "output_audio", "transcript": o.Text}}})
			c.mu.Lock()
			c.conv = append(c.conv, replay.Item{Type: "message", Role: "assistant", Text: o.Text})
			c.mu.Unlock()
			c.add(Event{Kind: "say", Response: respID, Text: o.Text})
			if err := c.rt.Send(ctx, map[string]any{"type": "response.output_audio_transcript.done", "event_id": "event_" + itemID + "_e", "response_id": respID, "item_id": itemID, "output_index": i, "content_index": 0, "transcript": o.Text}); err != nil {
				return nil, c.sendErr(err)
			}
		}
	}
	if items == nil {
		items = []any{}
	}
	if err := c.rt.Send(ctx, map[string]any{"type": "response.done", "event_id": "event_" + respID + "_f", "response": map[string]any{"id": respID, "object": "realtime.response", "status": "completed", "output": items}}); err != nil {
		return nil, c.sendErr(err)
	}
	c.mu.Lock()
	c.lastResp = respID
	c.mu.Unlock()
	return calls, nil
}

func (c *Call) sendErr(err error) error {
	c.noteCallControl()
	return fmt.Errorf("callsim: the call's sideband is gone (did the agent hang up?): %w", err)
}

// waitFor returns the first client event matching pred, keeping the others.
func (c *Call) waitFor(ctx context.Context, pred func(realtimetest.ClientEvent) bool) (realtimetest.ClientEvent, bool) {
	for i, ev := range c.pending {
		if pred(ev) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return ev, true
		}
	}
	t := time.NewTimer(c.s.AgentWait)
	defer t.Stop()
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				return realtimetest.ClientEvent{}, false
			}
			if pred(ev) {
				return ev, true
			}
			c.pending = append(c.pending, ev)
			c.add(Event{Kind: "agent_event", Text: ev.Type})
		case <-t.C:
			return realtimetest.ClientEvent{}, false
		case <-ctx.Done():
			return realtimetest.ClientEvent{}, false
		}
	}
}

// WaitEnded waits up to d for the agent to end the call.
func (c *Call) WaitEnded(ctx context.Context, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	err := c.rt.WaitEnded(ctx)
	c.noteCallControl()
	return err == nil
}

// CallerHangsUp ends the call from the caller's side.
func (c *Call) CallerHangsUp() { c.rt.HangupByCaller() }
