package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	fluxopv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	fluxkustomize "github.com/fluxcd/pkg/kustomize"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kustomizations are the directories of this repository that are built.
var kustomizations = []string{"voice", "review", "review/app", "review-apps", "flux", "dagger-engine"}

// typeOf returns an empty typed object for apiVersion/kind, or nil.
func typeOf(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}
	case "networking.k8s.io/v1/Ingress":
		return &networkingv1.Ingress{}
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "source.toolkit.fluxcd.io/v1/GitRepository":
		return &sourcev1.GitRepository{}
	case "kustomize.toolkit.fluxcd.io/v1/Kustomization":
		return &kustomizev1.Kustomization{}
	case "notification.toolkit.fluxcd.io/v1/Receiver":
		return &notificationv1.Receiver{}
	case "notification.toolkit.fluxcd.io/v1beta3/Provider":
		return &notificationv1beta3.Provider{}
	case "notification.toolkit.fluxcd.io/v1beta3/Alert":
		return &notificationv1beta3.Alert{}
	case "fluxcd.controlplane.io/v1/ResourceSet":
		return &fluxopv1.ResourceSet{}
	case "fluxcd.controlplane.io/v1/ResourceSetInputProvider":
		return &fluxopv1.ResourceSetInputProvider{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/ResourceQuota":
		return &corev1.ResourceQuota{}
	case "v1/LimitRange":
		return &corev1.LimitRange{}
	case "rbac.authorization.k8s.io/v1/RoleBinding":
		return &rbacv1.RoleBinding{}
	case "rbac.authorization.k8s.io/v1/Role":
		return &rbacv1.Role{}
	}
	return nil
}

// decodeStrict decodes one object into its API type; unknown fields,
// duplicate fields and wrong types are errors.
func decodeStrict(doc []byte) (any, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return nil, err
	}
	obj := typeOf(meta.APIVersion, meta.Kind)
	if obj == nil {
		return nil, fmt.Errorf("no API type known for %s %s: add it to typeOf", meta.APIVersion, meta.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s %s: %w", meta.APIVersion, meta.Kind, err)
	}
	return obj, nil
}

func buildKrusty(t *testing.T, dir string) resmap.ResMap {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	require.NoError(t, err, "kustomize build %s", dir)
	return m
}

// buildFlux builds dir the way kustomize-controller does: a copy of the
// repository, the Flux Kustomization's settings written into the
// kustomization (NewGenerator.WriteFile), then SecureBuild confined to the
// repository root.
func buildFlux(t *testing.T, path string, spec map[string]any) resmap.ResMap {
	t.Helper()
	root := t.TempDir()
	out, err := exec.Command("cp", "-r", ".", root).CombinedOutput()
	require.NoError(t, err, "%s", out)
	ks := unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kustomize.toolkit.fluxcd.io/v1",
		"kind":       "Kustomization",
		"metadata":   map[string]any{"name": "test", "namespace": "flux-system"},
		"spec":       spec,
	}}
	dir := filepath.Join(root, filepath.FromSlash(path))
	_, err = fluxkustomize.NewGenerator(root, ks).WriteFile(dir)
	require.NoError(t, err)
	m, err := fluxkustomize.SecureBuild(root, dir, false)
	require.NoError(t, err, "flux build %s", path)
	return m
}

func decodeAll(t *testing.T, m resmap.ResMap) []any {
	t.Helper()
	var objs []any
	for _, r := range m.Resources() {
		doc, err := r.AsYAML()
		require.NoError(t, err)
		obj, err := decodeStrict(doc)
		require.NoError(t, err, "%s", doc)
		objs = append(objs, obj)
	}
	return objs
}

func TestEveryKustomizationBuildsAndDecodesStrictly(t *testing.T) {
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			k := decodeAll(t, buildKrusty(t, dir))
			f := decodeAll(t, buildFlux(t, dir, map[string]any{"path": "./" + dir, "prune": true}))
			assert.Equal(t, len(k), len(f), "kustomize and Flux build the same objects")
		})
	}
}

// TestFluxKustomizationsBuildTheirPaths builds each Flux Kustomization of
// deploy/flux with its own spec, as the controller would.
func TestFluxKustomizationsBuildTheirPaths(t *testing.T) {
	var seen []string
	for _, obj := range decodeAll(t, buildKrusty(t, "flux")) {
		ks, ok := obj.(*kustomizev1.Kustomization)
		if !ok {
			continue
		}
		seen = append(seen, ks.Name)
		t.Run(ks.Name, func(t *testing.T) {
			assert.True(t, ks.Spec.Prune, "prune")
			assert.True(t, ks.Spec.Wait, "wait")
			require.NotNil(t, ks.Spec.Timeout, "timeout")
			assert.Equal(t, "deploy", ks.Spec.SourceRef.Name)
			raw, err := json.Marshal(ks.Spec)
			require.NoError(t, err)
			var spec map[string]any
			require.NoError(t, json.Unmarshal(raw, &spec))
			decodeAll(t, buildFlux(t, ks.Spec.Path, spec))
		})
	}
	assert.ElementsMatch(t, []string{"voice", "review-apps"}, seen)
}

