// Package config reads the agent's configuration from the environment and
// validates it at start, with errors naming the variable and the fix.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // the clinic's zone resolves even on an image without a zoneinfo database

	"gitlab.com/acme/voice-agent/agent/realtime"
	"gitlab.com/acme/voice-agent/agent/webhook"
)

// Config is the agent's configuration.
type Config struct {
	APIKey          string        // OPENAI_API_KEY (required)
	WebhookSecret   string        // OPENAI_WEBHOOK_SECRET (required)
	BaseURL         string        // OPENAI_BASE_URL
	DBPath          string        // VOICE_AGENT_DB
	MaxCalls        int           // VOICE_AGENT_MAX_CALLS
	Addr            string        // VOICE_AGENT_ADDR
	TransferURI     string        // VOICE_AGENT_TRANSFER_URI
	CrisisURI       string        // VOICE_AGENT_CRISIS_URI
	ShutdownTimeout time.Duration // VOICE_AGENT_SHUTDOWN_TIMEOUT
	// Location is the clinic's time zone (VOICE_AGENT_TIMEZONE, else TZ,
	// else UTC): every date and time the agent speaks, takes or stores for
	// the caller is local to it.
	Location *time.Location
	// StaffToken authorises the staff endpoints (VOICE_AGENT_STAFF_TOKEN);
	// empty disables them (404).
	StaffToken string
	// RequireSRTP rejects calls whose media is not SRTP (VOICE_AGENT_REQUIRE_SRTP).
	RequireSRTP bool
	// Demo seeds an empty schedule with the demo clinic (VOICE_AGENT_DEMO=1).
	Demo bool
}

// Defaults.
const (
	DefaultDBPath          = "data/schedule.db"
	DefaultMaxCalls        = 20
	DefaultAddr            = ":8080"
	DefaultShutdownTimeout = 30 * time.Second
)

// Var documents one environment variable (README table, errors).
type Var struct {
	Name, Default, Description string
	Required                   bool
}

// Vars lists every variable the agent reads.
var Vars = []Var{
	{Name: "OPENAI_API_KEY", Required: true, Description: "OpenAI API key (secret)."},
	{Name: "OPENAI_WEBHOOK_SECRET", Required: true, Description: "Signing secret of the project's webhook (whsec_...; secret)."},
	{Name: "OPENAI_BASE_URL", Default: realtime.DefaultBaseURL, Description: "API base URL (private gateways, tests); http(s), the sideband uses ws(s) on the same host."},
	{Name: "VOICE_AGENT_DB", Default: DefaultDBPath, Description: "SQLite file of the schedule, created with migrations on first start (relative to the working directory)."},
	{Name: "VOICE_AGENT_MAX_CALLS", Default: strconv.Itoa(DefaultMaxCalls), Description: "Concurrent calls; further calls are rejected with SIP 486 Busy Here."},
	{Name: "VOICE_AGENT_ADDR", Default: DefaultAddr, Description: "HTTP listen address."},
	{Name: "VOICE_AGENT_TRANSFER_URI", Default: "", Description: "tel:/sip: URI transfer_to_human refers calls to; empty: the agent offers a callback instead."},
	{Name: "VOICE_AGENT_CRISIS_URI", Default: "tel:988", Description: "tel:/sip: URI escalate_crisis refers calls to."},
	{Name: "VOICE_AGENT_SHUTDOWN_TIMEOUT", Default: DefaultShutdownTimeout.String(), Description: "On SIGTERM, how long active calls may continue before they are hung up."},
	{Name: "VOICE_AGENT_TIMEZONE", Default: "TZ, else UTC", Description: "The clinic's IANA time zone, e.g. America/New_York: tool dates and times, the instructions' today and schedule imports are local to it."},
	{Name: "VOICE_AGENT_STAFF_TOKEN", Default: "", Description: "Bearer token (at least 32 characters, secret) for POST /v1/realtime/client-secret and GET /v1/staff/messages; empty: both answer 404."},
	{Name: "VOICE_AGENT_REQUIRE_SRTP", Default: "0", Description: "1: reject calls whose sip_media_security is not srtp with SIP 488."},
	{Name: "VOICE_AGENT_DEMO", Default: "0", Description: "1: seed an empty schedule with the demo clinic (fictional providers); never in production."},
}

// MinStaffTokenLength is the shortest VOICE_AGENT_STAFF_TOKEN accepted.
const MinStaffTokenLength = 32

// Clinic is the part of the configuration the schedule commands need
// (import-schedule, messages): no OpenAI credentials.
type Clinic struct {
	DBPath   string         // VOICE_AGENT_DB
	Location *time.Location // VOICE_AGENT_TIMEZONE, else TZ, else UTC
}

// ClinicFromEnv reads VOICE_AGENT_DB and the clinic's time zone.
func ClinicFromEnv(getenv func(string) string) (Clinic, error) {
	c := Clinic{DBPath: strings.TrimSpace(getenv("VOICE_AGENT_DB"))}
	if c.DBPath == "" {
		c.DBPath = DefaultDBPath
	}
	loc, err := Location(getenv)
	c.Location = loc
	return c, err
}

