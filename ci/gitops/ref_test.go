package gitops

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseImageRef(t *testing.T) {
	ok := map[string]ImageRef{
		"registry.gitlab.com/acme/voice-agent@" + testDigest:      {"registry.gitlab.com/acme/voice-agent", testDigest},
		"registry.gitlab.com/acme/voice-agent:v1.2@" + testDigest: {"registry.gitlab.com/acme/voice-agent", testDigest},
		"localhost:5000/voice@" + testDigest:                      {"localhost:5000/voice", testDigest},
		"voice-agent@" + testDigest:                               {"voice-agent", testDigest},
	}
	for in, want := range ok {
		got, err := ParseImageRef(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
		assert.Equal(t, "0123456789ab", got.ShortDigest())
	}
	bad := map[string]string{
		"":                                  "empty",
		"registry.gitlab.com/acme/voice:v1": "has no digest",
		"registry.gitlab.com/acme/voice":    "has no digest",
		"voice@sha256:1234":                 "invalid",
		"voice@sha512:" + strings.Repeat("a", 128): "only sha256",
		"Voice@" + testDigest:                      "invalid image reference",
		" voice@" + testDigest:                     "whitespace",
		"@" + testDigest:                           "invalid",
	}
	for in, want := range bad {
		_, err := ParseImageRef(in)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func FuzzParseImageRef(f *testing.F) {
	for _, s := range []string{
		"registry.gitlab.com/acme/voice-agent@" + testDigest,
		"localhost:5000/a/b:tag@" + testDigest,
		"voice:latest", "voice@sha256:", "a/b@sha512:abc", "::@@", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseImageRef(s)
		if err != nil {
			return
		}
		// Anything accepted is pinned by a well-formed sha256 digest and
		// round-trips through its canonical form.
		if !strings.HasPrefix(ref.Digest, "sha256:") || len(ref.Digest) != len("sha256:")+64 {
			t.Fatalf("accepted %q with digest %q", s, ref.Digest)
		}
		again, err := ParseImageRef(ref.String())
		if err != nil || again != ref {
			t.Fatalf("round trip of %q: %v %v", s, again, err)
		}
	})
}
