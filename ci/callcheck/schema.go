// Package callcheck reads the Dagger module's Go source the way the Dagger
// CLI will see it (functions, arguments, return types, doc comments) and
// checks `dagger call` command lines written elsewhere (.gitlab-ci.yml, the
// README) against it, so documentation and pipeline cannot drift from the
// module. It also reports functions and arguments that lack the doc comment
// that becomes their `dagger call --help` text.
package callcheck

import (
	"context"
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"sort"
	"strings"
	"unicode"

	"golang.org/x/tools/go/packages"
)

// SDKPath is the import path of the Dagger Go SDK whose core types (File,
// Directory, Container, ...) function chains may continue into.
const SDKPath = "dagger.io/dagger"

// Arg is one argument of a function, as a CLI flag.
type Arg struct {
	// Flag is the CLI name without dashes, e.g. "deploy-repo".
	Flag string
	// Required is true unless the argument has +optional, +default or
	// +defaultPath, or is an optional field of a core *Opts struct.
	Required bool
	// Bool arguments may be given without a value.
	Bool bool
	// Doc is the argument's doc comment (module functions only).
	Doc string
	// Name is the Go parameter or field name, e.g. "deployRepo".
	Name string
	// Type is the argument's Go type.
	Type types.Type
}

// Function is one function callable on an object.
type Function struct {
	// Name is the CLI name, e.g. "wait-ready".
	Name string
	// GoName is the Go method or field name, e.g. "WaitReady".
	GoName string
	Args   map[string]*Arg
	// Params are the arguments in declaration order.
	Params []*Arg
	// ResultType is the Go type of the value returned (the error aside),
	// or nil when the function returns nothing but an error.
	ResultType types.Type
	// Result is the name of the object the function returns, or "" for a
	// scalar, list or void result (which ends a chain).
	Result string
	// Doc is the doc comment (module functions only).
	Doc string
	// Field is true for an exported struct field of a module object, which
	// the engine exposes as a function without arguments.
	Field bool
	// Pos locates the declaration (module functions only).
	Pos token.Position
}

// Object is a module object type or a core type of the Dagger API.
type Object struct {
	Name      string
	Core      bool
	Functions map[string]*Function
	// Type is the Go type of the object.
	Type *types.Named
}

// Schema is the callable surface of a module.
type Schema struct {
	// Root is the module's main object, e.g. "Voice".
	Root string
	// Constructor holds the arguments of New, given right after `call`.
	Constructor *Function
	Objects     map[string]*Object
	problems    []string
	// Self lists module references (as given to `dagger -m`) that denote
	// this module, e.g. "gitlab.com/acme/voice-agent"; a call with -m
	// naming one of them, with or without @version, is checked too.
	Self []string
}

// Load type-checks the module in dir (with the given build tags, normally
// "typecheck") and returns its schema. root names the main object type.
func Load(ctx context.Context, dir, root string, tags ...string) (*Schema, error) {
	cfg := &packages.Config{
		Context: ctx,
		Dir:     dir,
		Mode: packages.NeedName | packages.NeedTypes | packages.NeedSyntax |
			packages.NeedTypesInfo | packages.NeedFiles,
	}
	if len(tags) > 0 {
		cfg.BuildFlags = []string{"-tags", strings.Join(tags, ",")}
	}
	pkgs, err := packages.Load(cfg, ".")
	if err != nil {
		return nil, fmt.Errorf("load module in %s: %w", dir, err)
	}
	if len(pkgs) != 1 {
		return nil, fmt.Errorf("load module in %s: got %d packages, want 1", dir, len(pkgs))
	}
	pkg := pkgs[0]
	if len(pkg.Errors) > 0 {
		return nil, fmt.Errorf("module in %s does not type-check: %v", dir, pkg.Errors[0])
	}
	s := &Schema{Root: root, Objects: map[string]*Object{}}
	b := &builder{s: s, pkg: pkg, docs: collectDocs(pkg), fieldDocs: collectFieldDocs(pkg)}
	rootObj := pkg.Types.Scope().Lookup(root)
	if rootObj == nil {
		return nil, fmt.Errorf("module in %s has no type %s", dir, root)
	}
	b.object(rootObj.Type().(*types.Named))
	if ctor, ok := pkg.Types.Scope().Lookup("New").(*types.Func); ok {
		s.Constructor = b.function("new", ctor)
		b.checkFunction(root, s.Constructor, ctor)
	} else {
		s.Constructor = &Function{Name: "new", Args: map[string]*Arg{}}
	}
	return s, nil
}

type funcDocs struct {
	doc    string
	params map[string]string // param name -> doc comment
	pos    token.Position
}

