package runner

import (
	"context"
	"encoding/json"
	"fmt"

	"gitlab.com/acme/voice-agent/evals/match"

	"gitlab.com/acme/voice-agent/evals/suite"
)

// Scripted replays each case's model side turn by turn, without keys, for
// the runner's in-memory path (Agent/Model), which the runner's own unit
// tests use. The eval command's scripted mode replays keyed recordings
// through the agent service instead (evals/replay, evals/agentenv).
type Scripted struct{}

// Name is "scripted".
func (Scripted) Name() string { return "scripted" }

// Start replays c's script.
func (Scripted) Start(_ context.Context, _ Session, c *suite.Case) (Conversation, error) {
	if !c.Scripted() {
		return nil, fmt.Errorf("case %s has no scripted model transcript", c.Name)
	}
	return &scriptConv{c: c, turn: -1, outputs: map[string][]any{}}, nil
}

type scriptConv struct {
	c         *suite.Case
	turn, idx int
	// outputs holds every output of each tool in order, for ${tool.path}
	// references in scripted arguments and text.
	outputs map[string][]any
}

func (s *scriptConv) Respond(ctx context.Context, in Input) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	for _, o := range in.Outputs {
		s.outputs[o.Name] = append(s.outputs[o.Name], match.ParseJSON(o.Output))
	}
	if in.Caller != "" {
		s.turn++
		s.idx = 0
	}
	if s.turn < 0 || s.turn >= len(s.c.Turns) || len(s.c.Turns[s.turn].Model) == 0 {
		return Response{}, fmt.Errorf("the script has no model side for turn %d: the recording ended earlier (e.g. with a transfer) but this conversation went on", s.turn+1)
	}
	script := s.c.Turns[s.turn].Model
	if s.idx >= len(script) {
		return Response{}, fmt.Errorf("the script of turn %d ends after %d responses, but the last one called tools and the call went on: end the turn with a response without calls", s.turn+1, len(script))
	}
	r := script[s.idx]
	s.idx++
	text, err := suite.ResolveTextRefs(r.Say, s.outputs)
	if err != nil {
		return Response{}, fmt.Errorf("turn %d: %w", s.turn+1, err)
	}
	out := Response{Text: text}
	for j, call := range r.Calls {
		args := call.RawArgs
		if call.RawArgs == "" {
			var obj any = map[string]any{}
			if call.Args != nil {
				resolved, err := suite.ResolveRefs(call.Args, s.outputs)
				if err != nil {
					return Response{}, fmt.Errorf("turn %d: arguments of %s: %w", s.turn+1, call.Name, err)
				}
				obj = resolved
			}
			b, err := json.Marshal(obj)
			if err != nil {
				return Response{}, fmt.Errorf("turn %d: arguments of %s: %w", s.turn+1, call.Name, err)
			}
			args = string(b)
		}
		out.Calls = append(out.Calls, ToolCall{ID: fmt.Sprintf("call_t%d_r%d_%d", s.turn+1, s.idx, j+1), Name: call.Name, Arguments: args})
	}
	return out, nil
}

func (s *scriptConv) Close() error { return nil }
