// Package service is the agent's HTTP service: the OpenAI webhook
// (realtime.call.incoming -> accept or reject), one sideband WebSocket per
// accepted call running the tools, client-secret minting for browsers,
// health, readiness and metrics, and graceful shutdown.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gitlab.com/acme/voice-agent/agent/metrics"
	"gitlab.com/acme/voice-agent/agent/realtime"
	"gitlab.com/acme/voice-agent/agent/schedule"
	"gitlab.com/acme/voice-agent/agent/session"
	"gitlab.com/acme/voice-agent/agent/tools"
	"gitlab.com/acme/voice-agent/agent/webhook"
)

// SIP status codes used to reject calls.
const (
	SIPBusyHere           = 486
	SIPNotAcceptableHere  = 488 // the media offered is not acceptable (not SRTP)
	SIPServiceUnavailable = 503
)

// ClientSecretTTL is the lifetime of minted client secrets.
const ClientSecretTTL = 10 * time.Minute

// Options configure a Service.
type Options struct {
	Calls    *realtime.Calls
	Store    *schedule.Store
	Verifier *webhook.Verifier
	Metrics  *metrics.Metrics
	Logger   *slog.Logger
	Session  session.Config
	MaxCalls int
	// ExecutorOptions are passed to tools.NewExecutor.
	ExecutorOptions []tools.Option
	// Dial opens the sideband; nil means realtime.Dial.
	Dial func(ctx context.Context, wsURL, apiKey string) (*realtime.Conn, error)
	// Version and Commit of the running binary, reported by /healthz so a
	// deploy can wait for the revision it rolled out (`dagger call wait-ready`).
	Version, Commit string
	// Location is the clinic's time zone (nil: UTC): the instructions' today.
	Location *time.Location
	// StaffToken is the bearer token of the staff endpoints
	// (POST /v1/realtime/client-secret, GET /v1/staff/messages); empty
	// disables them (404).
	StaffToken string
	// RequireSRTP rejects calls whose sip_media_security is not "srtp"
	// (SIP 488) instead of accepting them.
	RequireSRTP bool
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Service handles calls. Create it with New.
type Service struct {
	calls    *realtime.Calls
	store    *schedule.Store
	verifier *webhook.Verifier
	m        *metrics.Metrics
	log      *slog.Logger
	exec     *tools.Executor
	// transfers holds the REFER target a tool asked for until the call's
	// state machine sends it (after the caller heard the message).
	transfers *deferredTransfers
	config    session.Config
	dial      func(ctx context.Context, wsURL, apiKey string) (*realtime.Conn, error)
	health    []byte
	loc       *time.Location
	staff     staffAuth
	srtp      bool
	now       func() time.Time

	slots    chan struct{}
	draining atomic.Bool
	active   sync.WaitGroup
	ctx      context.Context // cancelled when calls must stop
	cancel   context.CancelFunc
}

// New checks opts and returns a service.
func New(opts Options) (*Service, error) {
	if opts.Calls == nil || opts.Store == nil || opts.Verifier == nil || opts.Metrics == nil {
		return nil, errors.New("service: Calls, Store, Verifier and Metrics are required")
	}
	if opts.MaxCalls < 1 {
		return nil, errors.New("service: MaxCalls must be at least 1")
	}
	if err := opts.Session.Validate(); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	sessionJSON, err := opts.Session.WithToday(time.Now()).JSON()
	if err != nil {
		return nil, err
	}
	// Every field of the session must survive openai-go's CallAcceptParams.
	if _, err := realtime.AcceptParams(sessionJSON); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Dial == nil {
		opts.Dial = realtime.Dial
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	health, err := json.Marshal(Health{Status: "ok", Version: opts.Version, Commit: opts.Commit})
	if err != nil {
		return nil, fmt.Errorf("service: encode health: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	transfers := &deferredTransfers{CallControl: opts.Calls, targets: map[string]string{}}
	return &Service{
		calls: opts.Calls, store: opts.Store, verifier: opts.Verifier, m: opts.Metrics, log: opts.Logger,
		exec: tools.NewExecutor(opts.Store, transfers, opts.ExecutorOptions...), transfers: transfers,
		config: opts.Session, dial: opts.Dial, health: append(health, '\n'),
		loc: opts.Location, staff: newStaffAuth(opts.StaffToken), srtp: opts.RequireSRTP, now: opts.Now,
		slots: make(chan struct{}, opts.MaxCalls), ctx: ctx, cancel: cancel,
	}, nil
}

// Handler returns the HTTP routes.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/openai/webhook", s.handleWebhook)
	if s.staff.enabled() {
		// Staff endpoints exist only with a token; without one they are 404.
		mux.HandleFunc("POST /v1/realtime/client-secret", s.staff.require(s.handleClientSecret, s.m.ClientSecrets.WithLabelValues("unauthorized").Inc))
		mux.HandleFunc("GET /v1/staff/messages", s.staff.require(s.handleMessages, nil))
	}
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.Registry, promhttp.HandlerOpts{Registry: s.m.Registry}))
	return mux
}

// ActiveCalls returns the number of calls in progress.
func (s *Service) ActiveCalls() int { return len(s.slots) }

// Health is the body of GET /healthz: the process is alive, and which build
// it runs (what `dagger call wait-ready` compares with the deployed commit).
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

func (s *Service) handleHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.health)
}

