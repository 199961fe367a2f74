package gitops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
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

type gitlabClient struct {
	api, project, token string
	hc                  *http.Client
}

func newGitLabClient(repoURL string, o MergeRequestOptions, fallbackToken string) (*gitlabClient, error) {
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
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &gitlabClient{api: strings.TrimRight(api, "/"), project: project, token: token, hc: hc}, nil
}

// do sends one API request and decodes the JSON answer into out.
func (c *gitlabClient) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := c.api + "/projects/" + url.PathEscape(c.project) + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("PRIVATE-TOKEN", c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("GitLab API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("GitLab API %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Message any    `json:"message"`
			Error   string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		detail := e.Error
		if e.Message != nil {
			detail = fmt.Sprint(e.Message)
		}
		hint := ""
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			hint = ": the token needs the api scope and Developer role on the deploy project"
		case http.StatusNotFound:
			hint = ": check the project ID/path (or the token cannot see it)"
		}
		return fmt.Errorf("GitLab API %s %s: HTTP %d %s%s", method, path, resp.StatusCode, detail, hint)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("GitLab API %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// ensureMergeRequest opens a merge request from source into target, or
// updates the title and description of the open one.
func (c *gitlabClient) ensureMergeRequest(ctx context.Context, source, target, title, description string) (MergeRequest, error) {
	var open []MergeRequest
	q := url.Values{"source_branch": {source}, "target_branch": {target}, "state": {"opened"}}
	if err := c.do(ctx, http.MethodGet, "/merge_requests", q, nil, &open); err != nil {
		return MergeRequest{}, err
	}
	fields := map[string]any{"title": title, "description": description}
	if len(open) > 0 {
		var mr MergeRequest
		err := c.do(ctx, http.MethodPut, "/merge_requests/"+strconv.Itoa(open[0].IID), nil, fields, &mr)
		return mr, err
	}
	fields["source_branch"] = source
	fields["target_branch"] = target
	fields["remove_source_branch"] = true
	var mr MergeRequest
	err := c.do(ctx, http.MethodPost, "/merge_requests", nil, fields, &mr)
	mr.Created = err == nil
	return mr, err
}
