// Package gotest builds the commands that vet and test a Go module inside a
// pipeline container and reads the JUnit report they produce.
package gotest

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"dagger/voice/shellquote"
)

// GotestsumVersion is the pinned gotestsum release that turns `go test -json`
// into JUnit XML.
const GotestsumVersion = "v1.13.0"

// GotestsumInstall is the `go install` argument for the pinned gotestsum.
const GotestsumInstall = "gotest.tools/gotestsum@" + GotestsumVersion

// Options describe one vet-and-test run.
type Options struct {
	// Packages are the package patterns to vet and test; default "./...".
	Packages []string
	// Race enables the race detector (needs cgo, which the Go image has).
	Race bool
	// Tags are build tags for vet and test (e.g. typecheck).
	Tags []string
	// Short runs go test -short (slow tests skip themselves).
	Short bool
	// Timeout bounds `go test`; zero means go test's default (10m).
	Timeout time.Duration
	// JUnitPath is where the JUnit XML report is written.
	JUnitPath string
	// ExitCodePath, when set, receives the combined exit code, so the caller
	// can keep the report of a failed run and fail afterwards.
	ExitCodePath string
}

var (
	patternRE = regexp.MustCompile(`^[A-Za-z0-9_./@-]+(\.\.\.)?$`)
	tagRE     = regexp.MustCompile(`^[A-Za-z0-9_.]+$`)
)

func (o Options) tagArgs() []string {
	if len(o.Tags) == 0 {
		return nil
	}
	return []string{"-tags", strings.Join(o.Tags, ",")}
}

// Validate reports the first problem with o, naming the field and the fix.
func (o Options) Validate() error {
	if o.JUnitPath == "" {
		return errors.New("gotest: JUnitPath is empty: name the file the JUnit report is written to")
	}
	for _, p := range o.Packages {
		if !patternRE.MatchString(p) || strings.HasPrefix(p, "-") {
			return fmt.Errorf("gotest: package pattern %q is not a Go package pattern (use forms like ./... or ./agent/...)", p)
		}
	}
	for _, t := range o.Tags {
		if !tagRE.MatchString(t) {
			return fmt.Errorf("gotest: build tag %q is not a Go build tag (letters, digits, _ and .)", t)
		}
	}
	if o.Timeout < 0 {
		return fmt.Errorf("gotest: timeout %s is negative", o.Timeout)
	}
	return nil
}

func (o Options) packages() []string {
	if len(o.Packages) == 0 {
		return []string{"./..."}
	}
	return o.Packages
}

// TestArgs returns the argument list of gotestsum: it writes the JUnit
// report and runs `go test` with the flags of o.
func (o Options) TestArgs() []string {
	args := []string{"gotestsum", "--format", "testname", "--junitfile", o.JUnitPath,
		"--junitfile-testsuite-name", "relative", "--junitfile-testcase-classname", "relative", "--"}
	args = append(args, o.tagArgs()...)
	if o.Race {
		args = append(args, "-race")
	}
	if o.Short {
		args = append(args, "-short")
	}
	if o.Timeout > 0 {
		args = append(args, "-timeout", o.Timeout.String())
	}
	return append(args, o.packages()...)
}

// VetArgs returns the argument list of `go vet` over the packages of o.
func (o Options) VetArgs() []string {
	return append(append([]string{"go", "vet"}, o.tagArgs()...), o.packages()...)
}

// Script returns a POSIX shell script that runs vet and then the tests,
// always both, so the JUnit report exists even when vet fails. The script
// exits with the first non-zero exit code, and writes it to ExitCodePath
// when set (then it exits 0 itself, leaving the verdict to the caller).
func (o Options) Script() (string, error) {
	if err := o.Validate(); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("set -u\nrc=0\n")
	fmt.Fprintf(&b, "%s || rc=$?\n", shellquote.Join(o.VetArgs()))
	fmt.Fprintf(&b, "code=0\n%s || code=$?\n", shellquote.Join(o.TestArgs()))
	b.WriteString("if [ \"$rc\" -eq 0 ]; then rc=$code; fi\n")
	if o.ExitCodePath != "" {
		fmt.Fprintf(&b, "echo \"$rc\" > %s\nexit 0\n", shellquote.Quote(o.ExitCodePath))
	} else {
		b.WriteString("exit \"$rc\"\n")
	}
	return b.String(), nil
}

// Module is one Go module of a repository to vet and test.
type Module struct {
	// Name names its reports, e.g. "ci" (ci.xml).
	Name string
	// Dir is the module's directory relative to the repository root.
	Dir string
	// Tags are its build tags.
	Tags []string
	// Race runs its tests with the race detector.
	Race bool
	// Optional: a repository without the module skips it.
	Optional bool
	// Short always runs its tests with -short: for tests that need what a
	// pipeline container lacks (deploy/'s kube-apiserver and etcd skip
	// themselves under -short when those are not built).
	Short bool
}

