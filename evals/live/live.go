// Package live drives the OpenAI Realtime API in text mode for the eval
// runner's live and record modes: one WebSocket session per conversation,
// configured with the agent's own session object (instructions and tools),
// caller turns sent as user text items, tool outputs as
// function_call_output items. Events are openai-go's own types (client
// event params, server event structs), sent and read over the agent's
// realtime.Conn, so evals speak exactly what production speaks.
//
// Connecting retries with exponential backoff on HTTP 429 (honouring
// Retry-After) and 5xx; a rate_limit_exceeded error event during a session
// is retried the same way. Every response has a timeout. Token usage is
// read from response.done.
package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/param"
	oarealtime "github.com/openai/openai-go/v3/realtime"

	"gitlab.com/acme/voice-agent/agent/realtime"
	"gitlab.com/acme/voice-agent/evals/runner"
	"gitlab.com/acme/voice-agent/evals/suite"
)

// Client connects to the Realtime API.
type Client struct {
	// BaseURL is the API base URL (default https://api.openai.com/v1,
	// OPENAI_BASE_URL in the runner).
	BaseURL string
	// APIKey authenticates; it is sent only in the Authorization header.
	APIKey string
	// HTTPClient is used for the WebSocket handshake (nil: default).
	HTTPClient *http.Client
	// MaxRetries bounds retries of a 429/5xx handshake or a rate-limited
	// response (default 5).
	MaxRetries int
	// Backoff is the first retry delay, doubled each retry up to MaxBackoff
	// (defaults 1s and 30s), with jitter.
	Backoff, MaxBackoff time.Duration
	// ResponseTimeout bounds one model response (default 60s).
	ResponseTimeout time.Duration
	// Sleep waits between retries (tests replace it).
	Sleep func(ctx context.Context, d time.Duration) error
}

func (c *Client) defaults() (retries int, backoff, maxBackoff, timeout time.Duration) {
	retries, backoff, maxBackoff, timeout = c.MaxRetries, c.Backoff, c.MaxBackoff, c.ResponseTimeout
	if retries <= 0 {
		retries = 5
	}
	if backoff <= 0 {
		backoff = time.Second
	}
	if maxBackoff <= 0 {
		maxBackoff = 30 * time.Second
	}
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	return
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// delay is the backoff before retry n (0-based): base*2^n with ±20% jitter,
// capped; a server's Retry-After wins when it is longer.
func (c *Client) delay(n int, retryAfter time.Duration) time.Duration {
	_, base, maxB, _ := c.defaults()
	d := base << min(n, 20)
	if d > maxB || d <= 0 {
		d = maxB
	}
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	if retryAfter > d {
		d = retryAfter
	}
	return d
}

// StatusError is a refused handshake.
type StatusError struct {
	Status     int
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
}

func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 && s < 3600 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		if d := t.Sub(now); d < time.Hour {
			return d
		}
	}
	return 0
}

// dial opens a WebSocket to the model's session URL (realtime.DialWith,
// the agent's own connection), retrying 429 and 5xx.
func (c *Client) dial(ctx context.Context, model string) (*realtime.Conn, error) {
	base := c.BaseURL
	if base == "" {
		base = realtime.DefaultBaseURL
	}
	u, err := realtime.ModelURL(base, model)
	if err != nil {
		return nil, err
	}
	retries, _, _, _ := c.defaults()
	for attempt := 0; ; attempt++ {
		conn, err := realtime.DialWith(ctx, u, c.APIKey, c.HTTPClient)
		if err == nil {
			return conn, nil
		}
		var de *realtime.DialError
		if !errors.As(err, &de) {
			return nil, fmt.Errorf("connect to the Realtime API: %w", err)
		}
		se := &StatusError{Status: de.StatusCode, RetryAfter: ParseRetryAfter(de.RetryAfter, time.Now())}
		if !retryable(se.Status) || attempt >= retries {
			hint := ""
			switch se.Status {
			case http.StatusUnauthorized, http.StatusForbidden:
				hint = ": check OPENAI_API_KEY"
			case http.StatusNotFound:
				hint = fmt.Sprintf(": check OPENAI_BASE_URL and --model %s", model)
			}
			if retryable(se.Status) {
				hint = fmt.Sprintf(" after %d retries", attempt)
			}
			return nil, fmt.Errorf("connect to the Realtime API: %w%s", se, hint)
		}
		if err := c.sleep(ctx, c.delay(attempt, se.RetryAfter)); err != nil {
			return nil, fmt.Errorf("connect to the Realtime API: waiting to retry %s: %w", se, err)
		}
	}
}

