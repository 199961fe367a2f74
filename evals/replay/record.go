package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"gitlab.com/acme/voice-agent/evals/match"
	"gitlab.com/acme/voice-agent/evals/suite"
)

// Responder is a model side (live, in record mode).
type Responder interface {
	Respond(ctx context.Context, req Request) ([]Output, error)
}

// Recorder wraps a live model and keeps what it answered, keyed by what it
// was given, in the recording format (--mode record).
type Recorder struct {
	Inner Responder
	// WallClock: the case sets no clock (see Request.WallClock).
	WallClock bool

	mu       sync.Mutex
	greeting []suite.Response
	turns    [][]suite.Response
	seen     *suite.Seen
}

// Close closes the inner model.
func (r *Recorder) Close() error {
	if c, ok := r.Inner.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// Respond asks the inner model and records its answer.
func (r *Recorder) Respond(ctx context.Context, req Request) ([]Output, error) {
	outs, err := r.Inner.Respond(ctx, req)
	if err != nil {
		return nil, err
	}
	req.WallClock = r.WallClock
	key, seen, err := keyAndSeen(req)
	if err != nil {
		return nil, err
	}
	refs := generatedRefs(req.Conversation)
	users := 0
	for _, it := range req.Conversation {
		if it.Type == "message" && it.Role == "user" {
			users++
		}
	}
	resp := suite.Response{Key: key}
	for _, o := range outs {
		switch {
		case o.FunctionCall != nil:
			call := suite.Call{Name: o.FunctionCall.Name}
			var obj map[string]any
			if err := json.Unmarshal([]byte(o.FunctionCall.Arguments), &obj); err == nil && obj != nil {
				call.Args = referArgs(obj, refs).(map[string]any)
			} else {
				call.RawArgs = o.FunctionCall.Arguments
			}
			resp.Calls = append(resp.Calls, call)
		default:
			t := o.Text
			for v, ref := range refs {
				t = strings.ReplaceAll(t, v, ref)
			}
			resp.Say = strings.TrimSpace(resp.Say + " " + t)
		}
	}
	if resp.Say == "" && len(resp.Calls) == 0 {
		resp.Say = "(silence)"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = &seen
	if users == 0 {
		r.greeting = append(r.greeting, resp) // before the caller spoke
		return outs, nil
	}
	for len(r.turns) < users {
		r.turns = append(r.turns, nil)
	}
	r.turns[users-1] = append(r.turns[users-1], resp)
	return outs, nil
}

// Recording returns the recorded greeting and turns and what the model
// was given by the last response.
func (r *Recorder) Recording() (greeting []suite.Response, turns [][]suite.Response, seen *suite.Seen) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.greeting, r.turns, r.seen
}

// GreetingKeys returns the keys of the recorded greeting responses.
func (r *Recorder) GreetingKeys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, resp := range r.greeting {
		out = append(out, resp.Key)
	}
	return out
}

// Keys returns the keys of the recorded responses.
func (r *Recorder) Keys() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]string, len(r.turns))
	for i, t := range r.turns {
		for _, resp := range t {
			out[i] = append(out[i], resp.Key)
		}
	}
	return out
}

// generatedRefs maps ids the agent generated (in tool outputs) to the
// ${tool#n.path} references that find them again on replay.
func generatedRefs(conv []Item) map[string]string {
	names := map[string]string{}
	counts := map[string]int{}
	refs := map[string]string{}
	for _, it := range conv {
		switch it.Type {
		case "function_call":
			names[it.CallID] = it.Name
		case "function_call_output":
			n := names[it.CallID]
			counts[n]++
			var walk func(v any, path string)
			walk = func(v any, path string) {
				switch x := v.(type) {
				case string:
					if idRE.MatchString(x) && idRE.FindString(x) == x {
						if _, ok := refs[x]; !ok {
							refs[x] = fmt.Sprintf("${%s#%d.%s}", n, counts[n], path)
						}
					}
				case map[string]any:
					for k, e := range x {
						walk(e, join(path, k))
					}
				case []any:
					for i, e := range x {
						walk(e, join(path, strconv.Itoa(i)))
					}
				}
			}
			walk(match.ParseJSON(it.Output), "")
		}
	}
	return refs
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func referArgs(v any, refs map[string]string) any {
	switch x := v.(type) {
	case string:
		if r, ok := refs[x]; ok {
			return r
		}
	case map[string]any:
		for k, e := range x {
			x[k] = referArgs(e, refs)
		}
	case []any:
		for i, e := range x {
			x[i] = referArgs(e, refs)
		}
	}
	return v
}
