package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"dagger/voice/gotest"
	"dagger/voice/internal/dagger"
)

// TestRun is the outcome of vetting and testing the product module. Its
// report can be exported whether the tests passed or not; Check fails when
// they did not.
type TestRun struct {
	// JUnit XML report of the tests, for GitLab's artifacts:reports:junit.
	Report *dagger.File
	// Output of go vet and the tests.
	Output string
	// Exit code of vet and tests (0 when everything passed).
	ExitCode int
	// One-line summary, e.g. "120 passed, 0 failed, 2 skipped".
	Summary string
}

// Reports returns a directory with junit.xml, output.txt, summary.txt and
// exit-code, so a CI job can keep every report of a failed run and then fail
// on exit-code without calling the tests twice.
func (r *TestRun) Reports() *dagger.Directory {
	return gateReports(r.Output, r.Summary, r.ExitCode).WithFile("junit.xml", r.Report)
}

// Check fails, with the test output, unless vet and every test passed. On
// success it returns the summary line.
func (r *TestRun) Check() (string, error) {
	return gateCheck("tests", r.Output, r.Summary, r.ExitCode)
}

// Test runs `go vet` and `go test -race` over the product module (the agent
// and the eval runner) in the Go image, with the Go module and build caches
// as cache volumes, and writes a JUnit report with gotestsum.
//
// Export the reports, then fail on failed tests (what CI does):
//
//	dagger call test reports export --path=reports/test
//	exit "$(cat reports/test/exit-code)"
//
// or just `dagger call test check`.
func (m *Voice) Test(
	ctx context.Context,
	// Repository root holding the product's go.mod.
	//
	// +defaultPath="/"
	// +ignore=[".git", "**/node_modules", ".ci/tools", "ci/dagger.gen.go", "ci/internal/dagger", "ci/internal/querybuilder", "ci/internal/telemetry"]
	source *dagger.Directory,
	// Package patterns to vet and test.
	//
	// +optional
	// +default=["./..."]
	packages []string,
	// Run the tests with the race detector.
	//
	// +optional
	// +default=true
	race bool,
) (*TestRun, error) {
	opts := gotest.Options{
		Packages:     packages,
		Race:         race,
		JUnitPath:    "/out/junit.xml",
		ExitCodePath: "/out/exit-code",
	}
	script, err := opts.Script()
	if err != nil {
		return nil, err
	}
	// gotestsum is installed before the source is added, so the layer is
	// reused across source changes.
	tools := m.goToolchain().
		WithEnvVariable("GOBIN", "/usr/local/bin").
		WithExec([]string{"go", "install", gotest.GotestsumInstall}).
		WithExec([]string{"mkdir", "-p", "/out"})
	ctr := withSource(tools, source).
		WithExec([]string{"sh", "-c", script})

	output, err := ctr.Stdout(ctx)
	if err != nil {
		return nil, fmt.Errorf("run tests: %w", err)
	}
	codeText, err := ctr.File("/out/exit-code").Contents(ctx)
	if err != nil {
		return nil, fmt.Errorf("read exit code of the tests: %w", err)
	}
	code, err := strconv.Atoi(strings.TrimSpace(codeText))
	if err != nil {
		return nil, fmt.Errorf("exit code of the tests %q is not a number: %w", codeText, err)
	}
	report := ctr.File("/out/junit.xml")
	xmlText, err := report.Contents(ctx)
	if err != nil {
		return nil, fmt.Errorf("read JUnit report: %w", err)
	}
	summary, err := gotest.ParseJUnit(strings.NewReader(xmlText))
	if err != nil {
		return nil, err
	}
	return &TestRun{Report: report, Output: output, ExitCode: code, Summary: summary.String()}, nil
}

// Tests runs the product's vet and race-enabled tests and fails when any
// fails; it is what `dagger check` runs.
//
// +check
func (m *Voice) Tests(
	ctx context.Context,
	// Repository root holding the product's go.mod.
	//
	// +defaultPath="/"
	// +ignore=[".git", "**/node_modules", ".ci/tools", "ci/dagger.gen.go", "ci/internal/dagger", "ci/internal/querybuilder", "ci/internal/telemetry"]
	source *dagger.Directory,
) error {
	run, err := m.Test(ctx, source, nil, true)
	if err != nil {
		return err
	}
	_, err = run.Check()
	return err
}
