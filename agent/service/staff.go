package service

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// staffAuth checks the bearer token of the staff endpoints. Tokens are
// compared as SHA-256 digests in constant time, so neither the content nor
// the length of the configured token leaks through timing.
type staffAuth struct {
	digest [sha256.Size]byte
	set    bool
}

func newStaffAuth(token string) staffAuth {
	if token == "" {
		return staffAuth{}
	}
	return staffAuth{digest: sha256.Sum256([]byte(token)), set: true}
}

func (a staffAuth) enabled() bool { return a.set }

func (a staffAuth) ok(r *http.Request) bool {
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return false
	}
	d := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(d[:], a.digest[:]) == 1
}

// require wraps h: without the staff token the answer is 401 with a
// WWW-Authenticate challenge (RFC 6750); refused is called on each refusal.
func (a staffAuth) require(h http.HandlerFunc, refused func()) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.ok(r) {
			if refused != nil {
				refused()
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="voice-agent staff"`)
			http.Error(w, "staff token required: send Authorization: Bearer <VOICE_AGENT_STAFF_TOKEN>", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

// handleMessages lists the messages the receptionist took for the front
// desk: GET /v1/staff/messages[?since=RFC3339]. Times are in the clinic's
// zone. The answer holds callers' names and numbers: never cached.
func (s *Service) handleMessages(w http.ResponseWriter, r *http.Request) {
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			http.Error(w, `since must be an RFC 3339 time, e.g. 2026-12-02T09:00:00-05:00`, http.StatusBadRequest)
			return
		}
		since = t
	}
	msgs, err := s.store.Messages(r.Context(), since)
	if err != nil {
		s.log.Error("staff messages", "err", err)
		http.Error(w, "messages unavailable", http.StatusServiceUnavailable)
		return
	}
	type out struct {
		ID             string `json:"id"`
		CallID         string `json:"call_id,omitempty"`
		CallerName     string `json:"caller_name"`
		CallbackNumber string `json:"callback_number"`
		Reason         string `json:"reason"`
		TakenAt        string `json:"taken_at"`
	}
	list := make([]out, 0, len(msgs))
	for _, m := range msgs {
		list = append(list, out{ID: m.ID, CallID: m.CallID, CallerName: m.CallerName, CallbackNumber: m.CallbackNumber, Reason: m.Reason,
			TakenAt: m.CreatedAt.In(s.loc).Format(time.RFC3339)})
	}
	s.log.Info("staff read messages", "count", len(list))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"time_zone": s.loc.String(), "messages": list})
}
