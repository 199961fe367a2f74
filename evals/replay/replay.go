package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"gitlab.com/acme/voice-agent/evals/match"
	"gitlab.com/acme/voice-agent/evals/suite"
)

// StaleError is a recording that does not apply to what the model is given
// now: the case fails closed.
type StaleError struct {
	Case     string
	Turn     int // caller turn (0: before the caller spoke)
	Response int // 1-based response within the turn
	// Changes say what changed, e.g. `tool book_appointment: description
	// or JSON schema changed`.
	Changes []string
	// Refresh is the command that refreshes the recording.
	Refresh string
}

func (e *StaleError) Error() string {
	what := "the recording has no key"
	if len(e.Changes) > 0 {
		what = strings.Join(e.Changes, "; ")
	}
	return fmt.Sprintf("stale recording: turn %d response %d: the model is now given something else than when this was recorded (%s); refresh: %s", e.Turn, e.Response, what, e.Refresh)
}

// RefreshCommand is how to refresh the recording of case c.
func RefreshCommand(c *suite.Case, suiteName string) string {
	if c.Recording != nil && c.Recording.Source == suite.SourceRecorded {
		return fmt.Sprintf("OPENAI_API_KEY=... go run ./evals/cmd/eval --suite %s --mode record --filter %s (on a protected branch; writes the new recording to %s)", suiteName, "<tag of "+c.Name+">", c.File)
	}
	return fmt.Sprintf(`go run ./evals/cmd/rekey --suite %s --case %s --by "Your Name" (hand-written: re-keys prompt and schema changes only, review the diff of %s)`, suiteName, c.Name, c.File)
}

// Player replays one case's recorded model side. It is safe for the
// concurrent use a Realtime server makes of a Model (one call at a time).
type Player struct {
	c     *suite.Case
	suite string
	// keying computes keys instead of checking them (cmd/rekey).
	keying bool

	mu        sync.Mutex
	users     int
	idx       int
	responses int
	keys      map[[2]int]string
	seen      *suite.Seen
	stale     *StaleError
	schemas   map[string]*jsonschema.Schema
	toolsHash string
}

// NewPlayer replays c, checking each response's key.
func NewPlayer(c *suite.Case, suiteName string) *Player {
	return &Player{c: c, suite: suiteName, keys: map[[2]int]string{}}
}

// NewKeyer replays c without checking keys and keeps the keys and
// components it computes, for re-keying a hand-written recording.
func NewKeyer(c *suite.Case, suiteName string) *Player {
	p := NewPlayer(c, suiteName)
	p.keying = true
	return p
}

// ResponsesIn is the number of recorded responses of a caller turn
// (1-based; 0 is the greeting before the caller speaks).
func (p *Player) ResponsesIn(turn int) int {
	if turn == 0 {
		return len(p.c.Greeting)
	}
	if turn > len(p.c.Turns) {
		return 0
	}
	return len(p.c.Turns[turn-1].Model)
}

// Stale returns the stale-recording error, if the replay hit one.
func (p *Player) Stale() *StaleError {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stale
}

// Responses counts the responses replayed.
func (p *Player) Responses() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.responses
}

// Keys returns the keys computed per turn (0-based index into the turns)
// and response, and the components seen at the last response.
func (p *Player) Keys() (map[[2]int]string, *suite.Seen) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[[2]int]string, len(p.keys))
	for k, v := range p.keys {
		out[k] = v
	}
	return out, p.seen
}

