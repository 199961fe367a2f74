package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	oarealtime "github.com/openai/openai-go/v3/realtime"

	"gitlab.com/acme/voice-agent/agent/metrics"
	"gitlab.com/acme/voice-agent/agent/realtime"
	"gitlab.com/acme/voice-agent/agent/session"
	"gitlab.com/acme/voice-agent/agent/tools"
)

// The call's state machine. One goroutine per call reads the sideband's
// server events and decides, in this one place, what the agent does:
//
//	connected ──response.create (greeting + disclosure)──▶ talking
//	talking ──tool call──▶ function_call_output; response.create at the
//	        next moment no response is active (the API refuses a second
//	        active response with conversation_already_has_active_response)
//	talking ──end_call──▶ closing: the goodbye response is requested;
//	        closing ──its audio stopped (output_audio_buffer.stopped)──▶ hang up
//	        closing ──the caller interrupted it (output_audio_buffer.cleared
//	                  or the goodbye cancelled)──▶ talking (the call goes on)
//	talking ──transfer_to_human / escalate_crisis──▶ transferring: the tool
//	        output (for a crisis: the 988 message) is spoken first;
//	        transferring ──that response's audio stopped or was cut──▶ REFER
//	        (transferred: the API ends the call; a failed REFER goes back to
//	        talking and the model is told)
//
// The audio of a response plays after its response.done: hanging up or
// transferring on response.done would cut the caller off mid-sentence.
type phase int

const (
	phaseTalking phase = iota
	phaseClosing
	phaseTransferring
	phaseTransferred // REFER sent: the API ends the call when the transfer completes
)

func (p phase) String() string {
	return [...]string{"talking", "closing", "transferring", "transferred"}[p]
}

// AudioDrainTimeout bounds the wait for the last response's audio to stop
// before hanging up or transferring, in case the API never reports it.
var AudioDrainTimeout = 60 * time.Second

// runCall drives one call's sideband until the call ends.
func (s *Service) runCall(ctx context.Context, call tools.Call, log *slog.Logger) string {
	conn, err := s.connect(ctx, call.ID)
	if err != nil {
		s.m.RealtimeErrors.WithLabelValues("sideband_connect").Inc()
		log.Error("sideband connection failed; hanging up", "err", err)
		s.hangup(call.ID, log)
		return metrics.OutcomeFailed
	}
	defer func() { _ = conn.CloseNow() }()
	m := &callMachine{s: s, call: call, conn: conn, log: log, handled: map[string]bool{}, purpose: map[string]string{}, greeting: s.config.WithToday(s.now().In(s.loc)).Greeting()}
	return m.run(ctx)
}

