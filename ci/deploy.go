package main

import (
	"context"
	"fmt"
	"strings"

	"dagger/voice/gitops"
	"dagger/voice/internal/dagger"
)

// DeployRepo is the GitOps deploy repository: where it is, how to write
// to it, and what the pipeline deploys through it (bump, review,
// stop-review, and their dry run, preview).
type DeployRepo struct {
	// Clone URL, e.g. https://gitlab.com/acme/deploy.git.
	Url string
	// Branch the changes go to (or, in merge-request mode, are based on).
	Branch string
	// User name sent with the token.
	TokenUser string
	// Commit author name.
	AuthorName string
	// Commit author email.
	AuthorEmail string
	// Whether nothing is pushed (preview).
	DryRun bool
	// Token with write_repository.
	//
	// +private
	Token *dagger.Secret
	// SSH private key for an ssh:// repository.
	//
	// +private
	SshKey *dagger.Secret
	// known_hosts of the SSH server.
	//
	// +private
	SshKnownHosts string
	// Merge-request mode, from with-merge-request.
	//
	// +private
	MergeRequest *MergeRequestSettings
	// The pipeline: signing settings and registry credentials verify an
	// image before it is deployed.
	//
	// +private
	Pipeline *Voice
}

// MergeRequestSettings is where bump opens its merge requests.
type MergeRequestSettings struct {
	// GitLab API root; empty: https://<repository host>/api/v4.
	Api string
	// Project ID or path; empty: the repository URL's path.
	Project string
	// Token with the api scope; nil: the deploy token.
	//
	// +private
	Token *dagger.Secret
}

