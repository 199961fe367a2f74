package gitops

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dagger/voice/gittest"
)

func digestN(n int) string { return fmt.Sprintf("sha256:%064x", n) }

func TestBumpPushesOnceThenUnchanged(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	srv := gittest.New(t, deployFixture(0))
	before := srv.Head(t, "main")
	ctx := context.Background()
	opts := BumpOptions{
		Repo: repo(srv, gittest.Token), Path: "voice",
		Image:        agentRepo + "@" + testDigest,
		SourceCommit: "abc123", PipelineURL: "https://gitlab.example.com/acme/voice-agent/-/pipelines/7",
	}
	res, err := Bump(ctx, opts)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Attempts)
	assert.Equal(t, srv.Head(t, "main"), res.Commit)
	assert.Equal(t, before, gittest.Git(t, srv.Bare, "rev-parse", "main~1"), "one commit on top of the old head")
	assert.Contains(t, res.Diff, "-    newTag: v1.0.0")
	assert.Contains(t, res.Diff, "+    digest: "+testDigest)
	got := srv.File(t, "main", "voice/kustomization.yaml")
	assert.Contains(t, got, "# bumped by CI", "comments kept")
	assert.Contains(t, got, "digest: "+testDigest)
	msg := gittest.Git(t, srv.Bare, "log", "-1", "--format=%an <%ae>%n%B", "main")
	assert.Contains(t, msg, "Bump Bot <bump@example.com>")
	assert.Contains(t, msg, "Source-Commit: abc123\n")
	assert.Contains(t, msg, "Pipeline: https://gitlab.example.com/acme/voice-agent/-/pipelines/7")
	assert.Contains(t, msg, "Image: "+agentRepo+"@"+testDigest)

	// The same bump again: no commit.
	refs := srv.Refs(t)
	res, err = Bump(ctx, opts)
	require.NoError(t, err)
	assert.Equal(t, Unchanged, res.Commit)
	assert.Empty(t, res.Diff)
	assert.Equal(t, refs, srv.Refs(t))

	// Every checkout was removed.
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "temporary checkouts left behind")
}

// TestBumpMatchesTheEntryWithoutImageName: the default pipeline publishes
// to its own registry ($CI_REGISTRY_IMAGE) while the kustomization names
// "voice-agent"; the bump finds the entry by the repository's last path
// element (or as the only entry) and says which one it changed.
func TestBumpMatchesTheEntryWithoutImageName(t *testing.T) {
	srv := gittest.New(t, deployFixture(0))
	ctx := context.Background()
	for _, tt := range []struct {
		image, rule string
	}{
		{"127.0.0.1:5000/ci/voice-agent@" + digestN(1), "last path element"},
		{"registry.example.com/acme/voice@" + digestN(2), "only entry"},
		// Once bumped, the entry's newName is the repository: a rerun
		// finds it by that and changes nothing.
		{"registry.example.com/acme/voice@" + digestN(2), "repository"},
	} {
		res, err := Bump(ctx, BumpOptions{Repo: repo(srv, gittest.Token), Path: "voice", Image: tt.image})
		require.NoError(t, err, tt.image)
		assert.Equal(t, Match{Index: 0, Name: "voice-agent", Rule: tt.rule}, res.Entry, tt.image)
		ref, _, _ := strings.Cut(tt.image, "@")
		got := srv.File(t, "main", "voice/kustomization.yaml")
		assert.Contains(t, got, "  - name: voice-agent\n    newName: "+ref+"\n", "the entry keeps its name and points at the new repository")
	}
	// Two entries and no rule that singles one out: refused, naming the fix.
	_, err := Bump(ctx, BumpOptions{Repo: repo(srv, gittest.Token), Path: "two", Image: "registry.example.com/acme/voice@" + digestN(3)})
	require.ErrorContains(t, err, "is not listed")
	assert.ErrorContains(t, err, "--image-name")
}

func TestBumpDryRunPushesNothing(t *testing.T) {
	srv := gittest.New(t, deployFixture(0))
	refs := srv.Refs(t)
	res, err := Bump(context.Background(), BumpOptions{
		Repo: repo(srv, gittest.Token), Path: "voice", Image: agentRepo + "@" + testDigest, DryRun: true,
	})
	require.NoError(t, err)
	assert.Contains(t, res.Diff, "+    digest: "+testDigest)
	assert.NotEqual(t, Unchanged, res.Commit)
	assert.Equal(t, refs, srv.Refs(t))
}

