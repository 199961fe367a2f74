package schedule_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/schedule"
)

var day = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func testState() schedule.State {
	return schedule.State{
		Providers: []schedule.Provider{{ID: "p1", Name: "Dr. One"}, {ID: "p2", Name: "Dr. Two"}},
		Slots: []schedule.Slot{
			{ID: "s1", ProviderID: "p1", Start: day.Add(9 * time.Hour), End: day.Add(10 * time.Hour)},
			{ID: "s2", ProviderID: "p1", Start: day.Add(10 * time.Hour), End: day.Add(11 * time.Hour)},
			{ID: "s3", ProviderID: "p2", Start: day.Add(9 * time.Hour), End: day.Add(10 * time.Hour)},
		},
		Appointments: []schedule.Appointment{{ID: "a1", SlotID: "s2", PatientName: "Pat Doe", Status: schedule.StatusBooked}},
	}
}

func open(t testing.TB) *schedule.Store {
	t.Helper()
	s, err := schedule.Open(context.Background(), filepath.Join(t.TempDir(), "data", "schedule.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSeedSnapshotRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	require.NoError(t, s.Seed(ctx, testState()))
	got, err := s.Snapshot(ctx)
	require.NoError(t, err)
	assert.Equal(t, testState(), got)
}

func TestSeedConflictInsertsNothing(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	st := testState()
	st.Appointments = append(st.Appointments, schedule.Appointment{ID: "a2", SlotID: "s2", PatientName: "Other", Status: schedule.StatusBooked})
	err := s.Seed(ctx, st)
	require.ErrorIs(t, err, schedule.ErrSlotTaken)
	got, err := s.Snapshot(ctx)
	require.NoError(t, err)
	assert.Empty(t, got.Providers, "a failed seed must roll back")
}

func TestMigrationsAreIdempotentAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "schedule.db")
	s, err := schedule.Open(ctx, path)
	require.NoError(t, err)
	require.NoError(t, s.Seed(ctx, testState()))
	require.NoError(t, s.Close())
	s, err = schedule.Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	got, err := s.Snapshot(ctx)
	require.NoError(t, err)
	assert.Len(t, got.Slots, 3)
}

