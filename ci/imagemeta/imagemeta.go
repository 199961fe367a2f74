// Package imagemeta computes the metadata of the agent image from the
// source: the commit time used for every timestamp (never the clock) and
// the OCI annotation labels.
package imagemeta

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// OCI label keys (https://github.com/opencontainers/image-spec/blob/main/annotations.md).
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelVersion  = "org.opencontainers.image.version"
	LabelCreated  = "org.opencontainers.image.created"
	LabelTitle    = "org.opencontainers.image.title"
	// LabelBaseName and LabelBaseDigest name the base image, so that the
	// SBOM can be rebuilt from the published image alone.
	LabelBaseName   = "org.opencontainers.image.base.name"
	LabelBaseDigest = "org.opencontainers.image.base.digest"
)

// ParseCommitTime parses the commit time as RFC 3339 (`git log -1
// --format=%cI`, GitLab's $CI_COMMIT_TIMESTAMP) or as Unix seconds (`git
// log -1 --format=%ct`, $SOURCE_DATE_EPOCH). The result is in UTC.
func ParseCommitTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("commit time is empty: pass $CI_COMMIT_TIMESTAMP or $(git log -1 --format=%%cI)")
	}
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
		if secs < 0 || secs > 253402300799 {
			return time.Time{}, fmt.Errorf("commit time %q is out of range: pass Unix seconds after 1970", s)
		}
		return time.Unix(secs, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("commit time %q is neither RFC 3339 (2026-11-26T14:08:22+01:00) nor Unix seconds: pass $CI_COMMIT_TIMESTAMP or $(git log -1 --format=%%cI)", s)
	}
	if t.Year() < 1970 {
		return time.Time{}, fmt.Errorf("commit time %q is before 1970", s)
	}
	return t.UTC().Truncate(time.Second), nil
}

// Meta is what the labels are computed from.
type Meta struct {
	// Title is the image title, e.g. "voice-agent".
	Title string
	// Source is the repository URL, e.g. $CI_PROJECT_URL.
	Source string
	// Revision is the commit SHA.
	Revision string
	// Version is the version stamped into the binary.
	Version string
	// Created is the commit time.
	Created time.Time
	// BaseName ("repo:tag") and BaseDigest ("sha256:...") of the base image.
	BaseName, BaseDigest string
}

// Label is one image label.
type Label struct{ Name, Value string }

// Labels returns the OCI labels in a fixed order (so the image config is
// the same on every run). Empty values are left out.
func Labels(m Meta) []Label {
	all := []Label{
		{LabelTitle, m.Title},
		{LabelSource, m.Source},
		{LabelRevision, m.Revision},
		{LabelVersion, m.Version},
		{LabelBaseName, m.BaseName},
		{LabelBaseDigest, m.BaseDigest},
	}
	if !m.Created.IsZero() {
		all = append(all, Label{LabelCreated, m.Created.UTC().Format(time.RFC3339)})
	}
	out := all[:0]
	for _, l := range all {
		if l.Value != "" {
			out = append(out, l)
		}
	}
	return out
}
