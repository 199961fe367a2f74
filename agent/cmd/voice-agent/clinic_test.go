package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/realtimetest"
)

// agentProcess is the real binary, started as agent/README.md says.
type agentProcess struct {
	cmd    *exec.Cmd
	base   string
	mu     sync.Mutex
	logs   bytes.Buffer
	exited chan error
}

func (p *agentProcess) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// startAgent starts bin in dir with env plus a free loopback address and
// waits for its "listening" log line.
func startAgent(t *testing.T, bin, dir string, env ...string) *agentProcess {
	t.Helper()
	p := &agentProcess{cmd: exec.Command(bin), exited: make(chan error, 1)}
	p.cmd.Env = append(env, "VOICE_AGENT_ADDR=127.0.0.1:0", "VOICE_AGENT_SHUTDOWN_TIMEOUT=1s")
	p.cmd.Dir = dir
	stderr, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			p.logs.Write(append(line, '\n'))
			p.mu.Unlock()
			var entry struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &entry) == nil && entry.Msg == "listening" {
				addrc <- entry.Addr
			}
		}
		p.exited <- p.cmd.Wait()
	}()
	select {
	case a := <-addrc:
		p.base = "http://" + a
	case err := <-p.exited:
		t.Fatalf("voice-agent exited early: %v\n%s", err, p.Logs())
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatalf("voice-agent did not start:\n%s", p.Logs())
	}
	return p
}

// stop sends SIGTERM and waits for exit 0.
func (p *agentProcess) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.exited:
		require.NoError(t, err, "graceful exit 0 on SIGTERM:\n%s", p.Logs())
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatalf("no exit after SIGTERM:\n%s", p.Logs())
	}
}

