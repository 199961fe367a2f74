package realtimetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	oarealtime "github.com/openai/openai-go/v3/realtime"
)

// Call is one SIP call as the API sees it: its session, the sideband
// WebSocket, the conversation, the response in progress and the output
// audio buffer playing to the caller.
type Call struct {
	ID string

	srv    *Server
	ctx    context.Context // cancelled when the call ends (model calls)
	cancel context.CancelFunc

	mu           sync.Mutex
	model        Model
	acceptBody   json.RawMessage
	session      map[string]any // effective session
	rejected     int
	referred     []string
	hungUp       bool
	finished     bool
	ws           *websocket.Conn
	out          [][]byte // events waiting for the writer
	closeCode    websocket.StatusCode
	closeReason  string
	conversation []convItem
	callIDs      map[string]bool // function call ids in the conversation
	active       *response
	responses    []*response
	buffer       []clip // output audio buffer: what plays to the caller, in order
	bufferGen    int
	lastStopped  string
	lastCleared  string
	audioMs      int64 // the caller's input audio clock
	paused       bool
	referFails   bool
	held         [][]byte
	timeline     []Event
	transcript   []Turn

	changed     chan struct{} // closed and replaced at every timeline entry
	wake        chan struct{}
	accepted    chan struct{}
	connected   chan struct{}
	ended       chan struct{}
	endOnce     sync.Once
	connectOnce sync.Once
}

type convItem struct {
	id string
	Item
}

type response struct {
	id       string
	trigger  string
	status   string
	outputs  []Output
	audio    string // "", "playing", "stopped", "cleared", "cut"
	itemIDs  []string
	metadata map[string]any // response.create's response.metadata, echoed in the response object
}

// clip is one response's audio in the output audio buffer.
type clip struct {
	resp   *response
	itemID string
	dur    time.Duration
	start  time.Time // zero while queued behind another clip
	turn   int       // index in the transcript
}

func newCall(s *Server, id string) *Call {
	ctx, cancel := context.WithCancel(context.Background())
	return &Call{
		ID: id, srv: s, ctx: ctx, cancel: cancel, callIDs: map[string]bool{},
		changed: make(chan struct{}), wake: make(chan struct{}, 1),
		accepted: make(chan struct{}), connected: make(chan struct{}), ended: make(chan struct{}),
	}
}

// SetModel sets the model of this call (instead of the server's).
func (c *Call) SetModel(m Model) {
	c.mu.Lock()
	c.model = m
	c.mu.Unlock()
}

// --- REST actions ------------------------------------------------------

