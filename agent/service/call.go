package service

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"gitlab.com/acme/voice-agent/agent/metrics"
	"gitlab.com/acme/voice-agent/agent/realtime"
	"gitlab.com/acme/voice-agent/agent/session"
	"gitlab.com/acme/voice-agent/agent/tools"
)

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
	h := callHandler{s: s, call: call, conn: conn, log: log, handled: map[string]bool{}}
	return h.run(ctx)
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

type callHandler struct {
	s       *Service
	call    tools.Call
	conn    *realtime.Conn
	log     *slog.Logger
	handled map[string]bool // function call ids already answered

	outputsPending bool // function outputs sent since the last response.create
	endRequested   bool // end_call ran: hang up after the goodbye response
	hangupArmed    bool // the goodbye response was requested
	transferred    bool
}

func (h *callHandler) run(ctx context.Context) string {
	for {
		ev, err := h.conn.Next(ctx)
		switch {
		case errors.Is(err, realtime.ErrClosed):
			if h.transferred {
				return metrics.OutcomeTransferred
			}
			return metrics.OutcomeCompleted
		case errors.Is(err, realtime.ErrBadEvent):
			h.s.m.RealtimeErrors.WithLabelValues("bad_event").Inc()
			h.log.Warn("ignoring malformed server event", "err", err)
			continue
		case err != nil:
			if ctx.Err() != nil {
				h.log.Warn("shutdown deadline reached; hanging up")
				h.s.hangup(h.call.ID, h.log)
				return metrics.OutcomeFailed
			}
			h.s.m.RealtimeErrors.WithLabelValues("sideband_read").Inc()
			h.log.Error("sideband lost", "err", err)
			if h.transferred {
				return metrics.OutcomeTransferred
			}
			return metrics.OutcomeFailed
		}
		if done, outcome := h.handle(ctx, ev); done {
			return outcome
		}
	}
}

func (h *callHandler) handle(ctx context.Context, ev realtime.ServerEvent) (bool, string) {
	switch ev.Type {
	case realtime.EventError:
		h.s.m.RealtimeErrors.WithLabelValues(metricLabel(ev.Error.Type)).Inc()
		h.log.Error("realtime error event", "type", ev.Error.Type, "code", ev.Error.Code, "message", ev.Error.Message, "client_event_id", ev.Error.EventID)
	case realtime.EventResponseFunctionCallArgsDone:
		h.runTool(ctx, ev.CallID, ev.Name, ev.Arguments)
	case realtime.EventResponseDone:
		// Function calls the arguments.done event did not announce.
		for _, it := range ev.FunctionCalls() {
			h.runTool(ctx, it.CallID, it.Name, it.Arguments)
		}
		status := ""
		if ev.Response != nil {
			status = ev.Response.Status
		}
		h.log.Info("response done", "status", status)
		if h.transferred {
			return false, ""
		}
		if h.hangupArmed {
			h.s.hangup(h.call.ID, h.log)
			return true, metrics.OutcomeCompleted
		}
		if h.outputsPending {
			h.outputsPending = false
			if err := h.conn.Send(ctx, realtime.NewResponseCreate()); err != nil {
				h.log.Error("sending response.create failed", "err", err)
			}
			if h.endRequested {
				h.hangupArmed = true
			}
		}
	case realtime.EventInputAudioTranscriptionDone:
		// Transcripts are health information: log their shape, never text.
		h.log.Info("caller turn", "chars", len(ev.Transcript))
	case realtime.EventResponseOutputAudioTranscript, realtime.EventResponseOutputTextDone:
		h.log.Info("agent turn", "chars", len(ev.Transcript)+len(ev.Text))
	case realtime.EventSessionCreated, realtime.EventSessionUpdated:
		h.log.Info("session event", "type", ev.Type)
	}
	return false, ""
}

func (h *callHandler) runTool(ctx context.Context, callID, name, args string) {
	if h.handled[callID] {
		return
	}
	h.handled[callID] = true
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	start := time.Now()
	res := h.s.exec.Execute(tctx, h.call, name, args)
	cancel()
	label := metricLabel(name)
	h.s.m.ToolDuration.WithLabelValues(label).Observe(time.Since(start).Seconds())
	h.s.m.ToolCalls.WithLabelValues(label, res.Kind()).Inc()
	attrs := []any{"tool", name, "result", res.Kind(), "ms", time.Since(start).Milliseconds()}
	if res.Err != nil {
		h.log.Error("tool failed", append(attrs, "err", res.Err)...)
	} else {
		h.log.Info("tool call", attrs...)
	}
	if err := h.conn.Send(ctx, realtime.NewFunctionCallOutput(callID, res.Output)); err != nil {
		h.log.Error("sending function_call_output failed", "err", err)
		return
	}
	h.outputsPending = true
	h.transferred = h.transferred || res.Transfer
	h.endRequested = h.endRequested || res.EndCall
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
