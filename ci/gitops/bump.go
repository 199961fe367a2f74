package gitops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"dagger/voice/gitlabapi"
	"dagger/voice/imageref"
)

// BumpOptions says which image to deploy where.
type BumpOptions struct {
	// Repo is the deploy repository.
	Repo Repo
	// Path of the kustomization directory in the deploy repository, e.g.
	// "voice" (or "." for the root).
	Path string
	// Image is the new reference, pinned by digest: repo@sha256:<64 hex>.
	Image string
	// ImageName selects the `images:` entry by name (e.g. "voice-agent").
	// Empty: the entry MatchImage finds (repository, last path element,
	// only entry).
	ImageName string
	// Add appends the image to `images:` when no entry matches.
	Add bool
	// SourceCommit and PipelineURL become commit trailers.
	SourceCommit string
	PipelineURL  string
	// DryRun returns the diff and pushes nothing.
	DryRun bool
	// MergeRequest, when set, pushes a branch and opens a merge request
	// instead of pushing to the base branch.
	MergeRequest *MergeRequestOptions
	// MaxAttempts bounds the retries after rejected pushes (default 50).
	MaxAttempts int
}

// BumpResult is what Bump did.
type BumpResult struct {
	Result
	// Image is the reference that was deployed (name as written @digest).
	Image string
	// Entry is the `images:` entry the bump points at the image (Rule
	// "added" when it was appended), and the rule that chose it.
	Entry Match
	// MergeRequest is set in merge-request mode when one was opened or
	// updated.
	MergeRequest *MergeRequest
}

// Bump points the kustomization at Path to the image digest, validates that
// it still builds, and commits and pushes the change (see Apply). A bump to
// the digest already deployed is a no-op with Commit == Unchanged.
func Bump(ctx context.Context, o BumpOptions) (BumpResult, error) {
	ref, err := imageref.ParseDigest(o.Image)
	if err != nil {
		return BumpResult{}, err
	}
	dir, err := cleanRepoPath(o.Path)
	if err != nil {
		return BumpResult{}, err
	}
	up := ImageUpdate{Name: o.ImageName, Ref: ref, Add: o.Add}
	name := o.ImageName
	if name == "" {
		name = ref.LastElement()
	}
	var entry Match
	ch := Change{
		Edit: func(_ context.Context, root string) error {
			file, err := findKustomization(root, dir)
			if err != nil {
				return err
			}
			src, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			rel := path.Join(dir, filepath.Base(file))
			m, merr := MatchImage(src, up)
			switch {
			case merr == nil:
				entry = m
			case !up.Add:
				return fmt.Errorf("%s: %w", rel, merr)
			default:
				entry = Match{Index: -1, Name: cmp.Or(up.Name, ref.Name), Rule: "added"}
			}
			out, changed, err := SetImage(src, up)
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			if !changed {
				return nil
			}
			return os.WriteFile(file, out, 0o644)
		},
		Validate:    []string{dir},
		Message:     fmt.Sprintf("deploy(%s): %s %s\n\nPoint %s at %s.", dir, name, ref.ShortDigest(), name, ref.Pinned()),
		Trailers:    []Trailer{{"Image", ref.Pinned()}, {"Source-Commit", o.SourceCommit}, {"Pipeline", o.PipelineURL}},
		DryRun:      o.DryRun,
		MaxAttempts: o.MaxAttempts,
	}
	var gl *gitlabapi.Client
	if o.MergeRequest != nil {
		ch.PushBranch = "bump/" + branchSafe(name) + "-" + ref.ShortDigest()
		if !o.DryRun {
			if gl, err = newGitLabClient(o.Repo.URL, *o.MergeRequest, o.Repo.Auth.Token); err != nil {
				return BumpResult{}, err
			}
		}
	}
	res, err := Apply(ctx, o.Repo, ch)
	out := BumpResult{Result: res, Image: ref.Pinned(), Entry: entry}
	if err != nil || gl == nil {
		return out, err
	}
	// Open or update the merge request when there is a branch to review.
	if res.Commit == Unchanged && res.Base != ch.PushBranch {
		return out, nil
	}
	title := o.MergeRequest.Title
	if title == "" {
		title = strings.SplitN(ch.Message, "\n", 2)[0]
	}
	base := o.Repo.Branch
	if base == "" {
		base = "main"
	}
	desc := fmt.Sprintf("Deploy `%s` to `%s`.\n\n", ref.Pinned(), dir)
	for _, t := range ch.Trailers {
		if t.Value != "" {
			desc += fmt.Sprintf("- %s: %s\n", t.Key, t.Value)
		}
	}
	if res.Diff != "" {
		desc += "\n```diff\n" + res.Diff + "```\n"
	}
	mr, err := ensureMergeRequest(ctx, gl, ch.PushBranch, base, title, desc)
	if err != nil {
		return out, redact(fmt.Errorf("branch %s pushed, but the merge request failed: %w", ch.PushBranch, err), gl.Token, o.Repo.Auth.Token)
	}
	out.MergeRequest = &mr
	return out, nil
}

// cleanRepoPath validates a path inside the deploy repository.
func cleanRepoPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("path of the kustomization in the deploy repository is empty: pass e.g. voice")
	}
	c := path.Clean(filepath.ToSlash(p))
	if path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("path %q leaves the deploy repository: pass a relative path such as voice", p)
	}
	return c, nil
}

// findKustomization returns the kustomization file of root/dir.
func findKustomization(root, dir string) (string, error) {
	full := filepath.Join(root, filepath.FromSlash(dir))
	st, err := os.Stat(full)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !st.IsDir() {
		return "", fmt.Errorf("path %q is not a directory in the deploy repository: check --path", dir)
	}
	if err != nil {
		return "", err
	}
	for _, n := range KustomizationFileNames {
		f := filepath.Join(full, n)
		if _, err := os.Stat(f); err == nil {
			return f, nil
		}
	}
	return "", fmt.Errorf("no kustomization.yaml in %q of the deploy repository: check --path", dir)
}

var unsafeBranch = regexp.MustCompile(`[^a-z0-9._-]+`)

func branchSafe(s string) string {
	s = strings.Trim(unsafeBranch.ReplaceAllString(strings.ToLower(s), "-"), "-.")
	if s == "" {
		s = "image"
	}
	return s
}
