package callcheck

import (
	"encoding/json"
	"fmt"
	"go/types"
	"math"
	"strings"
)

// What the Dagger Go SDK can expose, checked here because nothing else checks
// it before a real engine loads the module: argument, result and field
// types it supports, +default values that decode to the argument's type,
// +defaultPath only on directories and files, and no field and method that
// become the same function.

// supported reports whether t can cross the Dagger API boundary as an
// argument, a result or a field of a module object.
func (b *builder) supported(t types.Type) bool {
	switch t := types.Unalias(t).(type) {
	case *types.Basic:
		switch t.Kind() {
		case types.String, types.Int, types.Float64, types.Bool:
			return true
		}
		return false
	case *types.Slice:
		return b.supported(t.Elem())
	case *types.Pointer:
		named, ok := types.Unalias(t.Elem()).(*types.Named)
		if !ok {
			return false
		}
		_, isStruct := named.Underlying().(*types.Struct)
		return isStruct && b.ownOrSDK(named)
	case *types.Named:
		if !b.ownOrSDK(t) {
			return false
		}
		switch u := t.Underlying().(type) {
		case *types.Struct:
			return true
		case *types.Basic:
			// Custom scalars and enums (dagger.Platform, dagger.JSON, ...).
			return u.Kind() == types.String || u.Kind() == types.Int || u.Kind() == types.Float64 || u.Kind() == types.Bool
		}
		return false
	}
	return false
}

func (b *builder) ownOrSDK(n *types.Named) bool {
	pkg := n.Obj().Pkg()
	return pkg != nil && (pkg == b.pkg.Types || pkg.Path() == SDKPath)
}

func (b *builder) problem(format string, args ...any) {
	b.s.problems = append(b.s.problems, fmt.Sprintf(format, args...))
}

// reserved are function names the engine gives every object itself.
var reserved = map[string]bool{"id": true}

// checkFunction records what a real engine would refuse in a module function.
func (b *builder) checkFunction(owner string, f *Function, fn *types.Func) {
	sig := fn.Type().(*types.Signature)
	where := fmt.Sprintf("%s: %s.%s", f.Pos, owner, fn.Name())
	if reserved[f.Name] {
		b.problem("%s: %q is reserved: every object has it already", where, f.Name)
	}
	params := sig.Params()
	for i := 0; i < params.Len(); i++ {
		p := params.At(i)
		if isContext(p.Type()) {
			if i != 0 {
				b.problem("%s: context.Context must be the first argument", where)
			}
			continue
		}
		if !b.supported(p.Type()) {
			b.problem("%s: argument %s has type %s, which Dagger cannot expose (use string, int, float64, bool, a list, a core type such as *dagger.Directory, or a module type)", where, p.Name(), types.TypeString(p.Type(), nil))
			continue
		}
		doc := b.docs[fn].params[p.Name()]
		if v, ok := pragmaValue(doc, "default"); ok {
			if err := defaultFits(v, p.Type()); err != nil {
				b.problem("%s: argument %s: +default=%s: %v", where, p.Name(), v, err)
			}
		}
		if _, ok := pragmaValue(doc, "defaultPath"); ok && !isCore(p.Type(), "Directory", "File") {
			b.problem("%s: argument %s: +defaultPath needs a *dagger.Directory or *dagger.File, not %s", where, p.Name(), types.TypeString(p.Type(), nil))
		}
	}
	res := sig.Results()
	switch res.Len() {
	case 0:
	case 1:
		if !isError(res.At(0).Type()) && !b.supported(res.At(0).Type()) {
			b.problem("%s: result type %s cannot be exposed", where, types.TypeString(res.At(0).Type(), nil))
		}
	case 2:
		if !isError(res.At(1).Type()) {
			b.problem("%s: a second result must be error", where)
		} else if !b.supported(res.At(0).Type()) {
			b.problem("%s: result type %s cannot be exposed", where, types.TypeString(res.At(0).Type(), nil))
		}
	default:
		b.problem("%s: at most a value and an error can be returned", where)
	}
}

func isCore(t types.Type, names ...string) bool {
	p, ok := types.Unalias(t).(*types.Pointer)
	if !ok {
		return false
	}
	n, ok := types.Unalias(p.Elem()).(*types.Named)
	if !ok || n.Obj().Pkg() == nil || n.Obj().Pkg().Path() != SDKPath {
		return false
	}
	for _, name := range names {
		if n.Obj().Name() == name {
			return true
		}
	}
	return false
}

// pragmaValue returns the value of `+name=value` in a doc comment.
func pragmaValue(doc, name string) (string, bool) {
	for _, line := range strings.Split(doc, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "+"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// defaultFits checks that a +default value is JSON of the argument's type,
// as the engine decodes it.
func defaultFits(value string, t types.Type) error {
	var v any
	if err := json.Unmarshal([]byte(value), &v); err != nil {
		return fmt.Errorf("not JSON (strings need double quotes): %w", err)
	}
	return jsonFits(v, t)
}

func jsonFits(v any, t types.Type) error {
	t = types.Unalias(t)
	if s, ok := t.(*types.Slice); ok {
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("want a JSON list for %s", types.TypeString(t, nil))
		}
		for _, e := range list {
			if err := jsonFits(e, s.Elem()); err != nil {
				return err
			}
		}
		return nil
	}
	basic, ok := t.Underlying().(*types.Basic)
	if !ok {
		return fmt.Errorf("a default for %s is not supported", types.TypeString(t, nil))
	}
	switch basic.Kind() {
	case types.String:
		if _, ok := v.(string); !ok {
			return fmt.Errorf("want a JSON string, got %v", v)
		}
	case types.Bool:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("want true or false, got %v", v)
		}
	case types.Int:
		n, ok := v.(float64)
		if !ok || n != math.Trunc(n) {
			return fmt.Errorf("want an integer, got %v", v)
		}
	case types.Float64:
		if _, ok := v.(float64); !ok {
			return fmt.Errorf("want a number, got %v", v)
		}
	default:
		return fmt.Errorf("a default for %s is not supported", types.TypeString(t, nil))
	}
	return nil
}

// EngineProblems lists what a real Dagger engine would refuse when loading
// the module (unsupported types, bad defaults, name clashes).
func (s *Schema) EngineProblems() []string { return s.problems }
