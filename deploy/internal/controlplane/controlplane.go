// Package controlplane starts a real Kubernetes control plane for the
// deploy tests: etcd and kube-apiserver v1.37 (built from the Go module
// proxy by .ci/setup into .ci/tools/kube), on loopback, through
// controller-runtime's envtest, with the Flux and Flux Operator CRDs that
// .ci/setup generated from their API modules. Admission runs as on a real
// cluster (Pod Security, ResourceQuota, LimitRange, RBAC, CRD schemas);
// there is no controller-manager, scheduler or kubelet.
package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	fluxopv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// AssetsEnv names the directory holding the kube-apiserver and etcd
// binaries (envtest's own variable). Default: .ci/tools/kube/bin of the
// repository. The CRDs are read from ../crds beside it.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// Cluster is a running control plane.
type Cluster struct {
	Config *rest.Config
	Client client.Client
	env    *envtest.Environment
}

// Scheme knows the built-in types and the Flux types the tests use.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, kustomizev1.AddToScheme, sourcev1.AddToScheme, fluxopv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// ErrNotBuilt reports that .ci/setup has not built the control plane.
var ErrNotBuilt = errors.New("the control plane is not built")

// Assets returns the binary and CRD directories, or an error naming the
// command that builds them.
func Assets() (bin, crds string, err error) {
	bin = os.Getenv(AssetsEnv)
	if bin == "" {
		root, err := repoRoot()
		if err != nil {
			return "", "", err
		}
		bin = filepath.Join(root, ".ci", "tools", "kube", "bin")
	}
	crds = filepath.Join(filepath.Dir(bin), "crds")
	for _, f := range []string{filepath.Join(bin, "kube-apiserver"), filepath.Join(bin, "etcd"), crds} {
		if _, err := os.Stat(f); err != nil {
			return "", "", fmt.Errorf("%w: %s is missing: run .ci/setup (or .ci/kube/build) first, or point %s at a directory with kube-apiserver and etcd",
				ErrNotBuilt, f, AssetsEnv)
		}
	}
	return bin, crds, nil
}

// repoRoot walks up from the working directory to the directory holding
// .ci/kube/build.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, ".ci", "kube", "build")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w: no .ci/kube/build above the working directory; set %s", ErrNotBuilt, AssetsEnv)
		}
		dir = parent
	}
}

// Start starts etcd and kube-apiserver and installs the CRDs. Stop it with
// Stop. Start takes about 3 s on an idle machine.
func Start() (*Cluster, error) {
	bin, crds, err := Assets()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: bin,
		CRDDirectoryPaths:     []string{crds},
		ErrorIfCRDPathMissing: true,
	}
	// envtest's API server runs with --authorization-mode=RBAC and
	// --allow-privileged=true (so privileged pods reach Pod Security instead
	// of failing validation), and without the ServiceAccount admission
	// plugin (no controller-manager creates "default" service accounts).
	// controller-runtime's clients log through this; the tests do not.
	ctrllog.SetLogger(logr.Discard())
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start kube-apiserver and etcd from %s: %w", bin, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Cluster{Config: cfg, Client: c, env: env}, nil
}

// Stop stops the API server and etcd and removes their data.
func (c *Cluster) Stop() error { return c.env.Stop() }

// Impersonate returns a client acting as user (e.g.
// system:serviceaccount:<ns>:<name>), so RBAC decides what it may do.
func (c *Cluster) Impersonate(user string, groups ...string) (client.Client, error) {
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return client.New(cfg, client.Options{Scheme: Scheme()})
}

// StartForTests is for TestMain: it starts the control plane, or reports
// why it cannot. Without the binaries the tests fail with the command to
// run, except under -short, where they are skipped (skip is then true).
func StartForTests() (c *Cluster, skip bool, err error) {
	c, err = Start()
	if errors.Is(err, ErrNotBuilt) && testing.Short() {
		return nil, true, err
	}
	return c, false, err
}
