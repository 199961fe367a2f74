package schedule

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"
)

// The schedule file (CSV, UTF-8, comma separated, a header row naming the
// columns in any order; lines starting with # are comments):
//
//	provider_id    required  a-z, 0-9, _ and -, at most 64 characters, e.g. rivera
//	provider_name  required  as the receptionist says it, e.g. Dr. Ana Rivera
//	specialty      optional  e.g. psychiatry
//	date           required  the slot's local date, YYYY-MM-DD
//	start          required  local start time, HH:MM (24-hour)
//	end            required  local end time, HH:MM, after start on the same date
//	time_zone      optional  IANA zone of date/start/end; empty: the clinic's zone
//
// One row is one bookable slot. A provider's name and specialty must be the
// same on every row. Local times that do not exist or occur twice (the
// daylight-saving change) are refused: book such a slot in a zone without
// the change, or move it.
var ImportColumns = []string{"provider_id", "provider_name", "specialty", "date", "start", "end", "time_zone"}

var requiredColumns = []string{"provider_id", "provider_name", "date", "start", "end"}

// MaxImportErrors bounds how many bad lines an ImportError lists.
const MaxImportErrors = 20

var providerIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// LineError is a problem with one line of a schedule file.
type LineError struct {
	Line int
	Err  error
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// ImportError lists the bad lines of a schedule file (at most
// MaxImportErrors, in file order). Nothing was imported.
type ImportError struct {
	Lines     []LineError
	Truncated bool
}

func (e *ImportError) Error() string {
	var b strings.Builder
	b.WriteString("schedule file refused, nothing imported:")
	for _, l := range e.Lines {
		b.WriteString("\n  " + l.Error())
	}
	if e.Truncated {
		fmt.Fprintf(&b, "\n  (more errors after the first %d)", MaxImportErrors)
	}
	return b.String()
}

// ScheduleFile is a parsed schedule file: its providers and slots, and the
// line each came from (to name it in errors found while importing).
type ScheduleFile struct {
	Providers []Provider
	Slots     []Slot
	// SlotLines[i] is the line of Slots[i]; ProviderLines[i] the first
	// line naming Providers[i].
	SlotLines, ProviderLines []int
}

// ParseScheduleCSV parses a schedule file whose local times are in clinic
// (unless a row names its own time_zone). All errors are collected into an
// *ImportError naming their lines.
func ParseScheduleCSV(r io.Reader, clinic *time.Location) (ScheduleFile, error) {
	var out ScheduleFile
	ie := &ImportError{}
	add := func(line int, format string, args ...any) {
		if len(ie.Lines) == MaxImportErrors {
			ie.Truncated = true
			return
		}
		ie.Lines = append(ie.Lines, LineError{Line: line, Err: fmt.Errorf(format, args...)})
	}
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return out, &ImportError{Lines: []LineError{{Line: 1, Err: fmt.Errorf("the file is empty: it needs a header row naming the columns %s", strings.Join(requiredColumns, ","))}}}
	}
	if err != nil {
		return out, &ImportError{Lines: []LineError{{Line: csvLine(err, 1), Err: csvErr(err)}}}
	}
	headerLine, _ := cr.FieldPos(0)
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := false
		for _, c := range ImportColumns {
			known = known || c == h
		}
		if !known {
			add(headerLine, "unknown column %q: the columns are %s", h, strings.Join(ImportColumns, ", "))
			continue
		}
		if _, dup := col[h]; dup {
			add(headerLine, "column %q appears twice", h)
		}
		col[h] = i
	}
	for _, c := range requiredColumns {
		if _, ok := col[c]; !ok {
			add(headerLine, "missing column %q: the header must name %s (optional: specialty, time_zone)", c, strings.Join(requiredColumns, ", "))
		}
	}
	if len(ie.Lines) > 0 {
		return out, ie
	}

	providerAt := map[string]int{} // id -> index in out.Providers
	type key struct {
		provider string
		start    int64
	}
	seen := map[key]int{}
	zones := map[string]*time.Location{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			add(csvLine(err, 0), "%v", csvErr(err))
			break
		}
		line, _ := cr.FieldPos(0)
		field := func(name string) string {
			i, ok := col[name]
			if !ok || i >= len(rec) {
				return ""
			}
			return strings.TrimSpace(rec[i])
		}
		if len(rec) > len(header) {
			add(line, "%d fields but the header names %d columns", len(rec), len(header))
			continue
		}
		bad := len(ie.Lines)
		p := Provider{ID: field("provider_id"), Name: field("provider_name"), Specialty: field("specialty")}
		switch {
		case p.ID == "":
			add(line, "provider_id is empty")
		case !providerIDPattern.MatchString(p.ID):
			add(line, "provider_id %q must be lowercase letters, digits, _ or - (at most 64), e.g. rivera", p.ID)
		}
		if p.Name == "" {
			add(line, "provider_name is empty")
		} else if len(p.Name) > 200 || len(p.Specialty) > 200 {
			add(line, "provider_name or specialty is longer than 200 characters")
		}
		loc := clinic
		if z := field("time_zone"); z != "" {
			if zones[z] == nil {
				l, err := time.LoadLocation(z)
				if err != nil || z == "Local" || strings.HasPrefix(z, "/") {
					add(line, "time_zone %q is not an IANA time zone name, e.g. America/New_York", z)
				} else {
					zones[z] = l
				}
			}
			if zones[z] != nil {
				loc = zones[z]
			}
		}
		date, err := time.Parse(time.DateOnly, field("date"))
		if err != nil {
			add(line, "date %q is not a date: use YYYY-MM-DD, e.g. 2026-12-02", field("date"))
		}
		start, serr := localTime(date, field("start"), loc)
		if serr != nil && err == nil {
			add(line, "start: %v", serr)
		}
		end, eerr := localTime(date, field("end"), loc)
		if eerr != nil && err == nil {
			add(line, "end: %v", eerr)
		}
		if err == nil && serr == nil && eerr == nil && !end.After(start) {
			add(line, "end %s is not after start %s (a slot ends on the day it starts)", field("end"), field("start"))
		}
		if len(ie.Lines) > bad || ie.Truncated {
			continue
		}
		if i, ok := providerAt[p.ID]; ok {
			if prev := out.Providers[i]; prev != p {
				add(line, "provider %q is named %q (specialty %q) here but %q (specialty %q) on line %d: use one name per provider_id",
					p.ID, p.Name, p.Specialty, prev.Name, prev.Specialty, out.ProviderLines[i])
				continue
			}
		} else {
			providerAt[p.ID] = len(out.Providers)
			out.Providers = append(out.Providers, p)
			out.ProviderLines = append(out.ProviderLines, line)
		}
		k := key{p.ID, start.Unix()}
		if first, dup := seen[k]; dup {
			add(line, "provider %q already has a slot at %s on line %d", p.ID, start.Format(time.RFC3339), first)
			continue
		}
		seen[k] = line
		out.Slots = append(out.Slots, Slot{
			ID:         fmt.Sprintf("slot_%s_%s", p.ID, start.UTC().Format("20060102T1504Z")),
			ProviderID: p.ID,
			Start:      start,
			End:        end,
		})
		out.SlotLines = append(out.SlotLines, line)
	}
	if len(ie.Lines) == 0 {
		checkOverlaps(out, func(line int, format string, args ...any) { add(line, format, args...) })
	}
	if len(ie.Lines) > 0 {
		sort.SliceStable(ie.Lines, func(i, j int) bool { return ie.Lines[i].Line < ie.Lines[j].Line })
		return ScheduleFile{}, ie
	}
	if len(out.Slots) == 0 {
		return ScheduleFile{}, &ImportError{Lines: []LineError{{Line: headerLine, Err: errors.New("the file has a header but no slots")}}}
	}
	return out, nil
}

