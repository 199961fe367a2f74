package schedule

import (
	"context"
	"fmt"
	"time"
)

// DemoState is a fictional clinic (three providers, hourly slots from
// 09:00 to 16:00 local time in loc on the next ten weekdays after from),
// seeded into an empty database only with VOICE_AGENT_DEMO=1 (trials,
// demos). A real clinic imports its schedule (ParseScheduleCSV, Import).
func DemoState(from time.Time, loc *time.Location) State {
	st := State{
		Providers: []Provider{
			{ID: "prov_rivera", Name: "Dr. Ana Rivera", Specialty: "psychiatry"},
			{ID: "prov_chen", Name: "Sam Chen, LCSW", Specialty: "therapy"},
			{ID: "prov_okafor", Name: "Dr. Tobi Okafor", Specialty: "psychology"},
		},
	}
	from = from.In(loc)
	day := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, loc)
	for days := 0; days < 10; {
		day = time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc)
		if day.Weekday() == time.Saturday || day.Weekday() == time.Sunday {
			continue
		}
		days++
		for _, p := range st.Providers {
			for h := 9; h < 16; h++ {
				// Wall-clock hours: day.Add would drift by the
				// daylight-saving change.
				start := time.Date(day.Year(), day.Month(), day.Day(), h, 0, 0, 0, loc)
				st.Slots = append(st.Slots, Slot{
					ID:         fmt.Sprintf("slot_%s_%s", p.ID[5:], start.Format("20060102T1504")),
					ProviderID: p.ID,
					Start:      start,
					End:        start.Add(50 * time.Minute),
				})
			}
		}
	}
	return st
}

// SeedIfEmpty seeds st when the store has no providers yet. It reports
// whether it seeded.
func (s *Store) SeedIfEmpty(ctx context.Context, st State) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM providers`).Scan(&n); err != nil {
		return false, fmt.Errorf("schedule: count providers: %w", err)
	}
	if n > 0 {
		return false, nil
	}
	return true, s.Seed(ctx, st)
}
