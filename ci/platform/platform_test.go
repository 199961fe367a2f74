package platform

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		env     [][2]string
		wantErr string
	}{
		{in: "linux/amd64", want: "linux/amd64", env: [][2]string{{"CGO_ENABLED", "0"}, {"GOOS", "linux"}, {"GOARCH", "amd64"}}},
		{in: " linux/arm64 ", want: "linux/arm64", env: [][2]string{{"CGO_ENABLED", "0"}, {"GOOS", "linux"}, {"GOARCH", "arm64"}}},
		{in: "linux/arm64/v8", want: "linux/arm64", env: [][2]string{{"CGO_ENABLED", "0"}, {"GOOS", "linux"}, {"GOARCH", "arm64"}}},
		{in: "linux/arm/v7", want: "linux/arm/v7", env: [][2]string{{"CGO_ENABLED", "0"}, {"GOOS", "linux"}, {"GOARCH", "arm"}, {"GOARM", "7"}}},
		{in: "linux/arm", wantErr: "needs a variant"},
		{in: "linux/amd64/v3", wantErr: `variant "v3" of amd64 is not supported`},
		{in: "windows/amd64", wantErr: "operating system \"windows\" is not supported"},
		{in: "linux/mips", wantErr: "architecture \"mips\" is not supported"},
		{in: "amd64", wantErr: "want os/arch"},
		{in: "", wantErr: "want os/arch"},
		{in: "linux/amd64/v1/x", wantErr: "want os/arch"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := Parse(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, p.String())
			assert.Equal(t, tt.env, p.GoEnv())
		})
	}
}

func TestParseList(t *testing.T) {
	ps, err := ParseList([]string{"linux/arm64", "linux/amd64"})
	require.NoError(t, err)
	require.Len(t, ps, 2)
	assert.Equal(t, "linux/arm64", ps[0].String(), "order is kept")
	assert.Equal(t, "linux-amd64", ps[1].Slug())

	_, err = ParseList(nil)
	require.ErrorContains(t, err, "no platform given")
	_, err = ParseList([]string{"linux/arm64", "linux/arm64/v8"})
	require.ErrorContains(t, err, "listed twice")
	_, err = ParseList([]string{"linux/amd64", "darwin/arm64"})
	require.ErrorContains(t, err, "darwin")
}

// FuzzParse checks that Parse never panics and that what it accepts is in
// canonical form: it parses to itself and gives a Go environment.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"linux/amd64", "linux/arm64/v8", "linux/arm/v7", "linux/arm", "windows/amd64", "/", "linux//", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := Parse(in)
		if err != nil {
			return
		}
		again, err := Parse(p.String())
		require.NoError(t, err)
		require.Equal(t, p, again)
		env := p.GoEnv()
		require.Equal(t, [2]string{"GOOS", "linux"}, env[1])
		require.Equal(t, p.Arch, env[2][1])
	})
}
