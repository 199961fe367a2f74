package gitops

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

	"github.com/stretchr/testify/require"
)

const (
	testUser  = "oauth2"
	testToken = "glpat-TOPSECRET-0123456789"
)

// gitServer is a real git smart-HTTP server: Debian's git http-backend
// behind net/http/cgi with basic auth, serving one bare repository with
// receive.denyNonFastForwards.
type gitServer struct {
	URL  string // repository URL
	bare string // bare repository path
}

func gitBin(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=fixture", "GIT_AUTHOR_EMAIL=fixture@example.com",
		"GIT_COMMITTER_NAME=fixture", "GIT_COMMITTER_EMAIL=fixture@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %s: %s", strings.Join(args, " "), out)
	return strings.TrimSpace(string(out))
}

// newGitServer creates a bare repository whose main branch holds files
// (path -> content) in one commit, and serves it.
func newGitServer(t testing.TB, files map[string]string) *gitServer {
	return newGitServerWithHistory(t, files, 0)
}

// newGitServerWithHistory is newGitServer with extra commits on main
// (generated with git fast-import) after the one holding files.
func newGitServerWithHistory(t testing.TB, files map[string]string, extra int) *gitServer {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("git is not installed: .ci/setup installs it")
		}
		t.Skip("git is not installed (run .ci/setup)")
	}
	backend := filepath.Join(gitBin(t, "", "--exec-path"), "git-http-backend")
	root := t.TempDir()
	bare := filepath.Join(root, "deploy.git")
	gitBin(t, root, "init", "-q", "--bare", "-b", "main", bare)
	gitBin(t, bare, "config", "receive.denyNonFastForwards", "true")
	gitBin(t, bare, "config", "http.receivepack", "true")

	work := t.TempDir()
	gitBin(t, work, "init", "-q", "-b", "main")
	writeFiles(t, work, files)
	gitBin(t, work, "add", "-A")
	gitBin(t, work, "commit", "-q", "-m", "initial deploy repository")
	gitBin(t, work, "push", "-q", bare, "main")
	if extra > 0 {
		fastImport(t, bare, extra)
	}

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != testUser || p != testToken {
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
	return &gitServer{URL: srv.URL + "/git/deploy.git", bare: bare}
}

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		f := filepath.Join(dir, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(f), 0o755))
		require.NoError(t, os.WriteFile(f, []byte(c), 0o644))
	}
}

// refs lists every ref of the bare repository with its target.
func (s *gitServer) refs(t testing.TB) string {
	return gitBin(t, s.bare, "for-each-ref", "--format=%(refname) %(objectname)")
}

func (s *gitServer) head(t testing.TB, branch string) string {
	return gitBin(t, s.bare, "rev-parse", "refs/heads/"+branch)
}

func (s *gitServer) file(t testing.TB, rev, path string) string {
	return gitBin(t, s.bare, "show", rev+":"+path)
}

// pushCommit commits a file change straight into the bare repository's
// branch, as a competing pipeline would.
func (s *gitServer) pushCommit(t testing.TB, branch, path, content string) {
	t.Helper()
	work := t.TempDir()
	gitBin(t, work, "clone", "-q", "-b", branch, s.bare, ".")
	writeFiles(t, work, map[string]string{path: content})
	gitBin(t, work, "add", "-A")
	gitBin(t, work, "commit", "-q", "-m", "competing change to "+path)
	gitBin(t, work, "push", "-q", "origin", branch)
}

func (s *gitServer) repo(token string) Repo {
	return Repo{URL: s.URL, Auth: Auth{Token: token}, Author: Author{Name: "Bump Bot", Email: "bump@example.com"}}
}

const deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: voice-agent
spec:
  selector:
    matchLabels: {app: voice-agent}
  template:
    metadata:
      labels: {app: voice-agent}
    spec:
      containers:
      - name: agent
        image: voice-agent
`

// deployFixture is a deploy repository with an app at voice/.
func deployFixture(extraImages int) map[string]string {
	k := `# Production deploy of the voice agent.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml

images:
  # bumped by CI
  - name: voice-agent
    newName: registry.gitlab.com/acme/voice-agent
    newTag: v1.0.0
`
	for i := range extraImages {
		k += fmt.Sprintf("  - name: img-%d\n    newTag: old\n", i)
	}
	return map[string]string{
		"voice/kustomization.yaml":  k,
		"voice/deployment.yaml":     deploymentYAML,
		"broken/kustomization.yaml": "resources:\n- missing.yaml\nimages:\n- name: voice-agent\n",
		"two/kustomization.yaml":    "resources:\n- ../voice\nimages:\n- name: voice-agent\n- name: sidecar\n",
		"README.md":                 "deploy repository\n",
	}
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
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "fast-import: %s", out)
}
