package suite

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/evals/match"
)

const oneCase = `name: book-simple
tags: [booking]
state:
  providers: [{id: prov_a, name: Dr. A}]
  slots:
    - {id: s1, provider_id: prov_a, start: 2026-12-01T09:00:00Z, end: 2026-12-01T09:50:00Z}
turns:
  - caller: Book me with Dr. A on December 1st at 9, name Maria Lopez.
    expect:
      must_say: [booked]
    model:
      - calls: [{name: book_appointment, args: {slot_id: s1, patient_name: Maria Lopez}}]
      - say: You're booked.
expect:
  tool_calls:
    - name: book_appointment
      turn: 1
      args: {slot_id: s1, patient_name: {regex: "(?i)maria"}}
      output: {status: booked}
  state:
    appointments: {len: 1}
  transfer: false
  max_turns: 4
`

func TestParseOneCase(t *testing.T) {
	cases, err := Parse("a.yaml", []byte(oneCase))
	require.NoError(t, err)
	require.Len(t, cases, 1)
	c := cases[0]
	assert.Equal(t, "book-simple", c.Name)
	assert.Equal(t, "a.yaml:1", c.Where())
	assert.True(t, c.Scripted())
	assert.Equal(t, 1.0, c.EffectiveWeight())
	require.Len(t, c.State.Slots, 1)
	assert.Equal(t, 9, c.State.Slots[0].Start.Hour())
	require.Len(t, c.Expect.ToolCalls, 1)
	assert.Equal(t, match.Regex, c.Expect.ToolCalls[0].Args["patient_name"].Kind)
	assert.Equal(t, match.Exact, c.Expect.ToolCalls[0].Args["slot_id"].Kind)
	assert.Equal(t, match.Len, c.Expect.State["appointments"].Kind)
	require.NotNil(t, c.Expect.Transfer)
	assert.False(t, *c.Expect.Transfer)
	assert.Equal(t, "Maria Lopez", c.Turns[0].Model[0].Calls[0].Args["patient_name"])
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"unknown top-level field", "name: x\nturns: [{caller: hi}]\nexpekt: {}\n", "f.yaml: yaml: unmarshal errors:\n  line 3: field expekt not found"},
		{"unknown nested field", "name: x\nturns:\n  - caller: hi\n    expect: {must_sey: [a]}\n", "line 4: field must_sey not found"},
		{"unknown state field", "name: x\nstate: {patients: []}\nturns: [{caller: hi}]\n", "line 2: field patients not found"},
		{"unknown field in list item", "- name: a\n  turns: [{caller: hi}]\n- name: b\n  turns: [{caller: hi}]\n  tagz: [x]\n", "line 5: field tagz not found"},
		{"bad matcher", "name: x\nturns: [{caller: hi}]\nexpect:\n  state: {appointments: {count: 1}}\n", `line 4: unknown matcher "count"`},
		{"bad regex", "name: x\nturns: [{caller: hi}]\nexpect:\n  tool_calls: [{name: t, args: {a: {regex: '('}}}]\n", "line 4: regex matcher"},
		{"bad phrase regex", "name: x\nturns: [{caller: hi}]\nexpect: {must_say: ['/(/']}\n", "f.yaml:1: case \"x\": phrase /(/"},
		{"no name", "turns: [{caller: hi}]\n", `name ""`},
		{"no turns", "name: x\n", "no turns"},
		{"empty caller", "name: x\nturns: [{caller: ' '}]\n", "turn 1: caller text is empty"},
		{"script with a gap", "name: x\nturns:\n  - caller: a\n  - caller: b\n    model: [{say: hi}]\n", "turn 2 has a scripted `model` but turn 1 has none"},
		{"empty response", "name: x\nturns:\n  - caller: a\n    model: [{}]\n", "neither say nor calls"},
		{"turn out of range", "name: x\nturns: [{caller: a}]\nexpect: {tool_calls: [{name: t, turn: 2}]}\n", "turn 2 is outside 1..1"},
		{"negative weight", "name: x\nweight: -1\nturns: [{caller: a}]\n", "weight -1"},
		{"scalar file", "hello\n", "holds a mapping (one case) or a list"},
		{"empty file", "", "empty file"},
		{"two documents", "name: x\nturns: [{caller: a}]\n---\nname: y\n", "more than one YAML document"},
		{"syntax error", "name: [x\n", "f.yaml: yaml:"},
		{"wrong type", "name: x\nturns: {caller: a}\n", "line 2: cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tt.src))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestLoadDirListsAndDuplicates(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(oneCase), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.yml"), []byte("- name: two\n  tags: [x]\n  turns: [{caller: hi}]\n\n- name: three\n  turns: [{caller: hi}]\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644))
	s, err := LoadDir(dir)
	require.NoError(t, err)
	require.Len(t, s.Cases, 3)
	assert.Equal(t, filepath.Join(dir, "b.yml")+":5", s.Cases[2].Where())
	assert.Equal(t, []string{"booking", "x"}, s.Tags())
	assert.Len(t, s.Select("x"), 1)
	assert.Len(t, s.Select(""), 3)
	assert.Empty(t, s.Select("nope"))

	require.NoError(t, os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("name: two\nturns: [{caller: hi}]\n"), 0o644))
	_, err = LoadDir(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `case name "two" is already used at`)

	_, err = LoadDir(t.TempDir())
	assert.ErrorContains(t, err, "has no cases")
}

