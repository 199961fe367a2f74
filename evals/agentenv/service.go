// Package agentenv runs eval cases as phone calls through the production
// agent service (agent/service) against a loopback Realtime API
// (evals/callsim over agent/realtimetest): the webhook, the accept with the
// production session object, the sideband loop, the tool executor and a
// schedule store seeded per call. The evals never call the tool executor
// themselves.
package agentenv

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"time"

	"gitlab.com/acme/voice-agent/agent/metrics"
	"gitlab.com/acme/voice-agent/agent/realtime"
	"gitlab.com/acme/voice-agent/agent/schedule"
	"gitlab.com/acme/voice-agent/agent/service"
	"gitlab.com/acme/voice-agent/agent/session"
	"gitlab.com/acme/voice-agent/agent/tools"
	"gitlab.com/acme/voice-agent/agent/webhook"
	"gitlab.com/acme/voice-agent/evals/callsim"
	"gitlab.com/acme/voice-agent/evals/replay"
	"gitlab.com/acme/voice-agent/evals/runner"
	"gitlab.com/acme/voice-agent/evals/suite"
)

// FrontDesk is the transfer target evals configure for transfer_to_human
// (a production deployment configures its own staff line).
const FrontDesk = "sip:frontdesk@clinic.invalid"

// loopbackKey is the API key between the agent and the loopback Realtime
// API (not a secret: the loopback server accepts only it).
const loopbackKey = "sk-eval-loopback"

// webhookSecret signs the loopback webhooks (Standard Webhooks whsec_).
var webhookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("eval-loopback-webhook-secret-32b"))

// TurnResponses is a model that knows how many responses each caller turn
// has (a recording; turn 0 is the greeting).
type TurnResponses interface {
	ResponsesIn(turn int) int
}

// ModelFor returns the model side of one case's call.
type ModelFor func(c *suite.Case) (callsim.Model, error)

// Service runs each case as a phone call through the production agent
// service (agent/service: webhook, accept with the production session
// object, sideband loop, tool executor, schedule store), against a
// loopback Realtime API whose model is a replayed recording (scripted) or
// a live model.
type Service struct {
	// Config is the agent's session configuration (default session.Default()).
	Config session.Config
	// Dir holds the per-call databases (default /dev/shm if present, else
	// os.TempDir()).
	Dir string
	// Model gives each case's model side.
	Model ModelFor
	// Logger receives the agent service's logs (default: discarded).
	Logger *slog.Logger
	// AgentWait bounds a wait for the agent's next step (default 5 s; only a
	// silent agent makes a call wait that long).
	AgentWait time.Duration

	once     sync.Once
	api      *callsim.Server
	teardown sync.WaitGroup
}

// NewService returns the production agent service path.
func NewService(m ModelFor) *Service { return &Service{Config: session.Default(), Model: m} }

// Close waits for the calls' teardown and stops the loopback API.
func (a *Service) Close() {
	a.teardown.Wait()
	if a.api != nil {
		a.api.Close()
	}
}

// Session is the agent's session configuration (tool names and crisis line
// for checking cases).
func (a *Service) Session() runner.Session {
	s := runner.Session{Model: a.Config.Model, Instructions: a.Config.Instructions, CrisisLine: session.CrisisLine}
	for _, t := range a.Config.Tools {
		s.Tools = append(s.Tools, runner.ToolDef{Name: t.Name, Description: t.Description, Parameters: t.Parameters})
	}
	return s
}

