package suite

import (
	"fmt"
	"regexp"
	"strconv"

	"gitlab.com/acme/voice-agent/evals/match"
)

// References in recordings: values the agent generates during a call (a new
// appointment id) are recorded as ${tool#n.path} so a recording replays
// against a fresh store.

// refRE is a recorded value that refers to an earlier tool output:
// "${book_appointment.appointment_id}" (the latest output of that tool) or
// "${book_appointment#1.appointment_id}" (its first output), for the ids
// the agent generates at random.
var refRE = regexp.MustCompile(`^\$\{([A-Za-z0-9_]+)(?:#([0-9]{1,3}))?\.([A-Za-z0-9_.]+)\}$`)

// textRefRE finds ${tool.path} references inside scripted text.
var textRefRE = regexp.MustCompile(`\$\{[A-Za-z0-9_]+(?:#[0-9]{1,3})?\.[A-Za-z0-9_.]+\}`)

// ResolveTextRefs replaces every ${tool.path} reference inside text with
// the value it names (strings as they are, other values as JSON); the
// first unresolved reference is the error.
func ResolveTextRefs(text string, outs map[string][]any) (string, error) {
	var firstErr error
	res := textRefRE.ReplaceAllStringFunc(text, func(ref string) string {
		v, err := ResolveRefs(ref, outs)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return ref
		}
		if s, ok := v.(string); ok {
			return s
		}
		return match.Show(v)
	})
	return res, firstErr
}

// ResolveRefs replaces every reference in v (a string, or maps and lists
// of them) with the value of the tool output it names; outs holds each
// tool's outputs in order.
func ResolveRefs(v any, outs map[string][]any) (any, error) {
	switch x := v.(type) {
	case string:
		m := refRE.FindStringSubmatch(x)
		if m == nil {
			return x, nil
		}
		list := outs[m[1]]
		n := len(list)
		if m[2] != "" {
			n, _ = strconv.Atoi(m[2])
		}
		if n < 1 || n > len(list) {
			return nil, fmt.Errorf("%s refers to output %d of %s, but it returned %d output(s) so far", x, n, m[1], len(list))
		}
		got, ok := match.Lookup(list[n-1], m[3])
		if !ok {
			return nil, fmt.Errorf("%s: the output of %s has no %s: %s", x, m[1], m[3], match.Show(list[n-1]))
		}
		return got, nil
	case map[string]any:
		res := make(map[string]any, len(x))
		for k, e := range x {
			r, err := ResolveRefs(e, outs)
			if err != nil {
				return nil, err
			}
			res[k] = r
		}
		return res, nil
	case []any:
		res := make([]any, len(x))
		for i, e := range x {
			r, err := ResolveRefs(e, outs)
			if err != nil {
				return nil, err
			}
			res[i] = r
		}
		return res, nil
	}
	return v, nil
}
