package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"gitlab.com/acme/voice-agent/agent/config"
	"gitlab.com/acme/voice-agent/agent/schedule"
)

// importSchedule is `voice-agent import-schedule FILE`: it parses the whole
// file, then imports it in one transaction (nothing on any error). Exit 0
// imported, 1 refused (bad lines or a clash with the schedule), 2 usage or
// configuration.
func importSchedule(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("voice-agent import-schedule", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: voice-agent import-schedule FILE   (CSV; - reads stdin)\n"+
			"columns: provider_id,provider_name,specialty,date,start,end,time_zone (specialty and time_zone optional)\n"+
			"times are local to time_zone, else the clinic's zone (VOICE_AGENT_TIMEZONE, else TZ); see agent/README.md\n")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	cfg, err := config.ClinicFromEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "voice-agent: invalid configuration:\n%v\n", err)
		return 2
	}
	name := fs.Arg(0)
	in := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "voice-agent: import-schedule: %v\n", err)
			return 2
		}
		defer f.Close()
		in = f
	}
	file, err := schedule.ParseScheduleCSV(in, cfg.Location)
	if err != nil {
		fmt.Fprintf(stderr, "voice-agent: import-schedule %s: %v\n", name, err)
		return 1
	}
	ctx := context.Background()
	store, err := schedule.Open(ctx, cfg.DBPath)
	if err != nil {
		fmt.Fprintf(stderr, "voice-agent: import-schedule: %v\n", err)
		return 1
	}
	defer store.Close()
	res, err := store.Import(ctx, file)
	if err != nil {
		var ie *schedule.ImportError
		if !errors.As(err, &ie) {
			err = fmt.Errorf("nothing imported: %w", err)
		}
		fmt.Fprintf(stderr, "voice-agent: import-schedule %s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(stdout, "imported %s into %s (times in %s): %d providers added, %d updated; %d slots added, %d already there\n",
		name, cfg.DBPath, cfg.Location, res.ProvidersAdded, res.ProvidersUpdated, res.SlotsAdded, res.SlotsUnchanged)
	return 0
}

// exportMessages is `voice-agent messages [-since RFC3339]`: the messages
// taken for the front desk, as CSV on stdout (times in the clinic's zone).
func exportMessages(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("voice-agent messages", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sinceFlag := fs.String("since", "", "only messages taken at or after this RFC 3339 time, e.g. 2026-12-02T09:00:00-05:00")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var since time.Time
	if *sinceFlag != "" {
		t, err := time.Parse(time.RFC3339, *sinceFlag)
		if err != nil {
			fmt.Fprintf(stderr, "voice-agent: messages: -since %q is not an RFC 3339 time, e.g. 2026-12-02T09:00:00-05:00\n", *sinceFlag)
			return 2
		}
		since = t
	}
	cfg, err := config.ClinicFromEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "voice-agent: invalid configuration:\n%v\n", err)
		return 2
	}
	if _, err := os.Stat(cfg.DBPath); err != nil {
		fmt.Fprintf(stderr, "voice-agent: messages: no schedule database at VOICE_AGENT_DB=%s: %v\n", cfg.DBPath, err)
		return 1
	}
	ctx := context.Background()
	store, err := schedule.Open(ctx, cfg.DBPath)
	if err != nil {
		fmt.Fprintf(stderr, "voice-agent: messages: %v\n", err)
		return 1
	}
	defer store.Close()
	msgs, err := store.Messages(ctx, since)
	if err != nil {
		fmt.Fprintf(stderr, "voice-agent: messages: %v\n", err)
		return 1
	}
	w := csv.NewWriter(stdout)
	_ = w.Write([]string{"taken_at", "caller_name", "callback_number", "reason", "call_id", "id"})
	for _, m := range msgs {
		_ = w.Write([]string{m.CreatedAt.In(cfg.Location).Format(time.RFC3339), m.CallerName, m.CallbackNumber, m.Reason, m.CallID, m.ID})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		fmt.Fprintf(stderr, "voice-agent: messages: %v\n", err)
		return 1
	}
	return 0
}
