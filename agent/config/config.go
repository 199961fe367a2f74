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
	}
	var errs []error
	if c.APIKey == "" {
		errs = append(errs, errors.New("OPENAI_API_KEY is required: set it to the OpenAI API key of the project that receives the calls"))
	}
	if c.WebhookSecret == "" {
		errs = append(errs, errors.New("OPENAI_WEBHOOK_SECRET is required: set it to the webhook's signing secret (whsec_...) from the OpenAI dashboard"))
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
