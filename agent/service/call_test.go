package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/metrics"
	rt "gitlab.com/acme/voice-agent/agent/realtimetest"
	"gitlab.com/acme/voice-agent/agent/session"
)

// last returns the conversation's last item.
func last(req rt.ResponseRequest) rt.Item {
	if len(req.Conversation) == 0 {
		return rt.Item{}
	}
	return req.Conversation[len(req.Conversation)-1]
}

// answered returns the tool whose output is the last item ("" if the last
// item is not a function_call_output).
func answered(req rt.ResponseRequest) (tool, output string) {
	l := last(req)
	if l.Type != "function_call_output" {
		return "", ""
	}
	for _, it := range req.Conversation {
		if it.Type == "function_call" && it.CallID == l.CallID {
			return it.Name, l.Output
		}
	}
	return "?", l.Output
}

// receptionist is a scripted model: it greets when the conversation is
// empty, answers a caller turn with onCaller, and a tool output with
// onOutput.
func receptionist(onCaller func(text string) []rt.Output, onOutput func(tool, output string) []rt.Output) rt.Model {
	return rt.ModelFunc(func(_ context.Context, req rt.ResponseRequest) ([]rt.Output, error) {
		if len(req.Conversation) == 0 {
			return []rt.Output{rt.Say("Hello, you have reached Harbor Behavioral Health. I am an automated assistant. How can I help?")}, nil
		}
		if l := last(req); l.Type == "message" && l.Role == "user" {
			return onCaller(l.Text), nil
		}
		if tool, out := answered(req); tool != "" {
			return onOutput(tool, out), nil
		}
		return nil, nil
	})
}

// toolOutputs returns, per tool name, the function_call_output texts the
// agent sent on the call, in order (from the call's timeline).
func toolOutputs(t testing.TB, call *rt.Call) map[string][]string {
	t.Helper()
	names := map[string]string{}
	for _, e := range call.Events(rt.KindServer, "response.function_call_arguments.done") {
		var ev struct{ CallID, Name string }
		var raw struct {
			CallID string `json:"call_id"`
			Name   string `json:"name"`
		}
		require.NoError(t, json.Unmarshal(e.Raw, &raw))
		ev.CallID, ev.Name = raw.CallID, raw.Name
		names[ev.CallID] = ev.Name
	}
	out := map[string][]string{}
	for _, e := range call.Events(rt.KindClient, "conversation.item.create") {
		var raw struct {
			Item struct {
				Type   string `json:"type"`
				CallID string `json:"call_id"`
				Output string `json:"output"`
			} `json:"item"`
		}
		require.NoError(t, json.Unmarshal(e.Raw, &raw))
		if raw.Item.Type == "function_call_output" {
			out[names[raw.Item.CallID]] = append(out[names[raw.Item.CallID]], raw.Item.Output)
		}
	}
	return out
}

