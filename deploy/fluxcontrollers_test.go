package deploy

// Flux's own controllers, not a reproduction of them: source-controller
// clones the loopback deploy repository with the Secret deploy/flux names,
// kustomize-controller builds and applies ./voice from its artifact, on a
// control plane of their own (their reconciles would race the other tests'
// applies on the shared one).

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"dagger/voice/gitops"
	"dagger/voice/gittest"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"

	"gitlab.com/acme/voice-agent/deploy/internal/controlplane"
	"gitlab.com/acme/voice-agent/deploy/internal/fluxapply"
	"gitlab.com/acme/voice-agent/deploy/internal/fluxcontrollers"
)

// fluxLoop starts a control plane with deploy/flux applied as the README
// says, pointed at srv, and Flux's controllers running against it.
func fluxLoop(t *testing.T, srv *gittest.Server) (*controlplane.Cluster, *fluxcontrollers.Controllers) {
	t.Helper()
	if _, err := fluxcontrollers.Assets(); err != nil {
		if testing.Short() && errors.Is(err, fluxcontrollers.ErrNotBuilt) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	needCluster(t) // the shared control plane's binaries are built
	cl, err := controlplane.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = cl.Stop() })
	ctx := t.Context()
	ensureNamespace(t, cl.Client, "flux-system")
	_, err = fluxapply.Reconcile(ctx, cl.Client, ".", adminKustomization("flux", "./flux"), nil, fluxapply.Options{Wait: notWorkload})
	require.NoError(t, err)
	// The read-only deploy token, as the README has the admin create it.
	createSecret(t, cl.Client, "flux-system", "deploy-repo-read", map[string]string{"username": gittest.User, "password": gittest.Token})

	// This test's repository, and seconds instead of minutes.
	var repo sourcev1.GitRepository
	require.NoError(t, cl.Client.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: "deploy"}, &repo))
	before := repo.DeepCopy()
	repo.Spec.URL = srv.URL
	repo.Spec.Interval = metav1.Duration{Duration: time.Second}
	require.NoError(t, cl.Client.Patch(ctx, &repo, client.MergeFrom(before)))
	for _, name := range []string{"voice", "review-apps"} {
		var ks kustomizev1.Kustomization
		require.NoError(t, cl.Client.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: name}, &ks))
		before := ks.DeepCopy()
		// A new artifact triggers a reconcile at once; the interval is
		// the fallback. The health check's timeout cannot go below 30 s.
		ks.Spec.Interval = metav1.Duration{Duration: 10 * time.Second}
		ks.Spec.RetryInterval = &metav1.Duration{Duration: time.Second}
		ks.Spec.Timeout = &metav1.Duration{Duration: 30 * time.Second}
		require.NoError(t, cl.Client.Patch(ctx, &ks, client.MergeFrom(before)))
	}

	kc, err := cl.KubeConfig("flux-controllers", "system:masters")
	require.NoError(t, err)
	fc, err := fluxcontrollers.Start(kc, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = fc.Stop() })
	return cl, fc
}

// eventually polls cond every 250 ms for up to a minute; on timeout it
// fails with what and the controllers' logs.
func eventually(t *testing.T, fc *fluxcontrollers.Controllers, what string, cond func() (bool, string)) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(time.Minute)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			t.Logf("%s: %s", what, time.Since(start).Round(100*time.Millisecond))
			return
		}
		last = state
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: not within a minute (last: %s)\n%s", what, last, fc.Logs())
}

// rolledOut stands in for the StatefulSet controller and the kubelet,
// which this control plane has not: it reports the StatefulSet's current
// generation as rolled out and every replica ready (the status kstatus,
// and so kustomize-controller's health check, reads as "Current").
func rolledOut(t *testing.T, c client.Client, sts *appsv1.StatefulSet) {
	t.Helper()
	replicas := int32(1)
	if sts.Spec.Replicas != nil {
		replicas = *sts.Spec.Replicas
	}
	rev := sts.Name + "-" + strconv.FormatInt(sts.Generation, 10)
	sts.Status = appsv1.StatefulSetStatus{
		ObservedGeneration: sts.Generation, Replicas: replicas, ReadyReplicas: replicas, CurrentReplicas: replicas,
		UpdatedReplicas: replicas, AvailableReplicas: replicas, CurrentRevision: rev, UpdateRevision: rev,
	}
	require.NoError(t, c.Status().Update(t.Context(), sts))
}

