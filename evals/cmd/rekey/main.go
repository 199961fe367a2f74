// Command rekey re-keys hand-written recordings after a deliberate change
// of the agent's prompt or tool schemas: it replays each case through the
// agent service exactly as the scripted gate does, and writes the new keys
// (fingerprints of what the model is given) and the recording block (who,
// when, what the model was given) into the case file, for review as a diff.
//
//	go run ./evals/cmd/rekey --suite voice --by "Jane Doe"
//
// It cannot hide a behaviour change: it refuses a case whose tool outputs
// changed (unless named in --accept-outputs with a --reason, stored in the
// file), a case that no longer passes its expectations, a case whose
// recording the call no longer reaches to its end, and recordings made from
// a model (re-record those with --mode record).
//
// Exit codes: 0 every selected case is keyed, 1 some case was refused, 2 bad
// input.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
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

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, time.Now))
}

type list []string

func (l *list) String() string { return strings.Join(*l, ",") }
func (l *list) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) int {
	fs := flag.NewFlagSet("rekey", flag.ContinueOnError)
	fs.SetOutput(stderr)
	suiteName := fs.String("suite", "voice", "suite name under evals/suites, or a directory")
	root := fs.String("root", ".", "repository root")
	by := fs.String("by", "", "who re-keys (name or email): stored in each re-keyed case")
	reason := fs.String("reason", "", "why changed tool outputs are accepted (required with --accept-outputs; stored in the case)")
	parallel := fs.Int("parallel", 4, "calls at once")
	var cases, accept list
	fs.Var(&cases, "case", "case name to re-key (repeatable or comma-separated; default: every hand-written case)")
	fs.Var(&accept, "accept-outputs", "case names whose changed tool outputs you reviewed and accept (needs --reason)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	bad := func(f string, a ...any) int { fmt.Fprintf(stderr, "rekey: "+f+"\n", a...); return 2 }
	switch {
	case strings.TrimSpace(*by) == "":
		return bad(`--by is required: say who re-keys, e.g. --by "Jane Doe"`)
	case len(accept) > 0 && strings.TrimSpace(*reason) == "":
		return bad("--accept-outputs needs --reason: say why the changed tool outputs are right")
	}
	dir, err := suite.Resolve(*root, *suiteName)
	if err != nil {
		return bad("%v", err)
	}
	s, err := suite.LoadDir(dir)
	if err != nil {
		return bad("bad suite: %v", err)
	}
	want := map[string]bool{}
	for _, c := range cases {
		want[c] = true
	}
	accepted := map[string]bool{}
	for _, c := range accept {
		accepted[c] = true
	}
	var sel []*suite.Case
	refused := 0
	for _, c := range s.Cases {
		if len(want) > 0 && !want[c.Name] {
			continue
		}
		delete(want, c.Name)
		if !c.Scripted() {
			continue
		}
		if c.Recording != nil && c.Recording.Source == suite.SourceRecorded {
			if len(cases) > 0 {
				fmt.Fprintf(stdout, "REFUSED %s: recorded from %s on %s: re-record it with --mode record instead (a key on a protected branch)\n", c.Name, c.Recording.Model, c.Recording.Date)
				refused++
			}
			continue
		}
		sel = append(sel, c)
	}
	if len(want) > 0 {
		var names []string
		for n := range want {
			names = append(names, n)
		}
		sort.Strings(names)
		return bad("no case named %s in suite %s", strings.Join(names, ", "), s.Name)
	}
	var mu sync.Mutex
	players := map[string]*replay.Player{}
	svc := agentenv.NewService(func(c *suite.Case) (callsim.Model, error) {
		p := replay.NewKeyer(c, s.Name)
		mu.Lock()
		players[c.Name] = p
		mu.Unlock()
		return p, nil
	})
	defer svc.Close()
	r := &runner.Runner{Agent: nil, Model: runner.Scripted{}, Calls: svc, Mode: "rekey", Opts: runner.Options{Parallel: *parallel}}
	rep := r.Run(ctx, s.Name, sel, 0)

	byFile := map[string]map[string]suite.Keyed{}
	stamp := now().UTC().Format(time.RFC3339)
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
			return bad("%v", err)
		}
		fmt.Fprintf(stdout, "rekey: wrote %d case(s) to %s: review with git diff\n", len(byFile[f]), f)
	}
	if refused > 0 {
		fmt.Fprintf(stdout, "rekey: %d case(s) refused\n", refused)
		return 1
	}
	return 0
}
