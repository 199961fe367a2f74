package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/metrics"
	rt "gitlab.com/acme/voice-agent/agent/realtimetest"
	"gitlab.com/acme/voice-agent/agent/session"
)

// The call flow as a caller lives it, against the loopback server's audio
// timing. Each test failed on the agent before the state machine (see
// agent/README.md "How a call flows").

const goodbye = "Thank you for calling Harbor Behavioral Health. Goodbye!"

// endingCall: the caller says they are done, the model calls end_call and
// then says goodbye.
func endingCall() rt.Model {
	return receptionist(
		func(text string) []rt.Output {
			switch text {
			case "Wait, one more thing.":
				return []rt.Output{rt.Say("Of course, what else can I do for you?")}
			case "Anything on March 2nd?":
				return []rt.Output{rt.CallTool(session.ToolCheckAvailability, `{"date":"2099-03-02"}`)}
			}
			return []rt.Output{rt.CallTool(session.ToolEndCall, `{"reason":"caller done"}`)}
		},
		func(tool, _ string) []rt.Output {
			if tool == session.ToolEndCall {
				return []rt.Output{rt.Say(goodbye)}
			}
			return nil
		})
}

func TestGreetingWithDisclosureIsTheFirstResponse(t *testing.T) {
	h := newHarness(t, 5, 1)
	c := ctx(t)
	call := h.api.NewCall()
	script := rt.NewScript(rt.Reply(rt.Say("Hello, this is Harbor Behavioral Health's automated assistant. How can I help?")))
	call.SetModel(script)
	require.Equal(t, http.StatusOK, h.deliver(t, call))
	// Nobody speaks: the agent asks for the first response itself.
	ev, err := call.WaitServerEvent(c, "output_audio_buffer.stopped", 1)
	require.NoError(t, err, "the caller hears a greeting without saying anything")
	reqs := script.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, rt.TriggerResponseCreate, reqs[0].Trigger)
	assert.Empty(t, reqs[0].Conversation, "the greeting comes first")
	assert.Contains(t, reqs[0].Instructions, "automated assistant", "the greeting's instructions ask for the disclosure")
	assert.Contains(t, reqs[0].Instructions, "Crisis safety", "and keep the session's instructions")
	// Response instructions replace the session's for that response: the
	// greeting must carry today's date and zone as the session does.
	assert.Contains(t, reqs[0].Instructions, "Today is ", "the greeting's instructions keep today's date and zone")
	assert.Empty(t, call.Events(rt.KindCallerSpeech, ""))
	assert.Equal(t, call.Responses()[0].ID, ev.ResponseID)
	call.CallerHangsUp()
}

func TestInputTranscriptionIsConfigured(t *testing.T) {
	h := newHarness(t, 5, 1)
	c := ctx(t)
	call := h.api.NewCall()
	require.Equal(t, http.StatusOK, h.deliver(t, call))
	require.NoError(t, call.WaitConnected(c))
	var sess struct {
		Audio struct {
			Input struct {
				Transcription *struct {
					Model string `json:"model"`
				} `json:"transcription"`
			} `json:"input"`
		} `json:"audio"`
	}
	require.NoError(t, json.Unmarshal(call.Session(), &sess))
	require.NotNil(t, sess.Audio.Input.Transcription, "audio.input.transcription in the accept body")
	assert.Equal(t, "gpt-4o-mini-transcribe", sess.Audio.Input.Transcription.Model)
	require.NoError(t, call.CallerSays(c, "Hello?"))
	_, err := call.WaitServerEvent(c, "conversation.item.input_audio_transcription.completed", 1)
	require.NoError(t, err, "the API transcribes caller turns for the agent")
	call.CallerHangsUp()
}

