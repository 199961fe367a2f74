package schedule_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/schedule"
)

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

const goodCSV = `# Harbor Behavioral Health, December
provider_id,provider_name,specialty,date,start,end
rivera,Dr. Ana Rivera,psychiatry,2026-12-02,08:00,08:50
rivera,Dr. Ana Rivera,psychiatry,2026-12-02,19:30,20:20
chen,"Sam Chen, LCSW",therapy,2026-12-03,07:00,07:45
okafor,Dr. Tobi Okafor,,2026-12-03,10:00,10:50
`

func TestParseScheduleCSVLocalTimes(t *testing.T) {
	f, err := schedule.ParseScheduleCSV(strings.NewReader(goodCSV), zone(t, "America/New_York"))
	require.NoError(t, err)
	assert.Equal(t, []schedule.Provider{
		{ID: "rivera", Name: "Dr. Ana Rivera", Specialty: "psychiatry"},
		{ID: "chen", Name: "Sam Chen, LCSW", Specialty: "therapy"},
		{ID: "okafor", Name: "Dr. Tobi Okafor"},
	}, f.Providers)
	var got []string
	for _, s := range f.Slots {
		got = append(got, s.ID+" "+s.Start.Format(time.RFC3339)+" "+s.End.UTC().Format(time.RFC3339))
	}
	// Local New York times (EST, -05:00); the 19:30 slot is on 3 December in UTC.
	assert.Equal(t, []string{
		"slot_rivera_20261202T1300Z 2026-12-02T08:00:00-05:00 2026-12-02T13:50:00Z",
		"slot_rivera_20261203T0030Z 2026-12-02T19:30:00-05:00 2026-12-03T01:20:00Z",
		"slot_chen_20261203T1200Z 2026-12-03T07:00:00-05:00 2026-12-03T12:45:00Z",
		"slot_okafor_20261203T1500Z 2026-12-03T10:00:00-05:00 2026-12-03T15:50:00Z",
	}, got)
	assert.Equal(t, []int{3, 4, 5, 6}, f.SlotLines)
}

func TestParseScheduleCSVTimeZoneColumn(t *testing.T) {
	csv := "date,start,end,provider_id,provider_name,time_zone\n" +
		"2026-12-02,09:00,09:45,kumar,Dr. Kumar,Asia/Kolkata\n" +
		"2026-12-02,09:00,09:45,lee,Dr. Lee,\n"
	f, err := schedule.ParseScheduleCSV(strings.NewReader(csv), zone(t, "Australia/Sydney"))
	require.NoError(t, err)
	require.Len(t, f.Slots, 2)
	assert.Equal(t, "2026-12-02T09:00:00+05:30", f.Slots[0].Start.Format(time.RFC3339))
	assert.Equal(t, "2026-12-02T03:30:00Z", f.Slots[0].Start.UTC().Format(time.RFC3339))
	assert.Equal(t, "2026-12-02T09:00:00+11:00", f.Slots[1].Start.Format(time.RFC3339), "no time_zone: the clinic's (Sydney, summer time)")
}

func TestParseScheduleCSVNamesTheBadLines(t *testing.T) {
	ny := zone(t, "America/New_York")
	for _, tc := range []struct {
		name, csv string
		want      []string
	}{
		{"empty", "", []string{"line 1: the file is empty: it needs a header row naming the columns provider_id,provider_name,date,start,end"}},
		{"missing column", "provider_id,provider_name,date,start\n", []string{`line 1: missing column "end"`}},
		{"unknown column", "provider_id,provider_name,date,start,end,room\n", []string{`line 1: unknown column "room": the columns are provider_id, provider_name, specialty, date, start, end, time_zone`}},
		{"header only", "provider_id,provider_name,date,start,end\n", []string{"line 1: the file has a header but no slots"}},
		{"bad rows", "provider_id,provider_name,date,start,end\n" +
			"rivera,Dr. Rivera,2026-12-02,09:00,09:50\n" +
			"rivera,Dr. Rivera,2026-02-30,09:00,09:50\n" +
			"rivera,Dr. Rivera,2026-12-02,9am,09:50\n" +
			"Rivera!,Dr. Rivera,2026-12-02,10:00,10:50\n" +
			"chen,,2026-12-02,10:00,10:50\n" +
			"chen,Sam Chen,2026-12-02,11:00,10:50\n" +
			"rivera,Dr. A. Rivera,2026-12-03,09:00,09:50\n" +
			"rivera,Dr. Rivera,2026-12-02,09:00,09:30\n",
			[]string{
				`line 3: date "2026-02-30" is not a date: use YYYY-MM-DD, e.g. 2026-12-02`,
				`line 4: start: "9am" is not a time: use HH:MM (24-hour), e.g. 09:00 or 14:30`,
				`line 5: provider_id "Rivera!" must be lowercase letters, digits, _ or - (at most 64), e.g. rivera`,
				`line 6: provider_name is empty`,
				`line 7: end 10:50 is not after start 11:00`,
				`line 8: provider "rivera" is named "Dr. A. Rivera" (specialty "") here but "Dr. Rivera" (specialty "") on line 2: use one name per provider_id`,
				`line 9: provider "rivera" already has a slot at 2026-12-02T09:00:00-05:00 on line 2`,
			}},
		{"overlap", "provider_id,provider_name,date,start,end\n" +
			"rivera,Dr. Rivera,2026-12-02,09:00,10:00\n" +
			"rivera,Dr. Rivera,2026-12-02,09:30,10:30\n",
			[]string{`line 3: slot of provider "rivera" from 2026-12-02T09:30:00-05:00 overlaps the slot on line 2 (until 2026-12-02T10:00:00-05:00)`}},
		{"daylight saving", "provider_id,provider_name,date,start,end\n" +
			"rivera,Dr. Rivera,2027-03-14,02:30,03:30\n" +
			"rivera,Dr. Rivera,2026-11-01,01:30,02:30\n",
			[]string{
				"line 2: start: 2027-03-14 02:30 does not exist in America/New_York (the clocks skip it for daylight saving)",
				"line 3: start: 2026-11-01 01:30 happens twice in America/New_York (the clocks go back for daylight saving): move the slot",
			}},
		{"unknown zone", "provider_id,provider_name,date,start,end,time_zone\nrivera,Dr. Rivera,2026-12-02,09:00,10:00,EST5\n",
			[]string{`line 2: time_zone "EST5" is not an IANA time zone name, e.g. America/New_York`}},
		{"bad quote", "provider_id,provider_name,date,start,end\nrivera,\"Dr. \"Ana\" Rivera,2026-12-02,09:00,10:00\n",
			[]string{"line 2: not valid CSV"}},
		{"extra field", "provider_id,provider_name,date,start,end\nrivera,Dr. Rivera,2026-12-02,09:00,10:00,x\n",
			[]string{"line 2: 6 fields but the header names 5 columns"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := schedule.ParseScheduleCSV(strings.NewReader(tc.csv), ny)
			var ie *schedule.ImportError
			require.True(t, errors.As(err, &ie), "%v", err)
			require.Len(t, ie.Lines, len(tc.want), "%v", err)
			for i, w := range tc.want {
				assert.Contains(t, ie.Lines[i].Error(), w)
			}
			assert.Contains(t, err.Error(), "nothing imported")
		})
	}
}

func TestImportIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	ny := zone(t, "America/New_York")
	f, err := schedule.ParseScheduleCSV(strings.NewReader(goodCSV), ny)
	require.NoError(t, err)
	res, err := s.Import(ctx, f)
	require.NoError(t, err)
	assert.Equal(t, schedule.ImportResult{ProvidersAdded: 3, SlotsAdded: 4}, res)

	// Re-importing the same file changes nothing.
	res, err = s.Import(ctx, f)
	require.NoError(t, err)
	assert.Equal(t, schedule.ImportResult{SlotsUnchanged: 4}, res)

	// A second file: a renamed provider, a new slot, and on line 4 a slot
	// overlapping one already imported: nothing of it is imported.
	second := "provider_id,provider_name,specialty,date,start,end\n" +
		"rivera,Dr. Ana Rivera-Diaz,psychiatry,2026-12-04,08:00,08:50\n" +
		"lee,Dr. Lee,,2026-12-04,09:00,09:50\n" +
		"rivera,Dr. Ana Rivera-Diaz,psychiatry,2026-12-02,08:30,09:20\n"
	f2, err := schedule.ParseScheduleCSV(strings.NewReader(second), ny)
	require.NoError(t, err)
	before, err := s.Snapshot(ctx)
	require.NoError(t, err)
	_, err = s.Import(ctx, f2)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `line 4: slot of provider "rivera" from 2026-12-02T08:30:00-05:00 overlaps slot slot_rivera_20261202T1300Z already in the schedule`)
	after, err := s.Snapshot(ctx)
	require.NoError(t, err)
	assert.Equal(t, before, after, "nothing half-imported")
	assert.Equal(t, "Dr. Ana Rivera", after.Providers[2].Name)
	assert.Len(t, after.Providers, 3)
}

func FuzzParseScheduleCSV(f *testing.F) {
	f.Add(goodCSV)
	f.Add("provider_id,provider_name,date,start,end,time_zone\nrivera,Dr. Rivera,2027-03-14,02:30,03:30,America/New_York\n")
	f.Add("\ufeffprovider_id,provider_name,date,start,end\na,b,2026-11-01,01:30,23:59\n")
	f.Add("provider_id,provider_name,date,start,end\n\"a\nb\",c,2026-12-01,00:00,00:01\n")
	f.Add("date,date\n")
	f.Fuzz(func(t *testing.T, in string) {
		loc := zone(t, "America/New_York")
		got, err := schedule.ParseScheduleCSV(strings.NewReader(in), loc)
		if err != nil {
			var ie *schedule.ImportError
			require.True(t, errors.As(err, &ie), "every refusal is an ImportError: %v", err)
			require.NotEmpty(t, ie.Lines)
			require.LessOrEqual(t, len(ie.Lines), schedule.MaxImportErrors)
			for _, l := range ie.Lines {
				require.Positive(t, l.Line, "every error names a line: %v", l)
			}
			require.Empty(t, got.Slots, "nothing is returned with an error")
			return
		}
		require.NotEmpty(t, got.Slots)
		require.Len(t, got.SlotLines, len(got.Slots))
		require.Len(t, got.ProviderLines, len(got.Providers))
		providers := map[string]bool{}
		for _, p := range got.Providers {
			require.False(t, providers[p.ID], "provider %q listed once", p.ID)
			providers[p.ID] = true
			require.NotEmpty(t, p.Name)
		}
		ids := map[string]bool{}
		for _, s := range got.Slots {
			require.True(t, providers[s.ProviderID], "slot %s has a known provider", s.ID)
			require.True(t, s.End.After(s.Start), "slot %s ends after it starts", s.ID)
			require.False(t, ids[s.ID], "slot id %s unique", s.ID)
			ids[s.ID] = true
		}
	})
}
