package main

import (
	"context"

	"dagger/voice/internal/dagger"
)

// verifyBeforeDeploy checks the image signature with the build/sign step's
// Verify (key-based or keyless) before anything is deployed.
func (m *Voice) verifyBeforeDeploy(ctx context.Context, ref string, key *dagger.Secret, identity, issuer, user string, password *dagger.Secret) (string, error) {
	return m.Verify(ctx, ref, key, identity, issuer, user, password, false, "", nil)
}
