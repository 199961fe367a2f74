package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRunCommandsInProcess(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"VOICE_AGENT_DB": filepath.Join(dir, "schedule.db"), "VOICE_AGENT_TIMEZONE": "Asia/Kolkata"}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"import-schedul", "x.csv"}, 2, `voice-agent: unknown command "import-schedul": use import-schedule FILE, messages, -version, or no argument to serve`},
		{[]string{"import-schedule", filepath.Join(dir, "missing.csv")}, 2, "no such file or directory"},
		{[]string{"messages", "-since", "today"}, 2, `-since "today" is not an RFC 3339 time, e.g. 2026-12-02T09:00:00-05:00`},
		{[]string{"messages"}, 1, "no schedule database at VOICE_AGENT_DB="},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, getenv, &stdout, &stderr)
		assert.Equal(t, tc.code, code, "%v: %s", tc.args, &stderr)
		assert.Contains(t, stderr.String(), tc.want, "%v", tc.args)
	}
	env["VOICE_AGENT_TIMEZONE"] = "India"
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 2, run([]string{"import-schedule", "-"}, getenv, &stdout, &stderr))
	assert.Contains(t, stderr.String(), `VOICE_AGENT_TIMEZONE "India" is not a known IANA time zone`)
}