// TestBumpBadInputLeavesRemoteUnchanged: every refused bump names the
// problem, never contains the token, and leaves every ref where it was.
func TestBumpBadInputLeavesRemoteUnchanged(t *testing.T) {
	srv := gittest.New(t, deployFixture(0))
	good := agentRepo + "@" + testDigest
	cases := []struct {
		name string
		opts BumpOptions
		want string
	}{
		{"missing path", BumpOptions{Path: "nope", Image: good}, `path "nope" is not a directory`},
		{"no kustomization", BumpOptions{Path: ".", Image: good}, `no kustomization.yaml in "."`},
		{"path escapes", BumpOptions{Path: "../x", Image: good}, "leaves the deploy repository"},
		{"image not listed", BumpOptions{Path: "two", Image: "registry.gitlab.com/acme/other@" + testDigest}, "is not listed"},
		{"tag only", BumpOptions{Path: "voice", Image: agentRepo + ":v2"}, "has no digest"},
		{"invalid reference", BumpOptions{Path: "voice", Image: "Not A Ref"}, "not a valid"},
		{"missing branch", BumpOptions{Path: "voice", Image: good, Repo: Repo{Branch: "release"}}, `branch "release" does not exist`},
		{"does not build", BumpOptions{Path: "broken", Image: good, ImageName: "voice-agent"}, "does not build"},
		{"wrong token", BumpOptions{Path: "voice", Image: good, Repo: Repo{Auth: Auth{Token: gittest.Token + "-revoked"}}}, "authentication to"},
		{"no token", BumpOptions{Path: "voice", Image: good, Repo: Repo{Auth: Auth{Token: ""}}}, "authentication to"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := srv.Refs(t)
			o := c.opts
			o.Repo.URL = srv.URL
			if o.Repo.Auth.Token == "" && c.name != "no token" {
				o.Repo.Auth.Token = gittest.Token
			}
			_, err := Bump(context.Background(), o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.NotContains(t, err.Error(), gittest.Token)
			assert.NotContains(t, fmt.Sprintf("%+v %#v", err, err), gittest.Token)
			assert.Equal(t, before, srv.Refs(t))
		})
	}
}

// TestApplyRetriesWhenTheBranchMoves: a competing pipeline pushes between
// our clone and our push; go-git refuses the non-fast-forward push, Apply
// starts over on the new head and lands on top of it.
func TestApplyRetriesWhenTheBranchMoves(t *testing.T) {
	srv := gittest.New(t, deployFixture(0))
	calls := 0
	res, err := Apply(context.Background(), repo(srv, gittest.Token), Change{
		Edit: func(_ context.Context, dir string) error {
			calls++
			if calls == 1 {
				srv.PushCommit(t, "main", "other/file.txt", "competitor\n")
			}
			return os.WriteFile(dir+"/voice/NOTES", []byte("ours\n"), 0o644)
		},
		Validate: []string{"voice"},
		Message:  "add notes",
	})
	require.NoError(t, err)
	assert.Equal(t, 2, res.Attempts)
	assert.Equal(t, srv.Head(t, "main"), res.Commit)
	assert.Equal(t, "competitor", srv.File(t, "main", "other/file.txt"), "competing commit kept")
	assert.Equal(t, "ours", srv.File(t, "main", "voice/NOTES"))
	assert.Equal(t, "0", gittest.Git(t, srv.Bare, "rev-list", "--count", "--merges", "main"))
}

