package service_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	"gitlab.com/acme/voice-agent/agent/webhook"
)

// apiCounter stands between the agent and the loopback API and counts the
// REST calls per action (accept, reject, ...), with the body of each
// reject: what OpenAI would have seen.
type apiCounter struct {
	mu      sync.Mutex
	actions map[string]int
	rejects []string
}

func (c *apiCounter) count(action string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.actions[action]
}

func countingProxy(t testing.TB, apiURL string) (*apiCounter, string) {
	t.Helper()
	target, err := url.Parse(apiURL)
	require.NoError(t, err)
	c := &apiCounter{actions: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	proxy.ErrorLog = log.New(io.Discard, "", 0) // the API closing under a live sideband is expected at the end of a test
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/realtime/calls/") {
			parts := strings.Split(r.URL.Path, "/")
			action := parts[len(parts)-1]
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			c.mu.Lock()
			c.actions[action]++
			if action == "reject" {
				c.rejects = append(c.rejects, string(body))
			}
			c.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL + "/v1"
}

type secHarness struct {
	api     *realtimetest.Server
	counter *apiCounter
	svc     *service.Service
	store   *schedule.Store
	m       *metrics.Metrics
	web     *httptest.Server
	hookURL string
}

// newSecHarness runs a service on dbPath against the loopback API (through
// the counting proxy), configured by opts (Calls, Store, Verifier and
// Metrics are filled in).
func newSecHarness(t testing.TB, api *realtimetest.Server, dbPath string, opts service.Options) *secHarness {
	t.Helper()
	ctx := context.Background()
	h := &secHarness{api: api}
	var err error
	h.store, err = schedule.Open(ctx, dbPath)
	require.NoError(t, err)
	var base string
	h.counter, base = countingProxy(t, api.URL())
	v, err := webhook.NewVerifier(secret, nil)
	require.NoError(t, err)
	h.m = metrics.New("test", "abc")
	opts.Calls = realtime.NewCalls(base, apiKey, nil)
	opts.Store, opts.Verifier, opts.Metrics = h.store, v, h.m
	opts.Session = session.Default()
	if opts.MaxCalls == 0 {
		opts.MaxCalls = 5
	}
	h.svc, err = service.New(opts)
	require.NoError(t, err)
	h.web = httptest.NewServer(h.svc.Handler())
	h.hookURL = h.web.URL + "/v1/openai/webhook"
	t.Cleanup(h.close)
	return h
}

func (h *secHarness) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_ = h.svc.Shutdown(ctx)
	h.web.Close()
	_ = h.store.Close()
}

// post signs body as OpenAI does (Standard Webhooks, written from the
// specification: HMAC-SHA256 keyed with the base64 part of the whsec_
// secret over "id.timestamp.body", header "v1,<base64>") and POSTs it.
func post(t testing.TB, hookURL, webhookID string, body []byte) int {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", webhookID, ts, body)
	req, err := http.NewRequest(http.MethodPost, hookURL, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", webhookID)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// incoming is a realtime.call.incoming event as documented (openai-go
// webhooks.RealtimeCallIncomingWebhookEvent); media "" omits
// sip_media_security.
func incoming(callID, media string) []byte {
	data := map[string]any{"call_id": callID, "sip_headers": []map[string]string{
		{"name": "From", "value": `"Caller" <sip:+15550001111@trunk.example>;tag=1`},
		{"name": "To", "value": "sip:+18005550100@sip.api.openai.com;transport=tls"},
	}}
	if media != "" {
		data["sip_media_security"] = media
	}
	b, _ := json.Marshal(map[string]any{"object": "event", "id": "evt_" + callID, "type": "realtime.call.incoming", "created_at": time.Now().Unix(), "data": data})
	return b
}

func TestReplayedWebhookIsAnswered2xxWithoutASecondAccept(t *testing.T) {
	api := realtimetest.New(apiKey)
	defer api.Close()
	h := newSecHarness(t, api, filepath.Join(t.TempDir(), "s.db"), service.Options{})
	call := api.NewCall()
	body := incoming(call.ID, "")
	assert.Equal(t, http.StatusOK, post(t, h.hookURL, "wh_1", body))
	require.NoError(t, call.WaitAccepted(ctx(t)))
	assert.Equal(t, http.StatusOK, post(t, h.hookURL, "wh_1", body), "an OpenAI retry or replay of the same webhook-id")
	assert.Equal(t, http.StatusOK, post(t, h.hookURL, "wh_2", body), "the same call_id under another webhook-id")
	assert.Equal(t, http.StatusOK, post(t, h.hookURL, "wh_2", body))
	assert.Equal(t, 1, h.counter.count("accept"), "one accept, whatever the deliveries")
	assert.Equal(t, 0, h.counter.count("reject"))
	assert.Equal(t, 3.0, testutil.ToFloat64(h.m.Webhooks.WithLabelValues(metrics.WebhookDuplicate)))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.m.Calls.WithLabelValues(metrics.OutcomeAccepted)))
}