// Model is a Realtime model for the runner.
type Model struct {
	Client *Client
	ID     string
}

// Name is the model id.
func (m *Model) Name() string { return m.ID }

// Start opens a session configured with the agent's session object in text
// mode and waits until the API confirms it.
func (m *Model) Start(ctx context.Context, s runner.Session, c *suite.Case) (runner.Conversation, error) {
	var obj any
	if s.Object != nil {
		now := time.Now()
		if c != nil && c.Now != nil {
			now = *c.Now
		}
		raw, err := s.Object(m.ID, now)
		if err != nil {
			return nil, fmt.Errorf("agent session object: %w", err)
		}
		obj = raw
	} else {
		obj = textSession(m.ID, s.Instructions, s.Tools)
	}
	return m.Client.open(ctx, m.ID, obj)
}

// textSession builds a text-mode session object from parts (used by the
// judge and when the agent gives no session object).
func textSession(model, instructions string, tools []runner.ToolDef) map[string]any {
	o := map[string]any{"type": "realtime", "model": model, "instructions": instructions, "output_modalities": []string{"text"}}
	if len(tools) > 0 {
		var ts []map[string]any
		for _, t := range tools {
			ts = append(ts, map[string]any{"type": "function", "name": t.Name, "description": t.Description, "parameters": t.Parameters})
		}
		o["tools"] = ts
		o["tool_choice"] = "auto"
	}
	return o
}

func (c *Client) open(ctx context.Context, model string, sessionObj any) (*Conversation, error) {
	session, err := json.Marshal(sessionObj)
	if err != nil {
		return nil, fmt.Errorf("encode the session object: %w", err)
	}
	conn, err := c.dial(ctx, model)
	if err != nil {
		return nil, err
	}
	conv := &Conversation{c: c, conn: conn}
	// The session object is the agent's own, sent as it is inside the
	// SDK's session.update envelope.
	update := &oarealtime.SessionUpdateEventParam{
		EventID: openai.String(conv.eventID()),
		Session: oarealtime.SessionUpdateEventSessionUnionParam{
			OfRealtime: ptr(param.Override[oarealtime.RealtimeSessionCreateRequestParam](json.RawMessage(session))),
		},
	}
	if err := conv.send(ctx, oarealtime.RealtimeClientEventUnionParam{OfSessionUpdate: update}); err != nil {
		_ = conv.Close()
		return nil, err
	}
	_, _, _, timeout := c.defaults()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ev, err := conv.next(wctx)
		if err != nil {
			_ = conv.Close()
			return nil, fmt.Errorf("configure the session: %w", err)
		}
		switch ev.Type {
		case realtime.EventSessionUpdated:
			return conv, nil
		case realtime.EventError:
			_ = conv.Close()
			return nil, fmt.Errorf("configure the session: %w", eventError(ev))
		}
	}
}

func ptr[T any](v T) *T { return &v }

// Conversation is one Realtime session.
type Conversation struct {
	c    *Client
	conn *realtime.Conn
	seq  atomic.Int64
}

// eventID names the next client event (an error event names the one it
// refuses).
func (cv *Conversation) eventID() string {
	return fmt.Sprintf("evt_eval_%d", cv.seq.Add(1))
}

func (cv *Conversation) send(ctx context.Context, ev oarealtime.RealtimeClientEventUnionParam) error {
	return cv.conn.Send(ctx, ev)
}

