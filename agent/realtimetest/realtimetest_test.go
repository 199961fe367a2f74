package realtimetest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	oarealtime "github.com/openai/openai-go/v3/realtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rt "gitlab.com/acme/voice-agent/agent/realtimetest"
)

// agent is a bare sideband client: what the tests send is written here
// from the documented client events, not taken from the agent.
type agent struct {
	t  *testing.T
	ws *websocket.Conn
}

const sess = `{"type":"realtime","model":"gpt-realtime","instructions":"Be brief.","audio":{"input":{"transcription":{"model":"gpt-4o-mini-transcribe"}}}}`

func connect(t *testing.T, opts ...rt.Option) (*rt.Server, *rt.Call, *agent, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	srv := rt.New("sk", opts...)
	t.Cleanup(srv.Close)
	call := srv.NewCall()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+"/realtime/calls/"+call.ID+"/accept", strings.NewReader(sess))
	req.Header.Set("Authorization", "Bearer sk")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	h := http.Header{"Authorization": {"Bearer sk"}}
	ws, _, err := websocket.Dial(ctx, strings.Replace(srv.URL(), "http", "ws", 1)+"/realtime?call_id="+call.ID, &websocket.DialOptions{HTTPHeader: h})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ws.CloseNow() })
	require.NoError(t, call.WaitConnected(ctx))
	return srv, call, &agent{t: t, ws: ws}, ctx
}

func (a *agent) send(ctx context.Context, ev string) {
	require.NoError(a.t, a.ws.Write(ctx, websocket.MessageText, []byte(ev)))
}

// until reads server events until one of type typ, decoding each with the
// SDK's union (every event must be one the SDK knows), and returns the
// types seen.
func (a *agent) until(ctx context.Context, typ string) ([]string, oarealtime.RealtimeServerEventUnion) {
	var seen []string
	for {
		_, data, err := a.ws.Read(ctx)
		require.NoError(a.t, err, "waiting for %s after %v", typ, seen)
		var u oarealtime.RealtimeServerEventUnion
		require.NoError(a.t, json.Unmarshal(data, &u))
		require.NotNil(a.t, u.AsAny(), "an event the SDK does not know: %s", data)
		seen = append(seen, u.Type)
		if u.Type == typ {
			return seen, u
		}
	}
}

