// Package readiness waits until a deployed agent answers at its URL with the
// expected revision: first its host name must resolve (review apps get their
// DNS record some time after the deploy), then its health endpoint must
// answer 200 and report the revision that was deployed.
package readiness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Resolver looks up a host name (net.DefaultResolver satisfies it).
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Options of Wait.
type Options struct {
	// URL is the agent's base URL, e.g. https://mr-42.review.example.com.
	URL string
	// Revision is the commit SHA (full or abbreviated, at least 7 hex
	// digits) the agent must report; empty accepts any healthy agent.
	Revision string
	// Path of the health endpoint; default "/healthz".
	Path string
	// Timeout bounds the whole wait; default 10 minutes.
	Timeout time.Duration
	// Interval between attempts; default 5 seconds.
	Interval time.Duration
	// Resolver for the DNS check; default net.DefaultResolver.
	Resolver Resolver
	// Client for the health requests; default a client with a 10 s timeout.
	Client *http.Client
	// Log receives one line per attempt; may be nil.
	Log io.Writer
}

// Result of a successful wait.
type Result struct {
	Attempts int
	Elapsed  time.Duration
	// Revision the agent reported.
	Revision string
}

// Health is what the agent's health endpoint reports. Agents may name the
// revision "commit" or "revision".
type Health struct {
	Status   string `json:"status"`
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Revision string `json:"revision"`
}

func (h Health) revision() string {
	if h.Commit != "" {
		return h.Commit
	}
	return h.Revision
}

func (o *Options) normalise() (*url.URL, error) {
	if o.URL == "" {
		return nil, errors.New("readiness: URL is empty: pass the agent's base URL, e.g. https://mr-42.review.example.com")
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("readiness: %q is not an http(s) URL with a host", o.URL)
	}
	if o.Revision != "" {
		if len(o.Revision) < 7 || strings.Trim(strings.ToLower(o.Revision), "0123456789abcdef") != "" {
			return nil, fmt.Errorf("readiness: revision %q is not a commit SHA (7 to 40 hex digits)", o.Revision)
		}
	}
	if o.Path == "" {
		o.Path = "/healthz"
	}
	if !strings.HasPrefix(o.Path, "/") {
		o.Path = "/" + o.Path
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	return u, nil
}

// Wait polls until the agent is ready with the expected revision, the
// timeout passes, or ctx ends. The error of a timeout names the last state
// seen (DNS, HTTP status or the wrong revision), so the job log says why.
func Wait(ctx context.Context, o Options) (Result, error) {
	u, err := o.normalise()
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := time.Now()
	target := strings.TrimSuffix(u.String(), "/") + o.Path
	var last error
	for attempt := 1; ; attempt++ {
		rev, err := probe(ctx, o, u.Hostname(), target)
		if err == nil {
			return Result{Attempts: attempt, Elapsed: time.Since(start), Revision: rev}, nil
		}
		// A probe cut short by the deadline says only "context deadline
		// exceeded"; keep the state seen before it, which says why.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		if o.Log != nil {
			fmt.Fprintf(o.Log, "attempt %d: %v\n", attempt, err)
		}
		select {
		case <-ctx.Done():
			return Result{}, fmt.Errorf("readiness: %s not ready after %d attempts in %s: %w",
				o.URL, attempt, roundElapsed(time.Since(start)), last)
		case <-time.After(o.Interval):
		}
	}
}

func probe(ctx context.Context, o Options, host, target string) (string, error) {
	if net.ParseIP(host) == nil {
		if _, err := o.Resolver.LookupHost(ctx, host); err != nil {
			return "", fmt.Errorf("DNS: %s does not resolve yet: %w", host, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := o.Client.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("GET %s: read body: %w", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: status %d", target, resp.StatusCode)
	}
	var h Health
	if err := json.Unmarshal(body, &h); err != nil && o.Revision != "" {
		return "", fmt.Errorf("GET %s: body is not the agent's health JSON: %w", target, err)
	}
	got := h.revision()
	if o.Revision != "" && !sameRevision(got, o.Revision) {
		if got == "" {
			return "", fmt.Errorf("GET %s: healthy but reports no revision; want %s", target, o.Revision)
		}
		return got, fmt.Errorf("GET %s: healthy but runs revision %s, want %s (rollout in progress?)", target, got, o.Revision)
	}
	return got, nil
}

// roundElapsed keeps a log line readable: whole seconds for long waits,
// milliseconds for short ones (so a short timeout does not read "in 0s").
func roundElapsed(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// sameRevision compares commit SHAs, allowing either to be abbreviated.
func sameRevision(a, b string) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if len(a) < 7 || len(b) < 7 {
		return false
	}
	return strings.HasPrefix(a, b) || strings.HasPrefix(b, a)
}
