package gitops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"dagger/voice/imageref"
)

// Review apps live in the deploy repository as one overlay per merge
// request, review/mr-<N>/, on top of the base app, and an aggregating
// review/kustomization.yaml that lists them. One Flux Kustomization
// reconciles review/ with prune: adding an overlay deploys the review app,
// removing it (and its entry) prunes it. The functions below maintain both
// through Apply: validated, idempotent and safe against concurrent writers.
//
// Each overlay puts its app into its own namespace, voice-mr-<N>, and
// includes the component review/namespace/ of the deploy repository (the
// Namespace with restricted Pod Security, a quota, default limits and the
// review app's own Secret): a review app never shares production's
// namespace, Secret or selectors. Review refuses to write an overlay when
// that component is missing.

// ReviewOptions describes a review app.
type ReviewOptions struct {
	// Repo is the deploy repository.
	Repo Repo
	// MR is the merge request IID (the review app is mr-<MR>).
	MR int
	// Image is the merge request's image, pinned by digest.
	Image string
	// ImageName is the image name as the built base app references it,
	// when it is not Image's repository. Empty: Image's repository if the
	// base uses it, else the base's only image.
	ImageName string
	// Base is the path of the base app in the deploy repository. Default "voice".
	Base string
	// Dir holds the review overlays. Default "review".
	Dir string
	// Domain: the app is served at mr-<MR>.<Domain>.
	Domain string
	// SourceCommit and PipelineURL become commit trailers.
	SourceCommit string
	PipelineURL  string
	// DryRun returns the diff and pushes nothing.
	DryRun bool
	// MaxAttempts bounds the retries after rejected pushes (default 50).
	MaxAttempts int
}

// ReviewResult is what Review did.
type ReviewResult struct {
	Result
	// Overlay is the overlay's directory in the deploy repository.
	Overlay string
	// Host is the review app's host name (empty for StopReview).
	Host string
}

func (o *ReviewOptions) defaults() error {
	if o.MR <= 0 {
		return fmt.Errorf("merge request IID must be a positive number, got %d", o.MR)
	}
	if o.Base == "" {
		o.Base = "voice"
	}
	if o.Dir == "" {
		o.Dir = "review"
	}
	var err error
	if o.Base, err = cleanRepoPath(o.Base); err != nil {
		return err
	}
	if o.Dir, err = cleanRepoPath(o.Dir); err != nil {
		return err
	}
	if o.Dir == "." || o.Dir == o.Base || strings.HasPrefix(o.Base+"/", o.Dir+"/") {
		return fmt.Errorf("review directory %q must not contain the base app %q", o.Dir, o.Base)
	}
	return nil
}

func overlayName(mr int) string { return "mr-" + strconv.Itoa(mr) }

// ReviewNamespace is the namespace of merge request mr's review app.
func ReviewNamespace(mr int) string { return "voice-mr-" + strconv.Itoa(mr) }

// NamespaceComponent is the directory, inside the review directory, of the
// kustomize Component every review overlay includes.
const NamespaceComponent = "namespace"

// Review writes (or updates) the overlay review/mr-<N>/ for a merge request
// and lists it in review/kustomization.yaml: name prefix mr-<N>-, instance
// labels (selectors included, so review apps never select each other's
// pods), the merge request's image by digest, and the host mr-<N>.<domain>
// on the base's Ingress (or on an Ingress the overlay adds for the base's
// first Service).
func Review(ctx context.Context, o ReviewOptions) (ReviewResult, error) {
	if err := o.defaults(); err != nil {
		return ReviewResult{}, err
	}
	ref, err := imageref.ParseDigest(o.Image)
	if err != nil {
		return ReviewResult{}, err
	}
	host, err := reviewHost(o.MR, o.Domain)
	if err != nil {
		return ReviewResult{}, err
	}
	name := overlayName(o.MR)
	overlay := path.Join(o.Dir, name)
	ch := Change{
		Edit: func(_ context.Context, root string) error {
			files, err := OverlayFiles(root, o.Base, overlay, o.MR, host, ref, o.ImageName)
			if err != nil {
				return err
			}
			dir := filepath.Join(root, filepath.FromSlash(overlay))
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			for f, content := range files {
				if err := os.WriteFile(filepath.Join(dir, f), content, 0o644); err != nil {
					return err
				}
			}
			return setAggregate(root, o.Dir, name, true)
		},
		Validate:    []string{o.Dir},
		Message:     fmt.Sprintf("review(%s): %s %s at %s", name, ref.LastElement(), ref.ShortDigest(), host),
		Trailers:    []Trailer{{"Image", ref.Pinned()}, {"Source-Commit", o.SourceCommit}, {"Pipeline", o.PipelineURL}},
		DryRun:      o.DryRun,
		MaxAttempts: o.MaxAttempts,
	}
	res, err := Apply(ctx, o.Repo, ch)
	return ReviewResult{Result: res, Overlay: overlay, Host: host}, err
}

