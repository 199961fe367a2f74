// Package gitops changes the deploy repository that Flux reconciles.
//
// Apply is the core: a shallow, single-branch go-git clone into a fresh
// temporary directory, an edit, a kustomize (krusty) build of the affected
// kustomizations, a commit with trailers, and a push that never forces and
// starts over on the new head (with jittered backoff, up to a bound) when
// another writer pushed first. A change that is already in place makes no
// commit (Result.Commit == Unchanged); a dry run returns the diff only.
//
// Bump points a kustomization's `images:` entry at an image digest (kyaml
// edit, comments and formatting kept; merge-request mode opens a GitLab
// merge request); Review and StopReview write and remove review-app
// overlays. All of them go through Apply.
package gitops
