// Package realtimetest is a loopback stand-in for the paid OpenAI Realtime
// API, speaking its documented wire protocol: the calls REST endpoints
// (POST /v1/realtime/calls/{call_id}/accept|reject|refer|hangup), client
// secrets (POST /v1/realtime/client_secrets) and the sideband WebSocket
// (GET /v1/realtime?call_id=...) with documented events only. It also
// signs and delivers realtime.call.incoming webhooks as OpenAI does. Tests
// and benchmarks script each call's server events.
package realtimetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"gitlab.com/acme/voice-agent/agent/webhook"
)

// Server is the loopback Realtime API.
type Server struct {
	// URL is the API base URL, ending in /v1 (OPENAI_BASE_URL).
	URL    string
	APIKey string

	srv     *httptest.Server
	mu      sync.Mutex
	calls   map[string]*Call
	secrets []json.RawMessage
	nextID  atomic.Int64
}

// New starts a server that requires apiKey as bearer token.
func New(apiKey string) *Server {
	s := &Server{APIKey: apiKey, calls: map[string]*Call{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/realtime/calls/{call_id}/{action}", s.handleCallAction)
	mux.HandleFunc("POST /v1/realtime/client_secrets", s.handleClientSecret)
	mux.HandleFunc("GET /v1/realtime", s.handleSideband)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL + "/v1"
	return s
}

// Close stops the server and ends every sideband connection.
func (s *Server) Close() {
	s.mu.Lock()
	for _, c := range s.calls {
		c.closeWS(websocket.StatusGoingAway)
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Call is one SIP call as the API sees it.
type Call struct {
	ID string

	mu        sync.Mutex
	session   json.RawMessage
	rejected  int
	referred  []string
	hungUp    bool
	accepted  chan struct{}
	connected chan struct{}
	ended     chan struct{}
	endOnce   sync.Once
	ws        *websocket.Conn
	received  chan json.RawMessage
}

// NewCall registers a pending incoming call (ids look like rtc_...).
func (s *Server) NewCall() *Call {
	c := &Call{
		ID:        fmt.Sprintf("rtc_%016d", s.nextID.Add(1)),
		accepted:  make(chan struct{}),
		connected: make(chan struct{}),
		ended:     make(chan struct{}),
		received:  make(chan json.RawMessage, 64),
	}
	s.mu.Lock()
	s.calls[c.ID] = c
	s.mu.Unlock()
	return c
}

// Calls returns every call seen.
func (s *Server) Calls() []*Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Call, 0, len(s.calls))
	for _, c := range s.calls {
		out = append(out, c)
	}
	return out
}

// Accepted counts accepted calls.
func (s *Server) Accepted() int {
	n := 0
	for _, c := range s.Calls() {
		if c.Session() != nil {
			n++
		}
	}
	return n
}

// ClientSecrets returns the session objects of minted client secrets.
func (s *Server) ClientSecrets() []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]json.RawMessage(nil), s.secrets...)
}

func (s *Server) call(id string) *Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[id]
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Bearer "+s.APIKey {
		apiError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")
		return false
	}
	return true
}

func apiError(w http.ResponseWriter, status int, typ, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": code, "param": nil}})
}

