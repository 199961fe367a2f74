package mutate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEveryMutantApplies: every committed mutant still finds its original
// text exactly once in the agent as it is (a refactor of the agent must
// update the mutant, not silently drop it), makes a real change, and the
// set covers every kind the issue lists.
func TestEveryMutantApplies(t *testing.T) {
	require.GreaterOrEqual(t, len(Mutants), 20)
	kinds := map[string]int{}
	names := map[string]bool{}
	for _, m := range Mutants {
		assert.False(t, names[m.Name], "duplicate mutant %s", m.Name)
		names[m.Name] = true
		kinds[m.Kind]++
		assert.NotEqual(t, m.Old, m.New, m.Name)
		src, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(m.File)))
		require.NoError(t, err, m.Name)
		assert.Equal(t, 1, strings.Count(string(src), m.Old), "mutant %s: its original text must occur exactly once in %s", m.Name, m.File)
	}
	for _, k := range []string{"tool", "schema", "instructions", "timezone", "sideband", "accept"} {
		assert.Positive(t, kinds[k], "no mutant of kind %s", k)
	}
}

func TestApply(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "a"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a", "f.go"), []byte("x := 1\ny := 1\n"), 0o644))
	orig, err := Apply(dir, Mutant{Name: "m", File: "a/f.go", Old: "x := 1", New: "x := 2"})
	require.NoError(t, err)
	assert.Equal(t, "x := 1\ny := 1\n", string(orig))
	got, _ := os.ReadFile(filepath.Join(dir, "a", "f.go"))
	assert.Equal(t, "x := 2\ny := 1\n", string(got))
	_, err = Apply(dir, Mutant{Name: "twice", File: "a/f.go", Old: ":= ", New: "="})
	assert.ErrorContains(t, err, "mutant twice no longer applies: its original text occurs 2 times in a/f.go")
}
