package gitops

import (
	"fmt"
	"path"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// PreviewBump is the dry run of Bump on files held in memory (path in the
// deploy tree -> content), e.g. a deploy directory read from a Dagger
// Directory, with no remote at all: it edits the kustomization at dir,
// builds it with kustomize and returns the unified diff a bump would commit
// (empty when the image is already there) and the `images:` entry it
// changes (see MatchImage).
func PreviewBump(files map[string][]byte, dir string, up ImageUpdate) (string, Match, error) {
	dir, err := cleanRepoPath(dir)
	if err != nil {
		return "", Match{}, err
	}
	file := ""
	for _, n := range KustomizationFileNames {
		if _, ok := files[path.Join(dir, n)]; ok {
			file = path.Join(dir, n)
			break
		}
	}
	if file == "" {
		return "", Match{}, fmt.Errorf("no kustomization.yaml in %q of the deploy tree: check --path", dir)
	}
	entry, err := MatchImage(files[file], up)
	if err != nil {
		return "", Match{}, fmt.Errorf("%s: %w", file, err)
	}
	out, changed, err := SetImage(files[file], up)
	if err != nil {
		return "", Match{}, fmt.Errorf("%s: %w", file, err)
	}
	if !changed {
		return "", entry, nil
	}

	fs := filesys.MakeFsInMemory()
	for p, c := range files {
		if p == file {
			c = out
		}
		if err := fs.WriteFile("/"+p, c); err != nil {
			return "", Match{}, err
		}
	}
	if _, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/"+dir); err != nil {
		return "", Match{}, fmt.Errorf("the edited kustomization %q does not build: %w", dir, err)
	}

	// Diff through an in-memory repository: the same patch format as Bump.
	wtfs := memfs.New()
	r, err := git.Init(memory.NewStorage(), wtfs)
	if err != nil {
		return "", Match{}, err
	}
	wt, err := r.Worktree()
	if err != nil {
		return "", Match{}, err
	}
	sig := &object.Signature{Name: "preview", Email: "preview@invalid", When: time.Unix(0, 0)}
	write := func(content []byte) error {
		f, err := wtfs.Create(file)
		if err != nil {
			return err
		}
		if _, err := f.Write(content); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	var hashes []plumbing.Hash
	for _, content := range [][]byte{files[file], out} {
		if err := write(content); err != nil {
			return "", Match{}, err
		}
		if _, err := wt.Add(file); err != nil {
			return "", Match{}, err
		}
		h, err := wt.Commit("preview", &git.CommitOptions{Author: sig, Committer: sig, AllowEmptyCommits: true})
		if err != nil {
			return "", Match{}, err
		}
		hashes = append(hashes, h)
	}
	a, err := r.CommitObject(hashes[0])
	if err != nil {
		return "", Match{}, err
	}
	b, err := r.CommitObject(hashes[1])
	if err != nil {
		return "", Match{}, err
	}
	p, err := a.Patch(b)
	if err != nil {
		return "", Match{}, err
	}
	return p.String(), entry, nil
}
