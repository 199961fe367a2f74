package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOneMutantEndToEnd copies the tree, checks the gate on the unchanged
// copy, applies one committed mutant (the front desk transfer goes to the
// crisis line), and sees the scripted gate kill it, naming the cases.
func TestOneMutantEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the eval binary twice")
	}
	out := filepath.Join(t.TempDir(), "m.json")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--root", "../../..", "--only", "tool-transfer-to-crisis-line", "--json", out}, &stdout, &stderr)
	require.Equal(t, 0, code, stdout.String()+stderr.String())
	assert.Contains(t, stdout.String(), "KILLED   tool-transfer-to-crisis-line (tool")
	assert.Contains(t, stdout.String(), "offtopic-billing-question (failed)")
	assert.Contains(t, stdout.String(), "mutate: PASS killed 1/1 (100.0%, floor 95.0%)")
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	var s Summary
	require.NoError(t, json.Unmarshal(data, &s))
	assert.Equal(t, 1, s.Killed)
	assert.Equal(t, 1.0, s.Ratio)

	code = run(context.Background(), []string{"--only", "no-such-mutant"}, &stdout, &stderr)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr.String(), `no mutant named "no-such-mutant"`)
}