// deliver signs body as OpenAI does (Standard Webhooks, from the
// specification: HMAC-SHA256 keyed with the base64 part of the whsec_
// secret over "id.timestamp.body", header "v1,<base64>") and POSTs it.
func deliver(t *testing.T, hookURL, webhookID string, body []byte) int {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(testSecret, "whsec_"))
	require.NoError(t, err)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", webhookID, ts, body)
	req, err := http.NewRequest(http.MethodPost, hookURL, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("webhook-id", webhookID)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func incomingCall(callID string) []byte {
	b, _ := json.Marshal(map[string]any{"object": "event", "id": "evt_" + callID, "type": "realtime.call.incoming", "created_at": time.Now().Unix(),
		"data": map[string]any{"call_id": callID, "sip_headers": []map[string]string{{"name": "From", "value": "<sip:+15550001111@trunk.example>"}}}})
	return b
}

// acceptCounter proxies the loopback API and counts POST .../accept: what
// OpenAI would see of the agent.
func acceptCounter(t *testing.T, apiURL string) (func() int, string) {
	t.Helper()
	u, err := url.Parse(apiURL)
	require.NoError(t, err)
	var mu sync.Mutex
	n := 0
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	proxy.ErrorLog = log.New(io.Discard, "", 0) // the API closing under a live sideband is expected at the end of a test
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/accept") {
			mu.Lock()
			n++
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return func() int { mu.Lock(); defer mu.Unlock(); return n }, srv.URL + "/v1"
}

func request(t *testing.T, method, u, auth string) int {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestBinaryClinic(t *testing.T) {
	bin := buildBinary(t)
	const staffToken = "binary-test-staff-token-0123456789abcdef"

	t.Run("a webhook secret without whsec_ is refused at start", func(t *testing.T) {
		raw := base64.StdEncoding.EncodeToString([]byte("binary-test-webhook-secret-32b!!"))
		cmd := exec.Command(bin)
		cmd.Env = []string{"OPENAI_API_KEY=sk-anything", "OPENAI_WEBHOOK_SECRET=" + raw}
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, string(out))
		assert.Equal(t, 2, exit.ExitCode())
		assert.Contains(t, string(out), "OPENAI_WEBHOOK_SECRET does not start with whsec_: paste the webhook's signing secret exactly as the OpenAI dashboard shows it (whsec_...)")
		assert.NotContains(t, string(out), raw, "the secret is never echoed")
		entries, _ := os.ReadDir(cmd.Dir)
		assert.Empty(t, entries, "nothing written before the config is valid")
	})

	t.Run("replayed webhook: 2xx and one accept, also after a restart; client secret needs the staff token", func(t *testing.T) {
		api := realtimetest.New("sk-anything")
		defer api.Close()
		accepts, base := acceptCounter(t, api.URL())
		dir := t.TempDir()
		env := []string{"OPENAI_API_KEY=sk-anything", "OPENAI_WEBHOOK_SECRET=" + testSecret, "OPENAI_BASE_URL=" + base}

		agent := startAgent(t, bin, dir, append(env, "VOICE_AGENT_STAFF_TOKEN="+staffToken)...)
		call := api.NewCall()
		hook := agent.base + "/v1/openai/webhook"
		assert.Equal(t, http.StatusOK, deliver(t, hook, "wh_first", incomingCall(call.ID)))
		assert.Equal(t, http.StatusOK, deliver(t, hook, "wh_first", incomingCall(call.ID)), "replayed webhook-id")
		assert.Equal(t, http.StatusOK, deliver(t, hook, "wh_other", incomingCall(call.ID)), "same call_id, another webhook-id")
		assert.Equal(t, 1, accepts(), "one accept")

		secretURL := agent.base + "/v1/realtime/client-secret"
		assert.Equal(t, http.StatusUnauthorized, request(t, http.MethodPost, secretURL, ""), "curl without credentials")
		assert.Equal(t, http.StatusUnauthorized, request(t, http.MethodPost, secretURL, "Bearer not-the-token"))
		assert.Equal(t, http.StatusUnauthorized, request(t, http.MethodGet, agent.base+"/v1/staff/messages", ""))
		assert.Empty(t, api.ClientSecrets(), "nothing minted")
		assert.Equal(t, http.StatusOK, request(t, http.MethodGet, agent.base+"/v1/staff/messages", "Bearer "+staffToken))
		agent.stop(t)
		assert.NotContains(t, agent.Logs(), staffToken, "the staff token is never logged")

		// Restarted on the same data directory, without a staff token.
		agent = startAgent(t, bin, dir, env...)
		hook = agent.base + "/v1/openai/webhook"
		assert.Equal(t, http.StatusOK, deliver(t, hook, "wh_first", incomingCall(call.ID)), "retry after a restart")
		assert.Equal(t, http.StatusOK, deliver(t, hook, "wh_third", incomingCall(call.ID)), "the call under a new webhook-id after a restart")
		assert.Equal(t, 1, accepts(), "the restarted agent does not accept the call again")
		assert.Equal(t, http.StatusNotFound, request(t, http.MethodPost, agent.base+"/v1/realtime/client-secret", ""), "no staff token: no endpoint")
		agent.stop(t)
	})

	t.Run("import-schedule: all or nothing, errors name the line; no demo clinic unless asked", func(t *testing.T) {
		dir := t.TempDir()
		env := []string{"VOICE_AGENT_DB=" + filepath.Join(dir, "data", "schedule.db"), "TZ=America/New_York"}
		run := func(stdin string, args ...string) (int, string, string) {
			cmd := exec.Command(bin, args...)
			cmd.Env = env
			cmd.Dir = dir
			cmd.Stdin = strings.NewReader(stdin)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if exit, ok := err.(*exec.ExitError); ok {
				code = exit.ExitCode()
			} else {
				require.NoError(t, err)
			}
			return code, stdout.String(), stderr.String()
		}
		bad := "provider_id,provider_name,date,start,end\nrivera,Dr. Rivera,2026-12-02,08:00,08:50\nrivera,Dr. Rivera,2026-12-02,8 am,09:50\n"
		require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.csv"), []byte(bad), 0o600))
		code, _, stderr := run("", "import-schedule", "bad.csv")
		assert.Equal(t, 1, code, stderr)
		assert.Contains(t, stderr, "voice-agent: import-schedule bad.csv: schedule file refused, nothing imported:\n  line 3: start: \"8 am\" is not a time: use HH:MM (24-hour), e.g. 09:00 or 14:30")

		good := "provider_id,provider_name,specialty,date,start,end\nrivera,Dr. Ana Rivera,psychiatry,2026-12-02,08:00,08:50\nrivera,Dr. Ana Rivera,psychiatry,2026-12-02,19:30,20:20\n"
		code, stdout, stderr := run(good, "import-schedule", "-")
		assert.Equal(t, 0, code, stderr)
		assert.Equal(t, "imported - into "+filepath.Join(dir, "data", "schedule.db")+" (times in America/New_York): 1 providers added, 0 updated; 2 slots added, 0 already there\n", stdout)

		code, stdout, stderr = run("", "messages")
		assert.Equal(t, 0, code, stderr)
		assert.Equal(t, "taken_at,caller_name,callback_number,reason,call_id,id\n", stdout)

		code, _, stderr = run("", "import-schedule")
		assert.Equal(t, 2, code)
		assert.Contains(t, stderr, "usage: voice-agent import-schedule FILE")
	})
}