func TestHangsUpOnlyAfterTheGoodbyesAudioStopped(t *testing.T) {
	// 5 ms per character: the goodbye plays for about 300 ms after its
	// response.done, as on a real call.
	h := newHarness(t, 5, 1, rt.WithAudioPace(5*time.Millisecond))
	c := ctx(t)
	call := h.api.NewCall()
	call.SetModel(endingCall())
	h.answer(t, c, call)
	require.NoError(t, call.CallerSays(c, "That's all, thanks."))
	require.NoError(t, call.WaitEnded(c))
	bye, ok := call.ResponseSaying(goodbye)
	require.True(t, ok)
	hangup, ok := call.Action(rt.KindHangup)
	require.True(t, ok, "the agent hung up")
	require.NoError(t, rt.AfterAudioOf(hangup, bye.ID), "%s", dump(call))
	assert.Equal(t, "stopped", bye.Audio, "the goodbye played to the end")
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(h.m.Calls.WithLabelValues(metrics.OutcomeCompleted)) == 1
	}, 5*time.Second, 5*time.Millisecond)
}

func TestCallerInterruptingTheGoodbyeKeepsTheCall(t *testing.T) {
	// Audio never ends by itself: only the caller's speech stops it.
	h := newHarness(t, 5, 1, rt.WithAudioPace(time.Hour))
	c := ctx(t)
	call := h.api.NewCall()
	call.SetModel(endingCall())
	h.answer(t, c, call)
	require.NoError(t, call.CallerSays(c, "That's all, thanks."))
	// The goodbye is generated (response.done) and playing.
	_, err := call.WaitFor(c, "the goodbye's response.done", responseDone(call, goodbye))
	require.NoError(t, err)
	require.NoError(t, call.CallerSays(c, "Wait, one more thing."), "the call is still up after the goodbye's response.done")
	_, err = call.WaitFor(c, "the answer to the interruption", responseDone(call, "what else"))
	require.NoError(t, err, "%s", dump(call))
	bye, _ := call.ResponseSaying(goodbye)
	assert.Equal(t, "cleared", bye.Audio, "the caller cut the goodbye off")
	// The agent still serves the caller: a tool call is answered.
	require.NoError(t, call.CallerSays(c, "Anything on March 2nd?"))
	_, err = call.WaitClientEvent(c, "conversation.item.create", 2)
	require.NoError(t, err, "the agent answers the next tool call: %s", dump(call))
	assert.Contains(t, toolOutputs(t, call)[session.ToolCheckAvailability][0], "slots")
	assert.False(t, call.HungUp(), "the call goes on")
	call.CallerHangsUp()
	require.NoError(t, call.WaitEnded(c))
	assert.False(t, call.HungUp())
}

func TestCrisisMessageIsSpokenBeforeTheTransfer(t *testing.T) {
	h := newHarness(t, 5, 1, rt.WithAudioPace(5*time.Millisecond))
	c := ctx(t)
	call := h.api.NewCall()
	call.SetModel(receptionist(
		func(string) []rt.Output {
			return []rt.Output{rt.CallTool(session.ToolCrisisEscalation, `{"risk":"self_harm"}`)}
		},
		func(tool, out string) []rt.Output {
			if tool != session.ToolCrisisEscalation {
				return nil
			}
			// The model speaks what the tool output tells it to.
			var o struct{ Instruction string }
			_ = json.Unmarshal([]byte(out), &o)
			return []rt.Output{rt.Say("I'm so sorry you're feeling this way. You can call or text 988 any time, and 911 if you are in immediate danger. I'm connecting you with a counselor now.")}
		}))
	h.answer(t, c, call)
	require.NoError(t, call.CallerSays(c, "I don't want to be alive anymore."))
	require.NoError(t, call.WaitEnded(c))
	assert.Equal(t, []string{"tel:988"}, call.Referred())
	out := toolOutputs(t, call)[session.ToolCrisisEscalation]
	require.Len(t, out, 1)
	assert.Contains(t, out[0], "988", "the tool output carries the crisis message")
	msg, ok := call.ResponseSaying("988")
	require.True(t, ok, "a response followed the tool output: %s", dump(call))
	refer, ok := call.Action(rt.KindRefer)
	require.True(t, ok)
	require.NoError(t, rt.AfterAudioOf(refer, msg.ID), "%s", dump(call))
	assert.Equal(t, "stopped", msg.Audio, "the caller heard the whole message")
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(h.m.Calls.WithLabelValues(metrics.OutcomeTransferred)) == 1
	}, 5*time.Second, 5*time.Millisecond)
}