func TestAvailableExcludesBookedAndFilters(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	require.NoError(t, s.Seed(ctx, testState()))
	all, err := s.Available(ctx, day, day.AddDate(0, 0, 1), "")
	require.NoError(t, err)
	assert.Equal(t, []string{"s1", "s3"}, slotIDs(all))
	p2, err := s.Available(ctx, day, day.AddDate(0, 0, 1), "p2")
	require.NoError(t, err)
	assert.Equal(t, []string{"s3"}, slotIDs(p2))
	none, err := s.Available(ctx, day.AddDate(0, 0, 1), day.AddDate(0, 0, 2), "")
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestBookCancelRebook(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	require.NoError(t, s.Seed(ctx, testState()))

	a, err := s.Book(ctx, schedule.BookRequest{SlotID: "s1", PatientName: "Jo Roe", CallID: "c1"})
	require.NoError(t, err)
	assert.Equal(t, schedule.StatusBooked, a.Status)

	_, err = s.Book(ctx, schedule.BookRequest{SlotID: "s1", PatientName: "Someone Else"})
	require.ErrorIs(t, err, schedule.ErrSlotTaken)

	_, err = s.Book(ctx, schedule.BookRequest{SlotID: "nope", PatientName: "Jo Roe"})
	require.ErrorIs(t, err, schedule.ErrNotFound)

	_, err = s.Book(ctx, schedule.BookRequest{SlotID: "s3", PatientName: "  "})
	require.Error(t, err)

	_, err = s.Cancel(ctx, a.ID, "Wrong Name")
	require.ErrorIs(t, err, schedule.ErrNameMismatch)
	_, err = s.Cancel(ctx, "apt_missing", "Jo Roe")
	require.ErrorIs(t, err, schedule.ErrNotFound)

	c, err := s.Cancel(ctx, a.ID, " jo roe ")
	require.NoError(t, err)
	assert.Equal(t, schedule.StatusCancelled, c.Status)
	_, err = s.Cancel(ctx, a.ID, "Jo Roe")
	require.ErrorIs(t, err, schedule.ErrNotFound, "cancelling twice")

	_, err = s.Book(ctx, schedule.BookRequest{SlotID: "s1", PatientName: "Second Patient"})
	require.NoError(t, err, "a cancelled slot can be booked again")
}

// 100 goroutines race for 10 slots (10 per slot): exactly one wins each
// slot, every loser gets ErrSlotTaken, and no booking is lost.
func TestConcurrentBookingNeverDoubleBooks(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	st := schedule.State{Providers: []schedule.Provider{{ID: "p", Name: "P"}}}
	for i := range 10 {
		start := day.Add(time.Duration(i) * time.Hour)
		st.Slots = append(st.Slots, schedule.Slot{ID: fmt.Sprintf("s%02d", i), ProviderID: "p", Start: start, End: start.Add(time.Hour)})
	}
	require.NoError(t, s.Seed(ctx, st))

	var wg sync.WaitGroup
	var mu sync.Mutex
	won := map[string]string{}
	taken := 0
	for i := range 100 {
		wg.Go(func() {
			slot := fmt.Sprintf("s%02d", i%10)
			a, err := s.Book(ctx, schedule.BookRequest{SlotID: slot, PatientName: fmt.Sprintf("patient %d", i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				assert.NotContains(t, won, slot, "slot %s booked twice", slot)
				won[slot] = a.ID
			case errors.Is(err, schedule.ErrSlotTaken):
				taken++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	wg.Wait()
	assert.Len(t, won, 10)
	assert.Equal(t, 90, taken)
	snap, err := s.Snapshot(ctx)
	require.NoError(t, err)
	require.Len(t, snap.Appointments, 10, "every successful booking is stored")
	for _, a := range snap.Appointments {
		assert.Equal(t, won[a.SlotID], a.ID)
	}
}

func TestDemoStateSeedsOnce(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	demo := schedule.DemoState(day, ny)
	seeded, err := s.SeedIfEmpty(ctx, demo)
	require.NoError(t, err)
	assert.True(t, seeded)
	seeded, err = s.SeedIfEmpty(ctx, demo)
	require.NoError(t, err)
	assert.False(t, seeded)
	snap, err := s.Snapshot(ctx)
	require.NoError(t, err)
	assert.Len(t, snap.Slots, 3*10*7)
	for _, sl := range snap.Slots {
		local := sl.Start.In(ny)
		assert.NotEqual(t, time.Saturday, local.Weekday())
		assert.NotEqual(t, time.Sunday, local.Weekday())
		assert.True(t, local.Hour() >= 9 && local.Hour() < 16, "demo hours are the clinic's local 09:00-16:00, got %s", local)
	}
	// day is 2026-12-01T00:00Z, still Monday 30 November in New York: the
	// first demo day is Tuesday 1 December, and its 09:00 in New York is
	// 14:00 UTC (the old demo put it at 09:00 UTC, 04:00 in the clinic).
	assert.Equal(t, "2026-12-01T09:00:00-05:00", demo.Slots[0].Start.Format(time.RFC3339))
	assert.Equal(t, "2026-12-01T14:00:00Z", demo.Slots[0].Start.UTC().Format(time.RFC3339))
}

func TestOpenRejectsEmptyPath(t *testing.T) {
	_, err := schedule.Open(context.Background(), "")
	require.ErrorContains(t, err, "VOICE_AGENT_DB")
}

func slotIDs(slots []schedule.Slot) []string {
	out := []string{}
	for _, s := range slots {
		out = append(out, s.ID)
	}
	return out
}
