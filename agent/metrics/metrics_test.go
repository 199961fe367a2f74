package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/agent/metrics"
)

func TestEveryNamedMetricIsExposedFromStart(t *testing.T) {
	m := metrics.New("1.0.0", "abc")
	families, err := m.Registry.Gather()
	require.NoError(t, err)
	got := map[string]bool{}
	for _, f := range families {
		got[f.GetName()] = true
	}
	for _, name := range metrics.Names {
		assert.True(t, got[name], "%s is exposed before any call", name)
	}
	assert.True(t, got["go_goroutines"])
	assert.Equal(t, 1.0, testutil.ToFloat64(m.BuildInfo.WithLabelValues("1.0.0", "abc")))
	assert.Equal(t, 0.0, testutil.ToFloat64(m.Calls.WithLabelValues(metrics.OutcomeCompleted)))
}
