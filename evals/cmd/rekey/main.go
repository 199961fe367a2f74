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
	"strings"

	"gitlab.com/acme/voice-agent/evals/rekey"
	"gitlab.com/acme/voice-agent/evals/suite"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
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

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rekey", flag.ContinueOnError)
	fs.SetOutput(stderr)
	suiteName := fs.String("suite", "voice", "suite name under evals/suites, or a directory")
	root := fs.String("root", ".", "repository root")
	var o rekey.Options
	fs.StringVar(&o.By, "by", "", "who re-keys (name or email): stored in each re-keyed case")
	fs.StringVar(&o.Reason, "reason", "", "why changed tool outputs are accepted (required with --accept-outputs; stored in the case)")
	fs.IntVar(&o.Parallel, "parallel", 4, "calls at once")
	var cases, accept list
	fs.Var(&cases, "case", "case name to re-key (repeatable or comma-separated; default: every hand-written case)")
	fs.Var(&accept, "accept-outputs", "case names whose changed tool outputs you reviewed and accept (needs --reason)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.Cases, o.AcceptOutputs = cases, accept
	dir, err := suite.Resolve(*root, *suiteName)
	if err != nil {
		fmt.Fprintf(stderr, "rekey: %v\n", err)
		return 2
	}
	s, err := suite.LoadDir(dir)
	if err != nil {
		fmt.Fprintf(stderr, "rekey: bad suite: %v\n", err)
		return 2
	}
	refused, err := rekey.Run(ctx, s, o, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 2
	}
	if refused > 0 {
		fmt.Fprintf(stdout, "rekey: %d case(s) refused\n", refused)
		return 1
	}
	return 0
}
