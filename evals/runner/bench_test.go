package runner_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"gitlab.com/acme/voice-agent/evals/agentenv"
	"gitlab.com/acme/voice-agent/evals/runner"
	"gitlab.com/acme/voice-agent/evals/suite"
)

// slowModel replays scripts with a fixed latency per response, standing in
// for a remote model.
type slowModel struct {
	latency time.Duration
}

func (m slowModel) Name() string { return "slow" }

func (m slowModel) Start(ctx context.Context, s runner.Session, c *suite.Case) (runner.Conversation, error) {
	conv, err := runner.Scripted{}.Start(ctx, s, c)
	return slowConv{conv, m.latency}, err
}

type slowConv struct {
	runner.Conversation
	latency time.Duration
}

func (c slowConv) Respond(ctx context.Context, in runner.Input) (runner.Response, error) {
	t := time.NewTimer(c.latency)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return runner.Response{}, ctx.Err()
	case <-t.C:
	}
	return c.Conversation.Respond(ctx, in)
}

// BenchmarkParallel200 runs 200 one-response cases against the real agent
// side (a seeded SQLite store per conversation) with 300 ms of simulated
// model latency at --parallel 16, and reports the wall time as a ratio of
// the ideal ceil(200/16) x 0.3 s.
//
//	go test ./evals/runner -run '^$' -bench Parallel200 -benchtime 1x
func BenchmarkParallel200(b *testing.B) {
	const n, parallel, latency = 200, 16, 300 * time.Millisecond
	cases := make([]*suite.Case, n)
	for i := range cases {
		src := fmt.Sprintf(`name: c%03d
state:
  providers: [{id: p, name: Dr. P}]
  slots: [{id: s, provider_id: p, start: 2026-12-02T09:00:00Z, end: 2026-12-02T09:50:00Z}]
turns:
  - caller: hello
    model: [{say: "Hello, how can I help?"}]
expect: {must_say: [help], state: {slots: {len: 1}}}
`, i)
		cs, err := suite.Parse("bench.yaml", []byte(src))
		if err != nil {
			b.Fatal(err)
		}
		cases[i] = cs[0]
	}
	agent := agentenv.New()
	agent.Dir = b.TempDir()
	ideal := time.Duration(math.Ceil(float64(n)/parallel)) * latency
	var total time.Duration
	b.ResetTimer()
	for b.Loop() {
		r := &runner.Runner{Agent: agent, Model: slowModel{latency}, Mode: "live", Opts: runner.Options{Parallel: parallel}}
		start := time.Now()
		rep := r.Run(context.Background(), "bench", cases, 1)
		total += time.Since(start)
		if rep.Passed != n {
			b.Fatalf("%d of %d cases passed", rep.Passed, n)
		}
	}
	b.ReportMetric(total.Seconds()/float64(b.N)/ideal.Seconds(), "x_ideal")
}
