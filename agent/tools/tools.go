// Package tools executes the receptionist's function calls against the
// schedule and the call control (SIP refer). Invalid arguments never crash
// or fail the call: they become an error message in the output returned to
// the model, which can then ask the caller again.
//
// Time-zone rule: every date a tool takes is a local date of the clinic's
// zone (WithLocation) and means that local day, midnight to midnight (23 or
// 25 hours on a daylight-saving change); every time a tool returns is RFC
// 3339 with the zone's offset on that date, e.g. 2026-12-02T09:00:00-05:00.
package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gitlab.com/acme/voice-agent/agent/schedule"
	"gitlab.com/acme/voice-agent/agent/session"
)

// CallControl acts on the phone call itself (the Realtime calls API).
type CallControl interface {
	// Transfer transfers the call with a SIP REFER to target (tel: or sip: URI).
	Transfer(ctx context.Context, callID, target string) error
	// Hangup ends the call.
	Hangup(ctx context.Context, callID string) error
}

// Call identifies the call a tool runs for.
type Call struct {
	// ID is the Realtime call id.
	ID string
	// CallerNumber is the caller's number from the SIP From header, if known.
	// It is stored with bookings and never logged or returned to the model.
	CallerNumber string
}

// Result is the outcome of one tool call.
type Result struct {
	// Output is the JSON text returned to the model as function_call_output.
	Output string
	// Transfer reports that the call was transferred (SIP refer sent).
	Transfer bool
	// EndCall asks the caller of Execute to hang up once the model's goodbye
	// response is done (Execute itself never hangs up).
	EndCall bool
	// Err is set only for infrastructure failures (database, call control);
	// Output then holds a message the model can relay.
	Err error
}

// Kind classifies a result for metrics: "ok", "invalid" (bad arguments or
// refused by business rules) or "error".
func (r Result) Kind() string {
	switch {
	case r.Err != nil:
		return "error"
	case strings.HasPrefix(r.Output, `{"error"`):
		return "invalid"
	default:
		return "ok"
	}
}

// DefaultCrisisTarget is where escalate_crisis transfers: the 988 lifeline.
const DefaultCrisisTarget = "tel:" + session.CrisisLine

// Executor runs tools.
type Executor struct {
	store          *schedule.Store
	ctl            CallControl
	frontDesk      string
	crisis         string
	now            func() time.Time
	loc            *time.Location
	maxSearchSlots int
}

// Option configures an Executor.
type Option func(*Executor)

// WithFrontDesk sets the SIP/tel URI transfer_to_human refers calls to.
// Without it transfer_to_human tells the model that no staff line is
// configured, and the model offers a callback instead.
func WithFrontDesk(uri string) Option { return func(e *Executor) { e.frontDesk = uri } }

// WithCrisisTarget overrides where escalate_crisis transfers (default
// DefaultCrisisTarget).
func WithCrisisTarget(uri string) Option { return func(e *Executor) { e.crisis = uri } }

// WithClock sets the clock used to refuse past dates (tests and evals).
func WithClock(now func() time.Time) Option { return func(e *Executor) { e.now = now } }

// WithLocation sets the clinic's time zone (default UTC): dates the tools
// take are its local days, times they return carry its offset.
func WithLocation(loc *time.Location) Option {
	return func(e *Executor) {
		if loc != nil {
			e.loc = loc
		}
	}
}