func findObject[T any](t *testing.T, objs []any) T {
	t.Helper()
	for _, o := range objs {
		if v, ok := o.(T); ok {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T in the build", zero)
	return zero
}

func TestVoiceApp(t *testing.T) {
	objs := decodeAll(t, buildKrusty(t, "voice"))
	sts := findObject[*appsv1.StatefulSet](t, objs)
	assert.Equal(t, "voice", sts.Namespace)
	pod := sts.Spec.Template.Spec
	require.NotNil(t, pod.SecurityContext.RunAsUser)
	assert.Equal(t, int64(65532), *pod.SecurityContext.RunAsUser)
	assert.True(t, *pod.SecurityContext.RunAsNonRoot)
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	assert.Regexp(t, `^registry\.gitlab\.com/acme/voice-agent@sha256:[0-9a-f]{64}$`, c.Image, "image by digest")
	assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	assert.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
	assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, int32(8080), c.Ports[0].ContainerPort)
	assert.NotNil(t, c.Resources.Requests.Cpu())
	assert.False(t, c.Resources.Limits.Memory().IsZero())

	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	for _, k := range []string{"OPENAI_API_KEY", "OPENAI_WEBHOOK_SECRET"} {
		require.NotNil(t, env[k].ValueFrom, k)
		assert.Equal(t, "voice-agent-openai", env[k].ValueFrom.SecretKeyRef.Name, k)
	}
	db := env["VOICE_AGENT_DB"].Value
	var dataMount string
	for _, m := range c.VolumeMounts {
		if m.Name == "data" {
			dataMount = m.MountPath
		}
	}
	require.NotEmpty(t, dataMount)
	assert.True(t, strings.HasPrefix(db, dataMount+"/"), "VOICE_AGENT_DB %q is on the data volume %q", db, dataMount)
	require.Len(t, sts.Spec.VolumeClaimTemplates, 1)
	assert.Equal(t, "data", sts.Spec.VolumeClaimTemplates[0].Name)

	// The instance is a label, not a selector: review apps are kept apart
	// by their namespaces (see TestNetworkPolicy for why).
	svc := findObject[*corev1.Service](t, objs)
	assert.Equal(t, "voice", svc.Labels["app.kubernetes.io/instance"])
	assert.Equal(t, map[string]string{"app.kubernetes.io/component": "agent"}, svc.Spec.Selector)
	hpa := findObject[*autoscalingv2.HorizontalPodAutoscaler](t, objs)
	assert.Equal(t, "StatefulSet", hpa.Spec.ScaleTargetRef.Kind)
	assert.Equal(t, sts.Name, hpa.Spec.ScaleTargetRef.Name)
	findObject[*policyv1.PodDisruptionBudget](t, objs)
	findObject[*networkingv1.NetworkPolicy](t, objs)
	findObject[*networkingv1.Ingress](t, objs)
}

func TestStrictDecodingRejectsMistakes(t *testing.T) {
	_, err := decodeStrict([]byte("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec:\n  replica: 2\n"))
	assert.ErrorContains(t, err, "unknown field")
	_, err = decodeStrict([]byte("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec:\n  replicas: two\n"))
	assert.Error(t, err)
	_, err = decodeStrict([]byte("apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: x}\nspec:\n  prunes: true\n"))
	assert.ErrorContains(t, err, "unknown field")
	_, err = decodeStrict([]byte("apiVersion: example.com/v1\nkind: Thing\n"))
	assert.ErrorContains(t, err, "no API type")
}

// TestDaggerEnginePinnedToDaggerJSON: the engine image tag equals
// engineVersion in dagger.json (CLI, SDK and engine must match), and the
// image is pinned by digest.
func TestDaggerEnginePinnedToDaggerJSON(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "dagger.json"))
	require.NoError(t, err)
	var dj struct {
		EngineVersion string `json:"engineVersion"`
	}
	require.NoError(t, json.Unmarshal(raw, &dj))
	require.NotEmpty(t, dj.EngineVersion)

	ds := findObject[*appsv1.DaemonSet](t, decodeAll(t, buildKrusty(t, "dagger-engine")))
	assert.Equal(t, "dagger", ds.Namespace)
	c := ds.Spec.Template.Spec.Containers[0]
	assert.Regexp(t, `^registry\.dagger\.io/engine:`+regexp.QuoteMeta(dj.EngineVersion)+`@sha256:[0-9a-f]{64}$`, c.Image,
		"the engine is pinned by digest, with the tag of dagger.json's engineVersion")
	assert.True(t, *c.SecurityContext.Privileged)
	hostPaths := map[string]string{}
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.HostPath.Path] = v.Name
		}
	}
	assert.Contains(t, hostPaths, "/run/dagger")
	assert.Contains(t, hostPaths, "/var/lib/dagger", "persistent cache on the node")
	assert.Contains(t, strings.Join(c.Args, " "), "unix:///run/dagger/engine.sock")
}

