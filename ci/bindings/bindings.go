// Package bindings renders the Go client bindings that a Dagger engine
// generates for a module's dependency (the `dag.Voice().Test(...)` API a
// consumer module calls), from the dependency's Go source as read by
// callcheck. The output is a type-check stand-in: the signatures follow the
// Go SDK's code generator (names, option structs, lazy objects, context and
// error on scalar results), the bodies only panic, since the stand-in is
// compiled to check a consumer and never run.
//
// The rules mirrored, from dagger/dagger's cmd/codegen (Go templates) and
// core (module type namespacing), for the engine version in dagger.json:
//   - a dependency's object types are namespaced by the dependency's name
//     (TestRun in module voice becomes VoiceTestRun) unless they already
//     start with it; the main object keeps the module's name;
//   - Go names become GraphQL names with strcase.ToLowerCamel and Go names
//     again with the golint initialisms (sourceUrl becomes SourceURL);
//   - arguments with +optional, +default or +defaultPath go into an
//     <Type><Function>Opts struct passed as a variadic last argument; the
//     others are positional, in declaration order;
//   - a function returning an object is lazy (no context, no error); one
//     returning a scalar or a list takes a context and returns an error
//     too; one returning nothing but an error returns only an error;
//   - every object has ID(ctx), and the client a Load<Type>FromID.
package bindings

import (
	"bytes"
	"fmt"
	"go/format"
	"go/types"
	"sort"
	"strings"
	"unicode"

	"github.com/iancoleman/strcase"

	"dagger/voice/callcheck"
)

// StandIn is the panic message of every rendered body.
const StandIn = "typecheck stand-in: this code runs only on a Dagger engine"

// Dependency is one module a consumer depends on.
type Dependency struct {
	// Name is the dependency's name in the consumer's dagger.json (what
	// `dagger install` records, normally the module's own name).
	Name string
	// ModuleName is the name in the dependency's own dagger.json.
	ModuleName string
	// Schema is the dependency's module, as callcheck reads it.
	Schema *callcheck.Schema
}

// Render returns the declarations (without package clause or imports; the
// caller's file imports "context") of the client bindings for dep. Types
// of dagger.io/dagger are referred to by their bare names, as inside the
// generated internal/dagger package. omit names functions to leave out,
// as "GoType.Method" (e.g. "Voice.Test"), so tests can prove a consumer's
// type-check depends on them.
func Render(dep Dependency, omit map[string]bool) ([]byte, error) {
	if dep.Schema == nil {
		return nil, fmt.Errorf("bindings: dependency %q has no schema", dep.Name)
	}
	r := &renderer{dep: dep, omit: omit}
	if err := r.render(); err != nil {
		return nil, fmt.Errorf("bindings for dependency %q: %w", dep.Name, err)
	}
	// Format as a file to check the syntax, then drop the clause.
	src := append([]byte("package dagger\n\n"), r.out.Bytes()...)
	formatted, err := format.Source(src)
	if err != nil {
		return nil, fmt.Errorf("bindings for dependency %q: rendered invalid Go: %w\n%s", dep.Name, err, src)
	}
	return bytes.TrimPrefix(formatted, []byte("package dagger\n\n")), nil
}

type renderer struct {
	dep  Dependency
	omit map[string]bool
	out  bytes.Buffer
}

// TypeName is the Go name of a dependency's object type in the consumer's
// bindings (core's namespaceObject, then the Go generator's formatName).
func TypeName(depName, moduleName, object string) string {
	return FormatName(namespaceObject(object, depName, moduleName))
}

func namespaceObject(obj, modFinal, modOriginal string) string {
	obj = strcase.ToCamel(obj)
	modOriginal = strcase.ToCamel(modOriginal)
	if rest, ok := strings.CutPrefix(obj, modOriginal); ok {
		if rest == "" {
			return strcase.ToCamel(modFinal)
		}
		if unicode.IsUpper(rune(rest[0])) {
			return strcase.ToCamel(modFinal) + rest
		}
	}
	return strcase.ToCamel(modFinal + "_" + obj)
}

// GraphQLName is the API name Dagger gives a Go function, field or
// parameter name.
func GraphQLName(goName string) string { return strcase.ToLowerCamel(goName) }