func (s *Server) handleCallAction(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	c := s.call(r.PathValue("call_id"))
	if c == nil {
		apiError(w, http.StatusNotFound, "invalid_request_error", "call_id_not_found", "No session found for the provided call_id")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	c.mu.Lock()
	defer c.mu.Unlock()
	switch r.PathValue("action") {
	case "accept":
		var sess struct {
			Type  string `json:"type"`
			Model string `json:"model"`
		}
		if err := json.Unmarshal(body, &sess); err != nil || sess.Type != "realtime" || sess.Model == "" {
			apiError(w, http.StatusBadRequest, "invalid_request_error", "invalid_value", "session type must be realtime and model is required")
			return
		}
		if c.session != nil || c.rejected != 0 {
			apiError(w, http.StatusConflict, "invalid_request_error", "call_already_handled", "call already accepted or rejected")
			return
		}
		c.session = body
		close(c.accepted)
	case "reject":
		var p struct {
			StatusCode int `json:"status_code"`
		}
		_ = json.Unmarshal(body, &p)
		if p.StatusCode == 0 {
			p.StatusCode = 603
		}
		c.rejected = p.StatusCode
	case "refer":
		var p struct {
			TargetURI string `json:"target_uri"`
		}
		if err := json.Unmarshal(body, &p); err != nil || p.TargetURI == "" {
			apiError(w, http.StatusBadRequest, "invalid_request_error", "missing_required_parameter", "target_uri is required")
			return
		}
		// The caller leaves the session when the transfer completes, which
		// the test decides with HangupByCaller.
		c.referred = append(c.referred, p.TargetURI)
	case "hangup":
		c.hungUp = true
		go c.closeWS(websocket.StatusNormalClosure)
	default:
		apiError(w, http.StatusNotFound, "invalid_request_error", "not_found", "unknown action")
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleClientSecret(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	var req struct {
		ExpiresAfter struct {
			Anchor  string `json:"anchor"`
			Seconds int64  `json:"seconds"`
		} `json:"expires_after"`
		Session json.RawMessage `json:"session"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Session) == 0 {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "invalid_value", "session is required")
		return
	}
	ttl := req.ExpiresAfter.Seconds
	if ttl == 0 {
		ttl = 600
	}
	s.mu.Lock()
	s.secrets = append(s.secrets, req.Session)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"value":      fmt.Sprintf("ek_%016d", s.nextID.Add(1)),
		"expires_at": time.Now().Unix() + ttl,
		"session":    req.Session,
	})
}

func (s *Server) handleSideband(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	c := s.call(r.URL.Query().Get("call_id"))
	if c == nil || c.Session() == nil {
		apiError(w, http.StatusNotFound, "invalid_request_error", "call_id_not_found", "No session found for the provided call_id")
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(16 << 20)
	c.mu.Lock()
	if c.ws != nil {
		c.mu.Unlock()
		_ = ws.Close(websocket.StatusPolicyViolation, "already connected")
		return
	}
	c.ws = ws
	sess := c.session
	c.mu.Unlock()
	ctx := r.Context()
	var sessObj map[string]any
	_ = json.Unmarshal(sess, &sessObj)
	sessObj["id"] = "sess_" + strings.TrimPrefix(c.ID, "rtc_")
	sessObj["object"] = "realtime.session"
	_ = c.Send(ctx, map[string]any{"type": "session.created", "event_id": "event_0", "session": sessObj})
	close(c.connected)
	defer c.end()
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return
		}
		select {
		case c.received <- data:
		case <-ctx.Done():
			return
		}
	}
}

func (c *Call) end() { c.endOnce.Do(func() { close(c.ended) }) }

func (c *Call) closeWS(code websocket.StatusCode) {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		_ = ws.Close(code, "call ended")
	}
}

// Session returns the session object the call was accepted with (nil if
// not accepted).
func (c *Call) Session() json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// Rejected returns the SIP status the call was rejected with (0 if not).
func (c *Call) Rejected() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rejected
}

// Referred returns the refer targets.
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

// WaitEnded waits until the sideband WebSocket has closed.
func (c *Call) WaitEnded(ctx context.Context) error { return wait(ctx, c.ended, "end of call") }

// Send sends one server event to the agent.
func (c *Call) Send(ctx context.Context, ev any) error {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws == nil {
		return errors.New("realtimetest: sideband not connected")
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return ws.Write(ctx, websocket.MessageText, b)
}

// ClientEvent is an event the agent sent.
type ClientEvent struct {
	Type string `json:"type"`
	Item struct {
		Type   string `json:"type"`
		CallID string `json:"call_id"`
		Output string `json:"output"`
	} `json:"item"`
	Raw json.RawMessage `json:"-"`
}

// Next returns the next event the agent sent.
func (c *Call) Next(ctx context.Context) (ClientEvent, error) {
	select { // events already received come before the end of the call
	case raw := <-c.received:
		return decodeClientEvent(raw)
	default:
	}
	select {
	case raw := <-c.received:
		return decodeClientEvent(raw)
	case <-c.ended:
		return ClientEvent{}, errors.New("realtimetest: call ended")
	case <-ctx.Done():
		return ClientEvent{}, ctx.Err()
	}
}

func decodeClientEvent(raw json.RawMessage) (ClientEvent, error) {
	var ev ClientEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ev, fmt.Errorf("realtimetest: agent sent invalid JSON: %w", err)
	}
	ev.Raw = raw
	return ev, nil
}

// HangupByCaller ends the call from the caller's side (the API closes the
// sideband).
func (c *Call) HangupByCaller() { c.closeWS(websocket.StatusNormalClosure) }

// FunctionCall makes the model call a tool: it sends response.created,
// response.function_call_arguments.done and response.done (with the
// function_call output item), as the API does, and returns the
// function_call_output the agent answered with. It then expects the
// agent's response.create unless the tool ends or transfers the call.
func (c *Call) FunctionCall(ctx context.Context, name, arguments string) (output string, err error) {
	n := time.Now().UnixNano()
	respID := "resp_" + strconv.FormatInt(n, 36)
	itemID := "item_" + strconv.FormatInt(n, 36)
	callID := "call_" + strconv.FormatInt(n, 36)
	item := map[string]any{"id": itemID, "object": "realtime.item", "type": "function_call", "status": "completed", "name": name, "call_id": callID, "arguments": arguments}
	events := []any{
		map[string]any{"type": "response.created", "event_id": "event_a" + callID, "response": map[string]any{"id": respID, "object": "realtime.response", "status": "in_progress", "output": []any{}}},
		map[string]any{"type": "response.function_call_arguments.done", "event_id": "event_b" + callID, "response_id": respID, "item_id": itemID, "output_index": 0, "call_id": callID, "name": name, "arguments": arguments},
		map[string]any{"type": "response.done", "event_id": "event_c" + callID, "response": map[string]any{"id": respID, "object": "realtime.response", "status": "completed", "output": []any{item}}},
	}
	for _, ev := range events {
		if err := c.Send(ctx, ev); err != nil {
			return "", err
		}
	}
	ev, err := c.Next(ctx)
	if err != nil {
		return "", err
	}
	if ev.Type != "conversation.item.create" || ev.Item.Type != "function_call_output" || ev.Item.CallID != callID {
		return "", fmt.Errorf("realtimetest: expected conversation.item.create with function_call_output for %s, got %s", callID, ev.Raw)
	}
	return ev.Item.Output, nil
}

// ExpectResponseCreate waits for the agent's response.create.
func (c *Call) ExpectResponseCreate(ctx context.Context) error {
	ev, err := c.Next(ctx)
	if err != nil {
		return err
	}
	if ev.Type != "response.create" {
		return fmt.Errorf("realtimetest: expected response.create, got %s", ev.Raw)
	}
	return nil
}

// AssistantSays completes a spoken response (response.created,
// response.output_audio_transcript.done, response.done).
func (c *Call) AssistantSays(ctx context.Context, transcript string) error {
	n := strconv.FormatInt(time.Now().UnixNano(), 36)
	item := map[string]any{"id": "item_" + n, "object": "realtime.item", "type": "message", "role": "assistant", "status": "completed",
		"content": []any{map[string]any{"type": "output_audio", "transcript": transcript}}}
	for _, ev := range []any{
		map[string]any{"type": "response.created", "event_id": "event_d" + n, "response": map[string]any{"id": "resp_" + n, "object": "realtime.response", "status": "in_progress", "output": []any{}}},
		map[string]any{"type": "response.output_audio_transcript.done", "event_id": "event_e" + n, "response_id": "resp_" + n, "item_id": "item_" + n, "output_index": 0, "content_index": 0, "transcript": transcript},
		map[string]any{"type": "response.done", "event_id": "event_f" + n, "response": map[string]any{"id": "resp_" + n, "object": "realtime.response", "status": "completed", "output": []any{item}}},
	} {
		if err := c.Send(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// DeliverIncoming signs a realtime.call.incoming webhook for call with
// secret and POSTs it to url, as OpenAI does. It returns the HTTP status.
func DeliverIncoming(ctx context.Context, client *http.Client, url, secret string, call *Call, from string) (int, error) {
	body, err := json.Marshal(map[string]any{
		"object": "event", "id": "evt_" + strings.TrimPrefix(call.ID, "rtc_"), "type": "realtime.call.incoming",
		"created_at": time.Now().Unix(),
		"data": map[string]any{"call_id": call.ID, "sip_headers": []map[string]string{
			{"name": "From", "value": from},
			{"name": "To", "value": "sip:+18005550100@sip.api.openai.com;transport=tls"},
			{"name": "Call-ID", "value": call.ID + "@sip.example"},
		}},
	})
	if err != nil {
		return 0, err
	}
	return Deliver(ctx, client, url, secret, "wh_"+strings.TrimPrefix(call.ID, "rtc_"), time.Now(), body)
}

// Deliver POSTs a signed webhook body.
func Deliver(ctx context.Context, client *http.Client, url, secret, id string, ts time.Time, body []byte) (int, error) {
	sig, err := webhook.Sign(secret, id, ts.Unix(), body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
