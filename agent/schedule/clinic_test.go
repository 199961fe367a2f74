package schedule_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/schedule"
)

var t0 = time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)

func TestClaimDeliveryByWebhookIDAndCallID(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	for _, step := range []struct {
		webhookID, callID string
		want              schedule.Claim
	}{
		{"wh_1", "rtc_a", schedule.ClaimNew},
		{"wh_1", "rtc_a", schedule.ClaimDuplicateDelivery}, // OpenAI's retry / a replay
		{"wh_2", "rtc_a", schedule.ClaimDuplicateCall},     // same call under another webhook-id
		{"wh_2", "rtc_a", schedule.ClaimDuplicateDelivery}, // and its retry
		{"wh_3", "rtc_b", schedule.ClaimNew},
	} {
		got, err := s.ClaimDelivery(ctx, step.webhookID, step.callID, t0)
		require.NoError(t, err)
		assert.Equal(t, step.want.String(), got.String(), "%s %s", step.webhookID, step.callID)
	}
}

func TestClaimSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "schedule.db")
	s, err := schedule.Open(ctx, path)
	require.NoError(t, err)
	got, err := s.ClaimDelivery(ctx, "wh_1", "rtc_a", t0)
	require.NoError(t, err)
	require.Equal(t, schedule.ClaimNew, got)
	require.NoError(t, s.Close())

	s, err = schedule.Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	got, err = s.ClaimDelivery(ctx, "wh_1", "rtc_a", t0.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, schedule.ClaimDuplicateDelivery, got, "a restarted agent still knows the webhook")
	got, err = s.ClaimDelivery(ctx, "wh_9", "rtc_a", t0.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, schedule.ClaimDuplicateCall, got, "a restarted agent never accepts the call twice")
}

func TestReleaseLetsTheRetryThrough(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	_, err := s.ClaimDelivery(ctx, "wh_1", "rtc_a", t0)
	require.NoError(t, err)
	require.NoError(t, s.ReleaseDelivery(ctx, "wh_1", "rtc_a"))
	got, err := s.ClaimDelivery(ctx, "wh_1", "rtc_a", t0)
	require.NoError(t, err)
	assert.Equal(t, schedule.ClaimNew, got)

	// Releasing another webhook's claim does not free the call.
	_, err = s.ClaimDelivery(ctx, "wh_2", "rtc_a", t0)
	require.NoError(t, err)
	require.NoError(t, s.ReleaseDelivery(ctx, "wh_2", "rtc_a"))
	got, err = s.ClaimDelivery(ctx, "wh_3", "rtc_a", t0)
	require.NoError(t, err)
	assert.Equal(t, schedule.ClaimDuplicateCall, got)
}

func TestOldDeliveriesAreForgottenButCallsAreNot(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	_, err := s.ClaimDelivery(ctx, "wh_1", "rtc_a", t0)
	require.NoError(t, err)
	later := t0.Add(schedule.DeliveryRetention + time.Minute)
	got, err := s.ClaimDelivery(ctx, "wh_1", "rtc_a", later)
	require.NoError(t, err)
	assert.Equal(t, schedule.ClaimDuplicateCall, got, "the webhook-id was pruned, the call id still refuses a second accept")
}

func TestMessages(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	m, err := s.TakeMessage(ctx, schedule.Message{CallID: "rtc_a", CallerName: " Pat Doe ", CallbackNumber: "+1 555 000 1111", Reason: "question about a bill"}, t0)
	require.NoError(t, err)
	assert.Regexp(t, `^msg_[0-9a-f]{12}$`, m.ID)
	_, err = s.TakeMessage(ctx, schedule.Message{CallerName: "Sam", CallbackNumber: "+15550002222", Reason: "reschedule"}, t0.Add(time.Hour))
	require.NoError(t, err)
	_, err = s.TakeMessage(ctx, schedule.Message{CallerName: "Sam", Reason: "no number"}, t0)
	assert.ErrorContains(t, err, "callback number")

	all, err := s.Messages(ctx, time.Time{})
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, schedule.Message{ID: m.ID, CallID: "rtc_a", CallerName: "Pat Doe", CallbackNumber: "+1 555 000 1111", Reason: "question about a bill", CreatedAt: t0}, all[0])
	assert.Equal(t, "Sam", all[1].CallerName)
	recent, err := s.Messages(ctx, t0.Add(30*time.Minute))
	require.NoError(t, err)
	require.Len(t, recent, 1)
	assert.Equal(t, "Sam", recent[0].CallerName)
}

func TestConcurrentClaimsOfOneCallAcceptOnce(t *testing.T) {
	// OpenAI may deliver the same call twice at once (a retry racing the
	// first delivery, or two webhook-ids): exactly one claim wins.
	ctx := context.Background()
	s := open(t)
	const n = 20
	results := make(chan schedule.Claim, 2*n)
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		for _, id := range []string{fmt.Sprintf("wh_%d", i), "wh_same"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := s.ClaimDelivery(ctx, id, "rtc_a", t0)
				errs <- err
				results <- c
			}()
		}
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	count := map[schedule.Claim]int{}
	for c := range results {
		count[c]++
	}
	assert.Equal(t, 1, count[schedule.ClaimNew], "%v", count)
	assert.Equal(t, n-1, count[schedule.ClaimDuplicateDelivery], "the 19 extra deliveries of wh_same")
	assert.Equal(t, n, count[schedule.ClaimDuplicateCall])
}
