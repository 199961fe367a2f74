package readiness

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const rev = "0123456789abcdef0123456789abcdef01234567"

// resolverAfter fails the first n lookups, like a DNS record that appears
// while the review app is being deployed.
type resolverAfter struct {
	n     int32
	calls atomic.Int32
	hosts []string
}

func (r *resolverAfter) LookupHost(_ context.Context, host string) ([]string, error) {
	r.hosts = append(r.hosts, host)
	if r.calls.Add(1) <= r.n {
		return nil, errors.New("no such host")
	}
	return []string{"127.0.0.1"}, nil
}

// agent serves /healthz like the voice agent: 503 for the first `warm`
// requests, then 200 with the revisions in turn (a rollout).
func agent(t *testing.T, warm int32, revisions ...string) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		i := n.Add(1)
		if i <= warm {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		k := int(i-warm-1) % len(revisions)
		if i-warm-1 >= int32(len(revisions)) {
			k = len(revisions) - 1
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok","version":"1.2.3","commit":"` + revisions[k] + `"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// hostURL names the test server by a host name, so the DNS step runs.
func hostURL(srv *httptest.Server) string {
	return strings.Replace(srv.URL, "127.0.0.1", "mr-42.review.test", 1)
}

// clientTo sends every request to srv, whatever the host name says.
func clientTo(srv *httptest.Server) *http.Client {
	addr := strings.TrimPrefix(srv.URL, "http://")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Second}
}

func TestWaitsForDNSThenHealthThenRevision(t *testing.T) {
	srv, hits := agent(t, 2, "fedcba9876543210fedcba9876543210fedcba98", rev)
	res := &resolverAfter{n: 3}
	var log bytes.Buffer
	got, err := Wait(context.Background(), Options{
		URL: hostURL(srv), Revision: rev[:12], Interval: time.Millisecond, Timeout: 5 * time.Second,
		Resolver: res, Client: clientTo(srv), Log: &log,
	})
	require.NoError(t, err, log.String())
	assert.Equal(t, rev, got.Revision)
	assert.Equal(t, 3+2+1+1, got.Attempts, "3 DNS misses, 2 warm-ups, 1 old revision, then ready")
	assert.Equal(t, int32(4), hits.Load())
	assert.Equal(t, "mr-42.review.test", res.hosts[0])
	out := log.String()
	assert.Contains(t, out, "does not resolve yet")
	assert.Contains(t, out, "status 503")
	assert.Contains(t, out, "runs revision fedcba987654")
}

func TestTimeoutNamesLastState(t *testing.T) {
	srv, _ := agent(t, 0, "fedcba9876543210fedcba9876543210fedcba98")
	_, err := Wait(context.Background(), Options{
		URL: srv.URL, Revision: rev, Interval: 5 * time.Millisecond, Timeout: time.Second,
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not ready after")
	assert.Contains(t, err.Error(), "runs revision fedcba9876543210fedcba9876543210fedcba98, want "+rev)

	_, err = Wait(context.Background(), Options{
		URL: "http://mr-1.review.test", Interval: 5 * time.Millisecond, Timeout: 30 * time.Millisecond,
		Resolver: &resolverAfter{n: 1 << 30},
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DNS: mr-1.review.test does not resolve yet")
}

// The probe under way when the deadline passes fails with only "context
// deadline exceeded"; the error must still name the state seen before it.
func TestTimeoutDuringProbeKeepsLastState(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 1 {
			<-r.Context().Done() // hang until the waiter gives up
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok","commit":"fedcba9876543210fedcba9876543210fedcba98"}`))
	}))
	t.Cleanup(srv.Close)
	_, err := Wait(context.Background(), Options{
		URL: srv.URL, Revision: rev, Interval: time.Millisecond, Timeout: time.Second,
	})
	require.Error(t, err)
	assert.Equal(t, int32(2), n.Load(), "one answered probe, then one cut off by the deadline")
	assert.Contains(t, err.Error(), "not ready after 2 attempts")
	assert.Contains(t, err.Error(), "runs revision fedcba9876543210fedcba9876543210fedcba98, want "+rev)
	assert.NotContains(t, err.Error(), "deadline exceeded")
}

func TestAnyRevisionWhenNoneExpected(t *testing.T) {
	srv, _ := agent(t, 0, "fedcba9876543210fedcba9876543210fedcba98")
	got, err := Wait(context.Background(), Options{URL: srv.URL + "/", Interval: time.Millisecond, Timeout: time.Second})
	require.NoError(t, err)
	assert.Equal(t, 1, got.Attempts)
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct{ url, rev, want string }{
		{"", "", "URL is empty"},
		{"mr-42.example.com", "", "is not an http(s) URL"},
		{"ftp://mr-42.example.com", "", "is not an http(s) URL"},
		{"https://mr-42.example.com", "main", "is not a commit SHA"},
		{"https://mr-42.example.com", "abc12", "is not a commit SHA"},
	} {
		_, err := Wait(context.Background(), Options{URL: tc.url, Revision: tc.rev})
		require.Error(t, err, tc)
		assert.Contains(t, err.Error(), tc.want)
	}
}

func TestSameRevision(t *testing.T) {
	assert.True(t, sameRevision(rev, rev[:7]))
	assert.True(t, sameRevision(strings.ToUpper(rev[:9]), rev))
	assert.False(t, sameRevision(rev, "0123456"+"f"))
	assert.False(t, sameRevision("", rev))
	assert.False(t, sameRevision("012345", "012345"), "too short to be a revision")
}
