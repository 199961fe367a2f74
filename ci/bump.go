package main

import (
	"context"
	"fmt"
	"strings"

	"dagger/voice/gitops"
	"dagger/voice/internal/dagger"
)

// DeployChange is what a GitOps step did to the deploy repository.
type DeployChange struct {
	// Commit SHA pushed (in a dry run: the commit that would be pushed), or
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
	// URL of the merge request opened or updated (merge-request mode).
	MergeRequestURL string
	// Host of the review app (review only).
	Host string
	// Overlay directory of the review app (review and stop-review).
	Overlay string
	// Signature verification output, when a key or identity was given.
	Verification string
	// Whether nothing was pushed (dry run).
	DryRun bool
}

// Summary returns a readable report: what changed, where, and the diff.
func (c *DeployChange) Summary() string {
	var b strings.Builder
	switch {
	case c.Commit == gitops.Unchanged:
		fmt.Fprintf(&b, "unchanged: %s already deploys %s\n", c.Branch, c.Image)
	case c.DryRun:
		fmt.Fprintf(&b, "dry run: would commit %s to %s (nothing pushed)\n", c.Commit, c.Branch)
	default:
		fmt.Fprintf(&b, "committed %s to %s after %d attempt(s)\n", c.Commit, c.Branch, c.Attempts)
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

// deployAuth reads the credentials for the deploy repository. The secrets'
// plaintext stays inside this process: it is never logged or returned.
func deployAuth(ctx context.Context, token, sshKey *dagger.Secret, sshKnownHosts string) (gitops.Auth, error) {
	var a gitops.Auth
	if token != nil {
		t, err := token.Plaintext(ctx)
		if err != nil {
			return a, fmt.Errorf("read the deploy token secret: %w", err)
		}
		a.Token = strings.TrimSpace(t)
	}
	if sshKey != nil {
		k, err := sshKey.Plaintext(ctx)
		if err != nil {
			return a, fmt.Errorf("read the SSH key secret: %w", err)
		}
		a.SSHKey = []byte(k)
		a.SSHKnownHosts = []byte(sshKnownHosts)
	}
	return a, nil
}

// Bump deploys an image by pointing the deploy repository's kustomization
// at its digest: a shallow clone, a comment-preserving edit of `images:`,
// a kustomize build to validate, a commit with trailers, and a push that
// retries on top of concurrent pushes (never forced). A bump to the digest
// already deployed changes nothing. With a verification key or certificate
// identity, the image signature is verified first. With --merge-request,
// the change goes to a branch bump/<image>-<short digest> and a GitLab
// merge request instead.
//
// +cache="never"
func (m *Voice) Bump(
	ctx context.Context,
	// Deploy repository, e.g. https://gitlab.com/acme/deploy.git (or ssh://git@gitlab.com/acme/deploy.git with --ssh-key).
	repo string,
	// Image to deploy, pinned by digest: registry.gitlab.com/acme/voice-agent@sha256:<64 hex>. A tag alone is refused.
	image string,
	// Token with write_repository on the deploy repository (sent as HTTPS basic auth oauth2:<token>), e.g. env://DEPLOY_TOKEN.
	//
	// +optional
	token *dagger.Secret,
	// SSH private key for an ssh:// repository, e.g. file://./deploy_key.
	//
	// +optional
	sshKey *dagger.Secret,
	// known_hosts line(s) of the SSH server (e.g. from ssh-keyscan gitlab.com); required with --ssh-key.
	//
	// +optional
	sshKnownHosts string,
	// Directory of the kustomization in the deploy repository.
	//
	// +optional
	// +default="voice"
	path string,
	// Name of the `images:` entry to update; empty: the entry whose name or newName is the image's repository.
	//
	// +optional
	imageName string,
	// Append the image to `images:` when no entry matches (otherwise that is an error).
	//
	// +optional
	add bool,
	// Branch of the deploy repository.
	//
	// +optional
	// +default="main"
	branch string,
	// Compute and print the diff; push nothing.
	//
	// +optional
	dryRun bool,
	// Push a branch bump/<image>-<short digest> and open (or update) a GitLab merge request instead of pushing to the branch.
	//
	// +optional
	mergeRequest bool,
	// GitLab API root for merge requests; empty: https://<repository host>/api/v4.
	//
	// +optional
	gitlabApi string,
	// GitLab project ID or path of the deploy repository; empty: the repository URL's path.
	//
	// +optional
	gitlabProject string,
	// Token with the api scope for merge requests; empty: the deploy token.
	//
	// +optional
	gitlabToken *dagger.Secret,
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
	// Source commit of the image, recorded as a Source-Commit trailer (e.g. $CI_COMMIT_SHA).
	//
	// +optional
	sourceCommit string,
	// Pipeline URL, recorded as a Pipeline trailer (e.g. $CI_PIPELINE_URL).
	//
	// +optional
	pipelineUrl string,
	// Public key to verify the image signature with before bumping (key-based signing), e.g. file://./cosign.pub.
	//
	// +optional
	verifyKey *dagger.Secret,
	// Certificate identity to verify a keyless signature against (e.g. https://gitlab.com/acme/voice-agent//.gitlab-ci.yml@refs/heads/main).
	//
	// +optional
	certificateIdentity string,
	// OIDC issuer of the keyless signing certificate.
	//
	// +optional
	// +default="https://gitlab.com"
	certificateOidcIssuer string,
	// Registry user for verifying the signature of a private image.
	//
	// +optional
	registryUsername string,
	// Registry password or token for verifying the signature of a private image.
	//
	// +optional
	registryPassword *dagger.Secret,
	// Bound on clone-edit-push rounds when other pipelines push first.
	//
	// +optional
	// +default=50
	maxAttempts int,
) (*DeployChange, error) {
	if _, err := gitops.ParseImageRef(image); err != nil {
		return nil, err
	}
	verification := ""
	if verifyKey != nil || certificateIdentity != "" {
		out, err := m.verifyBeforeDeploy(ctx, image, verifyKey, certificateIdentity, certificateOidcIssuer, registryUsername, registryPassword)
		if err != nil {
			return nil, fmt.Errorf("signature of %s does not verify, nothing was bumped: %w", image, err)
		}
		verification = out
	}
	auth, err := deployAuth(ctx, token, sshKey, sshKnownHosts)
	if err != nil {
		return nil, err
	}
	opts := gitops.BumpOptions{
		Repo:         gitops.Repo{URL: repo, Branch: branch, Auth: auth, Author: gitops.Author{Name: authorName, Email: authorEmail}},
		Path:         path,
		Image:        image,
		ImageName:    imageName,
		Add:          add,
		SourceCommit: sourceCommit,
		PipelineURL:  pipelineUrl,
		DryRun:       dryRun,
		MaxAttempts:  maxAttempts,
	}
	if mergeRequest {
		mr := &gitops.MergeRequestOptions{APIURL: gitlabApi, Project: gitlabProject}
		if gitlabToken != nil {
			t, err := gitlabToken.Plaintext(ctx)
			if err != nil {
				return nil, fmt.Errorf("read the GitLab token secret: %w", err)
			}
			mr.Token = strings.TrimSpace(t)
		}
		opts.MergeRequest = mr
	}
	res, err := gitops.Bump(ctx, opts)
	if err != nil {
		return nil, err
	}
	out := newDeployChange(res.Result, res.Image, dryRun)
	out.Verification = verification
	if res.MergeRequest != nil {
		out.MergeRequestURL = res.MergeRequest.WebURL
	}
	return out, nil
}
