package registryauth

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDockerConfigIsReadByTheKeychain writes the config and resolves it
// with go-containerregistry's default keychain, the code cosign uses.
func TestDockerConfigIsReadByTheKeychain(t *testing.T) {
	for _, tt := range []struct{ registry, repo string }{
		{"registry.gitlab.com", "registry.gitlab.com/acme/voice-agent"},
		{"127.0.0.1:5000", "127.0.0.1:5000/voice"},
		{"index.docker.io", "index.docker.io/acme/voice"},
	} {
		t.Run(tt.registry, func(t *testing.T) {
			cfg, err := DockerConfig(tt.registry, "ci-user", "s3cr3t:with:colons")
			require.NoError(t, err)
			dir := t.TempDir()
			require.NoError(t, writeFile(dir+"/config.json", cfg))
			t.Setenv("DOCKER_CONFIG", dir)
			repo, err := name.NewRepository(tt.repo)
			require.NoError(t, err)
			a, err := authn.DefaultKeychain.Resolve(repo)
			require.NoError(t, err)
			got, err := a.Authorization()
			require.NoError(t, err)
			assert.Equal(t, "ci-user", got.Username)
			assert.Equal(t, "s3cr3t:with:colons", got.Password)
		})
	}
}

func TestDockerConfigErrors(t *testing.T) {
	for _, tt := range []struct{ reg, user, pass, wantErr string }{
		{"", "u", "p", "host[:port]"},
		{"https://registry.gitlab.com", "u", "p", "host[:port]"},
		{"registry.gitlab.com", "", "p", "username and a password"},
		{"registry.gitlab.com", "u", "", "username and a password"},
		{"registry.gitlab.com", "u:x", "p", "must not contain"},
	} {
		_, err := DockerConfig(tt.reg, tt.user, tt.pass)
		require.ErrorContains(t, err, tt.wantErr)
	}
	cfg, err := DockerConfig("registry.gitlab.com", "u", "p")
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(cfg, &m))
	assert.Equal(t, map[string]any{"auths": map[string]any{"registry.gitlab.com": map[string]any{"auth": "dTpw"}}}, m)
}

func writeFile(path string, data []byte) error { return os.WriteFile(path, data, 0o600) }
