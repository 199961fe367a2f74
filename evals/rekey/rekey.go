// Package rekey re-keys hand-written recordings (see evals/cmd/rekey): it
// replays each case through the agent service exactly as the scripted gate
// does and writes the new keys and recording block into the case files.
package rekey

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"gitlab.com/acme/voice-agent/evals/agentenv"
	"gitlab.com/acme/voice-agent/evals/callsim"
	"gitlab.com/acme/voice-agent/evals/replay"
	"gitlab.com/acme/voice-agent/evals/runner"
	"gitlab.com/acme/voice-agent/evals/suite"
)

// Options select and sign a re-keying.
type Options struct {
	// By is who re-keys (stored in each case).
	By string
	// Cases names the cases to re-key (default: every hand-written one).
	Cases []string
	// AcceptOutputs names cases whose changed tool outputs are accepted,
	// with Reason (stored in the case).
	AcceptOutputs []string
	Reason        string
	Parallel      int
	Now           func() time.Time
	// Service, when set, replaces the production agent service path.
	Service *agentenv.Service
}

// Run re-keys the selected cases of s, writing the case files, and returns
// how many cases it refused (each with its reason written to out).
func Run(ctx context.Context, s *suite.Suite, o Options, out io.Writer) (refused int, err error) {
	if strings.TrimSpace(o.By) == "" {
		return 0, fmt.Errorf(`rekey: say who re-keys, e.g. --by "Jane Doe"`)
	}
	if len(o.AcceptOutputs) > 0 && strings.TrimSpace(o.Reason) == "" {
		return 0, fmt.Errorf("rekey: --accept-outputs needs --reason: say why the changed tool outputs are right")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Parallel < 1 {
		o.Parallel = 4
	}
	stdout := out
	by, reason := &o.By, &o.Reason
	want := map[string]bool{}
	for _, c := range o.Cases {
		want[c] = true
	}
	accepted := map[string]bool{}
	for _, c := range o.AcceptOutputs {
		accepted[c] = true
	}
	var sel []*suite.Case
	missing := map[string]bool{}
	for n := range want {
		missing[n] = true
	}
	for _, c := range s.Cases {
		if len(want) > 0 && !want[c.Name] {
			continue
		}
		delete(missing, c.Name)
		if !c.Scripted() {
			continue
		}
		if c.Recording != nil && c.Recording.Source == suite.SourceRecorded {
			if len(o.Cases) > 0 {
				fmt.Fprintf(stdout, "REFUSED %s: recorded from %s on %s: re-record it with --mode record instead (a key on a protected branch)\n", c.Name, c.Recording.Model, c.Recording.Date)
				refused++
			}
			continue
		}
		sel = append(sel, c)
	}
	if len(missing) > 0 {
		var names []string
		for n := range missing {
			names = append(names, n)
		}
		sort.Strings(names)
		return 0, fmt.Errorf("rekey: no case named %s in suite %s", strings.Join(names, ", "), s.Name)
	}
	var mu sync.Mutex
	players := map[string]*replay.Player{}
	svc := o.Service
	if svc == nil {
		svc = agentenv.NewService(nil)
	}
	svc.Model = func(c *suite.Case) (callsim.Model, error) {
		p := replay.NewKeyer(c, s.Name)
		mu.Lock()
		players[c.Name] = p
		mu.Unlock()
		return p, nil
	}
	defer svc.Close()
	r := &runner.Runner{ModelName: "scripted", Calls: svc, Mode: "rekey", Opts: runner.Options{Parallel: o.Parallel}}
	rep := r.Run(ctx, s.Name, sel, 0)

	byFile := map[string]map[string]suite.Keyed{}
	stamp := o.Now().UTC().Format(time.RFC3339)
	for i, c := range sel {
		cr := rep.Cases[i]
		a := cr.Attempts[0]
		if a.Error != "" || len(a.Failures) > 0 {
			fmt.Fprintf(stdout, "REFUSED %s: the case does not pass with the agent as it is, so its recording is not re-keyed:\n", c.Name)
			if a.Error != "" {
				fmt.Fprintf(stdout, "  %s\n", a.Error)
			}
			for _, f := range a.Failures {
				fmt.Fprintf(stdout, "  %s\n", f)
			}
			refused++
			continue
		}
		keys, seen := players[c.Name].Keys()
		k := suite.Keyed{Recording: suite.Recording{Source: suite.SourceHandWritten, KeyedBy: *by, KeyedAt: stamp, Seen: seen}}
		complete := true
		same := c.Recording != nil && c.Recording.Seen != nil && seen != nil
		for ri, resp := range c.Greeting {
			key := keys[[2]int{-1, ri}]
			if key == "" {
				complete = false
			}
			same = same && key == resp.Key
			k.Greeting = append(k.Greeting, key)
		}
		for ti, t := range c.Turns {
			row := make([]string, len(t.Model))
			for ri, resp := range t.Model {
				row[ri] = keys[[2]int{ti, ri}]
				if row[ri] == "" {
					complete = false
				}
				same = same && row[ri] == resp.Key
			}
			k.Keys = append(k.Keys, row)
		}
		if !complete {
			fmt.Fprintf(stdout, "REFUSED %s: the call ended before every recorded response was replayed: the agent now behaves differently; rewrite the recording\n", c.Name)
			refused++
			continue
		}
		if same {
			fmt.Fprintf(stdout, "up to date %s\n", c.Name)
			continue
		}
		if c.Recording != nil && c.Recording.Seen != nil && seen != nil {
			var changed []string
			old := c.Recording.Seen.Outputs
			for i, o := range seen.Outputs {
				if i >= len(old) || old[i] != o {
					changed = append(changed, fmt.Sprintf("tool output %d (%s)", i+1, o.Tool))
				}
			}
			if len(old) > len(seen.Outputs) {
				changed = append(changed, fmt.Sprintf("%d tool output(s) fewer", len(old)-len(seen.Outputs)))
			}
			if len(changed) > 0 {
				if !accepted[c.Name] {
					fmt.Fprintf(stdout, "REFUSED %s: %s changed: the agent now gives the model different tool results, which a re-key would hide; check the change, then rerun with --accept-outputs %s --reason \"...\"\n", c.Name, strings.Join(changed, ", "), c.Name)
					refused++
					continue
				}
				k.Recording.Reason = *reason
			}
			for _, ch := range replay.Changes(*c.Recording.Seen, *seen) {
				fmt.Fprintf(stdout, "  %s: %s\n", c.Name, ch)
			}
		}
		if byFile[c.File] == nil {
			byFile[c.File] = map[string]suite.Keyed{}
		}
		byFile[c.File][c.Name] = k
		fmt.Fprintf(stdout, "re-keyed %s\n", c.Name)
	}
	files := make([]string, 0, len(byFile))
	for f := range byFile {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		if err := suite.WriteKeys(f, byFile[f]); err != nil {
			return refused, err
		}
		fmt.Fprintf(stdout, "rekey: wrote %d case(s) to %s: review with git diff\n", len(byFile[f]), f)
	}
	return refused, nil
}
