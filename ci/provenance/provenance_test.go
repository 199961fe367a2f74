package provenance

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	slsa1 "github.com/in-toto/attestation/go/predicates/provenance/v1"
	ita1 "github.com/in-toto/attestation/go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	commit    = "0123456789abcdef0123456789abcdef01234567"
	digestHex = "ab23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	binHex    = "cd23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	goImage   = "golang:1.26.8-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d"
	baseImage = "gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639"
)

func options() Options {
	return Options{
		Image:         "registry.gitlab.com/acme/voice-agent:1.4.2@sha256:" + digestHex,
		Platforms:     []string{"linux/amd64", "linux/arm64"},
		Version:       "1.4.2",
		Commit:        commit,
		Package:       "./agent/cmd/voice-agent",
		CommitTime:    time.Date(2026, 11, 26, 13, 8, 22, 0, time.UTC),
		GoImage:       goImage,
		BaseImage:     baseImage,
		ModuleVersion: commit,
		DaggerVersion: "v0.21.8",
		Byproducts:    []Artifact{{Name: "linux-arm64/voice-agent", SHA256: binHex}, {Name: "linux-amd64/voice-agent", SHA256: binHex}},
		GitLab: GitLab{
			ServerURL: "https://gitlab.com", ProjectURL: "https://gitlab.com/acme/voice-agent", CommitSHA: commit,
			CommitRefName: "main", PipelineURL: "https://gitlab.com/acme/voice-agent/-/pipelines/42",
			JobURL: "https://gitlab.com/acme/voice-agent/-/jobs/4242", JobID: "4242", RunnerID: "7",
			JobStartedAt: "2026-11-26T14:00:00+01:00",
		},
	}
}

// validate parses the documents with the official in-toto Go types and
// runs their validators.
func validate(t *testing.T, st *Statement) (*ita1.Statement, *slsa1.Provenance) {
	t.Helper()
	doc, err := st.JSON()
	require.NoError(t, err)
	var s ita1.Statement
	require.NoError(t, protojson.Unmarshal(doc, &s))
	require.NoError(t, s.Validate())

	pred, err := PredicateOf(doc)
	require.NoError(t, err)
	var p slsa1.Provenance
	require.NoError(t, protojson.Unmarshal(pred, &p), "predicate must match the SLSA v1 schema (unknown fields are errors)")
	require.NoError(t, p.Validate())
	return &s, &p
}

func TestNewFromGitLab(t *testing.T) {
	st, err := New(options())
	require.NoError(t, err)
	s, p := validate(t, st)

	assert.Equal(t, PredicateType, s.GetPredicateType())
	require.Len(t, s.GetSubject(), 1)
	assert.Equal(t, "registry.gitlab.com/acme/voice-agent", s.GetSubject()[0].GetName())
	assert.Equal(t, map[string]string{"sha256": digestHex}, s.GetSubject()[0].GetDigest())

	bd := p.GetBuildDefinition()
	assert.Equal(t, BuildType, bd.GetBuildType())
	src := bd.GetExternalParameters().AsMap()["source"].(map[string]any)
	assert.Equal(t, "https://gitlab.com/acme/voice-agent", src["repository"])
	assert.Equal(t, commit, src["commit"], "the provenance names the commit")
	assert.Equal(t, "main", src["ref"])
	assert.Equal(t, []any{"linux/amd64", "linux/arm64"}, bd.GetExternalParameters().AsMap()["platforms"])
	assert.Equal(t, "https://gitlab.com/acme/voice-agent/-/pipelines/42", bd.GetInternalParameters().AsMap()["pipelineUrl"])

	deps := bd.GetResolvedDependencies()
	require.Len(t, deps, 3)
	assert.Equal(t, "git+https://gitlab.com/acme/voice-agent@"+commit, deps[0].GetUri())
	assert.Equal(t, commit, deps[0].GetDigest()["gitCommit"])
	assert.Equal(t, "d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639", deps[2].GetDigest()["sha256"])

	rd := p.GetRunDetails()
	assert.Equal(t, "https://gitlab.com/acme/voice-agent/-/tree/"+commit+"/ci", rd.GetBuilder().GetId())
	assert.Equal(t, "v0.21.8", rd.GetBuilder().GetVersion()["dagger.io/dagger"])
	assert.Equal(t, "https://gitlab.com/acme/voice-agent/-/jobs/4242", rd.GetMetadata().GetInvocationId())
	assert.Equal(t, "2026-11-26T13:00:00Z", rd.GetMetadata().GetStartedOn().AsTime().Format(time.RFC3339))
	require.Len(t, rd.GetByproducts(), 2)
	assert.Equal(t, "linux-amd64/voice-agent", rd.GetByproducts()[0].GetName(), "sorted")
	assert.Equal(t, binHex, rd.GetByproducts()[0].GetDigest()["sha256"])

	// Same input, same bytes.
	a, _ := st.JSON()
	st2, err := New(options())
	require.NoError(t, err)
	b, _ := st2.JSON()
	assert.Equal(t, string(a), string(b))
}

func TestNewLocal(t *testing.T) {
	o := options()
	o.GitLab = GitLab{}
	o.SourceURL = ""
	st, err := New(o)
	require.NoError(t, err)
	_, p := validate(t, st)
	assert.Equal(t, LocalBuilderID, p.GetRunDetails().GetBuilder().GetId())
	assert.Nil(t, p.GetRunDetails().GetMetadata())
	assert.Equal(t, commit, p.GetBuildDefinition().GetResolvedDependencies()[0].GetDigest()["gitCommit"])
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Options)
		wantErr string
	}{
		{"image by tag", func(o *Options) { o.Image = "registry.gitlab.com/acme/voice-agent:1.4.2" }, "has no digest"},
		{"short commit", func(o *Options) { o.GitLab.CommitSHA = ""; o.Commit = "0123456" }, "full lowercase commit"},
		{"commit mismatch", func(o *Options) { o.Commit = strings.Repeat("f", 40) }, "differs from CI_COMMIT_SHA"},
		{"no platforms", func(o *Options) { o.Platforms = nil }, "no platforms"},
		{"relative source", func(o *Options) { o.GitLab.ProjectURL = "acme/voice" }, "absolute URL"},
		{"base by tag", func(o *Options) { o.BaseImage = "gcr.io/distroless/static-debian12:nonroot" }, "baseImage"},
		{"bad byproduct", func(o *Options) { o.Byproducts = []Artifact{{Name: "x", SHA256: "h1:abc"}} }, "byproduct"},
		{"bad start", func(o *Options) { o.GitLab.JobStartedAt = "yesterday" }, "CI_JOB_STARTED_AT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := options()
			tt.mod(&o)
			_, err := New(o)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestPredicateOf(t *testing.T) {
	st, err := New(options())
	require.NoError(t, err)
	whole, err := st.JSON()
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(whole, &m))
	pred := []byte(m["predicate"])
	got, err := PredicateOf(whole)
	require.NoError(t, err)
	assert.JSONEq(t, string(pred), string(got), "the predicate of the statement")
	got, err = PredicateOf(pred)
	require.NoError(t, err)
	assert.JSONEq(t, string(pred), string(got))
	_, err = PredicateOf([]byte(`{"predicateType":"https://example.com/x","predicate":{}}`))
	require.ErrorContains(t, err, "predicateType")
	_, err = PredicateOf([]byte(`{"a":1}`))
	require.ErrorContains(t, err, "neither")
	_, err = PredicateOf([]byte(`[]`))
	require.ErrorContains(t, err, "not a JSON object")
}
