package controlplane

import (
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// KubeConfig returns a kubeconfig of a new user of the control plane with
// the given groups (e.g. system:masters for a controller that runs with
// cluster-admin, as Flux's do), for processes started beside the tests.
func (c *Cluster) KubeConfig(user string, groups ...string) ([]byte, error) {
	u, err := c.env.ControlPlane.AddUser(envtest.User{Name: user, Groups: groups}, nil)
	if err != nil {
		return nil, fmt.Errorf("add control-plane user %s: %w", user, err)
	}
	return u.KubeConfig()
}