func TestWholeCallBooksAndHangsUp(t *testing.T) {
	h := newHarness(t, 5, 4)
	c := ctx(t)
	call := h.api.NewCall()
	call.SetModel(receptionist(
		func(string) []rt.Output {
			return []rt.Output{rt.CallTool(session.ToolCheckAvailability, `{"date":"2099-03-02"}`)}
		},
		func(tool, out string) []rt.Output {
			switch {
			case tool == session.ToolCheckAvailability:
				return []rt.Output{rt.Say("Dr. One has 9 AM."), rt.CallTool(session.ToolBookAppointment, `{"slot_id":"s001","patient_name":"Jo Roe"}`)}
			case tool == session.ToolBookAppointment && decode(t, out)["booked"] == true:
				return []rt.Output{rt.CallTool(session.ToolBookAppointment, `{"slot_id":`)}
			case tool == session.ToolBookAppointment:
				return []rt.Output{rt.CallTool(session.ToolEndCall, `{"reason":"done"}`)}
			case tool == session.ToolEndCall:
				return []rt.Output{rt.Say("Goodbye!")}
			}
			return nil
		}))
	require.Equal(t, http.StatusOK, h.deliver(t, call))
	require.NoError(t, call.WaitAccepted(c))
	sess := decode(t, string(call.Session()))
	assert.Equal(t, "realtime", sess["type"])
	assert.Equal(t, session.DefaultModel, sess["model"])
	assert.Len(t, sess["tools"], len(session.DefaultTools()))
	require.NoError(t, call.WaitConnected(c))
	greeted(t, c, call)
	require.NoError(t, call.CallerSays(c, "I'd like an appointment on March 2nd."))
	require.NoError(t, call.WaitEnded(c))
	assert.True(t, call.HungUp())

	outs := toolOutputs(t, call)
	require.Len(t, outs[session.ToolCheckAvailability], 1)
	assert.Len(t, decode(t, outs[session.ToolCheckAvailability][0])["slots"], 4)
	require.Len(t, outs[session.ToolBookAppointment], 2)
	assert.Equal(t, true, decode(t, outs[session.ToolBookAppointment][0])["booked"])
	assert.Contains(t, decode(t, outs[session.ToolBookAppointment][1])["error"], "not valid", "invalid arguments are answered, not fatal")
	assert.Len(t, outs[session.ToolEndCall], 1)
	assert.Empty(t, call.Events(rt.KindServer, "error"), "the API never refused an event")

	require.Eventually(t, func() bool { return h.svc.ActiveCalls() == 0 }, 5*time.Second, 5*time.Millisecond)
	snap, err := h.store.Snapshot(c)
	require.NoError(t, err)
	require.Len(t, snap.Appointments, 1)
	assert.Equal(t, "s001", snap.Appointments[0].SlotID)
	assert.Equal(t, "+15550001111", snap.Appointments[0].PatientPhone)
	assert.Equal(t, call.ID, snap.Appointments[0].CallID)
	assert.Equal(t, 1.0, testutil.ToFloat64(h.m.Calls.WithLabelValues(metrics.OutcomeCompleted)))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.m.ToolCalls.WithLabelValues(session.ToolBookAppointment, "ok")))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.m.ToolCalls.WithLabelValues(session.ToolBookAppointment, "invalid")))
	assert.Equal(t, 0.0, testutil.ToFloat64(h.m.CallsActive))
}

func TestTransferToHumanAndCallerHangup(t *testing.T) {
	h := newHarness(t, 5, 1)
	c := ctx(t)
	call := h.api.NewCall()
	call.SetModel(receptionist(
		func(string) []rt.Output {
			return []rt.Output{rt.CallTool(session.ToolTransferToHuman, `{"reason":"billing"}`)}
		},
		func(string, string) []rt.Output {
			return []rt.Output{rt.Say("I am transferring you to the front desk now.")}
		}))
	h.answer(t, c, call)
	require.NoError(t, call.CallerSays(c, "I have a billing question."))
	require.NoError(t, call.WaitEnded(c), "the transfer ends the call")
	assert.Equal(t, []string{"sip:frontdesk@clinic.example"}, call.Referred())

	other := h.api.NewCall()
	other.SetModel(receptionist(
		func(string) []rt.Output {
			return []rt.Output{rt.CallTool(session.ToolCheckAvailability, `{"date":"2099-03-02"}`)}
		},
		func(string, string) []rt.Output { return []rt.Output{rt.Say("There is one slot.")} }))
	h.answer(t, c, other)
	require.NoError(t, other.CallerSays(c, "Anything on March 2nd?"))
	_, err := other.WaitFor(c, "the answer's response.done", responseDone(other, "one slot"))
	require.NoError(t, err)
	assert.Contains(t, toolOutputs(t, other)[session.ToolCheckAvailability][0], "slots")
	other.CallerHangsUp()
	require.NoError(t, other.WaitEnded(c))
	require.Eventually(t, func() bool { return h.svc.ActiveCalls() == 0 }, 5*time.Second, 5*time.Millisecond)
	assert.False(t, other.HungUp(), "the caller hung up, not the agent")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.m.Calls.WithLabelValues(metrics.OutcomeTransferred)))
}

