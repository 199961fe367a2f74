// Package provenance writes SLSA provenance v1 (https://slsa.dev/provenance/v1)
// for the agent image as an in-toto v1 statement: the builder (this Dagger
// module at its version), the source repository and commit, the build
// parameters, the resolved dependencies (source, base and Go images) and
// the resulting digests, with GitLab CI's variables when present.
package provenance

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"dagger/voice/imageref"
)

// Fixed identifiers of the documents.
const (
	StatementType = "https://in-toto.io/Statement/v1"
	PredicateType = "https://slsa.dev/provenance/v1"
	// BuildType names this build recipe (documented in ci/BUILD.md).
	BuildType = "https://gitlab.com/acme/voice-agent/-/blob/main/ci/BUILD.md#build-type-v1"
	// LocalBuilderID is the builder id outside GitLab CI.
	LocalBuilderID = "urn:dagger:module:voice"
)

// GitLab holds GitLab CI's predefined variables the provenance uses.
type GitLab struct {
	ServerURL, ProjectURL, CommitSHA, CommitRefName, PipelineURL, JobURL, JobID, RunnerID, JobStartedAt string
}

// Artifact is a named file with its SHA-256 (hex), e.g. a binary or SBOM.
type Artifact struct {
	Name   string
	SHA256 string
}

// Options is everything the provenance is made from.
type Options struct {
	// Image is the published digest reference (repo@sha256:...): the subject.
	Image string
	// Platforms built, e.g. ["linux/amd64", "linux/arm64"].
	Platforms []string
	// Version and Commit stamped into the binary; Commit is the source commit.
	Version, Commit string
	// Package is the main package built.
	Package string
	// SourceURL is the repository URL (e.g. $CI_PROJECT_URL); GitLab.ProjectURL wins when set.
	SourceURL string
	// CommitTime is the commit time used for every timestamp of the image.
	CommitTime time.Time
	// GoImage, BaseImage are the images of the build, pinned by digest.
	GoImage, BaseImage string
	// ModuleVersion is the version of this Dagger module (its commit).
	ModuleVersion string
	// DaggerVersion is the Dagger SDK/engine version.
	DaggerVersion string
	// Byproducts: binaries and SBOMs per platform.
	Byproducts []Artifact
	// GitLab CI's variables, when the build runs there.
	GitLab GitLab
}

// Descriptor is an in-toto ResourceDescriptor.
type Descriptor struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	Annotations map[string]any    `json:"annotations,omitempty"`
}

// Statement is an in-toto v1 statement with a SLSA v1 predicate.
type Statement struct {
	Type          string       `json:"_type"`
	Subject       []Descriptor `json:"subject"`
	PredicateType string       `json:"predicateType"`
	Predicate     Predicate    `json:"predicate"`
}

// Predicate is the SLSA provenance v1 predicate.
type Predicate struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition is what was built and how.
type BuildDefinition struct {
	BuildType            string         `json:"buildType"`
	ExternalParameters   map[string]any `json:"externalParameters"`
	InternalParameters   map[string]any `json:"internalParameters,omitempty"`
	ResolvedDependencies []Descriptor   `json:"resolvedDependencies,omitempty"`
}

// RunDetails is who built it and when.
type RunDetails struct {
	Builder    Builder      `json:"builder"`
	Metadata   *Metadata    `json:"metadata,omitempty"`
	Byproducts []Descriptor `json:"byproducts,omitempty"`
}

// Builder identifies the build platform.
type Builder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

// Metadata describes the invocation.
type Metadata struct {
	InvocationID string `json:"invocationId,omitempty"`
	StartedOn    string `json:"startedOn,omitempty"`
}

var (
	hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)
	commitRE  = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)
)