// kustomization reads a Flux Kustomization of flux-system.
func kustomization(t *testing.T, c client.Client, name string) *kustomizev1.Kustomization {
	t.Helper()
	var ks kustomizev1.Kustomization
	require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: "flux-system", Name: name}, &ks))
	return &ks
}

func ready(ks *kustomizev1.Kustomization) (*metav1.Condition, string) {
	c := apimeta.FindStatusCondition(ks.Status.Conditions, meta.ReadyCondition)
	if c == nil {
		return nil, "no Ready condition"
	}
	return c, string(c.Status) + " " + c.Reason + ": " + c.Message
}

// TestFluxControllersDeployTheBump: each digest gitops.Bump pushes reaches
// the StatefulSet through Flux's own controllers, at the revision that was
// pushed, and the Kustomization "voice" is Ready at that revision only
// once the StatefulSet has rolled out: `wait: true` health-checks it.
func TestFluxControllersDeployTheBump(t *testing.T) {
	srv := deployRepo(t)
	cl, fc := fluxLoop(t, srv)
	ctx := t.Context()

	for i, d := range []string{digest1, digest2} {
		res, err := gitops.Bump(ctx, gitops.BumpOptions{Repo: repo(srv), Path: "voice", Image: agent + "@" + d})
		require.NoError(t, err)
		revision := "main@sha1:" + res.Commit
		eventually(t, fc, "source-controller fetches "+revision, func() (bool, string) {
			var r sourcev1.GitRepository
			if err := cl.Client.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: "deploy"}, &r); err != nil {
				return false, err.Error()
			}
			if r.Status.Artifact == nil {
				return false, conditionsOf(r.Status.Conditions)
			}
			return r.Status.Artifact.Revision == revision, r.Status.Artifact.Revision + " " + conditionsOf(r.Status.Conditions)
		})
		var sts appsv1.StatefulSet
		eventually(t, fc, "the StatefulSet runs "+d, func() (bool, string) {
			ks := kustomization(t, cl.Client, "voice")
			state := ks.Status.LastAttemptedRevision + " " + conditionsOf(ks.Status.Conditions)
			if err := cl.Client.Get(ctx, client.ObjectKey{Namespace: "voice", Name: "voice-agent"}, &sts); err != nil {
				return false, state + " " + err.Error()
			}
			image := sts.Spec.Template.Spec.Containers[0].Image
			return image == agent+"@"+d, state + " image " + image
		})
		if i == 0 {
			// Not rolled out: the health check holds Ready back (its
			// timeout is at least 30 s).
			eventually(t, fc, "the health check fails on the StatefulSet", func() (bool, string) {
				c, state := ready(kustomization(t, cl.Client, "voice"))
				return c != nil && c.Reason == meta.HealthCheckFailedReason && strings.Contains(c.Message, "StatefulSet/voice/voice-agent"), state
			})
		}
		rolledOut(t, cl.Client, &sts)
		eventually(t, fc, "the Kustomization is Ready at "+revision, func() (bool, string) {
			ks := kustomization(t, cl.Client, "voice")
			c, state := ready(ks)
			return c != nil && c.Status == metav1.ConditionTrue && ks.Status.LastAppliedRevision == revision,
				ks.Status.LastAppliedRevision + " " + state
		})
	}
}

func conditionsOf(cs []metav1.Condition) string {
	var b []string
	for _, c := range cs {
		b = append(b, c.Type+"="+string(c.Status)+" "+c.Reason+": "+c.Message)
	}
	return strings.Join(b, "; ")
}
