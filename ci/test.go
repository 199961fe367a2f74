package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"dagger/voice/gotest"
	"dagger/voice/internal/dagger"
)

// noControlPlaneEnv is set in the test container, which has no
// kube-apiserver and etcd: tests that need them may skip when it is set
// (deploy/ also runs with -short there); .ci/test on a machine runs them.
const noControlPlaneEnv = "VOICE_TEST_NO_CONTROL_PLANE"

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
// as cache volumes, and writes a JUnit report with gotestsum. test-all runs
// every module of the repository.
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
	// +ignore=[".git", "**/node_modules", ".ci/tools", ".ci/reports", "reports", "ci/dagger.gen.go", "ci/internal/dagger", "ci/internal/querybuilder", "ci/internal/telemetry"]
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
	return m.test(ctx, source, gotest.Options{Packages: packages, Race: race})
}

// testTools is the Go image with gotestsum, installed before the source is
// added so the layer is reused across source changes.
func (m *Voice) testTools() *dagger.Container {
	return m.goToolchain().
		WithEnvVariable("GOBIN", "/usr/local/bin").
		WithExec([]string{"go", "install", gotest.GotestsumInstall}).
		WithExec([]string{"mkdir", "-p", "/out"})
}

func (m *Voice) test(ctx context.Context, source *dagger.Directory, opts gotest.Options) (*TestRun, error) {
	opts.JUnitPath, opts.ExitCodePath = "/out/junit.xml", "/out/exit-code"
	script, err := opts.Script()
	if err != nil {
		return nil, err
	}
	ctr := withSource(m.testTools(), source).WithExec([]string{"sh", "-c", script})
	output, err := ctr.Stdout(ctx)
	if err != nil {
		return nil, fmt.Errorf("run tests: %w", err)
	}
	return readTestRun(ctx, ctr, output, "/out/junit.xml", "/out/exit-code")
}

// readTestRun reads a run's exit code and JUnit report from its container.
func readTestRun(ctx context.Context, ctr *dagger.Container, output, junitPath, exitCodePath string) (*TestRun, error) {
	codeText, err := ctr.File(exitCodePath).Contents(ctx)
	if err != nil {
		return nil, fmt.Errorf("read exit code of the tests: %w", err)
	}
	code, err := strconv.Atoi(strings.TrimSpace(codeText))
	if err != nil {
		return nil, fmt.Errorf("exit code of the tests %q is not a number: %w", codeText, err)
	}
	report := ctr.File(junitPath)
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

// TestSuite is the outcome of testing every Go module of the repository.
type TestSuite struct {
	// Modules tested, in order (product, ci, example, example-module, buildkit, deploy).
	Modules []string
	// One run per module, in the order of Modules.
	Runs []*TestRun
	// Modules the repository does not have (skipped).
	Skipped []string
	// Output of every module's vet and tests.
	Output string
	// 0 when every module passed, else 1.
	ExitCode int
	// One line per module, e.g. "ci: 412 passed, 0 failed, 3 skipped".
	Summary string
}

// Reports returns <module>.xml (JUnit) for every module, and output.txt,
// summary.txt and exit-code, for GitLab's artifacts:reports:junit.
func (s *TestSuite) Reports() *dagger.Directory {
	dir := gateReports(s.Output, s.Summary, s.ExitCode)
	for i, name := range s.Modules {
		dir = dir.WithFile(name+".xml", s.Runs[i].Report)
	}
	return dir
}

// Check fails, with the output, unless every module passed.
func (s *TestSuite) Check() (string, error) {
	return gateCheck("tests", s.Output, s.Summary, s.ExitCode)
}

// TestAll vets and tests every Go module of the repository as .ci/test
// does: the product (race detector), ci/ (typecheck tag: the Dagger module
// against the pinned SDK, the gitops code with a loopback git server), the
// example service, the example's Dagger module (typecheck tag), the
// image-digest check against BuildKit (ci/ocilayout/buildkit) and deploy/,
// with a JUnit report each. Tests that need tools the Go image lacks skip
// themselves (cosign, gitlab-ci-local). The BuildKit check and deploy/ run
// with -short, under which the tests that need buildkitd, kube-apiserver
// and etcd skip when those are not built (.ci/test on a machine runs
// them), and the container sets VOICE_TEST_NO_CONTROL_PLANE=1 for any test
// that needs to know.
//
//	dagger call test-all reports export --path=reports/test
//	exit "$(cat reports/test/exit-code)"
func (m *Voice) TestAll(
	ctx context.Context,
	// Repository root. What the engine generates for the Dagger modules is
	// left out (their typecheck stand-ins are kept).
	//
	// +defaultPath="/"
	// +ignore=[".git", "**/node_modules", ".ci/tools", ".ci/reports", "reports", "**/dagger.gen.go", "**/internal/dagger/*", "!**/internal/dagger/*.typecheck.go", "**/internal/querybuilder", "**/internal/telemetry"]
	source *dagger.Directory,
	// Run go test -short: the slow tests skip themselves.
	//
	// +optional
	short bool,
) (*TestSuite, error) {
	return m.testAll(ctx, source, short)
}

func (m *Voice) testAll(ctx context.Context, source *dagger.Directory, short bool) (*TestSuite, error) {
	script, err := gotest.SuiteScript(gotest.RepositoryModules, short, "/out")
	if err != nil {
		return nil, err
	}
	ctr := withSource(m.testTools(), source).
		WithEnvVariable(noControlPlaneEnv, "1").
		WithExec([]string{"sh", "-c", script})
	output, err := ctr.Stdout(ctx)
	if err != nil {
		return nil, fmt.Errorf("run the tests of every module: %w", err)
	}
	suite := &TestSuite{Output: output}
	var lines []string
	for _, mod := range gotest.RepositoryModules {
		code, err := ctr.File("/out/" + mod.Name + ".exit-code").Contents(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the exit code of %s: %w", mod.Name, err)
		}
		if strings.TrimSpace(code) == "skipped" {
			suite.Skipped = append(suite.Skipped, mod.Name)
			lines = append(lines, mod.Name+": skipped (not in this repository)")
			continue
		}
		run, err := readTestRun(ctx, ctr, "", "/out/"+mod.Name+".xml", "/out/"+mod.Name+".exit-code")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mod.Name, err)
		}
		if run.ExitCode != 0 {
			suite.ExitCode = 1
		}
		suite.Modules = append(suite.Modules, mod.Name)
		suite.Runs = append(suite.Runs, run)
		lines = append(lines, fmt.Sprintf("%s: %s (exit code %d)", mod.Name, run.Summary, run.ExitCode))
	}
	suite.Summary = strings.Join(lines, "\n")
	return suite, nil
}

// Tests runs every module's vet and tests (test-all) and fails when any
// fails; it is what `dagger check` runs.
//
// +check
func (m *Voice) Tests(
	ctx context.Context,
	// Repository root. What the engine generates for the Dagger modules is
	// left out (their typecheck stand-ins are kept).
	//
	// +defaultPath="/"
	// +ignore=[".git", "**/node_modules", ".ci/tools", ".ci/reports", "reports", "**/dagger.gen.go", "**/internal/dagger/*", "!**/internal/dagger/*.typecheck.go", "**/internal/querybuilder", "**/internal/telemetry"]
	source *dagger.Directory,
) error {
	suite, err := m.testAll(ctx, source, false)
	if err != nil {
		return err
	}
	_, err = suite.Check()
	return err
}
