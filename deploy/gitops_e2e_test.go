package deploy

// End to end: ci/gitops (what `dagger call bump`/`review`/`stop-review`
// run) pushes to a loopback deploy repository; a Flux-style reconcile of
// the pushed revision then changes the API server. The deploy module
// reaches ci/gitops through `replace dagger/voice => ../ci` (see go.mod):
// these tests need the control plane's dependencies, which must stay out of
// the Dagger module's go.mod.

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dagger/voice/gitops"
	"dagger/voice/gittest"
	fluxopv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	"github.com/fluxcd/pkg/ssa"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"

	"gitlab.com/acme/voice-agent/deploy/internal/controlplane"
	"gitlab.com/acme/voice-agent/deploy/internal/fluxapply"
	"gitlab.com/acme/voice-agent/deploy/internal/resourceset"
)

const (
	digest1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	digest2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	agent   = "registry.gitlab.com/acme/voice-agent"
	// Secret values of the test cluster (not real keys).
	prodKey   = "sk-production-key-must-not-leak"
	reviewKey = "sk-review-limited-key"
)

// deployRepo seeds a loopback deploy repository with voice/ and review/ as
// the README says, and returns it.
// deployRepo serves a deploy repository holding this directory's voice/
// and review/, as the README says to lay it out.
func deployRepo(t *testing.T) *gittest.Server {
	files := map[string]string{}
	for _, dir := range []string{"voice", "review"} {
		require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			files[filepath.ToSlash(path)] = string(data)
			return err
		}))
	}
	return gittest.New(t, files)
}

func repo(s *gittest.Server) gitops.Repo {
	return gitops.Repo{URL: s.URL, Auth: gitops.Auth{Token: gittest.Token},
		Author: gitops.Author{Name: "Bump Bot", Email: "bump@example.com"}}
}

func createSecret(t *testing.T, c client.Client, ns, name string, data map[string]string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
	err := c.Create(t.Context(), s)
	if apierrors.IsAlreadyExists(err) {
		require.NoError(t, c.Update(t.Context(), s))
		return
	}
	require.NoError(t, err)
}

// productionSnapshot is the resourceVersion of every object of the kinds
// the app uses in namespace voice.
func productionSnapshot(t *testing.T, c client.Client) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, gvk := range [][2]string{
		{"v1", "Secret"}, {"v1", "Service"}, {"v1", "ServiceAccount"}, {"apps/v1", "StatefulSet"},
		{"networking.k8s.io/v1", "NetworkPolicy"}, {"networking.k8s.io/v1", "Ingress"},
		{"policy/v1", "PodDisruptionBudget"}, {"autoscaling/v2", "HorizontalPodAutoscaler"},
	} {
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion(gvk[0])
		l.SetKind(gvk[1] + "List")
		require.NoError(t, c.List(t.Context(), l, client.InNamespace("voice")))
		for _, m := range l.Items {
			out[gvk[1]+"/"+m.GetName()] = m.GetResourceVersion()
		}
	}
	require.NotEmpty(t, out["StatefulSet/voice-agent"], "production is deployed")
	return out
}

// TestBumpReachesTheStatefulSet: gitops.Bump pushes a digest; the
// reconcile of that revision sets the StatefulSet's image to it; a second
// bump rolls it again, without pruning anything.
func TestBumpReachesTheStatefulSet(t *testing.T) {
	cl := bootstrap(t)
	ctx := t.Context()
	srv := deployRepo(t)
	ks := fluxKustomization(t, "kustomization-voice.yaml")

	var inv fluxapply.Inventory
	for _, d := range []string{digest1, digest2} {
		res, err := gitops.Bump(ctx, gitops.BumpOptions{Repo: repo(srv), Path: "voice", Image: agent + "@" + d})
		require.NoError(t, err)
		require.Equal(t, srv.Head(t, "main"), res.Commit)
		rec, err := fluxapply.Reconcile(ctx, cl.Client, srv.Checkout(t, res.Commit), ks, inv, fluxapply.Options{Wait: notWorkload})
		require.NoError(t, err)
		inv = rec.Inventory
		if rec.Pruned != nil {
			assert.Empty(t, rec.Pruned.Entries)
		}
		sts := statefulSet(t, cl.Client, "voice", "voice-agent")
		assert.Equal(t, agent+"@"+d, sts.Spec.Template.Spec.Containers[0].Image)
	}
}

