package match

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		name    string
		m       Matcher
		value   any
		present bool
		want    bool
		why     string
	}{
		{"exact string", MustNew(Exact, "s1"), "s1", true, true, ""},
		{"exact string differs", MustNew(Exact, "s1"), "s2", true, false, `"s2"`},
		{"exact int vs float", MustNew(Exact, 3), 3.0, true, true, ""},
		{"exact object", MustNew(Exact, map[string]any{"a": 1}), map[string]any{"a": 1.0}, true, true, ""},
		{"exact object extra key", MustNew(Exact, map[string]any{"a": 1}), map[string]any{"a": 1.0, "b": 2.0}, true, false, ""},
		{"exact list order", MustNew(Exact, []any{1, 2}), []any{2.0, 1.0}, true, false, ""},
		{"exact absent", MustNew(Exact, "x"), nil, false, false, "absent"},
		{"exact null", MustNew(Exact, nil), nil, true, true, ""},
		{"regex", MustNew(Regex, "(?i)tues"), "Tuesday", true, true, ""},
		{"regex miss", MustNew(Regex, "^Mon"), "Tuesday", true, false, `"Tuesday"`},
		{"regex on number", MustNew(Regex, "^4[0-9]$"), 42.0, true, true, ""},
		{"subset object", MustNew(Subset, map[string]any{"a": 1}), map[string]any{"a": 1.0, "b": 2.0}, true, true, ""},
		{"subset nested missing", MustNew(Subset, map[string]any{"p": map[string]any{"n": "x"}}), map[string]any{"p": map[string]any{}}, true, false, `p: missing key "n"`},
		{"subset list any order", MustNew(Subset, []any{map[string]any{"id": "b"}}), []any{map[string]any{"id": "a"}, map[string]any{"id": "b", "x": 1.0}}, true, true, ""},
		{"subset list distinct elements", MustNew(Subset, []any{"a", "a"}), []any{"a"}, true, false, "no element matches"},
		{"subset not object", MustNew(Subset, map[string]any{"a": 1}), "str", true, false, "not an object"},
		{"len list", MustNew(Len, 2), []any{1.0, 2.0}, true, true, ""},
		{"len wrong", MustNew(Len, 1), []any{1.0, 2.0}, true, false, "length 2"},
		{"len null is zero", MustNew(Len, 0), nil, true, true, ""},
		{"len of number", MustNew(Len, 0), 3.0, true, false, "has no length"},
		{"excludes ok", MustNew(Excludes, "jordan"), map[string]any{"slots": []any{"s1"}}, true, true, ""},
		{"excludes hit", MustNew(Excludes, "jordan"), map[string]any{"who": "Jordan Lee"}, true, false, "Jordan Lee"},
		{"all ok", Matcher{Kind: All, Of: []Matcher{MustNew(Len, 2), MustNew(Subset, []any{"b"})}}, []any{"a", "b"}, true, true, ""},
		{"all one fails", Matcher{Kind: All, Of: []Matcher{MustNew(Len, 2), MustNew(Subset, []any{"c"})}}, []any{"a", "b"}, true, false, "no element matches"},
		{"absent ok", MustNew(Absent, true), nil, false, true, ""},
		{"absent but present", MustNew(Absent, true), "x", true, false, "present"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := tt.m.Match(tt.value, tt.present)
			assert.Equal(t, tt.want, ok, why)
			assert.Contains(t, why, tt.why)
		})
	}
}

func TestNewRejectsBadMatchers(t *testing.T) {
	for _, tc := range []struct {
		kind  Kind
		value any
		want  string
	}{
		{Regex, "(", "regex matcher"},
		{Regex, 3, "needs a string"},
		{Len, -1, "non-negative"},
		{Len, 1.5, "non-negative integer"},
		{Absent, false, "absent: true"},
		{Excludes, "", "non-empty string"},
		{"contains", "x", `unknown matcher "contains"`},
	} {
		_, err := New(tc.kind, tc.value)
		require.Error(t, err, "%s %v", tc.kind, tc.value)
		assert.Contains(t, err.Error(), tc.want)
	}
}

