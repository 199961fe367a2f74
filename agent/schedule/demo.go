package schedule

import (
	"context"
	"fmt"
	"time"
)

// DemoState is a small clinic (three providers, hourly slots 09:00-16:00 UTC
// on the next ten weekdays after from) used to seed an empty database on
// first start, so a fresh deployment can take calls.
func DemoState(from time.Time) State {
	st := State{
		Providers: []Provider{
			{ID: "prov_rivera", Name: "Dr. Ana Rivera", Specialty: "psychiatry"},
			{ID: "prov_chen", Name: "Sam Chen, LCSW", Specialty: "therapy"},
			{ID: "prov_okafor", Name: "Dr. Tobi Okafor", Specialty: "psychology"},
		},
	}
	day := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	for days := 0; days < 10; {
		day = day.AddDate(0, 0, 1)
		if day.Weekday() == time.Saturday || day.Weekday() == time.Sunday {
			continue
		}
		days++
		for _, p := range st.Providers {
			for h := 9; h < 16; h++ {
				start := day.Add(time.Duration(h) * time.Hour)
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
