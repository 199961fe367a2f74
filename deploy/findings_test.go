package deploy

// Checks of what a cluster reports only at run time: each guards one
// finding of the deploy review (issue "deploy/ on a real control plane").

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	fluxopv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"gitlab.com/acme/voice-agent/deploy/internal/resourceset"
)

// Breakage 4: the gitlab-runner chart mounts the Secret named by
// runners.secret with the items runner-registration-token and runner-token
// (both required keys of one secret volume), so the command values.yaml
// gives to create that Secret must set both.
func TestRunnerSecretHasTheKeysTheChartMounts(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("gitlab-runner", "values.yaml"))
	require.NoError(t, err)
	// The documented command, joined across its continuation lines.
	var cmd []string
	in := false
	for _, line := range strings.Split(string(raw), "\n") {
		l := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		if strings.Contains(l, "create secret generic") {
			in = true
		}
		if in {
			cmd = append(cmd, strings.TrimSuffix(l, "\\"))
			if !strings.HasSuffix(l, "\\") {
				break
			}
		}
	}
	require.NotEmpty(t, cmd, "values.yaml documents the kubectl command that creates the runner Secret")
	joined := strings.Join(cmd, " ")
	var values struct {
		Runners struct {
			Secret string `json:"secret"`
		} `json:"runners"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &values))
	assert.Contains(t, joined, "create secret generic "+values.Runners.Secret+" ")
	keys := map[string]bool{}
	for _, m := range regexp.MustCompile(`--from-literal=([a-z-]+)=`).FindAllStringSubmatch(joined, -1) {
		keys[m[1]] = true
	}
	for _, k := range []string{"runner-registration-token", "runner-token"} {
		assert.True(t, keys[k], "the Secret needs the key %s (the chart mounts it)", k)
	}
}

// The production StatefulSet keeps its volume when the StatefulSet object
// is deleted (Flux recreating it must not lose the schedule); review apps
// delete theirs.
func TestScheduleVolumeOutlivesTheStatefulSet(t *testing.T) {
	sts := findObject[*appsv1.StatefulSet](t, decodeAll(t, buildKrusty(t, "voice")))
	require.NotNil(t, sts.Spec.PersistentVolumeClaimRetentionPolicy)
	assert.Equal(t, appsv1.RetainPersistentVolumeClaimRetentionPolicyType, sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted)
	review := findObject[*appsv1.StatefulSet](t, decodeAll(t, buildKrusty(t, filepath.Join("review", "app"))))
	assert.Equal(t, appsv1.DeletePersistentVolumeClaimRetentionPolicyType, review.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted)
}

// Only OpenAI's webhook is public: no /, /metrics, /healthz or other API
// path on the Ingress.
func TestIngressExposesOnlyTheWebhook(t *testing.T) {
	for _, dir := range []string{"voice", filepath.Join("review", "app")} {
		ing := findObject[*networkingv1.Ingress](t, decodeAll(t, buildKrusty(t, dir)))
		var paths []string
		for _, r := range ing.Spec.Rules {
			require.NotNil(t, r.HTTP, dir)
			for _, p := range r.HTTP.Paths {
				require.NotNil(t, p.PathType)
				paths = append(paths, string(*p.PathType)+" "+p.Path)
			}
		}
		assert.Equal(t, []string{"Exact /v1/openai/webhook"}, paths, dir)
	}
}

// Flux Kustomizations: wait: true makes healthChecks dead configuration,
// and review apps do not depend on production's health.
func TestFluxKustomizationSettings(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("flux", "kustomization-*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		ks := fluxKustomization(t, filepath.Base(f))
		if ks.Spec.Wait {
			assert.Empty(t, ks.Spec.HealthChecks, "%s: healthChecks are ignored when wait is true", f)
		}
		assert.True(t, ks.Spec.Prune, f)
		assert.Equal(t, "flux-system", ks.Namespace, f)
	}
	review := fluxKustomization(t, "kustomization-review-apps.yaml")
	assert.Empty(t, review.Spec.DependsOn, "review apps must not stop when production is unhealthy")
	require.NotNil(t, review.Spec.PostBuild)
	assert.Equal(t, []kustomizev1.SubstituteReference{{Kind: "Secret", Name: "review-openai"}}, review.Spec.PostBuild.SubstituteFrom,
		"review apps take their key from the review Secret only")
}

// The Dagger engine refuses insecureRootCapabilities and is restarted when
// it stops answering.
func TestDaggerEngineHardening(t *testing.T) {
	objs := decodeAll(t, buildKrusty(t, "dagger-engine"))
	ds := findObject[*appsv1.DaemonSet](t, objs)
	c := ds.Spec.Template.Spec.Containers[0]
	require.NotNil(t, c.LivenessProbe, "liveness probe")
	assert.NotNil(t, c.LivenessProbe.Exec)
	cm := findObject[*corev1.ConfigMap](t, objs)
	var cfg struct {
		Security struct {
			InsecureRootCapabilities *bool `json:"insecureRootCapabilities"`
		} `json:"security"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(cm.Data["engine.json"]), &cfg))
	require.NotNil(t, cfg.Security.InsecureRootCapabilities)
	assert.False(t, *cfg.Security.InsecureRootCapabilities)
	mounted := slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.MountPath == "/etc/dagger/engine.json"
	})
	assert.True(t, mounted, "engine.json is mounted where the engine reads it")
}

