package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"dagger/voice/readiness"
)

// WaitReady polls a deployed agent until its host name resolves and its
// health endpoint answers 200 with the expected revision, then returns a
// one-line summary. It fails with the last state seen (DNS, HTTP status or
// the wrong revision) when the timeout passes. Use it after a review-app
// deploy, where the DNS record and the rollout lag behind the commit.
//
// +cache="never"
func (m *Voice) WaitReady(
	ctx context.Context,
	// Base URL of the agent, e.g. https://mr-42.review.example.com.
	url string,
	// Commit SHA (full or abbreviated) the agent must report as its
	// revision, e.g. $CI_COMMIT_SHA; empty accepts any healthy agent.
	//
	// +optional
	commit string,
	// Path of the health endpoint that reports status and revision as JSON.
	//
	// +optional
	// +default="/healthz"
	healthPath string,
	// How long to wait in all, as a Go duration (e.g. 10m).
	//
	// +optional
	// +default="10m"
	timeout string,
	// Pause between attempts, as a Go duration.
	//
	// +optional
	// +default="5s"
	interval string,
) (string, error) {
	to, err := time.ParseDuration(timeout)
	if err != nil {
		return "", fmt.Errorf("--timeout %q is not a duration such as 10m: %w", timeout, err)
	}
	iv, err := time.ParseDuration(interval)
	if err != nil {
		return "", fmt.Errorf("--interval %q is not a duration such as 5s: %w", interval, err)
	}
	var log strings.Builder
	res, err := readiness.Wait(ctx, readiness.Options{
		URL: url, Revision: commit, Path: healthPath, Timeout: to, Interval: iv, Log: &log,
	})
	if err != nil {
		return "", fmt.Errorf("%w\n%s", err, log.String())
	}
	return fmt.Sprintf("%s is ready at revision %s after %d attempts (%s)",
		url, res.Revision, res.Attempts, res.Elapsed.Round(time.Second)), nil
}
