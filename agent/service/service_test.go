package service_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/metrics"
	"gitlab.com/acme/voice-agent/agent/realtime"
	"gitlab.com/acme/voice-agent/agent/realtimetest"
	"gitlab.com/acme/voice-agent/agent/schedule"
	"gitlab.com/acme/voice-agent/agent/service"
	"gitlab.com/acme/voice-agent/agent/session"
	"gitlab.com/acme/voice-agent/agent/tools"
	"gitlab.com/acme/voice-agent/agent/webhook"
)

var secret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("test-webhook-secret-32-bytes-ok!"))

const apiKey = "sk-test-loopback"

// staffToken authorises the staff endpoints of the harness's service.
const staffToken = "staff-token-for-tests-0123456789abcdef"

// day is far in the future so slots are bookable whatever the clock.
var day = time.Date(2099, 3, 2, 0, 0, 0, 0, time.UTC)

type harness struct {
	api     *realtimetest.Server
	store   *schedule.Store
	svc     *service.Service
	m       *metrics.Metrics
	web     *httptest.Server
	client  *http.Client
	tr      *http.Transport
	hookURL string
}

func newHarness(t testing.TB, maxCalls int, slots int, opts ...realtimetest.Option) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{api: realtimetest.New(apiKey, opts...)}
	var err error
	h.store, err = schedule.Open(ctx, filepath.Join(t.TempDir(), "schedule.db"))
	require.NoError(t, err)
	st := schedule.State{Providers: []schedule.Provider{{ID: "p1", Name: "Dr. One"}}}
	for i := range slots {
		start := day.Add(time.Duration(9*60+i*15) * time.Minute)
		st.Slots = append(st.Slots, schedule.Slot{ID: fmt.Sprintf("s%03d", i), ProviderID: "p1", Start: start, End: start.Add(15 * time.Minute)})
	}
	require.NoError(t, h.store.Seed(ctx, st))
	v, err := webhook.NewVerifier(secret, nil)
	require.NoError(t, err)
	h.tr = &http.Transport{MaxIdleConnsPerHost: 200}
	h.client = &http.Client{Transport: h.tr}
	h.m = metrics.New("test", "abc")
	h.svc, err = service.New(service.Options{
		Calls: realtime.NewCalls(h.api.URL(), apiKey, h.client), Store: h.store, Verifier: v, Metrics: h.m,
		Session: session.Default(), MaxCalls: maxCalls, StaffToken: staffToken,
		ExecutorOptions: []tools.Option{tools.WithFrontDesk("sip:frontdesk@clinic.example")},
		Dial: func(ctx context.Context, u, key string) (*realtime.Conn, error) {
			return realtime.DialWith(ctx, u, key, h.client)
		},
	})
	require.NoError(t, err)
	h.web = httptest.NewServer(h.svc.Handler())
	h.hookURL = h.web.URL + "/v1/openai/webhook"
	t.Cleanup(h.close)
	return h
}

func (h *harness) close() {
	// Calls a test left open are hung up at once.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_ = h.svc.Shutdown(ctx)
	h.web.Close()
	h.api.Close()
	h.tr.CloseIdleConnections()
	_ = h.store.Close()
}

func (h *harness) deliver(t testing.TB, call *realtimetest.Call) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	status, err := realtimetest.DeliverIncoming(ctx, h.client, h.hookURL, secret, call, `"Caller" <sip:+15550001111@trunk.example>;tag=9`)
	require.NoError(t, err)
	return status
}

// answer delivers the call's incoming webhook (200) and waits until the
// agent is on the sideband and its greeting is done: the call as a caller
// finds it after the first ring.
func (h *harness) answer(t testing.TB, c context.Context, call *realtimetest.Call) {
	t.Helper()
	require.Equal(t, http.StatusOK, h.deliver(t, call))
	require.NoError(t, call.WaitConnected(c))
	greeted(t, c, call)
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &m), s)
	return m
}

func TestRejectsWhenAtCapacity(t *testing.T) {
	h := newHarness(t, 1, 1)
	c := ctx(t)
	first := h.api.NewCall()
	require.Equal(t, http.StatusOK, h.deliver(t, first))
	require.NoError(t, first.WaitConnected(c))
	second := h.api.NewCall()
	require.Equal(t, http.StatusOK, h.deliver(t, second))
	assert.Equal(t, service.SIPBusyHere, second.Rejected())
	assert.Nil(t, second.Session())
	first.HangupByCaller()
	require.Eventually(t, func() bool { return h.svc.ActiveCalls() == 0 }, 5*time.Second, 5*time.Millisecond)
	third := h.api.NewCall()
	require.Equal(t, http.StatusOK, h.deliver(t, third))
	require.NoError(t, third.WaitAccepted(c), "capacity is released when a call ends")
}