// StopReview removes review/mr-<N>/ and its entry in
// review/kustomization.yaml; Flux prunes the app. Other review apps are
// left alone. Stopping an app that does not exist is Unchanged.
func StopReview(ctx context.Context, o ReviewOptions) (ReviewResult, error) {
	o.Image, o.Domain = "", ""
	if err := o.defaults(); err != nil {
		return ReviewResult{}, err
	}
	name := overlayName(o.MR)
	overlay := path.Join(o.Dir, name)
	ch := Change{
		Edit: func(_ context.Context, root string) error {
			if err := os.RemoveAll(filepath.Join(root, filepath.FromSlash(overlay))); err != nil {
				return err
			}
			return setAggregate(root, o.Dir, name, false)
		},
		Validate:    []string{o.Dir},
		Message:     fmt.Sprintf("review(%s): stop", name),
		Trailers:    []Trailer{{"Source-Commit", o.SourceCommit}, {"Pipeline", o.PipelineURL}},
		DryRun:      o.DryRun,
		MaxAttempts: o.MaxAttempts,
	}
	res, err := Apply(ctx, o.Repo, ch)
	return ReviewResult{Result: res, Overlay: overlay}, err
}

func reviewHost(mr int, domain string) (string, error) {
	domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
	if domain == "" {
		return "", errors.New("review apps need a domain: pass e.g. review.example.com to serve mr-<N>.review.example.com")
	}
	host := overlayName(mr) + "." + domain
	if len(host) > 253 {
		return "", fmt.Errorf("host %q is longer than 253 characters", host)
	}
	for _, label := range strings.Split(host, ".") {
		if len(label) == 0 || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" ||
			label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("domain %q is not a valid DNS name", domain)
		}
	}
	return host, nil
}

