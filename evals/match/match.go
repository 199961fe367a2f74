// Package match holds the matchers eval cases use to check tool arguments,
// tool outputs and the resulting schedule state: exact (JSON equality),
// regex (on the value's text), subset (deep partial match) and len (length
// of a list, object or string). Values are JSON-shaped: what encoding/json
// decodes into an any (maps, slices, float64, string, bool, nil).
package match

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Kind names a matcher.
type Kind string

// The matcher kinds.
const (
	Exact  Kind = "exact"
	Regex  Kind = "regex"
	Subset Kind = "subset"
	Len    Kind = "len"
	Absent Kind = "absent"
	// Excludes: the value's text (JSON for non-strings) does not contain
	// the string, ignoring case (e.g. a tool output must not carry another
	// patient's name).
	Excludes Kind = "excludes"
	// All holds several matchers that must all hold (a YAML list of
	// matchers: `[{len: 3}, {subset: [...]}]`).
	All Kind = "all"
)

// Matcher checks one JSON value. Exactly one kind is set. In YAML it is a
// mapping with one key (`{exact: 3}`, `{regex: "(?i)tue"}`,
// `{subset: {a: 1}}`, `{len: 2}`, `{absent: true}`, `{excludes: Jordan}`), or a plain scalar as a
// shorthand for exact.
type Matcher struct {
	Kind  Kind
	Value any // exact and subset: the expected value; len: int; regex: pattern
	// Of holds the matchers of an All matcher.
	Of []Matcher
	re *regexp.Regexp
}

// New builds a matcher and validates it (compiles a regex).
func New(kind Kind, value any) (Matcher, error) {
	m := Matcher{Kind: kind, Value: normalize(value)}
	switch kind {
	case Exact, Subset:
	case Regex:
		s, ok := value.(string)
		if !ok {
			return Matcher{}, fmt.Errorf("regex matcher needs a string pattern, got %T", value)
		}
		re, err := regexp.Compile(s)
		if err != nil {
			return Matcher{}, fmt.Errorf("regex matcher: %w", err)
		}
		m.re = re
		m.Value = s
	case Excludes:
		s, ok := value.(string)
		if !ok || s == "" {
			return Matcher{}, fmt.Errorf("excludes matcher needs a non-empty string, got %v", value)
		}
	case Len:
		n, ok := toInt(m.Value)
		if !ok || n < 0 {
			return Matcher{}, fmt.Errorf("len matcher needs a non-negative integer, got %v", value)
		}
		m.Value = n
	case Absent:
		b, ok := value.(bool)
		if !ok || !b {
			return Matcher{}, fmt.Errorf("absent matcher is written `absent: true`")
		}
	default:
		return Matcher{}, fmt.Errorf("unknown matcher %q (use exact, regex, subset, len, absent or excludes)", kind)
	}
	return m, nil
}

// MustNew is New for tests and literals; it panics on a bad matcher.
func MustNew(kind Kind, value any) Matcher {
	m, err := New(kind, value)
	if err != nil {
		panic(err)
	}
	return m
}

// UnmarshalYAML decodes a matcher strictly: unknown keys and more than one
// kind are errors naming the line.
func (m *Matcher) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind == yaml.ScalarNode {
		var v any
		if err := node.Decode(&v); err != nil {
			return fmt.Errorf("line %d: %w", node.Line, err)
		}
		mm, err := New(Exact, v)
		if err != nil {
			return fmt.Errorf("line %d: %w", node.Line, err)
		}
		*m = mm
		return nil
	}
	if node.Kind == yaml.SequenceNode {
		if len(node.Content) == 0 {
			return fmt.Errorf("line %d: an empty list of matchers checks nothing", node.Line)
		}
		all := Matcher{Kind: All}
		for _, item := range node.Content {
			if item.Kind == yaml.SequenceNode {
				return fmt.Errorf("line %d: lists of matchers do not nest", item.Line)
			}
			var sub Matcher
			if err := sub.UnmarshalYAML(item); err != nil {
				return err
			}
			all.Of = append(all.Of, sub)
		}
		*m = all
		return nil
	}
	if node.Kind != yaml.MappingNode || len(node.Content) != 2 {
		return fmt.Errorf("line %d: a matcher is a mapping with exactly one of exact, regex, subset, len, absent, excludes (or a scalar for exact)", node.Line)
	}
	key, val := node.Content[0], node.Content[1]
	var v any
	if err := val.Decode(&v); err != nil {
		return fmt.Errorf("line %d: %w", val.Line, err)
	}
	mm, err := New(Kind(key.Value), v)
	if err != nil {
		return fmt.Errorf("line %d: %w", key.Line, err)
	}
	*m = mm
	return nil
}

// MarshalYAML writes the mapping form (a list for All).
func (m Matcher) MarshalYAML() (any, error) {
	if m.Kind == All {
		return m.Of, nil
	}
	return map[string]any{string(m.Kind): m.Value}, nil
}

// MarshalJSON writes the mapping form (a list for All).
func (m Matcher) MarshalJSON() ([]byte, error) {
	if m.Kind == All {
		return json.Marshal(m.Of)
	}
	return json.Marshal(map[string]any{string(m.Kind): m.Value})
}

// String describes the matcher, e.g. `regex "(?i)tue"`.
func (m Matcher) String() string {
	if m.Kind == All {
		parts := make([]string, len(m.Of))
		for i, s := range m.Of {
			parts[i] = s.String()
		}
		return strings.Join(parts, " and ")
	}
	return fmt.Sprintf("%s %s", m.Kind, Show(m.Value))
}

