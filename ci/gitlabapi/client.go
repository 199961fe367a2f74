// Package gitlabapi is the small part of GitLab's REST API (v4) the pipeline
// uses: one project, a token in the PRIVATE-TOKEN header, JSON in and out,
// and errors that say what to fix. The token never appears in an error.
package gitlabapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to one project of a GitLab instance.
type Client struct {
	// API is the REST API root, e.g. https://gitlab.com/api/v4 ($CI_API_V4_URL).
	API string
	// Project is the numeric ID or the full path ("acme/deploy").
	Project string
	// Token is sent as PRIVATE-TOKEN (a personal, project or group access token).
	Token string
	// HTTP is the client used; default one with a 30 s timeout.
	HTTP *http.Client
}

// New checks the settings and returns a client.
func New(api, project, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(api)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("GitLab API URL %q is not an http(s) URL: pass e.g. https://gitlab.com/api/v4 ($CI_API_V4_URL)", api)
	}
	if project == "" {
		return nil, errors.New("GitLab project is empty: pass its numeric ID ($CI_PROJECT_ID) or its path (acme/deploy)")
	}
	if token == "" {
		return nil, errors.New("GitLab API token is empty: pass a token with the api scope")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{API: strings.TrimRight(api, "/"), Project: project, Token: token, HTTP: hc}, nil
}

// Do sends one request to a path under the project (e.g. "/merge_requests")
// and decodes the JSON answer into out (when not nil).
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := c.API + "/projects/" + url.PathEscape(c.Project) + path
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
	req.Header.Set("PRIVATE-TOKEN", c.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("GitLab API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
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
			hint = fmt.Sprintf(": the token needs the api scope and a role on project %s that allows this", c.Project)
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