// OverlayFiles returns the files of the review overlay at overlay (relative
// to root) on top of the base app at base.
func OverlayFiles(root, base, overlay string, mr int, host string, ref imageref.Ref, imageName string) (map[string][]byte, error) {
	if _, err := findKustomization(root, base); err != nil {
		return nil, fmt.Errorf("base app: %w", err)
	}
	built, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(root, filepath.FromSlash(base)))
	if err != nil {
		return nil, fmt.Errorf("base app %q does not build: %w", base, err)
	}
	var images []string
	var ingresses []*yaml.RNode
	var service *yaml.RNode
	for _, res := range built.Resources() {
		n := &res.RNode
		switch n.GetKind() {
		case "Ingress":
			ingresses = append(ingresses, n)
		case "Service":
			if service == nil {
				service = n
			}
		}
		for _, p := range [][]string{
			{"spec", "template", "spec", "containers"}, {"spec", "template", "spec", "initContainers"},
			{"spec", "containers"},
		} {
			cs, err := n.Pipe(yaml.Lookup(p...))
			if err != nil || cs == nil {
				continue
			}
			elems, _ := cs.Elements()
			for _, c := range elems {
				if img := yaml.GetValue(c.Field("image").Value); img != "" {
					r, err := imageref.Parse(img)
					if err != nil {
						return nil, fmt.Errorf("base app %q: %s %s: %w", base, n.GetKind(), n.GetName(), err)
					}
					images = append(images, r.Name)
				}
			}
		}
	}
	slices.Sort(images)
	images = slices.Compact(images)
	if imageName == "" {
		switch {
		case slices.Contains(images, ref.Name):
			imageName = ref.Name
		case len(images) == 1:
			imageName = images[0]
		default:
			return nil, fmt.Errorf("base app %q uses images %s: pass the image name to replace", base, strings.Join(images, ", "))
		}
	} else if !slices.Contains(images, imageName) {
		return nil, fmt.Errorf("base app %q does not use image %q (it uses %s)", base, imageName, strings.Join(images, ", "))
	}

	rel, err := filepath.Rel(filepath.FromSlash(overlay), filepath.FromSlash(base))
	if err != nil {
		return nil, err
	}
	component := path.Join(path.Dir(overlay), NamespaceComponent)
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(component), "kustomization.yaml")); err != nil {
		return nil, fmt.Errorf("the deploy repository has no %s/kustomization.yaml (the review namespace, quota and Secret): copy deploy/review/%s from the app repository into it first",
			component, NamespaceComponent)
	}
	name := overlayName(mr)
	k := types.Kustomization{
		TypeMeta:   types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
		NamePrefix: name + "-",
		// Its own namespace: kustomize also renames the component's
		// Namespace object to this one.
		Namespace:  ReviewNamespace(mr),
		Resources:  []string{filepath.ToSlash(rel)},
		Components: []string{"../" + NamespaceComponent},
		// The instance goes on labels only: selectors stay as the base has
		// them (the namespace keeps review apps apart), since rewriting
		// selectors would also rewrite the NetworkPolicy's DNS peer.
		Labels: []types.Label{{
			Pairs: map[string]string{"app.kubernetes.io/instance": name},
		}, {
			Pairs: map[string]string{"review.gitops/merge-request": strconv.Itoa(mr)},
		}},
		Images: []types.Image{{Name: imageName, Digest: ref.Digest}},
	}
	if imageName != ref.Name {
		k.Images[0].NewName = ref.Name
	}
	files := map[string][]byte{}
	if len(ingresses) > 0 {
		for _, ing := range ingresses {
			ops, err := hostPatch(ing, host, name)
			if err != nil {
				return nil, err
			}
			k.Patches = append(k.Patches, types.Patch{
				Target: &types.Selector{ResId: resIDOf(ing)},
				Patch:  ops,
			})
		}
	} else {
		if service == nil {
			return nil, fmt.Errorf("base app %q has neither an Ingress nor a Service to route mr-%d's host to", base, mr)
		}
		ing, err := ingressFor(service, host)
		if err != nil {
			return nil, err
		}
		files["ingress.yaml"] = ing
		k.Resources = append(k.Resources, "ingress.yaml")
	}
	body, err := yaml.Marshal(k)
	if err != nil {
		return nil, err
	}
	header := fmt.Sprintf("# Review app of merge request !%d, served at https://%s.\n# Written by `dagger call review`, removed by `dagger call stop-review`: do not edit.\n", mr, host)
	files["kustomization.yaml"] = append([]byte(header), body...)
	return files, nil
}

func resIDOf(n *yaml.RNode) resid.ResId {
	return resid.ResId{Gvk: resid.Gvk{Kind: n.GetKind()}, Name: n.GetName()}
}

// hostPatch returns a JSON 6902 patch that points every rule and TLS entry
// of an Ingress at host (and at a per-review TLS secret).
func hostPatch(ing *yaml.RNode, host, name string) (string, error) {
	var spec struct {
		Spec struct {
			Rules []map[string]any `yaml:"rules"`
			TLS   []struct {
				Hosts      []string `yaml:"hosts"`
				SecretName string   `yaml:"secretName"`
			} `yaml:"tls"`
		} `yaml:"spec"`
	}
	if err := ing.YNode().Decode(&spec); err != nil {
		return "", fmt.Errorf("read Ingress %s: %w", ing.GetName(), err)
	}
	var b strings.Builder
	op := func(path string, value string) {
		fmt.Fprintf(&b, "- op: replace\n  path: %s\n  value: %s\n", path, value)
	}
	if len(spec.Spec.Rules) == 0 {
		fmt.Fprintf(&b, "- op: add\n  path: /spec/rules\n  value: []\n")
	}
	for i := range spec.Spec.Rules {
		if _, ok := spec.Spec.Rules[i]["host"]; ok {
			op(fmt.Sprintf("/spec/rules/%d/host", i), host)
		} else {
			fmt.Fprintf(&b, "- op: add\n  path: /spec/rules/%d/host\n  value: %s\n", i, host)
		}
	}
	for i, t := range spec.Spec.TLS {
		for j := range t.Hosts {
			op(fmt.Sprintf("/spec/tls/%d/hosts/%d", i, j), host)
		}
		if t.SecretName != "" {
			op(fmt.Sprintf("/spec/tls/%d/secretName", i), name+"-"+t.SecretName)
		}
	}
	return b.String(), nil
}