func TestRestartDoesNotAcceptACallTwice(t *testing.T) {
	api := realtimetest.New(apiKey)
	defer api.Close()
	db := filepath.Join(t.TempDir(), "s.db")
	first := newSecHarness(t, api, db, service.Options{})
	call := api.NewCall()
	require.Equal(t, http.StatusOK, post(t, first.hookURL, "wh_1", incoming(call.ID, "")))
	require.NoError(t, call.WaitAccepted(ctx(t)))
	first.close()

	second := newSecHarness(t, api, db, service.Options{})
	assert.Equal(t, http.StatusOK, post(t, second.hookURL, "wh_1", incoming(call.ID, "")), "retry of the same delivery after a restart")
	assert.Equal(t, http.StatusOK, post(t, second.hookURL, "wh_7", incoming(call.ID, "")), "the call under a new webhook-id after a restart")
	assert.Equal(t, 0, second.counter.count("accept"), "the restarted agent does not accept the call again")
	assert.Equal(t, 0, second.counter.count("reject"))
}

func TestFailedAcceptReleasesTheClaim(t *testing.T) {
	api := realtimetest.New(apiKey)
	defer api.Close()
	h := newSecHarness(t, api, filepath.Join(t.TempDir(), "s.db"), service.Options{})
	// A call the API does not know: accept fails (404), the agent answers
	// 502 so OpenAI retries, and the retry is processed again.
	body := incoming("rtc_unknown", "")
	assert.Equal(t, http.StatusBadGateway, post(t, h.hookURL, "wh_1", body))
	assert.Equal(t, http.StatusBadGateway, post(t, h.hookURL, "wh_1", body))
	assert.Equal(t, 2, h.counter.count("accept"))
}

func TestSRTPPolicy(t *testing.T) {
	api := realtimetest.New(apiKey)
	defer api.Close()
	strict := newSecHarness(t, api, filepath.Join(t.TempDir(), "strict.db"), service.Options{RequireSRTP: true})
	for i, media := range []string{"rtp", "", "zrtp"} {
		call := api.NewCall()
		assert.Equal(t, http.StatusOK, post(t, strict.hookURL, fmt.Sprintf("wh_s%d", i), incoming(call.ID, media)), media)
		assert.Equal(t, 488, call.Rejected(), "media %q is refused with SIP 488 Not Acceptable Here", media)
	}
	assert.Equal(t, 0, strict.counter.count("accept"))
	assert.Equal(t, 3.0, testutil.ToFloat64(strict.m.Calls.WithLabelValues(metrics.OutcomeRejectedMedia)))
	secure := api.NewCall()
	assert.Equal(t, http.StatusOK, post(t, strict.hookURL, "wh_s9", incoming(secure.ID, "srtp")))
	require.NoError(t, secure.WaitAccepted(ctx(t)))
	assert.Equal(t, 1, strict.counter.count("accept"))

	lax := newSecHarness(t, api, filepath.Join(t.TempDir(), "lax.db"), service.Options{})
	plain := api.NewCall()
	assert.Equal(t, http.StatusOK, post(t, lax.hookURL, "wh_l1", incoming(plain.ID, "rtp")))
	require.NoError(t, plain.WaitAccepted(ctx(t)), "without the policy, RTP calls are accepted")
}