// gitlabJob is the part of a .gitlab-ci.yml job these checks read.
type gitlabJob struct {
	Needs  []any            `json:"needs"`
	Rules  []map[string]any `json:"rules"`
	Script []string         `json:"script"`
}

func gitlabJobs(t *testing.T) map[string]gitlabJob {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", ".gitlab-ci.yml"))
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	jobs := map[string]gitlabJob{}
	for name, v := range doc {
		m, ok := v.(map[string]any)
		if !ok || m["script"] == nil {
			continue
		}
		b, err := yaml.Marshal(m)
		require.NoError(t, err)
		var j gitlabJob
		require.NoError(t, yaml.Unmarshal(b, &j), name)
		jobs[name] = j
	}
	return jobs
}

// Breakage 3 (CI side): a job that uses the protected DEPLOY_TOKEN runs only
// where GitLab gives it (the default branch, or a merge request from a
// protected branch); stop-review does not need review, so a review that
// failed after pushing is still pruned.
func TestReviewJobsNeedNoProtectedVariableFromUnprotectedBranches(t *testing.T) {
	jobs := gitlabJobs(t)
	for name, j := range jobs {
		if !strings.Contains(strings.Join(j.Script, "\n"), "DEPLOY_TOKEN") {
			continue
		}
		require.NotEmpty(t, j.Rules, "%s uses DEPLOY_TOKEN: it needs rules", name)
		for _, r := range j.Rules {
			cond, _ := r["if"].(string)
			if r["when"] == "never" {
				continue
			}
			// Default branch, release tags (protect v*), or merge requests from
			// protected branches: where GitLab passes protected variables.
			protected := strings.Contains(cond, "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH") ||
				strings.HasPrefix(cond, "$CI_COMMIT_TAG") ||
				strings.Contains(cond, `$CI_MERGE_REQUEST_SOURCE_BRANCH_PROTECTED == "true"`)
			assert.True(t, protected, "%s uses the protected DEPLOY_TOKEN but runs when %q", name, cond)
		}
	}
	stop, ok := jobs["stop-review"]
	require.True(t, ok)
	// Even an optional need skips the job when the needed job failed.
	for _, n := range stop.Needs {
		assert.NotEqual(t, "review", n, "stop-review must not need review (a failed review would never be pruned)")
		if m, ok := n.(map[string]any); ok {
			assert.NotEqual(t, "review", m["job"], "stop-review must not need review")
		}
	}
}

// Breakage 1 without a cluster: `kubectl apply -k deploy/flux` must contain
// the Namespace voice (restricted) and no Namespace flux-system (kustomize's
// namespace transformer renamed voice to flux-system).
func TestFluxBuildHasTheVoiceNamespace(t *testing.T) {
	var names []string
	for _, o := range decodeAll(t, buildKrusty(t, "flux")) {
		if ns, ok := o.(*corev1.Namespace); ok {
			names = append(names, ns.Name)
			assert.Equal(t, "restricted", ns.Labels["pod-security.kubernetes.io/enforce"], ns.Name)
		}
	}
	assert.Equal(t, []string{"voice"}, names)
}

// The pull path's ResourceSet template and the push path's component give
// a review namespace the same quota and limits.
func TestReviewQuotaSameOnBothPaths(t *testing.T) {
	var rs fluxopv1.ResourceSet
	raw, err := os.ReadFile(filepath.Join("review-apps", "resourceset.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.UnmarshalStrict(raw, &rs))
	objs, err := resourceset.Render(rs.Spec.ResourcesTemplate, map[string]any{"id": "3", "sha": strings.Repeat("a", 40)})
	require.NoError(t, err)
	specs := map[string]any{}
	for _, o := range objs {
		if o.GetKind() == "ResourceQuota" || o.GetKind() == "LimitRange" {
			assert.Equal(t, "voice-mr-3", o.GetNamespace())
			specs[o.GetKind()] = o.Object["spec"]
		}
	}
	for kind, file := range map[string]string{"ResourceQuota": "resourcequota.yaml", "LimitRange": "limitrange.yaml"} {
		raw, err := os.ReadFile(filepath.Join("review", "namespace", file))
		require.NoError(t, err)
		var obj map[string]any
		require.NoError(t, yaml.Unmarshal(raw, &obj))
		assert.Equal(t, obj["spec"], specs[kind], kind)
	}
}

// Production never seeds the demo clinic (it imports its real schedule);
// a review app does, so that it can be called.
func TestOnlyReviewAppsRunTheDemoClinic(t *testing.T) {
	env := func(dir string) map[string]string {
		sts := findObject[*appsv1.StatefulSet](t, decodeAll(t, buildKrusty(t, dir)))
		m := map[string]string{}
		for _, e := range sts.Spec.Template.Spec.Containers[0].Env {
			m[e.Name] = e.Value
		}
		return m
	}
	prod := env("voice")
	assert.NotContains(t, prod, "VOICE_AGENT_DEMO", "production must not seed fictional providers")
	assert.Contains(t, prod, "VOICE_AGENT_STAFF_TOKEN", "the staff endpoints get their token from the Secret")
	assert.Equal(t, "1", env(filepath.Join("review", "app"))["VOICE_AGENT_DEMO"])
}