// TestReviewAppPushPath (breakage 3, push path): `dagger call review` for
// merge request 42, reconciled as the Flux Kustomization "review-apps",
// runs in its own namespace with its own Secret holding the review key,
// passes restricted Pod Security, and leaves every production object as it
// was; `stop-review` then prunes it.
func TestReviewAppPushPath(t *testing.T) {
	cl := bootstrap(t)
	ctx := t.Context()
	createSecret(t, cl.Client, "voice", "voice-agent-openai", map[string]string{"OPENAI_API_KEY": prodKey, "OPENAI_WEBHOOK_SECRET": "whsec_prod"})
	createSecret(t, cl.Client, "flux-system", "review-openai", map[string]string{
		"REVIEW_OPENAI_API_KEY": reviewKey, "REVIEW_OPENAI_WEBHOOK_SECRET": "whsec_review"})
	_, err := fluxapply.Reconcile(ctx, cl.Client, ".", fluxKustomization(t, "kustomization-voice.yaml"), nil, fluxapply.Options{})
	require.NoError(t, err)
	before := productionSnapshot(t, cl.Client)

	srv := deployRepo(t)
	ks := fluxKustomization(t, "kustomization-review-apps.yaml")
	rv, err := gitops.Review(ctx, gitops.ReviewOptions{Repo: repo(srv), MR: 42, Image: agent + "@" + digest1, Domain: "review.example.com"})
	require.NoError(t, err)
	rec, err := fluxapply.Reconcile(ctx, cl.Client, srv.Checkout(t, rv.Commit), ks, nil, fluxapply.Options{Wait: notWorkload})
	require.NoError(t, err)

	ns := gitops.ReviewNamespace(42)
	assert.Equal(t, "voice-mr-42", ns)
	for _, o := range rec.Objects {
		if o.GetKind() != "Namespace" {
			assert.Equal(t, ns, o.GetNamespace(), "%s %s", o.GetKind(), o.GetName())
		}
	}
	var nsObj corev1.Namespace
	require.NoError(t, cl.Client.Get(ctx, client.ObjectKey{Name: ns}, &nsObj))
	assert.Equal(t, "restricted", nsObj.Labels["pod-security.kubernetes.io/enforce"])

	sts := statefulSet(t, cl.Client, ns, "mr-42-voice-agent")
	c := sts.Spec.Template.Spec.Containers[0]
	assert.Equal(t, agent+"@"+digest1, c.Image)
	assertReviewKey(t, cl.Client, ns, c)
	var quota corev1.ResourceQuota
	require.NoError(t, cl.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "mr-42-review"}, &quota))
	require.NoError(t, controlplane.DryRunPod(ctx, cl.Client, workloadsOf(rec.Objects)[0]))
	assert.Equal(t, before, productionSnapshot(t, cl.Client), "a review app changed production objects")

	stop, err := gitops.StopReview(ctx, gitops.ReviewOptions{Repo: repo(srv), MR: 42})
	require.NoError(t, err)
	pruned, err := fluxapply.Reconcile(ctx, cl.Client, srv.Checkout(t, stop.Commit), ks, rec.Inventory, fluxapply.Options{})
	require.NoError(t, err)
	require.NotNil(t, pruned.Pruned)
	assertGone(t, cl.Client, ns, "mr-42-voice-agent", pruned.Pruned)
	assert.Equal(t, before, productionSnapshot(t, cl.Client), "stopping a review app changed production objects")
}

// assertReviewKey: the container's OpenAI key comes from a Secret in the
// review namespace that holds the review key.
func assertReviewKey(t *testing.T, c client.Client, ns string, ctr corev1.Container) {
	t.Helper()
	found := false
	for _, e := range ctr.Env {
		if e.Name != "OPENAI_API_KEY" {
			continue
		}
		found = true
		require.NotNil(t, e.ValueFrom)
		var s corev1.Secret
		require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: e.ValueFrom.SecretKeyRef.Name}, &s),
			"the review app's Secret %s must exist in %s", e.ValueFrom.SecretKeyRef.Name, ns)
		assert.Equal(t, reviewKey, string(s.Data["OPENAI_API_KEY"]))
		assert.NotEqual(t, prodKey, string(s.Data["OPENAI_API_KEY"]))
	}
	assert.True(t, found, "OPENAI_API_KEY is set")
}

// assertGone: the StatefulSet was pruned, and its namespace deleted (no
// namespace controller runs, so it may stay Terminating).
func assertGone(t *testing.T, c client.Client, ns, sts string, pruned *ssa.ChangeSet) {
	t.Helper()
	subjects := pruned.ToMap()
	assert.Equal(t, ssa.DeletedAction, subjects["StatefulSet/"+ns+"/"+sts], "pruned: %v", subjects)
	assert.Equal(t, ssa.DeletedAction, subjects["Namespace/"+ns], "pruned: %v", subjects)
	var nsObj corev1.Namespace
	err := c.Get(t.Context(), client.ObjectKey{Name: ns}, &nsObj)
	if err == nil {
		assert.NotNil(t, nsObj.DeletionTimestamp, "namespace %s is being deleted", ns)
	} else {
		assert.True(t, apierrors.IsNotFound(err), "%v", err)
	}
}

