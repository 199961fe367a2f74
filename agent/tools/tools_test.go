package tools_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/schedule"
	"gitlab.com/acme/voice-agent/agent/session"
	"gitlab.com/acme/voice-agent/agent/tools"
)

type recorder struct {
	mu        sync.Mutex
	transfers []string
	hangups   []string
	fail      error
}

func (r *recorder) Transfer(_ context.Context, callID, target string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.transfers = append(r.transfers, callID+"->"+target)
	return r.fail
}

func (r *recorder) Hangup(_ context.Context, callID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hangups = append(r.hangups, callID)
	return r.fail
}

var day = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func setup(t *testing.T, opts ...tools.Option) (*tools.Executor, *schedule.Store, *recorder) {
	t.Helper()
	ctx := context.Background()
	store, err := schedule.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	require.NoError(t, store.Seed(ctx, schedule.State{
		Providers: []schedule.Provider{{ID: "p1", Name: "Dr. One"}},
		Slots: []schedule.Slot{
			{ID: "s1", ProviderID: "p1", Start: day.Add(9 * time.Hour), End: day.Add(10 * time.Hour)},
			{ID: "s2", ProviderID: "p1", Start: day.Add(11 * time.Hour), End: day.Add(12 * time.Hour)},
			{ID: "old", ProviderID: "p1", Start: day.Add(-48 * time.Hour), End: day.Add(-47 * time.Hour)},
		},
	}))
	rec := &recorder{}
	opts = append([]tools.Option{tools.WithClock(func() time.Time { return day.Add(-24 * time.Hour) })}, opts...)
	return tools.NewExecutor(store, rec, opts...), store, rec
}

func out(t *testing.T, r tools.Result) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Output), &m), "output must be JSON: %s", r.Output)
	return m
}

var call = tools.Call{ID: "rtc_1", CallerNumber: "+15550001111"}

func TestCheckBookCancelFlow(t *testing.T) {
	ctx := context.Background()
	ex, store, _ := setup(t)

	r := ex.Execute(ctx, call, session.ToolCheckAvailability, `{"date":"2026-12-01"}`)
	require.NoError(t, r.Err)
	assert.Equal(t, "ok", r.Kind())
	slots := out(t, r)["slots"].([]any)
	require.Len(t, slots, 2)
	assert.Equal(t, "s1", slots[0].(map[string]any)["slot_id"])
	assert.Equal(t, "Dr. One", slots[0].(map[string]any)["provider"])

	r = ex.Execute(ctx, call, session.ToolBookAppointment, `{"slot_id":"s1","patient_name":"Jo Roe","reason":"intake"}`)
	require.NoError(t, r.Err)
	m := out(t, r)
	assert.Equal(t, true, m["booked"])
	id := m["appointment_id"].(string)

	snap, err := store.Snapshot(ctx)
	require.NoError(t, err)
	require.Len(t, snap.Appointments, 1)
	assert.Equal(t, "+15550001111", snap.Appointments[0].PatientPhone, "caller number stored with the booking")
	assert.Equal(t, "rtc_1", snap.Appointments[0].CallID)
	assert.NotContains(t, r.Output, "5550001111", "the caller's number is never returned to the model")

	r = ex.Execute(ctx, call, session.ToolBookAppointment, `{"slot_id":"s1","patient_name":"Other"}`)
	assert.Equal(t, "invalid", r.Kind())
	assert.Contains(t, out(t, r)["error"], "just booked")

	r = ex.Execute(ctx, call, session.ToolCheckAvailability, `{"date":"2026-12-01"}`)
	assert.Len(t, out(t, r)["slots"], 1)

	r = ex.Execute(ctx, call, session.ToolCancelAppointment, `{"appointment_id":"`+id+`","patient_name":"Wrong"}`)
	assert.Contains(t, out(t, r)["error"], "does not match")
	r = ex.Execute(ctx, call, session.ToolCancelAppointment, `{"appointment_id":"`+id+`","patient_name":"jo roe"}`)
	require.NoError(t, r.Err)
	assert.Equal(t, true, out(t, r)["cancelled"])
}