// checkOverlaps refuses two slots of one provider that overlap in time.
func checkOverlaps(f ScheduleFile, add func(line int, format string, args ...any)) {
	idx := make([]int, len(f.Slots))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		sa, sb := f.Slots[idx[a]], f.Slots[idx[b]]
		if sa.ProviderID != sb.ProviderID {
			return sa.ProviderID < sb.ProviderID
		}
		return sa.Start.Before(sb.Start)
	})
	for i := 1; i < len(idx); i++ {
		prev, cur := f.Slots[idx[i-1]], f.Slots[idx[i]]
		if prev.ProviderID == cur.ProviderID && cur.Start.Before(prev.End) {
			add(f.SlotLines[idx[i]], "slot of provider %q from %s overlaps the slot on line %d (until %s)",
				cur.ProviderID, cur.Start.Format(time.RFC3339), f.SlotLines[idx[i-1]], prev.End.Format(time.RFC3339))
		}
	}
}

// localTime is date at hh:mm in loc, refusing times the daylight-saving
// change skips or repeats.
func localTime(date time.Time, hhmm string, loc *time.Location) (time.Time, error) {
	clock, err := time.Parse("15:04", hhmm)
	if err != nil || len(hhmm) != 5 {
		return time.Time{}, fmt.Errorf("%q is not a time: use HH:MM (24-hour), e.g. 09:00 or 14:30", hhmm)
	}
	t := time.Date(date.Year(), date.Month(), date.Day(), clock.Hour(), clock.Minute(), 0, 0, loc)
	if t.Hour() != clock.Hour() || t.Minute() != clock.Minute() || t.Day() != date.Day() {
		return time.Time{}, fmt.Errorf("%s %s does not exist in %s (the clocks skip it for daylight saving)", date.Format(time.DateOnly), hhmm, loc)
	}
	for _, d := range []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour} {
		for _, o := range []time.Time{t.Add(d), t.Add(-d)} {
			if o.Hour() == t.Hour() && o.Minute() == t.Minute() && o.Day() == t.Day() {
				return time.Time{}, fmt.Errorf("%s %s happens twice in %s (the clocks go back for daylight saving): move the slot", date.Format(time.DateOnly), hhmm, loc)
			}
		}
	}
	return t, nil
}

