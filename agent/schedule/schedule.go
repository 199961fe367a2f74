// Package schedule is the clinic's appointment book: providers, bookable
// slots and appointments in an embedded SQLite database (pure-Go driver
// modernc.org/sqlite, so the binary stays CGO_ENABLED=0).
//
// Double booking is prevented by the database itself: a partial unique index
// allows at most one booked appointment per slot, so two concurrent calls
// racing for the same slot cannot both succeed whatever the Go code does.
package schedule

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// TimeLayout is how times are stored (UTC, fixed width, so text order is
// time order).
const TimeLayout = "2006-01-02T15:04:05Z"

// Appointment statuses.
const (
	StatusBooked    = "booked"
	StatusCancelled = "cancelled"
)

var (
	// ErrSlotTaken means the slot already has a booked appointment.
	ErrSlotTaken = errors.New("slot is already booked")
	// ErrNotFound means the referenced slot or appointment does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNameMismatch means the patient name given does not match the appointment.
	ErrNameMismatch = errors.New("patient name does not match the appointment")
)

// Provider is a clinician who has bookable slots.
type Provider struct {
	ID        string `json:"id" yaml:"id"`
	Name      string `json:"name" yaml:"name"`
	Specialty string `json:"specialty,omitempty" yaml:"specialty,omitempty"`
}

// Slot is a bookable time of one provider.
type Slot struct {
	ID         string    `json:"id" yaml:"id"`
	ProviderID string    `json:"provider_id" yaml:"provider_id"`
	Start      time.Time `json:"start" yaml:"start"`
	End        time.Time `json:"end" yaml:"end"`
}

// Appointment is a booking of one slot.
type Appointment struct {
	ID           string `json:"id" yaml:"id"`
	SlotID       string `json:"slot_id" yaml:"slot_id"`
	PatientName  string `json:"patient_name" yaml:"patient_name"`
	PatientPhone string `json:"patient_phone,omitempty" yaml:"patient_phone,omitempty"`
	Reason       string `json:"reason,omitempty" yaml:"reason,omitempty"`
	Status       string `json:"status" yaml:"status"`
	CallID       string `json:"call_id,omitempty" yaml:"call_id,omitempty"`
}

// State is the whole content of a store, used to seed it and to assert on
// it (eval cases embed it as JSON or YAML).
type State struct {
	Providers    []Provider    `json:"providers" yaml:"providers"`
	Slots        []Slot        `json:"slots" yaml:"slots"`
	Appointments []Appointment `json:"appointments" yaml:"appointments"`
}

// Store is the appointment book. It is safe for concurrent use.
type Store struct {
	db *sql.DB
}

// migrations are applied in order; PRAGMA user_version records how many ran.
// Append only, never edit a released migration.
var migrations = []string{
	`CREATE TABLE providers (
		id        TEXT PRIMARY KEY,
		name      TEXT NOT NULL,
		specialty TEXT NOT NULL DEFAULT ''
	);
	CREATE TABLE slots (
		id          TEXT PRIMARY KEY,
		provider_id TEXT NOT NULL REFERENCES providers(id),
		start_at    TEXT NOT NULL,
		end_at      TEXT NOT NULL,
		CHECK (end_at > start_at),
		UNIQUE (provider_id, start_at)
	);
	CREATE INDEX slots_by_start ON slots(start_at);
	CREATE TABLE appointments (
		id            TEXT PRIMARY KEY,
		slot_id       TEXT NOT NULL REFERENCES slots(id),
		patient_name  TEXT NOT NULL CHECK (length(patient_name) > 0),
		patient_phone TEXT NOT NULL DEFAULT '',
		reason        TEXT NOT NULL DEFAULT '',
		status        TEXT NOT NULL CHECK (status IN ('booked', 'cancelled')),
		call_id       TEXT NOT NULL DEFAULT '',
		created_at    TEXT NOT NULL
	);
	-- At most one booked appointment per slot: this is what makes double
	-- booking impossible, also under concurrent calls.
	CREATE UNIQUE INDEX one_booking_per_slot ON appointments(slot_id) WHERE status = 'booked';`,
	// 2: webhook deduplication (by webhook-id and by call_id, so a restart
	// does not accept a call twice) and messages taken for the front desk.
	`CREATE TABLE webhook_deliveries (
		webhook_id  TEXT PRIMARY KEY,
		call_id     TEXT NOT NULL DEFAULT '',
		received_at TEXT NOT NULL
	);
	CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries(received_at);
	CREATE TABLE calls (
		call_id     TEXT PRIMARY KEY,
		webhook_id  TEXT NOT NULL,
		received_at TEXT NOT NULL
	);
	CREATE TABLE messages (
		id              TEXT PRIMARY KEY,
		call_id         TEXT NOT NULL DEFAULT '',
		caller_name     TEXT NOT NULL CHECK (length(caller_name) > 0),
		callback_number TEXT NOT NULL CHECK (length(callback_number) > 0),
		reason          TEXT NOT NULL CHECK (length(reason) > 0),
		created_at      TEXT NOT NULL
	);
	CREATE INDEX messages_by_time ON messages(created_at);`,
}