// 100 simultaneous calls each try to book one of 10 overlapping slots:
// exactly one booking per slot, no lost booking, no goroutine left behind.
func TestHundredConcurrentCallsNoDoubleBooking(t *testing.T) {
	h := newHarness(t, 100, 10)
	c := ctx(t)
	before := runtime.NumGoroutine()

	var wg sync.WaitGroup
	var mu sync.Mutex
	booked := map[string]string{} // slot -> appointment id
	refused := 0
	for i := range 100 {
		wg.Go(func() {
			call := h.api.NewCall()
			slot := fmt.Sprintf("s%03d", i%10)
			call.SetModel(receptionist(
				func(string) []rt.Output {
					return []rt.Output{rt.CallTool(session.ToolBookAppointment, fmt.Sprintf(`{"slot_id":%q,"patient_name":"Patient %d"}`, slot, i))}
				},
				func(string, string) []rt.Output { return []rt.Output{rt.Say("Done.")} }))
			if !assert.Equal(t, http.StatusOK, h.deliver(t, call)) {
				return
			}
			if !assert.NoError(t, call.WaitConnected(c)) {
				return
			}
			greeted(t, c, call)
			if !assert.NoError(t, call.CallerSays(c, "Book me please.")) {
				return
			}
			_, err := call.WaitFor(c, "the answer to the booking", responseDone(call, "Done."))
			if !assert.NoError(t, err, "%s", dump(call)) {
				return
			}
			outs := toolOutputs(t, call)[session.ToolBookAppointment]
			if !assert.Len(t, outs, 1) {
				return
			}
			res := decode(t, outs[0])
			mu.Lock()
			if res["booked"] == true {
				assert.NotContains(t, booked, slot, "slot %s double booked", slot)
				booked[slot] = res["appointment_id"].(string)
			} else {
				assert.Contains(t, res["error"], "just booked")
				refused++
			}
			mu.Unlock()
			call.CallerHangsUp()
			assert.NoError(t, call.WaitEnded(c))
		})
	}
	wg.Wait()
	assert.Len(t, booked, 10)
	assert.Equal(t, 90, refused)
	snap, err := h.store.Snapshot(c)
	require.NoError(t, err)
	require.Len(t, snap.Appointments, 10, "no lost booking")
	for _, a := range snap.Appointments {
		assert.Equal(t, booked[a.SlotID], a.ID)
	}
	require.Eventually(t, func() bool { return h.svc.ActiveCalls() == 0 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 100.0, testutil.ToFloat64(h.m.Calls.WithLabelValues(metrics.OutcomeCompleted)))

	// No goroutine leak: once idle connections are closed, the count
	// settles back to where it was before the calls.
	var now int
	for range 200 {
		h.tr.CloseIdleConnections()
		if now = runtime.NumGoroutine(); now <= before {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if now > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after\n%s", before, now, buf[:runtime.Stack(buf, true)])
	}
}

// dump renders a call's timeline for failure messages.
func dump(call *rt.Call) string {
	var b strings.Builder
	for _, e := range call.Timeline() {
		fmt.Fprintf(&b, "%3d %-14s %-45s %s %s playing=%s\n", e.Seq, e.Kind, e.Type, e.ResponseID, e.Target, e.Audio.Playing)
		if e.Type == "error" || e.Kind == rt.KindClient {
			fmt.Fprintf(&b, "      %s\n", e.Raw)
		}
	}
	return b.String()
}

// greeted waits until the agent's greeting response is done (its audio may
// still play: the caller may talk over it), so the caller's first words
// follow the greeting as on a real call.
func greeted(t testing.TB, c context.Context, call *rt.Call) {
	t.Helper()
	_, err := call.WaitServerEvent(c, "response.done", 1)
	require.NoError(t, err, "the greeting")
}

// responseDone matches the response.done of the call's response whose
// words contain saying (for call.WaitFor).
func responseDone(call *rt.Call, saying string) func(rt.Event) bool {
	return func(e rt.Event) bool {
		r, ok := call.ResponseSaying(saying)
		return ok && e.Kind == rt.KindServer && e.Type == "response.done" && e.ResponseID == r.ID
	}
}
