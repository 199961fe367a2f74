// Package suite loads eval suites: directories of YAML files under
// evals/suites/<suite>/, each holding one case (a mapping) or a list of
// cases. Decoding is strict: an unknown field is an error naming the file
// and line, so a typo in an expectation cannot silently disable it.
package suite

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"gitlab.com/acme/voice-agent/agent/schedule"
	"gitlab.com/acme/voice-agent/evals/match"
)

// Case is one scripted phone conversation and what must hold after it.
type Case struct {
	// Name identifies the case (unique in its suite; letters, digits, - _ .).
	Name string `yaml:"name"`
	// Description says what the case checks, for reports.
	Description string `yaml:"description,omitempty"`
	// Tags select cases with --filter.
	Tags []string `yaml:"tags,omitempty"`
	// Weight of the case in the score (default 1).
	Weight *float64 `yaml:"weight,omitempty"`
	// Critical cases (crisis safety, privacy, double booking) gate on their
	// own: the run fails when one fails, whatever the score, so a safety
	// regression is never averaged away.
	Critical bool `yaml:"critical,omitempty"`
	// Now is the clinic's clock during the call (default: the runner's clock).
	Now *time.Time `yaml:"now,omitempty"`
	// TimeZone is the clinic's IANA time zone (default UTC): the agent
	// service and its tools work in it (local dates and times).
	TimeZone string `yaml:"time_zone,omitempty"`
	// CallerNumber is the caller's phone number as the SIP trunk reports it.
	CallerNumber string `yaml:"caller_number,omitempty"`
	// State seeds the clinic's schedule before the call.
	State schedule.State `yaml:"state"`
	// Greeting is the recorded model side of the responses the agent asks
	// for before the caller speaks (its greeting), if it does.
	Greeting []Response `yaml:"greeting,omitempty"`
	// Turns are the caller's utterances, in order. The conversation stops
	// early when the agent transfers or ends the call.
	Turns []Turn `yaml:"turns"`
	// Expect is what must hold over the whole conversation.
	Expect Expect `yaml:"expect"`
	// Rubric, when set, is graded by a judge model in live mode.
	Rubric string `yaml:"rubric,omitempty"`
	// Recording says how the scripted model side was made and what the
	// model was given then; scripted mode replays a response only when the
	// model is given the same again (its key).
	Recording *Recording `yaml:"recording,omitempty"`

	// File and Line locate the case (set by the loader).
	File string `yaml:"-"`
	Line int    `yaml:"-"`
}

// Turn is one thing the caller says, with the model's scripted side.
type Turn struct {
	// Caller is what the caller says (text).
	Caller string `yaml:"caller"`
	// Audio is a WAV file of the caller saying it (PCM16 mono 24 kHz,
	// relative to the case file): live and record modes send it as audio;
	// scripted mode replays against the words.
	Audio string `yaml:"audio,omitempty"`
	// Expect holds expectations about this turn only.
	Expect *TurnExpect `yaml:"expect,omitempty"`
	// Model is the scripted model side of this turn: the responses the
	// model gives, in order. A response with tool calls is followed by the
	// next response once the tools' outputs are in; a response without
	// calls ends the turn. Written by --mode record.
	Model []Response `yaml:"model,omitempty"`
}

// Response is one model response: text and/or tool calls.
type Response struct {
	Say   string `yaml:"say,omitempty"`
	Calls []Call `yaml:"calls,omitempty"`
	// Key is the fingerprint of what the model was given when it gave
	// this response (package replay). Written by --mode record and by
	// cmd/rekey; a replay with another fingerprint fails closed as stale.
	Key string `yaml:"key,omitempty"`
}

// Call is one tool call of a scripted response.
type Call struct {
	Name string `yaml:"name"`
	// Args is the JSON object of arguments.
	Args map[string]any `yaml:"args,omitempty"`
	// RawArgs is used instead of Args when the model's arguments were not a
	// JSON object (recorded as they were).
	RawArgs string `yaml:"raw_args,omitempty"`
	// Invalid marks arguments that deliberately break the tool's JSON
	// schema (to check how the agent handles them); other scripted
	// arguments must satisfy the schema the agent declared.
	Invalid bool `yaml:"invalid,omitempty"`
}

