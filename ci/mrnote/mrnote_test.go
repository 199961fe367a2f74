package mrnote

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dagger/voice/gitlabapi"
)

const token = "glpat-NOTE-TOKEN-DO-NOT-PRINT"

// notesAPI serves GitLab's merge-request notes endpoints for project 42,
// MR 7: list (paginated with page/per_page, sorted as asked), create, edit.
type notesAPI struct {
	mu       sync.Mutex
	notes    []note
	requests []string
}

func (f *notesAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	if r.Header.Get("PRIVATE-TOKEN") != token {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"401 Unauthorized"}`))
		return
	}
	const base = "/api/v4/projects/42/merge_requests/7/notes"
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == base:
		q := r.URL.Query()
		if q.Get("sort") != "asc" || q.Get("order_by") != "created_at" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		page, _ := strconv.Atoi(q.Get("page"))
		per, _ := strconv.Atoi(q.Get("per_page"))
		lo, hi := (page-1)*per, page*per
		lo, hi = min(lo, len(f.notes)), min(hi, len(f.notes))
		_ = json.NewEncoder(w).Encode(f.notes[lo:hi])
	case r.Method == http.MethodPost && r.URL.Path == base:
		var in map[string]string
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in["body"] == "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"body is missing"}`))
			return
		}
		n := note{ID: 1000 + len(f.notes), Body: in["body"]}
		f.notes = append(f.notes, n)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(n)
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, base+"/"):
		id, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, base+"/"))
		var in map[string]string
		_ = json.NewDecoder(r.Body).Decode(&in)
		for i := range f.notes {
			if f.notes[i].ID == id && !f.notes[i].System {
				f.notes[i].Body = in["body"]
				_ = json.NewEncoder(w).Encode(f.notes[i])
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"404 Not found"}`))
	}
}

func setup(t *testing.T, existing ...note) (*notesAPI, *gitlabapi.Client) {
	t.Helper()
	api := &notesAPI{notes: existing}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	c, err := gitlabapi.New(srv.URL+"/api/v4", "42", token, nil)
	require.NoError(t, err)
	return api, c
}

func TestCreatesThenUpdatesOneNote(t *testing.T) {
	api, c := setup(t, note{ID: 1, Body: "LGTM"}, note{ID: 2, Body: "added 1 commit", System: true})
	ctx := context.Background()

	r, err := Upsert(ctx, Options{Client: c, MR: 7, Marker: "eval", Body: "score 0.95"})
	require.NoError(t, err)
	assert.Equal(t, "created", r.Action)
	r2, err := Upsert(ctx, Options{Client: c, MR: 7, Marker: "eval", Body: "score 0.97"})
	require.NoError(t, err)
	assert.Equal(t, "updated", r2.Action)
	assert.Equal(t, r.NoteID, r2.NoteID)
	r3, err := Upsert(ctx, Options{Client: c, MR: 7, Marker: "eval", Body: "score 0.97"})
	require.NoError(t, err)
	assert.Equal(t, Result{NoteID: r.NoteID, Action: "unchanged"}, r3)

	// Another marker is another note; the reviewer's note is untouched.
	r4, err := Upsert(ctx, Options{Client: c, MR: 7, Marker: "build", Body: "image ok"})
	require.NoError(t, err)
	assert.Equal(t, "created", r4.Action)
	require.Len(t, api.notes, 4)
	assert.Equal(t, "LGTM", api.notes[0].Body)
	assert.Equal(t, Tag("eval")+"\nscore 0.97", api.notes[2].Body)
	assert.Equal(t, Tag("build")+"\nimage ok", api.notes[3].Body)
}

// The pipeline's note is found past the first page of a long discussion.
func TestFindsTheNoteOnALaterPage(t *testing.T) {
	var existing []note
	for i := range 250 {
		existing = append(existing, note{ID: i + 1, Body: fmt.Sprintf("comment %d", i)})
	}
	existing[180].Body = Tag("eval") + "\nold summary"
	api, c := setup(t, existing...)
	r, err := Upsert(context.Background(), Options{Client: c, MR: 7, Marker: "eval", Body: "new summary"})
	require.NoError(t, err)
	assert.Equal(t, Result{NoteID: 181, Action: "updated"}, r)
	assert.Len(t, api.notes, 250, "no second note")
	assert.Equal(t, Tag("eval")+"\nnew summary", api.notes[180].Body)
}

func TestLongBodyIsCutOnACharacter(t *testing.T) {
	api, c := setup(t)
	body := strings.Repeat("é", MaxBody) // 2 bytes each: the cut falls inside one
	_, err := Upsert(context.Background(), Options{Client: c, MR: 7, Marker: "eval", Body: body})
	require.NoError(t, err)
	got := api.notes[0].Body
	assert.True(t, utf8.ValidString(got))
	assert.Less(t, len(got), MaxBody+200)
	assert.Contains(t, got, "the full summary is in the job's artifacts")
}

func TestBadInputAndAPIErrors(t *testing.T) {
	api, c := setup(t)
	ctx := context.Background()
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Client: c, MR: 0, Marker: "eval", Body: "x"}, "CI_MERGE_REQUEST_IID"},
		{Options{Client: c, MR: 7, Marker: "Eval Report", Body: "x"}, "marker"},
		{Options{Client: c, MR: 7, Marker: "eval", Body: " \n"}, "body is empty"},
		{Options{MR: 7, Marker: "eval", Body: "x"}, "no GitLab client"},
	} {
		_, err := Upsert(ctx, tc.o)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
	assert.Empty(t, api.requests, "bad input is refused before any request")

	c.Token = "wrong"
	_, err := Upsert(ctx, Options{Client: c, MR: 7, Marker: "eval", Body: "x"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 401")
	assert.NotContains(t, err.Error(), token)
	assert.Empty(t, api.notes)

	c.Token = token
	_, err = Upsert(ctx, Options{Client: c, MR: 8, Marker: "eval", Body: "x"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 404")
}
