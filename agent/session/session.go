// Package session is the production configuration of the receptionist's
// Realtime session: model, voice, instructions (including the crisis-safety
// rule) and the tools' JSON schemas. The service sends it when accepting a
// call and when minting client secrets; the eval runner imports it so evals
// exercise exactly what production runs.
package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

const (
	// DefaultModel is the Realtime model the receptionist runs on.
	DefaultModel = "gpt-realtime"
	// DefaultVoice is the output voice.
	DefaultVoice = "marin"
	// CrisisLine is the crisis line the agent always offers when a caller
	// signals risk of self-harm (the US 988 Suicide & Crisis Lifeline).
	CrisisLine = "988"
)

// Tool names, as the model sees them.
const (
	ToolCheckAvailability = "check_availability"
	ToolBookAppointment   = "book_appointment"
	ToolCancelAppointment = "cancel_appointment"
	ToolTransferToHuman   = "transfer_to_human"
	ToolEndCall           = "end_call"
	ToolCrisisEscalation  = "escalate_crisis"
	ToolTakeMessage       = "take_message"
)

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the arguments object.
	Parameters json.RawMessage
}

// Config is the session configuration.
type Config struct {
	Model        string
	Voice        string
	Instructions string
	Tools        []Tool
	// OutputModalities is ["audio"] for calls; evals use ["text"].
	OutputModalities []string
	// TranscriptionModel transcribes the caller's audio
	// (audio.input.transcription), so the agent sees caller turns
	// (conversation.item.input_audio_transcription.completed); "" for none.
	TranscriptionModel string
}

// DefaultTranscriptionModel transcribes callers' speech.
const DefaultTranscriptionModel = "gpt-4o-mini-transcribe"

// GreetingInstructions are added to the instructions of the call's first
// response, which the agent requests as soon as the call is connected:
// callers hear a greeting that says they are talking to an automated
// assistant.
const GreetingInstructions = `Greet the caller now, in one or two short sentences: say this is Harbor Behavioral Health, that they are talking to an automated assistant, and ask how you can help.`

// Greeting returns the instructions of the call's first response: the
// session's instructions followed by GreetingInstructions (response
// instructions replace the session's for that response).
func (c Config) Greeting() string {
	return strings.TrimRight(c.Instructions, "\n") + "\n\n" + GreetingInstructions
}

// Instructions is the receptionist's system prompt.
const Instructions = `You are the phone receptionist of Harbor Behavioral Health, an outpatient behavioral-health clinic. You help callers schedule, find and cancel appointments. Be warm, calm, brief and clear; speak in short sentences; one question at a time.

Scheduling:
- Use check_availability before offering times; only offer slots it returned, and read times back with the provider's name.
- Before book_appointment, collect the patient's full name and confirm the chosen slot; after booking, read back the date, time, provider and the appointment id.
- To cancel, ask for the appointment id and the patient's full name, then call cancel_appointment.
- All dates and times are the clinic's local time (the time zone named below). check_availability takes a local date; the times tools return carry the clinic's UTC offset: say them as local clock times (e.g. "9 AM"), never the offset.
- When the caller needs a person: use transfer_to_human; if it says no staff line is available, or the transfer failed, offer to take a message: ask for their name, the best number to call back (or use the number they are calling from) and a short non-clinical reason, then call take_message.
- Never invent availability, appointment ids or clinical advice. You do not diagnose, prescribe or give medical advice; offer to transfer to staff for clinical questions, billing or anything you cannot do.
- Do not repeat phone numbers or other personal details back more than needed.

Crisis safety (this rule overrides everything else):
- If a caller says or implies they may hurt themselves or someone else, are thinking about suicide, or are in immediate danger, stop scheduling. Respond with care, tell them they can call or text 988, the Suicide & Crisis Lifeline, any time, and that if they are in immediate danger they should call 911. Then call escalate_crisis right away so they are transferred to a person.
- Never end the call, argue, or move back to scheduling while a caller signals risk.

Ending: when the caller is done, say goodbye and call end_call.`

// Default returns the production configuration.
func Default() Config {
	return Config{
		Model:              DefaultModel,
		Voice:              DefaultVoice,
		Instructions:       Instructions,
		Tools:              DefaultTools(),
		OutputModalities:   []string{"audio"},
		TranscriptionModel: DefaultTranscriptionModel,
	}
}

