package gitops

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
	xssh "golang.org/x/crypto/ssh"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Unchanged is the Result.Commit of a change that was already in place.
const Unchanged = "unchanged"

// Repo says where the deploy repository is and who writes to it.
type Repo struct {
	// URL of the repository: https://host/group/project.git or
	// ssh://git@host/group/project.git.
	URL string
	// Branch the change is based on (and pushed to, outside merge-request
	// mode). Default "main".
	Branch string
	// Auth is the HTTPS token or SSH key.
	Auth Auth
	// Author of the commits. Default "voice-agent CI <ci@voice-agent.invalid>".
	Author Author
}

// Auth holds the credentials for the deploy repository. Set Token for
// HTTPS, or SSHKey for SSH.
type Auth struct {
	// Token is sent as HTTPS basic auth "<Username>:<Token>" (GitLab deploy,
	// project or personal access tokens with write_repository).
	Token string
	// Username for the token. Default "oauth2".
	Username string
	// SSHKey is a PEM private key.
	SSHKey []byte
	// SSHKeyPassphrase decrypts SSHKey.
	SSHKeyPassphrase string
	// SSHUser default "git".
	SSHUser string
	// SSHKnownHosts is the known_hosts content the server key must match.
	SSHKnownHosts []byte
	// SSHInsecureIgnoreHostKey skips the host key check (tests only).
	SSHInsecureIgnoreHostKey bool
}

// Author is the commit author.
type Author struct {
	Name  string
	Email string
}

// Trailer is a "Key: value" line at the end of a commit message.
type Trailer struct {
	Key   string
	Value string
}

// Change is one edit of the deploy repository.
type Change struct {
	// Edit changes the checked-out tree under dir (the repository root).
	// It runs on a fresh checkout at every attempt, so it must derive the
	// new content from what it finds (re-applying onto a moved head).
	Edit func(ctx context.Context, dir string) error
	// Validate lists the kustomizations (directories relative to the
	// repository root) that must build with kustomize after the edit.
	// Nothing is pushed unless all of them build.
	Validate []string
	// Message is the commit message (subject, blank line, body).
	Message string
	// Trailers are appended to the message.
	Trailers []Trailer
	// DryRun computes the diff and pushes nothing.
	DryRun bool
	// PushBranch, when set, is the branch to push to instead of
	// Repo.Branch (merge-request mode). If it exists the change is applied
	// on top of it, otherwise it starts from Repo.Branch.
	PushBranch string
	// MaxAttempts bounds the retries after a rejected push. Default 50.
	MaxAttempts int
	// Backoff is the base of the jittered exponential backoff. Default 50ms.
	Backoff time.Duration
}

// Result of Apply.
type Result struct {
	// Commit is the SHA of the pushed commit (in a dry run: the local
	// commit that would be pushed), or Unchanged.
	Commit string
	// Diff is the unified diff of the change.
	Diff string
	// Attempts is the number of clone-edit-push rounds.
	Attempts int
	// Branch is the branch the commit went to.
	Branch string
	// Base is the branch the change was applied on (PushBranch itself when
	// it already existed).
	Base string
}

// errConflict marks a push rejected because the branch moved.
var errConflict = errors.New("branch moved")

// Apply clones the deploy repository (shallow, single branch, fresh
// temporary directory), runs the edit, validates the kustomizations, commits
// and pushes. A push rejected because someone else pushed first (go-git's
// client-side non-fast-forward check, or the server's
// receive.denyNonFastForwards / ref lock) starts over on the new head after
// a jittered backoff, up to MaxAttempts. It never force-pushes. Errors never
// contain the token.
func Apply(ctx context.Context, repo Repo, ch Change) (Result, error) {
	res, err := apply(ctx, repo, ch)
	return res, redact(err, repo.Auth.Token, repo.Auth.SSHKeyPassphrase)
}

func apply(ctx context.Context, repo Repo, ch Change) (Result, error) {
	if repo.URL == "" {
		return Result{}, errors.New("deploy repository URL is empty")
	}
	if ch.Edit == nil {
		return Result{}, errors.New("change has no edit")
	}
	if repo.Branch == "" {
		repo.Branch = "main"
	}
	if repo.Author.Name == "" {
		repo.Author.Name = "voice-agent CI"
	}
	if repo.Author.Email == "" {
		repo.Author.Email = "ci@voice-agent.invalid"
	}
	if ch.MaxAttempts <= 0 {
		ch.MaxAttempts = 50
	}
	if ch.Backoff <= 0 {
		ch.Backoff = 50 * time.Millisecond
	}
	auth, cleanup, err := transportAuth(repo.URL, repo.Auth)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()

	for attempt := 1; ; attempt++ {
		res, err := applyOnce(ctx, repo, ch, auth)
		res.Attempts = attempt
		if !errors.Is(err, errConflict) {
			return res, err
		}
		if attempt >= ch.MaxAttempts {
			return res, fmt.Errorf("push to %s of %s rejected %d times because the branch kept moving: try again later", repo.URL, res.Branch, attempt)
		}
		// Full jitter: sleep a random time up to base*2^(n-1), capped at 2s.
		limit := min(ch.Backoff<<min(attempt-1, 10), 2*time.Second)
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(rand.N(limit) + time.Millisecond):
		}
	}
}