// FormatName is the Go generator's formatName: upper-case the first
// letter, then apply golint's initialisms.
func FormatName(s string) string {
	if s == "" {
		return s
	}
	return lintName(strings.ToUpper(s[:1]) + s[1:])
}

func (r *renderer) typeName(object string) string {
	return TypeName(r.dep.Name, r.dep.ModuleName, object)
}

func (r *renderer) printf(format string, args ...any) { fmt.Fprintf(&r.out, format, args...) }

func (r *renderer) render() error {
	s := r.dep.Schema
	root := s.Objects[s.Root]
	if root == nil {
		return fmt.Errorf("module has no main object %s", s.Root)
	}
	var names []string
	for name, o := range s.Objects {
		if !o.Core {
			names = append(names, name)
		}
	}
	sort.Strings(names)

	// The constructor: a field of the client named after the dependency.
	ctorName := GraphQLName(strcase.ToCamel(r.dep.Name))
	if err := r.function("Client", "", ctorName, s.Constructor, s.Objects[s.Root].Type, false); err != nil {
		return err
	}
	for _, name := range names {
		if err := r.object(s.Objects[name]); err != nil {
			return err
		}
	}
	return nil
}

func (r *renderer) object(o *callcheck.Object) error {
	goName := r.typeName(o.Name)
	r.printf("// %s is the %s object of the %s module.\ntype %s struct{}\n\n", goName, o.Name, r.dep.Name, goName)
	r.printf("// %sID identifies a %s.\ntype %sID string\n\n", goName, goName, goName)
	r.printf("// ID returns the object's identifier.\nfunc (r *%s) ID(ctx context.Context) (%sID, error) {\n\tpanic(%q)\n}\n\n", goName, goName, StandIn)
	r.printf("// Load%sFromID loads a %s from its ID.\nfunc (r *Client) Load%sFromID(id %sID) *%s {\n\tpanic(%q)\n}\n\n", goName, goName, goName, goName, goName, StandIn)

	var fnames []string
	for n := range o.Functions {
		fnames = append(fnames, n)
	}
	sort.Strings(fnames)
	selfChaining := false
	for _, n := range fnames {
		f := o.Functions[n]
		if r.omit[goName+"."+FormatName(GraphQLName(f.GoName))] {
			continue
		}
		if err := r.function(goName, goName, GraphQLName(f.GoName), f, f.ResultType, f.Field); err != nil {
			return fmt.Errorf("%s.%s: %w", o.Name, f.GoName, err)
		}
		if n, ok := objectOf(f.ResultType); ok && n.Obj() == o.Type.Obj() {
			selfChaining = true
		}
	}
	if selfChaining {
		r.printf("// With%sFunc is a function that returns a modified %s.\ntype With%sFunc func(r *%s) *%s\n\n", goName, goName, goName, goName, goName)
		r.printf("// With calls f with the current %s.\nfunc (r *%s) With(f With%sFunc) *%s {\n\treturn f(r)\n}\n\n", goName, goName, goName, goName)
	}
	return nil
}

// function renders one field of a parent type. parent is the Go receiver
// type ("Client" for the constructor); optsPrefix is the parent's name in
// option structs ("" on the client, as for the Query type).
func (r *renderer) function(parent, optsPrefix, gqlName string, f *callcheck.Function, result types.Type, field bool) error {
	goName := FormatName(gqlName)
	optsName := optsPrefix + goName + "Opts"
	var required, optional []*callcheck.Arg
	if !field {
		for _, a := range f.Params {
			if a.Required {
				required = append(required, a)
			} else {
				optional = append(optional, a)
			}
		}
	}
	kind, ret, err := r.result(result)
	if err != nil {
		return err
	}

	if len(optional) > 0 {
		r.printf("// %s contains options for %s.%s.\ntype %s struct {\n", optsName, parent, goName, optsName)
		for _, a := range optional {
			t, err := r.inputType(a.Type)
			if err != nil {
				return fmt.Errorf("argument %s: %w", a.Name, err)
			}
			r.comment(a.Doc, "\t")
			r.printf("\t%s %s\n", FormatName(GraphQLName(a.Name)), t)
		}
		r.printf("}\n\n")
	}

	var params []string
	if kind != lazy {
		params = append(params, "ctx context.Context")
	}
	for _, a := range required {
		t, err := r.inputType(a.Type)
		if err != nil {
			return fmt.Errorf("argument %s: %w", a.Name, err)
		}
		params = append(params, GraphQLName(a.Name)+" "+t)
	}
	if len(optional) > 0 {
		params = append(params, "opts ..."+optsName)
	}
	switch kind {
	case void:
		ret = "error"
	case lazy:
		ret = "*" + ret
	default:
		ret = "(" + ret + ", error)"
	}
	r.comment(f.Doc, "")
	r.printf("func (r *%s) %s(%s) %s {\n\tpanic(%q)\n}\n\n", parent, goName, strings.Join(params, ", "), ret, StandIn)
	return nil
}

