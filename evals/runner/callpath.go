package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gitlab.com/acme/voice-agent/evals/callsim"
	"gitlab.com/acme/voice-agent/evals/suite"
)

// CallPath runs a case as a phone call through the production agent
// service against a Realtime endpoint (the loopback API with a replayed or
// live model). Every mode goes through it.
type CallPath interface {
	Play(ctx context.Context, c *suite.Case) (*CallOutcome, error)
}

// CallOutcome is what happened on one call.
type CallOutcome struct {
	// Session is the session object the agent accepted the call with.
	Session json.RawMessage
	// Timeline is the call as the Realtime API saw it.
	Timeline []callsim.Event
	// State is the schedule after the call.
	State any
	// Responses counts model responses.
	Responses int
	// Stale is set when the recording did not match what the model was
	// given: the case fails closed and says how to refresh it.
	Stale string
	// Err is a model or call failure (the attempt fails).
	Err error
	// Usage counts tokens (live).
	Usage Usage
}

// Transcript turns a call's timeline into the runner's events: caller
// turns, agent speech, tool calls with the agent's outputs, and the REFERs
// and hangup the API saw (with what the agent had said just before).
func Transcript(tl []callsim.Event) []Event {
	var out []Event
	turn := 0
	said := map[string]string{}
	calls := map[string]int{}
	for _, ev := range tl {
		switch ev.Kind {
		case "caller":
			turn++
			out = append(out, Event{Turn: turn, Kind: "caller", Text: ev.Text})
		case "say":
			said[ev.Response] = strings.TrimSpace(said[ev.Response] + " " + ev.Text)
			out = append(out, Event{Turn: turn, Kind: "agent", Text: ev.Text})
		case "call":
			calls[ev.CallID] = len(out)
			out = append(out, Event{Turn: turn, Kind: "tool", Tool: ev.Name, Arguments: ev.Arguments})
		case "output":
			if i, ok := calls[ev.CallID]; ok {
				out[i].Output = ev.Output
			}
		case "refer":
			out = append(out, Event{Turn: turn, Kind: "refer", Transfer: true, Target: ev.Target, After: after(said, ev), CutOff: cutOff(said, ev)})
		case "hangup":
			out = append(out, Event{Turn: turn, Kind: "hangup", EndCall: true, After: after(said, ev), CutOff: cutOff(said, ev)})
		case "silent":
			out = append(out, Event{Turn: turn, Kind: "silent", Text: ev.Text})
		case "model_error":
			out = append(out, Event{Turn: turn, Kind: "model_error", Text: ev.Text})
		}
	}
	return out
}

// after is what the caller had heard to the end before a REFER or hangup:
// the speech of the response whose audio had last stopped (nothing when
// audio was still playing: see cutOff).
func after(said map[string]string, ev callsim.Event) string {
	if ev.Playing != "" {
		return ""
	}
	return said[ev.AfterResponse]
}

// cutOff is the speech still playing when a REFER or hangup happened.
func cutOff(said map[string]string, ev callsim.Event) string {
	if ev.Playing == "" {
		return ""
	}
	if t := said[ev.Playing]; t != "" {
		return t
	}
	return "(audio of " + ev.Playing + ")"
}

// playCall runs one attempt through the call path.
func (r *Runner) playCall(ctx context.Context, sess Session, c *suite.Case, o Options, a *Attempt, fail func(string, ...any) *Attempt) *Attempt {
	t0 := time.Now()
	out, err := r.Calls.Play(ctx, c)
	if err != nil {
		return fail("call: %v", err)
	}
	a.Latencies = append(a.Latencies, Duration(time.Since(t0)))
	a.Usage.add(out.Usage)
	a.Transcript = Transcript(out.Timeline)
	if out.Stale != "" {
		a.Stale = out.Stale
		a.Error = out.Stale
		return a
	}
	if out.Err != nil {
		return fail("%v", out.Err)
	}
	a.Matched = r.Mode == "scripted"
	a.Failures = Check(c, a.Transcript, out.State, sess.CrisisLine, out.Responses)
	a.Failures = append(a.Failures, CheckCall(c, a.Transcript)...)
	if c.Rubric != "" {
		r.grade(ctx, c, o, a)
	}
	if a.Error == "" {
		a.Pass = len(a.Failures) == 0
	}
	return a
}

func seenAction(what string, ev Event) string {
	if ev.CutOff != "" {
		return fmt.Sprintf("%s while %q was still playing (cut off)", what, ev.CutOff)
	}
	return fmt.Sprintf("%s after the caller heard %q", what, ev.After)
}

// CheckCall checks what the Realtime API saw of the call: where it was
// transferred, and what the agent had said before the REFER and before
// the hangup.
func CheckCall(c *suite.Case, tr []Event) []Failure {
	var fs []Failure
	e := c.Expect
	var refers, hangups []Event
	for _, ev := range tr {
		switch ev.Kind {
		case "refer":
			refers = append(refers, ev)
		case "hangup":
			hangups = append(hangups, ev)
		}
	}
	if e.TransferTo != "" {
		switch {
		case len(refers) == 0:
			fs = append(fs, Failure{Expectation: "transfer to " + e.TransferTo, Seen: "no REFER"})
		case refers[0].Target != e.TransferTo || len(refers) > 1:
			var ts []string
			for _, r := range refers {
				ts = append(ts, r.Target)
			}
			fs = append(fs, Failure{Turn: refers[0].Turn, Expectation: "transfer to " + e.TransferTo, Seen: "REFER to " + strings.Join(ts, ", ")})
		}
	}
	if e.TransferAfterSay != "" && len(refers) > 0 {
		re, _ := suite.CompilePhrase(e.TransferAfterSay)
		if r := refers[0]; r.CutOff != "" || !re.MatchString(r.After) {
			fs = append(fs, Failure{Turn: r.Turn, Expectation: fmt.Sprintf("REFER only once the caller heard %s to the end", e.TransferAfterSay), Seen: seenAction("REFER", r)})
		}
	}
	if e.HangupAfterSay != "" {
		switch {
		case len(hangups) == 0:
			fs = append(fs, Failure{Expectation: fmt.Sprintf("hang up after saying %s", e.HangupAfterSay), Seen: "no hangup"})
		default:
			re, _ := suite.CompilePhrase(e.HangupAfterSay)
			if h := hangups[0]; h.CutOff != "" || !re.MatchString(h.After) {
				fs = append(fs, Failure{Turn: h.Turn, Expectation: fmt.Sprintf("hang up only once the caller heard %s to the end", e.HangupAfterSay), Seen: seenAction("hangup", h)})
			}
		}
	}
	for _, ev := range tr {
		if ev.Kind == "silent" && e.AllowSilence == false {
			fs = append(fs, Failure{Turn: ev.Turn, Expectation: "the agent asks the model to go on after every tool output", Seen: "silence: " + ev.Text})
		}
	}
	return fs
}