func applyOnce(ctx context.Context, repo Repo, ch Change, auth transport.AuthMethod) (Result, error) {
	target := repo.Branch
	if ch.PushBranch != "" {
		target = ch.PushBranch
	}
	res := Result{Commit: Unchanged, Branch: target}

	// In merge-request mode, continue an existing bump branch.
	base := repo.Branch
	if ch.PushBranch != "" {
		exists, err := remoteBranchExists(ctx, repo.URL, ch.PushBranch, auth)
		if err != nil {
			return res, err
		}
		if exists {
			base = ch.PushBranch
		}
	}
	res.Base = base

	dir, err := os.MkdirTemp("", "gitops-*")
	if err != nil {
		return res, fmt.Errorf("create checkout directory: %w", err)
	}
	defer os.RemoveAll(dir)

	r, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{
		URL:           repo.URL,
		Auth:          auth,
		ReferenceName: plumbing.NewBranchReferenceName(base),
		SingleBranch:  true,
		Depth:         1,
		Tags:          git.NoTags,
	})
	if err != nil {
		return res, cloneError(repo.URL, base, err)
	}
	head, err := r.Head()
	if err != nil {
		return res, fmt.Errorf("read HEAD of %s: %w", base, err)
	}
	if err := ch.Edit(ctx, dir); err != nil {
		return res, err
	}
	wt, err := r.Worktree()
	if err != nil {
		return res, err
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return res, fmt.Errorf("stage the change: %w", err)
	}
	status, err := wt.Status()
	if err != nil {
		return res, fmt.Errorf("status: %w", err)
	}
	if status.IsClean() {
		return res, nil
	}
	for _, p := range ch.Validate {
		if err := Build(dir, p); err != nil {
			return res, fmt.Errorf("the edited kustomization %q does not build, nothing was pushed: %w", p, err)
		}
	}
	sig := &object.Signature{Name: repo.Author.Name, Email: repo.Author.Email, When: time.Now()}
	sha, err := wt.Commit(commitMessage(ch.Message, ch.Trailers), &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	if res.Diff, err = diff(r, head.Hash(), sha); err != nil {
		return res, err
	}
	res.Commit = sha.String()
	if ch.DryRun {
		return res, nil
	}
	err = r.PushContext(ctx, &git.PushOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{config.RefSpec(fmt.Sprintf("%s:refs/heads/%s", head.Name(), target))},
		Auth:       auth,
	})
	switch {
	case err == nil:
		return res, nil
	case errors.Is(err, git.NoErrAlreadyUpToDate):
		return res, nil
	case IsPushRejected(err):
		return res, fmt.Errorf("%w: %v", errConflict, err)
	case ctx.Err() != nil:
		return res, ctx.Err()
	}
	// go-git's fast-forward check can also fail with "object not found"
	// when the remote head is not in the shallow history: ask the remote.
	if moved, lerr := remoteMoved(ctx, repo.URL, target, head.Hash(), base == target, auth); lerr == nil && moved {
		return res, fmt.Errorf("%w: %v", errConflict, err)
	}
	return res, pushError(repo.URL, target, err)
}

// IsPushRejected reports whether a push error means the branch moved under
// us: go-git's client-side refusal ("non-fast-forward update: refs/heads/x",
// a plain string that errors.Is(err, git.ErrNonFastForwardUpdate) does not
// match), or the server's report for receive.denyNonFastForwards
// ("non-fast-forward") or a lost ref-update race ("failed to update ref",
// "cannot lock ref", "fetch first").
func IsPushRejected(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, git.ErrNonFastForwardUpdate) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"non-fast-forward", "fetch first", "failed to update ref", "cannot lock ref", "failed to lock", "stale info", "reference has changed"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func remoteRefs(ctx context.Context, url string, auth transport.AuthMethod) ([]*plumbing.Reference, error) {
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	return rem.ListContext(ctx, &git.ListOptions{Auth: auth})
}

func remoteBranchExists(ctx context.Context, url, branch string, auth transport.AuthMethod) (bool, error) {
	refs, err := remoteRefs(ctx, url, auth)
	if err != nil {
		return false, cloneError(url, branch, err)
	}
	name := plumbing.NewBranchReferenceName(branch)
	for _, r := range refs {
		if r.Name() == name {
			return true, nil
		}
	}
	return false, nil
}