func (c *Call) accept(body []byte) (int, string, string) {
	var sess map[string]any
	if err := json.Unmarshal(body, &sess); err != nil {
		return http.StatusBadRequest, "invalid_json", "The request body is not valid JSON."
	}
	// The SDK's session type is the contract of the accept body.
	var typed oarealtime.RealtimeSessionCreateRequest
	if err := json.Unmarshal(body, &typed); err != nil || sess["type"] != "realtime" {
		return http.StatusBadRequest, "invalid_value", "Invalid session: type must be \"realtime\"."
	}
	if m, _ := sess["model"].(string); m == "" {
		return http.StatusBadRequest, "missing_required_parameter", "Missing required parameter: 'model'."
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.acceptBody != nil || c.rejected != 0 || c.finished {
		return http.StatusConflict, "call_already_handled", "The call was already accepted, rejected or ended."
	}
	c.acceptBody = append(json.RawMessage(nil), body...)
	c.session = sess
	c.record(Event{Kind: KindAccept})
	close(c.accepted)
	return http.StatusOK, "", ""
}

func (c *Call) reject(body []byte) (int, string, string) {
	var p struct {
		StatusCode int `json:"status_code"`
	}
	_ = json.Unmarshal(body, &p)
	if p.StatusCode == 0 {
		p.StatusCode = 603
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.acceptBody != nil || c.rejected != 0 {
		return http.StatusConflict, "call_already_handled", "The call was already accepted or rejected."
	}
	c.rejected = p.StatusCode
	c.record(Event{Kind: KindReject, Target: fmt.Sprint(p.StatusCode)})
	c.finished = true
	c.endOnce.Do(func() { close(c.ended) })
	return http.StatusOK, "", ""
}

func (c *Call) refer(body []byte) (int, string, string) {
	var p struct {
		TargetURI string `json:"target_uri"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.TargetURI == "" {
		return http.StatusBadRequest, "missing_required_parameter", "Missing required parameter: 'target_uri'."
	}
	if !strings.HasPrefix(p.TargetURI, "tel:") && !strings.HasPrefix(p.TargetURI, "sip:") {
		return http.StatusBadRequest, "invalid_value", "target_uri must be a tel: or sip: URI."
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.acceptBody == nil || c.finished {
		return http.StatusBadRequest, "call_not_active", "The call is not active."
	}
	if c.referFails {
		c.record(Event{Kind: KindReferFailed, Target: p.TargetURI})
		return http.StatusInternalServerError, "refer_failed", "The transfer could not be completed."
	}
	c.referred = append(c.referred, p.TargetURI)
	c.record(Event{Kind: KindRefer, Target: p.TargetURI})
	return http.StatusOK, "", ""
}

func (c *Call) hangup() (int, string, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.acceptBody == nil || c.finished {
		return http.StatusBadRequest, "call_not_active", "The call is not active."
	}
	c.hungUp = true
	c.record(Event{Kind: KindHangup})
	return http.StatusOK, "", ""
}

// CallerHangsUp ends the call from the caller's side: the API closes the
// sideband.
func (c *Call) CallerHangsUp() {
	c.mu.Lock()
	if !c.finished {
		c.record(Event{Kind: KindCallerHangup})
	}
	c.mu.Unlock()
	c.finish("caller hung up", websocket.StatusNormalClosure)
}

// finish ends the call: the response in progress and the audio stop, and
// the sideband closes once the events already queued are written.
func (c *Call) finish(reason string, code websocket.StatusCode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished && c.closeCode != 0 {
		return
	}
	c.finished = true
	c.cancel()
	if c.active != nil {
		c.active.status = "cancelled"
		c.active = nil
	}
	for _, cl := range c.buffer {
		cl.resp.audio = "cut"
	}
	c.buffer = nil
	c.bufferGen++
	c.closeCode, c.closeReason = code, reason
	if c.ws == nil {
		c.record(Event{Kind: KindEnded, Target: reason})
		c.endOnce.Do(func() { close(c.ended) })
		return
	}
	c.signal()
}

// --- sideband ------------------------------------------------------------

func (c *Call) serve(ctx context.Context, ws *websocket.Conn) {
	c.mu.Lock()
	if c.ws != nil || c.finished {
		c.mu.Unlock()
		_ = ws.Close(websocket.StatusPolicyViolation, "call already connected or ended")
		return
	}
	c.ws = ws
	c.emit(map[string]any{"type": "session.created", "session": c.sessionObject()})
	c.connectOnce.Do(func() { close(c.connected) })
	c.mu.Unlock()

	done := make(chan struct{})
	go c.writer(ws, done)
	defer func() {
		close(done)
		c.mu.Lock()
		c.ws = nil
		if c.closeCode == 0 {
			// The agent dropped the sideband: the SIP call goes on (the
			// caller still talks with the model, without the agent's tools)
			// until someone hangs up.
			c.out = nil
			c.record(Event{Kind: KindSidebandClosed})
			c.mu.Unlock()
			return
		}
		c.record(Event{Kind: KindEnded, Target: c.closeReason})
		c.mu.Unlock()
		c.endOnce.Do(func() { close(c.ended) })
	}()
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return
		}
		c.handleClient(data)
	}
}

// writer writes queued server events in order, then closes the socket
// when the call is finished.
func (c *Call) writer(ws *websocket.Conn, done <-chan struct{}) {
	for {
		c.mu.Lock()
		batch := c.out
		c.out = nil
		code, reason := c.closeCode, c.closeReason
		c.mu.Unlock()
		for _, b := range batch {
			wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := ws.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		if code != 0 {
			_ = ws.Close(code, reason)
			return
		}
		select {
		case <-c.wake:
		case <-done:
			return
		}
	}
}

func (c *Call) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// emit queues a server event (c.mu held), giving it an event_id, and
// records it in the timeline.
func (c *Call) emit(ev map[string]any) {
	if c.ws == nil || c.closeCode != 0 {
		return
	}
	ev["event_id"] = c.srv.id("event")
	b, err := json.Marshal(ev)
	if err != nil {
		panic(fmt.Sprintf("realtimetest: encode %v: %v", ev["type"], err))
	}
	typ, _ := ev["type"].(string)
	rid, _ := ev["response_id"].(string)
	if r, ok := ev["response"].(map[string]any); ok {
		rid, _ = r["id"].(string)
	}
	c.record(Event{Kind: KindServer, Type: typ, ResponseID: rid, Raw: b})
	c.out = append(c.out, b)
	c.signal()
}

func (c *Call) sessionObject() map[string]any {
	obj := map[string]any{}
	for k, v := range c.session {
		obj[k] = v
	}
	obj["object"] = "realtime.session"
	obj["id"] = "sess_" + strings.TrimPrefix(c.ID, "rtc_")
	return obj
}

func (c *Call) sendError(clientEventID, code, msg, param string) {
	e := map[string]any{"type": "invalid_request_error", "code": code, "message": msg, "param": nil, "event_id": nil}
	if param != "" {
		e["param"] = param
	}
	if clientEventID != "" {
		e["event_id"] = clientEventID
	}
	c.emit(map[string]any{"type": "error", "error": e})
}

// clientEvent is the part of a client event the server reads.
type clientEvent struct {
	Type     string          `json:"type"`
	EventID  string          `json:"event_id"`
	Session  json.RawMessage `json:"session"`
	Item     *clientItem     `json:"item"`
	Response *struct {
		Instructions     *string         `json:"instructions"`
		Tools            json.RawMessage `json:"tools"`
		OutputModalities []string        `json:"output_modalities"`
		Metadata         map[string]any  `json:"metadata"`
	} `json:"response"`
}

type clientItem struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Role      string `json:"role"`
	CallID    string `json:"call_id"`
	Output    string `json:"output"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
	Content   []struct {
		Type       string `json:"type"`
		Text       string `json:"text"`
		Transcript string `json:"transcript"`
	} `json:"content"`
}

func (c *Call) handleClient(data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused {
		c.held = append(c.held, append([]byte(nil), data...))
		return
	}
	c.handleClientLocked(data)
}

// FailRefers makes every REFER of the call fail (HTTP 500), as when the
// transfer target does not answer.
func (c *Call) FailRefers() {
	c.mu.Lock()
	c.referFails = true
	c.mu.Unlock()
}

// PauseClientEvents holds the agent's events as if the network delayed
// them; ResumeClientEvents then processes them all at once, in order, with
// no server activity in between (to reproduce races deterministically,
// e.g. a response.create arriving while a response is active).
func (c *Call) PauseClientEvents() {
	c.mu.Lock()
	c.paused = true
	c.mu.Unlock()
}

// ResumeClientEvents processes the held events and stops holding.
func (c *Call) ResumeClientEvents() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = false
	held := c.held
	c.held = nil
	for _, data := range held {
		c.handleClientLocked(data)
	}
}

// HeldClientEvents counts the events held by PauseClientEvents.
func (c *Call) HeldClientEvents() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}

func (c *Call) handleClientLocked(data []byte) {
	var ev clientEvent
	if err := json.Unmarshal(data, &ev); err != nil || ev.Type == "" {
		c.record(Event{Kind: KindClient, Raw: append(json.RawMessage(nil), data...)})
		c.sendError("", "invalid_json", "The event is not valid JSON or has no type.", "")
		return
	}
	c.record(Event{Kind: KindClient, Type: ev.Type, Raw: append(json.RawMessage(nil), data...)})
	if c.finished {
		return
	}
	switch ev.Type {
	case "session.update":
		var patch map[string]any
		if err := json.Unmarshal(ev.Session, &patch); err != nil {
			c.sendError(ev.EventID, "invalid_value", "Invalid 'session': expected an object.", "session")
			return
		}
		merge(c.session, patch)
		c.emit(map[string]any{"type": "session.updated", "session": c.sessionObject()})
	case "conversation.item.create":
		c.createItem(ev)
	case "response.create":
		if c.active != nil {
			c.sendError(ev.EventID, "conversation_already_has_active_response",
				"Conversation already has an active response in progress: "+c.active.id+". Wait until the response is finished before creating a new one.", "")
			return
		}
		o := overrides{}
		if ev.Response != nil {
			o.instructions = ev.Response.Instructions
			o.tools = ev.Response.Tools
			o.modalities = ev.Response.OutputModalities
			o.metadata = ev.Response.Metadata
		}
		c.startResponse(TriggerResponseCreate, o)
	case "response.cancel":
		if c.active == nil {
			c.sendError(ev.EventID, "response_cancel_not_active", "Cancellation failed: no active response found.", "")
			return
		}
		c.cancelResponse("client_cancelled")
	case "output_audio_buffer.clear":
		c.clearAudio()
	case "input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear",
		"conversation.item.retrieve", "conversation.item.truncate", "conversation.item.delete":
		// Accepted; the loopback server has no audio input of the agent's.
	default:
		c.sendError(ev.EventID, "invalid_value", fmt.Sprintf("Invalid value: '%s'. Supported values are: 'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', 'input_audio_buffer.clear', 'conversation.item.create', 'conversation.item.truncate', 'conversation.item.delete', 'conversation.item.retrieve', 'response.create', 'response.cancel' and 'output_audio_buffer.clear'.", ev.Type), "type")
	}
}

func (c *Call) createItem(ev clientEvent) {
	if ev.Item == nil {
		c.sendError(ev.EventID, "missing_required_parameter", "Missing required parameter: 'item'.", "item")
		return
	}
	it := Item{Type: ev.Item.Type, Role: ev.Item.Role, CallID: ev.Item.CallID, Output: ev.Item.Output, Name: ev.Item.Name, Arguments: ev.Item.Arguments}
	for _, p := range ev.Item.Content {
		it.Text += p.Text + p.Transcript
	}
	switch it.Type {
	case "function_call_output":
		if !c.callIDs[it.CallID] {
			c.sendError(ev.EventID, "invalid_value", fmt.Sprintf("Tool call ID '%s' not found in conversation.", it.CallID), "item.call_id")
			return
		}
	case "message", "function_call":
	default:
		c.sendError(ev.EventID, "invalid_value", fmt.Sprintf("Invalid value: '%s'. Supported values are: 'message', 'function_call' and 'function_call_output'.", it.Type), "item.type")
		return
	}
	id := ev.Item.ID
	if id == "" {
		id = c.srv.id("item")
	}
	c.addItem(id, it, "completed")
}

// addItem appends it to the conversation and emits conversation.item.added
// and conversation.item.done.
func (c *Call) addItem(id string, it Item, status string) {
	prev := any(nil)
	if n := len(c.conversation); n > 0 {
		prev = c.conversation[n-1].id
	}
	c.conversation = append(c.conversation, convItem{id: id, Item: it})
	if it.Type == "function_call" {
		c.callIDs[it.CallID] = true
	}
	obj := itemObject(id, it, status)
	c.emit(map[string]any{"type": "conversation.item.added", "previous_item_id": prev, "item": obj})
	c.emit(map[string]any{"type": "conversation.item.done", "previous_item_id": prev, "item": obj})
}

func itemObject(id string, it Item, status string) map[string]any {
	obj := map[string]any{"id": id, "object": "realtime.item", "type": it.Type, "status": status}
	switch it.Type {
	case "message":
		obj["role"] = it.Role
		switch it.Role {
		case "assistant":
			obj["content"] = []any{map[string]any{"type": "output_audio", "transcript": it.Text}}
		default:
			obj["content"] = []any{map[string]any{"type": "input_text", "text": it.Text}}
		}
	case "function_call":
		obj["name"], obj["call_id"], obj["arguments"] = it.Name, it.CallID, it.Arguments
	case "function_call_output":
		obj["call_id"], obj["output"] = it.CallID, it.Output
	}
	return obj
}

// --- responses -------------------------------------------------------------

type overrides struct {
	instructions *string
	tools        json.RawMessage
	modalities   []string
	metadata     map[string]any
}

func (c *Call) startResponse(trigger string, o overrides) {
	r := &response{id: c.srv.id("resp"), trigger: trigger, status: "in_progress", metadata: o.metadata}
	c.active = r
	c.responses = append(c.responses, r)
	c.emit(map[string]any{"type": "response.created", "response": map[string]any{
		"id": r.id, "object": "realtime.response", "status": "in_progress", "status_details": nil, "output": []any{},
		"conversation_id": "conv_" + strings.TrimPrefix(c.ID, "rtc_"), "output_modalities": c.modalities(o),
		"metadata": r.metadata,
	}})
	sess, _ := json.Marshal(c.session)
	req := ResponseRequest{CallID: c.ID, Session: sess, Trigger: trigger}
	req.Instructions, _ = c.session["instructions"].(string)
	if o.instructions != nil {
		req.Instructions = *o.instructions
	}
	req.Tools, _ = json.Marshal(c.session["tools"])
	if len(o.tools) > 0 {
		req.Tools = o.tools
	}
	for _, it := range c.conversation {
		req.Conversation = append(req.Conversation, it.Item)
	}
	model := c.model
	if model == nil {
		model = c.srv.model
	}
	audio := false
	for _, m := range c.modalities(o) {
		audio = audio || m == "audio"
	}
	go c.generate(r, model, req, audio)
}

func (c *Call) modalities(o overrides) []string {
	if len(o.modalities) > 0 {
		return o.modalities
	}
	var out []string
	if ms, ok := c.session["output_modalities"].([]any); ok {
		for _, m := range ms {
			if s, ok := m.(string); ok {
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		out = []string{"audio"}
	}
	return out
}

// generate asks the model, then streams the response's events (the model
// is called without the lock: the conversation goes on meanwhile, e.g. the
// caller may interrupt and cancel the response).
func (c *Call) generate(r *response, model Model, req ResponseRequest, audio bool) {
	outs, err := model.Respond(c.ctx, req)
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.status != "in_progress" || c.finished {
		return // cancelled meanwhile
	}
	c.active = nil
	if err != nil {
		r.status = "failed"
		c.emit(map[string]any{"type": "response.done", "response": map[string]any{
			"id": r.id, "object": "realtime.response", "status": "failed", "output": []any{},
			"status_details": map[string]any{"type": "failed", "error": map[string]any{"type": "server_error", "code": "model_error", "message": err.Error()}},
		}})
		return
	}
	r.outputs = outs
	var items []any
	var spoken []string
	var firstMsg string
	for i, o := range outs {
		id := c.srv.id("item")
		r.itemIDs = append(r.itemIDs, id)
		switch {
		case o.FunctionCall != nil:
			it := Item{Type: "function_call", Name: o.FunctionCall.Name, Arguments: o.FunctionCall.Arguments, CallID: c.srv.id("call")}
			c.emit(map[string]any{"type": "response.output_item.added", "response_id": r.id, "output_index": i, "item": itemObject(id, it, "in_progress")})
			c.emit(map[string]any{"type": "response.function_call_arguments.delta", "response_id": r.id, "item_id": id, "output_index": i, "call_id": it.CallID, "delta": it.Arguments})
			c.emit(map[string]any{"type": "response.function_call_arguments.done", "response_id": r.id, "item_id": id, "output_index": i, "call_id": it.CallID, "name": it.Name, "arguments": it.Arguments})
			obj := itemObject(id, it, "completed")
			c.emit(map[string]any{"type": "response.output_item.done", "response_id": r.id, "output_index": i, "item": obj})
			c.addItem(id, it, "completed")
			items = append(items, obj)
		default:
			it := Item{Type: "message", Role: "assistant", Text: o.Text}
			part := "output_audio"
			if !audio {
				part = "text"
			}
			c.emit(map[string]any{"type": "response.output_item.added", "response_id": r.id, "output_index": i, "item": map[string]any{"id": id, "object": "realtime.item", "type": "message", "role": "assistant", "status": "in_progress", "content": []any{}}})
			c.emit(map[string]any{"type": "response.content_part.added", "response_id": r.id, "item_id": id, "output_index": i, "content_index": 0, "part": map[string]any{"type": part}})
			if audio {
				if firstMsg == "" {
					firstMsg = id
				}
				if len(spoken) == 0 && len(c.buffer) == 0 {
					// The audio starts playing to the caller while the
					// response is still being generated.
					c.emit(map[string]any{"type": "output_audio_buffer.started", "response_id": r.id})
				}
				spoken = append(spoken, o.Text)
				c.emit(map[string]any{"type": "response.output_audio_transcript.delta", "response_id": r.id, "item_id": id, "output_index": i, "content_index": 0, "delta": o.Text})
				c.emit(map[string]any{"type": "response.output_audio.done", "response_id": r.id, "item_id": id, "output_index": i, "content_index": 0})
				c.emit(map[string]any{"type": "response.output_audio_transcript.done", "response_id": r.id, "item_id": id, "output_index": i, "content_index": 0, "transcript": o.Text})
				c.emit(map[string]any{"type": "response.content_part.done", "response_id": r.id, "item_id": id, "output_index": i, "content_index": 0, "part": map[string]any{"type": "output_audio", "transcript": o.Text}})
			} else {
				c.emit(map[string]any{"type": "response.output_text.delta", "response_id": r.id, "item_id": id, "output_index": i, "content_index": 0, "delta": o.Text})
				c.emit(map[string]any{"type": "response.output_text.done", "response_id": r.id, "item_id": id, "output_index": i, "content_index": 0, "text": o.Text})
				c.emit(map[string]any{"type": "response.content_part.done", "response_id": r.id, "item_id": id, "output_index": i, "content_index": 0, "part": map[string]any{"type": "text", "text": o.Text}})
			}
			obj := itemObject(id, it, "completed")
			if !audio {
				obj["content"] = []any{map[string]any{"type": "output_text", "text": o.Text}}
			}
			c.emit(map[string]any{"type": "response.output_item.done", "response_id": r.id, "output_index": i, "item": obj})
			c.addItem(id, it, "completed")
			items = append(items, obj)
		}
	}
	if items == nil {
		items = []any{}
	}
	r.status = "completed"
	c.emit(map[string]any{"type": "response.done", "response": map[string]any{
		"id": r.id, "object": "realtime.response", "status": "completed", "status_details": nil, "output": items, "metadata": r.metadata,
		"usage": map[string]any{"total_tokens": 0, "input_tokens": 0, "output_tokens": 0},
	}})
	if len(spoken) > 0 {
		text := strings.Join(spoken, " ")
		c.transcript = append(c.transcript, Turn{Role: "assistant", Text: text, ResponseID: r.id})
		c.enqueueAudio(clip{resp: r, itemID: firstMsg, dur: time.Duration(len([]rune(text))) * c.srv.pace, turn: len(c.transcript) - 1})
	}
}

// cancelResponse ends the active response with status cancelled (c.mu
// held).
func (c *Call) cancelResponse(reason string) {
	r := c.active
	c.active = nil
	r.status = "cancelled"
	c.emit(map[string]any{"type": "response.done", "response": map[string]any{
		"id": r.id, "object": "realtime.response", "status": "cancelled", "output": []any{},
		"status_details": map[string]any{"type": "cancelled", "reason": reason},
	}})
}

// --- output audio buffer -----------------------------------------------------

func (c *Call) enqueueAudio(cl clip) {
	cl.resp.audio = "playing"
	c.buffer = append(c.buffer, cl)
	if len(c.buffer) == 1 {
		c.playHead()
	}
}

// playHead starts the first clip of the buffer and schedules its end.
func (c *Call) playHead() {
	c.buffer[0].start = time.Now()
	gen := c.bufferGen
	time.AfterFunc(c.buffer[0].dur, func() { c.clipEnded(gen) })
}

func (c *Call) clipEnded(gen int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.bufferGen || len(c.buffer) == 0 {
		return // cleared or call ended meanwhile
	}
	done := c.buffer[0]
	c.buffer = c.buffer[1:]
	done.resp.audio = "stopped"
	c.bufferGen++
	if len(c.buffer) > 0 {
		c.playHead()
		return
	}
	c.lastStopped = done.resp.id
	c.emit(map[string]any{"type": "output_audio_buffer.stopped", "response_id": done.resp.id})
}

// clearAudio cuts the audio playing (caller interruption or the client's
// output_audio_buffer.clear): output_audio_buffer.cleared, and the
// assistant item is truncated where the caller stopped hearing it.
func (c *Call) clearAudio() {
	if len(c.buffer) == 0 {
		return
	}
	head := c.buffer[0]
	for _, cl := range c.buffer {
		cl.resp.audio = "cleared"
		c.transcript[cl.turn].Interrupted = true
	}
	c.buffer = nil
	c.bufferGen++
	c.lastCleared = head.resp.id
	c.emit(map[string]any{"type": "output_audio_buffer.cleared", "response_id": head.resp.id})
	if head.itemID != "" {
		c.emit(map[string]any{"type": "conversation.item.truncated", "item_id": head.itemID, "content_index": 0, "audio_end_ms": time.Since(head.start).Milliseconds()})
	}
}

// --- the caller ------------------------------------------------------------------

type turnDetection struct{ enabled, create, interrupt bool }

// turnDetection reads audio.input.turn_detection: absent means the
// default server_vad (create_response and interrupt_response true), null
// turns it off.
func (c *Call) turnDetection() turnDetection {
	td := turnDetection{enabled: true, create: true, interrupt: true}
	in := path(c.session, "audio", "input")
	v, present := in["turn_detection"]
	if !present {
		return td
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return turnDetection{}
	}
	if b, ok := obj["create_response"].(bool); ok {
		td.create = b
	}
	if b, ok := obj["interrupt_response"].(bool); ok {
		td.interrupt = b
	}
	return td
}

// transcribes reports whether the session configured input audio
// transcription (audio.input.transcription with a model).
func (c *Call) transcribes() bool {
	t, ok := path(c.session, "audio", "input")["transcription"].(map[string]any)
	if !ok {
		return false
	}
	m, _ := t["model"].(string)
	return m != ""
}

func path(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			return map[string]any{}
		}
		m = next
	}
	return m
}

// ErrNotConnected is returned by CallerSays before the sideband is open or
// after the call ended.
var ErrNotConnected = errors.New("realtimetest: the call is not connected")

// CallerSays simulates one caller turn with server VAD:
// input_audio_buffer.speech_started (which, if the assistant is speaking
// and interrupt_response is on, cancels the response in progress, clears
// the output audio buffer and truncates the assistant item),
// speech_stopped, committed, the user item (conversation.item.added/done),
// conversation.item.input_audio_transcription.completed only if the
// session configured input transcription, and then, if create_response is
// on, a response.
func (c *Call) CallerSays(ctx context.Context, text string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ws == nil || c.finished {
		return ErrNotConnected
	}
	td := c.turnDetection()
	c.transcript = append(c.transcript, Turn{Role: "caller", Text: text})
	c.record(Event{Kind: KindCallerSpeech, Target: text})
	if !td.enabled {
		return nil // the audio stays in the input buffer until the client commits it
	}
	id := c.srv.id("item")
	start := c.audioMs + 200
	c.audioMs = start + int64(len(text))*60
	c.emit(map[string]any{"type": "input_audio_buffer.speech_started", "audio_start_ms": start, "item_id": id})
	if td.interrupt {
		if c.active != nil {
			c.cancelResponse("turn_detected")
		}
		c.clearAudio()
	}
	c.emit(map[string]any{"type": "input_audio_buffer.speech_stopped", "audio_end_ms": c.audioMs, "item_id": id})
	prev := any(nil)
	if n := len(c.conversation); n > 0 {
		prev = c.conversation[n-1].id
	}
	c.emit(map[string]any{"type": "input_audio_buffer.committed", "previous_item_id": prev, "item_id": id})
	c.conversation = append(c.conversation, convItem{id: id, Item: Item{Type: "message", Role: "user", Text: text}})
	obj := map[string]any{"id": id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
		"content": []any{map[string]any{"type": "input_audio", "transcript": nil}}}
	c.emit(map[string]any{"type": "conversation.item.added", "previous_item_id": prev, "item": obj})
	c.emit(map[string]any{"type": "conversation.item.done", "previous_item_id": prev, "item": obj})
	if c.transcribes() {
		c.emit(map[string]any{"type": "conversation.item.input_audio_transcription.completed", "item_id": id, "content_index": 0,
			"transcript": text, "usage": map[string]any{"type": "duration", "seconds": float64(len(text)) * 0.06}})
	}
	if td.create && c.active == nil {
		c.startResponse(TriggerTurnDetection, overrides{})
	}
	return nil
}

// merge applies a session.update patch: objects merge key by key, other
// values (arrays included) replace.
func merge(dst, patch map[string]any) {
	for k, v := range patch {
		if pv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				merge(dv, pv)
				continue
			}
		}
		dst[k] = v
	}
}

// HangupByCaller is CallerHangsUp (the name the first tests used).
func (c *Call) HangupByCaller() { c.CallerHangsUp() }