func (r *renderer) comment(doc, indent string) {
	doc = strings.TrimSpace(callcheck.StripPragmas(doc))
	if doc == "" {
		return
	}
	for _, line := range strings.Split(doc, "\n") {
		r.printf("%s// %s\n", indent, strings.TrimRight(line, " \t"))
	}
}

type resultKind int

const (
	void resultKind = iota
	lazy
	value
)

// result classifies a function's result and renders its output type.
func (r *renderer) result(t types.Type) (resultKind, string, error) {
	if t == nil {
		return void, "", nil
	}
	if _, ok := objectOf(t); ok {
		name, err := r.objectName(t)
		return lazy, name, err
	}
	out, err := r.outputType(t)
	return value, out, err
}

// objectOf returns the named struct type t points to (or is).
func objectOf(t types.Type) (*types.Named, bool) {
	t = types.Unalias(t)
	if p, ok := t.(*types.Pointer); ok {
		t = types.Unalias(p.Elem())
	}
	n, ok := t.(*types.Named)
	if !ok {
		return nil, false
	}
	_, isStruct := n.Underlying().(*types.Struct)
	return n, isStruct
}

// objectName names an object type: an SDK type by its own name, a type of
// the dependency by its namespaced name.
func (r *renderer) objectName(t types.Type) (string, error) {
	n, _ := objectOf(t)
	pkg := n.Obj().Pkg()
	switch {
	case pkg != nil && pkg.Path() == callcheck.SDKPath:
		return n.Obj().Name(), nil
	case r.dep.Schema.Objects[n.Obj().Name()] != nil && !r.dep.Schema.Objects[n.Obj().Name()].Core:
		return r.typeName(n.Obj().Name()), nil
	}
	return "", fmt.Errorf("type %s is neither a core type nor one of the module's objects", types.TypeString(t, nil))
}

func (r *renderer) scalar(t types.Type) (string, bool) {
	t = types.Unalias(t)
	switch b := t.(type) {
	case *types.Basic:
		switch b.Kind() {
		case types.String:
			return "string", true
		case types.Int:
			return "int", true
		case types.Float64:
			return "float64", true
		case types.Bool:
			return "bool", true
		}
	case *types.Named:
		if _, isStruct := b.Underlying().(*types.Struct); isStruct {
			return "", false
		}
		if pkg := b.Obj().Pkg(); pkg != nil && pkg.Path() == callcheck.SDKPath {
			return b.Obj().Name(), true // Platform, JSON, enums of the core API
		}
	}
	return "", false
}

func (r *renderer) inputType(t types.Type) (string, error) {
	if s, ok := r.scalar(t); ok {
		return s, nil
	}
	if sl, ok := types.Unalias(t).(*types.Slice); ok {
		elem, err := r.inputType(sl.Elem())
		return "[]" + elem, err
	}
	if _, ok := objectOf(t); ok {
		name, err := r.objectName(t)
		return "*" + name, err
	}
	return "", fmt.Errorf("type %s has no binding (module enums and custom scalars are not supported)", types.TypeString(t, nil))
}

func (r *renderer) outputType(t types.Type) (string, error) {
	if s, ok := r.scalar(t); ok {
		return s, nil
	}
	if sl, ok := types.Unalias(t).(*types.Slice); ok {
		if _, isObj := objectOf(sl.Elem()); isObj {
			name, err := r.objectName(sl.Elem())
			return "[]" + name, err // lists of objects are values
		}
		elem, err := r.outputType(sl.Elem())
		return "[]" + elem, err
	}
	return "", fmt.Errorf("type %s has no binding (module enums and custom scalars are not supported)", types.TypeString(t, nil))
}
