// Package fluxcontrollers runs Flux's own source-controller and
// kustomize-controller (v1.9.6, built from their modules by .ci/setup into
// .ci/tools/flux/bin) as processes beside a control plane: the GitOps
// loop of deploy/ as a cluster runs it, from a git push to the objects on
// the API server.
package fluxcontrollers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// AssetsEnv names a directory holding source-controller and
// kustomize-controller. Default: .ci/tools/flux/bin of the repository.
const AssetsEnv = "FLUX_CONTROLLERS"

// ErrNotBuilt reports that .ci/setup has not built the controllers.
var ErrNotBuilt = errors.New("the Flux controllers are not built")

// Assets returns the directory of the controller binaries, or an error
// naming the command that builds them.
func Assets() (string, error) {
	bin := os.Getenv(AssetsEnv)
	if bin == "" {
		dir, err := os.Getwd()
		if err != nil {
			return "", err
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, ".ci", "flux", "build")); err == nil {
				bin = filepath.Join(dir, ".ci", "tools", "flux", "bin")
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return "", fmt.Errorf("%w: no .ci/flux/build above the working directory; set %s", ErrNotBuilt, AssetsEnv)
			}
			dir = parent
		}
	}
	for _, name := range []string{"source-controller", "kustomize-controller"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return "", fmt.Errorf("%w: %s is missing: run .ci/setup (or .ci/flux/build) first, or point %s at a directory with both controllers",
				ErrNotBuilt, filepath.Join(bin, name), AssetsEnv)
		}
	}
	return bin, nil
}

// Controllers are the running controller processes.
type Controllers struct {
	cancel context.CancelFunc
	cmds   []*exec.Cmd
	logs   []*logBuffer
}

type logBuffer struct {
	name string
	mu   sync.Mutex
	b    strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Start runs source-controller and kustomize-controller with kubeconfig
// (a cluster-admin user, as their ServiceAccounts are in a Flux install),
// watching all namespaces, with Flux's runtime namespace flux-system and
// dir for the artifacts and the kubeconfig. Stop them with Stop.
func Start(kubeconfig []byte, dir string) (*Controllers, error) {
	bin, err := Assets()
	if err != nil {
		return nil, err
	}
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	artifacts := filepath.Join(dir, "artifacts")
	if err := os.MkdirAll(artifacts, 0o700); err != nil {
		return nil, err
	}
	// Loopback ports for the artifact server and, per controller, the
	// metrics and health endpoints (the defaults would collide).
	addrs := make([]string, 5)
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return nil, err
		}
	}
	common := func(metrics, health string) []string {
		return []string{"--metrics-addr=" + metrics, "--health-addr=" + health, "--enable-leader-election=false",
			"--watch-all-namespaces=true", "--log-level=debug", "--log-encoding=console", "--events-addr="}
	}
	procs := map[string][]string{
		"source-controller": append(common(addrs[1], addrs[2]), "--storage-path="+artifacts,
			"--storage-addr="+addrs[0], "--storage-adv-addr="+addrs[0]),
		// A missing source artifact is retried after --requeue-dependency
		// (30 s by default): seconds here.
		"kustomize-controller": append(common(addrs[3], addrs[4]), "--no-remote-bases=true", "--requeue-dependency=1s"),
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Controllers{cancel: cancel}
	for _, name := range []string{"source-controller", "kustomize-controller"} {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, name), procs[name]...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kc, "RUNTIME_NAMESPACE=flux-system")
		log := &logBuffer{name: name}
		cmd.Stdout, cmd.Stderr = log, log
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			_ = c.Stop()
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		c.cmds = append(c.cmds, cmd)
		c.logs = append(c.logs, log)
	}
	return c, nil
}

// Logs returns what the controllers wrote, for a failing test's message.
func (c *Controllers) Logs() string {
	var b strings.Builder
	for _, l := range c.logs {
		fmt.Fprintf(&b, "--- %s\n%s\n", l.name, l.String())
	}
	return b.String()
}

// Stop stops both controllers.
func (c *Controllers) Stop() error {
	c.cancel()
	var errs []error
	for _, cmd := range c.cmds {
		if err := cmd.Wait(); err != nil && !strings.Contains(err.Error(), "signal: interrupt") {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