// Open opens (creating if needed) the database at path and runs pending
// migrations. The parent directory is created with mode 0700.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("schedule: empty database path: set VOICE_AGENT_DB to a file path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("schedule: create data directory for %s: %w", path, err)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("schedule: open %s: %w", path, err)
	}
	// A few connections: readers run in parallel under WAL, writers queue on
	// the busy timeout.
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("schedule: begin migration: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("schedule: read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schedule: database schema version %d is newer than this binary knows (%d): run a newer voice-agent", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("schedule: migration %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return fmt.Errorf("schedule: record schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("schedule: commit migrations: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("schedule: ping: %w", err)
	}
	return nil
}

// Seed inserts the providers, slots and appointments of st in one
// transaction. It fails (and inserts nothing) on any conflict.
func (s *Store) Seed(ctx context.Context, st State) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("schedule: seed: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, p := range st.Providers {
		if _, err := tx.ExecContext(ctx, `INSERT INTO providers(id, name, specialty) VALUES (?, ?, ?)`, p.ID, p.Name, p.Specialty); err != nil {
			return fmt.Errorf("schedule: seed provider %q: %w", p.ID, err)
		}
	}
	for _, sl := range st.Slots {
		if _, err := tx.ExecContext(ctx, `INSERT INTO slots(id, provider_id, start_at, end_at) VALUES (?, ?, ?, ?)`,
			sl.ID, sl.ProviderID, formatTime(sl.Start), formatTime(sl.End)); err != nil {
			return fmt.Errorf("schedule: seed slot %q: %w", sl.ID, classify(err))
		}
	}
	for _, a := range st.Appointments {
		status := a.Status
		if status == "" {
			status = StatusBooked
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO appointments(id, slot_id, patient_name, patient_phone, reason, status, call_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.SlotID, a.PatientName, a.PatientPhone, a.Reason, status, a.CallID, formatTime(time.Now())); err != nil {
			return fmt.Errorf("schedule: seed appointment %q: %w", a.ID, classify(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("schedule: seed commit: %w", err)
	}
	return nil
}

// Snapshot returns the whole content of the store, each list ordered by id.
func (s *Store) Snapshot(ctx context.Context) (State, error) {
	st := State{Providers: []Provider{}, Slots: []Slot{}, Appointments: []Appointment{}}
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, specialty FROM providers ORDER BY id`)
	if err != nil {
		return st, fmt.Errorf("schedule: snapshot providers: %w", err)
	}
	for rows.Next() {
		var p Provider
		if err := rows.Scan(&p.ID, &p.Name, &p.Specialty); err != nil {
			_ = rows.Close()
			return st, fmt.Errorf("schedule: snapshot providers: %w", err)
		}
		st.Providers = append(st.Providers, p)
	}
	if err := closeRows(rows); err != nil {
		return st, err
	}
	slots, err := s.querySlots(ctx, `SELECT id, provider_id, start_at, end_at FROM slots ORDER BY id`)
	if err != nil {
		return st, err
	}
	st.Slots = slots
	appts, err := s.queryAppointments(ctx, `SELECT id, slot_id, patient_name, patient_phone, reason, status, call_id FROM appointments ORDER BY id`)
	if err != nil {
		return st, err
	}
	st.Appointments = appts
	return st, nil
}

// Providers lists the providers ordered by id.
func (s *Store) Providers(ctx context.Context) ([]Provider, error) {
	st, err := s.Snapshot(ctx)
	return st.Providers, err
}

// Available lists the slots starting in [from, to) without a booked
// appointment, ordered by start time; providerID "" means any provider.
func (s *Store) Available(ctx context.Context, from, to time.Time, providerID string) ([]Slot, error) {
	q := `SELECT s.id, s.provider_id, s.start_at, s.end_at FROM slots s
		WHERE s.start_at >= ? AND s.start_at < ?
		  AND (? = '' OR s.provider_id = ?)
		  AND NOT EXISTS (SELECT 1 FROM appointments a WHERE a.slot_id = s.id AND a.status = 'booked')
		ORDER BY s.start_at, s.provider_id`
	return s.querySlots(ctx, q, formatTime(from), formatTime(to), providerID, providerID)
}

// Slot returns one slot.
func (s *Store) Slot(ctx context.Context, id string) (Slot, error) {
	slots, err := s.querySlots(ctx, `SELECT id, provider_id, start_at, end_at FROM slots WHERE id = ?`, id)
	if err != nil {
		return Slot{}, err
	}
	if len(slots) == 0 {
		return Slot{}, fmt.Errorf("schedule: slot %q: %w", id, ErrNotFound)
	}
	return slots[0], nil
}

// BookRequest is what Book needs.
type BookRequest struct {
	SlotID       string
	PatientName  string
	PatientPhone string
	Reason       string
	CallID       string
}

// Book books a slot. It returns ErrSlotTaken if the slot already has a
// booked appointment and ErrNotFound if the slot does not exist. The check
// is the database's unique index, so it holds under concurrency.
func (s *Store) Book(ctx context.Context, req BookRequest) (Appointment, error) {
	a := Appointment{
		ID:           newID("apt"),
		SlotID:       req.SlotID,
		PatientName:  strings.TrimSpace(req.PatientName),
		PatientPhone: req.PatientPhone,
		Reason:       req.Reason,
		Status:       StatusBooked,
		CallID:       req.CallID,
	}
	if a.PatientName == "" {
		return Appointment{}, errors.New("schedule: book: patient name is required")
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO appointments(id, slot_id, patient_name, patient_phone, reason, status, call_id, created_at) VALUES (?, ?, ?, ?, ?, 'booked', ?, ?)`,
		a.ID, a.SlotID, a.PatientName, a.PatientPhone, a.Reason, a.CallID, formatTime(time.Now()))
	if err != nil {
		return Appointment{}, fmt.Errorf("schedule: book slot %q: %w", req.SlotID, classify(err))
	}
	return a, nil
}

// Cancel cancels a booked appointment. patientName must match the booking
// (case and surrounding space ignored) so a caller cannot cancel someone
// else's appointment by guessing an id.
func (s *Store) Cancel(ctx context.Context, appointmentID, patientName string) (Appointment, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Appointment{}, fmt.Errorf("schedule: cancel: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var a Appointment
	err = tx.QueryRowContext(ctx, `SELECT id, slot_id, patient_name, patient_phone, reason, status, call_id FROM appointments WHERE id = ? AND status = 'booked'`, appointmentID).
		Scan(&a.ID, &a.SlotID, &a.PatientName, &a.PatientPhone, &a.Reason, &a.Status, &a.CallID)
	if errors.Is(err, sql.ErrNoRows) {
		return Appointment{}, fmt.Errorf("schedule: cancel appointment %q: %w", appointmentID, ErrNotFound)
	}
	if err != nil {
		return Appointment{}, fmt.Errorf("schedule: cancel appointment %q: %w", appointmentID, err)
	}
	if !strings.EqualFold(strings.TrimSpace(a.PatientName), strings.TrimSpace(patientName)) {
		return Appointment{}, fmt.Errorf("schedule: cancel appointment %q: %w", appointmentID, ErrNameMismatch)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE appointments SET status = 'cancelled' WHERE id = ?`, a.ID); err != nil {
		return Appointment{}, fmt.Errorf("schedule: cancel appointment %q: %w", appointmentID, err)
	}
	if err := tx.Commit(); err != nil {
		return Appointment{}, fmt.Errorf("schedule: cancel appointment %q: %w", appointmentID, err)
	}
	a.Status = StatusCancelled
	return a, nil
}

func (s *Store) querySlots(ctx context.Context, q string, args ...any) ([]Slot, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("schedule: query slots: %w", err)
	}
	out := []Slot{}
	for rows.Next() {
		var sl Slot
		var start, end string
		if err := rows.Scan(&sl.ID, &sl.ProviderID, &start, &end); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("schedule: scan slot: %w", err)
		}
		if sl.Start, err = time.Parse(TimeLayout, start); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("schedule: slot %q start: %w", sl.ID, err)
		}
		if sl.End, err = time.Parse(TimeLayout, end); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("schedule: slot %q end: %w", sl.ID, err)
		}
		out = append(out, sl)
	}
	return out, closeRows(rows)
}

func (s *Store) queryAppointments(ctx context.Context, q string, args ...any) ([]Appointment, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("schedule: query appointments: %w", err)
	}
	out := []Appointment{}
	for rows.Next() {
		var a Appointment
		if err := rows.Scan(&a.ID, &a.SlotID, &a.PatientName, &a.PatientPhone, &a.Reason, &a.Status, &a.CallID); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("schedule: scan appointment: %w", err)
		}
		out = append(out, a)
	}
	return out, closeRows(rows)
}

func closeRows(rows *sql.Rows) error {
	if err := rows.Err(); err != nil {
		_ = rows.Close()
		return fmt.Errorf("schedule: read rows: %w", err)
	}
	return rows.Close()
}

func formatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// classify maps SQLite constraint violations to this package's errors.
func classify(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		if strings.Contains(se.Error(), "appointments.slot_id") {
			return fmt.Errorf("%w (%v)", ErrSlotTaken, err)
		}
		return err
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	}
	return err
}
