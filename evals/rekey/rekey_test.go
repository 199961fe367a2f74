package rekey

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/evals/suite"
)

const caseFile = `- name: look
  now: 2026-12-01T08:00:00Z
  state:
    providers: [{id: p, name: Dr. P}]
    slots: [{id: s1, provider_id: p, start: 2026-12-02T09:00:00Z, end: 2026-12-02T09:50:00Z}]
  greeting: [{say: "Harbor Behavioral Health, automated assistant."}]
  turns:
    - caller: Anything Wednesday?
      model:
        - calls: [{name: check_availability, args: {date: "2026-12-02"}}]
        - say: Dr. P has 9 AM.
  expect: {must_say: ["9 AM"]}
`

func rekey(t *testing.T, dir string, o Options) (int, string) {
	t.Helper()
	s, err := suite.LoadDir(dir)
	require.NoError(t, err)
	var out bytes.Buffer
	o.Now = func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) }
	refused, err := Run(context.Background(), s, o, &out)
	require.NoError(t, err)
	return refused, out.String()
}

func edit(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(data), old)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644))
}

// TestRekeyCannotHideABehaviourChange: a first keying writes keys and who
// keyed; a changed tool output is refused unless accepted with a reason
// (stored); a case that no longer passes is refused; a recording made from
// a model is refused.
func TestRekeyCannotHideABehaviourChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.yaml")
	require.NoError(t, os.WriteFile(path, []byte(caseFile), 0o644))

	refused, out := rekey(t, dir, Options{By: "Jane"})
	require.Zero(t, refused, out)
	data, _ := os.ReadFile(path)
	assert.Contains(t, string(data), "keyed_by: Jane")
	assert.Contains(t, string(data), "keyed_at: \"2026-11-30T12:00:00Z\"")
	assert.Equal(t, 3, strings.Count(string(data), "key: "), "one key per response, the greeting's too")

	refused, out = rekey(t, dir, Options{By: "Jane"})
	assert.Zero(t, refused)
	assert.Contains(t, out, "up to date look")

	// The agent's tool output changes (another slot time): refused.
	edit(t, path, "start: '2026-12-02T09:00:00Z'", "start: '2026-12-02T09:10:00Z'")
	refused, out = rekey(t, dir, Options{By: "Jane"})
	assert.Equal(t, 1, refused)
	assert.Contains(t, out, "REFUSED look: tool output 1 (check_availability) changed")
	_, err := Run(context.Background(), &suite.Suite{Name: "x"}, Options{By: "Jane", AcceptOutputs: []string{"look"}}, &bytes.Buffer{})
	assert.ErrorContains(t, err, "--accept-outputs needs --reason")
	refused, out = rekey(t, dir, Options{By: "Jane", AcceptOutputs: []string{"look"}, Reason: "slots moved by ten minutes"})
	assert.Zero(t, refused, out)
	data, _ = os.ReadFile(path)
	assert.Contains(t, string(data), "reason: slots moved by ten minutes")

	// A case that no longer passes is not re-keyed.
	edit(t, path, `must_say: ["9 AM"]`, `must_say: ["10 AM"]`)
	edit(t, path, "instructions:", "instructions_was:") // force a re-key attempt
	_, err = suite.LoadDir(dir)
	require.Error(t, err, "strict decoding refuses the edited block")
	edit(t, path, "instructions_was:", "instructions:")
	edit(t, path, "Anything Wednesday?", "Anything on Wednesday?")
	refused, out = rekey(t, dir, Options{By: "Jane"})
	assert.Equal(t, 1, refused)
	assert.Contains(t, out, "REFUSED look: the case does not pass with the agent as it is")

	// A recording made from a model is re-recorded, never re-keyed.
	edit(t, path, "source: hand-written", "source: recorded\n    model: gpt-realtime\n    date: \"2026-11-30\"")
	refused, out = rekey(t, dir, Options{By: "Jane", Cases: []string{"look"}})
	assert.Equal(t, 1, refused)
	assert.Contains(t, out, "re-record it with --mode record")
}
