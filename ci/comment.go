package main

import (
	"context"
	"fmt"
	"strings"

	"dagger/voice/gitlabapi"
	"dagger/voice/internal/dagger"
	"dagger/voice/mrnote"
)

// Comment posts a Markdown file as a note on a GitLab merge request, or
// edits the note it posted before (one note per --marker and merge
// request), so pipeline reruns never stack comments. The eval job uses it
// for the eval summary, after exporting its reports:
//
//	dagger call comment --mr=$CI_MERGE_REQUEST_IID --project=$CI_PROJECT_ID --api=$CI_API_V4_URL --body=reports/eval/summary.md --token=env://GITLAB_NOTE_TOKEN
//
// +cache="never"
func (m *Voice) Comment(
	ctx context.Context,
	// Merge request IID, e.g. $CI_MERGE_REQUEST_IID.
	mr int,
	// Markdown to post, e.g. reports/eval/summary.md.
	body *dagger.File,
	// Token that may comment on the project (api scope; a project access
	// token with the Reporter role is enough), e.g. env://GITLAB_NOTE_TOKEN.
	token *dagger.Secret,
	// Project ID or full path, e.g. $CI_PROJECT_ID.
	project string,
	// GitLab API root, e.g. $CI_API_V4_URL.
	//
	// +optional
	// +default="https://gitlab.com/api/v4"
	api string,
	// Names the note: one note per marker and merge request.
	//
	// +optional
	// +default="eval"
	marker string,
) (string, error) {
	text, err := body.Contents(ctx)
	if err != nil {
		return "", fmt.Errorf("read the comment body: %w", err)
	}
	tok, err := token.Plaintext(ctx)
	if err != nil {
		return "", fmt.Errorf("read the GitLab token secret: %w", err)
	}
	client, err := gitlabapi.New(api, project, strings.TrimSpace(tok), nil)
	if err != nil {
		return "", err
	}
	res, err := mrnote.Upsert(ctx, mrnote.Options{Client: client, MR: mr, Marker: marker, Body: text})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s note %d on !%d", res.Action, res.NoteID, mr), nil
}