// remoteMoved reports whether the remote branch is no longer at base (or,
// for a new branch, exists now).
func remoteMoved(ctx context.Context, url, branch string, base plumbing.Hash, existed bool, auth transport.AuthMethod) (bool, error) {
	refs, err := remoteRefs(ctx, url, auth)
	if err != nil {
		return false, err
	}
	name := plumbing.NewBranchReferenceName(branch)
	for _, r := range refs {
		if r.Name() == name {
			return !existed || r.Hash() != base, nil
		}
	}
	return false, nil
}

func commitMessage(msg string, trailers []Trailer) string {
	msg = strings.TrimRight(msg, "\n")
	if len(trailers) == 0 {
		return msg + "\n"
	}
	var b strings.Builder
	b.WriteString(msg)
	b.WriteString("\n\n")
	for _, t := range trailers {
		if t.Value == "" {
			continue
		}
		fmt.Fprintf(&b, "%s: %s\n", t.Key, strings.ReplaceAll(t.Value, "\n", " "))
	}
	return b.String()
}

func diff(r *git.Repository, from, to plumbing.Hash) (string, error) {
	a, err := r.CommitObject(from)
	if err != nil {
		return "", fmt.Errorf("diff: %w", err)
	}
	b, err := r.CommitObject(to)
	if err != nil {
		return "", fmt.Errorf("diff: %w", err)
	}
	p, err := a.PatchContext(context.Background(), b)
	if err != nil {
		return "", fmt.Errorf("diff: %w", err)
	}
	return p.String(), nil
}

// Build builds the kustomization in dir/path with kustomize (krusty, the
// default options: load restrictions to the root, no plugins).
func Build(dir, path string) error {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	_, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(dir, filepath.FromSlash(path)))
	return err
}

func transportAuth(url string, a Auth) (transport.AuthMethod, func(), error) {
	noop := func() {}
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return nil, noop, fmt.Errorf("invalid deploy repository URL %q: %w", url, err)
	}
	switch ep.Protocol {
	case "ssh":
		if len(a.SSHKey) == 0 {
			return nil, noop, fmt.Errorf("deploy repository %s is reached over SSH: pass an SSH private key", url)
		}
		user := a.SSHUser
		if user == "" {
			user = ep.User
		}
		if user == "" {
			user = "git"
		}
		keys, err := gitssh.NewPublicKeys(user, a.SSHKey, a.SSHKeyPassphrase)
		if err != nil {
			return nil, noop, errors.New("cannot read the SSH private key: pass an unencrypted PEM/OpenSSH key or its passphrase")
		}
		switch {
		case a.SSHInsecureIgnoreHostKey:
			keys.HostKeyCallback = xssh.InsecureIgnoreHostKey()
		case len(a.SSHKnownHosts) > 0:
			f, err := os.CreateTemp("", "known_hosts-*")
			if err != nil {
				return nil, noop, err
			}
			cleanup := func() { os.Remove(f.Name()) }
			_, werr := f.Write(a.SSHKnownHosts)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				cleanup()
				return nil, noop, werr
			}
			cb, err := gitssh.NewKnownHostsCallback(f.Name())
			if err != nil {
				cleanup()
				return nil, noop, fmt.Errorf("parse SSH known hosts: %w", err)
			}
			keys.HostKeyCallback = cb
			return keys, cleanup, nil
		default:
			return nil, noop, errors.New("SSH needs the server's known_hosts entry (e.g. from ssh-keyscan gitlab.com) to check the host key")
		}
		return keys, noop, nil
	case "http", "https":
		if a.Token == "" {
			return nil, noop, nil
		}
		user := a.Username
		if user == "" {
			user = "oauth2"
		}
		return &githttp.BasicAuth{Username: user, Password: a.Token}, noop, nil
	case "file":
		return nil, noop, nil
	default:
		return nil, noop, fmt.Errorf("unsupported protocol %q in %s: use https:// or ssh://", ep.Protocol, url)
	}
}

func cloneError(url, branch string, err error) error {
	var noRef git.NoMatchingRefSpecError
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return fmt.Errorf("authentication to %s failed: check that the deploy token is valid and has write_repository (%w)", url, err)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("deploy repository %s not found (or the token cannot see it): %w", url, err)
	case errors.As(err, &noRef), errors.Is(err, plumbing.ErrReferenceNotFound):
		return fmt.Errorf("branch %q does not exist in %s: create it or pass the right branch: %w", branch, url, err)
	}
	return fmt.Errorf("clone %s (branch %s): %w", url, branch, err)
}

func pushError(url, branch string, err error) error {
	if errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) {
		return fmt.Errorf("push to %s refused: the deploy token needs write access (write_repository, role that may push to %s): %w", url, branch, err)
	}
	return fmt.Errorf("push to %s (branch %s): %w", url, branch, err)
}

// redactedError hides secrets in the message of the error it wraps.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

// There is deliberately no Unwrap: the wrapped chain still holds the secret.

func redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	hit := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "***")
			hit = true
		}
	}
	if !hit {
		return err
	}
	return &redactedError{msg: msg, err: err}
}
