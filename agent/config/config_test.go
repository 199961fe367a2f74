package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// whsec is a well-formed webhook secret (whsec_ + base64 of 32 bytes).
const whsec = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func TestDefaults(t *testing.T) {
	c, err := config.FromEnv(env(map[string]string{"OPENAI_API_KEY": "sk-x", "OPENAI_WEBHOOK_SECRET": whsec}))
	require.NoError(t, err)
	assert.Equal(t, config.Config{APIKey: "sk-x", WebhookSecret: whsec, BaseURL: "https://api.openai.com/v1", DBPath: "data/schedule.db",
		MaxCalls: 20, Addr: ":8080", CrisisURI: "tel:988", ShutdownTimeout: 30 * time.Second, Location: time.UTC}, c)
}

func TestWebhookSecretWithoutPrefixIsRefused(t *testing.T) {
	// A raw key (or the API key, or the webhook id) pasted instead of the
	// signing secret used to start and then answer 401 to every webhook.
	for _, bad := range []string{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "any-value", "sk-proj-abc", "wh_123"} {
		_, err := config.FromEnv(env(map[string]string{"OPENAI_API_KEY": "sk-x", "OPENAI_WEBHOOK_SECRET": bad}))
		require.Error(t, err, bad)
		assert.ErrorContains(t, err, "OPENAI_WEBHOOK_SECRET does not start with whsec_: paste the webhook's signing secret exactly as the OpenAI dashboard shows it")
		assert.NotContains(t, err.Error(), bad, "the secret is never echoed")
	}
}

func TestClinicTimeZone(t *testing.T) {
	base := map[string]string{"OPENAI_API_KEY": "sk-x", "OPENAI_WEBHOOK_SECRET": whsec}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"neither: UTC", with(), "UTC"},
		{"TZ as the deployment sets it", with("TZ", "America/New_York"), "America/New_York"},
		{"TZ with glibc's colon", with("TZ", ":Asia/Kolkata"), "Asia/Kolkata"},
		{"explicit zone wins over TZ", with("TZ", "UTC", "VOICE_AGENT_TIMEZONE", "Australia/Sydney"), "Australia/Sydney"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.FromEnv(env(tc.env))
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.Location.String())
			cl, err := config.ClinicFromEnv(env(tc.env))
			require.NoError(t, err)
			assert.Equal(t, tc.want, cl.Location.String())
		})
	}
	_, err := config.FromEnv(env(with("VOICE_AGENT_TIMEZONE", "Eastern")))
	assert.ErrorContains(t, err, `VOICE_AGENT_TIMEZONE "Eastern" is not a known IANA time zone: use the clinic's zone, e.g. America/New_York`)
	_, err = config.FromEnv(env(with("TZ", "Mars/Olympus")))
	assert.ErrorContains(t, err, `TZ "Mars/Olympus" is not a known IANA time zone`)
}

func TestSecurityAndDemoSwitches(t *testing.T) {
	token := "0123456789abcdef0123456789abcdef"
	c, err := config.FromEnv(env(map[string]string{"OPENAI_API_KEY": "sk-x", "OPENAI_WEBHOOK_SECRET": whsec,
		"VOICE_AGENT_STAFF_TOKEN": token, "VOICE_AGENT_REQUIRE_SRTP": "1", "VOICE_AGENT_DEMO": "1"}))
	require.NoError(t, err)
	assert.Equal(t, token, c.StaffToken)
	assert.True(t, c.RequireSRTP)
	assert.True(t, c.Demo)

	_, err = config.FromEnv(env(map[string]string{"OPENAI_API_KEY": "sk-x", "OPENAI_WEBHOOK_SECRET": whsec,
		"VOICE_AGENT_STAFF_TOKEN": "short-token", "VOICE_AGENT_REQUIRE_SRTP": "always", "VOICE_AGENT_DEMO": "maybe"}))
	assert.ErrorContains(t, err, "VOICE_AGENT_STAFF_TOKEN is shorter than 32 characters: generate one with `openssl rand -hex 32`")
	assert.NotContains(t, err.Error(), "short-token", "the token is never echoed")
	assert.ErrorContains(t, err, `VOICE_AGENT_REQUIRE_SRTP "always" must be 1 or 0`)
	assert.ErrorContains(t, err, `VOICE_AGENT_DEMO "maybe" must be 1 or 0`)
}

func TestOverrides(t *testing.T) {
	c, err := config.FromEnv(env(map[string]string{"OPENAI_API_KEY": "k", "OPENAI_WEBHOOK_SECRET": whsec, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1/",
		"VOICE_AGENT_DB": "/data/x.db", "VOICE_AGENT_MAX_CALLS": "3", "VOICE_AGENT_ADDR": "127.0.0.1:0", "VOICE_AGENT_TRANSFER_URI": "sip:desk@clinic.example",
		"VOICE_AGENT_SHUTDOWN_TIMEOUT": "2s"}))
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:9/v1", c.BaseURL)
	assert.Equal(t, 3, c.MaxCalls)
	assert.Equal(t, 2*time.Second, c.ShutdownTimeout)
	assert.Equal(t, "sip:desk@clinic.example", c.TransferURI)
}

func TestErrorsNameTheVariable(t *testing.T) {
	_, err := config.FromEnv(env(map[string]string{}))
	require.Error(t, err)
	assert.ErrorContains(t, err, "OPENAI_API_KEY is required")
	assert.ErrorContains(t, err, "OPENAI_WEBHOOK_SECRET is required")

	_, err = config.FromEnv(env(map[string]string{"OPENAI_API_KEY": "k", "OPENAI_WEBHOOK_SECRET": "whsec_%%%", "OPENAI_BASE_URL": "ftp://x",
		"VOICE_AGENT_MAX_CALLS": "0", "VOICE_AGENT_SHUTDOWN_TIMEOUT": "soon", "VOICE_AGENT_TRANSFER_URI": "+1555"}))
	for _, want := range []string{"OPENAI_WEBHOOK_SECRET is invalid", "OPENAI_BASE_URL", "VOICE_AGENT_MAX_CALLS", "VOICE_AGENT_SHUTDOWN_TIMEOUT", "VOICE_AGENT_TRANSFER_URI"} {
		assert.ErrorContains(t, err, want)
	}
	assert.NotContains(t, err.Error(), "sk-", "secrets are never echoed")
}
