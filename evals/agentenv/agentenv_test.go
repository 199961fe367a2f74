package agentenv

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/schedule"
	"gitlab.com/acme/voice-agent/agent/session"
	"gitlab.com/acme/voice-agent/agent/tools"
	"gitlab.com/acme/voice-agent/evals/runner"
	"gitlab.com/acme/voice-agent/evals/suite"
)

const threshold = 0.92

func runVoice(t *testing.T, a *Agent) *runner.Report {
	t.Helper()
	s, err := suite.LoadDir("../suites/voice")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(s.Cases), 40, "the voice suite has at least 40 cases")
	a.Dir = t.TempDir()
	r := &runner.Runner{Agent: a, Model: runner.Scripted{}, Mode: "scripted", Opts: runner.Options{Parallel: 4}}
	return r.Run(context.Background(), "voice", s.Cases, threshold)
}

func failedNames(rep *runner.Report) []string {
	var out []string
	for _, c := range rep.Cases {
		if c.Status == runner.StatusFailed {
			out = append(out, c.Name)
		}
	}
	return out
}

func TestVoiceSuitePassesAgainstTheProductionAgent(t *testing.T) {
	rep := runVoice(t, New())
	assert.Empty(t, failedNames(rep))
	assert.Zero(t, rep.Skipped, "every voice case carries a script")
	assert.GreaterOrEqual(t, rep.Score, threshold)
	assert.True(t, rep.Passes())
}

// broken is an executor with one tool replaced.
type broken struct {
	Executor
	tool string
	fn   func(ctx context.Context, call tools.Call, args string) tools.Result
}

func (b broken) Execute(ctx context.Context, call tools.Call, name, args string) tools.Result {
	if name == b.tool {
		return b.fn(ctx, call, args)
	}
	return b.Executor.Execute(ctx, call, name, args)
}

// TestBrokenAgentFailsTheSuite proves the scripted suite checks the agent:
// each variant breaks one tool the way a plausible regression would, and
// the suite must fall below the threshold, naming the cases it caught.
func TestBrokenAgentFailsTheSuite(t *testing.T) {
	variants := []struct {
		name string
		wrap func(Executor, *schedule.Store) Executor
		// mustFail are cases that must catch this regression.
		mustFail []string
	}{
		{
			name: "book_appointment reports success without booking",
			wrap: func(ex Executor, _ *schedule.Store) Executor {
				return broken{ex, session.ToolBookAppointment, func(context.Context, tools.Call, string) tools.Result {
					return tools.Result{Output: `{"booked":true,"appointment_id":"apt_000000000fff"}`}
				}}
			},
			mustFail: []string{"book-first-available-with-provider", "book-same-slot-twice-in-one-call", "reschedule-same-provider-later"},
		},
		{
			name: "escalate_crisis answers but does not transfer",
			wrap: func(ex Executor, _ *schedule.Store) Executor {
				return broken{ex, session.ToolCrisisEscalation, func(context.Context, tools.Call, string) tools.Result {
					return tools.Result{Output: `{"transferred":true,"crisis_line":"988"}`, Transfer: true}
				}}
			},
			mustFail: []string{"crisis-explicit-suicidal-ideation", "crisis-mid-booking", "crisis-escalation-with-malformed-arguments"},
		},
		{
			name: "escalate_crisis validates its arguments strictly",
			wrap: func(ex Executor, _ *schedule.Store) Executor {
				return broken{ex, session.ToolCrisisEscalation, func(ctx context.Context, call tools.Call, args string) tools.Result {
					var v map[string]any
					if json.Unmarshal([]byte(args), &v) != nil {
						return tools.Result{Output: `{"error":"arguments are not valid"}`}
					}
					return ex.Execute(ctx, call, session.ToolCrisisEscalation, args)
				}}
			},
			mustFail: []string{"crisis-escalation-with-malformed-arguments"},
		},
		{
			name: "cancel_appointment ignores the patient name",
			wrap: func(ex Executor, store *schedule.Store) Executor {
				return broken{ex, session.ToolCancelAppointment, func(ctx context.Context, call tools.Call, args string) tools.Result {
					var a struct {
						ID string `json:"appointment_id"`
					}
					_ = json.Unmarshal([]byte(args), &a)
					st, _ := store.Snapshot(ctx)
					for _, ap := range st.Appointments {
						if ap.ID == a.ID {
							b, _ := json.Marshal(map[string]string{"appointment_id": a.ID, "patient_name": ap.PatientName})
							return ex.Execute(ctx, call, session.ToolCancelAppointment, string(b))
						}
					}
					return ex.Execute(ctx, call, session.ToolCancelAppointment, args)
				}}
			},
			mustFail: []string{"cancel-someone-elses-appointment-refused", "cancel-name-mismatch-then-corrected"},
		},
		{
			name: "check_availability leaks who holds booked slots",
			wrap: func(ex Executor, store *schedule.Store) Executor {
				return broken{ex, session.ToolCheckAvailability, func(ctx context.Context, call tools.Call, args string) tools.Result {
					r := ex.Execute(ctx, call, session.ToolCheckAvailability, args)
					st, _ := store.Snapshot(ctx)
					var names []string
					for _, ap := range st.Appointments {
						names = append(names, ap.PatientName)
					}
					r.Output = strings.TrimSuffix(r.Output, "}") + `,"booked_by":"` + strings.Join(names, ", ") + `"}`
					return r
				}}
			},
			mustFail: []string{"privacy-availability-output-has-no-patients", "reschedule-to-taken-time-without-leaking"},
		},
		{
			name: "check_availability ignores existing bookings",
			wrap: func(ex Executor, store *schedule.Store) Executor {
				return broken{ex, session.ToolCheckAvailability, func(ctx context.Context, call tools.Call, args string) tools.Result {
					var a struct {
						Date       string `json:"date"`
						ProviderID string `json:"provider_id"`
					}
					if json.Unmarshal([]byte(args), &a) != nil {
						return ex.Execute(ctx, call, session.ToolCheckAvailability, args)
					}
					st, _ := store.Snapshot(ctx)
					var slots []map[string]string
					for _, s := range st.Slots {
						if s.Start.Format("2006-01-02") == a.Date && (a.ProviderID == "" || s.ProviderID == a.ProviderID) {
							slots = append(slots, map[string]string{"slot_id": s.ID})
						}
					}
					b, _ := json.Marshal(map[string]any{"date": a.Date, "slots": slots})
					return tools.Result{Output: string(b)}
				}}
			},
			mustFail: []string{"book-first-available-with-provider", "ambiguous-tomorrow-morning"},
		},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			a := New()
			a.Wrap = v.wrap
			rep := runVoice(t, a)
			failed := failedNames(rep)
			assert.False(t, rep.Passes(), "the gate must fail")
			for _, name := range v.mustFail {
				assert.Contains(t, failed, name)
			}
			t.Logf("score %.3f, %d failed: %v", rep.Score, len(failed), failed)
			for _, c := range rep.Cases {
				if c.Status == runner.StatusFailed {
					a := c.Attempts[0]
					assert.True(t, a.Error != "" || len(a.Failures) > 0, "%s failed without saying why", c.Name)
				}
			}
		})
	}
}