func index(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestAudioStopsAfterResponseDone(t *testing.T) {
	_, call, a, ctx := connect(t, rt.WithModel(rt.ModelFunc(func(context.Context, rt.ResponseRequest) ([]rt.Output, error) {
		return []rt.Output{rt.Say("Hello there.")}, nil
	})))
	a.send(ctx, `{"type":"response.create","event_id":"c1"}`)
	seen, ev := a.until(ctx, "output_audio_buffer.stopped")
	started, done := index(seen, "output_audio_buffer.started"), index(seen, "response.done")
	require.GreaterOrEqual(t, started, 0)
	assert.Less(t, started, done, "audio starts while the response is generated")
	assert.Equal(t, len(seen)-1, index(seen, "output_audio_buffer.stopped"))
	assert.Less(t, done, len(seen)-1, "response.done comes before the audio finishes playing")
	r := call.Responses()
	require.Len(t, r, 1)
	assert.Equal(t, r[0].ID, ev.AsRealtimeServerEventOutputAudioBufferStopped().ResponseID)
	assert.Equal(t, "stopped", r[0].Audio)
}

func TestSecondResponseCreateWhileActiveIsRefused(t *testing.T) {
	release := make(chan struct{})
	_, _, a, ctx := connect(t, rt.WithModel(rt.ModelFunc(func(context.Context, rt.ResponseRequest) ([]rt.Output, error) {
		<-release
		return []rt.Output{rt.Say("One.")}, nil
	})))
	a.send(ctx, `{"type":"response.create","event_id":"c1"}`)
	a.until(ctx, "response.created")
	a.send(ctx, `{"type":"response.create","event_id":"c2"}`)
	_, ev := a.until(ctx, "error")
	e := ev.AsRealtimeErrorEvent().Error
	assert.Equal(t, "conversation_already_has_active_response", e.Code)
	assert.Equal(t, "invalid_request_error", e.Type)
	assert.Equal(t, "c2", e.EventID, "the refused client event is named")
	close(release)
	a.until(ctx, "response.done")
	a.send(ctx, `{"type":"response.create","event_id":"c3"}`)
	a.until(ctx, "response.created") // allowed once the first is done, even while its audio plays
}

func TestCallerSpeechInterruptsPlayback(t *testing.T) {
	_, call, a, ctx := connect(t, rt.WithAudioPace(time.Hour), rt.WithModel(rt.ModelFunc(func(_ context.Context, req rt.ResponseRequest) ([]rt.Output, error) {
		return []rt.Output{rt.Say("A very long answer.")}, nil
	})))
	a.send(ctx, `{"type":"response.create"}`)
	a.until(ctx, "response.done")
	require.NoError(t, call.CallerSays(ctx, "Stop, please."))
	seen, _ := a.until(ctx, "conversation.item.input_audio_transcription.completed")
	assert.Equal(t, "input_audio_buffer.speech_started", seen[0])
	assert.Less(t, index(seen, "output_audio_buffer.cleared"), index(seen, "input_audio_buffer.speech_stopped"))
	assert.GreaterOrEqual(t, index(seen, "conversation.item.truncated"), 0)
	a.until(ctx, "response.created") // turn detection answers the caller
	tr := call.Transcript()
	require.GreaterOrEqual(t, len(tr), 2)
	assert.True(t, tr[0].Interrupted)
	assert.Equal(t, rt.Turn{Role: "caller", Text: "Stop, please."}, tr[1])
}

func TestHangupClosesTheSidebandAfterItIsRecorded(t *testing.T) {
	srv, call, a, ctx := connect(t, rt.WithAudioPace(time.Hour), rt.WithModel(rt.ModelFunc(func(context.Context, rt.ResponseRequest) ([]rt.Output, error) {
		return []rt.Output{rt.Say("Goodbye.")}, nil
	})))
	a.send(ctx, `{"type":"response.create"}`)
	_, done := a.until(ctx, "response.done")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+"/realtime/calls/"+call.ID+"/hangup", nil)
	req.Header.Set("Authorization", "Bearer sk")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, _, err = a.ws.Read(ctx)
	assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(err), "the API closes the sideband when the call ends")
	require.NoError(t, call.WaitEnded(ctx))
	h, ok := call.Action(rt.KindHangup)
	require.True(t, ok)
	assert.Equal(t, done.AsResponseDoneEvent().Response.ID, h.Audio.Playing, "the hangup is recorded with the audio it cut")
	assert.Error(t, rt.AfterAudioOf(h, h.Audio.Playing))
	assert.Equal(t, "cut", call.Responses()[0].Audio)
}

func TestModelFailureIsAFailedResponse(t *testing.T) {
	_, call, a, ctx := connect(t, rt.WithModel(rt.ModelFunc(func(context.Context, rt.ResponseRequest) ([]rt.Output, error) {
		return nil, errors.New("replay has no response here")
	})))
	a.send(ctx, `{"type":"response.create"}`)
	_, ev := a.until(ctx, "response.done")
	r := ev.AsResponseDoneEvent().Response
	assert.Equal(t, oarealtime.RealtimeResponseStatusFailed, r.Status)
	assert.Contains(t, r.JSON.StatusDetails.Raw(), "replay has no response here")
	assert.Equal(t, "failed", call.Responses()[0].Status)
}

func TestTranscriptionEventOnlyWhenConfigured(t *testing.T) {
	srv := rt.New("sk")
	defer srv.Close()
	call := srv.NewCall()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+"/realtime/calls/"+call.ID+"/accept", strings.NewReader(`{"type":"realtime","model":"gpt-realtime"}`))
	req.Header.Set("Authorization", "Bearer sk")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	ws, _, err := websocket.Dial(ctx, strings.Replace(srv.URL(), "http", "ws", 1)+"/realtime?call_id="+call.ID, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer sk"}}})
	require.NoError(t, err)
	defer ws.CloseNow()
	a := &agent{t: t, ws: ws}
	require.NoError(t, call.WaitConnected(ctx))
	require.NoError(t, call.CallerSays(ctx, "Hello?"))
	seen, _ := a.until(ctx, "response.created") // server VAD is the default: a response starts
	assert.Equal(t, -1, index(seen, "conversation.item.input_audio_transcription.completed"), "no transcription configured, no transcript event")
	assert.GreaterOrEqual(t, index(seen, "input_audio_buffer.committed"), 0)
}
