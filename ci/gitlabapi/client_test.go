package gitlabapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const token = "glpat-SECRET-DO-NOT-PRINT"

func TestNewRefusesBadSettings(t *testing.T) {
	for _, tc := range []struct{ api, project, token, want string }{
		{"gitlab.com/api/v4", "1", token, "is not an http(s) URL"},
		{"https://gitlab.com/api/v4", "", token, "project is empty"},
		{"https://gitlab.com/api/v4", "1", "", "token is empty"},
	} {
		_, err := New(tc.api, tc.project, tc.token, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
}

func TestDo(t *testing.T) {
	var got *http.Request
	var gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b := make([]byte, r.ContentLength)
		_, _ = r.Body.Read(b)
		gotBody = string(b)
		switch r.Header.Get("PRIVATE-TOKEN") {
		case token:
		default:
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"message":"401 Unauthorized"}`))
			return
		}
		if r.URL.EscapedPath() != "/api/v4/projects/acme%2Fdeploy/merge_requests" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"404 Project Not Found"}`))
			return
		}
		_, _ = w.Write([]byte(`{"iid": 7}`))
	}))
	defer srv.Close()

	c, err := New(srv.URL+"/api/v4/", "acme/deploy", token, nil)
	require.NoError(t, err)
	var out struct{ IID int }
	require.NoError(t, c.Do(context.Background(), http.MethodPost, "/merge_requests", url.Values{"a": {"b"}}, map[string]string{"title": "t"}, &out))
	assert.Equal(t, 7, out.IID)
	assert.Equal(t, "b", got.URL.Query().Get("a"))
	assert.Equal(t, "application/json", got.Header.Get("Content-Type"))
	assert.JSONEq(t, `{"title":"t"}`, gotBody)

	err = c.Do(context.Background(), http.MethodGet, "/nope", nil, nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 404 404 Project Not Found: check the project ID/path")

	c.Token = "wrong"
	err = c.Do(context.Background(), http.MethodGet, "/merge_requests", nil, nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 401")
	assert.Contains(t, err.Error(), "api scope")
	assert.NotContains(t, err.Error(), token)
}
