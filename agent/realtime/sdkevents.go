package realtime

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/coder/websocket"
	"github.com/openai/openai-go/v3"
	oarealtime "github.com/openai/openai-go/v3/realtime"
	"github.com/openai/openai-go/v3/shared"
)

// The call loop speaks the SDK's event types (openai-go v3 realtime):
// client events are RealtimeClientEventUnionParam values, server events
// RealtimeServerEventUnion, so a protocol change in the SDK breaks the
// build rather than the call.

// MetadataRequest is the response metadata key holding the event_id of
// the response.create that asked for the response.
const MetadataRequest = "request"

// ResponseCreateEvent returns a response.create client event with
// eventID (so a refusal, e.g. conversation_already_has_active_response,
// names it) and, if not empty, instructions for this response only.
func ResponseCreateEvent(eventID, instructions string) oarealtime.RealtimeClientEventUnionParam {
	ev := &oarealtime.ResponseCreateEventParam{EventID: openai.String(eventID)}
	// The API echoes a response's metadata in response.created/done: it
	// tells which response.create a response answers.
	ev.Response.Metadata = shared.Metadata{MetadataRequest: eventID}
	if instructions != "" {
		ev.Response.Instructions = openai.String(instructions)
	}
	return oarealtime.RealtimeClientEventUnionParam{OfResponseCreate: ev}
}

// FunctionCallOutputEvent returns the conversation.item.create client
// event answering the function call callID with output.
func FunctionCallOutputEvent(eventID, callID, output string) oarealtime.RealtimeClientEventUnionParam {
	return oarealtime.RealtimeClientEventUnionParam{OfConversationItemCreate: &oarealtime.ConversationItemCreateEventParam{
		EventID: openai.String(eventID),
		Item: oarealtime.ConversationItemUnionParam{OfFunctionCallOutput: &oarealtime.RealtimeConversationItemFunctionCallOutputParam{
			CallID: callID, Output: output,
		}},
	}}
}

// SystemMessageEvent returns a conversation.item.create client event with
// a system message (e.g. a failed transfer the model must know about).
func SystemMessageEvent(eventID, text string) oarealtime.RealtimeClientEventUnionParam {
	return oarealtime.RealtimeClientEventUnionParam{OfConversationItemCreate: &oarealtime.ConversationItemCreateEventParam{
		EventID: openai.String(eventID),
		Item: oarealtime.ConversationItemUnionParam{OfRealtimeSystemMessageItem: &oarealtime.RealtimeConversationItemSystemMessageParam{
			Content: []oarealtime.RealtimeConversationItemSystemMessageContentParam{{Type: "input_text", Text: openai.String(text)}},
		}},
	}}
}

// Server event types of the SIP output audio buffer.
const (
	EventOutputAudioBufferStarted = "output_audio_buffer.started"
	EventOutputAudioBufferStopped = "output_audio_buffer.stopped"
	EventOutputAudioBufferCleared = "output_audio_buffer.cleared"
)

// RawEvent is one server event: its type, and its JSON for Decode into
// the SDK's event struct of that type (e.g. oarealtime.ResponseDoneEvent).
// Only the events a reader acts on are decoded: audio and transcript
// deltas are many and cost nothing when skipped.
type RawEvent struct {
	Type string
	Raw  []byte
}

// Decode decodes the event into v, an SDK event struct.
func (e RawEvent) Decode(v any) error {
	if err := json.Unmarshal(e.Raw, v); err != nil {
		return fmt.Errorf("%w: decode %s: %w", ErrBadEvent, e.Type, err)
	}
	return nil
}

// NextEvent reads the next server event. Events that are not a JSON
// object with a string "type" are returned as errors wrapping
// ErrBadEvent; the connection stays usable. A normal close is ErrClosed.
func (c *Conn) NextEvent(ctx context.Context) (RawEvent, error) {
	_, data, err := c.ws.Read(ctx)
	if err != nil {
		switch websocket.CloseStatus(err) {
		case websocket.StatusNormalClosure, websocket.StatusGoingAway:
			return RawEvent{}, ErrClosed
		}
		return RawEvent{}, fmt.Errorf("realtime: read: %w", err)
	}
	return ParseEvent(data)
}
