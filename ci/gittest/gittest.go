// Package gittest serves a deploy repository on loopback for tests: a real
// git smart-HTTP server (Debian's git http-backend behind net/http/cgi)
// with basic auth and receive.denyNonFastForwards, as a GitLab deploy
// repository behaves. The gitops tests and deploy/'s end-to-end tests use
// it; .ci/setup installs git.
package gittest

import (
	"fmt"
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
	Token = "glpat-TOPSECRET-0123456789"
)

// Server is one bare repository served over smart HTTP.
type Server struct {
	URL  string // repository URL
	Bare string // bare repository path
}

// Git runs git in dir (with a fixed identity and no user configuration)
// and returns its trimmed output; a failure fails the test.
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

// New creates a bare repository whose main branch holds files (path ->
// content) in one commit, and serves it until the test ends.
func New(t testing.TB, files map[string]string) *Server {
	return NewWithHistory(t, files, 0)
}

// NewWithHistory is New with extra commits on main (generated with git
// fast-import) after the one holding files.
func NewWithHistory(t testing.TB, files map[string]string, extra int) *Server {
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
	// source-controller fetches a revision by its commit id (Checkout).
	Git(t, bare, "config", "uploadpack.allowAnySHA1InWant", "true")

	work := t.TempDir()
	Git(t, work, "init", "-q", "-b", "main")
	WriteFiles(t, work, files)
	Git(t, work, "add", "-A")
	Git(t, work, "commit", "-q", "-m", "initial deploy repository")
	Git(t, work, "push", "-q", bare, "main")
	if extra > 0 {
		fastImport(t, bare, extra)
	}

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
			Stderr: io.Discard, // lost ref-update races are expected
		}).ServeHTTP(w, r)
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Server{URL: srv.URL + "/git/deploy.git", Bare: bare}
}

// WriteFiles writes files (path -> content) under dir.
func WriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		f := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Refs lists every ref of the bare repository with its target.
func (s *Server) Refs(t testing.TB) string {
	return Git(t, s.Bare, "for-each-ref", "--format=%(refname) %(objectname)")
}

// Head is the commit branch points at.
func (s *Server) Head(t testing.TB, branch string) string {
	return Git(t, s.Bare, "rev-parse", "refs/heads/"+branch)
}

// File is the content of path at rev.
func (s *Server) File(t testing.TB, rev, path string) string {
	return Git(t, s.Bare, "show", rev+":"+path)
}

// PushCommit commits a file change straight into the bare repository's
// branch, as a competing pipeline would.
func (s *Server) PushCommit(t testing.TB, branch, path, content string) {
	t.Helper()
	work := t.TempDir()
	Git(t, work, "clone", "-q", "-b", branch, s.Bare, ".")
	WriteFiles(t, work, map[string]string{path: content})
	Git(t, work, "add", "-A")
	Git(t, work, "commit", "-q", "-m", "competing change to "+path)
	Git(t, work, "push", "-q", "origin", branch)
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

// fastImport appends n commits to main of the bare repository, each
// changing history.txt, in one git fast-import stream.
func fastImport(t testing.TB, bare string, n int) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		msg := fmt.Sprintf("history %d", i)
		content := fmt.Sprintf("%d\n", i)
		fmt.Fprintf(&b, "commit refs/heads/main\ncommitter fixture <fixture@example.com> %d +0000\ndata %d\n%s\n", 1700000000+i, len(msg), msg)
		if i == 0 {
			b.WriteString("from refs/heads/main^0\n")
		}
		fmt.Fprintf(&b, "M 644 inline history.txt\ndata %d\n%s\n", len(content), content)
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = bare
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fast-import: %v: %s", err, out)
	}
}