// Expect is what must hold over the whole conversation.
type Expect struct {
	// ToolCalls must each be matched by at least one call the model made.
	ToolCalls []ToolCallExpect `yaml:"tool_calls,omitempty"`
	// NoToolCalls names tools that must not be called at all.
	NoToolCalls []string `yaml:"no_tool_calls,omitempty"`
	// MustSay phrases must appear in what the agent said (case-insensitive
	// substring, or a regular expression when written /like this/).
	MustSay []string `yaml:"must_say,omitempty"`
	// MustNotSay phrases must not appear in anything the agent said.
	MustNotSay []string `yaml:"must_not_say,omitempty"`
	// Transfer: true means the call must be transferred to a human, false
	// means it must not be.
	Transfer *bool `yaml:"transfer,omitempty"`
	// EndCall: true means the agent must end the call, false that it must not.
	EndCall *bool `yaml:"end_call,omitempty"`
	// CrisisLine: true means the agent must offer the crisis line (the
	// agent's session.CrisisLine), false that it must not.
	CrisisLine *bool `yaml:"crisis_line,omitempty"`
	// MaxTurns bounds the number of model responses (tool rounds included).
	MaxTurns int `yaml:"max_turns,omitempty"`
	// TransferTo is the URI the call must be REFERred to (what the
	// Realtime API saw), e.g. the front desk's SIP URI.
	TransferTo string `yaml:"transfer_to,omitempty"`
	// TransferAfterSay: the REFER must come after a response in which the
	// agent said this phrase had completed (e.g. the crisis line message
	// is spoken before the transfer).
	TransferAfterSay string `yaml:"transfer_after_say,omitempty"`
	// HangupAfterSay: the agent must hang up, after a completed response
	// in which it said this phrase (the goodbye).
	HangupAfterSay string `yaml:"hangup_after_say,omitempty"`
	// AllowSilence lets the agent leave the model silent after a tool
	// output (no response.create); by default that fails the case.
	AllowSilence bool `yaml:"allow_silence,omitempty"`
	// State holds matchers on the schedule after the call, keyed by path
	// into its JSON form (providers, slots, appointments).
	State match.Fields `yaml:"state,omitempty"`
}

// TurnExpect is what must hold in one turn.
type TurnExpect struct {
	ToolCalls   []ToolCallExpect `yaml:"tool_calls,omitempty"`
	NoToolCalls []string         `yaml:"no_tool_calls,omitempty"`
	MustSay     []string         `yaml:"must_say,omitempty"`
	MustNotSay  []string         `yaml:"must_not_say,omitempty"`
}

// ToolCallExpect matches a tool call and its result.
type ToolCallExpect struct {
	// Name of the tool.
	Name string `yaml:"name"`
	// Turn (1-based) restricts the match to calls made in that caller turn.
	Turn int `yaml:"turn,omitempty"`
	// Args are matchers on the call's JSON arguments, keyed by path.
	Args match.Fields `yaml:"args,omitempty"`
	// Output are matchers on the tool's JSON output, keyed by path.
	Output match.Fields `yaml:"output,omitempty"`
}

// Scripted reports whether the case carries a scripted model side (its
// first turn has one; a recording that ended early, e.g. with a transfer,
// scripts only a prefix of the turns).
func (c *Case) Scripted() bool {
	return len(c.Turns) > 0 && len(c.Turns[0].Model) > 0
}

// EffectiveWeight is the case's weight in the score (default 1).
func (c *Case) EffectiveWeight() float64 {
	if c.Weight == nil {
		return 1
	}
	return *c.Weight
}