func (s *Service) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Error("readiness: database unreachable", "err", err)
		http.Error(w, "database unreachable", http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

func (s *Service) handleWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.MaxBodyBytes))
	if err != nil {
		s.m.WebhookFailures.WithLabelValues("body").Inc()
		http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	if err := s.verifier.Verify(body, r.Header); err != nil {
		var we *webhook.Error
		reason := "signature"
		if errors.As(err, &we) {
			reason = we.Reason
		}
		s.m.WebhookFailures.WithLabelValues(reason).Inc()
		s.log.Warn("webhook refused", "reason", reason, "err", err)
		http.Error(w, "invalid webhook signature", http.StatusUnauthorized)
		return
	}
	webhookID := r.Header.Get("webhook-id")
	ev, err := webhook.ParseEvent(body)
	if err != nil {
		s.m.WebhookFailures.WithLabelValues("body").Inc()
		s.log.Warn("webhook body refused", "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if ev.Type != webhook.TypeRealtimeCallIncoming {
		s.m.Webhooks.WithLabelValues(metricType(ev.Type)).Inc()
		s.log.Info("webhook ignored", "type", ev.Type, "event_id", ev.ID)
		w.WriteHeader(http.StatusOK)
		return
	}
	call, err := ev.IncomingCall()
	if err != nil {
		s.m.WebhookFailures.WithLabelValues("body").Inc()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// OpenAI retries a delivery it did not see answered 2xx, and one call
	// can arrive under two webhook-ids: both are answered 200 without a
	// second accept. The claim is in the database, so it holds across a
	// restart.
	claim, err := s.store.ClaimDelivery(r.Context(), webhookID, call.CallID, s.now())
	if err != nil {
		s.log.Error("webhook deduplication failed", "call_id", call.CallID, "err", err)
		http.Error(w, "could not record the webhook", http.StatusServiceUnavailable)
		return
	}
	if claim != schedule.ClaimNew {
		s.m.Webhooks.WithLabelValues(metrics.WebhookDuplicate).Inc()
		s.log.Info("duplicate webhook answered without side effects", "call_id", call.CallID, "event_id", ev.ID, "duplicate", claim.String())
		w.WriteHeader(http.StatusOK)
		return
	}
	s.m.Webhooks.WithLabelValues(metricType(ev.Type)).Inc()
	status, err := s.admitWithPolicy(r.Context(), call)
	if err != nil {
		// Let OpenAI's retry of this delivery through.
		if rerr := s.store.ReleaseDelivery(context.WithoutCancel(r.Context()), webhookID, call.CallID); rerr != nil {
			s.log.Error("webhook claim not released", "call_id", call.CallID, "err", rerr)
		}
		s.log.Error("call not handled", "call_id", call.CallID, "err", err)
		http.Error(w, "call could not be handled", status)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// admitWithPolicy applies the media policy, then admits the call.
func (s *Service) admitWithPolicy(ctx context.Context, call webhook.IncomingCall) (int, error) {
	media := call.MediaSecurity()
	if media != webhook.MediaRTP && media != webhook.MediaSRTP {
		media = "unknown" // omitted or a value this version does not know
	}
	s.log.Info("incoming call", "call_id", call.CallID, "sip_media_security", media)
	if s.srtp && call.MediaSecurity() != webhook.MediaSRTP {
		s.m.Calls.WithLabelValues(metrics.OutcomeRejectedMedia).Inc()
		s.log.Warn("rejecting call: media is not SRTP (VOICE_AGENT_REQUIRE_SRTP=1)", "call_id", call.CallID, "sip_media_security", media)
		if err := s.calls.Reject(ctx, call.CallID, SIPNotAcceptableHere); err != nil {
			return http.StatusBadGateway, err
		}
		return http.StatusOK, nil
	}
	return s.admit(ctx, call)
}

func metricType(t string) string {
	if t == webhook.TypeRealtimeCallIncoming {
		return t
	}
	return "other"
}

// sessionNow is the session configuration for a call starting now: the
// configured one with today's date and time in the clinic's zone added.
func (s *Service) sessionNow() ([]byte, error) {
	return s.config.WithToday(s.now().In(s.loc)).JSON()
}

// admit accepts the call and starts its sideband, or rejects it when at
// capacity or draining.
func (s *Service) admit(ctx context.Context, in webhook.IncomingCall) (int, error) {
	log := s.log.With("call_id", in.CallID)
	if s.draining.Load() {
		s.m.Calls.WithLabelValues(metrics.OutcomeRejectedBusy).Inc()
		log.Info("rejecting call: shutting down")
		if err := s.calls.Reject(ctx, in.CallID, SIPServiceUnavailable); err != nil {
			return http.StatusBadGateway, err
		}
		return http.StatusOK, nil
	}
	select {
	case s.slots <- struct{}{}:
	default:
		s.m.Calls.WithLabelValues(metrics.OutcomeRejectedBusy).Inc()
		log.Warn("rejecting call: at capacity", "max_calls", cap(s.slots))
		if err := s.calls.Reject(ctx, in.CallID, SIPBusyHere); err != nil {
			return http.StatusBadGateway, err
		}
		return http.StatusOK, nil
	}
	body, err := s.sessionNow()
	if err != nil {
		<-s.slots
		return http.StatusInternalServerError, err
	}
	if err := s.calls.Accept(ctx, in.CallID, body); err != nil {
		<-s.slots
		s.m.Calls.WithLabelValues(metrics.OutcomeAcceptFailed).Inc()
		return http.StatusBadGateway, err
	}
	s.m.Calls.WithLabelValues(metrics.OutcomeAccepted).Inc()
	s.m.CallsActive.Inc()
	log.Info("call accepted")
	s.active.Add(1)
	go func() {
		defer s.active.Done()
		defer func() { <-s.slots; s.m.CallsActive.Dec() }()
		outcome := s.runCall(s.ctx, tools.Call{ID: in.CallID, CallerNumber: in.CallerNumber()}, log)
		s.m.Calls.WithLabelValues(outcome).Inc()
		log.Info("call ended", "outcome", outcome)
	}()
	return http.StatusOK, nil
}

// HandleClientSecret mints a client secret for browser/WebRTC clients.
func (s *Service) handleClientSecret(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.log.Info("client secret requested by staff")
	body, err := s.sessionNow()
	if err != nil {
		http.Error(w, "session configuration", http.StatusInternalServerError)
		return
	}
	secret, err := s.calls.MintClientSecret(r.Context(), body, ClientSecretTTL)
	if err != nil {
		s.m.ClientSecrets.WithLabelValues("error").Inc()
		s.log.Error("client secret", "err", err)
		http.Error(w, "could not create a client secret", http.StatusBadGateway)
		return
	}
	s.m.ClientSecrets.WithLabelValues("ok").Inc()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"value": secret.Value, "expires_at": secret.ExpiresAt})
}

// Drain stops admitting calls (they are rejected with SIP 503) and makes
// /readyz fail.
func (s *Service) Drain() { s.draining.Store(true) }

// Shutdown drains, waits for active calls until ctx is done, then hangs up
// the remaining calls and waits for their handlers to return.
func (s *Service) Shutdown(ctx context.Context) error {
	s.Drain()
	done := make(chan struct{})
	go func() { s.active.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
	}
	n := s.ActiveCalls()
	s.cancel()
	<-done
	return fmt.Errorf("service: shutdown deadline reached; hung up %d active call(s)", n)
}
