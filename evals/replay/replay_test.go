package replay

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/evals/suite"
)

const tools = `[{"type":"function","name":"book","description":"Book a slot.","parameters":{"type":"object","properties":{"slot_id":{"type":"string"}},"required":["slot_id"],"additionalProperties":false}}]`

func req(instructions string, conv ...Item) Request {
	return Request{Model: "gpt-realtime", Instructions: instructions, Tools: json.RawMessage(tools), Conversation: conv}
}

const instr = "You are a receptionist.\n\nCrisis safety:\n- stop scheduling and offer 988."

// TestKeyFollowsWhatTheModelSaw: the key changes with every component of
// what the model is given, and not with ids the agent generates at random.
func TestKeyFollowsWhatTheModelSaw(t *testing.T) {
	user := Item{Type: "message", Role: "user", Text: "book s1"}
	call := Item{Type: "function_call", Name: "book", CallID: "c1", Arguments: `{"slot_id":"s1"}`}
	out := func(id string) Item {
		return Item{Type: "function_call_output", CallID: "c1", Output: `{"booked":true,"appointment_id":"` + id + `"}`}
	}
	base, err := Key(req(instr, user, call, out("apt_0123456789ab")))
	require.NoError(t, err)
	same, _ := Key(req(instr, user, call, Item{Type: "function_call_output", CallID: "c9", Output: `{"appointment_id":"apt_ba9876543210","booked":true}`}))
	assert.Equal(t, base, same, "other random ids, other call ids and key order key the same")

	changed := map[string]Request{
		"one word of the instructions": req(strings.Replace(instr, "stop", "pause", 1), user, call, out("apt_0123456789ab")),
		"the caller's words":           req(instr, Item{Type: "message", Role: "user", Text: "book s2"}, call, out("apt_0123456789ab")),
		"the tool output":              req(instr, user, call, Item{Type: "function_call_output", CallID: "c1", Output: `{"booked":false}`}),
		"the model":                    {Model: "other", Instructions: instr, Tools: json.RawMessage(tools), Conversation: []Item{user, call, out("apt_0123456789ab")}},
		"a schema property":            {Model: "gpt-realtime", Instructions: instr, Tools: json.RawMessage(strings.Replace(tools, `"slot_id":{`, `"slot":{`, 1)), Conversation: []Item{user, call, out("apt_0123456789ab")}},
	}
	for what, r := range changed {
		k, err := Key(r)
		require.NoError(t, err)
		assert.NotEqual(t, base, k, what)
	}

	was, _ := SeenOf(req(instr, user, call, out("apt_0123456789ab")))
	now, _ := SeenOf(changed["one word of the instructions"])
	assert.Equal(t, []string{`instructions: section "Crisis safety:" is new or changed`}, Changes(was, now))
	now, _ = SeenOf(changed["the tool output"])
	assert.Equal(t, []string{"tool output 1 (book): the agent's output changed"}, Changes(was, now))
	now, _ = SeenOf(changed["a schema property"])
	assert.Equal(t, []string{"tool book: description or JSON schema changed"}, Changes(was, now))
}

func TestWallClockDateLine(t *testing.T) {
	a := req(instr + "\n\nToday is Monday, 30 November 2026.")
	b := req(instr + "\n\nToday is Tuesday, 1 December 2026.")
	ka, _ := Key(a)
	kb, _ := Key(b)
	assert.NotEqual(t, ka, kb, "with a case clock the date is part of the key")
	a.WallClock, b.WallClock = true, true
	ka, _ = Key(a)
	kb, _ = Key(b)
	assert.Equal(t, ka, kb, "on the wall clock the date line is left out")
}

func player(t *testing.T, src string) (*Player, *suite.Case) {
	t.Helper()
	cs, err := suite.Parse("t.yaml", []byte(src))
	require.NoError(t, err)
	return NewPlayer(cs[0], "t"), cs[0]
}

// TestPlayerFailsClosed: an unkeyed or mismatched recording is stale, and
// scripted arguments must satisfy the declared schema.
func TestPlayerFailsClosed(t *testing.T) {
	user := Item{Type: "message", Role: "user", Text: "hi"}
	p, _ := player(t, "name: a\nturns: [{caller: hi, model: [{say: hello}]}]\n")
	_, err := p.Respond(context.Background(), req(instr, user))
	var st *StaleError
	require.True(t, errors.As(err, &st))
	assert.Contains(t, err.Error(), "the recording has no key")
	assert.Contains(t, err.Error(), `go run ./evals/cmd/rekey --suite t --case a --by "Your Name"`)

	key, _ := Key(req(instr, user))
	p, _ = player(t, "name: a\nturns: [{caller: hi, model: [{say: hello, key: "+key+"}]}]\n")
	outs, err := p.Respond(context.Background(), req(instr, user))
	require.NoError(t, err)
	assert.Equal(t, []Output{{Text: "hello"}}, outs)

	p, _ = player(t, "name: a\nturns: [{caller: hi, model: [{calls: [{name: book, args: {slot: s1}}], key: "+key+"}]}]\n")
	_, err = p.Respond(context.Background(), req(instr, user))
	require.ErrorIs(t, err, ErrSchema)
	assert.Contains(t, err.Error(), "additional properties 'slot' not allowed")

	p, _ = player(t, "name: a\nturns: [{caller: hi, model: [{calls: [{name: book, args: {slot_id: s1}, invalid: true}], key: "+key+"}]}]\n")
	_, err = p.Respond(context.Background(), req(instr, user))
	assert.ErrorContains(t, err, "is marked invalid: true but satisfies the declared schema")

	p, _ = player(t, "name: a\nturns: [{caller: hi, model: [{calls: [{name: cancel_everything}], key: "+key+"}]}]\n")
	_, err = p.Respond(context.Background(), req(instr, user))
	assert.ErrorContains(t, err, "the script calls cancel_everything, but the agent declared no such tool")
}
