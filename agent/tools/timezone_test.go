package tools_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/schedule"
	"gitlab.com/acme/voice-agent/agent/session"
	"gitlab.com/acme/voice-agent/agent/tools"
)

// utc parses an RFC 3339 UTC time: the seeds are written in UTC, as the
// database stores them, and the expected outputs in the clinic's local
// time, so neither side is computed by the code under test.
func utc(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

type seedSlot struct{ id, startUTC, endUTC string }

// clinic seeds one provider with slots and returns an executor in zone
// whose clock reads nowUTC.
func clinic(t *testing.T, zone, nowUTC string, slots []seedSlot, opts ...tools.Option) (*tools.Executor, *schedule.Store) {
	t.Helper()
	ctx := context.Background()
	loc, err := time.LoadLocation(zone)
	require.NoError(t, err)
	store, err := schedule.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	st := schedule.State{Providers: []schedule.Provider{{ID: "p1", Name: "Dr. One"}}}
	for _, s := range slots {
		st.Slots = append(st.Slots, schedule.Slot{ID: s.id, ProviderID: "p1", Start: utc(t, s.startUTC), End: utc(t, s.endUTC)})
	}
	require.NoError(t, store.Seed(ctx, st))
	now := utc(t, nowUTC)
	opts = append([]tools.Option{tools.WithLocation(loc), tools.WithClock(func() time.Time { return now })}, opts...)
	return tools.NewExecutor(store, &recorder{}, opts...), store
}

type slotView struct{ ID, Start, End string }

func available(t *testing.T, ex *tools.Executor, date string) (string, []slotView) {
	t.Helper()
	r := ex.Execute(context.Background(), call, session.ToolCheckAvailability, `{"date":"`+date+`"}`)
	require.NoError(t, r.Err)
	m := out(t, r)
	require.Nil(t, m["error"], r.Output)
	var got []slotView
	for _, s := range m["slots"].([]any) {
		sm := s.(map[string]any)
		got = append(got, slotView{sm["slot_id"].(string), sm["start"].(string), sm["end"].(string)})
	}
	return m["time_zone"].(string), got
}

// New York, autumn: the clocks go back at 02:00 EDT on Sunday 1 November
// 2026, so that local day has 25 hours and 01:30 happens twice.
func TestNewYorkDaylightSavingEndInsideTheWindow(t *testing.T) {
	ex, _ := clinic(t, "America/New_York", "2026-10-30T16:00:00Z", []seedSlot{
		{"sat_0900", "2026-10-31T13:00:00Z", "2026-10-31T13:50:00Z"},
		{"sat_2200", "2026-11-01T02:00:00Z", "2026-11-01T02:50:00Z"}, // Saturday evening local, Sunday in UTC
		{"sun_0030", "2026-11-01T04:30:00Z", "2026-11-01T05:00:00Z"},
		{"sun_0130_edt", "2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z"},
		{"sun_0130_est", "2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z"},
		{"sun_2330", "2026-11-02T04:30:00Z", "2026-11-02T04:55:00Z"}, // the 25th hour of Sunday
		{"mon_0030", "2026-11-02T05:30:00Z", "2026-11-02T06:00:00Z"},
		{"mon_1800", "2026-11-02T23:00:00Z", "2026-11-02T23:50:00Z"},
	})
	zone, got := available(t, ex, "2026-10-31")
	assert.Equal(t, "America/New_York", zone)
	assert.Equal(t, []slotView{
		{"sat_0900", "2026-10-31T09:00:00-04:00", "2026-10-31T09:50:00-04:00"},
		{"sat_2200", "2026-10-31T22:00:00-04:00", "2026-10-31T22:50:00-04:00"},
	}, got)
	_, got = available(t, ex, "2026-11-01")
	assert.Equal(t, []slotView{
		{"sun_0030", "2026-11-01T00:30:00-04:00", "2026-11-01T01:00:00-04:00"},
		{"sun_0130_edt", "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00"},
		{"sun_0130_est", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"},
		{"sun_2330", "2026-11-01T23:30:00-05:00", "2026-11-01T23:55:00-05:00"},
	}, got)
	_, got = available(t, ex, "2026-11-02")
	assert.Equal(t, []slotView{
		{"mon_0030", "2026-11-02T00:30:00-05:00", "2026-11-02T01:00:00-05:00"},
		{"mon_1800", "2026-11-02T18:00:00-05:00", "2026-11-02T18:50:00-05:00"},
	}, got)

	r := ex.Execute(context.Background(), call, session.ToolBookAppointment, `{"slot_id":"sun_0130_est","patient_name":"Jo Roe"}`)
	require.NoError(t, r.Err)
	m := out(t, r)
	assert.Equal(t, "2026-11-01T01:30:00-05:00", m["start"])
	assert.Equal(t, "2026-11-01T02:00:00-05:00", m["end"])
	assert.Equal(t, "America/New_York", m["time_zone"])
}

// New York, spring: the clocks skip 02:00-03:00 on Sunday 14 March 2027,
// a 23-hour local day.
func TestNewYorkDaylightSavingStart(t *testing.T) {
	ex, _ := clinic(t, "America/New_York", "2027-03-10T15:00:00Z", []seedSlot{
		{"sun_0130", "2027-03-14T06:30:00Z", "2027-03-14T07:00:00Z"},
		{"sun_0330", "2027-03-14T07:30:00Z", "2027-03-14T08:00:00Z"},
		{"sun_2330", "2027-03-15T03:30:00Z", "2027-03-15T04:00:00Z"},
		{"mon_0030", "2027-03-15T04:30:00Z", "2027-03-15T05:00:00Z"}, // inside a 24-hour window from Sunday's midnight
	})
	_, got := available(t, ex, "2027-03-14")
	assert.Equal(t, []slotView{
		{"sun_0130", "2027-03-14T01:30:00-05:00", "2027-03-14T03:00:00-04:00"},
		{"sun_0330", "2027-03-14T03:30:00-04:00", "2027-03-14T04:00:00-04:00"},
		{"sun_2330", "2027-03-14T23:30:00-04:00", "2027-03-15T00:00:00-04:00"},
	}, got)
	_, got = available(t, ex, "2027-03-15")
	assert.Equal(t, []slotView{{"mon_0030", "2027-03-15T00:30:00-04:00", "2027-03-15T01:00:00-04:00"}}, got)
}

// Kolkata is UTC+05:30 all year: its morning is the previous UTC day.
func TestKolkataLocalDays(t *testing.T) {
	ex, _ := clinic(t, "Asia/Kolkata", "2026-12-01T19:30:00Z", []seedSlot{ // 01:00 on 2 December in Kolkata
		{"wed_0400", "2026-12-01T22:30:00Z", "2026-12-01T23:15:00Z"},
		{"wed_0800", "2026-12-02T02:30:00Z", "2026-12-02T03:15:00Z"},
		{"wed_2000", "2026-12-02T14:30:00Z", "2026-12-02T15:15:00Z"},
		{"thu_0100", "2026-12-02T19:30:00Z", "2026-12-02T20:15:00Z"},
	})
	zone, got := available(t, ex, "2026-12-02")
	assert.Equal(t, "Asia/Kolkata", zone)
	assert.Equal(t, []slotView{
		{"wed_0400", "2026-12-02T04:00:00+05:30", "2026-12-02T04:45:00+05:30"},
		{"wed_0800", "2026-12-02T08:00:00+05:30", "2026-12-02T08:45:00+05:30"},
		{"wed_2000", "2026-12-02T20:00:00+05:30", "2026-12-02T20:45:00+05:30"},
	}, got)
	_, got = available(t, ex, "2026-12-03")
	assert.Equal(t, []slotView{{"thu_0100", "2026-12-03T01:00:00+05:30", "2026-12-03T01:45:00+05:30"}}, got)

	// It is already 2 December in the clinic: 1 December is the past,
	// although it is still 1 December in UTC.
	r := ex.Execute(context.Background(), call, session.ToolCheckAvailability, `{"date":"2026-12-01"}`)
	assert.Equal(t, "invalid", r.Kind())
	assert.Equal(t, "date 2026-12-01 is in the past; today is 2026-12-02", out(t, r)["error"])

	r = ex.Execute(context.Background(), call, session.ToolBookAppointment, `{"slot_id":"wed_2000","patient_name":"Asha Rao"}`)
	require.NoError(t, r.Err)
	assert.Equal(t, "2026-12-02T20:00:00+05:30", out(t, r)["start"])
}

func TestTakeMessage(t *testing.T) {
	ctx := context.Background()
	ex, store := clinic(t, "America/New_York", "2026-12-01T15:00:00Z", nil)

	r := ex.Execute(ctx, call, session.ToolTakeMessage, `{"caller_name":"Pat Doe","reason":"billing question"}`)
	require.NoError(t, r.Err)
	assert.Equal(t, "ok", r.Kind())
	m := out(t, r)
	assert.Equal(t, true, m["message_taken"])
	assert.Regexp(t, `^msg_`, m["message_id"])
	assert.NotContains(t, r.Output, "5550001111", "the caller's number is never returned to the model")

	r = ex.Execute(ctx, call, session.ToolTakeMessage, `{"caller_name":"Sam Lee","callback_number":"(555) 010-0199","reason":"reschedule"}`)
	require.NoError(t, r.Err)
	assert.Equal(t, "ok", r.Kind())

	for _, tc := range []struct {
		call       tools.Call
		args, want string
	}{
		{call, `{"reason":"x"}`, "missing required argument(s): caller_name; ask the caller"},
		{call, `{"caller_name":"A","callback_number":"call me maybe","reason":"x"}`, "callback_number is not a phone number"},
		{call, `{"caller_name":"A","callback_number":"123","reason":"x"}`, "callback_number is not a phone number"},
		{tools.Call{ID: "rtc_2", CallerNumber: "anonymous"}, `{"caller_name":"A","reason":"x"}`, "ask for a callback number"},
		{tools.Call{ID: "rtc_3"}, `{"caller_name":"A","reason":"x"}`, "ask for a callback number"},
	} {
		r := ex.Execute(ctx, tc.call, session.ToolTakeMessage, tc.args)
		assert.Equal(t, "invalid", r.Kind(), tc.args)
		assert.Contains(t, out(t, r)["error"], tc.want)
	}

	msgs, err := store.Messages(ctx, time.Time{})
	require.NoError(t, err)
	require.Len(t, msgs, 2, "refused messages are not stored")
	assert.Equal(t, []string{"rtc_1", "Pat Doe", "+15550001111", "billing question"}, []string{msgs[0].CallID, msgs[0].CallerName, msgs[0].CallbackNumber, msgs[0].Reason})
	assert.Equal(t, []string{"Sam Lee", "(555) 010-0199", "reschedule"}, []string{msgs[1].CallerName, msgs[1].CallbackNumber, msgs[1].Reason})
	assert.Equal(t, "2026-12-01T15:00:00Z", msgs[0].CreatedAt.Format(time.RFC3339))
}
