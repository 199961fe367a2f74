package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"
	oarealtime "github.com/openai/openai-go/v3/realtime"
)

// Conn is a Realtime WebSocket connection. Send and NextEvent may be used from
// different goroutines; Send is safe for concurrent use.
type Conn struct {
	ws *websocket.Conn
}

// Dial opens a Realtime WebSocket at wsURL (e.g. SidebandURL's result)
// authenticated with apiKey.
func Dial(ctx context.Context, wsURL, apiKey string) (*Conn, error) {
	return DialWith(ctx, wsURL, apiKey, nil)
}

// DialWith is Dial with a custom HTTP client (nil for the default).
func DialWith(ctx context.Context, wsURL, apiKey string, client *http.Client) (*Conn, error) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+apiKey)
	ws, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: h, HTTPClient: client})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &DialError{URL: redactQuery(wsURL), StatusCode: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After"), Err: err}
		}
		return nil, fmt.Errorf("realtime: dial %s: %w", redactQuery(wsURL), err)
	}
	ws.SetReadLimit(MaxEventBytes)
	return &Conn{ws: ws}, nil
}

// DialError is a refused WebSocket handshake (e.g. 401, 429, 5xx).
type DialError struct {
	URL        string
	StatusCode int
	RetryAfter string // the Retry-After header, if any
	Err        error
}

func (e *DialError) Error() string {
	return fmt.Sprintf("realtime: dial %s: HTTP %d: %v", e.URL, e.StatusCode, e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

// Send writes one client event as a JSON text message.
func (c *Conn) Send(ctx context.Context, ev oarealtime.RealtimeClientEventUnionParam) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("realtime: encode %s: %w", ClientEventType(ev), err)
	}
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("realtime: send %s: %w", ClientEventType(ev), err)
	}
	return nil
}

// ErrClosed is returned by Next when the peer closed the connection
// normally (for a call: the call ended).
var ErrClosed = errors.New("realtime: connection closed")

// ErrBadEvent marks a malformed server event.
var ErrBadEvent = errors.New("realtime: malformed server event")

// Close closes the connection normally.
func (c *Conn) Close() error {
	return c.ws.Close(websocket.StatusNormalClosure, "")
}

// CloseNow closes the connection without the closing handshake.
func (c *Conn) CloseNow() error { return c.ws.CloseNow() }

// SidebandURL returns the WebSocket URL of the sideband connection of a
// call: the API base URL (e.g. https://api.openai.com/v1) with ws(s) scheme
// and path /realtime?call_id=callID.
func SidebandURL(baseURL, callID string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return "", fmt.Errorf("realtime: base URL %q: %w", baseURL, err)
	}
	switch u.Scheme {
	case "https", "wss":
		u.Scheme = "wss"
	case "http", "ws":
		u.Scheme = "ws"
	default:
		return "", fmt.Errorf("realtime: base URL %q: scheme must be https or http", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/realtime"
	u.RawQuery = url.Values{"call_id": {callID}}.Encode()
	return u.String(), nil
}

// ModelURL returns the WebSocket URL of a new session with model (no SIP
// call: the eval runner's live mode).
func ModelURL(baseURL, model string) (string, error) {
	s, err := SidebandURL(baseURL, "")
	if err != nil {
		return "", err
	}
	u, _ := url.Parse(s)
	u.RawQuery = url.Values{"model": {model}}.Encode()
	return u.String(), nil
}

func redactQuery(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i]
	}
	return s
}
