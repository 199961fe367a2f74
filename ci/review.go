package main

import (
	"context"

	"dagger/voice/gitops"
	"dagger/voice/internal/dagger"
)

// Review deploys the review app of a merge request through GitOps: it
// writes the overlay review/mr-<N>/ in the deploy repository (name prefix
// mr-<N>-, instance labels, the merge request's image by digest, host
// mr-<N>.<domain>) and lists it in review/kustomization.yaml, which Flux's
// "review-apps" Kustomization reconciles. Validated with kustomize,
// idempotent, and safe against concurrent pipelines, like bump.
//
// +cache="never"
func (m *Voice) Review(
	ctx context.Context,
	// Merge request IID, e.g. $CI_MERGE_REQUEST_IID.
	mr int,
	// The merge request's image, pinned by digest: repo@sha256:<64 hex>.
	image string,
	// Deploy repository, e.g. https://gitlab.com/acme/deploy.git.
	deployRepo string,
	// Token with write_repository on the deploy repository, e.g. env://DEPLOY_TOKEN.
	//
	// +optional
	token *dagger.Secret,
	// SSH private key for an ssh:// deploy repository.
	//
	// +optional
	sshKey *dagger.Secret,
	// known_hosts line(s) of the SSH server; required with --ssh-key.
	//
	// +optional
	sshKnownHosts string,
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
	// Branch of the deploy repository.
	//
	// +optional
	// +default="main"
	branch string,
	// Source commit, recorded as a Source-Commit trailer (e.g. $CI_COMMIT_SHA).
	//
	// +optional
	sourceCommit string,
	// Pipeline URL, recorded as a Pipeline trailer (e.g. $CI_PIPELINE_URL).
	//
	// +optional
	pipelineUrl string,
	// Compute and print the diff; push nothing.
	//
	// +optional
	dryRun bool,
) (*DeployChange, error) {
	if _, err := gitops.ParseImageRef(image); err != nil {
		return nil, err
	}
	auth, err := deployAuth(ctx, token, sshKey, sshKnownHosts)
	if err != nil {
		return nil, err
	}
	res, err := gitops.Review(ctx, gitops.ReviewOptions{
		Repo: gitops.Repo{URL: deployRepo, Branch: branch, Auth: auth},
		MR:   mr, Image: image, ImageName: imageName, Base: base, Dir: dir, Domain: domain,
		SourceCommit: sourceCommit, PipelineURL: pipelineUrl, DryRun: dryRun,
	})
	if err != nil {
		return nil, err
	}
	out := newDeployChange(res.Result, image, dryRun)
	out.Host, out.Overlay = res.Host, res.Overlay
	return out, nil
}

// StopReview removes the review app of a merge request: it deletes
// review/mr-<N>/ and its entry in review/kustomization.yaml, and Flux
// prunes what it deployed. Other review apps are not touched; stopping an
// app that is already gone changes nothing.
//
// +cache="never"
func (m *Voice) StopReview(
	ctx context.Context,
	// Merge request IID, e.g. $CI_MERGE_REQUEST_IID.
	mr int,
	// Deploy repository, e.g. https://gitlab.com/acme/deploy.git.
	deployRepo string,
	// Token with write_repository on the deploy repository, e.g. env://DEPLOY_TOKEN.
	//
	// +optional
	token *dagger.Secret,
	// SSH private key for an ssh:// deploy repository.
	//
	// +optional
	sshKey *dagger.Secret,
	// known_hosts line(s) of the SSH server; required with --ssh-key.
	//
	// +optional
	sshKnownHosts string,
	// Directory of the review overlays in the deploy repository.
	//
	// +optional
	// +default="review"
	dir string,
	// Branch of the deploy repository.
	//
	// +optional
	// +default="main"
	branch string,
	// Pipeline URL, recorded as a Pipeline trailer (e.g. $CI_PIPELINE_URL).
	//
	// +optional
	pipelineUrl string,
	// Compute and print the diff; push nothing.
	//
	// +optional
	dryRun bool,
) (*DeployChange, error) {
	auth, err := deployAuth(ctx, token, sshKey, sshKnownHosts)
	if err != nil {
		return nil, err
	}
	res, err := gitops.StopReview(ctx, gitops.ReviewOptions{
		Repo: gitops.Repo{URL: deployRepo, Branch: branch, Auth: auth},
		MR:   mr, Dir: dir, PipelineURL: pipelineUrl, DryRun: dryRun,
	})
	if err != nil {
		return nil, err
	}
	out := newDeployChange(res.Result, "", dryRun)
	out.Overlay = res.Overlay
	return out, nil
}
