package gitops

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/*/expected")

const agentRepo = "registry.gitlab.com/acme/voice-agent"

func agentRef(t testing.TB) ImageRef {
	ref, err := ParseImageRef(agentRepo + "@" + testDigest)
	require.NoError(t, err)
	return ref
}

// TestSetImageGolden edits testdata/<case>/original and compares the result
// byte for byte with testdata/<case>/expected.
func TestSetImageGolden(t *testing.T) {
	ref := agentRef(t)
	cases := map[string]ImageUpdate{
		"comments":     {Name: "voice-agent", Ref: ref},
		"digest":       {Ref: ref},
		"add":          {Name: "voice-agent", Ref: ref, Add: true},
		"no-images":    {Name: "voice-agent", Ref: ref, Add: true},
		"name-is-repo": {Ref: ref},
	}
	for name, up := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			src, err := os.ReadFile(filepath.Join(dir, "original"))
			require.NoError(t, err)
			out, changed, err := SetImage(src, up)
			require.NoError(t, err)
			assert.True(t, changed)
			golden := filepath.Join(dir, "expected")
			if *update {
				require.NoError(t, os.WriteFile(golden, out, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(out))

			// Applying the same edit again changes nothing.
			again, changed, err := SetImage(out, ImageUpdate{Name: up.Name, Ref: up.Ref})
			require.NoError(t, err)
			assert.False(t, changed)
			assert.Equal(t, string(out), string(again))
		})
	}
}

func TestSetImageErrors(t *testing.T) {
	ref := agentRef(t)
	src := []byte("resources:\n- a.yaml\nimages:\n- name: envoy\n  newTag: v1\n")
	_, _, err := SetImage(src, ImageUpdate{Name: "voice-agent", Ref: ref})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `image "voice-agent" is not listed`)
	assert.Contains(t, err.Error(), "listed: envoy")

	_, _, err = SetImage([]byte("images: {a: b}\n"), ImageUpdate{Ref: ref})
	assert.ErrorContains(t, err, "not a list")

	_, _, err = SetImage([]byte("- a\n- b\n"), ImageUpdate{Ref: ref})
	assert.ErrorContains(t, err, "parse kustomization")

	dup := []byte("images:\n- name: voice-agent\n- name: x\n  newName: " + agentRepo + "\n- name: " + agentRepo + "\n")
	_, _, err = SetImage(dup, ImageUpdate{Ref: ref})
	assert.ErrorContains(t, err, "entries match")
}