func TestResolve(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "evals", "suites", "voice"), 0o755))
	dir, err := Resolve(root, "voice")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(root, "evals", "suites", "voice"), dir)
	dir, err = Resolve(root, root)
	require.NoError(t, err)
	assert.Equal(t, root, dir)
	_, err = Resolve(root, "nope")
	assert.ErrorContains(t, err, `suite "nope" not found`)
	assert.ErrorContains(t, err, "available: voice")
	_, err = Resolve(root, "./missing/dir")
	assert.ErrorContains(t, err, "does not exist")
	_, err = Resolve(root, "")
	assert.ErrorContains(t, err, "--suite")
}

func TestCompilePhrase(t *testing.T) {
	re, err := CompilePhrase("988")
	require.NoError(t, err)
	assert.True(t, re.MatchString("call or text 988 now"))
	re, err = CompilePhrase("a.b")
	require.NoError(t, err)
	assert.False(t, re.MatchString("axb"), "literal phrases are not regexes")
	re, err = CompilePhrase("/tues(day)?/")
	require.NoError(t, err)
	assert.True(t, re.MatchString("on TUESDAY"))
}

func TestWriteScripts(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "cases.yaml")
	src := "# clinic cases\n- name: one\n  turns:\n    - caller: hi # greeting\n    - caller: book\n- name: other\n  turns: [{caller: x, model: [{say: kept}]}]\n"
	require.NoError(t, os.WriteFile(file, []byte(src), 0o644))
	err := WriteScripts(file, map[string][][]Response{"one": {
		{{Say: "Hello, how can I help?"}},
		{{Calls: []Call{{Name: "book", Args: map[string]any{"slot_id": "s1"}}}}, {Say: "Booked."}},
	}})
	require.NoError(t, err)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Contains(t, string(data), "# clinic cases")
	assert.Contains(t, string(data), "# greeting")
	cases, err := Parse(file, data)
	require.NoError(t, err)
	require.Len(t, cases, 2)
	assert.True(t, cases[0].Scripted())
	assert.Equal(t, "s1", cases[0].Turns[1].Model[0].Calls[0].Args["slot_id"])
	assert.Equal(t, "Booked.", cases[0].Turns[1].Model[1].Say)
	assert.Equal(t, "kept", cases[1].Turns[0].Model[0].Say)

	// A recording that stopped after turn 1 (the agent ended the call)
	// scripts only that turn.
	require.NoError(t, WriteScripts(file, map[string][][]Response{"one": {{{Say: "Bye"}}}}))
	data, err = os.ReadFile(file)
	require.NoError(t, err)
	cases, err = Parse(file, data)
	require.NoError(t, err)
	assert.True(t, cases[0].Scripted())
	assert.Empty(t, cases[0].Turns[1].Model)
}

// FuzzParse feeds arbitrary bytes to the case parser: it must not panic,
// and whatever it accepts must be valid.
func FuzzParse(f *testing.F) {
	f.Add([]byte(oneCase))
	f.Add([]byte("- name: a\n  turns: [{caller: hi}]\n"))
	f.Add([]byte("name: x\nturns: [{caller: a}]\nexpect: {state: {a: {len: 1}}}\n"))
	f.Add([]byte("name: x\nturns: [{caller: a, model: [{calls: [{name: t, raw_args: '{'}]}]}]\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cases, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, c := range cases {
			if err := c.Validate(); err != nil {
				t.Fatalf("accepted an invalid case: %v", err)
			}
		}
	})
}
