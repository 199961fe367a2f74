package deploy

// Tests against a real kube-apiserver (internal/controlplane): the
// manifests applied the way Flux applies them (internal/fluxapply), Pod
// Security, quotas and RBAC decided by the API server itself.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/ssa"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"gitlab.com/acme/voice-agent/deploy/internal/controlplane"
	"gitlab.com/acme/voice-agent/deploy/internal/fluxapply"
)

// fluxKustomization reads a Flux Kustomization of deploy/flux.
func fluxKustomization(t *testing.T, file string) *kustomizev1.Kustomization {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("flux", file))
	require.NoError(t, err)
	ks := &kustomizev1.Kustomization{}
	require.NoError(t, yaml.UnmarshalStrict(raw, ks), file)
	return ks
}

// adminKustomization stands for a cluster admin's `kubectl apply -k path`
// (or Flux's bootstrap Kustomization of that path).
func adminKustomization(name, path string) *kustomizev1.Kustomization {
	return &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "flux-system"},
		Spec:       kustomizev1.KustomizationSpec{Path: path, Prune: true},
	}
}

func ensureNamespace(t *testing.T, c client.Client, name string) {
	t.Helper()
	err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// notWorkload selects what becomes ready without a controller-manager:
// core, networking and RBAC objects. Not workloads (checked with DryRunPod
// instead), nor kinds whose status only a controller writes.
func notWorkload(u *unstructured.Unstructured) bool {
	switch u.GroupVersionKind().Group {
	case "", "networking.k8s.io", "rbac.authorization.k8s.io":
		// Custom resources (Flux's) become ready through their controllers.
	default:
		return false
	}
	return u.GetKind() != "PersistentVolumeClaim"
}

var bootstrapOnce sync.Once

// bootstrap applies deploy/flux as the README says (kubectl apply -k
// deploy/flux) into a cluster where Flux's bootstrap made flux-system.
func bootstrap(t *testing.T) *controlplane.Cluster {
	t.Helper()
	cl := needCluster(t)
	bootstrapOnce.Do(func() {
		ensureNamespace(t, cl.Client, "flux-system")
		_, err := fluxapply.Reconcile(t.Context(), cl.Client, ".", adminKustomization("flux", "./flux"), nil,
			fluxapply.Options{Wait: notWorkload})
		require.NoError(t, err)
	})
	return cl
}

func workloadsOf(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if controlplane.Workloads[o.GetKind()] {
			out = append(out, o)
		}
	}
	return out
}

// Breakage 1: deploy/flux must create the `voice` namespace (restricted)
// and leave flux-system alone; before the fix kustomize renamed the Namespace
// to flux-system and the voice Kustomization failed with "namespace voice
// not found".
func TestFluxSetupCreatesTheVoiceNamespace(t *testing.T) {
	cl := bootstrap(t)
	ctx := t.Context()
	var voice corev1.Namespace
	require.NoError(t, cl.Client.Get(ctx, client.ObjectKey{Name: "voice"}, &voice), "namespace voice")
	assert.Equal(t, "restricted", voice.Labels["pod-security.kubernetes.io/enforce"])
	var fs corev1.Namespace
	require.NoError(t, cl.Client.Get(ctx, client.ObjectKey{Name: "flux-system"}, &fs))
	assert.NotContains(t, fs.Labels, "pod-security.kubernetes.io/enforce",
		"deploy/flux must not relabel Flux's own namespace (its controllers are not restricted pods)")
	for _, name := range []string{"voice", "review-apps"} {
		var ks kustomizev1.Kustomization
		require.NoError(t, cl.Client.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: name}, &ks), name)
	}
}

// TestProductionAppliesAndIsAdmitted: the production app, applied as the
// Flux Kustomization "voice" would (dry-run, staged server-side apply,
// wait), is accepted by the API server, its pod passes restricted Pod
// Security, and a second reconcile changes nothing.
func TestProductionAppliesAndIsAdmitted(t *testing.T) {
	cl := bootstrap(t)
	ctx := t.Context()
	ks := fluxKustomization(t, "kustomization-voice.yaml")
	res, err := fluxapply.Reconcile(ctx, cl.Client, ".", ks, nil, fluxapply.Options{Wait: notWorkload})
	require.NoError(t, err)
	wl := workloadsOf(res.Objects)
	require.Len(t, wl, 1)
	require.NoError(t, controlplane.DryRunPod(ctx, cl.Client, wl[0]))

	again, err := fluxapply.Reconcile(ctx, cl.Client, ".", ks, res.Inventory, fluxapply.Options{})
	require.NoError(t, err)
	for _, e := range again.ChangeSet.Entries {
		assert.Equal(t, ssa.UnchangedAction, e.Action, "%s changed on a second apply (drift)", e.Subject)
	}
}

