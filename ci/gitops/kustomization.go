package gitops

import (
	"bytes"
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/api/types"

	"dagger/voice/imageref"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// KustomizationFileNames are the file names kustomize recognises, in the
// order it looks for them.
var KustomizationFileNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// readKustomization parses a kustomization file with kyaml, keeping comments,
// key order, quoting and sequence indentation for the round trip.
func readKustomization(src []byte) (*yaml.RNode, error) {
	nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(src), PreserveSeqIndent: true}).Read()
	if err != nil {
		return nil, fmt.Errorf("parse kustomization: %w", err)
	}
	if len(nodes) != 1 {
		return nil, fmt.Errorf("parse kustomization: expected one YAML document, found %d", len(nodes))
	}
	node := nodes[0]
	if node.YNode().Kind != yaml.MappingNode {
		return nil, fmt.Errorf("parse kustomization: top level is not a mapping")
	}
	return node, nil
}

// writeKustomization serialises a node read by readKustomization.
func writeKustomization(node *yaml.RNode) ([]byte, error) {
	var out bytes.Buffer
	if err := (kio.ByteWriter{Writer: &out}).Write([]*yaml.RNode{node}); err != nil {
		return nil, fmt.Errorf("write kustomization: %w", err)
	}
	return out.Bytes(), nil
}

// ImageUpdate says which `images:` entry to point at which digest.
type ImageUpdate struct {
	// Name selects the entry by its `name` (what the manifests reference,
	// e.g. "voice-agent"). Empty: the entry MatchImage finds.
	Name string
	// Ref is the new image, pinned by digest.
	Ref imageref.Ref
	// Add appends a new entry when none matches instead of failing.
	Add bool
}

// SetImage points one entry of the kustomization's `images:` list at a
// digest, with the semantics of kustomize's types.Image: newName is set to
// the repository (unless it equals name), digest to the digest, and newTag
// and tagSuffix are removed (a digest overrides a tag, and tagSuffix with a
// digest is an error in kustomize). Everything else of the file (comments,
// key order, quoting, other entries) is kept. It reports whether the content
// changed.
func SetImage(src []byte, up ImageUpdate) ([]byte, bool, error) {
	node, err := readKustomization(src)
	if err != nil {
		return nil, false, err
	}
	images := node.Field("images")
	var seq *yaml.RNode
	if images != nil && !yaml.IsMissingOrNull(images.Value) {
		seq = images.Value
		if seq.YNode().Kind != yaml.SequenceNode {
			return nil, false, fmt.Errorf("kustomization `images:` is not a list")
		}
	}

	added := false
	var sp splicer
	var elems []*yaml.RNode
	var entries []types.Image
	if seq != nil {
		elems, err = seq.Elements()
		if err != nil {
			return nil, false, fmt.Errorf("kustomization `images:`: %w", err)
		}
		for _, e := range elems {
			var img types.Image
			if err := e.YNode().Decode(&img); err != nil {
				return nil, false, fmt.Errorf("kustomization `images:` entry: %w", err)
			}
			entries = append(entries, img)
		}
	}
	var matches []*yaml.RNode
	m, err := matchEntry(entries, up)
	if err != nil && !(up.Add && m.Rule == "") {
		return nil, false, err
	}
	if err == nil {
		matches = append(matches, elems[m.Index])
	}
	if len(matches) == 0 {
		added = true
		name := up.Name
		if name == "" {
			name = up.Ref.Name
		}
		entry := yaml.NewMapRNode(nil)
		fields := [][2]string{{"name", name}}
		if name != up.Ref.Name {
			fields = append(fields, [2]string{"newName", up.Ref.Name})
		}
		fields = append(fields, [2]string{"digest", up.Ref.Digest})
		for _, f := range fields {
			if err := entry.PipeE(yaml.SetField(f[0], yaml.NewStringRNode(f[1]))); err != nil {
				return nil, false, err
			}
		}
		if seq == nil {
			sp.fail() // a new `images:` list: let kyaml place it
			seq = yaml.NewListRNode()
			if err := seq.PipeE(yaml.Append(entry.YNode())); err != nil {
				return nil, false, err
			}
			// SetField copies the list into the tree: fill it first.
			if err := node.PipeE(yaml.SetField("images", seq)); err != nil {
				return nil, false, err
			}
		} else {
			sp.appendEntry(elems, fields)
			if err := seq.PipeE(yaml.Append(entry.YNode())); err != nil {
				return nil, false, err
			}
		}
	} else {
		if err := updateEntry(matches[0], up.Ref, &sp, &added); err != nil {
			return nil, false, err
		}
	}
	if !added {
		return src, false, nil
	}
	out, err := writeKustomization(node)
	if err != nil {
		return nil, false, err
	}
	if spliced, ok := sp.apply(src); ok && sameDocument(spliced, out) {
		out = spliced
	}
	return out, !bytes.Equal(out, src), nil
}