func TestEmptyToolArgumentsAreAnErrorNotExecuted(t *testing.T) {
	h := newHarness(t, 5, 1)
	c := ctx(t)
	call := h.api.NewCall()
	call.SetModel(receptionist(
		func(string) []rt.Output { return []rt.Output{rt.CallTool(session.ToolTransferToHuman, ``)} },
		func(string, string) []rt.Output {
			return []rt.Output{rt.Say("Sorry, why would you like to talk to someone?")}
		}))
	h.answer(t, c, call)
	require.NoError(t, call.CallerSays(c, "Give me a person."))
	_, err := call.WaitFor(c, "the model's answer to the error", responseDone(call, "why would you"))
	require.NoError(t, err, "%s", dump(call))
	out := toolOutputs(t, call)[session.ToolTransferToHuman]
	require.Len(t, out, 1)
	assert.Contains(t, decode(t, out[0])["error"], "arguments are empty")
	assert.Empty(t, call.Referred(), "nothing ran on empty arguments")
	call.CallerHangsUp()
}

// A caller at risk who talks over the crisis message is still transferred:
// the REFER goes out when the message's audio is cut, not never.
func TestCrisisTransferGoesAheadWhenTheCallerTalksOverTheMessage(t *testing.T) {
	h := newHarness(t, 5, 1, rt.WithAudioPace(time.Hour))
	c := ctx(t)
	call := h.api.NewCall()
	call.SetModel(receptionist(
		func(text string) []rt.Output {
			if text == "I can't go on." {
				return []rt.Output{rt.CallTool(session.ToolCrisisEscalation, `{"risk":"self_harm"}`)}
			}
			return nil
		},
		func(tool, _ string) []rt.Output {
			if tool == session.ToolCrisisEscalation {
				return []rt.Output{rt.Say("You can call or text 988 any time. I'm connecting you with a counselor now.")}
			}
			return nil
		}))
	h.answer(t, c, call)
	require.NoError(t, call.CallerSays(c, "I can't go on."))
	_, err := call.WaitFor(c, "the crisis message's response.done", responseDone(call, "988"))
	require.NoError(t, err)
	assert.Empty(t, call.Referred(), "no REFER while the message plays")
	require.NoError(t, call.CallerSays(c, "Please, just listen."))
	require.NoError(t, call.WaitEnded(c), "%s", dump(call))
	assert.Equal(t, []string{"tel:988"}, call.Referred())
	msg, _ := call.ResponseSaying("988")
	assert.Equal(t, "cleared", msg.Audio)
}

// The greeting's response.create reaches the API late, while the response
// to the caller's first words is active: the API refuses it with
// conversation_already_has_active_response. The agent must not wait for
// an answer to it forever: its next response.create (after the tool
// output) still goes out once the active response is done.
func TestRefusedResponseCreateDoesNotBlockTheCall(t *testing.T) {
	h := newHarness(t, 5, 4)
	c := ctx(t)
	gate := make(chan struct{})
	call := h.api.NewCall()
	call.SetModel(rt.ModelFunc(func(ctx context.Context, req rt.ResponseRequest) ([]rt.Output, error) {
		if l := last(req); l.Type == "message" && l.Role == "user" {
			<-gate // the model is still thinking when the greeting's response.create arrives
			return []rt.Output{rt.CallTool(session.ToolCheckAvailability, `{"date":"2099-03-02"}`)}, nil
		}
		if tool, _ := answered(req); tool == session.ToolCheckAvailability {
			return []rt.Output{rt.Say("Dr. One has four openings.")}, nil
		}
		return nil, nil
	}))
	call.PauseClientEvents() // the network holds the agent's events
	require.Equal(t, http.StatusOK, h.deliver(t, call))
	require.NoError(t, call.WaitConnected(c))
	require.NoError(t, call.CallerSays(c, "Anything on March 2nd?"))
	require.Eventually(t, func() bool { return call.HeldClientEvents() == 1 }, 10*time.Second, time.Millisecond, "the greeting's response.create")
	call.ResumeClientEvents()
	refused, err := call.WaitServerEvent(c, "error", 1)
	require.NoError(t, err)
	assert.Contains(t, string(refused.Raw), "conversation_already_has_active_response", "the race happened")
	close(gate)
	_, err = call.WaitFor(c, "the tool output spoken", responseDone(call, "four openings"))
	require.NoError(t, err, "%s", dump(call))
	assert.Len(t, call.Events(rt.KindServer, "error"), 1, "no other refusal")
	call.CallerHangsUp()
}

