package schedule_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkClaimDelivery is what webhook deduplication adds to each
// realtime.call.incoming delivery: one SQLite write transaction (prune old
// webhook ids, look the id up, insert the delivery and the call), on a
// file database in WAL mode, sequentially and from 100 goroutines.
func BenchmarkClaimDelivery(b *testing.B) {
	for _, conc := range []int{1, 100} {
		b.Run("conc="+strconv.Itoa(conc), func(b *testing.B) {
			s := open(b)
			ctx := context.Background()
			var n atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			if conc == 1 {
				for i := range b.N {
					id := strconv.Itoa(i)
					if _, err := s.ClaimDelivery(ctx, "wh_"+id, "rtc_"+id, t0); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			b.SetParallelism((conc + 1) / 2) // RunParallel starts parallelism × GOMAXPROCS (2 here) goroutines
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := strconv.FormatInt(n.Add(1), 10)
					if _, err := s.ClaimDelivery(ctx, "wh_"+i, "rtc_"+i, t0); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