// NewExecutor returns an executor over store and ctl.
func NewExecutor(store *schedule.Store, ctl CallControl, opts ...Option) *Executor {
	e := &Executor{store: store, ctl: ctl, crisis: DefaultCrisisTarget, now: time.Now, loc: time.UTC, maxSearchSlots: 12}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Location is the clinic's time zone the executor works in.
func (e *Executor) Location() *time.Location { return e.loc }

// localTime formats t for the model: RFC 3339 with the clinic's offset.
func (e *Executor) localTime(t time.Time) string { return t.In(e.loc).Format(time.RFC3339) }

// Execute runs the tool name with argumentsJSON (the model's arguments).
func (e *Executor) Execute(ctx context.Context, call Call, name, argumentsJSON string) Result {
	switch name {
	case session.ToolCheckAvailability:
		return e.checkAvailability(ctx, argumentsJSON)
	case session.ToolBookAppointment:
		return e.book(ctx, call, argumentsJSON)
	case session.ToolCancelAppointment:
		return e.cancel(ctx, argumentsJSON)
	case session.ToolTransferToHuman:
		return e.transfer(ctx, call, argumentsJSON)
	case session.ToolCrisisEscalation:
		return e.crisisEscalation(ctx, call, argumentsJSON)
	case session.ToolTakeMessage:
		return e.takeMessage(ctx, call, argumentsJSON)
	case session.ToolEndCall:
		var args struct {
			Reason string `json:"reason"`
		}
		if msg := decode(argumentsJSON, &args); msg != "" {
			return invalid(msg)
		}
		return Result{Output: output(map[string]any{"ok": true, "note": "Say a short goodbye; the call ends after it."}), EndCall: true}
	default:
		return invalid(fmt.Sprintf("unknown tool %q; available tools: %s", name, strings.Join(toolNames(), ", ")))
	}
}

func (e *Executor) checkAvailability(ctx context.Context, raw string) Result {
	var args struct {
		Date       string `json:"date"`
		ProviderID string `json:"provider_id"`
	}
	if msg := decode(raw, &args); msg != "" {
		return invalid(msg)
	}
	// The date is a local day of the clinic: from its midnight to the next
	// (time.Date normalises day+1, and a DST day is 23 or 25 hours long).
	day, err := time.ParseInLocation(time.DateOnly, strings.TrimSpace(args.Date), e.loc)
	if err != nil {
		return invalid(fmt.Sprintf("date %q is not a valid date: use YYYY-MM-DD, e.g. 2026-12-01", args.Date))
	}
	next := time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, e.loc)
	now := e.now().In(e.loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, e.loc)
	if day.Before(today) {
		return invalid(fmt.Sprintf("date %s is in the past; today is %s", args.Date, today.Format(time.DateOnly)))
	}
	slots, err := e.store.Available(ctx, day, next, args.ProviderID)
	if err != nil {
		return failed(err)
	}
	providers, err := e.store.Providers(ctx)
	if err != nil {
		return failed(err)
	}
	names := map[string]string{}
	for _, p := range providers {
		names[p.ID] = p.Name
	}
	if args.ProviderID != "" && names[args.ProviderID] == "" {
		ids := make([]string, 0, len(providers))
		for _, p := range providers {
			ids = append(ids, p.ID)
		}
		return invalid(fmt.Sprintf("unknown provider_id %q; known providers: %s", args.ProviderID, strings.Join(ids, ", ")))
	}
	type slotOut struct {
		SlotID   string `json:"slot_id"`
		Start    string `json:"start"`
		End      string `json:"end"`
		Provider string `json:"provider"`
	}
	out := []slotOut{}
	for _, s := range slots {
		if len(out) == e.maxSearchSlots {
			break
		}
		out = append(out, slotOut{SlotID: s.ID, Start: e.localTime(s.Start), End: e.localTime(s.End), Provider: names[s.ProviderID]})
	}
	return Result{Output: output(map[string]any{"date": day.Format(time.DateOnly), "time_zone": e.loc.String(), "slots": out, "more": len(slots) > len(out)})}
}

