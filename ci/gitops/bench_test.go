package gitops

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"dagger/voice/gittest"
)

// BenchmarkBump: one bump (clone, edit, build, commit, push) on a deploy
// repository with 10 and with 10,000 commits. The clone is shallow, so the
// history length should not matter.
func BenchmarkBump(b *testing.B) {
	for _, commits := range []int{10, 10000} {
		b.Run(fmt.Sprintf("commits=%d", commits), func(b *testing.B) {
			srv := gittest.NewWithHistory(b, deployFixture(0), commits-1)
			require.Equal(b, fmt.Sprint(commits), gittest.Git(b, srv.Bare, "rev-list", "--count", "main"))
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				res, err := Bump(ctx, BumpOptions{
					Repo: repo(srv, gittest.Token), Path: "voice",
					Image: agentRepo + "@" + digestN(i+1),
				})
				if err != nil || res.Commit == Unchanged {
					b.Fatalf("bump %d: %v %s", i, err, res.Commit)
				}
			}
		})
	}
}

// BenchmarkConcurrentBumps32: 32 bumps of different images at once into one
// repository; reports the wall time per round and the attempts it took.
func BenchmarkConcurrentBumps32(b *testing.B) {
	const n = 32
	var attempts, maxAttempts int
	var wall time.Duration
	for range b.N {
		b.StopTimer()
		srv := gittest.New(b, deployFixture(n))
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range n {
			wg.Go(func() {
				res, err := Bump(context.Background(), BumpOptions{
					Repo: repo(srv, gittest.Token), Path: "voice", ImageName: fmt.Sprintf("img-%d", i),
					Image: fmt.Sprintf("registry.example.com/img-%d@%s", i, digestN(i+1)),
				})
				if err != nil {
					b.Error(err)
				}
				mu.Lock()
				attempts += res.Attempts
				maxAttempts = max(maxAttempts, res.Attempts)
				mu.Unlock()
			})
		}
		wg.Wait()
		wall += time.Since(start)
	}
	b.ReportMetric(float64(attempts)/float64(b.N*n), "attempts/bump")
	b.ReportMetric(float64(maxAttempts), "max-attempts")
	b.ReportMetric(wall.Seconds()/float64(b.N), "wall-s/round")
}