// TestServerSideNonFastForwardIsRecognised: the server's
// receive.denyNonFastForwards rejection (seen when go-git's own check is
// bypassed) is classified as a rejected push, and the ref is untouched.
func TestServerSideNonFastForwardIsRecognised(t *testing.T) {
	srv := gittest.New(t, deployFixture(0))
	dir := t.TempDir()
	auth := &githttp.BasicAuth{Username: gittest.User, Password: gittest.Token}
	r, err := git.PlainClone(dir, false, &git.CloneOptions{URL: srv.URL, Auth: auth, Depth: 1, SingleBranch: true})
	require.NoError(t, err)
	srv.PushCommit(t, "main", "x.txt", "moved\n")
	before := srv.Refs(t)
	wt, err := r.Worktree()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dir+"/y.txt", []byte("y"), 0o644))
	_, err = wt.Add("y.txt")
	require.NoError(t, err)
	sig := &object.Signature{Name: "t", Email: "t@example.com"}
	_, err = wt.Commit("y", &git.CommitOptions{Author: sig})
	require.NoError(t, err)
	// Force only to get past go-git's client-side check: the server
	// must refuse it.
	err = r.Push(&git.PushOptions{Auth: auth, Force: true, RefSpecs: []config.RefSpec{"refs/heads/main:refs/heads/main"}})
	require.Error(t, err)
	assert.True(t, IsPushRejected(err), "not classified: %v", err)
	assert.Equal(t, before, srv.Refs(t))

	assert.True(t, IsPushRejected(fmt.Errorf("non-fast-forward update: refs/heads/main")), "go-git client-side string")
	assert.False(t, IsPushRejected(fmt.Errorf("authentication required")))
}

// TestConcurrentBumps: 32 bumps at once, 24 of different images and 8 of
// the same image and digest. Every distinct change lands exactly once on a
// linear history, with no lost update and no force push.
func TestConcurrentBumps(t *testing.T) {
	if testing.Short() {
		t.Skip("32 concurrent clones and pushes")
	}
	const distinct, same = 24, 8
	srv := gittest.New(t, deployFixture(distinct))
	start := srv.Head(t, "main")
	results := make([]BumpResult, distinct+same)
	errs := make([]error, distinct+same)
	var wg sync.WaitGroup
	for i := range distinct + same {
		wg.Go(func() {
			o := BumpOptions{Repo: repo(srv, gittest.Token), Path: "voice"}
			if i < distinct {
				o.ImageName = fmt.Sprintf("img-%d", i)
				o.Image = fmt.Sprintf("registry.example.com/img-%d@%s", i, digestN(i+1))
			} else {
				o.Image = agentRepo + "@" + testDigest
			}
			results[i], errs[i] = Bump(context.Background(), o)
		})
	}
	wg.Wait()
	commits, sameCommits, attempts := map[string]bool{}, map[string]bool{}, 0
	for i, r := range results {
		require.NoError(t, errs[i], "bump %d", i)
		attempts += r.Attempts
		if r.Commit == Unchanged {
			require.GreaterOrEqual(t, i, distinct, "a distinct bump reported unchanged")
			continue
		}
		commits[r.Commit] = true
		if i >= distinct {
			sameCommits[r.Commit] = true
		}
		// No lost update: every pushed commit is in main's history.
		gittest.Git(t, srv.Bare, "merge-base", "--is-ancestor", r.Commit, "main")
	}
	t.Logf("32 concurrent bumps: %d attempts in total", attempts)
	// The repeated bump lands once: the others find it in place, or built
	// the very same commit (same parent, tree, author, second) and pushed
	// nothing new.
	assert.Len(t, commits, distinct+1)
	assert.Len(t, sameCommits, 1)
	assert.Equal(t, fmt.Sprint(distinct+1), gittest.Git(t, srv.Bare, "rev-list", "--count", start+"..main"))
	assert.Equal(t, "0", gittest.Git(t, srv.Bare, "rev-list", "--count", "--merges", "main"), "linear history")
	gittest.Git(t, srv.Bare, "merge-base", "--is-ancestor", start, "main")
	k := srv.File(t, "main", "voice/kustomization.yaml")
	for i := range distinct {
		assert.Contains(t, k, "newName: "+fmt.Sprintf("registry.example.com/img-%d", i))
		assert.Contains(t, k, "digest: "+digestN(i+1))
	}
	assert.Contains(t, k, "digest: "+testDigest)
}

// fakeGitLab speaks the documented merge-request API of GitLab's REST v4.
type fakeGitLab struct {
	mu       sync.Mutex
	mrs      []map[string]any
	requests []string
}

