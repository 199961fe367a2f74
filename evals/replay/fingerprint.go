// Package replay is the model of scripted mode: it replays a case's
// recorded model side, but only to the model input it was recorded for.
// Each recorded response carries a key, a fingerprint of what the model was
// given when it answered (model name, instructions, tool names,
// descriptions and JSON schemas, and the conversation so far including the
// tool outputs the agent produced). When the agent now gives the model
// anything different, the recording does not apply and the case fails
// closed as stale, with a message saying what changed and how to refresh
// the recording. Scripted tool-call arguments are validated against the
// JSON schemas the agent declared.
//
// The types mirror the loopback Realtime server's Model contract
// (agent/realtimetest: ResponseRequest, Item, Output), so the same replay
// runs behind that server and, until it lands, behind evals/callsim.
package replay

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"gitlab.com/acme/voice-agent/evals/suite"
)

// Item is one conversation item as the model sees it.
type Item struct {
	Type      string // "message", "function_call", "function_call_output"
	Role      string // "user", "assistant", "system" for messages
	Text      string
	Name      string
	CallID    string
	Arguments string
	Output    string
}

// Request is what the model sees when a response starts.
type Request struct {
	CallID string
	// Session is the effective session object (the accept body's).
	Session      json.RawMessage
	Model        string
	Instructions string
	// Tools is the effective tools array of the session (JSON).
	Tools        json.RawMessage
	Conversation []Item
	// WallClock: the call ran on the wall clock (the case sets no `now`),
	// so the date line the agent appends to the instructions is left out
	// of the fingerprint. With a case clock it is part of it (the date and
	// the clinic's zone the model is told).
	WallClock bool
}

// Output is one output item of a response: spoken text or a function call.
type Output struct {
	Text         string
	FunctionCall *FunctionCall
}

// FunctionCall is a function call the model makes.
type FunctionCall struct{ Name, Arguments string }

// Tool is a function tool as declared in the session.
type Tool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

// ParseTools decodes a session's tools array.
func ParseTools(raw json.RawMessage) ([]Tool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var ts []Tool
	if err := json.Unmarshal(raw, &ts); err != nil {
		return nil, fmt.Errorf("replay: the session's tools are not a JSON array of tools: %w", err)
	}
	return ts, nil
}

// todayRE is the sentence the agent appends to the instructions with the
// date of the call (session.Config.WithToday). On the wall clock it varies
// from run to run and is left out of the fingerprint.
var todayRE = regexp.MustCompile(`(?m)^Today is [^\n]*$`)

// idRE matches ids the agent generates at random (schedule.newID:
// prefix_ + 12 hex digits). They are numbered in order of appearance in
// the fingerprint, so a replay with other random ids keys the same.
var idRE = regexp.MustCompile(`\b(apt|msg)_[0-9a-f]{12}\b`)

// NormalizeInstructions drops the run-dependent date line of a call on the
// wall clock.
func NormalizeInstructions(req Request) string {
	if !req.WallClock {
		return req.Instructions
	}
	return todayRE.ReplaceAllString(req.Instructions, "Today is <date of the call>.")
}

type idNumbering map[string]string

// canon replaces generated ids by stable placeholders (apt_#1, ...).
func (n idNumbering) canon(s string) string {
	return idRE.ReplaceAllStringFunc(s, func(id string) string {
		if p, ok := n[id]; ok {
			return p
		}
		prefix := id[:strings.IndexByte(id, '_')]
		p := fmt.Sprintf("%s_#%d", prefix, len(n)+1)
		n[id] = p
		return p
	})
}

// canonJSON re-encodes JSON text with sorted keys (json.Marshal of a
// decoded value); text that is not JSON is returned as is.
func canonJSON(s string) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return s
	}
	return string(b)
}

