package service_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/acme/voice-agent/agent/realtime"
	"gitlab.com/acme/voice-agent/agent/realtimetest"
	"gitlab.com/acme/voice-agent/agent/session"
	"gitlab.com/acme/voice-agent/agent/webhook"
)

// latencies records per-operation durations and reports p50/p99.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	pct := func(p int) float64 { return float64(l.d[(len(l.d)-1)*p/100].Microseconds()) }
	b.ReportMetric(pct(50), "p50-µs")
	b.ReportMetric(pct(99), "p99-µs")
}

// run spreads b.N operations over conc workers; op gets the worker index.
func run(b *testing.B, conc int, op func(worker int) error) {
	var next atomic.Int64
	var lat latencies
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				start := time.Now()
				if err := op(w); err != nil {
					b.Error(err)
					return
				}
				lat.add(time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	lat.report(b)
}

// sink answers every request 200 in process: the benchmark measures the
// agent's own work (verify, parse, build and send the accept request
// through the SDK), not a network.
type sink struct{}

func (sink) RoundTrip(r *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, r.Body)
	_ = r.Body.Close()
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

// BenchmarkWebhookToAccept: verify a signed realtime.call.incoming
// delivery (with replay check), parse it and issue the accept request with
// the production session object.
func BenchmarkWebhookToAccept(b *testing.B) {
	sess, err := session.Default().JSON()
	if err != nil {
		b.Fatal(err)
	}
	calls := realtime.NewCalls("https://api.openai.com/v1", apiKey, &http.Client{Transport: sink{}})
	for _, conc := range []int{1, 100} {
		b.Run("conc="+strconv.Itoa(conc), func(b *testing.B) {
			v, err := webhook.NewVerifier(secret, nil)
			if err != nil {
				b.Fatal(err)
			}
			// Deliveries are signed up front: signing is OpenAI's cost.
			type delivery struct {
				body []byte
				h    http.Header
			}
			ds := make([]delivery, b.N)
			now := time.Now()
			for i := range ds {
				body := fmt.Appendf(nil, `{"object":"event","id":"evt_%d","type":"realtime.call.incoming","created_at":%d,"data":{"call_id":"rtc_%d","sip_headers":[{"name":"From","value":"<sip:+15550001111@x>"}]}}`, i, now.Unix(), i)
				id := "wh_" + strconv.Itoa(i)
				sig, err := realtimetest.Sign(secret, id, now.Unix(), body)
				if err != nil {
					b.Fatal(err)
				}
				h := http.Header{}
				h.Set("webhook-id", id)
				h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
				h.Set("webhook-signature", sig)
				ds[i] = delivery{body, h}
			}
			var idx atomic.Int64
			ctx := context.Background()
			b.ReportAllocs()
			run(b, conc, func(int) error {
				d := ds[idx.Add(1)-1]
				if err := v.Verify(d.body, d.h); err != nil {
					return err
				}
				ev, err := webhook.ParseEvent(d.body)
				if err != nil {
					return err
				}
				in, err := ev.IncomingCall()
				if err != nil {
					return err
				}
				return calls.Accept(ctx, in.CallID, sess)
			})
		})
	}
}

// BenchmarkToolRoundTrip: on live sideband WebSockets (loopback Realtime
// API), the time from the model's function call events to the agent's
// function_call_output and response.create, with check_availability
// reading the SQLite schedule, with 1 and 100 calls in parallel.
func BenchmarkToolRoundTrip(b *testing.B) {
	for _, conc := range []int{1, 100} {
		b.Run("calls="+strconv.Itoa(conc), func(b *testing.B) {
			h := newHarness(b, conc, 40)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			calls := make([]*realtimetest.Call, conc)
			for i := range calls {
				calls[i] = h.api.NewCall()
				calls[i].SetModel(receptionist(
					func(string) []realtimetest.Output {
						return []realtimetest.Output{realtimetest.CallTool(session.ToolCheckAvailability, `{"date":"2099-03-02"}`)}
					},
					func(string, string) []realtimetest.Output { return nil }))
				if status := h.deliver(b, calls[i]); status != http.StatusOK {
					b.Fatalf("webhook: %d", status)
				}
				if err := calls[i].WaitConnected(ctx); err != nil {
					b.Fatal(err)
				}
				// The greeting is over before the caller speaks.
				if _, err := calls[i].WaitServerEvent(ctx, "output_audio_buffer.stopped", 1); err != nil {
					b.Fatal(err)
				}
			}
			run(b, conc, func(w int) error {
				// The caller speaks; the model calls check_availability; the
				// op ends when the agent has sent the output and asked for
				// the next response.
				from := calls[w].Len()
				if err := calls[w].CallerSays(ctx, "Anything on March 2nd?"); err != nil {
					return err
				}
				_, err := calls[w].WaitFrom(ctx, from, "response.create after the tool output", func(e realtimetest.Event) bool {
					return e.Kind == realtimetest.KindClient && e.Type == "response.create"
				})
				return err
			})
			for _, c := range calls {
				c.CallerHangsUp()
			}
		})
	}
}