func TestInvalidArgumentsBecomeErrorOutput(t *testing.T) {
	ctx := context.Background()
	ex, _, rec := setup(t)
	cases := []struct{ name, tool, args, want string }{
		{"not json", session.ToolBookAppointment, `{"slot_id":`, "not valid"},
		{"array", session.ToolCheckAvailability, `[1,2]`, "not valid"},
		{"unknown field", session.ToolCheckAvailability, `{"date":"2026-12-01","x":1}`, "unknown field"},
		{"two objects", session.ToolCheckAvailability, `{"date":"2026-12-01"}{}`, "single JSON object"},
		{"bad date", session.ToolCheckAvailability, `{"date":"tomorrow"}`, "YYYY-MM-DD"},
		{"past date", session.ToolCheckAvailability, `{"date":"2020-01-01"}`, "in the past"},
		{"unknown provider", session.ToolCheckAvailability, `{"date":"2026-12-01","provider_id":"zz"}`, "known providers: p1"},
		{"missing fields", session.ToolBookAppointment, `{}`, "slot_id, patient_name"},
		{"unknown slot", session.ToolBookAppointment, `{"slot_id":"nope","patient_name":"A"}`, "does not exist"},
		{"past slot", session.ToolBookAppointment, `{"slot_id":"old","patient_name":"A"}`, "in the past"},
		{"wrong type", session.ToolBookAppointment, `{"slot_id":7,"patient_name":"A"}`, "not valid"},
		{"unknown appointment", session.ToolCancelAppointment, `{"appointment_id":"apt_x","patient_name":"A"}`, "no booked appointment"},
		{"unknown tool", "rm_rf", `{}`, "unknown tool"},
		{"no front desk", session.ToolTransferToHuman, `{"reason":"billing"}`, "no staff line"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ex.Execute(ctx, call, tc.tool, tc.args)
			assert.NoError(t, r.Err)
			assert.Equal(t, "invalid", r.Kind())
			assert.Contains(t, out(t, r)["error"], tc.want)
			assert.False(t, r.Transfer)
		})
	}
	assert.Empty(t, rec.transfers)
}

func TestTransferAndEndCall(t *testing.T) {
	ctx := context.Background()
	ex, _, rec := setup(t, tools.WithFrontDesk("sip:frontdesk@clinic.example"))
	r := ex.Execute(ctx, call, session.ToolTransferToHuman, `{"reason":"billing question"}`)
	require.NoError(t, r.Err)
	assert.True(t, r.Transfer)
	assert.Equal(t, []string{"rtc_1->sip:frontdesk@clinic.example"}, rec.transfers)

	r = ex.Execute(ctx, call, session.ToolEndCall, `{"reason":"done"}`)
	assert.True(t, r.EndCall)
	assert.Empty(t, rec.hangups, "Execute never hangs up itself")

	rec.fail = errors.New("refer failed")
	r = ex.Execute(ctx, call, session.ToolTransferToHuman, `{"reason":"x"}`)
	assert.Error(t, r.Err)
	assert.False(t, r.Transfer)
	assert.Equal(t, "error", r.Kind())
}

func TestCrisisAlwaysTransfersAndOffersLine(t *testing.T) {
	ctx := context.Background()
	for _, args := range []string{`{"risk":"self_harm"}`, `garbage`, `{"risk":"weird"}`, ``} {
		ex, _, rec := setup(t)
		r := ex.Execute(ctx, call, session.ToolCrisisEscalation, args)
		require.NoError(t, r.Err, args)
		assert.True(t, r.Transfer, args)
		assert.Equal(t, "988", out(t, r)["crisis_line"])
		assert.Equal(t, []string{"rtc_1->tel:988"}, rec.transfers)
	}
	ex, _, rec := setup(t, tools.WithCrisisTarget("sip:crisis@clinic.example"))
	rec.fail = errors.New("down")
	r := ex.Execute(ctx, call, session.ToolCrisisEscalation, `{"risk":"self_harm"}`)
	assert.Error(t, r.Err)
	assert.False(t, r.Transfer)
	assert.Contains(t, out(t, r)["instruction"], "988")
	assert.Contains(t, out(t, r)["instruction"], "Do not end the call")
}

func FuzzExecute(f *testing.F) {
	for _, s := range []string{`{"date":"2026-12-01"}`, `{"slot_id":"s1","patient_name":"A"}`, `{}`, `null`, `[]`, `"x"`, `{"appointment_id":"a","patient_name":"b"}`} {
		for i := range 7 {
			f.Add(uint8(i), s)
		}
	}
	store, err := schedule.Open(context.Background(), filepath.Join(f.TempDir(), "f.db"))
	require.NoError(f, err)
	f.Cleanup(func() { _ = store.Close() })
	ex := tools.NewExecutor(store, &recorder{}, tools.WithFrontDesk("sip:x@y"))
	names := []string{session.ToolCheckAvailability, session.ToolBookAppointment, session.ToolCancelAppointment, session.ToolTransferToHuman, session.ToolEndCall, session.ToolCrisisEscalation, session.ToolTakeMessage}
	f.Fuzz(func(t *testing.T, which uint8, args string) {
		r := ex.Execute(context.Background(), call, names[int(which)%len(names)], args)
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.Output), &m), "output must always be a JSON object")
	})
}