// RepositoryModules are the Go modules of this repository, as .ci/test
// runs them: the product with the race detector, the Dagger module and
// the example's Dagger module with the typecheck tag (they compile
// against the pinned SDK through their stand-ins), the example service,
// and, short, the image-digest check against BuildKit and the deploy
// manifests' tests: their real engines (buildkitd; kube-apiserver and
// etcd, built by .ci/setup) are not in the Go image, so .ci/test runs
// those.
var RepositoryModules = []Module{
	{Name: "product", Dir: ".", Race: true},
	{Name: "ci", Dir: "ci", Tags: []string{"typecheck"}},
	{Name: "example", Dir: "ci/examples/greeter"},
	{Name: "example-module", Dir: "ci/examples/greeter/ci", Tags: []string{"typecheck"}},
	{Name: "buildkit", Dir: "ci/ocilayout/buildkit", Short: true},
	{Name: "deploy", Dir: "deploy", Optional: true, Short: true},
}

// SuiteScript returns a POSIX shell script that vets and tests every
// module in turn, each in its directory, whatever the others did: it
// writes outDir/<name>.xml (JUnit) and outDir/<name>.exit-code, and
// "skipped" as the exit code of an optional module that is not there.
// It exits 0; the exit codes say what failed.
func SuiteScript(mods []Module, short bool, outDir string) (string, error) {
	if len(mods) == 0 {
		return "", errors.New("gotest: no module to test")
	}
	var b strings.Builder
	b.WriteString("set -u\n")
	seen := map[string]bool{}
	for _, m := range mods {
		if !tagRE.MatchString(strings.ReplaceAll(m.Name, "-", "_")) || seen[m.Name] {
			return "", fmt.Errorf("gotest: module name %q must be a unique word", m.Name)
		}
		seen[m.Name] = true
		if !patternRE.MatchString(m.Dir) || strings.HasPrefix(m.Dir, "-") || strings.HasPrefix(m.Dir, "/") || strings.Contains(m.Dir, "..") {
			return "", fmt.Errorf("gotest: module directory %q must be a path inside the repository", m.Dir)
		}
		o := Options{Race: m.Race, Tags: m.Tags, Short: short || m.Short,
			JUnitPath: outDir + "/" + m.Name + ".xml", ExitCodePath: outDir + "/" + m.Name + ".exit-code"}
		script, err := o.Script()
		if err != nil {
			return "", err
		}
		dir := shellquote.Quote(m.Dir)
		fmt.Fprintf(&b, "echo %s\n", shellquote.Quote("== "+m.Name+" ("+m.Dir+")"))
		if m.Optional {
			fmt.Fprintf(&b, "if [ ! -f %s/go.mod ]; then echo skipped > %s; else\n", dir, shellquote.Quote(o.ExitCodePath))
		}
		fmt.Fprintf(&b, "(cd %s && sh -c %s) || echo 2 > %s\n", dir, shellquote.Quote(script), shellquote.Quote(o.ExitCodePath))
		if m.Optional {
			b.WriteString("fi\n")
		}
	}
	b.WriteString("exit 0\n")
	return b.String(), nil
}

// Summary counts the test cases of a JUnit report.
type Summary struct {
	Tests    int
	Failures int
	Errors   int
	Skipped  int
	// Failed names the failed test cases as "suite/test".
	Failed []string
}

// Passed reports whether the report has at least one test and no failure or error.
func (s Summary) Passed() bool { return s.Tests > 0 && s.Failures == 0 && s.Errors == 0 }

// String is a one-line summary, e.g. "12 passed, 1 failed, 2 skipped".
func (s Summary) String() string {
	passed := s.Tests - s.Failures - s.Errors - s.Skipped
	line := fmt.Sprintf("%d passed, %d failed, %d skipped", passed, s.Failures+s.Errors, s.Skipped)
	if len(s.Failed) > 0 {
		line += " (failed: " + strings.Join(s.Failed, ", ") + ")"
	}
	return line
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name  string      `xml:"name,attr"`
	Cases []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name    string    `xml:"name,attr"`
	Class   string    `xml:"classname,attr"`
	Failure *struct{} `xml:"failure"`
	Error   *struct{} `xml:"error"`
	Skipped *struct{} `xml:"skipped"`
}

// maxReport bounds how much of a report is read (a report is untrusted input).
const maxReport = 64 << 20

// ParseJUnit reads a JUnit XML report (a <testsuites> document, as gotestsum
// writes) and counts its test cases.
func ParseJUnit(r io.Reader) (Summary, error) {
	var doc junitSuites
	dec := xml.NewDecoder(io.LimitReader(r, maxReport))
	if err := dec.Decode(&doc); err != nil {
		return Summary{}, fmt.Errorf("parse JUnit report: %w", err)
	}
	var s Summary
	for _, suite := range doc.Suites {
		for _, c := range suite.Cases {
			s.Tests++
			switch {
			case c.Failure != nil:
				s.Failures++
				s.Failed = append(s.Failed, suite.Name+"/"+c.Name)
			case c.Error != nil:
				s.Errors++
				s.Failed = append(s.Failed, suite.Name+"/"+c.Name)
			case c.Skipped != nil:
				s.Skipped++
			}
		}
	}
	return s, nil
}
