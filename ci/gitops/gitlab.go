package gitops

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"

	"dagger/voice/gitlabapi"
)

// MergeRequestOptions switches Bump to merge-request mode: the change goes
// to a branch "bump/<image>-<short digest>" and a GitLab merge request into
// the base branch is opened (or updated).
type MergeRequestOptions struct {
	// APIURL is the GitLab REST API root. Default: https://<host of the
	// repository URL>/api/v4.
	APIURL string
	// Project is the numeric ID or the full path ("acme/deploy") of the
	// deploy project. Default: the path of the repository URL.
	Project string
	// Token for the API (PRIVATE-TOKEN header). Default: Repo.Auth.Token.
	Token string
	// Title of the merge request. Default: the commit subject.
	Title string
	// HTTPClient default http.DefaultClient with a 30s timeout.
	HTTPClient *http.Client
}

// MergeRequest is the merge request Bump opened or updated.
type MergeRequest struct {
	IID     int    `json:"iid"`
	WebURL  string `json:"web_url"`
	Created bool   `json:"-"`
}

func newGitLabClient(repoURL string, o MergeRequestOptions, fallbackToken string) (*gitlabapi.Client, error) {
	ep, err := transport.NewEndpoint(repoURL)
	if err != nil {
		return nil, fmt.Errorf("invalid deploy repository URL %q: %w", repoURL, err)
	}
	api := o.APIURL
	if api == "" {
		if ep.Host == "" {
			return nil, fmt.Errorf("cannot derive the GitLab API URL from %s: pass it", repoURL)
		}
		host := ep.Host
		if ep.Protocol != "ssh" && ep.Port != 0 && ep.Port != 443 && ep.Port != 80 {
			host += ":" + strconv.Itoa(ep.Port)
		}
		scheme := "https"
		if ep.Protocol == "http" {
			scheme = "http"
		}
		api = scheme + "://" + host + "/api/v4"
	}
	project := o.Project
	if project == "" {
		project = strings.TrimSuffix(strings.Trim(ep.Path, "/"), ".git")
	}
	if project == "" {
		return nil, fmt.Errorf("cannot derive the GitLab project from %s: pass it", repoURL)
	}
	token := o.Token
	if token == "" {
		token = fallbackToken
	}
	if token == "" {
		return nil, fmt.Errorf("merge-request mode needs a GitLab API token (scope api)")
	}
	return gitlabapi.New(api, project, token, o.HTTPClient)
}

// ensureMergeRequest opens a merge request from source into target, or
// updates the title and description of the open one.
func ensureMergeRequest(ctx context.Context, c *gitlabapi.Client, source, target, title, description string) (MergeRequest, error) {
	var open []MergeRequest
	q := url.Values{"source_branch": {source}, "target_branch": {target}, "state": {"opened"}}
	if err := c.Do(ctx, http.MethodGet, "/merge_requests", q, nil, &open); err != nil {
		return MergeRequest{}, err
	}
	fields := map[string]any{"title": title, "description": description}
	if len(open) > 0 {
		var mr MergeRequest
		err := c.Do(ctx, http.MethodPut, "/merge_requests/"+strconv.Itoa(open[0].IID), nil, fields, &mr)
		return mr, err
	}
	fields["source_branch"] = source
	fields["target_branch"] = target
	fields["remove_source_branch"] = true
	var mr MergeRequest
	err := c.Do(ctx, http.MethodPost, "/merge_requests", nil, fields, &mr)
	mr.Created = err == nil
	return mr, err
}
