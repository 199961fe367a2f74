package agentenv_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"gitlab.com/acme/voice-agent/evals/agentenv"
	"gitlab.com/acme/voice-agent/evals/callsim"
	"gitlab.com/acme/voice-agent/evals/replay"
	"gitlab.com/acme/voice-agent/evals/runner"
	"gitlab.com/acme/voice-agent/evals/suite"
)

// slowModel replays a recording after a fixed latency per response,
// standing in for a remote model.
type slowModel struct {
	*replay.Player
	latency time.Duration
}

func (m slowModel) Respond(ctx context.Context, req replay.Request) ([]replay.Output, error) {
	t := time.NewTimer(m.latency)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
	}
	return m.Player.Respond(ctx, req)
}

// BenchmarkParallel200 runs 200 recorded calls (the greeting and one
// answer) through the agent service (webhook, accept, sideband, a seeded
// SQLite store per call) and the loopback Realtime API, with 300 ms of
// simulated model latency per response at --parallel 16, and reports the
// wall time as a ratio of the ideal ceil(200/16) x 2 x 0.3 s.
//
//	go test ./evals/agentenv -run '^$' -bench Parallel200 -benchtime 1x
func BenchmarkParallel200(b *testing.B) {
	const n, parallel, latency = 200, 16, 300 * time.Millisecond
	cases := make([]*suite.Case, n)
	for i := range cases {
		src := fmt.Sprintf(`name: c%03d
state:
  providers: [{id: p, name: Dr. P}]
  slots: [{id: s, provider_id: p, start: 2026-12-02T09:00:00Z, end: 2026-12-02T09:50:00Z}]
greeting: [{say: "Hello."}]  # short speech: the ideal counts model latency only
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
	svc := agentenv.NewService(func(c *suite.Case) (callsim.Model, error) {
		return slowModel{replay.NewKeyer(c, "bench"), latency}, nil
	})
	defer svc.Close()
	// Two model responses per call: the greeting and the answer.
	ideal := time.Duration(math.Ceil(float64(n)/parallel)) * 2 * latency
	var total time.Duration
	b.ResetTimer()
	for b.Loop() {
		r := &runner.Runner{Calls: svc, ModelName: "slow", Mode: "live", Opts: runner.Options{Parallel: parallel}}
		start := time.Now()
		rep := r.Run(context.Background(), "bench", cases, 1)
		total += time.Since(start)
		if rep.Passed != n {
			for _, c := range rep.Cases {
				if c.Status != runner.StatusPassed {
					b.Fatalf("%d of %d cases passed; %s: %s %v", rep.Passed, n, c.Name, c.Attempts[0].Error, c.Attempts[0].Failures)
				}
			}
		}
	}
	b.ReportMetric(total.Seconds()/float64(b.N)/ideal.Seconds(), "x_ideal")
}
