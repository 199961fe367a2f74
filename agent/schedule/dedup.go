package schedule

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Claim is the outcome of ClaimDelivery.
type Claim int

const (
	// ClaimNew: first delivery of this webhook and this call; handle it.
	ClaimNew Claim = iota
	// ClaimDuplicateDelivery: this webhook-id was already claimed (an
	// OpenAI retry or a replay); answer 2xx and do nothing.
	ClaimDuplicateDelivery
	// ClaimDuplicateCall: another webhook-id already claimed this call_id;
	// answer 2xx and do nothing (never accept a call twice).
	ClaimDuplicateCall
)

func (c Claim) String() string {
	switch c {
	case ClaimNew:
		return "new"
	case ClaimDuplicateDelivery:
		return "duplicate_delivery"
	case ClaimDuplicateCall:
		return "duplicate_call"
	}
	return fmt.Sprintf("Claim(%d)", int(c))
}

// DeliveryRetention is how long a webhook-id is remembered. OpenAI's
// signatures are only accepted within 5 minutes of their timestamp, so an
// older replay is refused before deduplication; a day is generous. Call
// ids are kept (one short row per call).
const DeliveryRetention = 24 * time.Hour

// ClaimDelivery records that the webhook webhookID about call callID is
// being handled, in the database, so that a duplicate (the same
// webhook-id, or the same call_id under another webhook-id) is recognised
// even after a restart. callID may be "" for events about no call. If the
// handling fails, ReleaseDelivery lets OpenAI's retry through.
func (s *Store) ClaimDelivery(ctx context.Context, webhookID, callID string, now time.Time) (Claim, error) {
	if webhookID == "" {
		return 0, errors.New("schedule: claim delivery: empty webhook id")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("schedule: claim delivery: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	at := formatTime(now)
	if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE received_at < ?`, formatTime(now.Add(-DeliveryRetention))); err != nil {
		return 0, fmt.Errorf("schedule: claim delivery: prune: %w", err)
	}
	var seen string
	err = tx.QueryRowContext(ctx, `SELECT webhook_id FROM webhook_deliveries WHERE webhook_id = ?`, webhookID).Scan(&seen)
	switch {
	case err == nil:
		return ClaimDuplicateDelivery, nil
	case !errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("schedule: claim delivery: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries(webhook_id, call_id, received_at) VALUES (?, ?, ?)`, webhookID, callID, at); err != nil {
		return 0, fmt.Errorf("schedule: claim delivery: %w", err)
	}
	claim := ClaimNew
	if callID != "" {
		res, err := tx.ExecContext(ctx, `INSERT INTO calls(call_id, webhook_id, received_at) VALUES (?, ?, ?) ON CONFLICT(call_id) DO NOTHING`, callID, webhookID, at)
		if err != nil {
			return 0, fmt.Errorf("schedule: claim call: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return 0, fmt.Errorf("schedule: claim call: %w", err)
		} else if n == 0 {
			claim = ClaimDuplicateCall
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("schedule: claim delivery: %w", err)
	}
	return claim, nil
}

// ReleaseDelivery forgets a claim whose handling failed (the call could
// not be accepted or rejected), so that OpenAI's retry of the same
// webhook is handled. It releases the call only if this webhook claimed it.
func (s *Store) ReleaseDelivery(ctx context.Context, webhookID, callID string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("schedule: release delivery: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE webhook_id = ?`, webhookID); err != nil {
		return fmt.Errorf("schedule: release delivery: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM calls WHERE call_id = ? AND webhook_id = ?`, callID, webhookID); err != nil {
		return fmt.Errorf("schedule: release call: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("schedule: release delivery: %w", err)
	}
	return nil
}
