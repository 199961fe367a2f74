package shellquote

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"./...":       "./...",
		"":            "''",
		"a b":         "'a b'",
		"it's":        `'it'"'"'s'`,
		"$(reboot)":   "'$(reboot)'",
		"/out/x.xml":  "/out/x.xml",
		"a;b":         "'a;b'",
		"--junitfile": "--junitfile",
	} {
		assert.Equal(t, want, Quote(in), "Quote(%q)", in)
	}
}

// TestRoundTrip hands quoted words to a real shell and reads them back.
func TestRoundTrip(t *testing.T) {
	args := []string{"plain", "", "two words", "it's", `"double"`, "$HOME", "`id`", "a\nb", "*", "\\"}
	out, err := exec.Command("sh", "-c", "set -- "+Join(args)+`; for a in "$@"; do printf '%s\0' "$a"; done`).Output()
	require.NoError(t, err)
	var got []string
	start := 0
	for i, c := range out {
		if c == 0 {
			got = append(got, string(out[start:i]))
			start = i + 1
		}
	}
	assert.Equal(t, args, got)
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a b", "it's", "$(x)", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := Quote(s)
		if q == s && !safeWord.MatchString(s) {
			t.Fatalf("unsafe %q returned unquoted", s)
		}
	})
}
