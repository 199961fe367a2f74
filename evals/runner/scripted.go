package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"gitlab.com/acme/voice-agent/evals/match"

	"gitlab.com/acme/voice-agent/evals/suite"
)

// Scripted is the model of scripted mode: it replays each case's recorded
// model side. It checks the agent's side deterministically and offline; it
// says nothing about how the model behaves.
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

// Recorder wraps a live model and keeps, per case, the model side of the
// conversation in the script format, for --mode record.
type Recorder struct {
	Model
	mu      sync.Mutex
	scripts map[string][][]suite.Response
}

// NewRecorder wraps m.
func NewRecorder(m Model) *Recorder {
	return &Recorder{Model: m, scripts: map[string][][]suite.Response{}}
}

// Start starts a recorded conversation.
func (r *Recorder) Start(ctx context.Context, s Session, c *suite.Case) (Conversation, error) {
	conv, err := r.Model.Start(ctx, s, c)
	if err != nil {
		return nil, err
	}
	seeded := map[string]bool{}
	collectStrings(match.Normalize(c.State), seeded)
	return &recConv{Conversation: conv, r: r, name: c.Name, seeded: seeded, counts: map[string]int{}}, nil
}

func collectStrings(v any, into map[string]bool) {
	switch x := v.(type) {
	case string:
		into[x] = true
	case map[string]any:
		for _, e := range x {
			collectStrings(e, into)
		}
	case []any:
		for _, e := range x {
			collectStrings(e, into)
		}
	}
}

// generated is a value the agent generated during the call (not in the
// seeded state), found in a tool output, and the reference that finds it
// again on replay.
type generated struct {
	value, ref string
}

// Scripts returns the recorded scripts of the given cases.
func (r *Recorder) Scripts(names []string) map[string][][]suite.Response {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][][]suite.Response{}
	for _, n := range names {
		if s, ok := r.scripts[n]; ok {
			out[n] = s
		}
	}
	return out
}

type recConv struct {
	Conversation
	r      *Recorder
	name   string
	turns  [][]suite.Response
	seeded map[string]bool
	counts map[string]int
	gen    []generated
}

// noteOutput remembers the string values of a tool output the agent made
// up during the call (e.g. a new appointment id), so recorded arguments and
// text can refer to them instead of a value that differs on every run.
func (rc *recConv) noteOutput(o ToolOutput) {
	rc.counts[o.Name]++
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch x := v.(type) {
		case string:
			if len(x) >= 6 && !rc.seeded[x] && path != "" {
				rc.gen = append(rc.gen, generated{x, fmt.Sprintf("${%s#%d.%s}", o.Name, rc.counts[o.Name], path)})
			}
		case map[string]any:
			for k, e := range x {
				walk(e, joinPath(path, k))
			}
		case []any:
			for i, e := range x {
				walk(e, joinPath(path, strconv.Itoa(i)))
			}
		}
	}
	walk(match.ParseJSON(o.Output), "")
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// refer replaces generated values in recorded arguments by references.
func (rc *recConv) refer(v any) any {
	switch x := v.(type) {
	case string:
		for _, g := range rc.gen {
			if x == g.value {
				return g.ref
			}
		}
	case map[string]any:
		for k, e := range x {
			x[k] = rc.refer(e)
		}
	case []any:
		for i, e := range x {
			x[i] = rc.refer(e)
		}
	}
	return v
}

func (rc *recConv) referText(s string) string {
	for _, g := range rc.gen {
		s = strings.ReplaceAll(s, g.value, g.ref)
	}
	return s
}

func (rc *recConv) Respond(ctx context.Context, in Input) (Response, error) {
	for _, o := range in.Outputs {
		rc.noteOutput(o)
	}
	resp, err := rc.Conversation.Respond(ctx, in)
	if err != nil {
		return resp, err
	}
	if in.Caller != "" || len(rc.turns) == 0 {
		rc.turns = append(rc.turns, nil)
	}
	sr := suite.Response{Say: rc.referText(resp.Text)}
	for _, c := range resp.Calls {
		call := suite.Call{Name: c.Name}
		var obj map[string]any
		if err := json.Unmarshal([]byte(c.Arguments), &obj); err == nil && obj != nil {
			call.Args = rc.refer(obj).(map[string]any)
		} else {
			call.RawArgs = c.Arguments
		}
		sr.Calls = append(sr.Calls, call)
	}
	if sr.Say == "" && len(sr.Calls) == 0 {
		sr.Say = "(silence)" // a valid script response; the model said nothing
	}
	last := len(rc.turns) - 1
	rc.turns[last] = append(rc.turns[last], sr)
	return resp, nil
}

func (rc *recConv) Close() error {
	rc.r.mu.Lock()
	rc.r.scripts[rc.name] = rc.turns
	rc.r.mu.Unlock()
	return rc.Conversation.Close()
}
