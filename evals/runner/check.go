package runner

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"gitlab.com/acme/voice-agent/evals/match"
	"gitlab.com/acme/voice-agent/evals/suite"
)

// Check evaluates a case's expectations against a transcript and the
// schedule state after the call. Every unmet expectation is one Failure
// naming the turn and what was seen.
func Check(c *suite.Case, tr []Event, state any, crisisLine string, responses int) []Failure {
	var fs []Failure
	add := func(turn int, exp, seen string) {
		fs = append(fs, Failure{Turn: turn, Expectation: exp, Seen: seen})
	}

	// Turn-level expectations.
	for i, t := range c.Turns {
		if t.Expect == nil {
			continue
		}
		tn := i + 1
		if !reached(tr, tn) {
			add(tn, "turn expectations", "the conversation ended before this turn")
			continue
		}
		for _, tc := range t.Expect.ToolCalls {
			tc.Turn = tn
			checkCall(tr, tc, add)
		}
		checkNoCalls(tr, tn, t.Expect.NoToolCalls, add)
		checkPhrases(tr, tn, t.Expect.MustSay, t.Expect.MustNotSay, add)
	}

	e := c.Expect
	for _, tc := range e.ToolCalls {
		checkCall(tr, tc, add)
	}
	checkNoCalls(tr, 0, e.NoToolCalls, add)
	checkPhrases(tr, 0, e.MustSay, e.MustNotSay, add)

	if e.Transfer != nil {
		turn, seen := flag(tr, func(ev Event) bool { return ev.Transfer })
		switch {
		case *e.Transfer && turn == 0:
			add(0, "must transfer the call to a human", "no transfer; tools called: "+toolList(tr))
		case !*e.Transfer && turn > 0:
			add(turn, "must not transfer the call", seen)
		}
	}
	if e.EndCall != nil {
		turn, seen := flag(tr, func(ev Event) bool { return ev.EndCall })
		switch {
		case *e.EndCall && turn == 0:
			add(0, "must end the call", "the call was not ended; tools called: "+toolList(tr))
		case !*e.EndCall && turn > 0:
			add(turn, "must not end the call", seen)
		}
	}
	if e.CrisisLine != nil {
		if crisisLine == "" {
			add(0, "crisis line expectation", "the agent's session defines no crisis line phrase")
		} else {
			turn := 0
			for _, ev := range tr {
				if ev.Kind == "agent" && strings.Contains(ev.Text, crisisLine) {
					turn = ev.Turn
					break
				}
			}
			switch {
			case *e.CrisisLine && turn == 0:
				add(0, fmt.Sprintf("must offer the crisis line (%q)", crisisLine), "agent said: "+agentText(tr, 0))
			case !*e.CrisisLine && turn > 0:
				add(turn, fmt.Sprintf("must not bring up the crisis line (%q)", crisisLine), "agent said: "+agentText(tr, turn))
			}
		}
	}
	if e.MaxTurns > 0 && responses > e.MaxTurns {
		add(0, fmt.Sprintf("at most %d model responses", e.MaxTurns), fmt.Sprintf("%d responses", responses))
	}
	if len(e.State) > 0 {
		for _, msg := range e.State.Check(match.Normalize(state)) {
			add(0, "schedule after the call", msg)
		}
	}
	return fs
}

func reached(tr []Event, turn int) bool {
	for _, ev := range tr {
		if ev.Turn == turn && ev.Kind == "caller" {
			return true
		}
	}
	return false
}