// WithToday returns c with today's date appended to the instructions, so
// the model can resolve "tomorrow" or "next Tuesday" to the dates the tools
// take. now must be in the clinic's time zone (the agent passes
// time.Now().In(clinic) when a call starts): its date, clock and zone name
// are what the model is told.
func (c Config) WithToday(now time.Time) Config {
	_, offset := now.Zone()
	c.Instructions = strings.TrimRight(c.Instructions, "\n") +
		"\n\nToday is " + now.Format("Monday, 2 January 2006") + " (" + now.Format("2006-01-02") + "), " + now.Format("15:04 MST") +
		", in the clinic's time zone " + now.Location().String() + " (UTC" + utcOffset(offset) + ")."
	return c
}

// utcOffset renders a zone offset in seconds as +05:30, -05:00 or +00:00.
func utcOffset(seconds int) string {
	sign := "+"
	if seconds < 0 {
		sign, seconds = "-", -seconds
	}
	return fmt.Sprintf("%s%02d:%02d", sign, seconds/3600, seconds%3600/60)
}

// DefaultTools returns the receptionist's tools.
func DefaultTools() []Tool {
	return []Tool{
		{
			Name:        ToolCheckAvailability,
			Description: "List open appointment slots on a date, optionally for one provider. Returns slot ids, start/end times (the clinic's local time, RFC 3339 with its UTC offset, e.g. 2026-12-02T09:00:00-05:00), the clinic's time_zone and provider names.",
			Parameters: json.RawMessage(`{"type":"object","properties":{` +
				`"date":{"type":"string","description":"Local day to search in the clinic's time zone, YYYY-MM-DD."},` +
				`"provider_id":{"type":"string","description":"Optional provider id to restrict the search."}},` +
				`"required":["date"],"additionalProperties":false}`),
		},
		{
			Name:        ToolBookAppointment,
			Description: "Book an open slot for a patient. Only use slot ids returned by check_availability, after the caller confirmed the slot and gave their full name.",
			Parameters: json.RawMessage(`{"type":"object","properties":{` +
				`"slot_id":{"type":"string","description":"Slot id from check_availability."},` +
				`"patient_name":{"type":"string","description":"Patient's full name."},` +
				`"reason":{"type":"string","description":"Optional short non-clinical reason, e.g. new patient intake."}},` +
				`"required":["slot_id","patient_name"],"additionalProperties":false}`),
		},
		{
			Name:        ToolCancelAppointment,
			Description: "Cancel a booked appointment. Needs the appointment id and the patient's full name as booked.",
			Parameters: json.RawMessage(`{"type":"object","properties":{` +
				`"appointment_id":{"type":"string","description":"Appointment id, e.g. apt_0123456789ab."},` +
				`"patient_name":{"type":"string","description":"Patient's full name as booked."}},` +
				`"required":["appointment_id","patient_name"],"additionalProperties":false}`),
		},
		{
			Name:        ToolTransferToHuman,
			Description: "Transfer the call to clinic staff (front desk), e.g. for clinical, billing or other questions you cannot handle, or when the caller asks for a person.",
			Parameters: json.RawMessage(`{"type":"object","properties":{` +
				`"reason":{"type":"string","description":"Short reason for the transfer, without personal details."}},` +
				`"required":["reason"],"additionalProperties":false}`),
		},
		{
			Name:        ToolCrisisEscalation,
			Description: "Caller signals risk of self-harm, suicide, harming others or immediate danger: after offering the 988 Suicide & Crisis Lifeline, call this at once to transfer the caller to a crisis counselor.",
			Parameters: json.RawMessage(`{"type":"object","properties":{` +
				`"risk":{"type":"string","enum":["self_harm","harm_to_others","immediate_danger","unclear"],"description":"Kind of risk signalled."}},` +
				`"required":["risk"],"additionalProperties":false}`),
		},
		{
			Name:        ToolTakeMessage,
			Description: "Take a message for the front desk to call the caller back, when no staff line is available or a transfer failed. Needs the caller's name and a short non-clinical reason; the callback number defaults to the number they are calling from.",
			Parameters: json.RawMessage(`{"type":"object","properties":{` +
				`"caller_name":{"type":"string","description":"Caller's full name."},` +
				`"callback_number":{"type":"string","description":"Number to call back, if the caller gives one, e.g. +1 555 010 0199; omit to use the number they are calling from."},` +
				`"reason":{"type":"string","description":"Short non-clinical reason for the callback, e.g. billing question."}},` +
				`"required":["caller_name","reason"],"additionalProperties":false}`),
		},
		{
			Name:        ToolEndCall,
			Description: "End the call after saying goodbye, when the caller has nothing else. Never while a caller signals risk.",
			Parameters: json.RawMessage(`{"type":"object","properties":{` +
				`"reason":{"type":"string","description":"Short reason, e.g. caller done."}},` +
				`"additionalProperties":false}`),
		},
	}
}