// ingressFor writes an Ingress for host to the first port of service; the
// overlay's name prefix renames it and its backend reference.
func ingressFor(service *yaml.RNode, host string) ([]byte, error) {
	ports, err := service.Pipe(yaml.Lookup("spec", "ports"))
	if err != nil || ports == nil {
		return nil, fmt.Errorf("Service %s has no ports", service.GetName())
	}
	elems, err := ports.Elements()
	if err != nil || len(elems) == 0 {
		return nil, fmt.Errorf("Service %s has no ports", service.GetName())
	}
	port := yaml.GetValue(elems[0].Field("port").Value)
	return fmt.Appendf(nil, `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: %[1]s
spec:
  rules:
    - host: %[2]s
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: %[1]s
                port:
                  number: %[3]s
`, service.GetName(), host, port), nil
}

// setAggregate adds or removes an overlay in dir/kustomization.yaml (created
// when missing), keeping the list sorted and the rest of the file as it is.
func setAggregate(root, dir, overlay string, present bool) error {
	file := filepath.Join(root, filepath.FromSlash(dir), "kustomization.yaml")
	src, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		if !present {
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return err
		}
		src = []byte(aggregateHeader)
	} else if err != nil {
		return err
	}
	out, changed, err := SetResource(src, overlay, present)
	if err != nil {
		return fmt.Errorf("%s/kustomization.yaml: %w", dir, err)
	}
	if !changed {
		return nil
	}
	return os.WriteFile(file, out, 0o644)
}

const aggregateHeader = `# Review apps: one overlay per open merge request, listed here by
# ` + "`dagger call review`" + ` and removed by ` + "`dagger call stop-review`" + `.
# The Flux Kustomization "review-apps" reconciles this directory with prune.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: []
`

// SetResource adds (present) or removes an entry of the kustomization's
// `resources:` list, keeping it sorted, comments and all other keys intact.
func SetResource(src []byte, entry string, present bool) ([]byte, bool, error) {
	node, err := readKustomization(src)
	if err != nil {
		return nil, false, err
	}
	var list []string
	if f := node.Field("resources"); f != nil && !yaml.IsMissingOrNull(f.Value) {
		if f.Value.YNode().Kind != yaml.SequenceNode {
			return nil, false, errors.New("`resources:` is not a list")
		}
		elems, err := f.Value.Elements()
		if err != nil {
			return nil, false, err
		}
		for _, e := range elems {
			list = append(list, e.YNode().Value)
		}
	}
	has := slices.Contains(list, entry)
	if has == present {
		return src, false, nil
	}
	if present {
		list = append(list, entry)
	} else {
		list = slices.DeleteFunc(list, func(s string) bool { return s == entry })
	}
	slices.Sort(list)
	seq := yaml.NewListRNode(list...)
	if len(list) == 0 {
		seq.YNode().Style = yaml.FlowStyle
	}
	if f := node.Field("resources"); f != nil {
		// Keep the key's comments; replace the list.
		seq.YNode().HeadComment = f.Value.YNode().HeadComment
		f.Value.SetYNode(seq.YNode())
	} else if err := node.PipeE(yaml.SetField("resources", seq)); err != nil {
		return nil, false, err
	}
	out, err := writeKustomization(node)
	return out, err == nil, err
}