func csvLine(err error, def int) int {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Line
	}
	return def
}

func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("not valid CSV (%w): quote fields containing commas or quotes", pe.Err)
	}
	return err
}

// ImportResult counts what Import changed.
type ImportResult struct {
	ProvidersAdded, ProvidersUpdated int
	SlotsAdded, SlotsUnchanged       int
}

// Import adds the providers and slots of f in one transaction: on any
// error nothing is imported. A provider already in the database gets the
// file's name and specialty; a slot already imported with the same time is
// left as it is (re-importing a file is harmless); a slot that clashes
// with an existing one fails, naming its line.
func (s *Store) Import(ctx context.Context, f ScheduleFile) (ImportResult, error) {
	var res ImportResult
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("schedule: import: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	lineErr := func(line int, err error) error {
		return &ImportError{Lines: []LineError{{Line: line, Err: err}}}
	}
	for i, p := range f.Providers {
		var name, specialty string
		err := tx.QueryRowContext(ctx, `SELECT name, specialty FROM providers WHERE id = ?`, p.ID).Scan(&name, &specialty)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, `INSERT INTO providers(id, name, specialty) VALUES (?, ?, ?)`, p.ID, p.Name, p.Specialty); err != nil {
				return ImportResult{}, lineErr(f.ProviderLines[i], fmt.Errorf("provider %q: %w", p.ID, err))
			}
			res.ProvidersAdded++
		case err != nil:
			return ImportResult{}, fmt.Errorf("schedule: import provider %q: %w", p.ID, err)
		case name != p.Name || specialty != p.Specialty:
			if _, err := tx.ExecContext(ctx, `UPDATE providers SET name = ?, specialty = ? WHERE id = ?`, p.Name, p.Specialty, p.ID); err != nil {
				return ImportResult{}, lineErr(f.ProviderLines[i], fmt.Errorf("provider %q: %w", p.ID, err))
			}
			res.ProvidersUpdated++
		}
	}
	for i, sl := range f.Slots {
		var provider, start, end string
		err := tx.QueryRowContext(ctx, `SELECT provider_id, start_at, end_at FROM slots WHERE id = ?`, sl.ID).Scan(&provider, &start, &end)
		switch {
		case err == nil:
			if provider != sl.ProviderID || start != formatTime(sl.Start) || end != formatTime(sl.End) {
				return ImportResult{}, lineErr(f.SlotLines[i], fmt.Errorf("slot %s already exists with another end (%s): remove the line or change its time", sl.ID, end))
			}
			res.SlotsUnchanged++
			continue
		case !errors.Is(err, sql.ErrNoRows):
			return ImportResult{}, fmt.Errorf("schedule: import slot %q: %w", sl.ID, err)
		}
		var clash string
		err = tx.QueryRowContext(ctx, `SELECT id FROM slots WHERE provider_id = ? AND start_at < ? AND end_at > ? LIMIT 1`,
			sl.ProviderID, formatTime(sl.End), formatTime(sl.Start)).Scan(&clash)
		switch {
		case err == nil:
			return ImportResult{}, lineErr(f.SlotLines[i], fmt.Errorf("slot of provider %q from %s overlaps slot %s already in the schedule", sl.ProviderID, sl.Start.Format(time.RFC3339), clash))
		case !errors.Is(err, sql.ErrNoRows):
			return ImportResult{}, fmt.Errorf("schedule: import slot %q: %w", sl.ID, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO slots(id, provider_id, start_at, end_at) VALUES (?, ?, ?, ?)`,
			sl.ID, sl.ProviderID, formatTime(sl.Start), formatTime(sl.End)); err != nil {
			return ImportResult{}, lineErr(f.SlotLines[i], fmt.Errorf("slot %s: %w", sl.ID, classify(err)))
		}
		res.SlotsAdded++
	}
	if err := tx.Commit(); err != nil {
		return ImportResult{}, fmt.Errorf("schedule: import: %w", err)
	}
	return res, nil
}
