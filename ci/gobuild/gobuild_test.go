package gobuild

import (
	"testing"

	"dagger/voice/platform"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

func mustPlatform(t *testing.T, s string) platform.Platform {
	t.Helper()
	p, err := platform.Parse(s)
	require.NoError(t, err)
	return p
}

func TestArgs(t *testing.T) {
	o := Options{Output: "/out/voice-agent", Platform: mustPlatform(t, "linux/arm64"), Version: "1.4.2", Commit: sha}
	args, err := o.Args()
	require.NoError(t, err)
	assert.Equal(t, []string{
		"go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w -buildid= -X main.version=1.4.2 -X main.commit=" + sha,
		"-o", "/out/voice-agent", "./agent/cmd/voice-agent",
	}, args)
	assert.Equal(t, [][2]string{{"CGO_ENABLED", "0"}, {"GOOS", "linux"}, {"GOARCH", "arm64"}, {"GOFLAGS", "-mod=readonly"}, {"GOARM64", "v8.0"}}, o.Env())

	o.VersionVar, o.CommitVar, o.Package = "main.Version", "main.Commit", "./testdata/build/agent"
	args, err = o.Args()
	require.NoError(t, err)
	assert.Contains(t, args, "-ldflags=-s -w -buildid= -X main.Version=1.4.2 -X main.Commit="+sha)
	assert.Equal(t, "./testdata/build/agent", args[len(args)-1])
}

func TestValidate(t *testing.T) {
	ok := Options{Output: "/out/a", Platform: mustPlatform(t, "linux/amd64"), Version: "0.0.0-dev+abc", Commit: sha}
	require.NoError(t, ok.Validate())
	tests := []struct {
		name    string
		mod     func(*Options)
		wantErr string
	}{
		{"version with space", func(o *Options) { o.Version = "1.0 -X main.x=y" }, "version"},
		{"empty version", func(o *Options) { o.Version = "" }, "version"},
		{"version with quote", func(o *Options) { o.Version = `1'` }, "version"},
		{"short commit", func(o *Options) { o.Commit = "abc" }, "commit"},
		{"upper commit", func(o *Options) { o.Commit = "ABCDEF0" }, "commit"},
		{"bad var", func(o *Options) { o.VersionVar = "version" }, "package.name"},
		{"absolute package", func(o *Options) { o.Package = "/etc" }, "relative path"},
		{"escaping package", func(o *Options) { o.Package = "./../x" }, "relative path"},
		{"no output", func(o *Options) { o.Output = "" }, "output"},
		{"no platform", func(o *Options) { o.Platform = platform.Platform{} }, "platform"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mod(&o)
			require.ErrorContains(t, o.Validate(), tt.wantErr)
			_, err := o.Args()
			require.Error(t, err)
		})
	}
}
