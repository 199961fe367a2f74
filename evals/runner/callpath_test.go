package runner

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"gitlab.com/acme/voice-agent/evals/callsim"
)

// TestCallGroundTruth: REFER target and timing and hangup timing are read
// from the API's timeline (with its audio state), against values written
// in the case.
func TestCallGroundTruth(t *testing.T) {
	c := parse(t, `name: x
turns: [{caller: hi}]
expect: {transfer_to: "sip:frontdesk@x", transfer_after_say: "988", hangup_after_say: goodbye}
`)
	heard := []callsim.Event{
		{Kind: "caller", Text: "hi"},
		{Kind: "say", Response: "r1", Text: "Call or text 988. Goodbye."},
		{Kind: "refer", Target: "sip:frontdesk@x", AfterResponse: "r1"},
		{Kind: "hangup", AfterResponse: "r1"},
	}
	assert.Empty(t, CheckCall(c, Transcript(heard)))

	cut := []callsim.Event{
		{Kind: "caller", Text: "hi"},
		{Kind: "say", Response: "r1", Text: "Call or text 988. Goodbye."},
		{Kind: "refer", Target: "tel:988", Playing: "r1"},
		{Kind: "hangup", Playing: "r1"},
	}
	var got []string
	for _, f := range CheckCall(c, Transcript(cut)) {
		got = append(got, f.String())
	}
	assert.Equal(t, []string{
		"turn 1: transfer to sip:frontdesk@x: saw REFER to tel:988",
		`turn 1: REFER only once the caller heard 988 to the end: saw REFER while "Call or text 988. Goodbye." was still playing (cut off)`,
		`turn 1: hang up only once the caller heard goodbye to the end: saw hangup while "Call or text 988. Goodbye." was still playing (cut off)`,
	}, got)

	silent := []callsim.Event{{Kind: "caller", Text: "hi"}, {Kind: "silent", Text: "no response.create"}}
	fs := CheckCall(parse(t, "name: y\nturns: [{caller: hi}]\n"), Transcript(silent))
	assert.Equal(t, "turn 1: the agent asks the model to go on after every tool output: saw silence: no response.create", fs[0].String())
}