// TestReviewAppPullPath (breakage 3, pull path): deploy/review-apps is
// accepted by the Flux Operator CRDs; its ResourceSet, rendered for a merge
// request as the operator renders it, creates a namespace whose Flux
// Kustomization, applied AS its own service account (RBAC decides),
// deploys the merge request's image with the review key; that service
// account cannot touch production; closing the merge request prunes it all.
func TestReviewAppPullPath(t *testing.T) {
	cl := bootstrap(t)
	ctx := t.Context()
	createSecret(t, cl.Client, "voice", "voice-agent-openai", map[string]string{"OPENAI_API_KEY": prodKey, "OPENAI_WEBHOOK_SECRET": "whsec_prod"})
	admin, err := fluxapply.Reconcile(ctx, cl.Client, ".", adminKustomization("review-apps-setup", "./review-apps"), nil,
		fluxapply.Options{Wait: notWorkload})
	require.NoError(t, err)
	createSecret(t, cl.Client, "voice-review", "voice-agent-openai-review", map[string]string{
		"OPENAI_API_KEY": reviewKey, "OPENAI_WEBHOOK_SECRET": "whsec_review"})
	_, err = fluxapply.Reconcile(ctx, cl.Client, ".", fluxKustomization(t, "kustomization-voice.yaml"), nil, fluxapply.Options{})
	require.NoError(t, err)
	before := productionSnapshot(t, cl.Client)

	var rs fluxopv1.ResourceSet
	for _, o := range admin.Objects {
		if o.GetKind() == "ResourceSet" {
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &rs))
		}
	}
	require.NotEmpty(t, rs.Spec.ResourcesTemplate)
	// The inputs a GitLabMergeRequest provider exports (documented fields);
	// branch, author and title are the merge request author's free text.
	sha := "0123456789abcdef0123456789abcdef01234567"
	inputs := map[string]any{"id": "7", "sha": sha, "branch": "x\n  namespace: voice", "author": "mallory", "title": "<< evil >>"}
	objs, err := resourceset.Render(rs.Spec.ResourcesTemplate, inputs)
	require.NoError(t, err)
	require.NoError(t, resourceset.CopyFrom(ctx, cl.Client, objs))
	operator := ssa.Owner{Field: "flux-operator", Group: fluxopv1.GroupVersion.Group}
	applied, err := fluxapply.Apply(ctx, cl.Client, operator, rs.Name, rs.Namespace, objs, nil, fluxapply.Options{})
	require.NoError(t, err)

	ns := "voice-mr-7"
	var ks kustomizev1.Kustomization
	require.NoError(t, cl.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "voice-agent"}, &ks))
	require.Equal(t, "review-applier", ks.Spec.ServiceAccountName)
	sa := "system:serviceaccount:" + ns + ":" + ks.Spec.ServiceAccountName
	asSA, err := cl.Impersonate(sa, "system:serviceaccounts", "system:serviceaccounts:"+ns, "system:authenticated")
	require.NoError(t, err)
	app, err := fluxapply.Reconcile(ctx, asSA, ".", &ks, nil, fluxapply.Options{Wait: notWorkload})
	require.NoError(t, err)

	sts := statefulSet(t, cl.Client, ns, "voice-agent")
	c := sts.Spec.Template.Spec.Containers[0]
	assert.Equal(t, agent+"/review:"+sha, c.Image)
	assert.Equal(t, "review", sts.Labels["app.kubernetes.io/instance"])
	assertReviewKey(t, cl.Client, ns, c)
	require.NoError(t, controlplane.DryRunPod(ctx, cl.Client, workloadsOf(app.Objects)[0]))

	// What the review app's applier cannot do: read or change production,
	// or lift its own quota.
	var prodSecret corev1.Secret
	assert.True(t, isForbidden(asSA.Get(ctx, client.ObjectKey{Namespace: "voice", Name: "voice-agent-openai"}, &prodSecret)),
		"the review applier must not read production's Secret")
	victim := statefulSet(t, cl.Client, "voice", "voice-agent")
	victim.Spec.Template.Spec.Containers[0].Image = "evil@" + digest2
	assert.True(t, isForbidden(asSA.Update(ctx, victim)), "the review applier must not change production")
	var quota corev1.ResourceQuota
	require.NoError(t, cl.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "review"}, &quota))
	quota.Spec.Hard[corev1.ResourcePods] = quota.Spec.Hard[corev1.ResourceRequestsStorage]
	assert.True(t, isForbidden(asSA.Update(ctx, &quota)), "the review applier must not lift its quota")
	assert.Equal(t, before, productionSnapshot(t, cl.Client))

	// The merge request is closed: no inputs, the operator prunes.
	pruned, err := fluxapply.Apply(ctx, cl.Client, operator, rs.Name, rs.Namespace, nil, applied.Inventory, fluxapply.Options{Prune: true})
	require.NoError(t, err)
	require.NotNil(t, pruned.Pruned, "the closed merge request's objects are pruned")
	subjects := pruned.Pruned.ToMap()
	assert.Equal(t, ssa.DeletedAction, subjects["Namespace/"+ns], "pruned: %v", subjects)
	assert.Equal(t, before, productionSnapshot(t, cl.Client))
	assert.False(t, strings.Contains(rs.Spec.ResourcesTemplate, "inputs.branch") ||
		strings.Contains(rs.Spec.ResourcesTemplate, "inputs.title") ||
		strings.Contains(rs.Spec.ResourcesTemplate, "inputs.author"),
		"merge-request authors choose branch, title and author: they must not reach a manifest")
}
