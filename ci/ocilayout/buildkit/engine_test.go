package buildkit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
)

// buildkitd finds the daemon: $BUILDKITD, or what .ci/buildkit/build made.
func buildkitd(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("BUILDKITD")
	if bin == "" {
		bin = filepath.Join("..", "..", "..", ".ci", "tools", "buildkit", "bin", "buildkitd")
	}
	_, err := os.Stat(bin)
	missing := err != nil
	if !missing && os.Geteuid() != 0 {
		err, missing = errors.New("buildkitd needs root to mount its snapshots: run the tests as root (sudo -E .ci/test)"), true
	}
	if !missing {
		if _, lerr := exec.LookPath("runc"); lerr != nil {
			err, missing = fmt.Errorf("runc is not on the PATH (apt-get install runc): %w", lerr), true
		}
	}
	if missing {
		if testing.Short() {
			t.Skipf("BuildKit is not available (%v); .ci/setup builds it", err)
		}
		t.Fatalf("BuildKit is not available: %v. Run .ci/setup (it builds buildkitd into .ci/tools/buildkit and installs runc), or set BUILDKITD; SHORT=1 .ci/test skips this test", err)
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// engine is one buildkitd with its own empty state directory.
type engine struct {
	*client.Client
	log *syncBuffer
}

// syncBuffer collects the daemon's output; it is read while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startEngine starts a buildkitd whose cache is empty, trusting the
// loopback registry reg over plain HTTP, and stops it when the test ends.
func startEngine(t *testing.T, bin string, reg *httptest.Server) *engine {
	t.Helper()
	dir, err := os.MkdirTemp("", "buildkitd-") // short: the socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	host := strings.TrimPrefix(reg.URL, "http://")
	config := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf("[registry.%q]\n  http = true\n  insecure = true\n", host)), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := "unix://" + filepath.Join(dir, "buildkitd.sock")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--root", filepath.Join(dir, "root"), "--addr", sock, "--config", config,
		"--oci-worker=true", "--containerd-worker=false")
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start buildkitd: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := client.New(ctx, sock)
		if err == nil {
			wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
			_, err = c.ListWorkers(wctx)
			wcancel()
			if err == nil {
				t.Cleanup(func() { _ = c.Close() })
				return &engine{Client: c, log: log}
			}
			_ = c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("buildkitd did not answer within 30 s: %v\n%s", err, log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