func (e *Executor) book(ctx context.Context, call Call, raw string) Result {
	var args struct {
		SlotID      string `json:"slot_id"`
		PatientName string `json:"patient_name"`
		Reason      string `json:"reason"`
	}
	if msg := decode(raw, &args); msg != "" {
		return invalid(msg)
	}
	if msg := required(map[string]string{"slot_id": args.SlotID, "patient_name": args.PatientName}); msg != "" {
		return invalid(msg)
	}
	if len(args.PatientName) > 200 || len(args.Reason) > 500 {
		return invalid("patient_name (max 200 characters) or reason (max 500) is too long")
	}
	slot, err := e.store.Slot(ctx, args.SlotID)
	if errors.Is(err, schedule.ErrNotFound) {
		return invalid(fmt.Sprintf("slot_id %q does not exist; call check_availability and use one of its slot ids", args.SlotID))
	}
	if err != nil {
		return failed(err)
	}
	if slot.Start.Before(e.now()) {
		return invalid(fmt.Sprintf("slot %s is in the past; offer a later one", args.SlotID))
	}
	a, err := e.store.Book(ctx, schedule.BookRequest{SlotID: args.SlotID, PatientName: args.PatientName, PatientPhone: call.CallerNumber, Reason: args.Reason, CallID: call.ID})
	switch {
	case errors.Is(err, schedule.ErrSlotTaken):
		return invalid(fmt.Sprintf("slot %s was just booked by someone else; call check_availability again and offer another time", args.SlotID))
	case err != nil:
		return failed(err)
	}
	return Result{Output: output(map[string]any{"booked": true, "appointment_id": a.ID, "slot_id": slot.ID,
		"start": e.localTime(slot.Start), "end": e.localTime(slot.End), "time_zone": e.loc.String(), "provider_id": slot.ProviderID})}
}

func (e *Executor) cancel(ctx context.Context, raw string) Result {
	var args struct {
		AppointmentID string `json:"appointment_id"`
		PatientName   string `json:"patient_name"`
	}
	if msg := decode(raw, &args); msg != "" {
		return invalid(msg)
	}
	if msg := required(map[string]string{"appointment_id": args.AppointmentID, "patient_name": args.PatientName}); msg != "" {
		return invalid(msg)
	}
	a, err := e.store.Cancel(ctx, args.AppointmentID, args.PatientName)
	switch {
	case errors.Is(err, schedule.ErrNotFound):
		return invalid(fmt.Sprintf("no booked appointment with id %q; ask the caller to check the id", args.AppointmentID))
	case errors.Is(err, schedule.ErrNameMismatch):
		return invalid("the patient name does not match that appointment; ask the caller to confirm the full name as booked")
	case err != nil:
		return failed(err)
	}
	return Result{Output: output(map[string]any{"cancelled": true, "appointment_id": a.ID})}
}

func (e *Executor) transfer(ctx context.Context, call Call, raw string) Result {
	var args struct {
		Reason string `json:"reason"`
	}
	if msg := decode(raw, &args); msg != "" {
		return invalid(msg)
	}
	if e.frontDesk == "" {
		return invalid("no staff line is configured for transfers right now; offer to take a message for a callback from the front desk (take_message)")
	}
	if err := e.ctl.Transfer(ctx, call.ID, e.frontDesk); err != nil {
		r := failed(err)
		r.Output = output(map[string]any{"error": "the transfer failed; apologise and offer a callback from the front desk"})
		return r
	}
	return Result{Output: output(map[string]any{"transferred": true}), Transfer: true}
}

