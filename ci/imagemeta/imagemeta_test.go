package imagemeta

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCommitTime(t *testing.T) {
	want := time.Date(2026, 11, 26, 13, 8, 22, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		{in: "2026-11-26T14:08:22+01:00", want: want},
		{in: "2026-11-26T13:08:22Z", want: want},
		{in: "2026-11-26T13:08:22.999Z", want: want},
		{in: " 1795698502\n", want: want},
		{in: "0", want: time.Unix(0, 0).UTC()},
		{in: "", wantErr: "empty"},
		{in: "yesterday", wantErr: "neither RFC 3339"},
		{in: "2026-11-26 13:08:22", wantErr: "neither RFC 3339"},
		{in: "-5", wantErr: "out of range"},
		{in: "1960-01-01T00:00:00Z", wantErr: "before 1970"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCommitTime(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.True(t, tt.want.Equal(got), "got %s want %s", got, tt.want)
			assert.Equal(t, time.UTC, got.Location())
		})
	}
}

func TestLabels(t *testing.T) {
	created := time.Date(2026, 11, 26, 13, 8, 22, 0, time.FixedZone("CET", 3600))
	got := Labels(Meta{Title: "voice-agent", Source: "https://gitlab.com/acme/voice-agent", Revision: "abc1234", Version: "1.4.2", Created: created,
		BaseName: "gcr.io/distroless/static-debian12:nonroot", BaseDigest: "sha256:d093"})
	assert.Equal(t, []Label{
		{LabelTitle, "voice-agent"},
		{LabelSource, "https://gitlab.com/acme/voice-agent"},
		{LabelRevision, "abc1234"},
		{LabelVersion, "1.4.2"},
		{LabelBaseName, "gcr.io/distroless/static-debian12:nonroot"},
		{LabelBaseDigest, "sha256:d093"},
		{LabelCreated, "2026-11-26T12:08:22Z"},
	}, got)

	got = Labels(Meta{Revision: "abc1234"})
	assert.Equal(t, []Label{{LabelRevision, "abc1234"}}, got, "empty values are left out")
}