// updateEntry edits an existing images entry in place; changed is set when
// its meaning changes.
func updateEntry(e *yaml.RNode, ref imageref.Ref, sp *splicer, changed *bool) error {
	var img types.Image
	if err := e.YNode().Decode(&img); err != nil {
		return fmt.Errorf("kustomization `images:` entry: %w", err)
	}
	m := e.YNode()
	orig := &yaml.Node{Kind: m.Kind, Content: append([]*yaml.Node(nil), m.Content...)}
	deleted := map[string]bool{}
	var inserts [][2]string
	set := func(field, value string) error {
		if f := e.Field(field); f != nil && f.Value.YNode().Kind == yaml.ScalarNode {
			sp.replaceScalar(f.Value.YNode(), value)
			f.Value.YNode().Value = value
			f.Value.YNode().Tag = yaml.NodeTagString
			return nil
		}
		inserts = append(inserts, [2]string{field, value})
		return e.PipeE(yaml.SetField(field, yaml.NewStringRNode(value)))
	}
	clear := func(field string) error {
		if e.Field(field) == nil {
			return nil
		}
		sp.deleteField(m, field)
		deleted[field] = true
		return e.PipeE(yaml.Clear(field))
	}
	if img.Name == ref.Name {
		if img.NewName != "" {
			*changed = true
			if err := clear("newName"); err != nil {
				return err
			}
		}
	} else if img.NewName != ref.Name {
		*changed = true
		if err := set("newName", ref.Name); err != nil {
			return err
		}
	}
	if img.Digest != ref.Digest {
		*changed = true
		if err := set("digest", ref.Digest); err != nil {
			return err
		}
	}
	for _, f := range []string{"newTag", "tagSuffix"} {
		if e.Field(f) != nil {
			*changed = true
			if err := clear(f); err != nil {
				return err
			}
		}
	}
	if len(inserts) > 0 {
		sp.insertFields(orig, deleted, inserts)
	}
	return nil
}

// Match is the `images:` entry a bump changes, and why it was chosen.
type Match struct {
	// Index of the entry in `images:`.
	Index int
	// Name is the entry's `name` (what the manifests reference).
	Name string
	// Rule says how it was chosen: "named" (ImageUpdate.Name),
	// "repository" (its name or newName is the image's repository),
	// "last path element" (its name's or newName's last path element is the
	// image's, e.g. "voice-agent"), or "only entry". Empty: no entry.
	Rule string
}

// MatchImage finds the `images:` entry of a kustomization that a bump of
// up changes. With up.Name it is the entry of that name. Without, the
// first rule that gives exactly one entry decides:
//
//  1. its name or newName is the image's repository (as written);
//  2. the last path element of its name or newName is the image's
//     ("voice-agent" for registry.gitlab.com/acme/voice-agent), so a
//     kustomization that names "voice-agent" is bumped from any registry;
//  3. it is the kustomization's only entry (not with up.Add, which
//     appends an image that is not listed instead).
//
// More than one entry under a rule, or none under all, is an error that
// lists the entries and asks for the name.
func MatchImage(src []byte, up ImageUpdate) (Match, error) {
	node, err := readKustomization(src)
	if err != nil {
		return Match{}, err
	}
	var entries []types.Image
	if f := node.Field("images"); f != nil && !yaml.IsMissingOrNull(f.Value) {
		if f.Value.YNode().Kind != yaml.SequenceNode {
			return Match{}, fmt.Errorf("kustomization `images:` is not a list")
		}
		elems, err := f.Value.Elements()
		if err != nil {
			return Match{}, err
		}
		for _, e := range elems {
			var img types.Image
			if err := e.YNode().Decode(&img); err != nil {
				return Match{}, fmt.Errorf("kustomization `images:` entry: %w", err)
			}
			entries = append(entries, img)
		}
	}
	return matchEntry(entries, up)
}

func matchEntry(entries []types.Image, up ImageUpdate) (Match, error) {
	var listed []string
	for _, e := range entries {
		listed = append(listed, e.Name)
	}
	type rule struct {
		name string
		ok   func(types.Image) bool
	}
	last := func(s string) string { return s[strings.LastIndex(s, "/")+1:] }
	var rules []rule
	if up.Name != "" {
		rules = []rule{{"named", func(e types.Image) bool { return e.Name == up.Name }}}
	} else {
		repo, elem := up.Ref.Name, up.Ref.LastElement()
		rules = []rule{
			{"repository", func(e types.Image) bool { return e.Name == repo || e.NewName == repo }},
			{"last path element", func(e types.Image) bool {
				return last(e.Name) == elem || e.NewName != "" && last(e.NewName) == elem
			}},
		}
		if !up.Add {
			// With Add, an image not listed is appended, never written
			// over another image's entry.
			rules = append(rules, rule{"only entry", func(types.Image) bool { return len(entries) == 1 }})
		}
	}
	for _, r := range rules {
		var found []int
		for i, e := range entries {
			if r.ok(e) {
				found = append(found, i)
			}
		}
		switch {
		case len(found) == 1:
			return Match{Index: found[0], Name: entries[found[0]].Name, Rule: r.name}, nil
		case len(found) > 1:
			var names []string
			for _, i := range found {
				names = append(names, entries[i].Name)
			}
			return Match{Rule: r.name}, fmt.Errorf("%d `images:` entries match %q by %s (%s): name the entry to update (--image-name)", len(found), selectorText(up), r.name, strings.Join(names, ", "))
		}
	}
	return Match{}, fmt.Errorf("image %q is not listed in the kustomization's `images:` (listed: %s): fix the image name (--image-name) or pass the add option to append it", selectorText(up), strings.Join(listed, ", "))
}

func selectorText(up ImageUpdate) string {
	if up.Name != "" {
		return up.Name
	}
	return up.Ref.Name
}