// next reads the next server event. A malformed event is an error: the
// eval cannot tell what the model did.
func (cv *Conversation) next(ctx context.Context) (realtime.RawEvent, error) {
	ev, err := cv.conn.NextEvent(ctx)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return realtime.RawEvent{}, fmt.Errorf("timed out waiting for the model: %w", ctx.Err())
		}
		return realtime.RawEvent{}, fmt.Errorf("read from the Realtime API: %w", err)
	}
	return ev, nil
}

// APIError is an error event of the Realtime API.
type APIError struct{ oarealtime.RealtimeError }

func (e *APIError) Error() string {
	return fmt.Sprintf("realtime: %s (%s): %s", e.Type, e.Code, e.Message)
}

// eventError decodes an error event into an *APIError (or says why it
// could not).
func eventError(ev realtime.RawEvent) error {
	var e oarealtime.RealtimeErrorEvent
	if err := ev.Decode(&e); err != nil {
		return err
	}
	if e.Error.Message == "" && e.Error.Type == "" {
		return fmt.Errorf(`%w: error event has no "error" object`, realtime.ErrBadEvent)
	}
	return &APIError{e.Error}
}

// Respond sends the caller's text or the tool outputs, asks for a response
// and collects it until response.done.
func (cv *Conversation) Respond(ctx context.Context, in runner.Input) (runner.Response, error) {
	switch {
	case in.Audio != nil:
		if err := cv.sendAudio(ctx, in.Audio); err != nil {
			return runner.Response{}, err
		}
	case in.Caller != "":
		if err := cv.send(ctx, userTextEvent(cv.eventID(), in.Caller)); err != nil {
			return runner.Response{}, err
		}
	}
	for _, o := range in.Outputs {
		if err := cv.send(ctx, realtime.FunctionCallOutputEvent(cv.eventID(), o.CallID, o.Output)); err != nil {
			return runner.Response{}, err
		}
	}
	retries, _, _, timeout := cv.c.defaults()
	for attempt := 0; ; attempt++ {
		resp, err := cv.respondOnce(ctx, timeout)
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Code == "rate_limit_exceeded" && attempt < retries {
			if err := cv.c.sleep(ctx, cv.c.delay(attempt, 0)); err != nil {
				return runner.Response{}, err
			}
			continue
		}
		return resp, err
	}
}

// userTextEvent is the conversation.item.create of a caller's turn in
// text.
func userTextEvent(eventID, text string) oarealtime.RealtimeClientEventUnionParam {
	return oarealtime.RealtimeClientEventUnionParam{OfConversationItemCreate: &oarealtime.ConversationItemCreateEventParam{
		EventID: openai.String(eventID),
		Item: oarealtime.ConversationItemUnionParam{OfRealtimeUserMessageItem: &oarealtime.RealtimeConversationItemUserMessageParam{
			Content: []oarealtime.RealtimeConversationItemUserMessageContentParam{{Type: "input_text", Text: openai.String(text)}},
		}},
	}}
}

