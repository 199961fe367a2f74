package schedule

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Message is a message the receptionist took for the front desk (when no
// staff line is configured): who called, how to call back, and why.
type Message struct {
	ID             string    `json:"id"`
	CallID         string    `json:"call_id,omitempty"`
	CallerName     string    `json:"caller_name"`
	CallbackNumber string    `json:"callback_number"`
	Reason         string    `json:"reason"`
	CreatedAt      time.Time `json:"created_at"`
}

// TakeMessage stores m (ID and CreatedAt are set here) and returns it.
func (s *Store) TakeMessage(ctx context.Context, m Message, now time.Time) (Message, error) {
	m.ID = newID("msg")
	m.CallerName = strings.TrimSpace(m.CallerName)
	m.CallbackNumber = strings.TrimSpace(m.CallbackNumber)
	m.Reason = strings.TrimSpace(m.Reason)
	m.CreatedAt = now.UTC().Truncate(time.Second)
	if m.CallerName == "" || m.CallbackNumber == "" || m.Reason == "" {
		return Message{}, errors.New("schedule: take message: caller name, callback number and reason are required")
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO messages(id, call_id, caller_name, callback_number, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		m.ID, m.CallID, m.CallerName, m.CallbackNumber, m.Reason, formatTime(m.CreatedAt)); err != nil {
		return Message{}, fmt.Errorf("schedule: take message: %w", err)
	}
	return m, nil
}

// Messages lists the messages taken at or after since, oldest first.
func (s *Store) Messages(ctx context.Context, since time.Time) ([]Message, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, call_id, caller_name, callback_number, reason, created_at FROM messages WHERE created_at >= ? ORDER BY created_at, rowid`, formatTime(since))
	if err != nil {
		return nil, fmt.Errorf("schedule: messages: %w", err)
	}
	out := []Message{}
	for rows.Next() {
		var m Message
		var at string
		if err := rows.Scan(&m.ID, &m.CallID, &m.CallerName, &m.CallbackNumber, &m.Reason, &at); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("schedule: scan message: %w", err)
		}
		if m.CreatedAt, err = time.Parse(TimeLayout, at); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("schedule: message %q time: %w", m.ID, err)
		}
		out = append(out, m)
	}
	return out, closeRows(rows)
}
