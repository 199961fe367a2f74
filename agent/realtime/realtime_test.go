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

func TestParseServerEvent(t *testing.T) {
	ev, err := realtime.ParseServerEvent([]byte(`{"type":"response.function_call_arguments.done","event_id":"event_1","response_id":"resp_1","item_id":"item_1","output_index":0,"call_id":"call_1","name":"end_call","arguments":"{}"}`))
	require.NoError(t, err)
	assert.Equal(t, "call_1", ev.CallID)
	assert.Equal(t, "end_call", ev.Name)
	assert.Equal(t, "{}", ev.Arguments)

	ev, err = realtime.ParseServerEvent([]byte(`{"type":"response.done","event_id":"e","response":{"id":"resp_1","status":"completed","output":[
		{"id":"i1","type":"message","role":"assistant","content":[{"type":"output_audio","transcript":"hi"}]},
		{"id":"i2","type":"function_call","call_id":"call_2","name":"check_availability","arguments":"{\"date\":\"2026-12-01\"}"}]}}`))
	require.NoError(t, err)
	assert.Nil(t, ev.Response.Usage)
	calls := ev.FunctionCalls()
	require.Len(t, calls, 1)
	assert.Equal(t, "call_2", calls[0].CallID)

	ev, err = realtime.ParseServerEvent([]byte(`{"type":"response.done","response":{"id":"r","status":"completed","output":[],"usage":{"total_tokens":30,"input_tokens":20,"output_tokens":10}}}`))
	require.NoError(t, err)
	assert.Equal(t, &realtime.Usage{TotalTokens: 30, InputTokens: 20, OutputTokens: 10}, ev.Response.Usage)

	ev, err = realtime.ParseServerEvent([]byte(`{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":"invalid_value","message":"bad","param":"session.tools","event_id":"c1"}}`))
	require.NoError(t, err)
	assert.EqualError(t, ev.Error, "realtime: invalid_request_error (invalid_value): bad")

	for _, bad := range []string{``, `[]`, `"x"`, `{}`, `{"type":""}`, `{"type":"error"}`, `{"type":"response.function_call_arguments.done","name":"x"}`, `{"type":1}`, `{"type":"x"`} {
		_, err := realtime.ParseServerEvent([]byte(bad))
		assert.Error(t, err, bad)
	}
}

func TestClientEventsEncodeDocumentedShapes(t *testing.T) {
	for _, tc := range []struct {
		ev   any
		want string
	}{
		{realtime.NewFunctionCallOutput("call_1", `{"ok":true}`), `{"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"call_1","output":"{\"ok\":true}"}}`},
		{realtime.NewResponseCreate(), `{"type":"response.create"}`},
		{realtime.NewUserText("hello"), `{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"hello"}]}}`},
		{realtime.NewSessionUpdate(map[string]any{"type": "realtime"}), `{"type":"session.update","session":{"type":"realtime"}}`},
	} {
		b, err := json.Marshal(tc.ev)
		require.NoError(t, err)
		assert.JSONEq(t, tc.want, string(b))
	}
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

// A real WebSocket server on loopback: Dial authenticates, Send and Next
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
	require.NoError(t, conn.Send(ctx, realtime.NewResponseCreate()))
	_, err = conn.Next(ctx)
	require.ErrorIs(t, err, realtime.ErrBadEvent)
	ev, err := conn.Next(ctx)
	require.NoError(t, err)
	assert.Equal(t, "response.create", ev.Delta, "the server saw our event")
	_, err = conn.Next(ctx)
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

func FuzzParseServerEvent(f *testing.F) {
	for _, s := range []string{
		`{"type":"session.created","event_id":"e","session":{"type":"realtime"}}`,
		`{"type":"response.function_call_arguments.done","call_id":"c","name":"n","arguments":"{}"}`,
		`{"type":"response.done","response":{"output":[{"type":"function_call","call_id":"c","name":"n"}]}}`,
		`{"type":"error","error":{"type":"server_error","message":"m"}}`,
		`{"type":"response.output_text.delta","delta":"\u0000"}`,
		`{}`, `[]`, `nul`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := realtime.ParseServerEvent(b)
		if err != nil {
			return
		}
		require.NotEmpty(t, ev.Type)
		if ev.Type == realtime.EventError {
			require.NotNil(t, ev.Error)
		}
		for _, c := range ev.FunctionCalls() {
			require.NotEmpty(t, c.CallID)
		}
	})
}

// The SDK-typed client events encode the documented shapes.
func TestSDKClientEvents(t *testing.T) {
	for _, tc := range []struct {
		ev   any
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
