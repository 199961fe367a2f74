// Package webhook verifies and parses OpenAI webhooks (Standard Webhooks
// scheme: webhook-id, webhook-timestamp and webhook-signature headers,
// HMAC-SHA256 over "id.timestamp.body" with the whsec_ secret).
//
// Signature and timestamp checks are delegated to the official openai-go
// SDK (webhooks.WebhookService.VerifySignatureWithToleranceAndTime), which
// implements exactly that scheme and needs no base URL. The SDK leaves
// replay protection to the caller ("callers must deduplicate authenticated
// deliveries"): the service does it, persistently, by webhook-id and by
// call_id (schedule.Store.ClaimDelivery), and answers a duplicate 200.
package webhook

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/webhooks"
)

// Tolerance is how far a webhook timestamp may be from now.
const Tolerance = 5 * time.Minute

// Failure reasons (metric label values).
const (
	ReasonHeaders   = "headers"
	ReasonTimestamp = "timestamp"
	ReasonSignature = "signature"
	ReasonSecret    = "secret"
)

// Error is a verification failure.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return "webhook: " + e.Reason + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Verifier verifies webhook signatures and timestamps. Safe for
// concurrent use.
type Verifier struct {
	svc webhooks.WebhookService
	now func() time.Time
}

// ValidateSecret checks a webhook secret: whsec_ followed by canonical
// base64 of at least 24 bytes, as the OpenAI dashboard shows it. Anything
// else is refused (the SDK would take it as a raw key, and every webhook
// would then fail with 401).
func ValidateSecret(secret string) error {
	if secret == "" {
		return errors.New("webhook secret is empty")
	}
	enc, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return errors.New("webhook secret does not start with whsec_: paste the webhook's signing secret exactly as the OpenAI dashboard shows it")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(enc)
	if err != nil || base64.StdEncoding.EncodeToString(raw) != enc {
		return errors.New("webhook secret after whsec_ is not canonical base64: copy it exactly as shown by OpenAI")
	}
	if len(raw) < 24 {
		return errors.New("webhook secret is shorter than 24 bytes: copy it exactly as shown by OpenAI")
	}
	return nil
}

// NewVerifier returns a verifier for secret. now may be nil (time.Now).
func NewVerifier(secret string, now func() time.Time) (*Verifier, error) {
	if err := ValidateSecret(secret); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Verifier{svc: webhooks.NewWebhookService(option.WithWebhookSecret(secret)), now: now}, nil
}

// Verify checks the signature and freshness of a delivery. It does not
// deduplicate: a replayed delivery verifies again (the caller decides,
// from the webhook-id and the event, whether it was already handled).
func (v *Verifier) Verify(body []byte, h http.Header) error {
	if err := v.svc.VerifySignatureWithToleranceAndTime(body, h, Tolerance, v.now()); err != nil {
		return &Error{Reason: classify(err), Err: err}
	}
	if h.Get("webhook-id") == "" {
		return &Error{Reason: ReasonHeaders, Err: errors.New("webhook-id header is empty")}
	}
	return nil
}

func classify(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "timestamp is too"):
		return ReasonTimestamp
	case strings.Contains(msg, "missing required"), strings.Contains(msg, "timestamp format"), strings.Contains(msg, "headers are required"):
		return ReasonHeaders
	case strings.Contains(msg, "webhook secret"):
		return ReasonSecret
	default:
		return ReasonSignature
	}
}

// Event types the agent handles.
const (
	TypeRealtimeCallIncoming = "realtime.call.incoming"
)

// Event is a webhook event: {"object":"event","id","type","created_at","data"}.
type Event struct {
	Object    string          `json:"object"`
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt int64           `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// IncomingCall is the data of a realtime.call.incoming event, decoded with
// the SDK's type (call_id, sip_headers, sip_media_security), so a field
// the API adds or renames shows up in the SDK rather than being dropped here.
type IncomingCall struct {
	webhooks.RealtimeCallIncomingWebhookEventData
}

// Media security values of sip_media_security (the SDK documents "srtp"
// and "rtp"; it is omitted when unknown and other values may appear).
const (
	MediaSRTP = "srtp"
	MediaRTP  = "rtp"
)

// MediaSecurity is sip_media_security: "srtp", "rtp", "" when unknown, or
// a value this version does not know (treat as unknown).
func (c IncomingCall) MediaSecurity() string { return c.SipMediaSecurity }

// Header returns the first SIP header named name (case-insensitive).
func (c IncomingCall) Header(name string) string {
	for _, h := range c.SipHeaders {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// CallerNumber extracts the number or user of the SIP From header
// ("Name" <sip:+15551234567@host>;tag=x -> +15551234567), "" if none.
func (c IncomingCall) CallerNumber() string {
	from := c.Header("From")
	if i := strings.IndexByte(from, '<'); i >= 0 {
		from = from[i+1:]
		if j := strings.IndexByte(from, '>'); j >= 0 {
			from = from[:j]
		}
	}
	for _, scheme := range []string{"sips:", "sip:", "tel:"} {
		if rest, ok := strings.CutPrefix(from, scheme); ok {
			from = rest
			break
		}
	}
	if i := strings.IndexAny(from, "@;"); i >= 0 {
		from = from[:i]
	}
	return strings.TrimSpace(from)
}

// MaxBodyBytes bounds a webhook body.
const MaxBodyBytes = 1 << 20

// ParseEvent decodes a webhook body (after Verify).
func ParseEvent(body []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return Event{}, fmt.Errorf("webhook: body is not a JSON event: %w", err)
	}
	if ev.Type == "" || ev.ID == "" {
		return Event{}, errors.New(`webhook: event lacks "id" or "type"`)
	}
	return ev, nil
}

// IncomingCall decodes the data of a realtime.call.incoming event.
func (e Event) IncomingCall() (IncomingCall, error) {
	if e.Type != TypeRealtimeCallIncoming {
		return IncomingCall{}, fmt.Errorf("webhook: event type %q is not %s", e.Type, TypeRealtimeCallIncoming)
	}
	var c IncomingCall
	if err := json.Unmarshal(e.Data, &c.RealtimeCallIncomingWebhookEventData); err != nil {
		return IncomingCall{}, fmt.Errorf("webhook: realtime.call.incoming data: %w", err)
	}
	if c.CallID == "" {
		return IncomingCall{}, errors.New(`webhook: realtime.call.incoming without "call_id"`)
	}
	return c, nil
}