func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Seen is what the model was given, as hashes per component (stored with
// every recording, see suite.Seen).
type Seen = suite.Seen

// SeenOf computes the components of what the model was given.
func SeenOf(req Request) (Seen, error) {
	tools, err := ParseTools(req.Tools)
	if err != nil {
		return Seen{}, err
	}
	s := Seen{Model: req.Model, Tools: map[string]string{}}
	for _, para := range strings.Split(NormalizeInstructions(req), "\n\n") {
		para = strings.TrimSpace(para)
		if para == "" {
			continue
		}
		head := para
		if i := strings.IndexByte(head, '\n'); i >= 0 {
			head = head[:i]
		}
		if r := []rune(head); len(r) > 48 {
			head = string(r[:48]) + "…"
		}
		s.Instructions = append(s.Instructions, suite.Section{Head: head, Hash: hash(para)})
	}
	for _, t := range tools {
		s.Tools[t.Name] = hash(t.Type, t.Name, t.Description, canonJSON(string(t.Parameters)))
	}
	ids := idNumbering{}
	names := map[string]string{}
	for _, it := range req.Conversation {
		switch it.Type {
		case "function_call":
			names[it.CallID] = it.Name
			ids.canon(it.Arguments)
		case "function_call_output":
			s.Outputs = append(s.Outputs, suite.OutputSeen{Tool: names[it.CallID], Hash: hash(ids.canon(canonJSON(it.Output)))})
		default:
			ids.canon(it.Text)
		}
	}
	return s, nil
}

// Key is the fingerprint of everything the model was given: the recorded
// response replays only for an equal key.
func Key(req Request) (string, error) {
	s, err := SeenOf(req)
	if err != nil {
		return "", err
	}
	parts := []string{"model", s.Model, "instructions", hash(NormalizeInstructions(req))}
	names := make([]string, 0, len(s.Tools))
	for n := range s.Tools {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		parts = append(parts, "tool", n, s.Tools[n])
	}
	ids := idNumbering{}
	for _, it := range req.Conversation {
		switch it.Type {
		case "function_call":
			parts = append(parts, "call", it.Name, ids.canon(canonJSON(it.Arguments)))
		case "function_call_output":
			parts = append(parts, "output", ids.canon(canonJSON(it.Output)))
		default:
			parts = append(parts, it.Type, it.Role, ids.canon(it.Text))
		}
	}
	return hash(parts...), nil
}

// Changes lists, in words, how what the model is given now differs from
// what it was given when the recording was made. Outputs are compared up
// to the number the agent has produced so far.
func Changes(was, now Seen) []string {
	var out []string
	if was.Model != now.Model {
		out = append(out, fmt.Sprintf("model: recorded for %q, the agent now runs %q", was.Model, now.Model))
	}
	out = append(out, sectionChanges(was.Instructions, now.Instructions)...)
	names := map[string]bool{}
	for n := range was.Tools {
		names[n] = true
	}
	for n := range now.Tools {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		w, okw := was.Tools[n]
		c, okc := now.Tools[n]
		switch {
		case !okc:
			out = append(out, fmt.Sprintf("tool %s: no longer declared", n))
		case !okw:
			out = append(out, fmt.Sprintf("tool %s: newly declared", n))
		case w != c:
			out = append(out, fmt.Sprintf("tool %s: description or JSON schema changed", n))
		}
	}
	for i, o := range now.Outputs {
		switch {
		case i >= len(was.Outputs):
			out = append(out, fmt.Sprintf("tool output %d (%s): the recording has only %d tool outputs", i+1, o.Tool, len(was.Outputs)))
		case was.Outputs[i] != o:
			out = append(out, fmt.Sprintf("tool output %d (%s): the agent's output changed", i+1, o.Tool))
		}
	}
	return out
}

func sectionChanges(was, now []suite.Section) []string {
	if len(was) == 0 && len(now) == 0 {
		return nil
	}
	inWas := map[string]bool{}
	for _, s := range was {
		inWas[s.Hash] = true
	}
	inNow := map[string]bool{}
	for _, s := range now {
		inNow[s.Hash] = true
	}
	var out []string
	for _, s := range now {
		if !inWas[s.Hash] {
			out = append(out, fmt.Sprintf("instructions: section %q is new or changed", s.Head))
		}
	}
	for _, s := range was {
		if !inNow[s.Hash] {
			found := false
			for _, n := range now {
				if n.Head == s.Head {
					found = true
				}
			}
			if !found {
				out = append(out, fmt.Sprintf("instructions: section %q was removed or changed", s.Head))
			}
		}
	}
	if len(out) == 0 && len(was) != len(now) {
		out = append(out, "instructions: sections reordered or duplicated")
	}
	return out
}

// keyAndSeen returns a request's recording key and the components it saw:
// what the recorder writes and the player checks for every response.
func keyAndSeen(req Request) (string, Seen, error) {
	key, err := Key(req)
	if err != nil {
		return "", Seen{}, err
	}
	seen, err := SeenOf(req)
	if err != nil {
		return "", Seen{}, err
	}
	return key, seen, nil
}