func (f *fakeGitLab) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery)
	if r.Header.Get("PRIVATE-TOKEN") != gittest.Token {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"401 Unauthorized"}`))
		return
	}
	const base = "/api/v4/projects/acme%2Fdeploy/merge_requests"
	w.Header().Set("Content-Type", "application/json")
	path := r.URL.EscapedPath()
	switch {
	case r.Method == http.MethodGet && path == base:
		q := r.URL.Query()
		out := []map[string]any{}
		for _, mr := range f.mrs {
			if mr["source_branch"] == q.Get("source_branch") && mr["state"] == q.Get("state") &&
				(q.Get("target_branch") == "" || mr["target_branch"] == q.Get("target_branch")) {
				out = append(out, mr)
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodPost && path == base:
		var in map[string]any
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in["source_branch"] == nil || in["target_branch"] == nil || in["title"] == nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"source_branch, target_branch, title are missing"}`))
			return
		}
		in["iid"] = len(f.mrs) + 1
		in["state"] = "opened"
		in["web_url"] = fmt.Sprintf("https://gitlab.example.com/acme/deploy/-/merge_requests/%d", len(f.mrs)+1)
		f.mrs = append(f.mrs, in)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(in)
	case r.Method == http.MethodPut && strings.HasPrefix(path, base+"/"):
		var iid int
		_, _ = fmt.Sscanf(strings.TrimPrefix(path, base+"/"), "%d", &iid)
		if iid < 1 || iid > len(f.mrs) {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		var in map[string]any
		_ = json.NewDecoder(r.Body).Decode(&in)
		for k, v := range in {
			f.mrs[iid-1][k] = v
		}
		_ = json.NewEncoder(w).Encode(f.mrs[iid-1])
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"404 Not Found"}`))
	}
}

func TestBumpMergeRequestMode(t *testing.T) {
	srv := gittest.New(t, deployFixture(0))
	gl := &fakeGitLab{}
	api := httptest.NewServer(gl)
	defer api.Close()
	main := srv.Head(t, "main")
	opts := BumpOptions{
		Repo: repo(srv, gittest.Token), Path: "voice", Image: agentRepo + "@" + testDigest,
		MergeRequest: &MergeRequestOptions{APIURL: api.URL + "/api/v4", Project: "acme/deploy"},
	}
	res, err := Bump(context.Background(), opts)
	require.NoError(t, err)
	branch := "bump/voice-agent-0123456789ab"
	assert.Equal(t, branch, res.Branch)
	assert.Equal(t, res.Commit, srv.Head(t, branch))
	assert.Equal(t, main, srv.Head(t, "main"), "main untouched in merge-request mode")
	require.NotNil(t, res.MergeRequest)
	assert.True(t, res.MergeRequest.Created)
	assert.Equal(t, 1, res.MergeRequest.IID)
	require.Len(t, gl.mrs, 1)
	assert.Equal(t, branch, gl.mrs[0]["source_branch"])
	assert.Equal(t, "main", gl.mrs[0]["target_branch"])
	assert.Contains(t, gl.mrs[0]["description"], testDigest)

	// Again: the branch already has the change; the open MR is updated.
	refs := srv.Refs(t)
	res, err = Bump(context.Background(), opts)
	require.NoError(t, err)
	assert.Equal(t, Unchanged, res.Commit)
	require.NotNil(t, res.MergeRequest)
	assert.False(t, res.MergeRequest.Created)
	assert.Equal(t, 1, res.MergeRequest.IID)
	assert.Len(t, gl.mrs, 1)
	assert.Equal(t, refs, srv.Refs(t))
	assert.Contains(t, gl.requests[len(gl.requests)-1], "PUT /api/v4/projects/acme%2Fdeploy/merge_requests/1")

	// A bad API token: the branch is pushed, the error says what failed and
	// does not contain the token.
	opts.Image = agentRepo + "@" + digestN(9)
	opts.MergeRequest.Token = "wrong-" + gittest.Token
	_, err = Bump(context.Background(), opts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 401")
	assert.NotContains(t, err.Error(), gittest.Token)
}

func TestGitLabDefaultsFromRepoURL(t *testing.T) {
	c, err := newGitLabClient("https://gitlab.com/acme/deploy.git", MergeRequestOptions{}, "t")
	require.NoError(t, err)
	assert.Equal(t, "https://gitlab.com/api/v4", c.API)
	assert.Equal(t, "acme/deploy", c.Project)
	c, err = newGitLabClient("ssh://git@gitlab.example.com:2222/group/sub/deploy.git", MergeRequestOptions{}, "t")
	require.NoError(t, err)
	assert.Equal(t, "https://gitlab.example.com/api/v4", c.API)
	assert.Equal(t, "group/sub/deploy", c.Project)
	_, err = newGitLabClient("https://gitlab.com/acme/deploy.git", MergeRequestOptions{}, "")
	assert.ErrorContains(t, err, "needs a GitLab API token")
}
