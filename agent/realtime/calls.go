package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	oarealtime "github.com/openai/openai-go/v3/realtime"
)

// DefaultBaseURL is the OpenAI API base URL.
const DefaultBaseURL = "https://api.openai.com/v1"

// Calls is the Realtime calls REST client (accept, reject, refer, hangup)
// and client-secret minting, built on the official openai-go SDK. It
// implements tools.CallControl.
type Calls struct {
	client  openai.Client
	baseURL string
	apiKey  string
}

// NewCalls returns a client for the API at baseURL ("" for the default).
// httpClient may be nil.
func NewCalls(baseURL, apiKey string, httpClient *http.Client) *Calls {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	opts := []option.RequestOption{
		option.WithBaseURL(baseURL),
		option.WithAPIKey(apiKey),
		// A webhook handler has seconds before the caller hears ringing
		// time out: retry once, quickly.
		option.WithMaxRetries(1),
		option.WithRequestTimeout(10 * time.Second),
	}
	if httpClient != nil {
		opts = append(opts, option.WithHTTPClient(httpClient))
	}
	return &Calls{client: openai.NewClient(opts...), baseURL: baseURL, apiKey: apiKey}
}

// BaseURL returns the API base URL.
func (c *Calls) BaseURL() string { return c.baseURL }

// APIKey returns the API key (for the sideband Dial).
func (c *Calls) APIKey() string { return c.apiKey }

// Accept accepts the incoming SIP call callID with sessionJSON (the
// documented session object, e.g. session.Config.JSON()) as the body of
// POST /realtime/calls/{call_id}/accept, sent as the SDK's
// CallAcceptParams. Check the session's shape once with AcceptParams
// (the service does at start).
func (c *Calls) Accept(ctx context.Context, callID string, sessionJSON []byte) error {
	var params oarealtime.CallAcceptParams
	if err := json.Unmarshal(sessionJSON, &params); err != nil {
		return fmt.Errorf("realtime: session object: %w", err)
	}
	if err := c.client.Realtime.Calls.Accept(ctx, callID, params); err != nil {
		return wrap("accept call", err)
	}
	return nil
}

// AcceptParams decodes a session object into the SDK's CallAcceptParams
// and refuses it if the SDK's type cannot carry every field (the SDK drops
// what it does not know): a session field the protocol lost fails here,
// in tests, instead of silently on a call.
func AcceptParams(sessionJSON []byte) (oarealtime.CallAcceptParams, error) {
	var params oarealtime.CallAcceptParams
	if err := json.Unmarshal(sessionJSON, &params); err != nil {
		return params, fmt.Errorf("realtime: session object: %w", err)
	}
	back, err := json.Marshal(params)
	if err != nil {
		return params, fmt.Errorf("realtime: encode accept params: %w", err)
	}
	var want, got any
	if err := json.Unmarshal(sessionJSON, &want); err != nil {
		return params, fmt.Errorf("realtime: session object: %w", err)
	}
	_ = json.Unmarshal(back, &got)
	if !reflect.DeepEqual(want, got) {
		return params, fmt.Errorf("realtime: the session object has fields openai-go's CallAcceptParams does not carry: sent %s, SDK keeps %s", sessionJSON, back)
	}
	return params, nil
}

// Reject declines the incoming call with a SIP status code (e.g. 486 Busy
// Here when at capacity, 603 Decline).
func (c *Calls) Reject(ctx context.Context, callID string, sipStatus int) error {
	err := c.client.Realtime.Calls.Reject(ctx, callID, oarealtime.CallRejectParams{StatusCode: openai.Int(int64(sipStatus))})
	if err != nil {
		return wrap("reject call", err)
	}
	return nil
}

// Transfer transfers the call with a SIP REFER to target (tel: or sip: URI).
func (c *Calls) Transfer(ctx context.Context, callID, target string) error {
	err := c.client.Realtime.Calls.Refer(ctx, callID, oarealtime.CallReferParams{TargetUri: target})
	if err != nil {
		return wrap("refer call", err)
	}
	return nil
}

// Hangup ends the call.
func (c *Calls) Hangup(ctx context.Context, callID string) error {
	if err := c.client.Realtime.Calls.Hangup(ctx, callID); err != nil {
		return wrap("hang up call", err)
	}
	return nil
}

// ClientSecret is a short-lived client secret for a browser/WebRTC client.
type ClientSecret struct {
	Value     string          `json:"value"`
	ExpiresAt int64           `json:"expires_at"`
	Session   json.RawMessage `json:"session,omitempty"`
}

// MintClientSecret creates a client secret (POST /realtime/client_secrets)
// for a session configured with sessionJSON, valid for ttl (10 s to 2 h).
func (c *Calls) MintClientSecret(ctx context.Context, sessionJSON []byte, ttl time.Duration) (ClientSecret, error) {
	body, err := json.Marshal(map[string]any{
		"expires_after": map[string]any{"anchor": "created_at", "seconds": int64(ttl.Seconds())},
		"session":       json.RawMessage(sessionJSON),
	})
	if err != nil {
		return ClientSecret{}, fmt.Errorf("realtime: encode client secret request: %w", err)
	}
	var res ClientSecret
	_, err = c.client.Realtime.ClientSecrets.New(ctx, oarealtime.ClientSecretNewParams{},
		option.WithRequestBody("application/json", body), option.WithResponseBodyInto(&res))
	if err != nil {
		return ClientSecret{}, wrap("mint client secret", err)
	}
	if res.Value == "" {
		return ClientSecret{}, fmt.Errorf("realtime: mint client secret: response has no value")
	}
	return res, nil
}

// wrap adds the API's error code and message (never the key or request
// body) to err, which stays inspectable with errors.As(*openai.Error).
func wrap(op string, err error) error {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) && apiErr.Code != "" {
		return fmt.Errorf("realtime: %s: %w (%s: %s)", op, err, apiErr.Code, apiErr.Message)
	}
	return fmt.Errorf("realtime: %s: %w", op, err)
}