// Match reports whether the value (present tells whether it exists at all)
// satisfies the matcher, and if not, why.
func (m Matcher) Match(v any, present bool) (bool, string) {
	v = normalize(v)
	if m.Kind == All {
		for _, sub := range m.Of {
			if ok, why := sub.Match(v, present); !ok {
				return false, why
			}
		}
		return true, ""
	}
	if m.Kind == Absent {
		if present {
			return false, "present: " + Show(v)
		}
		return true, ""
	}
	if !present {
		return false, "absent"
	}
	switch m.Kind {
	case Exact:
		if equal(m.Value, v) {
			return true, ""
		}
	case Subset:
		if ok, why := subset(m.Value, v, ""); !ok {
			return false, why
		}
		return true, ""
	case Regex:
		re := m.re
		if re == nil {
			re = regexp.MustCompile(m.Value.(string))
		}
		if re.MatchString(text(v)) {
			return true, ""
		}
	case Excludes:
		if !strings.Contains(strings.ToLower(text(v)), strings.ToLower(m.Value.(string))) {
			return true, ""
		}
	case Len:
		n, ok := length(v)
		if !ok {
			return false, "has no length: " + Show(v)
		}
		if n == m.Value.(int) {
			return true, ""
		}
		return false, fmt.Sprintf("length %d: %s", n, Show(v))
	}
	return false, Show(v)
}

// Lookup finds a dot-separated path in a JSON value ("appointments",
// "patient.name", "slots.0.id"). The empty path is the value itself.
func Lookup(v any, path string) (any, bool) {
	v = normalize(v)
	if path == "" {
		return v, true
	}
	for _, part := range strings.Split(path, ".") {
		switch c := v.(type) {
		case map[string]any:
			next, ok := c[part]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// Fields is a set of matchers keyed by path, as cases write them:
// `{slot_id: {exact: s1}, reason: {regex: "(?i)check"}}`.
type Fields map[string]Matcher

// Check applies every matcher of f to the value at its path and returns one
// message per failure, in path order.
func (f Fields) Check(v any) []string {
	paths := make([]string, 0, len(f))
	for p := range f {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var fails []string
	for _, p := range paths {
		got, ok := Lookup(v, p)
		if pass, why := f[p].Match(got, ok); !pass {
			name := p
			if name == "" {
				name = "(value)"
			}
			fails = append(fails, fmt.Sprintf("%s: want %s, got %s", name, f[p], why))
		}
	}
	return fails
}

// ParseJSON decodes JSON text into a JSON-shaped value; text that is not
// JSON is returned as a string (tools and models sometimes answer in prose).
func ParseJSON(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	return v
}

// Normalize converts a value decoded from YAML or built in Go into the JSON
// shape the matchers compare (map[string]any, []any, float64, ...).
func Normalize(v any) any { return normalize(v) }

func normalize(v any) any {
	switch x := v.(type) {
	case nil, string, bool, float64:
		return v
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	case float32:
		return float64(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	default:
		// Structs, typed slices, time.Time: through JSON.
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		var out any
		if err := json.Unmarshal(b, &out); err != nil {
			return string(b)
		}
		return out
	}
}

func equal(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !equal(wv, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !equal(w[i], g[i]) {
				return false
			}
		}
		return true
	case float64:
		g, ok := got.(float64)
		return ok && (g == w || (math.IsNaN(g) && math.IsNaN(w)))
	default:
		return want == got
	}
}

// subset: every key of a wanted object is in the got object with a subset
// value; every element of a wanted list matches a distinct element of the
// got list (in any order); scalars are equal.
func subset(want, got any, at string) (bool, string) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false, fmt.Sprintf("%snot an object: %s", prefix(at), Show(got))
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				return false, fmt.Sprintf("%smissing key %q in %s", prefix(at), k, Show(got))
			}
			if ok, why := subset(w[k], gv, join(at, k)); !ok {
				return false, why
			}
		}
		return true, ""
	case []any:
		g, ok := got.([]any)
		if !ok {
			return false, fmt.Sprintf("%snot a list: %s", prefix(at), Show(got))
		}
		used := make([]bool, len(g))
		for i, we := range w {
			found := false
			for j, ge := range g {
				if used[j] {
					continue
				}
				if ok, _ := subset(we, ge, ""); ok {
					used[j], found = true, true
					break
				}
			}
			if !found {
				return false, fmt.Sprintf("%sno element matches %s (item %d) in %s", prefix(at), Show(we), i, Show(got))
			}
		}
		return true, ""
	default:
		if equal(want, got) {
			return true, ""
		}
		return false, fmt.Sprintf("%s%s", prefix(at), Show(got))
	}
}

func prefix(at string) string {
	if at == "" {
		return ""
	}
	return at + ": "
}

func join(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}

func length(v any) (int, bool) {
	switch x := v.(type) {
	case []any:
		return len(x), true
	case map[string]any:
		return len(x), true
	case string:
		return len(x), true
	case nil:
		return 0, true
	}
	return 0, false
}

func toInt(v any) (int, bool) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f > math.MaxInt32 {
		return 0, false
	}
	return int(f), true
}

// text is the string a regex sees: strings as they are, other values as JSON.
func text(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// Show renders a value as compact JSON, shortened for reports.
func Show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	const max = 300
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
