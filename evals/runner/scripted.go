package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"

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

// refRE is a scripted argument that refers to an earlier tool output:
// "${book_appointment.appointment_id}" (the latest output of that tool) or
// "${book_appointment#1.appointment_id}" (its first output), for the ids
// the agent generates at random.
var refRE = regexp.MustCompile(`^\$\{([A-Za-z0-9_]+)(?:#([0-9]{1,3}))?\.([A-Za-z0-9_.]+)\}$`)

// textRefRE finds ${tool.path} references inside scripted text.
var textRefRE = regexp.MustCompile(`\$\{[A-Za-z0-9_]+(?:#[0-9]{1,3})?\.[A-Za-z0-9_.]+\}`)

func (s *scriptConv) resolveText(text string) (string, error) {
	var firstErr error
	out := textRefRE.ReplaceAllStringFunc(text, func(ref string) string {
		v, err := s.resolve(ref)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return ref
		}
		if str, ok := v.(string); ok {
			return str
		}
		return match.Show(v)
	})
	return out, firstErr
}

func (s *scriptConv) resolve(v any) (any, error) {
	switch x := v.(type) {
	case string:
		m := refRE.FindStringSubmatch(x)
		if m == nil {
			return x, nil
		}
		outs := s.outputs[m[1]]
		n := len(outs)
		if m[2] != "" {
			n, _ = strconv.Atoi(m[2])
		}
		if n < 1 || n > len(outs) {
			return nil, fmt.Errorf("%s refers to output %d of %s, but it returned %d output(s) so far", x, n, m[1], len(outs))
		}
		out := outs[n-1]
		got, ok := match.Lookup(out, m[3])
		if !ok {
			return nil, fmt.Errorf("%s: the output of %s has no %s: %s", x, m[1], m[3], match.Show(out))
		}
		return got, nil
	case map[string]any:
		res := make(map[string]any, len(x))
		for k, e := range x {
			r, err := s.resolve(e)
			if err != nil {
				return nil, err
			}
			res[k] = r
		}
		return res, nil
	case []any:
		res := make([]any, len(x))
		for i, e := range x {
			r, err := s.resolve(e)
			if err != nil {
				return nil, err
			}
			res[i] = r
		}
		return res, nil
	}
	return v, nil
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
	text, err := s.resolveText(r.Say)
	if err != nil {
		return Response{}, fmt.Errorf("turn %d: %w", s.turn+1, err)
	}
	out := Response{Text: text}
	for j, call := range r.Calls {
		args := call.RawArgs
		if call.RawArgs == "" {
			var obj any = map[string]any{}
			if call.Args != nil {
				resolved, err := s.resolve(call.Args)
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
