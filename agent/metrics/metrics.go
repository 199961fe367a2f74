// Package metrics defines the agent's Prometheus metrics (client_golang).
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Call outcomes (label values of voice_agent_calls_total).
const (
	OutcomeAccepted     = "accepted"
	OutcomeRejectedBusy = "rejected_busy"
	OutcomeAcceptFailed = "accept_failed"
	OutcomeCompleted    = "completed"
	OutcomeTransferred  = "transferred"
	OutcomeFailed       = "failed"
	// OutcomeRejectedMedia: refused with SIP 488 because its media was not
	// SRTP (VOICE_AGENT_REQUIRE_SRTP=1).
	OutcomeRejectedMedia = "rejected_media"
)

// WebhookDuplicate is the voice_agent_webhooks_total type of a delivery
// answered 200 without side effects (a replayed webhook-id, or a call_id
// already handled under another webhook-id).
const WebhookDuplicate = "duplicate"

// Metrics are the agent's collectors, registered on their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	CallsActive     prometheus.Gauge
	Calls           *prometheus.CounterVec // outcome
	ToolCalls       *prometheus.CounterVec // tool, result
	ToolDuration    *prometheus.HistogramVec
	Webhooks        *prometheus.CounterVec // type
	WebhookFailures *prometheus.CounterVec // reason
	RealtimeErrors  *prometheus.CounterVec // type
	ClientSecrets   *prometheus.CounterVec // result
	BuildInfo       *prometheus.GaugeVec
}

var tools = []string{"check_availability", "book_appointment", "cancel_appointment", "transfer_to_human", "end_call", "escalate_crisis", "take_message"}

// New creates and registers the metrics (plus Go and process collectors).
func New(version, commit string) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		CallsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "voice_agent_calls_active", Help: "Calls currently connected to the agent.",
		}),
		Calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voice_agent_calls_total", Help: "Calls by outcome (accepted, rejected_busy, rejected_media, accept_failed, completed, transferred, failed).",
		}, []string{"outcome"}),
		ToolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voice_agent_tool_calls_total", Help: "Tool calls by tool and result (ok, invalid, error).",
		}, []string{"tool", "result"}),
		ToolDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "voice_agent_tool_call_duration_seconds", Help: "Tool execution latency.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"tool"}),
		Webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voice_agent_webhooks_total", Help: "Verified webhooks by event type (duplicate: answered 200 without side effects).",
		}, []string{"type"}),
		WebhookFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voice_agent_webhook_verification_failures_total", Help: "Webhooks refused by verification, by reason (headers, timestamp, signature, body).",
		}, []string{"reason"}),
		RealtimeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voice_agent_realtime_errors_total", Help: "Realtime API error events and sideband failures, by type.",
		}, []string{"type"}),
		ClientSecrets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voice_agent_client_secrets_total", Help: "Client secret requests, by result (ok, error, unauthorized).",
		}, []string{"result"}),
		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "voice_agent_build_info", Help: "Build version and commit (value 1).",
		}, []string{"version", "commit"}),
	}
	m.Registry.MustRegister(m.CallsActive, m.Calls, m.ToolCalls, m.ToolDuration, m.Webhooks, m.WebhookFailures,
		m.RealtimeErrors, m.ClientSecrets, m.BuildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.BuildInfo.WithLabelValues(version, commit).Set(1)
	// Pre-create the label values operators alert on, so they read 0 rather
	// than being absent.
	for _, o := range []string{OutcomeAccepted, OutcomeRejectedBusy, OutcomeRejectedMedia, OutcomeAcceptFailed, OutcomeCompleted, OutcomeTransferred, OutcomeFailed} {
		m.Calls.WithLabelValues(o)
	}
	for _, r := range []string{"headers", "timestamp", "signature", "body"} {
		m.WebhookFailures.WithLabelValues(r)
	}
	for _, tool := range tools {
		m.ToolDuration.WithLabelValues(tool)
		for _, r := range []string{"ok", "invalid", "error"} {
			m.ToolCalls.WithLabelValues(tool, r)
		}
	}
	m.Webhooks.WithLabelValues("realtime.call.incoming")
	m.Webhooks.WithLabelValues(WebhookDuplicate)
	m.RealtimeErrors.WithLabelValues("sideband_connect")
	m.ClientSecrets.WithLabelValues("ok")
	m.ClientSecrets.WithLabelValues("error")
	m.ClientSecrets.WithLabelValues("unauthorized")
	return m
}

// Names lists the agent's own metric names.
var Names = []string{
	"voice_agent_calls_active", "voice_agent_calls_total", "voice_agent_tool_calls_total",
	"voice_agent_tool_call_duration_seconds", "voice_agent_webhooks_total",
	"voice_agent_webhook_verification_failures_total", "voice_agent_realtime_errors_total",
	"voice_agent_client_secrets_total", "voice_agent_build_info",
}