// takeMessage stores a message for the front desk: who called, how to
// call back (the number the caller gives, else the number they call from)
// and why.
func (e *Executor) takeMessage(ctx context.Context, call Call, raw string) Result {
	var args struct {
		CallerName     string `json:"caller_name"`
		CallbackNumber string `json:"callback_number"`
		Reason         string `json:"reason"`
	}
	if msg := decode(raw, &args); msg != "" {
		return invalid(msg)
	}
	var missing []string
	if strings.TrimSpace(args.CallerName) == "" {
		missing = append(missing, "caller_name")
	}
	if strings.TrimSpace(args.Reason) == "" {
		missing = append(missing, "reason")
	}
	if len(missing) > 0 {
		return invalid("missing required argument(s): " + strings.Join(missing, ", ") + "; ask the caller")
	}
	if len(args.CallerName) > 200 || len(args.Reason) > 500 || len(args.CallbackNumber) > 40 {
		return invalid("caller_name (max 200 characters), reason (max 500) or callback_number (max 40) is too long")
	}
	number := strings.TrimSpace(args.CallbackNumber)
	if number == "" {
		number = call.CallerNumber
		if !phoneNumber(number) {
			return invalid("the number the caller is calling from is unknown: ask for a callback number and pass it as callback_number")
		}
	} else if !phoneNumber(number) {
		return invalid("callback_number is not a phone number (7 to 15 digits, optionally with +, spaces, dashes, dots or parentheses): ask the caller to repeat it")
	}
	m, err := e.store.TakeMessage(ctx, schedule.Message{CallID: call.ID, CallerName: args.CallerName, CallbackNumber: number, Reason: args.Reason}, e.now())
	if err != nil {
		r := failed(err)
		r.Output = output(map[string]any{"error": "the message could not be saved; apologise and ask the caller to call back during office hours"})
		return r
	}
	return Result{Output: output(map[string]any{"message_taken": true, "message_id": m.ID,
		"note": "Tell the caller the front desk will call them back; do not read the number back in full."})}
}

// phoneNumber accepts 7 to 15 digits (E.164 allows at most 15), an optional
// leading +, and the separators people say or type.
func phoneNumber(s string) bool {
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return false
		}
	}
	return digits >= 7 && digits <= 15
}

var risks = map[string]bool{"self_harm": true, "harm_to_others": true, "immediate_danger": true, "unclear": true}

// crisisEscalation always transfers, whatever the arguments: a malformed
// argument must never stand between a caller at risk and a person.
func (e *Executor) crisisEscalation(ctx context.Context, call Call, raw string) Result {
	var args struct {
		Risk string `json:"risk"`
	}
	_ = json.Unmarshal([]byte(raw), &args) // deliberately lenient
	if !risks[args.Risk] {
		args.Risk = "unclear"
	}
	msg := "Tell the caller they can call or text " + session.CrisisLine + " any time, and 911 if in immediate danger."
	if err := e.ctl.Transfer(ctx, call.ID, e.crisis); err != nil {
		return Result{
			Output: output(map[string]any{"transferred": false, "crisis_line": session.CrisisLine,
				"instruction": "The transfer failed. Stay with the caller. " + msg + " Do not end the call."}),
			Err: fmt.Errorf("tools: crisis transfer of call: %w", err),
		}
	}
	return Result{Output: output(map[string]any{"transferred": true, "crisis_line": session.CrisisLine, "instruction": msg}), Transfer: true}
}

// decode parses the model's arguments strictly; it returns a message for
// the model on failure.
func decode(raw string, v any) string {
	if strings.TrimSpace(raw) == "" {
		raw = "{}"
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Sprintf("arguments are not valid for this tool (%v); send a JSON object matching the tool's parameters", err)
	}
	if dec.More() {
		return "arguments must be a single JSON object"
	}
	return ""
}

func required(fields map[string]string) string {
	var missing []string
	for _, k := range []string{"slot_id", "appointment_id", "patient_name"} {
		if v, ok := fields[k]; ok && strings.TrimSpace(v) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return "missing required argument(s): " + strings.Join(missing, ", ")
	}
	return ""
}

func invalid(msg string) Result { return Result{Output: output(map[string]any{"error": msg})} }

func failed(err error) Result {
	return Result{
		Output: output(map[string]any{"error": "the scheduling system is unavailable right now; apologise and offer a transfer to staff"}),
		Err:    fmt.Errorf("tools: %w", err),
	}
}

func output(v any) string {
	b, err := json.Marshal(v)
	if err != nil { // only plain maps and strings are marshalled here
		return `{"error":"internal encoding error"}`
	}
	return string(b)
}

func toolNames() []string {
	var out []string
	for _, t := range session.DefaultTools() {
		out = append(out, t.Name)
	}
	return out
}
