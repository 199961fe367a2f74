package suite

import (
	"fmt"
	"time"
)

// Recording sources.
const (
	// SourceRecorded: written by --mode record from a live run.
	SourceRecorded = "recorded"
	// SourceHandWritten: written by a person (and keyed with cmd/rekey).
	SourceHandWritten = "hand-written"
)

// Recording says how a case's model side was made and what the model was
// given when it was made (Seen), so a replay against a changed agent fails
// closed and says what changed.
type Recording struct {
	// Source is "recorded" or "hand-written".
	Source string `yaml:"source"`
	// Model is the model a recording came from (recorded).
	Model string `yaml:"model,omitempty"`
	// Date is when it was recorded (recorded).
	Date string `yaml:"date,omitempty"`
	// KeyedBy and KeyedAt say who re-keyed a hand-written recording last,
	// and when (cmd/rekey).
	KeyedBy string `yaml:"keyed_by,omitempty"`
	KeyedAt string `yaml:"keyed_at,omitempty"`
	// Reason is the reason given when re-keying accepted changed tool
	// outputs (cmd/rekey --accept-outputs).
	Reason string `yaml:"reason,omitempty"`
	// Seen is what the model was given, per component.
	Seen *Seen `yaml:"seen,omitempty"`
}

// Seen is what the model was given, as hashes per component.
type Seen struct {
	// Model is the model name in the session.
	Model string `yaml:"model" json:"model"`
	// Instructions are the paragraphs of the instructions.
	Instructions []Section `yaml:"instructions" json:"instructions"`
	// Tools maps each declared tool to the hash of its description and
	// JSON schema.
	Tools map[string]string `yaml:"tools" json:"tools"`
	// Outputs are the tool outputs the agent produced, in order.
	Outputs []OutputSeen `yaml:"outputs,omitempty" json:"outputs,omitempty"`
}

// Section is one paragraph of the instructions: its first words and hash.
type Section struct {
	Head string `yaml:"head" json:"head"`
	Hash string `yaml:"hash" json:"hash"`
}

// OutputSeen is one tool output: which tool produced it and its hash.
type OutputSeen struct {
	Tool string `yaml:"tool" json:"tool"`
	Hash string `yaml:"hash" json:"hash"`
}

func (r *Recording) validate() error {
	switch r.Source {
	case SourceRecorded:
		if r.Model == "" || r.Date == "" {
			return fmt.Errorf("recording: source recorded needs model and date")
		}
		if _, err := time.Parse("2006-01-02", r.Date); err != nil {
			return fmt.Errorf("recording: date %q is not YYYY-MM-DD", r.Date)
		}
	case SourceHandWritten:
	default:
		return fmt.Errorf("recording: source %q is not %q or %q", r.Source, SourceRecorded, SourceHandWritten)
	}
	return nil
}
