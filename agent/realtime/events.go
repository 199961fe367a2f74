// Package realtime speaks the OpenAI Realtime API: typed client and server
// events (documented names only), a WebSocket connection helper over
// github.com/coder/websocket (used for the SIP "sideband" connection of a
// call and by the eval runner's live mode), and the calls REST client
// (accept, reject, refer, hangup, client secrets) over openai-go.
package realtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	oarealtime "github.com/openai/openai-go/v3/realtime"
)

// Client event types (sent to the API).
const (
	EventSessionUpdate          = "session.update"
	EventConversationItemCreate = "conversation.item.create"
	EventResponseCreate         = "response.create"
	EventResponseCancel         = "response.cancel"
)

// Server event types (received from the API) the agent acts on.
const (
	EventError                         = "error"
	EventSessionCreated                = "session.created"
	EventSessionUpdated                = "session.updated"
	EventConversationItemAdded         = "conversation.item.added"
	EventConversationItemDone          = "conversation.item.done"
	EventInputAudioTranscriptionDone   = "conversation.item.input_audio_transcription.completed"
	EventResponseCreated               = "response.created"
	EventResponseDone                  = "response.done"
	EventResponseOutputTextDelta       = "response.output_text.delta"
	EventResponseOutputTextDone        = "response.output_text.done"
	EventResponseOutputAudioTranscript = "response.output_audio_transcript.done"
	EventResponseFunctionCallArgsDelta = "response.function_call_arguments.delta"
	EventResponseFunctionCallArgsDone  = "response.function_call_arguments.done"
	EventInputAudioBufferSpeechStarted = "input_audio_buffer.speech_started"
	EventInputAudioBufferSpeechStopped = "input_audio_buffer.speech_stopped"
	EventRateLimitsUpdated             = "rate_limits.updated"
)

// SessionUpdate is the session.update client event.
type SessionUpdate struct {
	Type    string `json:"type"`
	EventID string `json:"event_id,omitempty"`
	Session any    `json:"session"`
}

// NewSessionUpdate returns a session.update event carrying session (the
// session object, e.g. session.Config.Object()).
func NewSessionUpdate(session any) SessionUpdate {
	return SessionUpdate{Type: EventSessionUpdate, Session: session}
}

// Item is a conversation item.
type Item struct {
	ID        string        `json:"id,omitempty"`
	Type      string        `json:"type"` // message, function_call, function_call_output
	Role      string        `json:"role,omitempty"`
	Status    string        `json:"status,omitempty"`
	Content   []ContentPart `json:"content,omitempty"`
	CallID    string        `json:"call_id,omitempty"`
	Name      string        `json:"name,omitempty"`
	Arguments string        `json:"arguments,omitempty"`
	Output    string        `json:"output,omitempty"`
}

// ContentPart is one part of a message item.
type ContentPart struct {
	Type       string `json:"type"` // input_text, output_text, output_audio, input_audio
	Text       string `json:"text,omitempty"`
	Transcript string `json:"transcript,omitempty"`
}

// ConversationItemCreate is the conversation.item.create client event.
type ConversationItemCreate struct {
	Type           string `json:"type"`
	EventID        string `json:"event_id,omitempty"`
	PreviousItemID string `json:"previous_item_id,omitempty"`
	Item           Item   `json:"item"`
}

// NewFunctionCallOutput returns the conversation.item.create event that
// answers the function call callID with output (JSON text).
func NewFunctionCallOutput(callID, output string) ConversationItemCreate {
	return ConversationItemCreate{Type: EventConversationItemCreate, Item: Item{Type: "function_call_output", CallID: callID, Output: output}}
}

// NewUserText returns a conversation.item.create event with a user text
// message (evals' text mode).
func NewUserText(text string) ConversationItemCreate {
	return ConversationItemCreate{Type: EventConversationItemCreate, Item: Item{Type: "message", Role: "user", Content: []ContentPart{{Type: "input_text", Text: text}}}}
}

// ResponseCreate is the response.create client event.
type ResponseCreate struct {
	Type     string          `json:"type"`
	EventID  string          `json:"event_id,omitempty"`
	Response *ResponseParams `json:"response,omitempty"`
}

