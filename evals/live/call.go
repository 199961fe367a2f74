package live

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"gitlab.com/acme/voice-agent/evals/replay"
	"gitlab.com/acme/voice-agent/evals/runner"
)

// CallModel is the live model behind the loopback Realtime API in live and
// record modes: the agent service accepts the call with its production
// session object, and every response the call needs is asked of the real
// Realtime API, in a session configured with that same object (text output,
// so no audio is paid for), fed with the same conversation items. The
// agent's tools therefore run only in agent/service, as on a phone call.
type CallModel struct {
	Client *Client
	// ID is the model to run (--model); it replaces the session's model.
	ID string
	// Audio maps a caller turn's words to a WAV file of them (PCM16 mono
	// 24 kHz): that turn is sent as audio (input_audio_buffer.append and
	// commit), so the model hears the caller.
	Audio map[string]string

	mu      sync.Mutex
	cmu     sync.Mutex // guards conv and usage, so Close and Usage never wait for a response
	conv    *Conversation
	synced  int
	pending []string          // API call ids of the last response's calls, in order
	ids     map[string]string // loopback call id -> API call id
	usage   runner.Usage
}

// NewCallModel returns the live model of one call.
func NewCallModel(c *Client, model string) *CallModel {
	return &CallModel{Client: c, ID: model, ids: map[string]string{}}
}

// Usage is the tokens the call used.
func (m *CallModel) Usage() runner.Usage {
	m.cmu.Lock()
	defer m.cmu.Unlock()
	return m.usage
}

// TextSession returns the accepted session object with text output and
// the given model: what the live session is configured with.
func TextSession(accepted json.RawMessage, model string) (map[string]any, error) {
	var obj map[string]any
	if err := json.Unmarshal(accepted, &obj); err != nil {
		return nil, fmt.Errorf("live: the accepted session is not a JSON object: %w", err)
	}
	obj["model"] = model
	obj["output_modalities"] = []string{"text"}
	// Caller audio is committed turn by turn and answered with
	// response.create, so server VAD is off in this session.
	audio, _ := obj["audio"].(map[string]any)
	if audio == nil {
		audio = map[string]any{}
	}
	input, _ := audio["input"].(map[string]any)
	if input == nil {
		input = map[string]any{}
	}
	input["turn_detection"] = nil
	audio["input"] = input
	obj["audio"] = audio
	return obj, nil
}

// Respond asks the live model for the next response.
func (m *CallModel) Respond(ctx context.Context, req replay.Request) ([]replay.Output, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cmu.Lock()
	conv := m.conv
	m.cmu.Unlock()
	if conv == nil {
		obj, err := TextSession(req.Session, m.ID)
		if err != nil {
			return nil, err
		}
		conv, err = m.Client.open(ctx, m.ID, obj)
		if err != nil {
			return nil, err
		}
		m.cmu.Lock()
		m.conv = conv
		m.cmu.Unlock()
	}
	var in runner.Input
	var users []string
	for _, it := range req.Conversation[m.synced:] {
		switch {
		case it.Type == "message" && it.Role == "user":
			users = append(users, it.Text)
		case it.Type == "function_call":
			if len(m.pending) > 0 {
				m.ids[it.CallID], m.pending = m.pending[0], m.pending[1:]
			}
		case it.Type == "function_call_output":
			id, ok := m.ids[it.CallID]
			if !ok {
				return nil, fmt.Errorf("live: output for call %s that the model did not make", it.CallID)
			}
			in.Outputs = append(in.Outputs, runner.ToolOutput{CallID: id, Output: it.Output})
		}
	}
	m.synced = len(req.Conversation)
	in.Caller = strings.Join(users, "\n")
	if path, ok := m.Audio[in.Caller]; ok && len(users) == 1 {
		pcm, err := ReadPCM16(path)
		if err != nil {
			return nil, err
		}
		in.Audio = pcm
	}
	resp, err := conv.Respond(ctx, in)
	if err != nil {
		return nil, err
	}
	m.cmu.Lock()
	m.usage.InputTokens += resp.Usage.InputTokens
	m.usage.OutputTokens += resp.Usage.OutputTokens
	m.usage.TotalTokens += resp.Usage.TotalTokens
	m.cmu.Unlock()
	var out []replay.Output
	if resp.Text != "" {
		out = append(out, replay.Output{Text: resp.Text})
	}
	m.pending = nil
	for _, c := range resp.Calls {
		m.pending = append(m.pending, c.ID)
		out = append(out, replay.Output{FunctionCall: &replay.FunctionCall{Name: c.Name, Arguments: c.Arguments}})
	}
	// The model's own items are in the next request's conversation: skip
	// them (function calls are matched to their API ids above).
	return out, nil
}

// Close ends the live session (a response in progress fails at once).
func (m *CallModel) Close() error {
	m.cmu.Lock()
	conv := m.conv
	m.cmu.Unlock()
	if conv == nil {
		return nil
	}
	return conv.Close()
}
