package callcheck

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gitlabCILocal finds gitlab-ci-local (installed by .ci/setup into
// .ci/tools). Missing is a failure in CI and a skip elsewhere.
func gitlabCILocal(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", ".ci", "tools", "node_modules", ".bin", "gitlab-ci-local"))
	require.NoError(t, err)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath("gitlab-ci-local"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("gitlab-ci-local is missing: .ci/setup installs it")
	}
	t.Skip("gitlab-ci-local not installed: run .ci/setup")
	return ""
}

// pipelineRepo makes a throw-away git checkout holding the repository's
// .gitlab-ci.yml, with an origin remote as gitlab-ci-local requires.
func pipelineRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("..", "..", ".gitlab-ci.yml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".gitlab-ci.yml"), data, 0o644))
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"remote", "add", "origin", "https://gitlab.com/acme/voice-agent.git"},
		{"add", ".gitlab-ci.yml"},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "pipeline"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
	}
	return dir
}

var predefined = "CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH,CI_DEFAULT_BRANCH,CI_COMMIT_TAG,CI_MERGE_REQUEST_IID,CI_OPEN_MERGE_REQUESTS,CI_COMMIT_REF_NAME"

func runGCL(t *testing.T, gcl, dir string, vars map[string]string, args ...string) ([]byte, error) {
	t.Helper()
	for k, v := range vars {
		args = append(args, "--variable", k+"="+v)
	}
	cmd := exec.Command(gcl, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GCL_IGNORE_PREDEFINED_VARS="+predefined, "NO_COLOR=1")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return []byte(stdout.String() + stderr.String()), err
	}
	return []byte(stdout.String()), nil
}

// TestGitLabPipelines validates .gitlab-ci.yml against GitLab's schema with
// gitlab-ci-local and checks which jobs run in each kind of pipeline, and
// that every job's needs are active in that pipeline.
func TestGitLabPipelines(t *testing.T) {
	gcl := gitlabCILocal(t)
	dir := pipelineRepo(t)
	tests := []struct {
		name string
		vars map[string]string
		want []string
	}{
		{
			// An ordinary branch or a fork gets no protected variable, so
			// no job of its pipeline may need one: the cluster pulls its
			// review app (deploy/review-apps).
			name: "merge request from an unprotected branch",
			vars: map[string]string{"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "42", "CI_COMMIT_BRANCH": "", "CI_DEFAULT_BRANCH": "main", "CI_MERGE_REQUEST_SOURCE_BRANCH_PROTECTED": "false"},
			want: []string{"build", "eval", "test"},
		},
		{
			name: "merge request from a protected branch: push-path review app",
			vars: map[string]string{"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "42", "CI_COMMIT_BRANCH": "", "CI_DEFAULT_BRANCH": "main", "CI_MERGE_REQUEST_SOURCE_BRANCH_PROTECTED": "true"},
			want: []string{"build", "eval", "review", "stop-review (manual)", "test"},
		},
		{
			name: "default branch",
			vars: map[string]string{"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"},
			want: []string{"build", "deploy", "eval", "sign", "test"},
		},
		{
			name: "release tag",
			vars: map[string]string{"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "", "CI_COMMIT_TAG": "v1.2.3", "CI_DEFAULT_BRANCH": "main"},
			want: []string{"release"},
		},
		{
			name: "branch with an open merge request: no duplicate pipeline",
			vars: map[string]string{"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "feature", "CI_DEFAULT_BRANCH": "main", "CI_OPEN_MERGE_REQUESTS": "acme/voice-agent!42"},
			want: nil,
		},
		{
			name: "tag that is not a version",
			vars: map[string]string{"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "", "CI_COMMIT_TAG": "nightly", "CI_DEFAULT_BRANCH": "main"},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runGCL(t, gcl, dir, tt.vars, "--list-json")
			require.NoError(t, err, "%s", out)
			var jobs []struct {
				Name string `json:"name"`
				When string `json:"when"`
			}
			require.NoError(t, json.Unmarshal(out, &jobs), "%s", out)
			var got []string
			for _, j := range jobs {
				switch j.When {
				case "never":
				case "manual":
					got = append(got, j.Name+" (manual)")
				default:
					got = append(got, j.Name)
				}
			}
			sort.Strings(got)
			assert.Equal(t, tt.want, got)
			if len(tt.want) > 0 {
				out, err = runGCL(t, gcl, dir, tt.vars, "--validate-dependency-chain")
				assert.NoError(t, err, "needs must be active in the same pipeline:\n%s", out)
			}
		})
	}
}