func (cv *Conversation) respondOnce(ctx context.Context, timeout time.Duration) (runner.Response, error) {
	if err := cv.send(ctx, realtime.ResponseCreateEvent(cv.eventID(), "")); err != nil {
		return runner.Response{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var deltas strings.Builder
	for {
		ev, err := cv.next(rctx)
		if err != nil {
			return runner.Response{}, err
		}
		switch ev.Type {
		case realtime.EventError:
			return runner.Response{}, eventError(ev)
		case realtime.EventResponseOutputTextDelta:
			var d oarealtime.ResponseTextDeltaEvent
			if err := ev.Decode(&d); err != nil {
				return runner.Response{}, err
			}
			deltas.WriteString(d.Delta)
		case realtime.EventResponseDone:
			var done oarealtime.ResponseDoneEvent
			if err := ev.Decode(&done); err != nil {
				return runner.Response{}, err
			}
			if !done.JSON.Response.Valid() {
				return runner.Response{}, errors.New("response.done without a response object")
			}
			return responseOf(done.Response, deltas.String())
		}
	}
}

// responseOf reads a finished response: its text (or, if it has no message
// item, the streamed deltas), its function calls and its token usage.
func responseOf(r oarealtime.RealtimeResponse, deltas string) (runner.Response, error) {
	if r.Status != oarealtime.RealtimeResponseStatusCompleted {
		return runner.Response{}, fmt.Errorf("response %s %s: %s", r.ID, r.Status, r.JSON.StatusDetails.Raw())
	}
	u := r.Usage
	if u.TotalTokens == 0 {
		// Some sessions report only input and output counts
		// (openai/openai-agents-js#538).
		u.TotalTokens = u.InputTokens + u.OutputTokens
	}
	out := runner.Response{Usage: runner.Usage{InputTokens: int(u.InputTokens), OutputTokens: int(u.OutputTokens), TotalTokens: int(u.TotalTokens)}}
	var text []string
	for _, it := range r.Output {
		switch v := it.AsAny().(type) {
		case oarealtime.RealtimeConversationItemAssistantMessage:
			for _, p := range v.Content {
				switch {
				case p.Text != "":
					text = append(text, p.Text)
				case p.Transcript != "":
					text = append(text, p.Transcript)
				}
			}
		case oarealtime.RealtimeConversationItemFunctionCall:
			if v.CallID != "" {
				out.Calls = append(out.Calls, runner.ToolCall{ID: v.CallID, Name: v.Name, Arguments: v.Arguments})
			}
		}
	}
	out.Text = strings.Join(text, " ")
	if out.Text == "" {
		out.Text = deltas
	}
	return out, nil
}

// Close ends the session.
func (cv *Conversation) Close() error {
	return cv.conn.Close()
}

// Judge grades transcripts against rubrics with a model in text mode.
type Judge struct {
	Client *Client
	Model  string
}

const judgeInstructions = `You grade a phone conversation between a clinic's AI receptionist ("agent") and a caller against a rubric. Reply with only a JSON object: {"pass": true|false, "reason": "<one sentence>"}.`

// Grade asks the judge model whether the transcript meets the rubric.
func (j *Judge) Grade(ctx context.Context, rubric string, tr []runner.Event) (bool, string, error) {
	conv, err := j.Client.open(ctx, j.Model, textSession(j.Model, judgeInstructions, nil))
	if err != nil {
		return false, "", fmt.Errorf("judge: %w", err)
	}
	defer func() { _ = conv.Close() }()
	var b strings.Builder
	fmt.Fprintf(&b, "Rubric: %s\n\nTranscript:\n", rubric)
	for _, ev := range tr {
		switch ev.Kind {
		case "caller", "agent":
			fmt.Fprintf(&b, "%s: %s\n", ev.Kind, ev.Text)
		case "tool":
			fmt.Fprintf(&b, "(agent called %s(%s) -> %s)\n", ev.Tool, ev.Arguments, ev.Output)
		}
	}
	resp, err := conv.Respond(ctx, runner.Input{Caller: b.String()})
	if err != nil {
		return false, "", fmt.Errorf("judge: %w", err)
	}
	return ParseVerdict(resp.Text)
}

// ParseVerdict reads the judge's {"pass": bool, "reason": string} reply,
// tolerating text around the object.
func ParseVerdict(s string) (bool, string, error) {
	i, j := strings.IndexByte(s, '{'), strings.LastIndexByte(s, '}')
	if i < 0 || j < i {
		return false, "", fmt.Errorf("judge: reply is not a JSON verdict: %q", s)
	}
	var v struct {
		Pass   *bool  `json:"pass"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(s[i:j+1]), &v); err != nil || v.Pass == nil {
		return false, "", fmt.Errorf("judge: reply is not a JSON verdict: %q", s)
	}
	return *v.Pass, v.Reason, nil
}
