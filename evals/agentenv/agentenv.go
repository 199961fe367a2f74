// Package agentenv plugs the production agent packages into the eval
// runner: the session configuration (agent/session), a schedule store
// (agent/schedule) seeded per conversation in a temporary SQLite file, and
// the tool executor (agent/tools) with a call control that records
// transfers and hangups instead of touching a phone line.
package agentenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"encoding/json"

	"gitlab.com/acme/voice-agent/agent/schedule"
	"gitlab.com/acme/voice-agent/agent/session"
	"gitlab.com/acme/voice-agent/agent/tools"
	"gitlab.com/acme/voice-agent/evals/runner"
	"gitlab.com/acme/voice-agent/evals/suite"
)

// FrontDesk is the transfer target evals configure for transfer_to_human
// (a production deployment configures its own staff line).
const FrontDesk = "sip:frontdesk@clinic.invalid"

// Executor is the tool executor's method set, the seam tests use to run the
// suite against deliberately broken variants of the agent.
type Executor interface {
	Execute(ctx context.Context, call tools.Call, name, argumentsJSON string) tools.Result
}

// Agent is the production agent as the runner sees it.
type Agent struct {
	// Config is the session configuration (default session.Default()).
	Config session.Config
	// Dir holds the per-conversation databases (default os.TempDir()).
	Dir string
	// Wrap, when set, wraps the production executor (tests use it to
	// break a tool and check that the suite notices); it gets the
	// conversation's store too.
	Wrap func(Executor, *schedule.Store) Executor
}

// New returns the production agent.
func New() *Agent { return &Agent{Config: session.Default()} }

// Session returns the agent's session configuration in text mode.
func (a *Agent) Session() runner.Session {
	cfg := a.Config.Text()
	s := runner.Session{Model: cfg.Model, Instructions: cfg.Instructions, CrisisLine: session.CrisisLine}
	for _, t := range cfg.Tools {
		s.Tools = append(s.Tools, runner.ToolDef{Name: t.Name, Description: t.Description, Parameters: t.Parameters})
	}
	s.Object = func(model string, now time.Time) (json.RawMessage, error) {
		c := cfg.WithToday(now)
		c.Model = model
		if err := c.Validate(); err != nil {
			return nil, err
		}
		return c.JSON()
	}
	return s
}

// Open seeds a fresh store with the case's state and returns the tool
// executor over it.
func (a *Agent) Open(ctx context.Context, c *suite.Case) (runner.Env, error) {
	dir, err := os.MkdirTemp(a.Dir, "eval-db-*")
	if err != nil {
		return nil, fmt.Errorf("agentenv: temp dir: %w", err)
	}
	store, err := schedule.Open(ctx, filepath.Join(dir, "schedule.db"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := store.Seed(ctx, c.State); err != nil {
		_ = store.Close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("agentenv: seed the case's state: %w", err)
	}
	now := time.Now
	if c.Now != nil {
		t := *c.Now
		now = func() time.Time { return t }
	}
	ctl := &Recorder{}
	var ex Executor = tools.NewExecutor(store, ctl, tools.WithFrontDesk(FrontDesk), tools.WithClock(now))
	if a.Wrap != nil {
		ex = a.Wrap(ex, store)
	}
	return &env{store: store, dir: dir, ex: ex, ctl: ctl, call: tools.Call{ID: "rtc_eval_" + c.Name, CallerNumber: c.CallerNumber}}, nil
}

type env struct {
	store *schedule.Store
	dir   string
	ex    Executor
	ctl   *Recorder
	call  tools.Call
}

func (e *env) Execute(ctx context.Context, callID, name, args string) runner.ToolResult {
	before := e.ctl.count()
	r := e.ex.Execute(ctx, e.call, name, args)
	// A transfer counts when the executor said so and the call control saw
	// the SIP refer: both halves of production behaviour.
	transfer := r.Transfer && e.ctl.count() > before
	return runner.ToolResult{Output: r.Output, Transfer: transfer, EndCall: r.EndCall, Err: r.Err}
}

func (e *env) State(ctx context.Context) (any, error) {
	return e.store.Snapshot(ctx)
}

func (e *env) Close() error {
	err := e.store.Close()
	_ = os.RemoveAll(e.dir)
	return err
}

// Recorder is a tools.CallControl that records what the agent did to the call.
type Recorder struct {
	mu        sync.Mutex
	Transfers []string
	Hangups   int
}

// Transfer records a SIP refer.
func (r *Recorder) Transfer(_ context.Context, _ string, target string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Transfers = append(r.Transfers, target)
	return nil
}

// Hangup records a hangup.
func (r *Recorder) Hangup(context.Context, string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Hangups++
	return nil
}

func (r *Recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.Transfers)
}