// Location returns the clinic's time zone: VOICE_AGENT_TIMEZONE, else TZ
// (what the deployment already sets for the process), else UTC.
func Location(getenv func(string) string) (*time.Location, error) {
	name, from := strings.TrimSpace(getenv("VOICE_AGENT_TIMEZONE")), "VOICE_AGENT_TIMEZONE"
	if name == "" {
		// TZ may carry glibc's leading colon (TZ=:America/New_York).
		name, from = strings.TrimPrefix(strings.TrimSpace(getenv("TZ")), ":"), "TZ"
	}
	if name == "" {
		return time.UTC, nil
	}
	if name == "Local" || strings.HasPrefix(name, "/") {
		return time.UTC, fmt.Errorf("%s %q is not an IANA time zone name: use the clinic's zone, e.g. America/New_York", from, name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC, fmt.Errorf("%s %q is not a known IANA time zone: use the clinic's zone, e.g. America/New_York or Asia/Kolkata", from, name)
	}
	return loc, nil
}

func flag(getenv func(string) string, name string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(getenv(name))) {
	case "", "0", "false", "no":
		return false, nil
	case "1", "true", "yes":
		return true, nil
	}
	return false, fmt.Errorf("%s %q must be 1 or 0", name, getenv(name))
}

// FromEnv reads and validates the configuration; getenv is os.Getenv in
// production. All problems are reported together.
func FromEnv(getenv func(string) string) (Config, error) {
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		APIKey:        get("OPENAI_API_KEY", ""),
		WebhookSecret: get("OPENAI_WEBHOOK_SECRET", ""),
		BaseURL:       strings.TrimSuffix(get("OPENAI_BASE_URL", realtime.DefaultBaseURL), "/"),
		DBPath:        get("VOICE_AGENT_DB", DefaultDBPath),
		Addr:          get("VOICE_AGENT_ADDR", DefaultAddr),
		TransferURI:   get("VOICE_AGENT_TRANSFER_URI", ""),
		CrisisURI:     get("VOICE_AGENT_CRISIS_URI", "tel:988"),
		StaffToken:    get("VOICE_AGENT_STAFF_TOKEN", ""),
	}
	var errs []error
	loc, err := Location(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	c.Location = loc
	if c.StaffToken != "" && len(c.StaffToken) < MinStaffTokenLength {
		errs = append(errs, fmt.Errorf("VOICE_AGENT_STAFF_TOKEN is shorter than %d characters: generate one with `openssl rand -hex 32`, or leave it empty to disable the staff endpoints", MinStaffTokenLength))
	}
	if c.RequireSRTP, err = flag(getenv, "VOICE_AGENT_REQUIRE_SRTP"); err != nil {
		errs = append(errs, err)
	}
	if c.Demo, err = flag(getenv, "VOICE_AGENT_DEMO"); err != nil {
		errs = append(errs, err)
	}
	if c.APIKey == "" {
		errs = append(errs, errors.New("OPENAI_API_KEY is required: set it to the OpenAI API key of the project that receives the calls"))
	}
	if c.WebhookSecret == "" {
		errs = append(errs, errors.New("OPENAI_WEBHOOK_SECRET is required: set it to the webhook's signing secret (whsec_...) from the OpenAI dashboard"))
	} else if !strings.HasPrefix(c.WebhookSecret, "whsec_") {
		errs = append(errs, errors.New("OPENAI_WEBHOOK_SECRET does not start with whsec_: paste the webhook's signing secret exactly as the OpenAI dashboard shows it (whsec_...), not the API key or the webhook id"))
	} else if err := webhook.ValidateSecret(c.WebhookSecret); err != nil {
		errs = append(errs, fmt.Errorf("OPENAI_WEBHOOK_SECRET is invalid: %w", err))
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("OPENAI_BASE_URL %q is not an http(s) URL: use e.g. %s", c.BaseURL, realtime.DefaultBaseURL))
	}
	n, err := strconv.Atoi(get("VOICE_AGENT_MAX_CALLS", strconv.Itoa(DefaultMaxCalls)))
	if err != nil || n < 1 || n > 10000 {
		errs = append(errs, fmt.Errorf("VOICE_AGENT_MAX_CALLS %q must be an integer from 1 to 10000", getenv("VOICE_AGENT_MAX_CALLS")))
	}
	c.MaxCalls = n
	d, err := time.ParseDuration(get("VOICE_AGENT_SHUTDOWN_TIMEOUT", DefaultShutdownTimeout.String()))
	if err != nil || d < 0 {
		errs = append(errs, fmt.Errorf("VOICE_AGENT_SHUTDOWN_TIMEOUT %q must be a duration such as 30s", getenv("VOICE_AGENT_SHUTDOWN_TIMEOUT")))
	}
	c.ShutdownTimeout = d
	for name, v := range map[string]string{"VOICE_AGENT_TRANSFER_URI": c.TransferURI, "VOICE_AGENT_CRISIS_URI": c.CrisisURI} {
		if v != "" && !strings.HasPrefix(v, "tel:") && !strings.HasPrefix(v, "sip:") && !strings.HasPrefix(v, "sips:") {
			errs = append(errs, fmt.Errorf("%s %q must be a tel: or sip: URI, e.g. tel:+15555550100", name, v))
		}
	}
	if c.CrisisURI == "" {
		errs = append(errs, errors.New("VOICE_AGENT_CRISIS_URI must not be empty"))
	}
	return c, errors.Join(errs...)
}