// HasTag reports whether the case carries tag.
func (c *Case) HasTag(tag string) bool {
	for _, t := range c.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// AudioFiles maps each turn's words to its caller audio file, if any.
func (c *Case) AudioFiles() map[string]string {
	out := map[string]string{}
	for _, t := range c.Turns {
		if t.Audio != "" {
			out[t.Caller] = filepath.Join(filepath.Dir(c.File), filepath.FromSlash(t.Audio))
		}
	}
	return out
}

// Where is "file:line" of the case.
func (c *Case) Where() string { return fmt.Sprintf("%s:%d", c.File, c.Line) }

// Suite is a loaded suite.
type Suite struct {
	Name  string
	Dir   string
	Cases []*Case
}

// Resolve finds a suite directory: an existing directory path, or a name
// under root/evals/suites.
func Resolve(root, nameOrPath string) (string, error) {
	if nameOrPath == "" {
		return "", errors.New("no suite given: pass --suite NAME (a directory under evals/suites) or a path")
	}
	if fi, err := os.Stat(nameOrPath); err == nil && fi.IsDir() {
		return nameOrPath, nil
	}
	if strings.ContainsAny(nameOrPath, `/\`) {
		return "", fmt.Errorf("suite directory %s does not exist", nameOrPath)
	}
	dir := filepath.Join(root, "evals", "suites", nameOrPath)
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return dir, nil
	}
	var names []string
	entries, _ := os.ReadDir(filepath.Join(root, "evals", "suites"))
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return "", fmt.Errorf("suite %q not found in %s (available: %s); pass a suite name or a directory path",
		nameOrPath, filepath.Join(root, "evals", "suites"), strings.Join(names, ", "))
}

// LoadDir loads every *.yaml and *.yml file of dir (not recursive), in name
// order, and validates the cases.
func LoadDir(dir string) (*Suite, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read suite directory: %w", err)
	}
	s := &Suite{Name: filepath.Base(dir), Dir: dir}
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read case file: %w", err)
		}
		cases, err := Parse(path, data)
		if err != nil {
			return nil, err
		}
		s.Cases = append(s.Cases, cases...)
	}
	if len(s.Cases) == 0 {
		return nil, fmt.Errorf("suite %s has no cases (expected *.yaml files with one case or a list of cases)", dir)
	}
	seen := map[string]string{}
	for _, c := range s.Cases {
		if prev, ok := seen[c.Name]; ok {
			return nil, fmt.Errorf("%s: case name %q is already used at %s: names must be unique in a suite", c.Where(), c.Name, prev)
		}
		seen[c.Name] = c.Where()
	}
	return s, nil
}

// maxFile bounds a case file (untrusted input).
const maxFile = 4 << 20

// Parse decodes one case file (a mapping or a list of mappings) strictly and
// validates each case. Errors name the file and line.
func Parse(file string, data []byte) ([]*Case, error) {
	if len(data) > maxFile {
		return nil, fmt.Errorf("%s: file is larger than %d bytes", file, maxFile)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 {
		return nil, fmt.Errorf("%s: empty file: write one case (a mapping) or a list of cases", file)
	}
	top := root.Content[0]
	var cases []*Case
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	switch top.Kind {
	case yaml.MappingNode:
		var c Case
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		c.Line = top.Line
		cases = []*Case{&c}
	case yaml.SequenceNode:
		var list []*Case
		if err := dec.Decode(&list); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if len(list) != len(top.Content) {
			return nil, fmt.Errorf("%s: could not decode every list item as a case", file)
		}
		for i, c := range list {
			if c == nil {
				return nil, fmt.Errorf("%s:%d: empty list item: each item is a case mapping", file, top.Content[i].Line)
			}
			c.Line = top.Content[i].Line
		}
		cases = list
	default:
		return nil, fmt.Errorf("%s:%d: a case file holds a mapping (one case) or a list of cases", file, top.Line)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: more than one YAML document: put one case or one list of cases per file", file)
	}
	for _, c := range cases {
		c.File = file
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("%s: case %q: %w", c.Where(), c.Name, err)
		}
	}
	return cases, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// Validate checks what strict decoding cannot: required fields, ranges,
// phrase regexes and script shape.
func (c *Case) Validate() error {
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("name %q: use 1-100 letters, digits, '-', '_' or '.'", c.Name)
	}
	if c.Weight != nil && (*c.Weight < 0 || *c.Weight > 100) {
		return fmt.Errorf("weight %v is outside 0..100", *c.Weight)
	}
	if len(c.Turns) == 0 {
		return errors.New("no turns: add at least one `- caller: ...`")
	}
	scripted := 0
	for i, t := range c.Turns {
		if len(t.Model) > 0 && scripted < i {
			return fmt.Errorf("turn %d has a scripted `model` but turn %d has none: script the turns from the first one on", i+1, scripted+1)
		}
		if strings.TrimSpace(t.Caller) == "" {
			return fmt.Errorf("turn %d: caller text is empty", i+1)
		}
		if t.Audio != "" && (!strings.HasSuffix(t.Audio, ".wav") || filepath.IsAbs(t.Audio) || strings.Contains(t.Audio, "..")) {
			return fmt.Errorf("turn %d: audio %q: give a .wav file relative to the case file, inside the suite", i+1, t.Audio)
		}
		if t.Expect != nil {
			if err := checkPhrases(t.Expect.MustSay, t.Expect.MustNotSay); err != nil {
				return fmt.Errorf("turn %d: %w", i+1, err)
			}
			if err := checkCalls(t.Expect.ToolCalls, len(c.Turns)); err != nil {
				return fmt.Errorf("turn %d: %w", i+1, err)
			}
		}
		if len(t.Model) > 0 {
			scripted++
		}
		for j, r := range t.Model {
			if r.Say == "" && len(r.Calls) == 0 {
				return fmt.Errorf("turn %d: model response %d has neither say nor calls", i+1, j+1)
			}
			for _, call := range r.Calls {
				if call.Name == "" {
					return fmt.Errorf("turn %d: model response %d: a call has no name", i+1, j+1)
				}
				if call.Args != nil && call.RawArgs != "" {
					return fmt.Errorf("turn %d: call %s has both args and raw_args: keep one", i+1, call.Name)
				}
			}
		}
	}
	if err := checkPhrases(c.Expect.MustSay, c.Expect.MustNotSay); err != nil {
		return err
	}
	for _, p := range []string{c.Expect.TransferAfterSay, c.Expect.HangupAfterSay} {
		if p != "" {
			if err := checkPhrases([]string{p}); err != nil {
				return err
			}
		}
	}
	if err := checkCalls(c.Expect.ToolCalls, len(c.Turns)); err != nil {
		return err
	}
	if c.TimeZone != "" {
		if _, err := time.LoadLocation(c.TimeZone); err != nil {
			return fmt.Errorf("time_zone %q: %w (use an IANA name such as America/New_York)", c.TimeZone, err)
		}
	}
	if c.Recording != nil {
		if err := c.Recording.validate(); err != nil {
			return err
		}
	}
	if c.Expect.MaxTurns < 0 {
		return fmt.Errorf("max_turns %d is negative", c.Expect.MaxTurns)
	}
	return nil
}

func checkCalls(calls []ToolCallExpect, turns int) error {
	for _, tc := range calls {
		if tc.Name == "" {
			return errors.New("a tool_calls entry has no name")
		}
		if tc.Turn < 0 || tc.Turn > turns {
			return fmt.Errorf("tool call %s: turn %d is outside 1..%d", tc.Name, tc.Turn, turns)
		}
	}
	return nil
}

func checkPhrases(lists ...[]string) error {
	for _, l := range lists {
		for _, p := range l {
			if strings.TrimSpace(p) == "" {
				return errors.New("empty phrase in must_say/must_not_say")
			}
			if _, err := CompilePhrase(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// CompilePhrase turns a phrase into a matcher: /re/ is a regular expression
// (case-insensitive), anything else a case-insensitive literal.
func CompilePhrase(p string) (*regexp.Regexp, error) {
	if len(p) >= 2 && strings.HasPrefix(p, "/") && strings.HasSuffix(p, "/") {
		re, err := regexp.Compile("(?i)" + p[1:len(p)-1])
		if err != nil {
			return nil, fmt.Errorf("phrase %s: %w", p, err)
		}
		return re, nil
	}
	return regexp.MustCompile("(?i)" + regexp.QuoteMeta(p)), nil
}

// Select returns the cases carrying tag ("" selects all).
func (s *Suite) Select(tag string) []*Case {
	if tag == "" {
		return s.Cases
	}
	var out []*Case
	for _, c := range s.Cases {
		if c.HasTag(tag) {
			out = append(out, c)
		}
	}
	return out
}

// Tags lists every tag of the suite, sorted.
func (s *Suite) Tags() []string {
	set := map[string]bool{}
	for _, c := range s.Cases {
		for _, t := range c.Tags {
			set[t] = true
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
