package gitops

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"testing"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xssh "golang.org/x/crypto/ssh"

	"dagger/voice/gittest"
)

func TestTransportAuth(t *testing.T) {
	a, _, err := transportAuth("https://gitlab.com/acme/deploy.git", Auth{Token: gittest.Token})
	require.NoError(t, err)
	basic, ok := a.(*githttp.BasicAuth)
	require.True(t, ok)
	assert.Equal(t, "oauth2", basic.Username)
	assert.Equal(t, gittest.Token, basic.Password)
	assert.NotContains(t, basic.String(), gittest.Token)
	assert.NotContains(t, fmt.Sprintf("%v %+v", a, a), gittest.Token)

	// A GitLab deploy token is sent with its own user name (deploy-repo --token-user).
	a, _, err = transportAuth("https://gitlab.com/acme/deploy.git", Auth{Token: gittest.Token, Username: "gitlab+deploy-token-7"})
	require.NoError(t, err)
	assert.Equal(t, &githttp.BasicAuth{Username: "gitlab+deploy-token-7", Password: gittest.Token}, a)

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := xssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	key := pem.EncodeToMemory(block)
	signer, err := xssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	knownHosts := "gitlab.example.com " + string(xssh.MarshalAuthorizedKey(signer.PublicKey()))

	const sshURL = "ssh://git@gitlab.example.com/acme/deploy.git"
	_, _, err = transportAuth(sshURL, Auth{})
	assert.ErrorContains(t, err, "pass an SSH private key")
	_, _, err = transportAuth(sshURL, Auth{SSHKey: key})
	assert.ErrorContains(t, err, "known_hosts")
	_, _, err = transportAuth(sshURL, Auth{SSHKey: []byte("not a key"), SSHKnownHosts: []byte(knownHosts)})
	assert.ErrorContains(t, err, "cannot read the SSH private key")
	a, cleanup, err := transportAuth(sshURL, Auth{SSHKey: key, SSHKnownHosts: []byte(knownHosts)})
	require.NoError(t, err)
	defer cleanup()
	keys, ok := a.(*gitssh.PublicKeys)
	require.True(t, ok)
	assert.Equal(t, "git", keys.User)
	require.NotNil(t, keys.HostKeyCallback)
	// The callback accepts the known key and refuses another one.
	addr := &fakeAddr{}
	assert.NoError(t, keys.HostKeyCallback("gitlab.example.com:22", addr, signer.PublicKey()))
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	otherSigner, _ := xssh.NewSignerFromKey(other)
	assert.Error(t, keys.HostKeyCallback("gitlab.example.com:22", addr, otherSigner.PublicKey()))

	_, _, err = transportAuth("ftp://example.com/x.git", Auth{})
	assert.ErrorContains(t, err, "unsupported protocol")
}

type fakeAddr struct{}

func (fakeAddr) Network() string { return "tcp" }
func (fakeAddr) String() string  { return "192.0.2.1:22" }
