package gitops

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPreviewBump(t *testing.T) {
	files := map[string][]byte{}
	for p, c := range deployFixture(0) {
		files[p] = []byte(c)
	}
	up := ImageUpdate{Ref: agentRef(t)}
	diff, entry, err := PreviewBump(files, "voice", up)
	require.NoError(t, err)
	assert.Equal(t, Match{Index: 0, Name: "voice-agent", Rule: "repository"}, entry)
	assert.Contains(t, diff, "--- a/voice/kustomization.yaml")
	assert.Contains(t, diff, "-    newTag: v1.0.0")
	assert.Contains(t, diff, "+    digest: "+testDigest)
	assert.NotContains(t, string(files["voice/kustomization.yaml"]), testDigest, "input not modified")

	// Already deployed: no diff.
	edited, _, err := SetImage(files["voice/kustomization.yaml"], up)
	require.NoError(t, err)
	files["voice/kustomization.yaml"] = edited
	diff, _, err = PreviewBump(files, "voice", up)
	require.NoError(t, err)
	assert.Empty(t, diff)

	_, _, err = PreviewBump(files, "broken", ImageUpdate{Name: "voice-agent", Ref: agentRef(t)})
	assert.ErrorContains(t, err, "does not build")
	_, _, err = PreviewBump(files, "nope", up)
	assert.ErrorContains(t, err, `no kustomization.yaml in "nope"`)
}
