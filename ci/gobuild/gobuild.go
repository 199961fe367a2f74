// Package gobuild computes the reproducible `go build` command line and
// environment that cross-compile the agent: static (CGO_ENABLED=0),
// -trimpath, no VCS stamping, an empty build ID, and the version and
// commit stamped with -ldflags -X.
package gobuild

import (
	"fmt"
	"regexp"
	"strings"

	"dagger/voice/platform"
)

// Default values of Options.
const (
	// DefaultPackage is the agent's main package in the product module.
	DefaultPackage = "./agent/cmd/voice-agent"
	// DefaultVersionVar and DefaultCommitVar are the variables of the
	// agent's main package stamped by -ldflags -X.
	DefaultVersionVar = "main.version"
	DefaultCommitVar  = "main.commit"
)

// Options describe one cross-compilation.
type Options struct {
	// Package is the main package to build, relative to the module root.
	Package string
	// Output is the path of the binary to write.
	Output string
	// Platform is the target platform.
	Platform platform.Platform
	// Version is stamped into VersionVar, e.g. "1.4.2" or "0.0.0-dev".
	Version string
	// Commit is the full source commit SHA stamped into CommitVar.
	Commit string
	// VersionVar and CommitVar name the variables to stamp
	// (DefaultVersionVar, DefaultCommitVar when empty).
	VersionVar, CommitVar string
}

var (
	// safeValue keeps ldflags values free of spaces and quotes: -ldflags
	// splits on spaces, so anything else would change the command.
	safeValue = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+\-]{0,127}$`)
	commitRE  = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	varRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_./\-]*\.[A-Za-z_][A-Za-z0-9_]*$`)
	pkgRE     = regexp.MustCompile(`^\./[A-Za-z0-9_./\-]*$|^\.$`)
)

func (o Options) withDefaults() Options {
	if o.VersionVar == "" {
		o.VersionVar = DefaultVersionVar
	}
	if o.CommitVar == "" {
		o.CommitVar = DefaultCommitVar
	}
	if o.Package == "" {
		o.Package = DefaultPackage
	}
	return o
}

// Validate reports the first problem with the options.
func (o Options) Validate() error {
	o = o.withDefaults()
	if !safeValue.MatchString(o.Version) {
		return fmt.Errorf("version %q is not valid: use letters, digits, '.', '_', '+' and '-' only (e.g. 1.4.2 or $CI_COMMIT_TAG)", o.Version)
	}
	if !commitRE.MatchString(o.Commit) {
		return fmt.Errorf("commit %q is not a lowercase hex commit SHA: pass the full SHA, e.g. $CI_COMMIT_SHA or $(git rev-parse HEAD)", o.Commit)
	}
	if !varRE.MatchString(o.VersionVar) || !varRE.MatchString(o.CommitVar) {
		return fmt.Errorf("ldflags variables %q and %q must be package.name, e.g. main.version", o.VersionVar, o.CommitVar)
	}
	if !pkgRE.MatchString(o.Package) || strings.Contains(o.Package, "..") {
		return fmt.Errorf("package %q must be a relative path inside the module, e.g. %s", o.Package, DefaultPackage)
	}
	if o.Output == "" || strings.ContainsAny(o.Output, " \t\n") {
		return fmt.Errorf("output path %q must be non-empty and without spaces", o.Output)
	}
	if o.Platform.OS == "" || o.Platform.Arch == "" {
		return fmt.Errorf("no target platform set: parse one with platform.Parse")
	}
	return nil
}

// LDFlags returns the -ldflags value: strip symbol tables and DWARF (-s
// -w), empty build ID, and stamp version and commit.
func (o Options) LDFlags() string {
	o = o.withDefaults()
	return fmt.Sprintf("-s -w -buildid= -X %s=%s -X %s=%s", o.VersionVar, o.Version, o.CommitVar, o.Commit)
}

// Args returns the full `go build` command line.
func (o Options) Args() ([]string, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	return []string{
		"go", "build",
		"-trimpath",
		"-buildvcs=false",
		"-ldflags=" + o.LDFlags(),
		"-o", o.Output,
		o.Package,
	}, nil
}

// Env returns the environment of the build: the platform's cross-compile
// variables plus settings that keep the output independent of the machine
// (no GOFLAGS from the image, GOAMD64/GOARM64 baselines pinned).
func (o Options) Env() [][2]string {
	env := o.Platform.GoEnv()
	env = append(env, [2]string{"GOFLAGS", "-mod=readonly"})
	switch o.Platform.Arch {
	case "amd64":
		env = append(env, [2]string{"GOAMD64", "v1"})
	case "arm64":
		env = append(env, [2]string{"GOARM64", "v8.0"})
	}
	return env
}