// ResponseParams optionally overrides the response's configuration.
type ResponseParams struct {
	OutputModalities []string `json:"output_modalities,omitempty"`
	Instructions     string   `json:"instructions,omitempty"`
}

// NewResponseCreate returns a response.create event.
func NewResponseCreate() ResponseCreate { return ResponseCreate{Type: EventResponseCreate} }

// APIError is the error object of an error server event.
type APIError struct {
	Type    string `json:"type"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
	EventID string `json:"event_id,omitempty"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("realtime: %s (%s): %s", e.Type, e.Code, e.Message)
}

// Response is the response object of response.created / response.done.
type Response struct {
	ID            string          `json:"id"`
	Status        string          `json:"status"` // completed, cancelled, failed, incomplete, in_progress
	StatusDetails json.RawMessage `json:"status_details,omitempty"`
	Output        []Item          `json:"output"`
	Usage         *Usage          `json:"usage,omitempty"`
}

// Usage is the token usage of a response (response.done).
type Usage struct {
	TotalTokens  int `json:"total_tokens"`
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

// ServerEvent is any server event: Type says which fields are set.
type ServerEvent struct {
	Type    string `json:"type"`
	EventID string `json:"event_id"`

	// error
	Error *APIError `json:"error,omitempty"`
	// session.created / session.updated
	Session json.RawMessage `json:"session,omitempty"`
	// conversation.item.*
	Item *Item `json:"item,omitempty"`
	// response.created / response.done
	Response *Response `json:"response,omitempty"`

	// Fields of the streaming events.
	ResponseID   string `json:"response_id,omitempty"`
	ItemID       string `json:"item_id,omitempty"`
	OutputIndex  int    `json:"output_index,omitempty"`
	ContentIndex int    `json:"content_index,omitempty"`
	Delta        string `json:"delta,omitempty"`
	Text         string `json:"text,omitempty"`
	Transcript   string `json:"transcript,omitempty"`
	// response.function_call_arguments.done
	CallID    string `json:"call_id,omitempty"`
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments,omitempty"`
}

// MaxEventBytes bounds one event (audio deltas included).
const MaxEventBytes = 16 << 20

// ParseServerEvent decodes one server event. It rejects anything that is
// not a JSON object with a string "type".
func ParseServerEvent(data []byte) (ServerEvent, error) {
	var ev ServerEvent
	if len(data) > MaxEventBytes {
		return ev, fmt.Errorf("realtime: event of %d bytes exceeds %d", len(data), MaxEventBytes)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return ev, errors.New("realtime: event is not a JSON object")
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return ServerEvent{}, fmt.Errorf("realtime: decode event: %w", err)
	}
	if ev.Type == "" {
		return ServerEvent{}, errors.New(`realtime: event has no "type"`)
	}
	if ev.Type == EventError && ev.Error == nil {
		return ServerEvent{}, errors.New(`realtime: error event has no "error" object`)
	}
	if ev.Type == EventResponseFunctionCallArgsDone && (ev.CallID == "" || ev.Name == "") {
		return ServerEvent{}, errors.New(`realtime: response.function_call_arguments.done without "call_id" or "name"`)
	}
	return ev, nil
}

// FunctionCalls returns the completed function calls of a response.done
// event.
func (ev ServerEvent) FunctionCalls() []Item {
	if ev.Response == nil {
		return nil
	}
	var out []Item
	for _, it := range ev.Response.Output {
		if it.Type == "function_call" && it.CallID != "" {
			out = append(out, it)
		}
	}
	return out
}

// ClientEventType returns the "type" of a client event value.
func ClientEventType(ev any) string {
	switch e := ev.(type) {
	case SessionUpdate:
		return e.Type
	case ConversationItemCreate:
		return e.Type
	case ResponseCreate:
		return e.Type
	case *SessionUpdate:
		return e.Type
	case *ConversationItemCreate:
		return e.Type
	case *ResponseCreate:
		return e.Type
	case oarealtime.RealtimeClientEventUnionParam:
		// The SDK leaves constant types empty until encoded.
		b, err := json.Marshal(e)
		if err != nil {
			return ""
		}
		var env struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(b, &env)
		return env.Type
	}
	return ""
}