// New builds the statement. It fails, naming the problem, when the image
// has no digest, the commit is not a full SHA or a byproduct hash is bad.
func New(o Options) (*Statement, error) {
	img, err := imageref.ParseDigest(o.Image)
	if err != nil {
		return nil, fmt.Errorf("provenance subject: %w", err)
	}
	commit := o.Commit
	if o.GitLab.CommitSHA != "" {
		if commit != "" && commit != o.GitLab.CommitSHA {
			return nil, fmt.Errorf("commit %q differs from CI_COMMIT_SHA %q: build the commit the pipeline runs for", commit, o.GitLab.CommitSHA)
		}
		commit = o.GitLab.CommitSHA
	}
	if !commitRE.MatchString(commit) {
		return nil, fmt.Errorf("commit %q is not a full lowercase commit SHA: pass $CI_COMMIT_SHA or $(git rev-parse HEAD)", commit)
	}
	if len(o.Platforms) == 0 {
		return nil, fmt.Errorf("no platforms given")
	}
	source := o.SourceURL
	if o.GitLab.ProjectURL != "" {
		source = o.GitLab.ProjectURL
	}
	if source != "" {
		if u, err := url.Parse(source); err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("source URL %q is not an absolute URL: pass e.g. $CI_PROJECT_URL", source)
		}
	}

	ext := map[string]any{
		"platforms": append([]string(nil), o.Platforms...),
		"version":   o.Version,
		"package":   o.Package,
	}
	if source != "" {
		src := map[string]any{"repository": source, "commit": commit}
		if o.GitLab.CommitRefName != "" {
			src["ref"] = o.GitLab.CommitRefName
		}
		ext["source"] = src
	} else {
		ext["source"] = map[string]any{"commit": commit}
	}
	internal := map[string]any{}
	if !o.CommitTime.IsZero() {
		internal["commitTime"] = o.CommitTime.UTC().Format(time.RFC3339)
	}
	if o.GoImage != "" {
		internal["goImage"] = o.GoImage
	}
	if o.BaseImage != "" {
		internal["baseImage"] = o.BaseImage
	}
	if o.GitLab.PipelineURL != "" {
		internal["pipelineUrl"] = o.GitLab.PipelineURL
	}
	if o.GitLab.RunnerID != "" {
		internal["runnerId"] = o.GitLab.RunnerID
	}
	if len(internal) == 0 {
		internal = nil
	}

	var deps []Descriptor
	if source != "" {
		deps = append(deps, Descriptor{URI: "git+" + strings.TrimSuffix(source, "/") + "@" + commit, Digest: map[string]string{"gitCommit": commit}})
	} else {
		deps = append(deps, Descriptor{Name: "source", Digest: map[string]string{"gitCommit": commit}})
	}
	for _, im := range []struct{ name, ref string }{{"goImage", o.GoImage}, {"baseImage", o.BaseImage}} {
		if im.ref == "" {
			continue
		}
		d, err := imageref.ParseDigest(im.ref)
		if err != nil {
			return nil, fmt.Errorf("provenance dependency %s: %w", im.name, err)
		}
		deps = append(deps, Descriptor{Name: im.name, URI: "pkg:docker/" + d.String(), Digest: map[string]string{"sha256": strings.TrimPrefix(d.Digest, "sha256:")}})
	}

	var byproducts []Descriptor
	bp := append([]Artifact(nil), o.Byproducts...)
	sort.Slice(bp, func(i, j int) bool { return bp[i].Name < bp[j].Name })
	for _, a := range bp {
		if a.Name == "" || !hexSHA256.MatchString(a.SHA256) {
			return nil, fmt.Errorf("byproduct %q: need a name and a hex SHA-256, got %q", a.Name, a.SHA256)
		}
		byproducts = append(byproducts, Descriptor{Name: a.Name, Digest: map[string]string{"sha256": a.SHA256}})
	}

	builder := Builder{ID: LocalBuilderID, Version: map[string]string{}}
	if source != "" && o.ModuleVersion != "" {
		builder.ID = strings.TrimSuffix(source, "/") + "/-/tree/" + o.ModuleVersion + "/ci"
	}
	if o.ModuleVersion != "" {
		builder.Version["dagger/voice"] = o.ModuleVersion
	}
	if o.DaggerVersion != "" {
		builder.Version["dagger.io/dagger"] = o.DaggerVersion
	}
	if len(builder.Version) == 0 {
		builder.Version = nil
	}

	var meta *Metadata
	if o.GitLab.JobURL != "" || o.GitLab.JobID != "" || o.GitLab.JobStartedAt != "" {
		meta = &Metadata{InvocationID: o.GitLab.JobURL}
		if meta.InvocationID == "" && o.GitLab.JobID != "" {
			meta.InvocationID = o.GitLab.JobID
		}
		if o.GitLab.JobStartedAt != "" {
			t, err := time.Parse(time.RFC3339, o.GitLab.JobStartedAt)
			if err != nil {
				return nil, fmt.Errorf("CI_JOB_STARTED_AT %q is not RFC 3339: %w", o.GitLab.JobStartedAt, err)
			}
			meta.StartedOn = t.UTC().Format(time.RFC3339)
		}
	}

	return &Statement{
		Type: StatementType,
		Subject: []Descriptor{{
			Name:   img.Repository,
			Digest: map[string]string{"sha256": strings.TrimPrefix(img.Digest, "sha256:")},
		}},
		PredicateType: PredicateType,
		Predicate: Predicate{
			BuildDefinition: BuildDefinition{
				BuildType:            BuildType,
				ExternalParameters:   ext,
				InternalParameters:   internal,
				ResolvedDependencies: deps,
			},
			RunDetails: RunDetails{Builder: builder, Metadata: meta, Byproducts: byproducts},
		},
	}, nil
}

// JSON encodes the whole statement (indented, stable key order).
func (s *Statement) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode provenance statement: %w", err)
	}
	return b, nil
}

// PredicateOf returns the predicate cosign attests from either a whole
// statement (as Build.Provenance writes) or a bare SLSA predicate.
func PredicateOf(doc []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("provenance is not a JSON object: %w", err)
	}
	if raw, ok := m["predicate"]; ok {
		var typ string
		if err := json.Unmarshal(m["predicateType"], &typ); err != nil || typ != PredicateType {
			return nil, fmt.Errorf("provenance statement has predicateType %q, want %s", typ, PredicateType)
		}
		return raw, nil
	}
	if _, ok := m["buildDefinition"]; !ok {
		return nil, fmt.Errorf("provenance has neither a predicate nor a buildDefinition: pass the file `build provenance` writes")
	}
	return doc, nil
}
