package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := config.FromEnv(env(map[string]string{"OPENAI_API_KEY": "sk-x", "OPENAI_WEBHOOK_SECRET": "s"}))
	require.NoError(t, err)
	assert.Equal(t, config.Config{APIKey: "sk-x", WebhookSecret: "s", BaseURL: "https://api.openai.com/v1", DBPath: "data/schedule.db",
		MaxCalls: 20, Addr: ":8080", CrisisURI: "tel:988", ShutdownTimeout: 30 * time.Second}, c)
}

func TestOverrides(t *testing.T) {
	c, err := config.FromEnv(env(map[string]string{"OPENAI_API_KEY": "k", "OPENAI_WEBHOOK_SECRET": "s", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1/",
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