// Respond gives the recorded response for what the model is given now.
func (p *Player) Respond(ctx context.Context, req Request) ([]Output, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stale != nil {
		return nil, p.stale
	}
	users := 0
	for _, it := range req.Conversation {
		if it.Type == "message" && it.Role == "user" {
			users++
		}
	}
	if users != p.users {
		p.users, p.idx = users, 0
	}
	turn, ri := users, p.idx
	p.idx++
	var script []suite.Response
	switch {
	case turn == 0:
		script = p.c.Greeting
		if ri >= len(script) {
			return nil, fmt.Errorf("the agent asked the model for response %d before the caller spoke (a greeting), but the case records %d greeting response(s): add them under `greeting:`", ri+1, len(script))
		}
	case turn > len(p.c.Turns) || len(p.c.Turns[turn-1].Model) == 0:
		return nil, fmt.Errorf("turn %d: the recording has no model side for this turn: it ended earlier (e.g. with a transfer), but this call went on", turn)
	default:
		script = p.c.Turns[turn-1].Model
	}
	if ri >= len(script) {
		return nil, fmt.Errorf("turn %d: the agent asked the model for response %d, but the recording of this turn has %d: the call went on where the recorded one stopped", turn, ri+1, len(script))
	}
	r := script[ri]
	req.WallClock = p.c.Now == nil
	key, seen, err := keyAndSeen(req)
	if err != nil {
		return nil, err
	}
	p.keys[[2]int{turn - 1, ri}] = key
	p.seen = &seen
	if !p.keying && r.Key != key {
		st := &StaleError{Case: p.c.Name, Turn: turn, Response: ri + 1, Refresh: RefreshCommand(p.c, p.suite)}
		switch {
		case r.Key == "":
			st.Changes = []string{"the recording has no key"}
		case p.c.Recording == nil || p.c.Recording.Seen == nil:
			st.Changes = []string{"the recording does not say what the model was given"}
		default:
			st.Changes = Changes(*p.c.Recording.Seen, seen)
			if len(st.Changes) == 0 {
				st.Changes = []string{"the conversation before this response differs (the caller's words or an earlier response)"}
			}
		}
		p.stale = st
		return nil, st
	}
	if err := p.compile(req.Tools); err != nil {
		return nil, err
	}
	outs := outputsByName(req.Conversation)
	text, err := suite.ResolveTextRefs(r.Say, outs)
	if err != nil {
		return nil, fmt.Errorf("turn %d response %d: %w", turn, ri+1, err)
	}
	var out []Output
	if text != "" {
		out = append(out, Output{Text: text})
	}
	for _, call := range r.Calls {
		args := call.RawArgs
		if call.RawArgs == "" {
			var obj any = map[string]any{}
			if call.Args != nil {
				v, err := suite.ResolveRefs(match.Normalize(call.Args), outs)
				if err != nil {
					return nil, fmt.Errorf("turn %d: arguments of %s: %w", turn, call.Name, err)
				}
				obj = v
			}
			b, err := json.Marshal(obj)
			if err != nil {
				return nil, fmt.Errorf("turn %d: arguments of %s: %w", turn, call.Name, err)
			}
			args = string(b)
			if err := p.validate(call.Name, args, call.Invalid); err != nil {
				return nil, fmt.Errorf("turn %d response %d: %w", turn, ri+1, err)
			}
		}
		out = append(out, Output{FunctionCall: &FunctionCall{Name: call.Name, Arguments: args}})
	}
	p.responses++
	return out, nil
}

func (p *Player) compile(tools json.RawMessage) error {
	h := hash(string(tools))
	if p.schemas != nil && h == p.toolsHash {
		return nil
	}
	s, err := CompileTools(tools)
	if err != nil {
		return err
	}
	p.schemas, p.toolsHash = s, h
	return nil
}

// CompileTools compiles the JSON schema of every declared tool.
func CompileTools(raw json.RawMessage) (map[string]*jsonschema.Schema, error) {
	tools, err := ParseTools(raw)
	if err != nil {
		return nil, err
	}
	out := map[string]*jsonschema.Schema{}
	for _, t := range tools {
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(t.Parameters)))
		if err != nil {
			return nil, fmt.Errorf("replay: tool %s: parameters are not JSON: %w", t.Name, err)
		}
		c := jsonschema.NewCompiler()
		url := "tool:" + t.Name + ".json"
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("replay: tool %s: %w", t.Name, err)
		}
		s, err := c.Compile(url)
		if err != nil {
			return nil, fmt.Errorf("replay: tool %s: the declared parameters are not a valid JSON schema: %w", t.Name, err)
		}
		out[t.Name] = s
	}
	return out, nil
}

// ErrSchema marks scripted arguments the declared schema refuses.
var ErrSchema = errors.New("scripted arguments break the declared schema")

func (p *Player) validate(name, args string, invalid bool) error {
	s, ok := p.schemas[name]
	if !ok {
		if invalid {
			return nil
		}
		return fmt.Errorf("%w: the script calls %s, but the agent declared no such tool in its session (declared: %s)", ErrSchema, name, strings.Join(slices.Sorted(maps.Keys(p.schemas)), ", "))
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(args))
	if err != nil {
		return fmt.Errorf("replay: arguments of %s: %w", name, err)
	}
	verr := s.Validate(inst)
	switch {
	case verr != nil && !invalid:
		return fmt.Errorf("%w: %s(%s): %v (mark the call `invalid: true` if the script breaks the schema on purpose)", ErrSchema, name, args, verr)
	case verr == nil && invalid:
		return fmt.Errorf("%w: %s(%s) is marked invalid: true but satisfies the declared schema: the case no longer tests what it says", ErrSchema, name, args)
	}
	return nil
}

// outputsByName collects each tool's outputs in order from the
// conversation, for ${tool.path} references.
func outputsByName(conv []Item) map[string][]any {
	names := map[string]string{}
	out := map[string][]any{}
	for _, it := range conv {
		switch it.Type {
		case "function_call":
			names[it.CallID] = it.Name
		case "function_call_output":
			n := names[it.CallID]
			out[n] = append(out[n], match.ParseJSON(it.Output))
		}
	}
	return out
}