func TestUnmarshalYAML(t *testing.T) {
	tests := []struct {
		src     string
		want    Matcher
		wantErr string
	}{
		{`s1`, MustNew(Exact, "s1"), ""},
		{`3`, MustNew(Exact, 3), ""},
		{`{exact: [1, 2]}`, MustNew(Exact, []any{1, 2}), ""},
		{`{regex: "(?i)maria"}`, MustNew(Regex, "(?i)maria"), ""},
		{`{subset: {name: Maria}}`, MustNew(Subset, map[string]any{"name": "Maria"}), ""},
		{`{len: 1}`, MustNew(Len, 1), ""},
		{`{absent: true}`, MustNew(Absent, true), ""},
		{`{excludes: Priya}`, MustNew(Excludes, "Priya"), ""},
		{`{exact: 1, regex: x}`, Matcher{}, "exactly one of"},
		{`{equals: 1}`, Matcher{}, `line 1: unknown matcher "equals"`},
		{"\n\n{regex: \"[\"}", Matcher{}, "line 3: regex matcher"},
		{`[1, 2]`, Matcher{Kind: All, Of: []Matcher{MustNew(Exact, 1), MustNew(Exact, 2)}}, ""},
		{`[]`, Matcher{}, "empty list of matchers"},
		{`[[1]]`, Matcher{}, "do not nest"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			var m Matcher
			err := yaml.Unmarshal([]byte(tt.src), &m)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want.Kind, m.Kind)
			assert.Equal(t, tt.want.Value, m.Value)
			assert.Len(t, m.Of, len(tt.want.Of))
			// Round trip through the mapping form.
			out, err := yaml.Marshal(m)
			require.NoError(t, err)
			var back Matcher
			require.NoError(t, yaml.Unmarshal(out, &back))
			assert.Equal(t, m.Kind, back.Kind)
			assert.Equal(t, m.Value, back.Value)
		})
	}
}

func TestLookupAndFields(t *testing.T) {
	v := ParseJSON(`{"appointments":[{"slot_id":"s1","patient":{"name":"Maria"}}],"ok":true}`)
	got, ok := Lookup(v, "appointments.0.patient.name")
	require.True(t, ok)
	assert.Equal(t, "Maria", got)
	_, ok = Lookup(v, "appointments.1")
	assert.False(t, ok)
	_, ok = Lookup(v, "appointments.x")
	assert.False(t, ok)
	_, ok = Lookup(v, "ok.deeper")
	assert.False(t, ok)

	f := Fields{
		"appointments":                {Kind: Len, Value: 1},
		"appointments.0.slot_id":      MustNew(Exact, "s2"),
		"appointments.0.patient.name": MustNew(Regex, "(?i)^maria$"),
		"cancelled":                   MustNew(Absent, true),
	}
	fails := f.Check(v)
	require.Len(t, fails, 1)
	assert.Equal(t, `appointments.0.slot_id: want exact "s2", got "s1"`, fails[0])

	assert.Equal(t, "not json", ParseJSON("not json"))
}

func TestNormalizeStruct(t *testing.T) {
	type appt struct {
		Slot string `json:"slot_id"`
	}
	ok, why := MustNew(Subset, []any{map[string]any{"slot_id": "s1"}}).Match([]appt{{"s0"}, {"s1"}}, true)
	assert.True(t, ok, why)
}

// FuzzMatcherYAML feeds arbitrary YAML to the matcher decoder and matches
// arbitrary JSON: neither may panic, and a decoded matcher must survive a
// round trip.
func FuzzMatcherYAML(f *testing.F) {
	for _, s := range []string{`s1`, `{exact: [1, 2]}`, `{regex: "(?i)x"}`, `{subset: {a: [1, {b: 2}]}}`, `{len: 3}`, `{absent: true}`, `{len: 1e400}`, `{regex: 7}`} {
		f.Add(s, `{"a":[1,{"b":2}],"x":"X"}`)
	}
	f.Fuzz(func(t *testing.T, src, value string) {
		var m Matcher
		if err := yaml.Unmarshal([]byte(src), &m); err != nil || m.Kind == "" {
			return // rejected, or an empty document (nothing decoded)
		}
		m.Match(ParseJSON(value), true)
		Fields{"a": m, "a.1.b": m}.Check(ParseJSON(value))
		out, err := yaml.Marshal(m)
		if err != nil {
			t.Fatalf("marshal %v: %v", m, err)
		}
		var back Matcher
		if err := yaml.Unmarshal(out, &back); err != nil {
			t.Fatalf("round trip of %q (%s) failed: %v", src, out, err)
		}
	})
}
