package session_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/session"
)

func TestDefaultIsValidAndComplete(t *testing.T) {
	c := session.Default()
	require.NoError(t, c.Validate())
	assert.Equal(t, session.DefaultModel, c.Model)
	assert.Contains(t, c.Instructions, session.CrisisLine)
	assert.Contains(t, c.Instructions, session.ToolCrisisEscalation)
	for _, name := range []string{session.ToolCheckAvailability, session.ToolBookAppointment, session.ToolCancelAppointment,
		session.ToolTransferToHuman, session.ToolEndCall, session.ToolCrisisEscalation} {
		_, ok := c.Tool(name)
		assert.True(t, ok, "tool %s", name)
	}
}

func TestObjectIsTheDocumentedSessionShape(t *testing.T) {
	b, err := session.Default().JSON()
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, "realtime", got["type"])
	assert.Equal(t, "gpt-realtime", got["model"])
	assert.Equal(t, []any{"audio"}, got["output_modalities"])
	assert.Equal(t, map[string]any{
		"output": map[string]any{"voice": "marin"},
		"input": map[string]any{
			"transcription":  map[string]any{"model": "gpt-4o-mini-transcribe"},
			"turn_detection": map[string]any{"type": "server_vad", "create_response": true, "interrupt_response": true},
		},
	}, got["audio"], "input transcription on, so the agent sees caller turns")
	tools := got["tools"].([]any)
	require.Len(t, tools, 7)
	first := tools[0].(map[string]any)
	assert.Equal(t, "function", first["type"])
	assert.Equal(t, "check_availability", first["name"])
	assert.Equal(t, "object", first["parameters"].(map[string]any)["type"])
}

func TestTextCopyDoesNotAliasTools(t *testing.T) {
	c := session.Default()
	tx := c.Text()
	tx.Tools[0].Name = "changed"
	assert.Equal(t, []string{"text"}, tx.OutputModalities)
	assert.Equal(t, session.ToolCheckAvailability, c.Tools[0].Name)
	assert.Equal(t, []string{"audio"}, c.OutputModalities)
}

func TestValidateRejectsBadConfig(t *testing.T) {
	c := session.Config{Tools: []session.Tool{{Name: "x", Parameters: json.RawMessage(`[]`)}, {Name: "x", Parameters: json.RawMessage(`{"type":"string"}`)}}}
	err := c.Validate()
	require.Error(t, err)
	for _, want := range []string{"model is empty", "instructions are empty", `"x" defined twice`, "not a JSON object", "type object"} {
		assert.ErrorContains(t, err, want)
	}
}

func TestWithToday(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	now := time.Date(2026, time.November, 26, 14, 5, 0, 0, ny)
	c := session.Default().WithToday(now)
	assert.True(t, strings.HasPrefix(c.Instructions, session.Instructions), "the production instructions stay first")
	assert.True(t, strings.HasSuffix(c.Instructions, "\n\nToday is Thursday, 26 November 2026 (2026-11-26), 14:05 EST, in the clinic's time zone America/New_York (UTC-05:00)."), c.Instructions)
	assert.Equal(t, session.Instructions, session.Default().Instructions, "Default is not changed")
	require.NoError(t, c.Validate())
}

func TestWithTodayNamesTheClinicZone(t *testing.T) {
	// 23:30 UTC on 1 December is already 2 December in Kolkata: the model
	// must be told the clinic's date, zone and offset, not UTC's.
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	require.NoError(t, err)
	c := session.Default().WithToday(time.Date(2026, 12, 1, 23, 30, 0, 0, time.UTC).In(kolkata))
	assert.True(t, strings.HasSuffix(c.Instructions, "\n\nToday is Wednesday, 2 December 2026 (2026-12-02), 05:00 IST, in the clinic's time zone Asia/Kolkata (UTC+05:30)."), c.Instructions)
	assert.Contains(t, c.Instructions, "All dates and times are the clinic's local time")
}

func TestTakeMessageTool(t *testing.T) {
	tool, ok := session.Default().Tool(session.ToolTakeMessage)
	require.True(t, ok, "take_message is offered to the model")
	var schema struct {
		Required   []string       `json:"required"`
		Properties map[string]any `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(tool.Parameters, &schema))
	assert.Equal(t, []string{"caller_name", "reason"}, schema.Required)
	assert.Contains(t, schema.Properties, "callback_number")
	assert.Contains(t, session.Instructions, "call take_message")
}

func TestGreetingDisclosesTheAutomatedAssistant(t *testing.T) {
	c := session.Default().WithToday(time.Date(2026, time.November, 26, 14, 5, 0, 0, time.UTC))
	g := c.Greeting()
	assert.True(t, strings.HasPrefix(g, c.Instructions), "the greeting keeps the session's instructions (response instructions replace them)")
	assert.Contains(t, g, "automated assistant")
}