func TestEnvRecordsTransfersAndSeedsState(t *testing.T) {
	ctx := context.Background()
	a := New()
	a.Dir = t.TempDir()
	cases, err := suite.Parse("c.yaml", []byte("name: x\nstate:\n  providers: [{id: p, name: P}]\nturns: [{caller: hi}]\n"))
	require.NoError(t, err)
	env, err := a.Open(ctx, cases[0])
	require.NoError(t, err)
	defer func() { require.NoError(t, env.Close()) }()
	r := env.Execute(ctx, "c1", session.ToolCrisisEscalation, `{"risk":"self_harm"}`)
	require.NoError(t, r.Err)
	assert.True(t, r.Transfer)
	r = env.Execute(ctx, "c2", session.ToolTransferToHuman, `{"reason":"billing"}`)
	assert.True(t, r.Transfer, r.Output)
	r = env.Execute(ctx, "c3", session.ToolEndCall, `{}`)
	assert.True(t, r.EndCall)
	st, err := env.State(ctx)
	require.NoError(t, err)
	assert.Len(t, st.(schedule.State).Providers, 1)

	sess := a.Session()
	assert.Equal(t, session.DefaultModel, sess.Model)
	assert.Equal(t, session.CrisisLine, sess.CrisisLine)
	assert.Contains(t, sess.ToolNames(), session.ToolBookAppointment)
	obj, err := sess.Object("gpt-test", time.Date(2026, time.December, 1, 9, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	var o map[string]any
	require.NoError(t, json.Unmarshal(obj, &o))
	assert.Equal(t, "gpt-test", o["model"])
	assert.Contains(t, o["instructions"], "Today is Tuesday, 1 December 2026", "the case's clock is the model's today")
	assert.Equal(t, []any{"text"}, o["output_modalities"])
}

func TestOpenRejectsABadSeed(t *testing.T) {
	a := New()
	a.Dir = t.TempDir()
	cases, err := suite.Parse("c.yaml", []byte("name: x\nstate:\n  slots: [{id: s, provider_id: nobody, start: 2026-12-01T09:00:00Z, end: 2026-12-01T10:00:00Z}]\nturns: [{caller: hi}]\n"))
	require.NoError(t, err)
	_, err = a.Open(context.Background(), cases[0])
	assert.ErrorContains(t, err, "seed the case's state")
}