type builder struct {
	s    *Schema
	pkg  *packages.Package
	docs map[*types.Func]funcDocs
	// fieldDocs are the doc comments of struct fields.
	fieldDocs map[*types.Var]string
}

// collectFieldDocs reads the doc comments of struct fields (where Dagger
// finds a field's description and its +private pragma).
func collectFieldDocs(pkg *packages.Package) map[*types.Var]string {
	out := map[*types.Var]string{}
	for _, file := range pkg.Syntax {
		ast.Inspect(file, func(n ast.Node) bool {
			st, ok := n.(*ast.StructType)
			if !ok {
				return true
			}
			for _, f := range st.Fields.List {
				doc := ""
				if f.Doc != nil {
					doc = f.Doc.Text()
				}
				if f.Comment != nil {
					doc += f.Comment.Text()
				}
				for _, name := range f.Names {
					if v, ok := pkg.TypesInfo.Defs[name].(*types.Var); ok {
						out[v] = doc
					}
				}
			}
			return true
		})
	}
	return out
}

// collectDocs reads doc comments of functions and of their parameters (the
// comment lines directly above each parameter, as Dagger reads them).
func collectDocs(pkg *packages.Package) map[*types.Func]funcDocs {
	out := map[*types.Func]funcDocs{}
	for _, file := range pkg.Syntax {
		cmap := ast.NewCommentMap(pkg.Fset, file, file.Comments)
		for _, decl := range file.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			fn, ok := pkg.TypesInfo.Defs[fd.Name].(*types.Func)
			if !ok {
				continue
			}
			d := funcDocs{params: map[string]string{}, pos: pkg.Fset.Position(fd.Pos())}
			if fd.Doc != nil {
				d.doc = fd.Doc.Text()
			}
			for _, field := range fd.Type.Params.List {
				var text string
				for _, cg := range cmap[field] {
					if pkg.Fset.Position(cg.End()).Line < pkg.Fset.Position(field.Pos()).Line {
						text += cg.Text()
					}
				}
				for _, n := range field.Names {
					d.params[n.Name] = text
				}
			}
			out[fn] = d
		}
	}
	return out
}

func (b *builder) object(named *types.Named) string {
	name := named.Obj().Name()
	core := named.Obj().Pkg() != nil && named.Obj().Pkg().Path() == SDKPath
	if _, seen := b.s.Objects[name]; seen {
		return name
	}
	obj := &Object{Name: name, Core: core, Functions: map[string]*Function{}, Type: named}
	b.s.Objects[name] = obj

	mset := types.NewMethodSet(types.NewPointer(named))
	for i := 0; i < mset.Len(); i++ {
		fn, ok := mset.At(i).Obj().(*types.Func)
		if !ok || !fn.Exported() {
			continue
		}
		f := b.function(Kebab(fn.Name()), fn)
		obj.Functions[f.Name] = f
		if !core {
			b.checkFunction(name, f, fn)
		}
	}
	if !core {
		if st, ok := named.Underlying().(*types.Struct); ok {
			for i := 0; i < st.NumFields(); i++ {
				fld := st.Field(i)
				if !fld.Exported() || hasPragma(b.fieldDocs[fld], "private") {
					continue // +private: kept in the object's state, not in the API
				}
				f := &Function{Name: Kebab(fld.Name()), GoName: fld.Name(), Args: map[string]*Arg{}, Field: true, ResultType: fld.Type()}
				f.Result = b.result(fld.Type())
				if reserved[f.Name] {
					b.problem("%s: field %s: %q is reserved: every object has it already", name, fld.Name(), f.Name)
				}
				if other, clash := obj.Functions[f.Name]; clash {
					b.problem("%s: field %s and method %s both become function %q", name, fld.Name(), other.GoName, f.Name)
				}
				if !b.supported(fld.Type()) {
					b.problem("%s: field %s has type %s, which Dagger cannot expose (unexport it or change its type)", name, fld.Name(), types.TypeString(fld.Type(), nil))
				}
				obj.Functions[f.Name] = f
			}
		}
	}
	return name
}

