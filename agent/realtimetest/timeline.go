package realtimetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kinds of timeline events.
const (
	KindAccept         = "accept"          // POST .../accept succeeded
	KindReject         = "reject"          // POST .../reject (Target: the SIP status)
	KindServer         = "server"          // a server event sent on the sideband
	KindClient         = "client"          // a client event received on the sideband
	KindRefer          = "refer"           // POST .../refer (Target: the URI)
	KindReferFailed    = "refer_failed"    // a REFER refused because of FailRefers (Target: the URI)
	KindHangup         = "hangup"          // POST .../hangup by the agent
	KindCallerSpeech   = "caller_speech"   // CallerSays (Target: the words)
	KindCallerHangup   = "caller_hangup"   // CallerHangsUp
	KindSidebandClosed = "sideband_closed" // the agent closed the sideband; the call goes on
	KindEnded          = "ended"           // the call is over (the API closed the sideband)
)

// Event is one entry of a call's timeline.
type Event struct {
	Seq  int
	At   time.Time
	Kind string
	// Type is the event type of server and client events.
	Type string
	// ResponseID is the response a server event belongs to, if any.
	ResponseID string
	// Target is the REFER URI, the SIP status of a reject, the caller's
	// words, or why the call ended.
	Target string
	// Raw is the JSON of server and client events.
	Raw json.RawMessage
	// Audio is the state of the output audio at that moment.
	Audio AudioState
}

// AudioState is what the caller hears at a moment of the call.
type AudioState struct {
	// Playing is the response whose audio is playing ("" when silent).
	Playing string
	// LastStopped is the response whose audio last finished playing
	// (output_audio_buffer.stopped).
	LastStopped string
	// LastCleared is the response whose audio was last cut off
	// (output_audio_buffer.cleared).
	LastCleared string
}

// record appends e to the timeline (c.mu held).
func (c *Call) record(e Event) {
	e.Seq = len(c.timeline)
	e.At = time.Now()
	if len(c.buffer) > 0 {
		e.Audio.Playing = c.buffer[0].resp.id
	}
	e.Audio.LastStopped, e.Audio.LastCleared = c.lastStopped, c.lastCleared
	c.timeline = append(c.timeline, e)
	close(c.changed)
	c.changed = make(chan struct{})
}

// Timeline returns everything that happened on the call, in order.
func (c *Call) Timeline() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.timeline...)
}

// ErrEnded is returned by WaitFor when the call ended without the event.
var ErrEnded = errors.New("realtimetest: the call ended")

// WaitFor waits for the first timeline event (from the start of the call)
// for which match is true.
func (c *Call) WaitFor(ctx context.Context, what string, match func(Event) bool) (Event, error) {
	return c.WaitFrom(ctx, 0, what, match)
}

// Len returns the number of timeline events so far (a position for
// WaitFrom).
func (c *Call) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timeline)
}

