// Package gitserver serves a deploy repository on loopback for tests, the
// way ci/gitops's tests do: Debian's git http-backend behind net/http/cgi
// with basic auth and receive.denyNonFastForwards.
package gitserver

import (
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// User and Token are the credentials the server accepts.
const (
	User  = "oauth2"
	Token = "glpat-deploy-test-0123456789"
)

// Server is one bare repository served over smart HTTP.
type Server struct {
	URL  string // repository URL
	Bare string // bare repository path
}

// Git runs git in dir and returns its trimmed output.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=fixture", "GIT_AUTHOR_EMAIL=fixture@example.com",
		"GIT_COMMITTER_NAME=fixture", "GIT_COMMITTER_EMAIL=fixture@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// New creates a bare repository whose main branch holds a copy of each
// source directory at its path (path in repo -> directory on disk), and
// serves it until the test ends.
func New(t testing.TB, dirs map[string]string) *Server {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed: run .ci/setup")
	}
	backend := filepath.Join(Git(t, "", "--exec-path"), "git-http-backend")
	root := t.TempDir()
	bare := filepath.Join(root, "deploy.git")
	Git(t, root, "init", "-q", "--bare", "-b", "main", bare)
	Git(t, bare, "config", "receive.denyNonFastForwards", "true")
	Git(t, bare, "config", "http.receivepack", "true")
	Git(t, bare, "config", "uploadpack.allowAnySHA1InWant", "true")

	work := t.TempDir()
	Git(t, work, "init", "-q", "-b", "main")
	for dst, src := range dirs {
		target := filepath.Join(work, filepath.FromSlash(dst))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cp", "-r", src, target).CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v: %s", src, err, out)
		}
	}
	Git(t, work, "add", "-A")
	Git(t, work, "commit", "-q", "-m", "seed the deploy repository")
	Git(t, work, "push", "-q", bare, "main")

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != User || p != Token {
			w.Header().Set("WWW-Authenticate", `Basic realm="deploy"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		// A handler per request: REMOTE_USER is what enables receive-pack.
		(&cgi.Handler{
			Path:   backend,
			Root:   "/git",
			Env:    []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=" + u},
			Stderr: io.Discard,
		}).ServeHTTP(w, r)
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Server{URL: srv.URL + "/git/deploy.git", Bare: bare}
}

// Head is the commit main points at.
func (s *Server) Head(t testing.TB) string {
	return Git(t, s.Bare, "rev-parse", "refs/heads/main")
}

// Checkout fetches revision over HTTP, as source-controller does, into a
// new directory, and returns it.
func (s *Server) Checkout(t testing.TB, revision string) string {
	t.Helper()
	dir := t.TempDir()
	Git(t, dir, "init", "-q")
	url := strings.Replace(s.URL, "://", "://"+User+":"+Token+"@", 1)
	Git(t, dir, "fetch", "-q", "--depth=1", url, revision)
	Git(t, dir, "checkout", "-q", "FETCH_HEAD")
	return dir
}
