// Package realtimetest is a loopback stand-in for the OpenAI Realtime API
// over SIP, written from OpenAI's documentation and the openai-go v3 event
// types (it imports nothing from the agent): the calls REST endpoints
// (POST /v1/realtime/calls/{call_id}/accept|reject|refer|hangup), client
// secrets (POST /v1/realtime/client_secrets), and the sideband WebSocket
// (GET /v1/realtime?call_id=...). It signs and delivers
// realtime.call.incoming webhooks as OpenAI does (Standard Webhooks).
//
// The model is pluggable (Model): tests script it, evals replay
// recordings. The server behaves like the real one where the agent can get
// the call flow wrong: audio plays after response.done
// (output_audio_buffer.started / stopped), a second response.create while
// one is active is refused with conversation_already_has_active_response,
// caller speech interrupts playback (input_audio_buffer.speech_started,
// output_audio_buffer.cleared, conversation.item.truncated), and every
// REFER and hangup is recorded in the call's Timeline with the audio state
// at that moment.
package realtimetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// DefaultAudioPace is the default playback time per character of spoken
// text: small, so tests are fast.
const DefaultAudioPace = 50 * time.Microsecond

// Server is the loopback Realtime API.
type Server struct {
	apiKey string
	model  Model
	pace   time.Duration

	srv     *httptest.Server
	mu      sync.Mutex
	calls   map[string]*Call
	order   []*Call
	secrets []json.RawMessage
	nextID  atomic.Int64
}

// Option configures a Server.
type Option func(*Server)

// WithModel sets the model every call uses (default Silent). A call's
// own model (Call.SetModel) takes precedence.
func WithModel(m Model) Option { return func(s *Server) { s.model = m } }

// WithAudioPace sets how long one character of spoken text plays
// (default DefaultAudioPace). A long pace keeps audio playing until the
// test interrupts it.
func WithAudioPace(perChar time.Duration) Option { return func(s *Server) { s.pace = perChar } }

// New starts a server that requires apiKey as bearer token.
func New(apiKey string, opts ...Option) *Server {
	s := &Server{apiKey: apiKey, model: Silent, pace: DefaultAudioPace, calls: map[string]*Call{}}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/realtime/calls/{call_id}/{action}", s.handleCallAction)
	mux.HandleFunc("POST /v1/realtime/client_secrets", s.handleClientSecret)
	mux.HandleFunc("GET /v1/realtime", s.handleSideband)
	s.srv = httptest.NewServer(mux)
	return s
}

// URL returns the API base URL, ending in /v1 (OPENAI_BASE_URL).
func (s *Server) URL() string { return s.srv.URL + "/v1" }

// APIKey returns the key the server accepts.
func (s *Server) APIKey() string { return s.apiKey }

// Close ends every call and stops the server.
func (s *Server) Close() {
	for _, c := range s.Calls() {
		c.finish("server_closed", websocket.StatusGoingAway)
	}
	s.srv.CloseClientConnections()
	s.srv.Close()
}

func (s *Server) id(prefix string) string {
	return fmt.Sprintf("%s_%016d", prefix, s.nextID.Add(1))
}

// NewCall registers a pending incoming call (ids look like rtc_...).
func (s *Server) NewCall() *Call {
	c := newCall(s, s.id("rtc"))
	s.mu.Lock()
	s.calls[c.ID] = c
	s.order = append(s.order, c)
	s.mu.Unlock()
	return c
}

// Calls returns every call, in creation order.
func (s *Server) Calls() []*Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Call(nil), s.order...)
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
	if r.Header.Get("Authorization") != "Bearer "+s.apiKey {
		apiError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")
		return false
	}
	return true
}

// apiError writes the REST error envelope of the OpenAI API.
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
	var status int
	var code, msg string
	switch r.PathValue("action") {
	case "accept":
		status, code, msg = c.accept(body)
	case "reject":
		status, code, msg = c.reject(body)
	case "refer":
		status, code, msg = c.refer(body)
	case "hangup":
		status, code, msg = c.hangup()
	default:
		apiError(w, http.StatusNotFound, "invalid_request_error", "not_found", "unknown action")
		return
	}
	if status != http.StatusOK {
		typ := "invalid_request_error"
		if status >= 500 {
			typ = "server_error"
		}
		apiError(w, status, typ, code, msg)
		return
	}
	w.WriteHeader(http.StatusOK)
	// The call ends (sideband closed) only after the hangup or transfer
	// request has completed.
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	switch r.PathValue("action") {
	case "hangup":
		c.finish("hangup", websocket.StatusNormalClosure)
	case "refer":
		c.finish("transferred", websocket.StatusNormalClosure)
	}
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
		"value":      s.id("ek"),
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
	c.serve(r.Context(), ws)
}