func checkCall(tr []Event, tc suite.ToolCallExpect, add func(int, string, string)) {
	exp := "call " + tc.Name
	if len(tc.Args) > 0 {
		exp += " with args " + fieldsString(tc.Args)
	}
	if len(tc.Output) > 0 {
		exp += " returning " + fieldsString(tc.Output)
	}
	var candidates []Event
	for _, ev := range tr {
		if ev.Kind == "tool" && ev.Tool == tc.Name && (tc.Turn == 0 || ev.Turn == tc.Turn) {
			candidates = append(candidates, ev)
		}
	}
	if len(candidates) == 0 {
		add(tc.Turn, exp, "tools called: "+toolListTurn(tr, tc.Turn))
		return
	}
	var firstWhy string
	firstTurn := 0
	for _, ev := range candidates {
		var why []string
		for _, m := range tc.Args.Check(match.ParseJSON(ev.Arguments)) {
			why = append(why, "args "+m)
		}
		for _, m := range tc.Output.Check(match.ParseJSON(ev.Output)) {
			why = append(why, "output "+m)
		}
		if len(why) == 0 {
			return
		}
		if firstWhy == "" {
			firstWhy = fmt.Sprintf("%s(%s) -> %s: %s", ev.Tool, short(ev.Arguments), short(ev.Output), strings.Join(why, "; "))
			firstTurn = ev.Turn
		}
	}
	if tc.Turn != 0 {
		firstTurn = tc.Turn
	}
	add(firstTurn, exp, firstWhy)
}

func checkNoCalls(tr []Event, turn int, names []string, add func(int, string, string)) {
	for _, name := range names {
		for _, ev := range tr {
			if ev.Kind == "tool" && ev.Tool == name && (turn == 0 || ev.Turn == turn) {
				add(ev.Turn, "must not call "+name, fmt.Sprintf("%s(%s) -> %s", ev.Tool, short(ev.Arguments), short(ev.Output)))
				break
			}
		}
	}
}

func checkPhrases(tr []Event, turn int, must, mustNot []string, add func(int, string, string)) {
	for _, p := range must {
		re, err := suite.CompilePhrase(p)
		if err != nil {
			add(turn, fmt.Sprintf("must say %q", p), err.Error())
			continue
		}
		found := false
		for _, ev := range tr {
			if ev.Kind == "agent" && (turn == 0 || ev.Turn == turn) && re.MatchString(ev.Text) {
				found = true
				break
			}
		}
		if !found {
			add(turn, fmt.Sprintf("must say %q", p), "agent said: "+agentText(tr, turn))
		}
	}
	for _, p := range mustNot {
		re, err := suite.CompilePhrase(p)
		if err != nil {
			add(turn, fmt.Sprintf("must not say %q", p), err.Error())
			continue
		}
		for _, ev := range tr {
			if ev.Kind == "agent" && (turn == 0 || ev.Turn == turn) && re.MatchString(ev.Text) {
				add(ev.Turn, fmt.Sprintf("must not say %q", p), "agent said: "+short(ev.Text))
				break
			}
		}
	}
}

func flag(tr []Event, f func(Event) bool) (int, string) {
	for _, ev := range tr {
		if !f(ev) {
			continue
		}
		switch ev.Kind {
		case "tool":
			return ev.Turn, fmt.Sprintf("%s(%s)", ev.Tool, short(ev.Arguments))
		case "refer":
			return ev.Turn, "REFER to " + ev.Target + " after the agent said " + fmt.Sprintf("%q", short(ev.After))
		case "hangup":
			return ev.Turn, "hangup after the agent said " + fmt.Sprintf("%q", short(ev.After))
		}
	}
	return 0, ""
}

func toolList(tr []Event) string { return toolListTurn(tr, 0) }

func toolListTurn(tr []Event, turn int) string {
	var names []string
	for _, ev := range tr {
		if ev.Kind == "tool" && (turn == 0 || ev.Turn == turn) {
			names = append(names, fmt.Sprintf("%s(%s) in turn %d", ev.Tool, short(ev.Arguments), ev.Turn))
		}
	}
	if len(names) == 0 {
		if turn > 0 {
			return "none in this turn"
		}
		return "none"
	}
	return strings.Join(names, ", ")
}

func agentText(tr []Event, turn int) string {
	var parts []string
	for _, ev := range tr {
		if ev.Kind == "agent" && (turn == 0 || ev.Turn == turn) {
			parts = append(parts, ev.Text)
		}
	}
	if len(parts) == 0 {
		return "(nothing)"
	}
	return short(strings.Join(parts, " | "))
}

func fieldsString(f match.Fields) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(f)) {
		parts = append(parts, k+" "+f[k].String())
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func short(s string) string {
	const max = 240
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
