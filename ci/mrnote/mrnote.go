// Package mrnote keeps one note (comment) of the pipeline on a GitLab merge
// request up to date: the first run posts it, later runs edit it in place,
// found by a hidden marker, so a pipeline that runs ten times leaves one
// comment with the latest eval summary instead of ten.
package mrnote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"dagger/voice/gitlabapi"
)

// MaxBody is the longest body posted. GitLab refuses notes over 1,000,000
// characters; a longer summary is cut with a pointer to the job artifacts.
const MaxBody = 200_000

// perPage is the page size when looking for an earlier note.
const perPage = 100

// maxPages bounds the search for an earlier note (10,000 notes).
const maxPages = 100

var markerRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Options of Upsert.
type Options struct {
	// Client of the merge request's project.
	Client *gitlabapi.Client
	// MR is the merge request's IID ($CI_MERGE_REQUEST_IID).
	MR int
	// Marker names the note, e.g. "eval": one note per marker and merge
	// request. Lower-case letters, digits, '.', '_' and '-'.
	Marker string
	// Body is the Markdown to post.
	Body string
}

// Result says what Upsert did.
type Result struct {
	NoteID int
	// Action is "created", "updated" or "unchanged".
	Action string
}

type note struct {
	ID     int    `json:"id"`
	Body   string `json:"body"`
	System bool   `json:"system"`
}

// Tag is the hidden first line that marks a note as the pipeline's.
func Tag(marker string) string { return "<!-- voice-pipeline:" + marker + " -->" }

// Upsert creates the note, or edits the earlier one with the same marker.
func Upsert(ctx context.Context, o Options) (Result, error) {
	if o.Client == nil {
		return Result{}, errors.New("mrnote: no GitLab client")
	}
	if o.MR <= 0 {
		return Result{}, fmt.Errorf("mrnote: merge request IID %d is not positive: pass $CI_MERGE_REQUEST_IID (set in merge-request pipelines only)", o.MR)
	}
	if !markerRE.MatchString(o.Marker) {
		return Result{}, fmt.Errorf("mrnote: marker %q must be 1-64 lower-case letters, digits, '.', '_' or '-', e.g. eval", o.Marker)
	}
	if strings.TrimSpace(o.Body) == "" {
		return Result{}, errors.New("mrnote: the body is empty: pass the Markdown summary (e.g. reports/eval/summary.md)")
	}
	body := Tag(o.Marker) + "\n" + truncate(o.Body)
	base := "/merge_requests/" + strconv.Itoa(o.MR) + "/notes"

	old, err := find(ctx, o.Client, base, Tag(o.Marker))
	if err != nil {
		return Result{}, err
	}
	if old != nil {
		if old.Body == body {
			return Result{NoteID: old.ID, Action: "unchanged"}, nil
		}
		var n note
		if err := o.Client.Do(ctx, http.MethodPut, base+"/"+strconv.Itoa(old.ID), nil, map[string]string{"body": body}, &n); err != nil {
			return Result{}, fmt.Errorf("mrnote: update note %d on !%d: %w", old.ID, o.MR, err)
		}
		return Result{NoteID: n.ID, Action: "updated"}, nil
	}
	var n note
	if err := o.Client.Do(ctx, http.MethodPost, base, nil, map[string]string{"body": body}, &n); err != nil {
		return Result{}, fmt.Errorf("mrnote: comment on !%d: %w", o.MR, err)
	}
	return Result{NoteID: n.ID, Action: "created"}, nil
}

// find returns the oldest user note that starts with tag, or nil.
func find(ctx context.Context, c *gitlabapi.Client, base, tag string) (*note, error) {
	for page := 1; page <= maxPages; page++ {
		q := url.Values{
			"sort": {"asc"}, "order_by": {"created_at"},
			"per_page": {strconv.Itoa(perPage)}, "page": {strconv.Itoa(page)},
		}
		var notes []note
		if err := c.Do(ctx, http.MethodGet, base, q, nil, &notes); err != nil {
			return nil, fmt.Errorf("mrnote: list notes: %w", err)
		}
		for i := range notes {
			if !notes[i].System && strings.HasPrefix(notes[i].Body, tag) {
				return &notes[i], nil
			}
		}
		if len(notes) < perPage {
			return nil, nil
		}
	}
	return nil, nil
}

func truncate(s string) string {
	if len(s) <= MaxBody {
		return s
	}
	// Only the cut can break a character: drop its partial bytes.
	cut := strings.ToValidUTF8(s[:MaxBody], "")
	return cut + "\n\n… (cut at " + strconv.Itoa(MaxBody) + " bytes: the full summary is in the job's artifacts)\n"
}
