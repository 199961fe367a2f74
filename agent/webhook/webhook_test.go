package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/webhook"
)

var secret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

const body = `{"object":"event","id":"evt_1","type":"realtime.call.incoming","created_at":1750287018,"data":{"call_id":"rtc_abc","sip_headers":[{"name":"From","value":"\"Pat\" <sip:+15551234567@example.com>;tag=1"},{"name":"To","value":"sip:+18005550100@sip.api.openai.com"}]}}`

var now = time.Unix(1750287078, 0)

// sign is the Standard Webhooks signature (what OpenAI sends), written
// from the specification, not from the code under test: HMAC-SHA256 keyed
// with the base64-decoded part after whsec_, over "id.timestamp.body",
// sent as "v1,<base64>".
func sign(t *testing.T, sec, id string, ts int64, b string) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, "whsec_"))
	require.NoError(t, err)
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.%s", id, ts, b)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func headers(t *testing.T, sec, id string, ts time.Time, b string) http.Header {
	t.Helper()
	sig := sign(t, sec, id, ts.Unix(), b)
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", sig)
	return h
}

func verifier(t *testing.T) *webhook.Verifier {
	t.Helper()
	v, err := webhook.NewVerifier(secret, func() time.Time { return now })
	require.NoError(t, err)
	return v
}

func reason(err error) string {
	var we *webhook.Error
	if errors.As(err, &we) {
		return we.Reason
	}
	return ""
}

func TestVerify(t *testing.T) {
	other := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another-secret-of-32-bytes-long!"))
	cases := []struct {
		name   string
		h      func(t *testing.T) http.Header
		body   string
		reason string
	}{
		{"valid", func(t *testing.T) http.Header { return headers(t, secret, "wh_1", now, body) }, body, ""},
		{"valid within tolerance", func(t *testing.T) http.Header { return headers(t, secret, "wh_2", now.Add(-4*time.Minute), body) }, body, ""},
		{"wrong secret", func(t *testing.T) http.Header { return headers(t, other, "wh_3", now, body) }, body, webhook.ReasonSignature},
		{"stale timestamp", func(t *testing.T) http.Header { return headers(t, secret, "wh_4", now.Add(-6*time.Minute), body) }, body, webhook.ReasonTimestamp},
		{"future timestamp", func(t *testing.T) http.Header { return headers(t, secret, "wh_5", now.Add(6*time.Minute), body) }, body, webhook.ReasonTimestamp},
		{"tampered body", func(t *testing.T) http.Header { return headers(t, secret, "wh_6", now, body) }, body + " ", webhook.ReasonSignature},
		{"id not signed", func(t *testing.T) http.Header {
			h := headers(t, secret, "wh_7", now, body)
			h.Set("webhook-id", "wh_other")
			return h
		}, body, webhook.ReasonSignature},
		{"missing signature", func(t *testing.T) http.Header {
			h := headers(t, secret, "wh_8", now, body)
			h.Del("webhook-signature")
			return h
		}, body, webhook.ReasonHeaders},
		{"bad timestamp", func(t *testing.T) http.Header {
			h := headers(t, secret, "wh_9", now, body)
			h.Set("webhook-timestamp", "yesterday")
			return h
		}, body, webhook.ReasonHeaders},
		{"second of several signatures matches", func(t *testing.T) http.Header {
			h := headers(t, secret, "wh_10", now, body)
			h.Set("webhook-signature", "v1,AAAA "+h.Get("webhook-signature"))
			return h
		}, body, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := verifier(t).Verify([]byte(tc.body), tc.h(t))
			if tc.reason == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.reason, reason(err), "%v", err)
		})
	}
}

func TestVerifyLeavesDeduplicationToTheCaller(t *testing.T) {
	// A replayed delivery is authentic: Verify accepts it again, and the
	// service answers it 200 without side effects (its own deduplication,
	// persisted), instead of an error status OpenAI would retry forever.
	v := verifier(t)
	h := headers(t, secret, "wh_replay", now, body)
	require.NoError(t, v.Verify([]byte(body), h))
	require.NoError(t, v.Verify([]byte(body), h))
}