// A REFER that fails: the model is told (a system message and a
// response), and the call goes on with the caller.
func TestFailedTransferKeepsTheCallerAndTellsTheModel(t *testing.T) {
	h := newHarness(t, 5, 1)
	c := ctx(t)
	call := h.api.NewCall()
	call.FailRefers()
	call.SetModel(rt.ModelFunc(func(_ context.Context, req rt.ResponseRequest) ([]rt.Output, error) {
		l := last(req)
		switch {
		case len(req.Conversation) == 0:
			return []rt.Output{rt.Say("Hello, I'm the clinic's automated assistant.")}, nil
		case l.Type == "message" && l.Role == "user":
			return []rt.Output{rt.CallTool(session.ToolTransferToHuman, `{"reason":"billing"}`)}, nil
		case l.Type == "message" && l.Role == "system":
			return []rt.Output{rt.Say("I'm sorry, I couldn't reach the front desk. Can I help you another way?")}, nil
		}
		if tool, _ := answered(req); tool == session.ToolTransferToHuman {
			return []rt.Output{rt.Say("Transferring you to the front desk.")}, nil
		}
		return nil, nil
	}))
	h.answer(t, c, call)
	require.NoError(t, call.CallerSays(c, "Billing question."))
	_, err := call.WaitFor(c, "the model's answer to the failed transfer", responseDone(call, "couldn't reach"))
	require.NoError(t, err, "%s", dump(call))
	refer, ok := call.Action(rt.KindReferFailed)
	require.True(t, ok)
	assert.Equal(t, "sip:frontdesk@clinic.example", refer.Target)
	assert.Empty(t, call.Referred())
	msg, _ := call.ResponseSaying("Transferring you")
	require.NoError(t, rt.AfterAudioOf(refer, msg.ID), "the REFER waited for the message")
	assert.False(t, call.HungUp())
	call.CallerHangsUp()
	require.NoError(t, call.WaitEnded(c))
}

// Arguments are checked against the tool's schema before anything runs.
func TestToolArgumentsMissingARequiredFieldAreAnError(t *testing.T) {
	h := newHarness(t, 5, 1)
	c := ctx(t)
	call := h.api.NewCall()
	call.SetModel(receptionist(
		func(string) []rt.Output {
			return []rt.Output{rt.CallTool(session.ToolBookAppointment, `{"slot_id":"s000","patient_name":""}`)}
		},
		func(string, string) []rt.Output { return []rt.Output{rt.Say("May I have your full name?")} }))
	h.answer(t, c, call)
	require.NoError(t, call.CallerSays(c, "Book the first one."))
	_, err := call.WaitFor(c, "the model's question", responseDone(call, "full name"))
	require.NoError(t, err, "%s", dump(call))
	out := toolOutputs(t, call)[session.ToolBookAppointment]
	require.Len(t, out, 1)
	assert.Contains(t, decode(t, out[0])["error"], "missing patient_name")
	snap, err := h.store.Snapshot(c)
	require.NoError(t, err)
	assert.Empty(t, snap.Appointments, "nothing booked")
	call.CallerHangsUp()
}
