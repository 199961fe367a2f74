package realtimetest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sign returns the Standard Webhooks signature header value ("v1,<base64
// HMAC-SHA256>") of a delivery: the HMAC key is the base64 part of a
// "whsec_" secret (any other secret is used as raw bytes, as openai-go
// does), the signed content is "<webhook-id>.<webhook-timestamp>.<body>".
func Sign(secret, id string, ts int64, body []byte) (string, error) {
	key := []byte(secret)
	if enc, ok := strings.CutPrefix(secret, "whsec_"); ok {
		var err error
		if key, err = base64.StdEncoding.DecodeString(enc); err != nil {
			return "", fmt.Errorf("realtimetest: webhook secret: the part after whsec_ is not base64: %w", err)
		}
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, ts)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// IncomingCall is the body of a realtime.call.incoming webhook (the shape
// of openai-go's webhooks.RealtimeCallIncomingWebhookEvent).
func IncomingCall(eventID, callID, from string, createdAt time.Time) []byte {
	body, _ := json.Marshal(map[string]any{
		"object": "event", "id": eventID, "type": "realtime.call.incoming",
		"created_at": createdAt.Unix(),
		"data": map[string]any{"call_id": callID, "sip_headers": []map[string]string{
			{"name": "From", "value": from},
			{"name": "To", "value": "sip:+18005550100@sip.api.openai.com;transport=tls"},
			{"name": "Call-ID", "value": callID + "@sip.example"},
		}},
	})
	return body
}

// DeliverIncoming signs a realtime.call.incoming webhook for call with
// secret and POSTs it to url, as OpenAI does. It returns the HTTP status.
func DeliverIncoming(ctx context.Context, client *http.Client, url, secret string, call *Call, from string) (int, error) {
	n := strings.TrimPrefix(call.ID, "rtc_")
	return Deliver(ctx, client, url, secret, "wh_"+n, time.Now(), IncomingCall("evt_"+n, call.ID, from, time.Now()))
}

// Deliver POSTs a signed webhook body with the Standard Webhooks headers.
func Deliver(ctx context.Context, client *http.Client, url, secret, id string, ts time.Time, body []byte) (int, error) {
	sig, err := Sign(secret, id, ts.Unix(), body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("realtimetest: webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("realtimetest: deliver webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