func TestSecretValidation(t *testing.T) {
	require.NoError(t, webhook.ValidateSecret(secret))
	assert.ErrorContains(t, webhook.ValidateSecret("plain-secret"), "does not start with whsec_")
	_, err := webhook.NewVerifier(base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")), nil)
	assert.ErrorContains(t, err, "does not start with whsec_", "a raw key is no longer taken as the secret")
	assert.ErrorContains(t, webhook.ValidateSecret(""), "empty")
	assert.ErrorContains(t, webhook.ValidateSecret("whsec_!!notbase64"), "base64")
	assert.ErrorContains(t, webhook.ValidateSecret("whsec_"+base64.StdEncoding.EncodeToString([]byte("short"))), "24 bytes")
	_, err = webhook.NewVerifier("", nil)
	require.Error(t, err)
}

func TestMediaSecurity(t *testing.T) {
	for field, want := range map[string]string{
		`,"sip_media_security":"srtp"`: webhook.MediaSRTP,
		`,"sip_media_security":"rtp"`:  webhook.MediaRTP,
		``:                             "",
		`,"sip_media_security":"zrtp"`: "zrtp",
	} {
		ev, err := webhook.ParseEvent([]byte(`{"id":"e","type":"realtime.call.incoming","data":{"call_id":"rtc_1","sip_headers":[]` + field + `}}`))
		require.NoError(t, err)
		call, err := ev.IncomingCall()
		require.NoError(t, err)
		assert.Equal(t, want, call.MediaSecurity(), field)
	}
}

func TestParseIncomingCall(t *testing.T) {
	ev, err := webhook.ParseEvent([]byte(body))
	require.NoError(t, err)
	assert.Equal(t, webhook.TypeRealtimeCallIncoming, ev.Type)
	call, err := ev.IncomingCall()
	require.NoError(t, err)
	assert.Equal(t, "rtc_abc", call.CallID)
	assert.Equal(t, "+15551234567", call.CallerNumber())
	assert.Equal(t, "sip:+18005550100@sip.api.openai.com", call.Header("to"))

	for _, bad := range []string{``, `[]`, `{"id":"x"}`, `{"type":"realtime.call.incoming"}`, `{"id":"e","type":"x"`} {
		_, err := webhook.ParseEvent([]byte(bad))
		assert.Error(t, err, bad)
	}
	ev, err = webhook.ParseEvent([]byte(`{"id":"e","type":"realtime.call.incoming","data":{"sip_headers":[]}}`))
	require.NoError(t, err)
	_, err = ev.IncomingCall()
	assert.ErrorContains(t, err, "call_id")
	ev, err = webhook.ParseEvent([]byte(`{"id":"e","type":"response.completed","data":{}}`))
	require.NoError(t, err)
	_, err = ev.IncomingCall()
	assert.ErrorContains(t, err, "is not realtime.call.incoming")
}

func TestCallerNumberForms(t *testing.T) {
	for from, want := range map[string]string{
		`<sip:+15551234567@x.com>;tag=1`: "+15551234567",
		`sip:alice@x.com`:                "alice",
		`"A" <tel:+15550001111>`:         "+15550001111",
		`<sips:+1555;user=phone>`:        "+1555",
		``:                               "",
	} {
		body := fmt.Sprintf(`{"id":"e","type":"realtime.call.incoming","data":{"call_id":"rtc_1","sip_headers":[{"name":"From","value":%q}]}}`, from)
		ev, err := webhook.ParseEvent([]byte(body))
		require.NoError(t, err)
		c, err := ev.IncomingCall()
		require.NoError(t, err)
		assert.Equal(t, want, c.CallerNumber(), from)
	}
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(body))
	f.Add([]byte(`{"id":"e","type":"realtime.call.incoming","data":{"call_id":"c","sip_headers":[{"name":"From","value":"<sip:@;>"}]}}`))
	f.Add([]byte(`{"id":"e","type":"realtime.call.incoming","data":null}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := webhook.ParseEvent(b)
		if err != nil {
			return
		}
		require.NotEmpty(t, ev.ID)
		require.NotEmpty(t, ev.Type)
		if call, err := ev.IncomingCall(); err == nil {
			require.NotEmpty(t, call.CallID)
			_ = call.CallerNumber()
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte(body), "wh_1", strconv.FormatInt(now.Unix(), 10), "v1,AAAA")
	f.Add([]byte(body), "", "", "")
	f.Add([]byte{}, "x", "-1", "v1,")
	f.Add([]byte(body), "wh_1", "99999999999999999999", "v2,abc v1,def")
	f.Fuzz(func(t *testing.T, b []byte, id, ts, sig string) {
		v, err := webhook.NewVerifier(secret, func() time.Time { return now })
		require.NoError(t, err)
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		// A forged signature must never verify.
		require.Error(t, v.Verify(b, h))
	})
}
