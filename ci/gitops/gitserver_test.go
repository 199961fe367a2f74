package gitops

import (
	"fmt"

	"dagger/voice/gittest"
)

// repo is a deploy repository of the loopback server s, authenticated with token.
func repo(s *gittest.Server, token string) Repo {
	return Repo{URL: s.URL, Auth: Auth{Token: token}, Author: Author{Name: "Bump Bot", Email: "bump@example.com"}}
}

const deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: voice-agent
spec:
  selector:
    matchLabels: {app: voice-agent}
  template:
    metadata:
      labels: {app: voice-agent}
    spec:
      containers:
      - name: agent
        image: voice-agent
`

// deployFixture is a deploy repository with an app at voice/.
func deployFixture(extraImages int) map[string]string {
	k := `# Production deploy of the voice agent.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml

images:
  # bumped by CI
  - name: voice-agent
    newName: registry.gitlab.com/acme/voice-agent
    newTag: v1.0.0
`
	for i := range extraImages {
		k += fmt.Sprintf("  - name: img-%d\n    newTag: old\n", i)
	}
	return map[string]string{
		"voice/kustomization.yaml":  k,
		"voice/deployment.yaml":     deploymentYAML,
		"broken/kustomization.yaml": "resources:\n- missing.yaml\nimages:\n- name: voice-agent\n",
		"two/kustomization.yaml":    "resources:\n- ../voice\nimages:\n- name: voice-agent\n- name: sidecar\n",
		"README.md":                 "deploy repository\n",
	}
}
