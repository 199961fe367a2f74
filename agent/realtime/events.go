// Package realtime speaks the OpenAI Realtime API over openai-go's own
// event types: a WebSocket connection (github.com/coder/websocket) that
// sends the SDK's client events and reads server events as their type
// plus raw JSON for decoding into the SDK's event structs (used for the
// SIP "sideband" connection of a call and by the eval runner's live
// mode), and the calls REST client (accept, reject, refer, hangup, client
// secrets) over openai-go.
package realtime

import (
	"bytes"
	"encoding/json"
	"fmt"

	oarealtime "github.com/openai/openai-go/v3/realtime"
)

// Server event types (received from the API) the agent and the evals act
// on; the events themselves are decoded into openai-go's structs.
const (
	EventError                         = "error"
	EventSessionCreated                = "session.created"
	EventSessionUpdated                = "session.updated"
	EventInputAudioTranscriptionDone   = "conversation.item.input_audio_transcription.completed"
	EventResponseCreated               = "response.created"
	EventResponseDone                  = "response.done"
	EventResponseOutputTextDelta       = "response.output_text.delta"
	EventResponseOutputAudioTranscript = "response.output_audio_transcript.done"
	EventResponseFunctionCallArgsDone  = "response.function_call_arguments.done"
)

// MaxEventBytes bounds one event (audio deltas included).
const MaxEventBytes = 16 << 20

// ParseEvent reads one server event's envelope: it must be a JSON object
// with a non-empty string "type". The event's own fields are left for
// RawEvent.Decode. Errors wrap ErrBadEvent.
func ParseEvent(data []byte) (RawEvent, error) {
	if len(data) > MaxEventBytes {
		return RawEvent{}, fmt.Errorf("%w: event of %d bytes exceeds %d", ErrBadEvent, len(data), MaxEventBytes)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return RawEvent{}, fmt.Errorf("%w: event is not a JSON object", ErrBadEvent)
	}
	var envelope struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &envelope); err != nil {
		return RawEvent{}, fmt.Errorf("%w: decode event: %w", ErrBadEvent, err)
	}
	if envelope.Type == "" {
		return RawEvent{}, fmt.Errorf(`%w: event has no "type"`, ErrBadEvent)
	}
	return RawEvent{Type: envelope.Type, Raw: data}, nil
}

// ClientEventType returns the "type" of a client event.
func ClientEventType(ev oarealtime.RealtimeClientEventUnionParam) string {
	// The SDK leaves constant types empty until encoded.
	b, err := json.Marshal(ev)
	if err != nil {
		return ""
	}
	var env struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(b, &env)
	return env.Type
}
