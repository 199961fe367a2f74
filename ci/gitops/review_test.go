package gitops

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"dagger/voice/gittest"
)

const ingressYAML = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: voice-agent
spec:
  tls:
    - hosts: [voice.example.com]
      secretName: voice-tls
  rules:
    - host: voice.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: voice-agent
                port:
                  number: 80
`

const serviceYAML = `apiVersion: v1
kind: Service
metadata:
  name: voice-agent
spec:
  selector: {app: voice-agent}
  ports:
    - port: 80
      targetPort: 8080
`

func reviewFixture() map[string]string {
	files := deployFixture(0)
	files["voice/kustomization.yaml"] = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [deployment.yaml, service.yaml, ingress.yaml]
images:
  - name: voice-agent
    newName: registry.gitlab.com/acme/voice-agent
    digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
`
	files["voice/service.yaml"] = serviceYAML
	files["voice/ingress.yaml"] = ingressYAML
	files["plain/kustomization.yaml"] = "resources: [deployment.yaml, service.yaml]\n"
	files["plain/deployment.yaml"] = deploymentYAML
	files["plain/service.yaml"] = serviceYAML
	for _, dir := range []string{"review", "apps/review"} {
		files[dir+"/namespace/kustomization.yaml"] = namespaceComponentYAML
		files[dir+"/namespace/namespace.yaml"] = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: review\n"
	}
	return files
}

// namespaceComponentYAML stands for deploy/review/namespace: a Component
// with the review namespace (renamed by the overlay's namespace).
const namespaceComponentYAML = `apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources: [namespace.yaml]
`

// buildRemote checks out the remote's main branch and builds dir with krusty.
func buildRemote(t *testing.T, srv *gittest.Server, dir string) string {
	t.Helper()
	work := t.TempDir()
	gittest.Git(t, work, "clone", "-q", srv.Bare, ".")
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(work, dir))
	require.NoError(t, err)
	out, err := m.AsYaml()
	require.NoError(t, err)
	return string(out)
}