// TestPodSecurityIsEnforced proves the admission the tests rely on is live:
// the Dagger engine's privileged pod is admitted in its own namespace and
// refused in the restricted `voice` namespace.
func TestPodSecurityIsEnforced(t *testing.T) {
	cl := bootstrap(t)
	ctx := t.Context()
	res, err := fluxapply.Reconcile(ctx, cl.Client, ".", adminKustomization("dagger-engine", "./dagger-engine"), nil,
		fluxapply.Options{Wait: notWorkload})
	require.NoError(t, err)
	wl := workloadsOf(res.Objects)
	require.Len(t, wl, 1)
	require.NoError(t, controlplane.DryRunPod(ctx, cl.Client, wl[0]))

	inVoice := wl[0].DeepCopy()
	inVoice.SetNamespace("voice")
	err = controlplane.DryRunPod(ctx, cl.Client, inVoice)
	require.Error(t, err)
	assert.True(t, apierrors.IsForbidden(err), "%v", err)
	assert.Contains(t, err.Error(), `violates PodSecurity "restricted:latest"`)
}

// ciJob is how the GitLab agent impersonates a CI job (access_as: ci_job):
// user gitlab:ci_job:<job id>, groups gitlab:ci_job and the job's project,
// environment and tier groups.
func ciJob(t *testing.T, cl *controlplane.Cluster) client.Client {
	t.Helper()
	c, err := cl.Impersonate("gitlab:ci_job:4242", "gitlab:ci_job", "gitlab:project:42",
		"gitlab:project_env:42:production", "gitlab:project_env_tier:42:production", "system:authenticated")
	require.NoError(t, err)
	return c
}

// TestCIJobAccessIsReadOnly: a production CI job that reaches the cluster
// through the GitLab agent may look at the app in the agent's default
// namespace and nothing else: no Secret, no write, no other namespace. The
// only binding of the CI job group is deploy/flux's, in that namespace.
func TestCIJobAccessIsReadOnly(t *testing.T) {
	cl := bootstrap(t)
	ctx := t.Context()
	ns := readAgentConfig(t).CIAccess.Projects[0].DefaultNamespace
	job := ciJob(t, cl)

	require.NoError(t, job.List(ctx, &corev1.PodList{}, client.InNamespace(ns)), "list pods in %s", ns)
	require.NoError(t, job.List(ctx, &appsv1.StatefulSetList{}, client.InNamespace(ns)), "list statefulsets in %s", ns)
	logs := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "pods", Subresource: "log"}}}
	require.NoError(t, job.Create(ctx, logs))
	assert.True(t, logs.Status.Allowed, "the CI job reads pod logs in %s", ns)
	assert.True(t, isForbidden(job.List(ctx, &corev1.SecretList{}, client.InNamespace(ns))), "the CI job must not read Secrets")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ci-was-here"}}
	assert.True(t, isForbidden(job.Create(ctx, cm)), "the CI job must not change %s", ns)
	ensureNamespace(t, cl.Client, "voice-mr-9")
	assert.True(t, isForbidden(job.List(ctx, &corev1.PodList{}, client.InNamespace("voice-mr-9"))), "no access to review namespaces")
	assert.True(t, isForbidden(job.List(ctx, &corev1.PodList{}, client.InNamespace("flux-system"))), "no access to Flux")

	var rbs rbacv1.RoleBindingList
	require.NoError(t, cl.Client.List(ctx, &rbs))
	var bound []string
	for _, rb := range rbs.Items {
		for _, s := range rb.Subjects {
			if s.Kind == rbacv1.GroupKind && strings.HasPrefix(s.Name, "gitlab:") {
				bound = append(bound, rb.Namespace+"/"+rb.Name+" -> "+rb.RoleRef.Name)
			}
		}
	}
	assert.Equal(t, []string{ns + "/gitlab-ci-view -> gitlab-ci-view"}, bound)
	var crbs rbacv1.ClusterRoleBindingList
	require.NoError(t, cl.Client.List(ctx, &crbs))
	for _, crb := range crbs.Items {
		for _, s := range crb.Subjects {
			assert.False(t, strings.HasPrefix(s.Name, "gitlab:"), "cluster-wide binding %s for %s", crb.Name, s.Name)
		}
	}
}

// TestEveryWorkloadPassesPodSecurity covers the remaining paths.
func TestEveryWorkloadPassesPodSecurity(t *testing.T) {
	cl := bootstrap(t)
	ctx := t.Context()
	ensureNamespace(t, cl.Client, "voice-mr-9000")
	ks := adminKustomization("review-app-check", "./review/app")
	ks.Spec.TargetNamespace = "voice-mr-9000"
	objs, err := fluxapply.Build(ctx, cl.Client, ".", ks)
	require.NoError(t, err)
	wl := workloadsOf(objs)
	require.Len(t, wl, 1)
	for _, w := range wl {
		assert.Equal(t, "voice-mr-9000", w.GetNamespace())
	}
	// The namespace has no Pod Security label yet: label it as the review
	// namespace is, then the pod must pass.
	var ns corev1.Namespace
	require.NoError(t, cl.Client.Get(ctx, client.ObjectKey{Name: "voice-mr-9000"}, &ns))
	ns.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	require.NoError(t, cl.Client.Update(ctx, &ns))
	require.NoError(t, controlplane.DryRunPod(ctx, cl.Client, wl[0]))
}

// containsForbidden reports whether err is an RBAC refusal.
func isForbidden(err error) bool {
	return err != nil && (apierrors.IsForbidden(err) || strings.Contains(err.Error(), "forbidden"))
}

func statefulSet(t *testing.T, c client.Client, ns, name string) *appsv1.StatefulSet {
	t.Helper()
	sts := &appsv1.StatefulSet{}
	require.NoError(t, c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, sts))
	return sts
}