// WaitFrom waits for the first timeline event at position from or later
// for which match is true.
func (c *Call) WaitFrom(ctx context.Context, from int, what string, match func(Event) bool) (Event, error) {
	seen := from
	for {
		c.mu.Lock()
		events := c.timeline[seen:len(c.timeline):len(c.timeline)]
		changed := c.changed
		c.mu.Unlock()
		// match runs without the lock: it may ask the call for more.
		for _, e := range events {
			seen++
			if match(e) {
				return e, nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Event{}, fmt.Errorf("realtimetest: waiting for %s: %w", what, ctx.Err())
		case <-c.ended:
			c.mu.Lock()
			n := len(c.timeline)
			c.mu.Unlock()
			if seen == n {
				return Event{}, fmt.Errorf("realtimetest: waiting for %s: %w", what, ErrEnded)
			}
		}
	}
}

// WaitServerEvent waits for the n-th (1-based) server event of type typ.
func (c *Call) WaitServerEvent(ctx context.Context, typ string, n int) (Event, error) {
	count := 0
	return c.WaitFor(ctx, fmt.Sprintf("server event %s #%d", typ, n), func(e Event) bool {
		if e.Kind == KindServer && e.Type == typ {
			count++
		}
		return e.Kind == KindServer && e.Type == typ && count == n
	})
}

// WaitClientEvent waits for the n-th (1-based) client event of type typ.
func (c *Call) WaitClientEvent(ctx context.Context, typ string, n int) (Event, error) {
	count := 0
	return c.WaitFor(ctx, fmt.Sprintf("client event %s #%d", typ, n), func(e Event) bool {
		if e.Kind == KindClient && e.Type == typ {
			count++
		}
		return e.Kind == KindClient && e.Type == typ && count == n
	})
}

// Events returns the timeline events of kind (and of type typ, if not
// empty).
func (c *Call) Events(kind, typ string) []Event {
	var out []Event
	for _, e := range c.Timeline() {
		if e.Kind == kind && (typ == "" || e.Type == typ) {
			out = append(out, e)
		}
	}
	return out
}

// Action returns the first REFER, failed REFER or hangup (kind KindRefer,
// KindReferFailed or KindHangup)
// with the audio state at that moment.
func (c *Call) Action(kind string) (Event, bool) {
	es := c.Events(kind, "")
	if len(es) == 0 {
		return Event{}, false
	}
	return es[0], true
}

// AfterAudioOf reports whether the action e happened once response
// responseID's audio had stopped playing (output_audio_buffer.stopped of
// that response) and while no audio was playing. It returns an error
// saying what was wrong otherwise.
func AfterAudioOf(e Event, responseID string) error {
	switch {
	case e.Audio.Playing != "":
		return fmt.Errorf("%s at seq %d while %s's audio was playing", e.Kind, e.Seq, e.Audio.Playing)
	case e.Audio.LastStopped != responseID:
		return fmt.Errorf("%s at seq %d: the audio that last stopped was %q, not %s's", e.Kind, e.Seq, e.Audio.LastStopped, responseID)
	}
	return nil
}

// Response is one response of the call as the server ran it.
type Response struct {
	ID      string
	Trigger string // TriggerResponseCreate or TriggerTurnDetection
	Status  string // in_progress, completed, cancelled, failed
	Outputs []Output
	// Audio is "" (nothing spoken), "playing", "stopped" (played to the
	// end), "cleared" (the caller interrupted it) or "cut" (the call ended
	// while it played).
	Audio string
}

// Responses returns the call's responses, in order.
func (c *Call) Responses() []Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Response, 0, len(c.responses))
	for _, r := range c.responses {
		out = append(out, Response{ID: r.id, Trigger: r.trigger, Status: r.status, Outputs: append([]Output(nil), r.outputs...), Audio: r.audio})
	}
	return out
}

// ResponseSaying returns the first response with a spoken output
// containing text.
func (c *Call) ResponseSaying(text string) (Response, bool) {
	for _, r := range c.Responses() {
		for _, o := range r.Outputs {
			if o.FunctionCall == nil && strings.Contains(o.Text, text) {
				return r, true
			}
		}
	}
	return Response{}, false
}

// Turn is one turn of the call's transcript.
type Turn struct {
	Role       string // "assistant" or "caller"
	Text       string
	ResponseID string // assistant turns
	// Interrupted is true when the caller cut the assistant off.
	Interrupted bool
}

// Transcript returns the spoken turns, in order.
func (c *Call) Transcript() []Turn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Turn(nil), c.transcript...)
}

// Session returns the accept body's session (nil if not accepted): the
// exact tools and instructions the agent declared.
func (c *Call) Session() json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acceptBody
}

// EffectiveSession returns the session as updated by session.update.
func (c *Call) EffectiveSession() json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil {
		return nil
	}
	b, _ := json.Marshal(c.session)
	return b
}

// Rejected returns the SIP status the call was rejected with (0 if not).
func (c *Call) Rejected() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rejected
}

// Referred returns the REFER targets.
func (c *Call) Referred() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.referred...)
}

// HungUp reports whether the agent hung up.
func (c *Call) HungUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hungUp
}

func wait(ctx context.Context, ch <-chan struct{}, what string) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("realtimetest: waiting for %s: %w", what, ctx.Err())
	}
}

// WaitAccepted waits until the call is accepted.
func (c *Call) WaitAccepted(ctx context.Context) error { return wait(ctx, c.accepted, "accept") }

// WaitConnected waits until the sideband WebSocket is open.
func (c *Call) WaitConnected(ctx context.Context) error {
	return wait(ctx, c.connected, "sideband connection")
}

// WaitEnded waits until the call is over (sideband closed).
func (c *Call) WaitEnded(ctx context.Context) error { return wait(ctx, c.ended, "end of call") }