func (b *builder) function(name string, fn *types.Func) *Function {
	sig := fn.Type().(*types.Signature)
	d := b.docs[fn]
	f := &Function{Name: name, GoName: fn.Name(), Args: map[string]*Arg{}, Doc: d.doc, Pos: d.pos}
	params := sig.Params()
	for i := 0; i < params.Len(); i++ {
		p := params.At(i)
		if isContext(p.Type()) {
			continue
		}
		if sig.Variadic() && i == params.Len()-1 {
			// Core API: ...XxxOpts carries the optional arguments.
			if st, ok := p.Type().(*types.Slice).Elem().Underlying().(*types.Struct); ok {
				for j := 0; j < st.NumFields(); j++ {
					fld := st.Field(j)
					if fld.Exported() {
						a := &Arg{Flag: Kebab(fld.Name()), Bool: isBool(fld.Type()), Name: fld.Name(), Type: fld.Type()}
						f.Args[a.Flag] = a
						f.Params = append(f.Params, a)
					}
				}
			}
			continue
		}
		doc := d.params[p.Name()]
		a := &Arg{Flag: Kebab(p.Name()), Bool: isBool(p.Type()), Doc: doc, Name: p.Name(), Type: p.Type()}
		optional := hasPragma(doc, "optional")
		if v, ok := pragmaValue(doc, "optional"); ok && v == "false" {
			optional = false
		}
		a.Required = !optional && !hasPragma(doc, "default") && !hasPragma(doc, "defaultPath")
		f.Args[a.Flag] = a
		f.Params = append(f.Params, a)
		b.result(p.Type()) // an object argument's type is part of the module too
	}
	res := sig.Results()
	for i := 0; i < res.Len(); i++ {
		if isError(res.At(i).Type()) {
			continue
		}
		f.Result = b.result(res.At(i).Type())
		f.ResultType = res.At(i).Type()
	}
	return f
}

func (b *builder) result(t types.Type) string {
	if sl, ok := types.Unalias(t).(*types.Slice); ok {
		b.result(sl.Elem()) // the element's type is part of the module; a list ends a chain
		return ""
	}
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	t = types.Unalias(t)
	named, ok := t.(*types.Named)
	if !ok {
		return ""
	}
	if _, isStruct := named.Underlying().(*types.Struct); !isStruct {
		return "" // named scalar such as dagger.Platform
	}
	pkg := named.Obj().Pkg()
	if pkg == nil || (pkg.Path() != SDKPath && pkg != b.pkg.Types) {
		return ""
	}
	return b.object(named)
}

func isContext(t types.Type) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "context" && n.Obj().Name() == "Context"
}

func isError(t types.Type) bool {
	return types.Identical(t, types.Universe.Lookup("error").Type())
}

func isBool(t types.Type) bool {
	b, ok := types.Unalias(t).Underlying().(*types.Basic)
	return ok && b.Kind() == types.Bool
}

// hasPragma reports whether a doc comment carries `+name` or `+name=...`.
func hasPragma(doc, name string) bool {
	for _, line := range strings.Split(doc, "\n") {
		line = strings.TrimSpace(line)
		if line == "+"+name || strings.HasPrefix(line, "+"+name+"=") {
			return true
		}
	}
	return false
}

// Kebab converts a Go identifier to the Dagger CLI's kebab case:
// WaitReady -> wait-ready, deployRepo -> deploy-repo, fulcioURL -> fulcio-url.
func Kebab(s string) string {
	runes := []rune(s)
	var b strings.Builder
	for i, r := range runes {
		if unicode.IsUpper(r) {
			prevLower := i > 0 && (unicode.IsLower(runes[i-1]) || unicode.IsDigit(runes[i-1]))
			nextLower := i+1 < len(runes) && unicode.IsLower(runes[i+1])
			prevUpper := i > 0 && unicode.IsUpper(runes[i-1])
			if i > 0 && (prevLower || (prevUpper && nextLower)) {
				b.WriteByte('-')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// MissingDocs lists module functions and arguments without a doc comment
// (pragma lines do not count as documentation).
func (s *Schema) MissingDocs() []string {
	var out []string
	check := func(owner string, f *Function) {
		if f.Field {
			return
		}
		if strings.TrimSpace(StripPragmas(f.Doc)) == "" {
			out = append(out, fmt.Sprintf("%s: function %s.%s has no doc comment", f.Pos, owner, f.GoName))
		}
		for _, a := range f.Args {
			if strings.TrimSpace(StripPragmas(a.Doc)) == "" {
				out = append(out, fmt.Sprintf("%s: argument --%s of %s.%s has no doc comment", f.Pos, a.Flag, owner, f.GoName))
			}
		}
	}
	check(s.Root, s.Constructor)
	for _, o := range s.Objects {
		if o.Core {
			continue
		}
		for _, f := range o.Functions {
			check(o.Name, f)
		}
	}
	sort.Strings(out)
	return out
}

// StripPragmas removes the +pragma lines of a doc comment, leaving its text.
func StripPragmas(doc string) string {
	var keep []string
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "+") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}
