// Package live drives the OpenAI Realtime API in text mode for the eval
// runner's live and record modes: one WebSocket session per conversation,
// configured with the agent's own session object (instructions and tools),
// caller turns sent as user text items, tool outputs as
// function_call_output items. Event types and their encoding come from the
// agent's realtime package, so evals speak exactly what production speaks.
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
	"time"

	"github.com/coder/websocket"

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

// dial opens a WebSocket to the model's session URL, retrying 429 and 5xx.
func (c *Client) dial(ctx context.Context, model string) (*websocket.Conn, error) {
	base := c.BaseURL
	if base == "" {
		base = realtime.DefaultBaseURL
	}
	u, err := realtime.ModelURL(base, model)
	if err != nil {
		return nil, err
	}
	retries, _, _, _ := c.defaults()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.APIKey)
	for attempt := 0; ; attempt++ {
		// The handshake is done with coder/websocket directly (the same
		// library as realtime.Dial) to see the refused response's status
		// and Retry-After header.
		ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h, HTTPClient: c.HTTPClient})
		if err == nil {
			ws.SetReadLimit(realtime.MaxEventBytes)
			return ws, nil
		}
		if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
			return nil, fmt.Errorf("connect to the Realtime API: %w", err)
		}
		se := &StatusError{Status: resp.StatusCode, RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
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
	ws, err := c.dial(ctx, model)
	if err != nil {
		return nil, err
	}
	conv := &Conversation{c: c, ws: ws}
	if err := conv.send(ctx, realtime.NewSessionUpdate(sessionObj)); err != nil {
		_ = conv.Close()
		return nil, err
	}
	_, _, _, timeout := c.defaults()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ev, _, err := conv.next(wctx)
		if err != nil {
			_ = conv.Close()
			return nil, fmt.Errorf("configure the session: %w", err)
		}
		switch ev.Type {
		case realtime.EventSessionUpdated:
			return conv, nil
		case realtime.EventError:
			_ = conv.Close()
			return nil, fmt.Errorf("configure the session: %w", ev.Error)
		}
	}
}

// Conversation is one Realtime session.
type Conversation struct {
	c  *Client
	ws *websocket.Conn
}

func (cv *Conversation) send(ctx context.Context, ev any) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode %s: %w", realtime.ClientEventType(ev), err)
	}
	if err := cv.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("send %s: %w", realtime.ClientEventType(ev), err)
	}
	return nil
}

// usageEnvelope reads response.done's usage, which realtime.Response does
// not carry.
type usageEnvelope struct {
	Response struct {
		Usage struct {
			TotalTokens  int `json:"total_tokens"`
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
		} `json:"usage"`
		StatusDetails json.RawMessage `json:"status_details"`
	} `json:"response"`
}

func (cv *Conversation) next(ctx context.Context) (realtime.ServerEvent, []byte, error) {
	_, data, err := cv.ws.Read(ctx)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return realtime.ServerEvent{}, nil, fmt.Errorf("timed out waiting for the model: %w", ctx.Err())
		}
		return realtime.ServerEvent{}, nil, fmt.Errorf("read from the Realtime API: %w", err)
	}
	ev, err := realtime.ParseServerEvent(data)
	if err != nil {
		return realtime.ServerEvent{}, nil, fmt.Errorf("%w: %w", realtime.ErrBadEvent, err)
	}
	return ev, data, nil
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
		if err := cv.send(ctx, realtime.NewUserText(in.Caller)); err != nil {
			return runner.Response{}, err
		}
	}
	for _, o := range in.Outputs {
		if err := cv.send(ctx, realtime.NewFunctionCallOutput(o.CallID, o.Output)); err != nil {
			return runner.Response{}, err
		}
	}
	retries, _, _, timeout := cv.c.defaults()
	for attempt := 0; ; attempt++ {
		resp, err := cv.respondOnce(ctx, timeout)
		var apiErr *realtime.APIError
		if errors.As(err, &apiErr) && apiErr.Code == "rate_limit_exceeded" && attempt < retries {
			if err := cv.c.sleep(ctx, cv.c.delay(attempt, 0)); err != nil {
				return runner.Response{}, err
			}
			continue
		}
		return resp, err
	}
}

func (cv *Conversation) respondOnce(ctx context.Context, timeout time.Duration) (runner.Response, error) {
	if err := cv.send(ctx, realtime.NewResponseCreate()); err != nil {
		return runner.Response{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var deltas strings.Builder
	for {
		ev, data, err := cv.next(rctx)
		if err != nil {
			return runner.Response{}, err
		}
		switch ev.Type {
		case realtime.EventError:
			return runner.Response{}, ev.Error
		case realtime.EventResponseOutputTextDelta:
			deltas.WriteString(ev.Delta)
		case realtime.EventResponseDone:
			if ev.Response == nil {
				return runner.Response{}, errors.New("response.done without a response object")
			}
			var env usageEnvelope
			_ = json.Unmarshal(data, &env) // the event parsed already; usage is optional
			if ev.Response.Status != "completed" {
				return runner.Response{}, fmt.Errorf("response %s %s: %s", ev.Response.ID, ev.Response.Status, string(env.Response.StatusDetails))
			}
			u := env.Response.Usage
			if u.TotalTokens == 0 {
				// Some sessions report only input and output counts
				// (openai/openai-agents-js#538).
				u.TotalTokens = u.InputTokens + u.OutputTokens
			}
			out := runner.Response{Usage: runner.Usage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, TotalTokens: u.TotalTokens}}
			var text []string
			for _, it := range ev.Response.Output {
				if it.Type != "message" {
					continue
				}
				for _, p := range it.Content {
					switch {
					case p.Text != "":
						text = append(text, p.Text)
					case p.Transcript != "":
						text = append(text, p.Transcript)
					}
				}
			}
			out.Text = strings.Join(text, " ")
			if out.Text == "" {
				out.Text = deltas.String()
			}
			for _, fc := range ev.FunctionCalls() {
				out.Calls = append(out.Calls, runner.ToolCall{ID: fc.CallID, Name: fc.Name, Arguments: fc.Arguments})
			}
			return out, nil
		}
	}
}

// Close ends the session.
func (cv *Conversation) Close() error {
	return cv.ws.Close(websocket.StatusNormalClosure, "")
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
