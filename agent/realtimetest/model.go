package realtimetest

import (
	"context"
	"encoding/json"
	"sync"
)

// Model produces the model's side of each response. The server calls
// Respond when a response starts: a client response.create, or
// automatically after a committed caller turn when the session's
// turn_detection.create_response is true (the API default for server_vad
// and semantic_vad).
type Model interface {
	Respond(ctx context.Context, req ResponseRequest) ([]Output, error)
}

// ModelFunc adapts a function to Model.
type ModelFunc func(ctx context.Context, req ResponseRequest) ([]Output, error)

// Respond calls f.
func (f ModelFunc) Respond(ctx context.Context, req ResponseRequest) ([]Output, error) {
	return f(ctx, req)
}

// Triggers of a response (ResponseRequest.Trigger).
const (
	TriggerResponseCreate = "response.create"
	TriggerTurnDetection  = "turn_detection"
)

// ResponseRequest is what the model sees when a response starts.
type ResponseRequest struct {
	CallID string
	// Session is the effective session: the accept body's session merged
	// with session.update events.
	Session json.RawMessage
	// Instructions are the effective instructions (response.create's
	// response.instructions overrides the session's).
	Instructions string
	// Tools is the effective tools array (the session's, or the
	// response.create override).
	Tools json.RawMessage
	// Conversation is the conversation so far, in order.
	Conversation []Item
	// Trigger is TriggerResponseCreate or TriggerTurnDetection.
	Trigger string
}

// Item is one conversation item as the model sees it.
type Item struct {
	Type      string // "message", "function_call", "function_call_output"
	Role      string // "user", "assistant", "system" for messages
	Text      string // message text (what the caller said for user audio; the assistant transcript)
	Name      string // function_call
	CallID    string // function_call / function_call_output
	Arguments string // function_call
	Output    string // function_call_output
}

// Output is one output item of a response: either spoken text or a
// function call.
type Output struct {
	// Text is assistant speech (the audio transcript); it produces audio of
	// a duration derived from its length (see WithAudioPace).
	Text string
	// FunctionCall is a function call the model makes instead.
	FunctionCall *FunctionCall
}

// FunctionCall is a function call of the model. The server assigns the
// call_id and item ids.
type FunctionCall struct{ Name, Arguments string }

// Say returns a spoken output.
func Say(text string) Output { return Output{Text: text} }

// CallTool returns a function call output.
func CallTool(name, arguments string) Output {
	return Output{FunctionCall: &FunctionCall{Name: name, Arguments: arguments}}
}

// Silent is the default model: every response is empty.
var Silent Model = ModelFunc(func(context.Context, ResponseRequest) ([]Output, error) { return nil, nil })

// Script is a Model that plays its steps in order, one per response, and
// then stays silent. A step sees the request (to check what the agent
// declared or sent) and returns the response's outputs. Safe for
// concurrent use across calls only if each call gets its own Script.
type Script struct {
	mu    sync.Mutex
	steps []func(ResponseRequest) ([]Output, error)
	seen  []ResponseRequest
}

// NewScript returns a Script of steps.
func NewScript(steps ...func(ResponseRequest) ([]Output, error)) *Script {
	return &Script{steps: steps}
}

// Reply is a step that always returns outs.
func Reply(outs ...Output) func(ResponseRequest) ([]Output, error) {
	return func(ResponseRequest) ([]Output, error) { return outs, nil }
}

// Respond plays the next step.
func (s *Script) Respond(_ context.Context, req ResponseRequest) ([]Output, error) {
	s.mu.Lock()
	s.seen = append(s.seen, req)
	if len(s.steps) == 0 {
		s.mu.Unlock()
		return nil, nil
	}
	step := s.steps[0]
	s.steps = s.steps[1:]
	s.mu.Unlock()
	return step(req)
}

// Requests returns every request the script saw, in order.
func (s *Script) Requests() []ResponseRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ResponseRequest(nil), s.seen...)
}
