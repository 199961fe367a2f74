package gitops

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/kustomize/api/types"

	"dagger/voice/imageref"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/*/expected")

const (
	agentRepo  = "registry.gitlab.com/acme/voice-agent"
	testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func agentRef(t testing.TB) imageref.Ref {
	ref, err := imageref.ParseDigest(agentRepo + "@" + testDigest)
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

// TestMatchImage: the rules that pick the `images:` entry a bump changes,
// in order, with the entry and the rule named.
func TestMatchImage(t *testing.T) {
	ref := func(s string) imageref.Ref {
		r, err := imageref.ParseDigest(s + "@" + testDigest)
		require.NoError(t, err)
		return r
	}
	two := "images:\n- name: voice-agent\n  newName: registry.gitlab.com/acme/voice-agent\n- name: registry.example.com/tools/sidecar\n"
	one := "images:\n- name: voice-agent\n"
	tests := []struct {
		name, src string
		up        ImageUpdate
		want      Match
		wantErr   string
	}{
		{"by newName", two, ImageUpdate{Ref: ref("registry.gitlab.com/acme/voice-agent")}, Match{0, "voice-agent", "repository"}, ""},
		{"by name", two, ImageUpdate{Ref: ref("registry.example.com/tools/sidecar")}, Match{1, "registry.example.com/tools/sidecar", "repository"}, ""},
		{"by last element of name", two, ImageUpdate{Ref: ref("127.0.0.1:5000/x/sidecar")}, Match{1, "registry.example.com/tools/sidecar", "last path element"}, ""},
		{"by last element of newName", two, ImageUpdate{Ref: ref("127.0.0.1:5000/voice-agent")}, Match{0, "voice-agent", "last path element"}, ""},
		{"named", two, ImageUpdate{Name: "voice-agent", Ref: ref("127.0.0.1:5000/other")}, Match{0, "voice-agent", "named"}, ""},
		{"only entry", one, ImageUpdate{Ref: ref("registry.example.com/acme/voice")}, Match{0, "voice-agent", "only entry"}, ""},
		{"only entry is not taken with add", one, ImageUpdate{Ref: ref("registry.example.com/acme/voice"), Add: true}, Match{}, "is not listed"},
		{"no rule singles one out", two, ImageUpdate{Ref: ref("registry.example.com/acme/voice")}, Match{}, "is not listed"},
		{"named but missing", two, ImageUpdate{Name: "nope", Ref: ref("registry.example.com/acme/voice")}, Match{}, `image "nope" is not listed`},
		{"two by last element", "images:\n- name: a/voice\n- name: b/voice\n", ImageUpdate{Ref: ref("registry.example.com/c/voice")}, Match{Rule: "last path element"}, "2 `images:` entries match"},
		{"no images", "resources: []\n", ImageUpdate{Ref: ref("registry.example.com/c/voice")}, Match{}, "listed: )"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MatchImage([]byte(tt.src), tt.up)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}