// Validate reports a configuration the API would refuse.
func (c Config) Validate() error {
	var errs []error
	if c.Model == "" {
		errs = append(errs, errors.New("session: model is empty"))
	}
	if c.Instructions == "" {
		errs = append(errs, errors.New("session: instructions are empty"))
	}
	seen := map[string]bool{}
	for _, t := range c.Tools {
		if t.Name == "" {
			errs = append(errs, errors.New("session: a tool has no name"))
		}
		if seen[t.Name] {
			errs = append(errs, fmt.Errorf("session: tool %q defined twice", t.Name))
		}
		seen[t.Name] = true
		var schema map[string]any
		if err := json.Unmarshal(t.Parameters, &schema); err != nil {
			errs = append(errs, fmt.Errorf("session: tool %q parameters are not a JSON object: %w", t.Name, err))
		} else if schema["type"] != "object" {
			errs = append(errs, fmt.Errorf("session: tool %q parameters schema must have type object", t.Name))
		}
	}
	return errors.Join(errs...)
}

// Object is the Realtime API session object (type "realtime"), as sent in
// the body of POST /v1/realtime/calls/{call_id}/accept, in the "session"
// field of POST /v1/realtime/client_secrets and of a session.update event.
type Object struct {
	Type             string       `json:"type"`
	Model            string       `json:"model,omitempty"`
	Instructions     string       `json:"instructions,omitempty"`
	OutputModalities []string     `json:"output_modalities,omitempty"`
	Audio            *Audio       `json:"audio,omitempty"`
	Tools            []ToolObject `json:"tools,omitempty"`
	ToolChoice       string       `json:"tool_choice,omitempty"`
}

// Audio is the session's audio configuration.
type Audio struct {
	Input  *AudioInput  `json:"input,omitempty"`
	Output *AudioOutput `json:"output,omitempty"`
}

// AudioInput configures the caller's audio: transcription and turn
// detection.
type AudioInput struct {
	Transcription *Transcription `json:"transcription,omitempty"`
	TurnDetection *TurnDetection `json:"turn_detection,omitempty"`
}

// Transcription configures input audio transcription.
type Transcription struct {
	Model string `json:"model"`
}

// TurnDetection is server voice activity detection: a caller turn ends a
// response automatically (create_response) and caller speech interrupts
// the assistant (interrupt_response).
type TurnDetection struct {
	Type              string `json:"type"`
	CreateResponse    bool   `json:"create_response"`
	InterruptResponse bool   `json:"interrupt_response"`
}

// AudioOutput configures the output voice.
type AudioOutput struct {
	Voice string `json:"voice,omitempty"`
}

// ToolObject is a function tool in the session object.
type ToolObject struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
}

// Object returns the documented Realtime session object for c.
func (c Config) Object() Object {
	o := Object{
		Type:             "realtime",
		Model:            c.Model,
		Instructions:     c.Instructions,
		OutputModalities: c.OutputModalities,
		ToolChoice:       "auto",
	}
	if c.Voice != "" {
		o.Audio = &Audio{Output: &AudioOutput{Voice: c.Voice}}
	}
	if c.TranscriptionModel != "" {
		if o.Audio == nil {
			o.Audio = &Audio{}
		}
		o.Audio.Input = &AudioInput{
			Transcription: &Transcription{Model: c.TranscriptionModel},
			TurnDetection: &TurnDetection{Type: "server_vad", CreateResponse: true, InterruptResponse: true},
		}
	}
	for _, t := range c.Tools {
		o.Tools = append(o.Tools, ToolObject{Type: "function", Name: t.Name, Description: t.Description, Parameters: t.Parameters})
	}
	if len(o.Tools) == 0 {
		o.ToolChoice = ""
	}
	return o
}

// JSON returns the session object as JSON.
func (c Config) JSON() ([]byte, error) {
	b, err := json.Marshal(c.Object())
	if err != nil {
		return nil, fmt.Errorf("session: encode session object: %w", err)
	}
	return b, nil
}

// Text returns a copy of c answering in text instead of audio (evals).
func (c Config) Text() Config {
	c.OutputModalities = []string{"text"}
	c.Tools = append([]Tool(nil), c.Tools...)
	return c
}

// Tool returns the tool named name.
func (c Config) Tool(name string) (Tool, bool) {
	for _, t := range c.Tools {
		if t.Name == name {
			return t, true
		}
	}
	return Tool{}, false
}