// TestGitLabRunnerReachesTheEngine parses the Helm values and the runner's
// TOML: jobs are unprivileged, mount /run/dagger and point Dagger at it.
func TestGitLabRunnerReachesTheEngine(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("gitlab-runner", "values.yaml"))
	require.NoError(t, err)
	var values struct {
		GitlabURL string `json:"gitlabUrl"`
		Runners   struct {
			Secret string `json:"secret"`
			Config string `json:"config"`
		} `json:"runners"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &values))
	assert.NotEmpty(t, values.GitlabURL)
	assert.NotEmpty(t, values.Runners.Secret, "runner token comes from a Secret")
	var cfg struct {
		Runners []struct {
			Environment []string `toml:"environment"`
			Kubernetes  struct {
				Privileged               *bool `toml:"privileged"`
				AllowPrivilegeEscalation *bool `toml:"allow_privilege_escalation"`
				Volumes                  struct {
					HostPath []struct {
						Name      string `toml:"name"`
						HostPath  string `toml:"host_path"`
						MountPath string `toml:"mount_path"`
					} `toml:"host_path"`
				} `toml:"volumes"`
			} `toml:"kubernetes"`
		} `toml:"runners"`
	}
	_, err = toml.NewDecoder(bytes.NewReader([]byte(values.Runners.Config))).Decode(&cfg)
	require.NoError(t, err)
	require.Len(t, cfg.Runners, 1)
	r := cfg.Runners[0]
	assert.Contains(t, r.Environment, "_EXPERIMENTAL_DAGGER_RUNNER_HOST=unix:///run/dagger/engine.sock")
	require.NotNil(t, r.Kubernetes.Privileged)
	assert.False(t, *r.Kubernetes.Privileged, "job pods are not privileged")
	require.NotNil(t, r.Kubernetes.AllowPrivilegeEscalation)
	assert.False(t, *r.Kubernetes.AllowPrivilegeEscalation)
	require.Len(t, r.Kubernetes.Volumes.HostPath, 1)
	assert.Equal(t, "/run/dagger", r.Kubernetes.Volumes.HostPath[0].HostPath)
	assert.Equal(t, "/run/dagger", r.Kubernetes.Volumes.HostPath[0].MountPath)
}

// agentConfig is .gitlab/agents/voice/config.yaml, decoded strictly.
type agentConfig struct {
	CIAccess struct {
		Projects []struct {
			ID               string         `json:"id"`
			DefaultNamespace string         `json:"default_namespace"`
			AccessAs         map[string]any `json:"access_as"`
			Environments     []string       `json:"environments"`
		} `json:"projects"`
		Groups []any `json:"groups"`
	} `json:"ci_access"`
	Observability map[string]any `json:"observability"`
}

func readAgentConfig(t *testing.T) agentConfig {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", ".gitlab", "agents", "voice", "config.yaml"))
	require.NoError(t, err)
	var cfg agentConfig
	require.NoError(t, yaml.UnmarshalStrict(raw, &cfg))
	return cfg
}

// TestGitLabAgentAccessIsScoped: CI access is limited to the production
// environment, as the CI job's identity. Review jobs get no context: they
// deploy through Flux and check the app over HTTPS.
func TestGitLabAgentAccessIsScoped(t *testing.T) {
	cfg := readAgentConfig(t)
	assert.Empty(t, cfg.CIAccess.Groups, "no group-wide access")
	require.NotEmpty(t, cfg.CIAccess.Projects)
	for _, p := range cfg.CIAccess.Projects {
		assert.Equal(t, []string{"production"}, p.Environments, "%s: access limited to production", p.ID)
		assert.Contains(t, p.AccessAs, "ci_job", "impersonate the CI job, not the agent")
		assert.Equal(t, "voice", p.DefaultNamespace, "%s: the namespace deploy/flux/ci-access.yaml grants", p.ID)
	}
}