func (s *Service) connect(ctx context.Context, callID string) (*realtime.Conn, error) {
	u, err := realtime.SidebandURL(s.calls.BaseURL(), callID)
	if err != nil {
		return nil, err
	}
	var last error
	for attempt, wait := 0, 100*time.Millisecond; attempt < 3; attempt, wait = attempt+1, wait*4 {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := s.dial(dctx, u, s.calls.APIKey())
		cancel()
		if err == nil {
			return conn, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	return nil, last
}

func (s *Service) hangup(callID string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.calls.Hangup(ctx, callID); err != nil {
		log.Error("hangup failed", "err", err)
	}
}

// callMachine is the state of one call.
type callMachine struct {
	s        *Service
	call     tools.Call
	conn     *realtime.Conn
	log      *slog.Logger
	greeting string
	handled  map[string]bool // function call ids already answered
	seq      int             // client event ids

	phase phase
	// Responses: at most one is active (response.created .. response.done).
	active       string            // id of the active response
	inflight     []string          // our response.create event_ids not yet answered (response.created or error)
	purpose      map[string]string // event_id of each response.create -> "greeting" or "follow-up"
	wantResponse bool              // tool outputs wait for a response.create
	// The response that must finish speaking before the call ends or is
	// transferred (the goodbye, the crisis message), and its audio.
	final        string // response id ("" until it is created)
	finalCreate  string // event_id of the response.create that asked for it
	finalSpoken  bool   // its output has an assistant message (audio to wait for)
	finalDone    bool   // its response.done arrived
	transferTo   string // REFER target once the message is spoken
	drain        *time.Timer
	drainExpired chan struct{}
}

// pending transfers, per call: the executor's Transfer only records the
// target; the state machine sends the REFER when the caller has heard the
// message.
type deferredTransfers struct {
	tools.CallControl
	mu      sync.Mutex
	targets map[string]string
}

func (d *deferredTransfers) Transfer(_ context.Context, callID, target string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.targets[callID] = target
	return nil
}

func (d *deferredTransfers) take(callID string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.targets[callID]
	delete(d.targets, callID)
	return t
}

func (m *callMachine) eventID(kind string) string {
	m.seq++
	return fmt.Sprintf("agent_%s_%d", kind, m.seq)
}

func (m *callMachine) send(ctx context.Context, ev oarealtime.RealtimeClientEventUnionParam) {
	if err := m.conn.Send(ctx, ev); err != nil {
		m.log.Error("sending client event failed", "type", realtime.ClientEventType(ev), "err", err)
	}
}

// requestResponse sends response.create now if no response is active,
// else remembers to send it when the active one is done.
func (m *callMachine) requestResponse(ctx context.Context, purpose, instructions string) string {
	if m.active != "" || len(m.inflight) > 0 {
		m.wantResponse = m.wantResponse || purpose != "greeting"
		return ""
	}
	m.wantResponse = false
	id := m.eventID("response")
	m.inflight = append(m.inflight, id)
	m.purpose[id] = purpose
	m.send(ctx, realtime.ResponseCreateEvent(id, instructions))
	return id
}

func (m *callMachine) run(ctx context.Context) string {
	defer func() {
		if m.drain != nil {
			m.drain.Stop()
		}
	}()
	m.drainExpired = make(chan struct{}, 1)
	// The caller hears a greeting first, with the disclosure.
	m.requestResponse(ctx, "greeting", m.greeting)
	events := make(chan readResult)
	stop := make(chan struct{})
	defer close(stop)
	go m.read(ctx, events, stop)
	for {
		var r readResult
		select {
		case <-ctx.Done():
			m.log.Warn("shutdown deadline reached; hanging up")
			m.s.hangup(m.call.ID, m.log)
			return metrics.OutcomeFailed
		case r = <-events:
		case <-m.drainExpired:
			m.log.Warn("the final response's audio never stopped; acting anyway")
			if done, outcome := m.finish(ctx); done {
				return outcome
			}
			continue
		}
		switch {
		case errors.Is(r.err, realtime.ErrClosed):
			if m.phase == phaseTransferred {
				return metrics.OutcomeTransferred
			}
			return metrics.OutcomeCompleted
		case errors.Is(r.err, realtime.ErrBadEvent):
			m.s.m.RealtimeErrors.WithLabelValues("bad_event").Inc()
			m.log.Warn("ignoring malformed server event", "err", r.err)
			continue
		case r.err != nil:
			if ctx.Err() != nil {
				m.log.Warn("shutdown deadline reached; hanging up")
				m.s.hangup(m.call.ID, m.log)
				return metrics.OutcomeFailed
			}
			m.s.m.RealtimeErrors.WithLabelValues("sideband_read").Inc()
			m.log.Error("sideband lost", "err", r.err)
			return metrics.OutcomeFailed
		}
		if done, outcome := m.handle(ctx, r.ev); done {
			return outcome
		}
	}
}

type readResult struct {
	ev  realtime.RawEvent
	err error
}

// read forwards server events to the state machine until the connection
// fails or closes.
func (m *callMachine) read(ctx context.Context, out chan<- readResult, stop <-chan struct{}) {
	for {
		ev, err := m.conn.NextEvent(ctx)
		select {
		case out <- readResult{ev, err}:
		case <-stop:
			return
		}
		if err != nil && !errors.Is(err, realtime.ErrBadEvent) {
			return
		}
	}
}

// handle is the transition function. Events are decoded into the SDK's
// event types; only those the machine acts on are decoded at all.
func (m *callMachine) handle(ctx context.Context, raw realtime.RawEvent) (bool, string) {
	decode := func(v any) bool {
		if err := raw.Decode(v); err != nil {
			m.s.m.RealtimeErrors.WithLabelValues("bad_event").Inc()
			m.log.Warn("ignoring malformed server event", "err", err)
			return false
		}
		return true
	}
	switch raw.Type {
	case realtime.EventError:
		var ev oarealtime.RealtimeErrorEvent
		if decode(&ev) {
			m.apiError(ev.Error)
		}
	case realtime.EventResponseCreated:
		var ev oarealtime.ResponseCreatedEvent
		if decode(&ev) {
			m.responseCreated(ev.Response)
		}
	case realtime.EventResponseFunctionCallArgsDone:
		var ev oarealtime.ResponseFunctionCallArgumentsDoneEvent
		if decode(&ev) {
			m.runTool(ctx, ev.CallID, ev.Name, ev.Arguments)
		}
	case realtime.EventResponseDone:
		var ev oarealtime.ResponseDoneEvent
		if decode(&ev) {
			return m.responseDone(ctx, ev.Response)
		}
	case realtime.EventOutputAudioBufferStopped:
		var ev oarealtime.RealtimeServerEventOutputAudioBufferStopped
		if decode(&ev) && ev.ResponseID == m.final && m.final != "" {
			return m.finish(ctx)
		}
	case realtime.EventOutputAudioBufferCleared:
		var ev oarealtime.RealtimeServerEventOutputAudioBufferCleared
		if decode(&ev) && ev.ResponseID == m.final && m.final != "" {
			return m.interrupted(ctx)
		}
	case realtime.EventInputAudioTranscriptionDone:
		var ev oarealtime.ConversationItemInputAudioTranscriptionCompletedEvent
		if decode(&ev) {
			// Transcripts are health information: log their shape, never text.
			m.log.Info("caller turn", "chars", len(ev.Transcript), "phase", m.phase.String())
		}
	case realtime.EventResponseOutputAudioTranscript:
		var ev oarealtime.ResponseAudioTranscriptDoneEvent
		if decode(&ev) {
			m.log.Info("agent turn", "chars", len(ev.Transcript))
		}
	case realtime.EventSessionCreated, realtime.EventSessionUpdated:
		m.log.Info("session event", "type", raw.Type)
	}
	return false, ""
}

func (m *callMachine) apiError(e oarealtime.RealtimeError) {
	m.s.m.RealtimeErrors.WithLabelValues(metricLabel(e.Type)).Inc()
	m.log.Error("realtime error event", "type", e.Type, "code", e.Code, "message", e.Message, "client_event_id", e.EventID)
	if p, ours := m.purpose[e.EventID]; ours {
		// Our response.create was refused (e.g. a response started by
		// turn detection got there first): a follow-up is asked for again
		// when the active response is done.
		m.inflight = slices.DeleteFunc(m.inflight, func(id string) bool { return id == e.EventID })
		m.wantResponse = m.wantResponse || p != "greeting"
		if m.finalCreate == e.EventID {
			m.finalCreate = "" // asked for again
		}
	}
}

func (m *callMachine) responseCreated(r oarealtime.RealtimeResponse) {
	m.active = r.ID
	// Our responses carry the event_id of their response.create in their
	// metadata; others were started by turn detection.
	if req := r.Metadata[realtime.MetadataRequest]; req != "" && slices.Contains(m.inflight, req) {
		m.inflight = slices.DeleteFunc(m.inflight, func(id string) bool { return id == req })
		if req == m.finalCreate {
			m.final = r.ID
		}
	}
}

func (m *callMachine) responseDone(ctx context.Context, r oarealtime.RealtimeResponse) (bool, string) {
	if r.ID == m.active {
		m.active = ""
	}
	// Function calls the arguments.done events did not announce.
	for _, it := range r.Output {
		if fc, ok := it.AsAny().(oarealtime.RealtimeConversationItemFunctionCall); ok && fc.CallID != "" {
			m.runTool(ctx, fc.CallID, fc.Name, fc.Arguments)
		}
	}
	m.log.Info("response done", "status", string(r.Status), "phase", m.phase.String())
	if r.ID == m.final && m.final != "" {
		m.finalDone = true
		for _, it := range r.Output {
			_, spoken := it.AsAny().(oarealtime.RealtimeConversationItemAssistantMessage)
			m.finalSpoken = m.finalSpoken || spoken
		}
		switch {
		case r.Status == oarealtime.RealtimeResponseStatusCancelled && m.phase == phaseClosing:
			return m.interrupted(ctx) // the caller spoke before the goodbye
		case !m.finalSpoken || r.Status != oarealtime.RealtimeResponseStatusCompleted:
			return m.finish(ctx) // nothing to wait for
		default:
			m.drain = time.AfterFunc(AudioDrainTimeout, func() { m.drainExpired <- struct{}{} })
		}
	}
	if m.wantResponse {
		m.askFollowUp(ctx)
	}
	return false, ""
}

// askFollowUp requests the response that speaks the tool outputs; in the
// closing and transferring phases it is the final response.
func (m *callMachine) askFollowUp(ctx context.Context) {
	id := m.requestResponse(ctx, "follow-up", "")
	if id != "" && m.phase != phaseTalking && m.final == "" && m.finalCreate == "" {
		m.finalCreate = id
	}
}

// finish ends the call once the final response's audio has played: hang
// up (closing) or REFER (transferring).
func (m *callMachine) finish(ctx context.Context) (bool, string) {
	switch m.phase {
	case phaseClosing:
		m.s.hangup(m.call.ID, m.log)
		return true, metrics.OutcomeCompleted
	case phaseTransferring:
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := m.s.calls.Transfer(tctx, m.call.ID, m.transferTo)
		cancel()
		if err == nil {
			m.log.Info("call transferred")
			m.phase = phaseTransferred
			return false, "" // the API ends the call when the transfer completes
		}
		m.log.Error("transfer failed", "err", err)
		m.phase, m.final, m.finalCreate, m.finalSpoken, m.finalDone = phaseTalking, "", "", false, false
		m.transferTo = ""
		m.send(ctx, realtime.SystemMessageEvent(m.eventID("item"),
			"The transfer failed. Stay with the caller. If they signalled any risk, remind them they can call or text "+session.CrisisLine+" any time, and 911 if in immediate danger. Do not end the call."))
		m.requestResponse(ctx, "follow-up", "")
	}
	return false, ""
}

// interrupted: the caller spoke over the final response.
func (m *callMachine) interrupted(ctx context.Context) (bool, string) {
	if m.phase == phaseTransferring {
		return m.finish(ctx) // a transfer goes ahead: they asked for it, or are at risk
	}
	m.log.Info("the caller interrupted the goodbye; the call goes on")
	m.phase, m.final, m.finalCreate, m.finalSpoken, m.finalDone = phaseTalking, "", "", false, false
	if m.drain != nil {
		m.drain.Stop()
	}
	return false, ""
}

func (m *callMachine) runTool(ctx context.Context, callID, name, args string) {
	if m.handled[callID] {
		return
	}
	m.handled[callID] = true
	start := time.Now()
	var res tools.Result
	if msg := m.s.checkArguments(name, args); msg != "" {
		res = tools.Result{Output: msg}
	} else {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res = m.s.exec.Execute(tctx, m.call, name, args)
		cancel()
	}
	label := metricLabel(name)
	m.s.m.ToolDuration.WithLabelValues(label).Observe(time.Since(start).Seconds())
	m.s.m.ToolCalls.WithLabelValues(label, res.Kind()).Inc()
	attrs := []any{"tool", name, "result", res.Kind(), "ms", time.Since(start).Milliseconds()}
	if res.Err != nil {
		m.log.Error("tool failed", append(attrs, "err", res.Err)...)
	} else {
		m.log.Info("tool call", attrs...)
	}
	m.send(ctx, realtime.FunctionCallOutputEvent(m.eventID("item"), callID, res.Output))
	m.wantResponse = true
	target := m.s.transfers.take(m.call.ID)
	switch {
	case res.Transfer && target != "" && m.phase != phaseTransferred:
		// The response that speaks this output is the one to wait for
		// (even if a goodbye was under way).
		m.phase, m.transferTo = phaseTransferring, target
		m.final, m.finalCreate, m.finalSpoken, m.finalDone = "", "", false, false
		if m.drain != nil {
			m.drain.Stop()
		}
	case res.EndCall && m.phase == phaseTalking:
		m.phase = phaseClosing
	}
	if m.active == "" {
		m.askFollowUp(ctx)
	}
}

// checkArguments refuses empty or malformed tool arguments before
// anything runs: the model gets an error message and asks again.
// escalate_crisis is exempt on purpose: a caller at risk is always
// transferred, whatever the arguments.
func (s *Service) checkArguments(name, args string) string {
	if name == session.ToolCrisisEscalation {
		return ""
	}
	t, ok := s.config.Tool(name)
	if !ok {
		return "" // the executor answers unknown tools
	}
	bad := func(msg string) string {
		b, _ := json.Marshal(map[string]string{"error": msg})
		return string(b)
	}
	var obj map[string]json.RawMessage
	if strings.TrimSpace(args) == "" {
		return bad(fmt.Sprintf("arguments are empty: send one JSON object matching the %s parameters ({} if it needs none)", name))
	}
	if err := json.Unmarshal([]byte(args), &obj); err != nil || obj == nil {
		return bad(fmt.Sprintf("arguments are not valid for this tool: send one JSON object matching the %s parameters", name))
	}
	var schema struct {
		Required []string `json:"required"`
	}
	_ = json.Unmarshal(t.Parameters, &schema)
	var missing []string
	for _, r := range schema.Required {
		v, ok := obj[r]
		if !ok || string(v) == `""` || string(v) == "null" {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return bad(fmt.Sprintf("arguments are not valid for this tool: missing %s; ask the caller, then call %s again", strings.Join(missing, ", "), name))
	}
	return ""
}

var known = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range session.DefaultTools() {
		m[t.Name] = true
	}
	for _, t := range []string{"invalid_request_error", "server_error", "rate_limit_error", "authentication_error"} {
		m[t] = true
	}
	return m
}()

// metricLabel bounds label cardinality to known values.
func metricLabel(v string) string {
	if known[v] {
		return v
	}
	return "other"
}