func staffRequest(t testing.TB, method, u, token string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestClientSecretNeedsTheStaffToken(t *testing.T) {
	api := realtimetest.New(apiKey)
	defer api.Close()
	off := newSecHarness(t, api, filepath.Join(t.TempDir(), "off.db"), service.Options{})
	code, _, _ := staffRequest(t, http.MethodPost, off.web.URL+"/v1/realtime/client-secret", "")
	assert.Equal(t, http.StatusNotFound, code, "no staff token configured: the endpoint does not exist")
	code, _, _ = staffRequest(t, http.MethodGet, off.web.URL+"/v1/staff/messages", "Bearer "+staffToken)
	assert.Equal(t, http.StatusNotFound, code)

	h := newSecHarness(t, api, filepath.Join(t.TempDir(), "on.db"), service.Options{StaffToken: staffToken})
	for _, auth := range []string{"", "Bearer", "Bearer wrong-token", "Basic " + staffToken, "Bearer " + staffToken + "x", "Bearer " + staffToken[:len(staffToken)-1]} {
		code, hdr, _ := staffRequest(t, http.MethodPost, h.web.URL+"/v1/realtime/client-secret", auth)
		assert.Equal(t, http.StatusUnauthorized, code, "Authorization %q", auth)
		assert.Equal(t, `Bearer realm="voice-agent staff"`, hdr.Get("WWW-Authenticate"))
	}
	assert.Empty(t, api.ClientSecrets(), "no credential was minted for an unauthenticated request")
	assert.Equal(t, 6.0, testutil.ToFloat64(h.m.ClientSecrets.WithLabelValues("unauthorized")))
	code, _, body := staffRequest(t, http.MethodPost, h.web.URL+"/v1/realtime/client-secret", "bearer "+staffToken)
	require.Equal(t, http.StatusOK, code, body)
	assert.Len(t, api.ClientSecrets(), 1)
}

func TestStaffMessagesEndpoint(t *testing.T) {
	api := realtimetest.New(apiKey)
	defer api.Close()
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	require.NoError(t, err)
	h := newSecHarness(t, api, filepath.Join(t.TempDir(), "s.db"), service.Options{StaffToken: staffToken, Location: kolkata})
	_, err = h.store.TakeMessage(context.Background(), schedule.Message{CallID: "rtc_1", CallerName: "Asha Rao", CallbackNumber: "+91 98765 43210", Reason: "billing"},
		time.Date(2026, 12, 1, 22, 45, 0, 0, time.UTC))
	require.NoError(t, err)

	code, _, _ := staffRequest(t, http.MethodGet, h.web.URL+"/v1/staff/messages", "")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, hdr, body := staffRequest(t, http.MethodGet, h.web.URL+"/v1/staff/messages", "Bearer "+staffToken)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "no-store", hdr.Get("Cache-Control"))
	var got struct {
		TimeZone string `json:"time_zone"`
		Messages []struct {
			CallerName, CallbackNumber, Reason, TakenAt string
		} `json:"messages"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	assert.Equal(t, "Asia/Kolkata", got.TimeZone)
	require.Len(t, got.Messages, 1)
	assert.Contains(t, body, `"taken_at":"2026-12-02T04:15:00+05:30"`, "the clinic's local time")
	assert.Contains(t, body, `"callback_number":"+91 98765 43210"`)
	code, _, body = staffRequest(t, http.MethodGet, h.web.URL+"/v1/staff/messages?since=2026-12-02T05:00:00%2B05:30", "Bearer "+staffToken)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"messages":[]`)
	code, _, _ = staffRequest(t, http.MethodGet, h.web.URL+"/v1/staff/messages?since=yesterday", "Bearer "+staffToken)
	assert.Equal(t, http.StatusBadRequest, code)
}

func TestAcceptedSessionTellsTheClinicsDateAndZone(t *testing.T) {
	api := realtimetest.New(apiKey)
	defer api.Close()
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	require.NoError(t, err)
	// 20:00 UTC on 1 December is 01:30 on 2 December in Kolkata.
	now := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	h := newSecHarness(t, api, filepath.Join(t.TempDir(), "s.db"), service.Options{Location: kolkata, Now: func() time.Time { return now }})
	call := api.NewCall()
	require.Equal(t, http.StatusOK, post(t, h.hookURL, "wh_1", incoming(call.ID, "")))
	require.NoError(t, call.WaitAccepted(ctx(t)))
	var sess struct {
		Instructions string `json:"instructions"`
	}
	require.NoError(t, json.Unmarshal(call.Session(), &sess))
	assert.True(t, strings.HasSuffix(sess.Instructions, "Today is Wednesday, 2 December 2026 (2026-12-02), 01:30 IST, in the clinic's time zone Asia/Kolkata (UTC+05:30)."), sess.Instructions)
}
