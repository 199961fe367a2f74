//go:build typecheck

package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dagger/voice/evalrun"
	"dagger/voice/internal/dagger"
	"dagger/voice/provenance"
)

// TestPlanRelease gives every input of a release a distinct sentinel and
// checks where each one lands: a swapped or shifted value (the commit as
// the version, the pipeline URL as the source URL, ...) fails here.
func TestPlanRelease(t *testing.T) {
	var apiKey dagger.Secret
	in := releaseInput{
		Repository:  "registry.example.com/sentinel/repository",
		Version:     "1.2.3-version",
		Commit:      "c0ffee0000000000000000000000000000000001",
		Created:     "2026-01-02T03:04:05Z",
		SourceURL:   "https://example.com/sentinel/source-url",
		PipelineURL: "https://example.com/sentinel/pipeline-url",
		Path:        "sentinel-path",
		Suite:       "sentinel-suite",
		Threshold:   0.4242,
		Platforms:   []dagger.Platform{"linux/sentinel"},
		APIKey:      &apiKey,
	}
	plan, err := planRelease(in)
	require.NoError(t, err)
	assert.Equal(t, releasePlan{
		Gates: gateOptions{Eval: evalrun.Options{Suite: "sentinel-suite", Threshold: 0.4242}, APIKey: &apiKey},
		Build: buildOptions{
			Platforms: []dagger.Platform{"linux/sentinel"},
			Version:   "1.2.3-version",
			Commit:    "c0ffee0000000000000000000000000000000001",
			Created:   "2026-01-02T03:04:05Z",
			SourceURL: "https://example.com/sentinel/source-url",
		},
		Address: "registry.example.com/sentinel/repository:1.2.3-version",
		GitLab:  provenance.GitLab{CommitRefName: "1.2.3-version", PipelineURL: "https://example.com/sentinel/pipeline-url"},
		Bump: bumpRequest{
			Path:         "sentinel-path",
			SourceCommit: "c0ffee0000000000000000000000000000000001",
			PipelineURL:  "https://example.com/sentinel/pipeline-url",
		},
	}, plan)
	assert.Same(t, &apiKey, plan.Gates.APIKey)

	// Defaults of a release called from Go with zero values.
	plan, err = planRelease(releaseInput{Repository: in.Repository, Version: in.Version, Commit: in.Commit, Created: in.Created})
	require.NoError(t, err)
	assert.Equal(t, "voice", plan.Gates.Eval.Suite)
	assert.Equal(t, "voice", plan.Bump.Path)

	for name, mut := range map[string]func(*releaseInput){
		"repository with digest": func(i *releaseInput) { i.Repository += "@sha256:0123" },
		"no repository":          func(i *releaseInput) { i.Repository = "" },
		"no registry host":       func(i *releaseInput) { i.Repository = "voice-agent" },
		"no version":             func(i *releaseInput) { i.Version = "" },
		"no commit":              func(i *releaseInput) { i.Commit = "" },
		"no created":             func(i *releaseInput) { i.Created = "" },
	} {
		t.Run(name, func(t *testing.T) {
			bad := in
			mut(&bad)
			_, err := planRelease(bad)
			require.Error(t, err)
		})
	}
}

// Release refuses to start without signing and verification settings:
// nothing is built or published that could not be signed and verified.
func TestReleaseNeedsSigning(t *testing.T) {
	ctx := context.Background()
	var token, key, pub dagger.Secret
	m := New("", "", "")
	repo, err := m.DeployRepo("https://gitlab.example.com/acme/deploy.git", &token, "", nil, "", "", "", "")
	require.NoError(t, err)
	_, err = repo.Release(ctx, nil, "registry.example.com/acme/voice-agent", "1.0.0", "c0ffee0000000000000000000000000000000001", "0", "", "", "", nil, "", 0, nil)
	require.ErrorContains(t, err, "nothing to sign with")

	signOnly, err := m.WithSigningKey(&key, nil, nil, true, "", nil)
	require.NoError(t, err)
	repo, err = signOnly.DeployRepo("https://gitlab.example.com/acme/deploy.git", &token, "", nil, "", "", "", "")
	require.NoError(t, err)
	_, err = repo.Release(ctx, nil, "registry.example.com/acme/voice-agent", "1.0.0", "c0ffee0000000000000000000000000000000001", "0", "", "", "", nil, "", 0, nil)
	require.ErrorContains(t, err, "verifies the signature before deploying")

	both, err := m.WithSigningKey(&key, nil, &pub, true, "", nil)
	require.NoError(t, err)
	repo, err = both.DeployRepo("https://gitlab.example.com/acme/deploy.git", &token, "", nil, "", "", "", "")
	require.NoError(t, err)
	_, err = repo.Release(ctx, nil, "registry.example.com/acme/voice-agent@sha256:00", "1.0.0", "c", "0", "", "", "", nil, "", 0, nil)
	require.ErrorContains(t, err, "without tag or digest")
}

func TestDeployRepo(t *testing.T) {
	var token, key dagger.Secret
	m := New("", "", "")
	r, err := m.DeployRepo("https://gitlab.example.com/acme/deploy.git", &token, "gitlab+deploy-token-7", nil, "", "", "", "")
	require.NoError(t, err)
	assert.Equal(t, "main", r.Branch)
	assert.Equal(t, "gitlab+deploy-token-7", r.TokenUser)
	assert.Same(t, m, r.Pipeline)
	p := r.Preview()
	assert.True(t, p.DryRun)
	assert.False(t, r.DryRun, "preview is a copy")
	mr := r.WithMergeRequest("", "acme/deploy", nil)
	assert.Equal(t, "acme/deploy", mr.MergeRequest.Project)
	assert.Nil(t, r.MergeRequest)

	def, err := m.DeployRepo("https://gitlab.example.com/acme/deploy.git", &token, "", nil, "", "", "", "")
	require.NoError(t, err)
	assert.Equal(t, "oauth2", def.TokenUser)

	_, err = m.DeployRepo("", &token, "", nil, "", "", "", "")
	require.ErrorContains(t, err, "needs --url")
	_, err = m.DeployRepo("ssh://git@gitlab.example.com/acme/deploy.git", nil, "", &key, "", "", "", "")
	require.ErrorContains(t, err, "--ssh-known-hosts")
}

// The bump summary says which images entry changed and why.
func TestDeployChangeSummary(t *testing.T) {
	c := &DeployChange{
		Commit: "abc123", Branch: "main", Attempts: 1, Image: "127.0.0.1:5000/ci/voice-agent@sha256:00",
		ImageEntry: "voice-agent", ImageEntryRule: "last path element",
		Verification: "verified x: signature by key\n", Diff: "--- a/voice/kustomization.yaml\n",
	}
	assert.Equal(t, "committed abc123 to main after 1 attempt(s)\n"+
		"images entry: \"voice-agent\" (chosen by last path element)\n"+
		"verified x: signature by key\n"+
		"\n--- a/voice/kustomization.yaml\n", c.Summary())
	c.DryRun = true
	assert.Contains(t, c.Summary(), "preview: would commit abc123 to main (nothing pushed)\n")
	c.Commit = "unchanged"
	assert.Contains(t, c.Summary(), "unchanged: main already deploys 127.0.0.1:5000/ci/voice-agent@sha256:00\n")
}
