package controlplane

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Workload kinds whose pod template DryRunPod checks.
var Workloads = map[string]bool{"Deployment": true, "StatefulSet": true, "DaemonSet": true, "ReplicaSet": true, "Job": true}

// DryRunPod creates, with ?dryRun=All, the Pod a controller would create
// from the workload's template, in the workload's namespace. Pod Security
// admission enforces on Pods only (a privileged StatefulSet is accepted
// with a warning), so this is how a workload is checked without a
// controller-manager. The error is the API server's answer.
func DryRunPod(ctx context.Context, c client.Client, workload *unstructured.Unstructured) error {
	tmpl, found, err := unstructured.NestedMap(workload.Object, "spec", "template")
	if err != nil || !found {
		return fmt.Errorf("%s/%s has no pod template", workload.GetKind(), workload.GetName())
	}
	var pt corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, &pt); err != nil {
		return err
	}
	// The StatefulSet controller adds a volume per claim template.
	claims, _, _ := unstructured.NestedSlice(workload.Object, "spec", "volumeClaimTemplates")
	for _, c := range claims {
		name, _, _ := unstructured.NestedString(c.(map[string]any), "metadata", "name")
		pt.Spec.Volumes = append(pt.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name + "-" + workload.GetName() + "-0"},
		}})
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        workload.GetName() + "-0",
			Namespace:   workload.GetNamespace(),
			Labels:      pt.Labels,
			Annotations: pt.Annotations,
		},
		Spec: pt.Spec,
	}
	if err := c.Create(ctx, pod, client.DryRunAll); err != nil {
		return fmt.Errorf("pod of %s %s/%s: %w", workload.GetKind(), workload.GetNamespace(), workload.GetName(), err)
	}
	return nil
}
