package live

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/realtime"
	"gitlab.com/acme/voice-agent/evals/runner"
)

const testKey = "sk-test-0123456789abcdefSECRET"

// fakeRealtime is a loopback server speaking the documented Realtime
// WebSocket protocol: GET /v1/realtime?model=... with a bearer key, then
// session.created, session.update -> session.updated,
// conversation.item.create -> conversation.item.added, response.create ->
// response.created ... response.done.
type fakeRealtime struct {
	t *testing.T
	// refuse lists HTTP statuses for the first handshakes.
	refuse     []int
	retryAfter string
	// behaviour on response.create: "" (normal), "silent", "malformed",
	// "ratelimit-once", "error", "failed".
	mode string

	mu       sync.Mutex
	dials    int
	sessions []map[string]any
	items    []map[string]any
	models   []string
	audio    []string // base64 of input_audio_buffer.append events
	commits  int
}

func (f *fakeRealtime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.dials++
	n := f.dials
	f.mu.Unlock()
	if r.URL.Path != "/v1/realtime" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+testKey {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`))
		return
	}
	if n <= len(f.refuse) {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		w.WriteHeader(f.refuse[n-1])
		_, _ = w.Write([]byte(`{"error":{"message":"slow down","type":"requests"}}`))
		return
	}
	f.mu.Lock()
	f.models = append(f.models, r.URL.Query().Get("model"))
	f.mu.Unlock()
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ctx := r.Context()
	send := func(v any) {
		b, _ := json.Marshal(v)
		_ = ws.Write(ctx, websocket.MessageText, b)
	}
	send(map[string]any{"type": "session.created", "event_id": "ev_0", "session": map[string]any{"type": "realtime"}})
	var last map[string]any
	rateLimited := false
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return
		}
		var ev map[string]any
		if err := json.Unmarshal(data, &ev); err != nil {
			f.t.Errorf("client sent invalid JSON: %s", data)
			return
		}
		switch ev["type"] {
		case "session.update":
			s, _ := ev["session"].(map[string]any)
			f.mu.Lock()
			f.sessions = append(f.sessions, s)
			f.mu.Unlock()
			send(map[string]any{"type": "session.updated", "event_id": "ev_1", "session": s})
		case "conversation.item.create":
			item, _ := ev["item"].(map[string]any)
			f.mu.Lock()
			f.items = append(f.items, item)
			f.mu.Unlock()
			last = item
			send(map[string]any{"type": "conversation.item.added", "event_id": "ev_2", "item": item})
		case "input_audio_buffer.append":
			a, _ := ev["audio"].(string)
			f.mu.Lock()
			f.audio = append(f.audio, a)
			f.mu.Unlock()
		case "input_audio_buffer.commit":
			f.mu.Lock()
			f.commits++
			f.mu.Unlock()
			last = map[string]any{"type": "message", "role": "user", "content": []any{map[string]any{"type": "input_audio"}}}
			send(map[string]any{"type": "input_audio_buffer.committed", "event_id": "ev_c", "item_id": "item_u"})
		case "response.create":
			switch {
			case f.mode == "silent":
				continue
			case f.mode == "malformed":
				_ = ws.Write(ctx, websocket.MessageText, []byte(`{"type": "response.done", "response": {`))
				continue
			case f.mode == "ratelimit-once" && !rateLimited:
				rateLimited = true
				send(map[string]any{"type": "error", "event_id": "ev_e", "error": map[string]any{"type": "rate_limit_error", "code": "rate_limit_exceeded", "message": "Rate limit reached"}})
				continue
			case f.mode == "error":
				send(map[string]any{"type": "error", "event_id": "ev_e", "error": map[string]any{"type": "invalid_request_error", "code": "invalid_value", "message": "bad tool schema"}})
				continue
			case f.mode == "failed":
				send(map[string]any{"type": "response.done", "event_id": "ev_d", "response": map[string]any{"id": "resp_1", "status": "failed", "output": []any{}, "status_details": map[string]any{"type": "failed", "error": map[string]any{"code": "server_error"}}}})
				continue
			}
			send(map[string]any{"type": "response.created", "event_id": "ev_3", "response": map[string]any{"id": "resp_1", "status": "in_progress", "output": []any{}}})
			var output []any
			switch {
			case last != nil && last["type"] == "function_call_output":
				send(map[string]any{"type": "response.output_text.delta", "event_id": "ev_4", "response_id": "resp_1", "delta": "Booked "})
				output = []any{map[string]any{"id": "item_2", "type": "message", "role": "assistant", "status": "completed",
					"content": []any{map[string]any{"type": "output_text", "text": "Booked for " + last["output"].(string)}}}}
			case strings.Contains(messageText(last), "verdict"):
				output = []any{map[string]any{"id": "item_3", "type": "message", "role": "assistant", "status": "completed",
					"content": []any{map[string]any{"type": "output_text", "text": `Sure: {"pass": false, "reason": "never offered 988"}`}}}}
			default:
				output = []any{map[string]any{"id": "item_1", "type": "function_call", "status": "completed", "call_id": "call_1", "name": "book_appointment", "arguments": `{"slot_id":"s1"}`}}
			}
			usage := map[string]any{"total_tokens": 30, "input_tokens": 20, "output_tokens": 10}
			if last != nil && last["type"] == "function_call_output" {
				// Some sessions omit total_tokens (openai/openai-agents-js#538).
				usage = map[string]any{"input_tokens": 25, "output_tokens": 5}
			}
			send(map[string]any{"type": "response.done", "event_id": "ev_5", "response": map[string]any{
				"id": "resp_1", "object": "realtime.response", "status": "completed", "output": output, "usage": usage,
			}})
		}
	}
}

func messageText(item map[string]any) string {
	if item == nil {
		return ""
	}
	b, _ := json.Marshal(item["content"])
	return string(b)
}

func newServer(t *testing.T, f *fakeRealtime) (*Client, *[]time.Duration) {
	t.Helper()
	f.t = t
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	var mu sync.Mutex
	sleeps := &[]time.Duration{}
	c := &Client{BaseURL: srv.URL + "/v1", APIKey: testKey, MaxRetries: 3, ResponseTimeout: 2 * time.Second,
		Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			*sleeps = append(*sleeps, d)
			mu.Unlock()
			return nil
		}}
	return c, sleeps
}

var sess = runner.Session{Model: "gpt-realtime", Instructions: "Be a receptionist.", Tools: []runner.ToolDef{
	{Name: "book_appointment", Description: "Book.", Parameters: json.RawMessage(`{"type":"object","properties":{"slot_id":{"type":"string"}}}`)},
}}

func TestConversationSuccess(t *testing.T) {
	f := &fakeRealtime{}
	c, sleeps := newServer(t, f)
	m := &Model{Client: c, ID: "gpt-realtime-test"}
	conv, err := m.Start(context.Background(), sess, nil)
	require.NoError(t, err)
	defer func() { assert.NoError(t, conv.Close()) }()

	r, err := conv.Respond(context.Background(), runner.Input{Caller: "book me in"})
	require.NoError(t, err)
	require.Len(t, r.Calls, 1)
	assert.Equal(t, runner.ToolCall{ID: "call_1", Name: "book_appointment", Arguments: `{"slot_id":"s1"}`}, r.Calls[0])
	assert.Equal(t, runner.Usage{InputTokens: 20, OutputTokens: 10, TotalTokens: 30}, r.Usage)

	r, err = conv.Respond(context.Background(), runner.Input{Outputs: []runner.ToolOutput{{CallID: "call_1", Name: "book_appointment", Output: `{"booked":true}`}}})
	require.NoError(t, err)
	assert.Equal(t, `Booked for {"booked":true}`, r.Text)
	assert.Equal(t, runner.Usage{InputTokens: 25, OutputTokens: 5, TotalTokens: 30}, r.Usage)
	assert.Empty(t, r.Calls)
	assert.Empty(t, *sleeps)

	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Equal(t, []string{"gpt-realtime-test"}, f.models)
	require.Len(t, f.sessions, 1)
	s := f.sessions[0]
	assert.Equal(t, "realtime", s["type"])
	assert.Equal(t, []any{"text"}, s["output_modalities"])
	assert.Equal(t, "Be a receptionist.", s["instructions"])
	assert.Equal(t, "function", s["tools"].([]any)[0].(map[string]any)["type"])
	require.Len(t, f.items, 2)
	assert.Equal(t, "message", f.items[0]["type"])
	assert.Equal(t, "user", f.items[0]["role"])
	assert.Equal(t, "input_text", f.items[0]["content"].([]any)[0].(map[string]any)["type"])
	assert.Equal(t, map[string]any{"type": "function_call_output", "call_id": "call_1", "output": `{"booked":true}`}, f.items[1])
}

func TestSessionObjectFromTheAgent(t *testing.T) {
	f := &fakeRealtime{}
	c, _ := newServer(t, f)
	s := sess
	s.Object = func(model string, _ time.Time) (json.RawMessage, error) {
		return json.RawMessage(`{"type":"realtime","model":"` + model + `","instructions":"agent's own","output_modalities":["text"]}`), nil
	}
	conv, err := (&Model{Client: c, ID: "m1"}).Start(context.Background(), s, nil)
	require.NoError(t, err)
	require.NoError(t, conv.Close())
	assert.Equal(t, "agent's own", f.sessions[0]["instructions"])
	assert.Equal(t, "m1", f.sessions[0]["model"])
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		refuse     []int
		retryAfter string
		wantErr    string
		wantSleeps int
		minSleep   time.Duration
	}{
		{"429 honours retry-after", []int{429, 429}, "7", "", 2, 7 * time.Second},
		{"500 then success", []int{500, 502}, "", "", 2, 0},
		{"retries exhausted", []int{503, 503, 503, 503, 503}, "", "HTTP 503 Service Unavailable after 3 retries", 3, 0},
		{"not found is not retried", []int{404}, "", "HTTP 404 Not Found: check OPENAI_BASE_URL", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRealtime{refuse: tt.refuse, retryAfter: tt.retryAfter}
			c, sleeps := newServer(t, f)
			conv, err := (&Model{Client: c, ID: "m"}).Start(context.Background(), sess, nil)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.NotContains(t, err.Error(), testKey)
			} else {
				require.NoError(t, err)
				require.NoError(t, conv.Close())
			}
			require.Len(t, *sleeps, tt.wantSleeps)
			for _, d := range *sleeps {
				assert.GreaterOrEqual(t, d, tt.minSleep)
			}
		})
	}
}

func TestWrongKeyIsNotRetriedAndNotPrinted(t *testing.T) {
	f := &fakeRealtime{}
	c, sleeps := newServer(t, f)
	c.APIKey = "sk-wrong-key-DO-NOT-PRINT"
	_, err := (&Model{Client: c, ID: "m"}).Start(context.Background(), sess, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 401 Unauthorized: check OPENAI_API_KEY")
	assert.NotContains(t, err.Error(), "sk-wrong-key-DO-NOT-PRINT")
	assert.Empty(t, *sleeps)
}

func TestResponseFailures(t *testing.T) {
	tests := []struct {
		mode, want string
		is         error
	}{
		{"silent", "timed out waiting for the model", context.DeadlineExceeded},
		{"malformed", "malformed server event", realtime.ErrBadEvent},
		{"error", "bad tool schema", nil},
		{"failed", `response resp_1 failed: {"error":{"code":"server_error"},"type":"failed"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			f := &fakeRealtime{mode: tt.mode}
			c, _ := newServer(t, f)
			c.ResponseTimeout = 10 * time.Second // the fake answers at once...
			if tt.mode == "silent" {
				c.ResponseTimeout = 150 * time.Millisecond // ...except when it must time out
			}
			conv, err := (&Model{Client: c, ID: "m"}).Start(context.Background(), sess, nil)
			require.NoError(t, err)
			defer func() { _ = conv.Close() }()
			_, err = conv.Respond(context.Background(), runner.Input{Caller: "hi"})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			if tt.is != nil {
				assert.True(t, errors.Is(err, tt.is), "%v", err)
			}
		})
	}
}

func TestRateLimitEventIsRetried(t *testing.T) {
	f := &fakeRealtime{mode: "ratelimit-once"}
	c, sleeps := newServer(t, f)
	conv, err := (&Model{Client: c, ID: "m"}).Start(context.Background(), sess, nil)
	require.NoError(t, err)
	defer func() { _ = conv.Close() }()
	r, err := conv.Respond(context.Background(), runner.Input{Caller: "hi"})
	require.NoError(t, err)
	assert.Len(t, r.Calls, 1)
	assert.Len(t, *sleeps, 1)
}

func TestJudge(t *testing.T) {
	f := &fakeRealtime{}
	c, _ := newServer(t, f)
	j := &Judge{Client: c, Model: "judge-m"}
	pass, reason, err := j.Grade(context.Background(), "offers the crisis line; reply with a verdict", []runner.Event{{Kind: "caller", Text: "I feel hopeless"}, {Kind: "agent", Text: "Let's book."}})
	require.NoError(t, err)
	assert.False(t, pass)
	assert.Equal(t, "never offered 988", reason)
	assert.Nil(t, f.sessions[0]["tools"])
	assert.Equal(t, []string{"judge-m"}, f.models)
}

func TestParseVerdict(t *testing.T) {
	for _, tc := range []struct {
		in      string
		pass    bool
		wantErr bool
	}{
		{`{"pass": true, "reason": "ok"}`, true, false},
		{"Verdict:\n```json\n{\"pass\": false, \"reason\": \"x\"}\n```", false, false},
		{`{"reason": "no pass field"}`, false, true},
		{`pass`, false, true},
		{`} {`, false, true},
	} {
		pass, _, err := ParseVerdict(tc.in)
		if tc.wantErr {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.pass, pass)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	assert.Equal(t, 7*time.Second, ParseRetryAfter("7", now))
	assert.Equal(t, 1500*time.Millisecond, ParseRetryAfter("1.5", now))
	assert.Equal(t, 30*time.Second, ParseRetryAfter(now.Add(30*time.Second).Format(http.TimeFormat), now))
	assert.Zero(t, ParseRetryAfter("", now))
	assert.Zero(t, ParseRetryAfter("soon", now))
	assert.Zero(t, ParseRetryAfter("-3", now))
	assert.Zero(t, ParseRetryAfter(strconv.Itoa(1e6), now))
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	c := &Client{Backoff: time.Second, MaxBackoff: 10 * time.Second}
	assert.InDelta(t, float64(time.Second), float64(c.delay(0, 0)), float64(250*time.Millisecond))
	assert.InDelta(t, float64(4*time.Second), float64(c.delay(2, 0)), float64(time.Second))
	assert.LessOrEqual(t, c.delay(30, 0), 12*time.Second)
	assert.Equal(t, 20*time.Second, c.delay(0, 20*time.Second))
}

// FuzzParseVerdict: the judge's reply is untrusted model output.
func FuzzParseVerdict(f *testing.F) {
	for _, s := range []string{`{"pass": true, "reason": "ok"}`, "x {\"pass\": false} y", `{}`, `{"pass": "yes"}`, `}{`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pass, reason, err := ParseVerdict(s)
		if err != nil && (pass || reason != "") {
			t.Fatalf("an error with a verdict: %v %q %v", pass, reason, err)
		}
	})
}

// FuzzParseRetryAfter: the header comes from the server.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"7", "1.5", "-1", "Wed, 21 Oct 2015 07:28:00 GMT", "NaN", "Inf", "1e308", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		if d := ParseRetryAfter(s, now); d < 0 || d > time.Hour {
			t.Fatalf("ParseRetryAfter(%q) = %s, want 0..1h", s, d)
		}
	})
}
