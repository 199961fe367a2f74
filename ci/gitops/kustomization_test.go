package gitops

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/kustomize/api/types"
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

// FuzzSetImage: on any kustomization text, SetImage either refuses it or
// produces a file in which the entry points at the digest, and applying the
// same update again changes nothing.
func FuzzSetImage(f *testing.F) {
	for _, c := range []string{"comments", "digest", "add", "no-images", "name-is-repo"} {
		src, err := os.ReadFile(filepath.Join("testdata", c, "original"))
		require.NoError(f, err)
		f.Add(src, true)
	}
	f.Add([]byte("images:\n- name: voice-agent\n  newTag: \"1\" # c\n"), false)
	ref := agentRef(f)
	f.Fuzz(func(t *testing.T, src []byte, add bool) {
		up := ImageUpdate{Name: "voice-agent", Ref: ref, Add: add}
		out, _, err := SetImage(src, up)
		if err != nil {
			return
		}
		node, err := readKustomization(out)
		if err != nil {
			t.Fatalf("output does not parse: %v\n%s", err, out)
		}
		found := false
		if f := node.Field("images"); f != nil {
			elems, _ := f.Value.Elements()
			for _, e := range elems {
				var img types.Image
				if e.YNode().Decode(&img) == nil && img.Name == "voice-agent" {
					found = img.Digest == ref.Digest && img.NewName == ref.Repository && img.NewTag == ""
				}
			}
		}
		if !found {
			t.Fatalf("entry not updated:\n%s", out)
		}
		again, changed, err := SetImage(out, ImageUpdate{Name: "voice-agent", Ref: ref})
		if err != nil || changed || string(again) != string(out) {
			t.Fatalf("second update: changed=%v err=%v\n%s", changed, err, out)
		}
	})
}
