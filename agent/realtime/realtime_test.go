package realtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/openai/openai-go/v3"
	oarealtime "github.com/openai/openai-go/v3/realtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/realtime"
	"gitlab.com/acme/voice-agent/agent/realtimetest"
	"gitlab.com/acme/voice-agent/agent/session"
)

// ParseEvent takes any JSON object with a string "type" and leaves the
// rest to the SDK's event structs; anything else is ErrBadEvent.
func TestParseEvent(t *testing.T) {
	ev, err := realtime.ParseEvent([]byte(` {"type":"response.done","event_id":"e","response":{"id":"resp_1","status":"completed","output":[
		{"id":"i1","type":"message","role":"assistant","content":[{"type":"output_audio","transcript":"hi"}]},
		{"id":"i2","type":"function_call","call_id":"call_2","name":"check_availability","arguments":"{\"date\":\"2026-12-01\"}"}],
		"usage":{"total_tokens":30,"input_tokens":20,"output_tokens":10}}}`))
	require.NoError(t, err)
	assert.Equal(t, realtime.EventResponseDone, ev.Type)
	var done oarealtime.ResponseDoneEvent
	require.NoError(t, ev.Decode(&done))
	assert.Equal(t, oarealtime.RealtimeResponseStatusCompleted, done.Response.Status)
	assert.Equal(t, int64(30), done.Response.Usage.TotalTokens)
	require.Len(t, done.Response.Output, 2)
	fc, ok := done.Response.Output[1].AsAny().(oarealtime.RealtimeConversationItemFunctionCall)
	require.True(t, ok, "the second item is a function call")
	assert.Equal(t, "call_2", fc.CallID)

	ev, err = realtime.ParseEvent([]byte(`{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":"invalid_value","message":"bad","param":"session.tools","event_id":"c1"}}`))
	require.NoError(t, err)
	var e oarealtime.RealtimeErrorEvent
	require.NoError(t, ev.Decode(&e))
	assert.Equal(t, "invalid_value", e.Error.Code)
	assert.Equal(t, "c1", e.Error.EventID)

	for _, bad := range []string{``, ` `, `[]`, `"x"`, `{}`, `{"type":""}`, `{"type":1}`, `{"type":"x"`, `null`} {
		_, err := realtime.ParseEvent([]byte(bad))
		assert.ErrorIs(t, err, realtime.ErrBadEvent, bad)
	}
	_, err = realtime.ParseEvent([]byte(`{"type":"x","pad":"` + strings.Repeat("a", realtime.MaxEventBytes) + `"}`))
	assert.ErrorIs(t, err, realtime.ErrBadEvent, "an event over the size limit")
}

