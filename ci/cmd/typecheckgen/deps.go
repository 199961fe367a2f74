package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"strings"

	"github.com/iancoleman/strcase"
	"golang.org/x/mod/modfile"

	"dagger/voice/bindings"
	"dagger/voice/callcheck"
)

// DependenciesFile holds the bindings of the module's dependencies, when it
// has any (relative to the module root).
const DependenciesFile = "internal/dagger/dependencies.typecheck.go"

// config is the part of dagger.json the stand-in needs.
type config struct {
	Name         string `json:"name"`
	Source       string `json:"source"`
	Dependencies []struct {
		Name   string `json:"name"`
		Source string `json:"source"`
	} `json:"dependencies"`
}

// moduleInfo is what the stand-in needs to know about the module in a
// directory: its Go import path and its Dagger dependencies.
type moduleInfo struct {
	goPath string
	deps   []bindings.Dependency
}

// loadModuleInfo reads dir's go.mod and the dagger.json whose source is
// dir, and loads the schema of every dependency from its source.
func loadModuleInfo(ctx context.Context, dir string) (*moduleInfo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	gomod := filepath.Join(abs, "go.mod")
	data, err := os.ReadFile(gomod)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w (the stand-in is for a Dagger module's Go source directory)", gomod, err)
	}
	goPath := modfile.ModulePath(data)
	if goPath == "" {
		return nil, fmt.Errorf("%s declares no module path", gomod)
	}
	info := &moduleInfo{goPath: goPath}
	cfgPath, cfg, err := findConfig(abs)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return info, nil // no dagger.json: no dependencies
	}
	for _, d := range cfg.Dependencies {
		dep, err := loadDependency(ctx, filepath.Dir(cfgPath), d.Name, d.Source)
		if err != nil {
			return nil, fmt.Errorf("%s: dependency %q: %w", cfgPath, d.Name, err)
		}
		info.deps = append(info.deps, dep)
	}
	return info, nil
}

// findConfig finds the dagger.json whose source directory is dir: in dir
// itself (source ".") or in a parent directory (source "ci", ".dagger", ...).
func findConfig(dir string) (string, *config, error) {
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "dagger.json")
		cfg, err := readConfig(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", nil, err
		}
		if cfg != nil && filepath.Join(d, cfg.Source) == dir {
			return p, cfg, nil
		}
		if filepath.Dir(d) == d {
			return "", nil, nil
		}
	}
}

func readConfig(path string) (*config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cfg config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if cfg.Source == "" {
		cfg.Source = "."
	}
	return &cfg, nil
}

// loadDependency reads a local dependency's dagger.json and its Go source.
func loadDependency(ctx context.Context, base, name, source string) (bindings.Dependency, error) {
	if source == "" || !isLocal(source) {
		return bindings.Dependency{}, fmt.Errorf("source %q is not a local path: the stand-in is generated from a dependency's source, so point the dependency at a checkout (e.g. a git submodule) or generate against one", source)
	}
	root := filepath.Join(base, source)
	cfgPath := filepath.Join(root, "dagger.json")
	cfg, err := readConfig(cfgPath)
	if err != nil {
		return bindings.Dependency{}, fmt.Errorf("read the dependency's dagger.json: %w", err)
	}
	if cfg.Name == "" {
		return bindings.Dependency{}, fmt.Errorf("%s has no name", cfgPath)
	}
	schema, err := callcheck.Load(ctx, filepath.Join(root, cfg.Source), strcase.ToCamel(cfg.Name), BuildTag)
	if err != nil {
		return bindings.Dependency{}, fmt.Errorf("load the dependency's module (is its own stand-in generated?): %w", err)
	}
	if name == "" {
		name = cfg.Name
	}
	return bindings.Dependency{Name: name, ModuleName: cfg.Name, Schema: schema}, nil
}

// isLocal tells a local path from a remote reference such as
// github.com/org/repo/mod@v1.2.3 or git@host:org/repo.
func isLocal(source string) bool {
	if strings.HasPrefix(source, ".") || strings.HasPrefix(source, "/") {
		return true
	}
	if strings.Contains(source, "@") || strings.Contains(source, "://") {
		return false
	}
	first, _, _ := strings.Cut(source, "/")
	return !strings.Contains(first, ".") // a host name has a dot
}

// renderDependencies writes the bindings of every dependency.
func renderDependencies(version string, deps []bindings.Dependency, omit map[string]bool) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(header(version))
	b.WriteString("// Client bindings of the module's dependencies, rendered from their source\n")
	b.WriteString("// by ci/bindings with the signatures the engine's code generator gives them.\n")
	b.WriteString("package dagger\n\nimport \"context\"\n\n")
	for _, d := range deps {
		src, err := bindings.Render(d, omit)
		if err != nil {
			return nil, err
		}
		b.Write(src)
	}
	out, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("format dependency bindings: %w", err)
	}
	return out, nil
}
