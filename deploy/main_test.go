package deploy

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"

	"gitlab.com/acme/voice-agent/deploy/internal/controlplane"
)

// cluster is the control plane shared by the tests of this package (one
// kube-apiserver + etcd; tests keep apart by namespace). clusterErr says
// why there is none.
var (
	cluster    *controlplane.Cluster
	clusterErr error
)

func TestMain(m *testing.M) {
	flag.Parse()
	var skip bool
	cluster, skip, clusterErr = controlplane.StartForTests()
	if skip {
		clusterErr = fmt.Errorf("skipped under -short: %w", clusterErr)
	}
	code := m.Run()
	if cluster != nil {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop control plane:", err)
		}
	}
	os.Exit(code)
}

// needCluster returns the control plane, skips under -short when it is not
// built, and fails otherwise with the command that builds it.
func needCluster(t *testing.T) *controlplane.Cluster {
	t.Helper()
	if cluster == nil {
		if testing.Short() && errors.Is(clusterErr, controlplane.ErrNotBuilt) {
			t.Skip(clusterErr)
		}
		t.Fatalf("no control plane: %v", clusterErr)
	}
	return cluster
}