// Server events come from the network: ParseEvent never panics, and what
// it accepts is a JSON object with a non-empty string type.
func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{
		`{"type":"session.created","event_id":"e","session":{"type":"realtime"}}`,
		`{"type":"response.done","response":{"output":[{"type":"function_call","call_id":"c","name":"n"}]}}`,
		`{"type":"error","error":{"type":"server_error","message":"m"}}`,
		`{"type":"response.output_text.delta","delta":"\u0000"}`,
		`{"type":""}`, `[]`, `nul`, ` {"type":"x"} `, `{"type":"a","type":"b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := realtime.ParseEvent(data)
		if err != nil {
			if !errors.Is(err, realtime.ErrBadEvent) {
				t.Fatalf("error does not wrap ErrBadEvent: %v", err)
			}
			return
		}
		if ev.Type == "" {
			t.Fatal("accepted an event without a type")
		}
		var m map[string]any
		if json.Unmarshal(ev.Raw, &m) != nil {
			t.Fatalf("accepted %q, which is not a JSON object", ev.Raw)
		}
	})
}

func TestURLs(t *testing.T) {
	u, err := realtime.SidebandURL("https://api.openai.com/v1", "rtc_1 2")
	require.NoError(t, err)
	assert.Equal(t, "wss://api.openai.com/v1/realtime?call_id=rtc_1+2", u)
	u, err = realtime.SidebandURL("http://127.0.0.1:8/gw/v1/", "c")
	require.NoError(t, err)
	assert.Equal(t, "ws://127.0.0.1:8/gw/v1/realtime?call_id=c", u)
	u, err = realtime.ModelURL("https://api.openai.com/v1", "gpt-realtime")
	require.NoError(t, err)
	assert.Equal(t, "wss://api.openai.com/v1/realtime?model=gpt-realtime", u)
	_, err = realtime.SidebandURL("ftp://x", "c")
	assert.ErrorContains(t, err, "scheme")
}

// A real WebSocket server on loopback: Dial authenticates, Send and NextEvent
// round-trip, malformed events are reported without killing the
// connection, and a normal close is ErrClosed.
func TestConnRoundTrip(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		ctx := r.Context()
		_, msg, err := ws.Read(ctx)
		if err != nil {
			return
		}
		var got map[string]any
		_ = json.Unmarshal(msg, &got)
		_ = ws.Write(ctx, websocket.MessageText, []byte(`not json`))
		_ = ws.Write(ctx, websocket.MessageText, []byte(`{"type":"response.output_text.delta","event_id":"e","delta":"`+got["type"].(string)+`"}`))
		_ = ws.Close(websocket.StatusNormalClosure, "bye")
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wsURL, err := realtime.ModelURL(srv.URL+"/v1", "m")
	require.NoError(t, err)

	_, err = realtime.Dial(ctx, wsURL, "wrong")
	require.ErrorContains(t, err, "HTTP 401")
	var de *realtime.DialError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, http.StatusUnauthorized, de.StatusCode)

	conn, err := realtime.Dial(ctx, wsURL, "k")
	require.NoError(t, err)
	defer conn.CloseNow()
	require.NoError(t, conn.Send(ctx, realtime.ResponseCreateEvent("e1", "")))
	_, err = conn.NextEvent(ctx)
	require.ErrorIs(t, err, realtime.ErrBadEvent)
	ev, err := conn.NextEvent(ctx)
	require.NoError(t, err)
	var delta oarealtime.ResponseTextDeltaEvent
	require.NoError(t, ev.Decode(&delta))
	assert.Equal(t, "response.create", delta.Delta, "the server saw our event")
	_, err = conn.NextEvent(ctx)
	require.ErrorIs(t, err, realtime.ErrClosed)
}

func TestCallsAgainstLoopbackAPI(t *testing.T) {
	api := realtimetest.New("sk-good")
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	calls := realtime.NewCalls(api.URL(), "sk-good", nil)
	sess, err := session.Default().JSON()
	require.NoError(t, err)

	call := api.NewCall()
	require.NoError(t, calls.Accept(ctx, call.ID, sess))
	assert.JSONEq(t, string(sess), string(call.Session()))
	require.NoError(t, calls.Transfer(ctx, call.ID, "tel:988"))
	assert.Equal(t, []string{"tel:988"}, call.Referred())
	require.Error(t, calls.Hangup(ctx, call.ID), "a transferred call is over")
	other := api.NewCall()
	require.NoError(t, calls.Accept(ctx, other.ID, sess))
	require.NoError(t, calls.Hangup(ctx, other.ID))
	assert.True(t, other.HungUp())

	busy := api.NewCall()
	require.NoError(t, calls.Reject(ctx, busy.ID, 486))
	assert.Equal(t, 486, busy.Rejected())

	err = calls.Accept(ctx, "rtc_missing", sess)
	require.ErrorContains(t, err, "call_id_not_found")

	secret, err := calls.MintClientSecret(ctx, sess, 10*time.Minute)
	require.NoError(t, err)
	assert.NotEmpty(t, secret.Value)
	assert.Greater(t, secret.ExpiresAt, time.Now().Unix())

	bad := realtime.NewCalls(api.URL(), "sk-bad", nil)
	err = bad.Hangup(ctx, busy.ID)
	require.Error(t, err)
	assert.ErrorContains(t, err, "401")
	assert.NotContains(t, err.Error(), "sk-bad", "the key never appears in errors")
	var apiErr *openai.Error
	require.True(t, errors.As(err, &apiErr), "the SDK error stays inspectable")
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
	assert.Equal(t, "invalid_api_key", apiErr.Code)
}

// The SDK-typed client events encode the documented shapes.
func TestSDKClientEvents(t *testing.T) {
	for _, tc := range []struct {
		ev   oarealtime.RealtimeClientEventUnionParam
		typ  string
		want string
	}{
		{realtime.ResponseCreateEvent("e1", ""), "response.create", `{"type":"response.create","event_id":"e1","response":{"metadata":{"request":"e1"}}}`},
		{realtime.ResponseCreateEvent("e2", "Greet."), "response.create", `{"type":"response.create","event_id":"e2","response":{"instructions":"Greet.","metadata":{"request":"e2"}}}`},
		{realtime.FunctionCallOutputEvent("e3", "call_1", `{"ok":true}`), "conversation.item.create", `{"type":"conversation.item.create","event_id":"e3","item":{"type":"function_call_output","call_id":"call_1","output":"{\"ok\":true}"}}`},
		{realtime.SystemMessageEvent("e4", "Transfer failed."), "conversation.item.create", `{"type":"conversation.item.create","event_id":"e4","item":{"type":"message","role":"system","content":[{"type":"input_text","text":"Transfer failed."}]}}`},
	} {
		b, err := json.Marshal(tc.ev)
		require.NoError(t, err)
		assert.JSONEq(t, tc.want, string(b))
		assert.Equal(t, tc.typ, realtime.ClientEventType(tc.ev))
	}
}

// NextEvent returns the type and raw JSON; malformed events are
// ErrBadEvent and the connection goes on; a normal close is ErrClosed.
func TestNextEvent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		for _, m := range []string{`[]`, `{"no_type":1}`, `{"type":"output_audio_buffer.stopped","event_id":"e","response_id":"resp_1"}`} {
			_ = ws.Write(r.Context(), websocket.MessageText, []byte(m))
		}
		_ = ws.Close(websocket.StatusNormalClosure, "")
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := realtime.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), "k")
	require.NoError(t, err)
	defer conn.CloseNow()
	for range 2 {
		_, err = conn.NextEvent(ctx)
		require.ErrorIs(t, err, realtime.ErrBadEvent)
	}
	ev, err := conn.NextEvent(ctx)
	require.NoError(t, err)
	assert.Equal(t, realtime.EventOutputAudioBufferStopped, ev.Type)
	var stopped oarealtime.RealtimeServerEventOutputAudioBufferStopped
	require.NoError(t, ev.Decode(&stopped))
	assert.Equal(t, "resp_1", stopped.ResponseID)
	_, err = conn.NextEvent(ctx)
	require.ErrorIs(t, err, realtime.ErrClosed)
}

// The production session object fits the SDK's CallAcceptParams exactly;
// a field the SDK does not know is refused.
func TestAcceptParamsCarryTheWholeSession(t *testing.T) {
	sess, err := session.Default().WithToday(time.Now()).JSON()
	require.NoError(t, err)
	p, err := realtime.AcceptParams(sess)
	require.NoError(t, err)
	assert.Equal(t, "gpt-4o-mini-transcribe", string(p.RealtimeSessionCreateRequest.Audio.Input.Transcription.Model))
	_, err = realtime.AcceptParams([]byte(`{"type":"realtime","model":"gpt-realtime","audio":{"input":{"transcription":{"model":"x","speed":2}}}}`))
	assert.ErrorContains(t, err, "does not carry")
	_, err = realtime.AcceptParams([]byte(`{"type":`))
	assert.Error(t, err)
}