// Play runs case c as one phone call.
func (a *Service) Play(ctx context.Context, c *suite.Case) (*runner.CallOutcome, error) {
	a.once.Do(func() {
		a.api = callsim.New(loopbackKey)
		if a.AgentWait > 0 {
			a.api.AgentWait = a.AgentWait
		}
	})
	model, err := a.Model(c)
	if err != nil {
		return nil, err
	}
	if cl, ok := model.(io.Closer); ok {
		defer func() { _ = cl.Close() }()
	}
	base := a.Dir
	if base == "" {
		base = memDir()
	}
	dir, err := os.MkdirTemp(base, "eval-call-*")
	if err != nil {
		return nil, fmt.Errorf("agentenv: temp dir: %w", err)
	}
	// The call's teardown (caller hangs up, service shutdown, store
	// closed, files removed) runs after the outcome is read, off the
	// critical path; Close waits for it.
	var cleanup []func()
	a.teardown.Add(1)
	defer func() {
		go func() {
			defer a.teardown.Done()
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}()
	}()
	cleanup = append(cleanup, func() { _ = os.RemoveAll(dir) })
	store, err := schedule.Open(ctx, filepath.Join(dir, "schedule.db"))
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { _ = store.Close() })
	if err := store.Seed(ctx, c.State); err != nil {
		return nil, fmt.Errorf("agentenv: seed the case's state: %w", err)
	}
	loc := time.UTC
	if c.TimeZone != "" {
		if loc, err = time.LoadLocation(c.TimeZone); err != nil {
			return nil, fmt.Errorf("agentenv: time_zone: %w", err)
		}
	}
	now := time.Now
	if c.Now != nil {
		t := *c.Now
		now = func() time.Time { return t }
	}
	verifier, err := webhook.NewVerifier(webhookSecret, nil)
	if err != nil {
		return nil, err
	}
	client := &http.Client{}
	svc, err := service.New(service.Options{
		Calls: realtime.NewCalls(a.api.URL(), loopbackKey, client), Store: store, Verifier: verifier,
		Metrics: metrics.New("eval", ""), Session: a.Config, MaxCalls: 1, Logger: a.Logger,
		Location: loc, Now: now,
		ExecutorOptions: []tools.Option{tools.WithFrontDesk(FrontDesk), tools.WithClock(now), tools.WithLocation(loc)},
		Dial: func(ctx context.Context, u, key string) (*realtime.Conn, error) {
			return realtime.DialWith(ctx, u, key, client)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("agentenv: start the agent service: %w", err)
	}
	web := httptest.NewServer(svc.Handler())
	cleanup = append(cleanup, web.Close, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = svc.Shutdown(sctx)
	})

	call := a.api.NewCall(model)
	from := "sip:anonymous@sip.example"
	if c.CallerNumber != "" {
		from = "<sip:" + c.CallerNumber + "@sip.example>;tag=eval"
	}
	out := &runner.CallOutcome{}
	status, err := call.Deliver(ctx, web.URL+"/v1/openai/webhook", webhookSecret, from)
	if err != nil {
		return nil, fmt.Errorf("agentenv: deliver the incoming-call webhook: %w", err)
	}
	if status/100 != 2 {
		return nil, fmt.Errorf("agentenv: the agent answered the incoming-call webhook with HTTP %d", status)
	}
	if err := call.Connect(ctx); err != nil {
		return nil, fmt.Errorf("agentenv: the agent did not take the call: %w", err)
	}
	cleanup = append(cleanup, call.CallerHangsUp)
	out.Session = call.Session()
	var playErr error
	// A recording knows how many responses each turn has; a live model
	// does not (the turn is over when the call is quiet).
	want := func(turn int) int { return -1 }
	recorded, _ := model.(TurnResponses)
	if recorded != nil {
		want = recorded.ResponsesIn
	}
	if err := call.Greet(ctx, want(0)); err != nil {
		playErr = fmt.Errorf("greeting: %w", err)
	}
	for i, t := range c.Turns {
		if playErr != nil || call.Over() {
			break
		}
		if recorded != nil && want(i+1) == 0 {
			break // the recording ended here (e.g. with a transfer)
		}
		if err := call.CallerSays(ctx, t.Caller, want(i+1)); err != nil {
			playErr = fmt.Errorf("turn %d: %w", i+1, err)
		}
	}
	if playErr == nil && !call.Over() && (isTrue(c.Expect.EndCall) || isTrue(c.Expect.Transfer) || c.Expect.HangupAfterSay != "" || c.Expect.TransferTo != "") {
		call.WaitAction(ctx) // the REFER or hangup comes after the audio
	}
	call.Settle(ctx)
	if err := call.Err(); err != nil && playErr == nil {
		// The model failed after the last turn settled (e.g. the agent
		// asked for a response the recording does not have).
		playErr = fmt.Errorf("after the last turn: %w", err)
	}
	out.Timeline = call.Timeline()
	var st *replay.StaleError
	switch {
	case errors.As(playErr, &st):
		out.Stale = st.Error()
	case playErr != nil:
		out.Err = playErr
	}
	if p, ok := model.(*replay.Player); ok {
		out.Responses = p.Responses()
		if s := p.Stale(); s != nil {
			out.Stale = s.Error()
			out.Err = nil
		}
	}
	if u, ok := usageOf(model); ok {
		out.Usage = u
	}
	for _, ev := range out.Timeline {
		if ev.Kind == "response" && !isReplay(model) {
			out.Responses++
		}
	}
	state, err := store.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("agentenv: read the schedule after the call: %w", err)
	}
	out.State = state
	return out, nil
}

// memDir is /dev/shm when there is one (the per-call SQLite files then
// cost no disk syncs), else the default temp directory.
func memDir() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return ""
}

func usageOf(m callsim.Model) (runner.Usage, bool) {
	if r, ok := m.(*replay.Recorder); ok {
		return usageOf(r.Inner)
	}
	u, ok := m.(interface{ Usage() runner.Usage })
	if !ok {
		return runner.Usage{}, false
	}
	return u.Usage(), true
}

func isTrue(b *bool) bool { return b != nil && *b }

func isReplay(m callsim.Model) bool {
	_, ok := m.(*replay.Player)
	return ok
}