func TestWebhookRefusals(t *testing.T) {
	h := newHarness(t, 5, 1)
	c := ctx(t)
	call := h.api.NewCall()
	body := []byte(fmt.Sprintf(`{"object":"event","id":"evt_1","type":"realtime.call.incoming","created_at":1,"data":{"call_id":%q,"sip_headers":[]}}`, call.ID))

	wrong := "whsec_" + base64.StdEncoding.EncodeToString([]byte("not-the-right-secret-32-bytes!!!"))
	status, err := realtimetest.Deliver(c, h.client, h.hookURL, wrong, "wh_a", time.Now(), body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, status)
	status, err = realtimetest.Deliver(c, h.client, h.hookURL, secret, "wh_b", time.Now().Add(-10*time.Minute), body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, status, "stale")
	status, err = realtimetest.Deliver(c, h.client, h.hookURL, secret, "wh_c", time.Now(), []byte(`{"id":`))
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, status, "malformed body")
	status, err = realtimetest.Deliver(c, h.client, h.hookURL, secret, "wh_d", time.Now(), []byte(`{"object":"event","id":"evt_2","type":"response.completed","data":{}}`))
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status, "other event types are acknowledged and ignored")
	assert.Equal(t, 0, h.api.Accepted(), "nothing accepted so far")

	status, err = realtimetest.Deliver(c, h.client, h.hookURL, secret, "wh_e", time.Now(), body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	status, err = realtimetest.Deliver(c, h.client, h.hookURL, secret, "wh_e", time.Now(), body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status, "replayed webhook-id: 2xx, or OpenAI keeps retrying")
	assert.Equal(t, 1, h.api.Accepted())

	assert.Equal(t, 1.0, testutil.ToFloat64(h.m.WebhookFailures.WithLabelValues("signature")))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.m.WebhookFailures.WithLabelValues("timestamp")))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.m.Webhooks.WithLabelValues(metrics.WebhookDuplicate)))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.m.WebhookFailures.WithLabelValues("body")))
}

func TestAcceptFailureIsRetryable(t *testing.T) {
	h := newHarness(t, 5, 1)
	c := ctx(t)
	body := []byte(`{"object":"event","id":"evt_9","type":"realtime.call.incoming","created_at":1,"data":{"call_id":"rtc_unknown","sip_headers":[]}}`)
	for range 2 { // the same delivery id is processed again after a failure
		status, err := realtimetest.Deliver(c, h.client, h.hookURL, secret, "wh_retry", time.Now(), body)
		require.NoError(t, err)
		assert.Equal(t, http.StatusBadGateway, status)
	}
	assert.Equal(t, 2.0, testutil.ToFloat64(h.m.Calls.WithLabelValues(metrics.OutcomeAcceptFailed)))
	assert.Equal(t, 0, h.svc.ActiveCalls())
}

func TestClientSecretHealthReadyMetrics(t *testing.T) {
	h := newHarness(t, 5, 1)
	req, err := http.NewRequest(http.MethodPost, h.web.URL+"/v1/realtime/client-secret", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+staffToken)
	resp, err := h.client.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	got := decode(t, string(b))
	assert.True(t, strings.HasPrefix(got["value"].(string), "ek_"))
	assert.NotZero(t, got["expires_at"])
	require.Len(t, h.api.ClientSecrets(), 1)
	minted := decode(t, string(h.api.ClientSecrets()[0]))
	assert.Equal(t, "realtime", minted["type"])
	assert.Regexp(t, `\n\nToday is \w+day, \d+ \w+ \d{4} \(\d{4}-\d{2}-\d{2}\)`, minted["instructions"], "the session tells the model today's date")

	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		resp, err := h.client.Get(h.web.URL + path)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, path)
	}
	resp, err = h.client.Get(h.web.URL + "/healthz")
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, "ok", decode(t, string(b))["status"], "healthz is JSON that wait-ready reads")
	resp, err = h.client.Get(h.web.URL + "/metrics")
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, name := range metrics.Names {
		assert.Contains(t, string(b), name)
	}
	h.svc.Drain()
	resp, err = h.client.Get(h.web.URL + "/readyz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "draining is not ready")
}

func TestShutdownWaitsThenHangsUp(t *testing.T) {
	h := newHarness(t, 5, 1)
	c := ctx(t)
	a, b := h.api.NewCall(), h.api.NewCall()
	require.Equal(t, http.StatusOK, h.deliver(t, a))
	require.Equal(t, http.StatusOK, h.deliver(t, b))
	require.NoError(t, a.WaitConnected(c))
	require.NoError(t, b.WaitConnected(c))

	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.svc.Shutdown(sctx) }()
	require.Eventually(t, func() bool {
		resp, err := h.client.Get(h.web.URL + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	}, 5*time.Second, 5*time.Millisecond)
	late := h.api.NewCall()
	require.Equal(t, http.StatusOK, h.deliver(t, late))
	assert.Equal(t, service.SIPServiceUnavailable, late.Rejected(), "no new calls while draining")

	a.HangupByCaller() // a finishes on its own during the grace period
	require.NoError(t, a.WaitEnded(c))
	select {
	case err := <-done:
		t.Fatalf("shutdown returned with a call still active: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel() // deadline: b is hung up
	require.ErrorContains(t, <-done, "hung up 1 active call")
	assert.False(t, a.HungUp())
	assert.True(t, b.HungUp())
}