// DeployRepo names the GitOps deploy repository and its credentials once,
// for bump, preview, review, stop-review and release:
//
//	dagger call deploy-repo --url=https://gitlab.com/acme/deploy.git --token=env://DEPLOY_TOKEN bump --path=voice --image=$IMAGE_REF
func (m *Voice) DeployRepo(
	// Clone URL, e.g. https://gitlab.com/acme/deploy.git (or ssh://git@gitlab.com/acme/deploy.git with --ssh-key).
	url string,
	// Token with write_repository (GitLab deploy, project or personal access token), e.g. env://DEPLOY_TOKEN.
	//
	// +optional
	token *dagger.Secret,
	// User name sent with the token: oauth2 for project and personal access
	// tokens; a GitLab deploy token's own user name (gitlab+deploy-token-N).
	//
	// +optional
	// +default="oauth2"
	tokenUser string,
	// SSH private key for an ssh:// URL, e.g. file://./deploy_key.
	//
	// +optional
	sshKey *dagger.Secret,
	// known_hosts line(s) of the SSH server (ssh-keyscan gitlab.com); required with --ssh-key.
	//
	// +optional
	sshKnownHosts string,
	// Branch the changes go to.
	//
	// +optional
	// +default="main"
	branch string,
	// Commit author name.
	//
	// +optional
	// +default="voice-agent CI"
	authorName string,
	// Commit author email.
	//
	// +optional
	// +default="ci@voice-agent.invalid"
	authorEmail string,
) (*DeployRepo, error) {
	if strings.TrimSpace(url) == "" {
		return nil, fmt.Errorf("deploy-repo needs --url, e.g. https://gitlab.com/acme/deploy.git ($DEPLOY_REPO_URL)")
	}
	if sshKey != nil && sshKnownHosts == "" {
		return nil, fmt.Errorf("--ssh-key needs --ssh-known-hosts (ssh-keyscan <host>): the server's key is always checked")
	}
	return &DeployRepo{
		Url: url, Branch: orDefault(branch, "main"), TokenUser: orDefault(tokenUser, "oauth2"),
		AuthorName: orDefault(authorName, "voice-agent CI"), AuthorEmail: orDefault(authorEmail, "ci@voice-agent.invalid"),
		Token: token, SshKey: sshKey, SshKnownHosts: sshKnownHosts, Pipeline: m,
	}, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// WithMergeRequest makes bump push a branch bump/<image>-<short digest>
// and open (or update) a GitLab merge request instead of pushing to the
// branch.
func (r *DeployRepo) WithMergeRequest(
	// GitLab API root; empty: https://<repository host>/api/v4.
	//
	// +optional
	api string,
	// GitLab project ID or path of the deploy repository; empty: the URL's path.
	//
	// +optional
	project string,
	// Token with the api scope; empty: the deploy token.
	//
	// +optional
	token *dagger.Secret,
) *DeployRepo {
	out := *r
	out.MergeRequest = &MergeRequestSettings{Api: api, Project: project, Token: token}
	return &out
}

// Preview is the dry run: the same repository, on which bump, review and
// stop-review clone, edit, validate and show the diff, and push nothing.
//
//	dagger call deploy-repo --url=https://gitlab.com/acme/deploy.git --token=env://DEPLOY_TOKEN preview bump --image=$IMAGE_REF summary
func (r *DeployRepo) Preview() *DeployRepo {
	out := *r
	out.DryRun = true
	return &out
}

// repo returns the gitops repository with its credentials. The secrets'
// plaintext stays inside this process: it is never logged or returned.
func (r *DeployRepo) repo(ctx context.Context) (gitops.Repo, error) {
	out := gitops.Repo{URL: r.Url, Branch: r.Branch, Author: gitops.Author{Name: r.AuthorName, Email: r.AuthorEmail}}
	out.Auth.Username = r.TokenUser
	if r.Token != nil {
		t, err := r.Token.Plaintext(ctx)
		if err != nil {
			return out, fmt.Errorf("read the deploy token secret: %w", err)
		}
		out.Auth.Token = strings.TrimSpace(t)
	}
	if r.SshKey != nil {
		k, err := r.SshKey.Plaintext(ctx)
		if err != nil {
			return out, fmt.Errorf("read the SSH key secret: %w", err)
		}
		out.Auth.SSHKey = []byte(k)
		out.Auth.SSHKnownHosts = []byte(r.SshKnownHosts)
	}
	return out, nil
}

// DeployChange is what a GitOps step did to the deploy repository.
type DeployChange struct {
	// Commit SHA pushed (in a preview: the commit that would be pushed), or
	// "unchanged" when the repository already had the change.
	Commit string
	// Unified diff of the change.
	Diff string
	// Clone-edit-push rounds it took (more than 1 when another pipeline
	// pushed first).
	Attempts int
	// Branch the commit went to.
	Branch string
	// Image reference deployed (by digest).
	Image string
	// The kustomization `images:` entry bump pointed at the image.
	ImageEntry string
	// Why bump chose that entry: named, repository, last path element,
	// only entry, or added.
	ImageEntryRule string
	// URL of the merge request opened or updated (merge-request mode).
	MergeRequestURL string
	// Host of the review app (review only).
	Host string
	// Overlay directory of the review app (review and stop-review).
	Overlay string
	// Signature verification output, when the module has verification settings.
	Verification string
	// Whether nothing was pushed (preview).
	DryRun bool
}

// Summary returns a readable report: what changed, where, and the diff.
func (c *DeployChange) Summary() string {
	var b strings.Builder
	switch {
	case c.Commit == gitops.Unchanged:
		fmt.Fprintf(&b, "unchanged: %s already deploys %s\n", c.Branch, c.Image)
	case c.DryRun:
		fmt.Fprintf(&b, "preview: would commit %s to %s (nothing pushed)\n", c.Commit, c.Branch)
	default:
		fmt.Fprintf(&b, "committed %s to %s after %d attempt(s)\n", c.Commit, c.Branch, c.Attempts)
	}
	if c.ImageEntry != "" {
		fmt.Fprintf(&b, "images entry: %q (chosen by %s)\n", c.ImageEntry, c.ImageEntryRule)
	}
	if c.Verification != "" {
		fmt.Fprintf(&b, "%s\n", strings.TrimSpace(c.Verification))
	}
	if c.MergeRequestURL != "" {
		fmt.Fprintf(&b, "merge request: %s\n", c.MergeRequestURL)
	}
	if c.Host != "" {
		fmt.Fprintf(&b, "review app: https://%s\n", c.Host)
	}
	if c.Diff != "" {
		b.WriteString("\n" + c.Diff)
	}
	return b.String()
}

func newDeployChange(r gitops.Result, image string, dryRun bool) *DeployChange {
	return &DeployChange{Commit: r.Commit, Diff: r.Diff, Attempts: r.Attempts, Branch: r.Branch, Image: image, DryRun: dryRun}
}

// Bump deploys an image by pointing the kustomization at --path to its
// digest: a shallow clone, a comment-preserving edit of `images:`, a
// kustomize build to validate, a commit with trailers, and a push that
// retries on top of concurrent pushes (never forced). A bump to the digest
// already deployed changes nothing. When the module has verification
// settings (with-signing-key --public-key, with-keyless-signing
// --certificate-identity) the signature is verified first.
//
// The `images:` entry, without --image-name: the one whose name or
// newName is the image's repository; else the one whose last path element
// is the image's (voice-agent for registry.gitlab.com/acme/voice-agent);
// else the only entry. The summary names the entry and the rule.
//
// +cache="never"
func (r *DeployRepo) Bump(
	ctx context.Context,
	// Image to deploy, pinned by digest: registry.gitlab.com/acme/voice-agent@sha256:<64 hex>. A tag alone is refused.
	image string,
	// Directory of the kustomization in the deploy repository.
	//
	// +optional
	// +default="voice"
	path string,
	// Name of the `images:` entry to update (see above for the default).
	//
	// +optional
	imageName string,
	// Append the image to `images:` when no entry matches (otherwise that is an error).
	//
	// +optional
	add bool,
	// Full commit SHA of the image's source, recorded as a Source-Commit trailer, e.g. $CI_COMMIT_SHA.
	//
	// +optional
	commit string,
	// Pipeline URL, recorded as a Pipeline trailer (e.g. $CI_PIPELINE_URL).
	//
	// +optional
	pipelineUrl string,
	// Bound on clone-edit-push rounds when other pipelines push first.
	//
	// +optional
	// +default=50
	maxAttempts int,
) (*DeployChange, error) {
	return r.bump(ctx, bumpRequest{
		Image: image, Path: path, ImageName: imageName, Add: add,
		SourceCommit: commit, PipelineURL: pipelineUrl, MaxAttempts: maxAttempts,
	})
}

// bumpRequest is one bump of the deploy repository.
type bumpRequest struct {
	Image, Path, ImageName    string
	Add                       bool
	SourceCommit, PipelineURL string
	MaxAttempts               int
}

func (r *DeployRepo) bump(ctx context.Context, q bumpRequest) (*DeployChange, error) {
	verification := ""
	if r.Pipeline != nil && r.Pipeline.Signing.canVerify() {
		out, err := r.Pipeline.verify(ctx, q.Image)
		if err != nil {
			return nil, fmt.Errorf("signature of %s does not verify, nothing was bumped: %w", q.Image, err)
		}
		verification = out
	}
	repo, err := r.repo(ctx)
	if err != nil {
		return nil, err
	}
	opts := gitops.BumpOptions{
		Repo: repo, Path: orDefault(q.Path, "voice"), Image: q.Image, ImageName: q.ImageName, Add: q.Add,
		SourceCommit: q.SourceCommit, PipelineURL: q.PipelineURL, DryRun: r.DryRun, MaxAttempts: q.MaxAttempts,
	}
	if mr := r.MergeRequest; mr != nil {
		opts.MergeRequest = &gitops.MergeRequestOptions{APIURL: mr.Api, Project: mr.Project}
		if mr.Token != nil {
			t, err := mr.Token.Plaintext(ctx)
			if err != nil {
				return nil, fmt.Errorf("read the GitLab token secret: %w", err)
			}
			opts.MergeRequest.Token = strings.TrimSpace(t)
		}
	}
	res, err := gitops.Bump(ctx, opts)
	if err != nil {
		return nil, err
	}
	out := newDeployChange(res.Result, res.Image, r.DryRun)
	out.Verification = verification
	out.ImageEntry, out.ImageEntryRule = res.Entry.Name, res.Entry.Rule
	if res.MergeRequest != nil {
		out.MergeRequestURL = res.MergeRequest.WebURL
	}
	return out, nil
}

// Review deploys the review app of a merge request through GitOps
// (gitops.Review): an overlay review/mr-<N>/ in the deploy repository,
// served at mr-<N>.<domain>, which Flux reconciles. Validated with
// kustomize, idempotent, and safe against concurrent pipelines, like bump.
//
// +cache="never"
func (r *DeployRepo) Review(
	ctx context.Context,
	// Merge request IID, e.g. $CI_MERGE_REQUEST_IID.
	mr int,
	// The merge request's image, pinned by digest: repo@sha256:<64 hex>.
	image string,
	// Domain of review apps: the app is served at mr-<N>.<domain>.
	domain string,
	// Directory of the base app in the deploy repository.
	//
	// +optional
	// +default="voice"
	base string,
	// Directory of the review overlays in the deploy repository.
	//
	// +optional
	// +default="review"
	dir string,
	// Image name as the base app uses it, when it differs from the image's repository.
	//
	// +optional
	imageName string,
	// Full commit SHA of the merge request's source, recorded as a Source-Commit trailer, e.g. $CI_COMMIT_SHA.
	//
	// +optional
	commit string,
	// Pipeline URL, recorded as a Pipeline trailer (e.g. $CI_PIPELINE_URL).
	//
	// +optional
	pipelineUrl string,
) (*DeployChange, error) {
	repo, err := r.repo(ctx)
	if err != nil {
		return nil, err
	}
	res, err := gitops.Review(ctx, gitops.ReviewOptions{
		Repo: repo, MR: mr, Image: image, ImageName: imageName, Base: base, Dir: dir, Domain: domain,
		SourceCommit: commit, PipelineURL: pipelineUrl, DryRun: r.DryRun,
	})
	if err != nil {
		return nil, err
	}
	out := newDeployChange(res.Result, image, r.DryRun)
	out.Host, out.Overlay = res.Host, res.Overlay
	return out, nil
}

// StopReview removes the review app of a merge request
// (gitops.StopReview): its overlay and its entry in the review
// directory's kustomization; Flux prunes what it deployed. Other review
// apps are not touched; stopping an app that is already gone changes
// nothing.
//
// +cache="never"
func (r *DeployRepo) StopReview(
	ctx context.Context,
	// Merge request IID, e.g. $CI_MERGE_REQUEST_IID.
	mr int,
	// Directory of the review overlays in the deploy repository.
	//
	// +optional
	// +default="review"
	dir string,
	// Pipeline URL, recorded as a Pipeline trailer (e.g. $CI_PIPELINE_URL).
	//
	// +optional
	pipelineUrl string,
) (*DeployChange, error) {
	repo, err := r.repo(ctx)
	if err != nil {
		return nil, err
	}
	res, err := gitops.StopReview(ctx, gitops.ReviewOptions{
		Repo: repo, MR: mr, Dir: dir, PipelineURL: pipelineUrl, DryRun: r.DryRun,
	})
	if err != nil {
		return nil, err
	}
	out := newDeployChange(res.Result, "", r.DryRun)
	out.Overlay = res.Overlay
	return out, nil
}
