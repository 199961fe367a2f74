// Package platform parses and validates OCI platform strings such as
// "linux/amd64" or "linux/arm/v7" and maps them to the Go toolchain's
// cross-compilation environment (GOOS, GOARCH, GOARM).
package platform

import (
	"fmt"
	"strings"
)

// Platform is an OCI platform the agent image can be built for.
type Platform struct {
	// OS is the operating system, e.g. "linux".
	OS string
	// Arch is the OCI (and Go) architecture, e.g. "amd64", "arm64".
	Arch string
	// Variant is the CPU variant, e.g. "v7" for linux/arm/v7; empty for none.
	Variant string
}

// goArches maps the supported OCI architectures to the variants Go can
// target ("" means no variant). The base image (distroless static) is
// published for these.
var goArches = map[string][]string{
	"amd64":   {""},
	"arm64":   {"", "v8"},
	"arm":     {"v6", "v7"},
	"ppc64le": {""},
	"s390x":   {""},
	"riscv64": {""},
	"386":     {""},
}

// Parse parses "os/arch[/variant]". Only linux is supported (the agent runs
// in Linux containers). "linux/arm64/v8" is normalised to "linux/arm64".
func Parse(s string) (Platform, error) {
	parts := strings.Split(strings.TrimSpace(s), "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant, e.g. linux/amd64", s)
	}
	p := Platform{OS: parts[0], Arch: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	if p.OS != "linux" {
		return Platform{}, fmt.Errorf("platform %q: operating system %q is not supported: the agent image is a Linux container, use linux/<arch>", s, p.OS)
	}
	variants, ok := goArches[p.Arch]
	if !ok {
		return Platform{}, fmt.Errorf("platform %q: architecture %q is not supported: use one of amd64, arm64, arm/v7, arm/v6, ppc64le, s390x, riscv64, 386", s, p.Arch)
	}
	found := false
	for _, v := range variants {
		if v == p.Variant {
			found = true
			break
		}
	}
	if !found {
		if p.Variant == "" {
			return Platform{}, fmt.Errorf("platform %q: architecture %s needs a variant, e.g. %s/%s/%s", s, p.Arch, p.OS, p.Arch, variants[len(variants)-1])
		}
		return Platform{}, fmt.Errorf("platform %q: variant %q of %s is not supported (supported: %s)", s, p.Variant, p.Arch, strings.Join(variants, ", "))
	}
	if p.Arch == "arm64" {
		p.Variant = "" // v8 is the only arm64 variant and the default.
	}
	return p, nil
}

// ParseList parses a list of platforms, rejecting an empty list and
// duplicates (after normalisation), and keeps the given order.
func ParseList(list []string) ([]Platform, error) {
	if len(list) == 0 {
		return nil, fmt.Errorf("no platform given: pass at least one, e.g. --platforms linux/amd64,linux/arm64")
	}
	out := make([]Platform, 0, len(list))
	seen := map[Platform]bool{}
	for _, s := range list {
		p, err := Parse(s)
		if err != nil {
			return nil, err
		}
		if seen[p] {
			return nil, fmt.Errorf("platform %s is listed twice: list each platform once", p)
		}
		seen[p] = true
		out = append(out, p)
	}
	return out, nil
}

// String returns the canonical "os/arch[/variant]" form.
func (p Platform) String() string {
	if p.Variant == "" {
		return p.OS + "/" + p.Arch
	}
	return p.OS + "/" + p.Arch + "/" + p.Variant
}

// Slug returns a form usable in file names, e.g. "linux-arm-v7".
func (p Platform) Slug() string {
	return strings.ReplaceAll(p.String(), "/", "-")
}

// GoEnv returns the environment for cross-compiling a static binary for p
// with the Go toolchain: CGO_ENABLED=0, GOOS, GOARCH and, for 32-bit ARM,
// GOARM.
func (p Platform) GoEnv() [][2]string {
	env := [][2]string{{"CGO_ENABLED", "0"}, {"GOOS", p.OS}, {"GOARCH", p.Arch}}
	if p.Arch == "arm" {
		env = append(env, [2]string{"GOARM", strings.TrimPrefix(p.Variant, "v")})
	}
	return env
}
