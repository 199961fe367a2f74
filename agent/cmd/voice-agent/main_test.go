package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/metrics"
	"gitlab.com/acme/voice-agent/agent/realtimetest"
)

// buildBinary builds the real voice-agent binary as the release does
// (CGO_ENABLED=0, version stamped with -ldflags -X). Under -race it builds
// with -race instead (which needs cgo), so the real binary also runs under
// the race detector and the build reuses this test's compiled packages.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "voice-agent")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	args := []string{"build", "-ldflags", "-X main.version=9.9.9-test -X main.commit=c0ffee", "-o", bin}
	env := append(os.Environ(), "CGO_ENABLED=0")
	if raceEnabled {
		args = append(args, "-race")
		env = append(os.Environ(), "CGO_ENABLED=1")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// testSecret is a well-formed webhook signing secret (whsec_ + base64).
var testSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("binary-test-webhook-secret-32b!!"))

func TestBinary(t *testing.T) {
	bin := buildBinary(t)

	t.Run("version is stamped", func(t *testing.T) {
		out, err := exec.Command(bin, "-version").CombinedOutput()
		require.NoError(t, err, string(out))
		assert.Equal(t, "voice-agent 9.9.9-test (commit c0ffee)\n", string(out))
	})

	t.Run("missing config exits non-zero naming the variable", func(t *testing.T) {
		for _, tc := range []struct {
			env  []string
			want string
		}{
			{[]string{"OPENAI_WEBHOOK_SECRET=x"}, "OPENAI_API_KEY"},
			{[]string{"OPENAI_API_KEY=x"}, "OPENAI_WEBHOOK_SECRET"},
			{[]string{"OPENAI_API_KEY=x", "OPENAI_WEBHOOK_SECRET=x", "VOICE_AGENT_MAX_CALLS=many"}, "VOICE_AGENT_MAX_CALLS"},
		} {
			cmd := exec.Command(bin)
			cmd.Env = tc.env
			cmd.Dir = t.TempDir()
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, string(out))
			assert.Equal(t, 2, exit.ExitCode())
			assert.Contains(t, string(out), tc.want)
			entries, _ := os.ReadDir(cmd.Dir)
			assert.Empty(t, entries, "nothing written before the config is valid")
		}
	})

	t.Run("defaults: nothing but the two secrets in the environment", func(t *testing.T) {
		// The default address is :8080; skip rather than fail when another
		// process on this machine holds it.
		ln, err := net.Listen("tcp", ":8080")
		if err != nil {
			t.Skipf(":8080 is busy (%v)", err)
		}
		_ = ln.Close()
		dir := t.TempDir()
		cmd := exec.Command(bin)
		cmd.Env = []string{"OPENAI_API_KEY=sk-anything", "OPENAI_WEBHOOK_SECRET=" + testSecret}
		cmd.Dir = dir
		var logs bytes.Buffer
		cmd.Stderr = &logs
		require.NoError(t, cmd.Start())
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		ready := false
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !ready; time.Sleep(20 * time.Millisecond) {
			resp, err := http.Get("http://127.0.0.1:8080/readyz")
			if err == nil {
				ready = resp.StatusCode == http.StatusOK
				_ = resp.Body.Close()
			}
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, <-exited, "%s", &logs)
		require.True(t, ready, "not ready on :8080: %s", &logs)
		_, err = os.Stat(filepath.Join(dir, "data", "schedule.db"))
		assert.NoError(t, err, "default VOICE_AGENT_DB is data/schedule.db")
	})

	t.Run("health, readiness, metrics; badly signed webhook gets 401 and nothing is accepted", func(t *testing.T) {
		api := realtimetest.New("sk-anything")
		defer api.Close()
		dir := t.TempDir()
		cmd := exec.Command(bin)
		// OPENAI_BASE_URL points at the loopback API only to observe that
		// nothing is accepted; VOICE_AGENT_ADDR picks a free port.
		cmd.Env = []string{"OPENAI_API_KEY=sk-anything", "OPENAI_WEBHOOK_SECRET=" + testSecret, "OPENAI_BASE_URL=" + api.URL(), "VOICE_AGENT_ADDR=127.0.0.1:0"}
		cmd.Dir = dir
		stderr, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		exited := make(chan error, 1)
		logs := &bytes.Buffer{}
		addrc := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				line := sc.Bytes()
				logs.Write(append(line, '\n'))
				var entry struct {
					Msg  string `json:"msg"`
					Addr string `json:"addr"`
				}
				if json.Unmarshal(line, &entry) == nil && entry.Msg == "listening" {
					addrc <- entry.Addr
				}
			}
			exited <- cmd.Wait()
		}()
		var base string
		select {
		case a := <-addrc:
			base = "http://" + a
		case err := <-exited:
			t.Fatalf("voice-agent exited early: %v\n%s", err, logs)
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("voice-agent did not start:\n%s", logs)
		}

		get := func(path string) (int, string) {
			resp, err := http.Get(base + path)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		code, health := get("/healthz")
		assert.Equal(t, http.StatusOK, code)
		assert.JSONEq(t, `{"status":"ok","version":"9.9.9-test","commit":"c0ffee"}`, health, "the stamped build is what wait-ready compares")
		code, _ = get("/readyz")
		assert.Equal(t, http.StatusOK, code)
		code, body := get("/metrics")
		assert.Equal(t, http.StatusOK, code)
		for _, name := range metrics.Names {
			assert.Contains(t, body, name)
		}
		assert.Contains(t, body, `voice_agent_build_info{commit="c0ffee",version="9.9.9-test"} 1`)

		call := api.NewCall()
		wrong := "whsec_" + base64.StdEncoding.EncodeToString([]byte("an-attacker-guessed-this-secret!"))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		status, err := realtimetest.DeliverIncoming(ctx, nil, base+"/v1/openai/webhook", wrong, call, "<sip:+15550001111@x>")
		require.NoError(t, err)
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, 0, api.Accepted(), "nothing is accepted")
		assert.Nil(t, call.Session())
		_, body = get("/metrics")
		assert.Contains(t, body, `voice_agent_webhook_verification_failures_total{reason="signature"} 1`)

		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		select {
		case err := <-exited:
			require.NoError(t, err, "graceful exit 0 on SIGTERM")
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatal("no exit after SIGTERM")
		}
		assert.Contains(t, logs.String(), `"msg":"stopped"`)
		assert.NotContains(t, logs.String(), "sk-anything", "secrets never logged")
		assert.NotContains(t, logs.String(), testSecret, "secrets never logged")
		assert.NotContains(t, logs.String(), "5550001111", "caller numbers never logged")

		// Only the data directory was written.
		var written []string
		require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				written = append(written, rel)
			}
			return err
		}))
		for _, f := range written {
			assert.True(t, strings.HasPrefix(f, "data"+string(filepath.Separator)), "wrote %s outside data/", f)
		}
		assert.Contains(t, written, filepath.Join("data", "schedule.db"))
	})
}
