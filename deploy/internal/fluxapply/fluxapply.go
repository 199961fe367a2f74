// Package fluxapply reconciles a Flux Kustomization into an API server the
// way kustomize-controller does, with Flux's own packages: the build of
// github.com/fluxcd/pkg/kustomize (the Kustomization's spec written into
// the kustomization by its generator, then SecureBuild confined to the
// source root, then postBuild variable substitution), and the server-side
// apply of github.com/fluxcd/pkg/ssa (dry-run drift detection, staged
// apply: CRDs and Namespaces first, owner labels, prune of what left the
// inventory, wait for readiness).
//
// What it leaves out: fetching the source (the caller passes a checkout of
// the revision), impersonating spec.serviceAccountName (the caller passes a
// client that acts as it), decryption, health-check expressions and status.
package fluxapply

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/object"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	fluxkustomize "github.com/fluxcd/pkg/kustomize"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/normalize"
	ssautil "github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Build builds ks from root, a checkout of its source's revision.
// kube is used for postBuild.substituteFrom.
func Build(ctx context.Context, kube client.Client, root string, ks *kustomizev1.Kustomization) ([]*unstructured.Unstructured, error) {
	// The generator writes into the directory: work on a copy, as the
	// controller works on its own extracted artifact.
	tmp, err := os.MkdirTemp("", "fluxapply-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if out, err := exec.CommandContext(ctx, "cp", "-a", root+"/.", tmp).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copy %s: %w: %s", root, err, out)
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ks)
	if err != nil {
		return nil, err
	}
	obj := unstructured.Unstructured{Object: u}
	obj.SetAPIVersion(kustomizev1.GroupVersion.String())
	obj.SetKind(kustomizev1.KustomizationKind)
	dir := filepath.Join(tmp, filepath.FromSlash(ks.Spec.Path))
	if _, err := fluxkustomize.NewGenerator(tmp, obj).WriteFile(dir); err != nil {
		return nil, fmt.Errorf("generate kustomization for %s: %w", ks.Name, err)
	}
	m, err := fluxkustomize.SecureBuild(tmp, dir, false)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", ks.Spec.Path, err)
	}
	var out []*unstructured.Unstructured
	for _, res := range m.Resources() {
		if ks.Spec.PostBuild != nil {
			// The controller's own call (strict substitution off, as its default).
			if res, err = fluxkustomize.SubstituteVariables(ctx, kube, obj, res); err != nil {
				return nil, fmt.Errorf("substitute variables: %w", err)
			}
		}
		doc, err := res.AsYAML()
		if err != nil {
			return nil, err
		}
		objs, err := ssautil.ReadObjects(bytes.NewReader(doc))
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// Inventory is what one reconciliation applied (the controller keeps it in
// the Kustomization's status); the next one prunes what left it.
type Inventory = object.ObjMetadataSet

// Options of Reconcile.
type Options struct {
	// Wait selects the applied objects to wait for (kustomize-controller
	// waits for all of them with wait: true). Without a controller-manager
	// and kubelet, workloads never become ready: leave them out and check
	// them with PodFromTemplate instead. Nil: wait for none.
	Wait func(*unstructured.Unstructured) bool
	// Timeout of the wait (default 30 s).
	Timeout time.Duration
	// Prune and Force as in the Kustomization's spec (Reconcile sets them).
	Prune, Force bool
}

// Result of Reconcile.
type Result struct {
	Objects   []*unstructured.Unstructured
	ChangeSet *ssa.ChangeSet
	Inventory Inventory
	Pruned    *ssa.ChangeSet
}

// Reconcile builds ks from root and applies it with kube (acting as the
// Kustomization's service account, if the test wants RBAC to decide),
// then prunes the objects of previous that are not applied any more (when
// spec.prune is set) and waits for the selected objects.
func Reconcile(ctx context.Context, kube client.Client, root string, ks *kustomizev1.Kustomization, previous Inventory, o Options) (Result, error) {
	objects, err := Build(ctx, kube, root, ks)
	if err != nil {
		return Result{}, err
	}
	o.Prune = ks.Spec.Prune
	o.Force = ks.Spec.Force
	return Apply(ctx, kube, ssa.Owner{Field: "kustomize-controller", Group: kustomizev1.GroupVersion.Group}, ks.Name, ks.Namespace, objects, previous, o)
}

// Apply applies objects as owner's field manager, labelled as owned by
// name/namespace, prunes what left previous when o.Prune is set, and waits
// for the objects o.Wait selects. Reconcile uses it; so does the test of
// Flux Operator's ResourceSet, which applies its rendered objects the same
// way (the operator is built on the same ssa package).
func Apply(ctx context.Context, kube client.Client, owner ssa.Owner, name, namespace string, objects []*unstructured.Unstructured, previous Inventory, o Options) (Result, error) {
	poller := polling.NewStatusPoller(kube, kube.RESTMapper(), polling.Options{})
	m := ssa.NewResourceManager(kube, poller, owner)
	m.SetOwnerLabels(objects, name, namespace)
	// Defaults the API server would set (e.g. protocols), so the dry-run
	// diff does not see drift that is not there.
	if err := normalize.UnstructuredList(objects); err != nil {
		return Result{}, err
	}
	opts := ssa.DefaultApplyOptions()
	opts.Force = o.Force
	cs := ssa.NewChangeSet()
	if len(objects) > 0 {
		var err error
		if cs, err = m.ApplyAllStaged(ctx, objects, opts); err != nil {
			return Result{Objects: objects}, fmt.Errorf("apply %s: %w", name, err)
		}
	}
	res := Result{Objects: objects, ChangeSet: cs, Inventory: cs.ToObjMetadataSet()}
	if o.Prune && len(previous) > 0 {
		var stale []*unstructured.Unstructured
		for _, id := range previous.Diff(res.Inventory) {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(id.GroupKind.WithVersion(""))
			u.SetNamespace(id.Namespace)
			u.SetName(id.Name)
			stale = append(stale, u)
		}
		if err := resolveVersions(kube, stale); err != nil {
			return res, err
		}
		// Namespaces last, as the controller's delete order does.
		slices.SortStableFunc(stale, func(a, b *unstructured.Unstructured) int {
			return boolInt(a.GetKind() == "Namespace") - boolInt(b.GetKind() == "Namespace")
		})
		pruned, err := m.DeleteAll(ctx, stale, ssa.DefaultDeleteOptions())
		if err != nil {
			return res, fmt.Errorf("prune %s: %w", name, err)
		}
		res.Pruned = pruned
	}
	if o.Wait != nil {
		var set object.ObjMetadataSet
		for _, obj := range objects {
			if o.Wait(obj) {
				set = append(set, object.UnstructuredToObjMetadata(obj))
			}
		}
		timeout := o.Timeout
		if timeout == 0 {
			timeout = 30 * time.Second
		}
		if err := m.WaitForSet(set, ssa.WaitOptions{Interval: 200 * time.Millisecond, Timeout: timeout, FailFast: true}); err != nil {
			return res, fmt.Errorf("wait for %s: %w", name, err)
		}
	}
	return res, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// resolveVersions fills in the preferred version of each object's kind.
func resolveVersions(kube client.Client, objs []*unstructured.Unstructured) error {
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		mapping, err := kube.RESTMapper().RESTMapping(gvk.GroupKind())
		if err != nil {
			return fmt.Errorf("%s: %w", gvk.GroupKind(), err)
		}
		u.SetGroupVersionKind(mapping.GroupVersionKind)
	}
	return nil
}