func TestReviewLifecycle(t *testing.T) {
	srv := gittest.New(t, reviewFixture())
	ctx := context.Background()
	review := func(mr int) ReviewOptions {
		return ReviewOptions{Repo: repo(srv, gittest.Token), MR: mr, Image: agentRepo + "@" + testDigest, Domain: "review.example.com", PipelineURL: "https://ci/p/1"}
	}

	res, err := Review(ctx, review(42))
	require.NoError(t, err)
	assert.Equal(t, "review/mr-42", res.Overlay)
	assert.Equal(t, "mr-42.review.example.com", res.Host)
	assert.Equal(t, srv.Head(t, "main"), res.Commit)
	out := buildRemote(t, srv, "review")
	assert.Contains(t, out, "name: mr-42-voice-agent")
	assert.Contains(t, out, "host: mr-42.review.example.com")
	assert.Contains(t, out, "- mr-42.review.example.com")
	assert.Contains(t, out, "secretName: mr-42-voice-tls")
	assert.Contains(t, out, "image: "+agentRepo+"@"+testDigest)
	assert.Contains(t, out, "app.kubernetes.io/instance: mr-42")
	// Its own namespace, the component's Namespace renamed to it.
	assert.Regexp(t, `kind: Namespace\nmetadata:\n(    .*\n|  labels:\n)*  name: voice-mr-42\n`, out)
	assert.Contains(t, out, "  namespace: voice-mr-42\n")
	assert.NotContains(t, out, "namespace: voice\n")
	assert.NotContains(t, out, "voice.example.com")

	// Idempotent.
	refs := srv.Refs(t)
	res, err = Review(ctx, review(42))
	require.NoError(t, err)
	assert.Equal(t, Unchanged, res.Commit)
	assert.Equal(t, refs, srv.Refs(t))

	// Two more review apps at once.
	var wg sync.WaitGroup
	for _, mr := range []int{43, 44} {
		wg.Go(func() {
			_, err := Review(ctx, review(mr))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	agg := srv.File(t, "main", "review/kustomization.yaml")
	assert.Contains(t, agg, "- mr-42\n- mr-43\n- mr-44")
	mr43 := srv.File(t, "main", "review/mr-43/kustomization.yaml")

	// Stop 42: its overlay and entry go, the others stay byte for byte.
	res, err = StopReview(ctx, ReviewOptions{Repo: repo(srv, gittest.Token), MR: 42})
	require.NoError(t, err)
	assert.NotEqual(t, Unchanged, res.Commit)
	assert.Contains(t, res.Diff, "-namePrefix: mr-42-")
	assert.Equal(t, mr43, srv.File(t, "main", "review/mr-43/kustomization.yaml"))
	agg = srv.File(t, "main", "review/kustomization.yaml")
	assert.NotContains(t, agg, "mr-42")
	assert.Contains(t, agg, "resources:\n- mr-43\n- mr-44")
	assert.Contains(t, agg, "# Review apps", "header comment kept")
	ls := gittest.Git(t, srv.Bare, "ls-tree", "--name-only", "main", "review/")
	assert.NotContains(t, ls, "mr-42")
	out = buildRemote(t, srv, "review")
	assert.NotContains(t, out, "mr-42")
	assert.Contains(t, out, "name: mr-44-voice-agent")

	// Stopping again changes nothing.
	refs = srv.Refs(t)
	res, err = StopReview(ctx, ReviewOptions{Repo: repo(srv, gittest.Token), MR: 42})
	require.NoError(t, err)
	assert.Equal(t, Unchanged, res.Commit)
	assert.Equal(t, refs, srv.Refs(t))

	// Stop the rest: the aggregate stays and builds empty.
	for _, mr := range []int{43, 44} {
		_, err := StopReview(ctx, ReviewOptions{Repo: repo(srv, gittest.Token), MR: mr})
		require.NoError(t, err)
	}
	assert.Contains(t, srv.File(t, "main", "review/kustomization.yaml"), "resources: []")
	assert.Empty(t, strings.TrimSpace(buildRemote(t, srv, "review")))
}

// TestReviewWithoutIngress: a base without Ingress gets one for its first
// Service, renamed with the review's prefix.
func TestReviewWithoutIngress(t *testing.T) {
	srv := gittest.New(t, reviewFixture())
	res, err := Review(context.Background(), ReviewOptions{
		Repo: repo(srv, gittest.Token), MR: 7, Base: "plain", Dir: "apps/review",
		Image: "registry.gitlab.com/acme/voice-agent@" + testDigest, Domain: "Review.Example.com.",
	})
	require.NoError(t, err)
	assert.Equal(t, "mr-7.review.example.com", res.Host)
	out := buildRemote(t, srv, "apps/review")
	assert.Contains(t, out, "kind: Ingress")
	assert.Contains(t, out, "name: mr-7-voice-agent")
	assert.Contains(t, out, "host: mr-7.review.example.com")
	// The base used "voice-agent": the overlay renames it to the MR's image.
	assert.Contains(t, out, "image: registry.gitlab.com/acme/voice-agent@"+testDigest)
	k := srv.File(t, "main", "apps/review/mr-7/kustomization.yaml")
	assert.Contains(t, k, "- ../../../plain")
}

func TestReviewBadInputLeavesRemoteUnchanged(t *testing.T) {
	srv := gittest.New(t, reviewFixture())
	good := ReviewOptions{MR: 5, Image: agentRepo + "@" + testDigest, Domain: "review.example.com"}
	cases := []struct {
		name   string
		mutate func(*ReviewOptions)
		want   string
	}{
		{"no domain", func(o *ReviewOptions) { o.Domain = "" }, "need a domain"},
		{"bad domain", func(o *ReviewOptions) { o.Domain = "bad_domain!" }, "not a valid DNS name"},
		{"tag", func(o *ReviewOptions) { o.Image = agentRepo + ":mr-5" }, "has no digest"},
		{"mr zero", func(o *ReviewOptions) { o.MR = 0 }, "positive number"},
		{"no base", func(o *ReviewOptions) { o.Base = "nothing" }, `path "nothing" is not a directory`},
		{"base does not build", func(o *ReviewOptions) { o.Base = "broken" }, "does not build"},
		{"dir contains base", func(o *ReviewOptions) { o.Dir = "." }, "must not contain the base"},
		{"wrong token", func(o *ReviewOptions) { o.Repo.Auth.Token = "nope-" + gittest.Token }, "authentication to"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := good
			o.Repo = repo(srv, gittest.Token)
			c.mutate(&o)
			before := srv.Refs(t)
			_, err := Review(context.Background(), o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.NotContains(t, err.Error(), gittest.Token)
			assert.Equal(t, before, srv.Refs(t))
		})
	}
}

func TestSetResource(t *testing.T) {
	src := []byte("# keep me\nkind: Kustomization\nresources:\n  - mr-2 # second\n  - mr-1\nnamespace: voice\n")
	out, changed, err := SetResource(src, "mr-10", true)
	require.NoError(t, err)
	assert.True(t, changed)
	assert.Contains(t, string(out), "# keep me")
	assert.Contains(t, string(out), "namespace: voice")
	assert.Contains(t, string(out), "- mr-1\n  - mr-10\n  - mr-2\n")
	again, changed, err := SetResource(out, "mr-10", true)
	require.NoError(t, err)
	assert.False(t, changed)
	assert.Equal(t, out, again)
	out, changed, err = SetResource(out, "mr-2", false)
	require.NoError(t, err)
	assert.True(t, changed)
	assert.NotContains(t, string(out), "mr-2")
}

// TestReviewOverlayOnRealBase builds review overlays written by
// OverlayFiles on this repository's deploy/voice app.
func TestReviewOverlayOnRealBase(t *testing.T) {
	base := filepath.Join("..", "..", "deploy", "voice")
	if _, err := os.Stat(filepath.Join(base, "kustomization.yaml")); err != nil {
		t.Skip("deploy/voice is not in this checkout")
	}
	root := t.TempDir()
	require.NoError(t, exec.Command("cp", "-r", base, filepath.Join(root, "voice")).Run())
	require.NoError(t, os.MkdirAll(filepath.Join(root, "review"), 0o755))
	require.NoError(t, exec.Command("cp", "-r", filepath.Join("..", "..", "deploy", "review", NamespaceComponent),
		filepath.Join(root, "review", NamespaceComponent)).Run())
	ref := agentRef(t)
	for _, mr := range []int{1, 2} {
		files, err := OverlayFiles(root, "voice", "review/"+overlayName(mr), mr, overlayName(mr)+".review.example.com", ref, "")
		require.NoError(t, err)
		dir := filepath.Join(root, "review", overlayName(mr))
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for f, c := range files {
			require.NoError(t, os.WriteFile(filepath.Join(dir, f), c, 0o644))
		}
		require.NoError(t, setAggregate(root, "review", overlayName(mr), true))
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(root, "review"))
	require.NoError(t, err)
	out, err := m.AsYaml()
	require.NoError(t, err)
	assert.Contains(t, string(out), "host: mr-1.review.example.com")
	assert.Contains(t, string(out), "host: mr-2.review.example.com")
	assert.Contains(t, string(out), "@"+testDigest)
}

// TestReviewNeedsTheNamespaceComponent: without review/namespace (the
// namespace, quota and the review app's own Secret) no overlay is written.
func TestReviewNeedsTheNamespaceComponent(t *testing.T) {
	files := reviewFixture()
	delete(files, "review/namespace/kustomization.yaml")
	delete(files, "review/namespace/namespace.yaml")
	srv := gittest.New(t, files)
	before := srv.Refs(t)
	_, err := Review(context.Background(), ReviewOptions{
		Repo: repo(srv, gittest.Token), MR: 9, Image: agentRepo + "@" + testDigest, Domain: "review.example.com",
	})
	require.ErrorContains(t, err, "review/namespace/kustomization.yaml")
	assert.ErrorContains(t, err, "copy deploy/review/namespace")
	assert.Equal(t, before, srv.Refs(t))
}
