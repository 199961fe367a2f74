package callcheck

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Call is one `dagger ... call ...` command found in a shell script.
type Call struct {
	// Words are the command's words as written (variables unexpanded).
	Words []string
	// Line is the line of the command within the script (1-based).
	Line int
}

func (c Call) String() string { return strings.Join(c.Words, " ") }

// Calls finds every `dagger` command that runs `call` in a POSIX shell
// script, including inside command substitutions and pipelines.
func Calls(script string) ([]Call, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(script), "")
	if err != nil {
		return nil, fmt.Errorf("parse shell: %w", err)
	}
	var out []Call
	printer := syntax.NewPrinter()
	syntax.Walk(f, func(node syntax.Node) bool {
		ce, ok := node.(*syntax.CallExpr)
		if !ok || len(ce.Args) == 0 || ce.Args[0].Lit() != "dagger" {
			return true
		}
		words := make([]string, 0, len(ce.Args))
		for _, w := range ce.Args {
			var b bytes.Buffer
			if err := printer.Print(&b, w); err != nil {
				return true
			}
			words = append(words, b.String())
		}
		if indexOf(words, "call") > 0 {
			out = append(out, Call{Words: words, Line: int(ce.Pos().Line())})
		}
		return true
	})
	return out, nil
}

func indexOf(words []string, w string) int {
	for i, x := range words {
		if x == w {
			return i
		}
	}
	return -1
}

// cliFlags are flags of the dagger CLI itself (not module arguments), with
// whether they take a value.
var cliFlags = map[string]bool{
	"-m": true, "--mod": true, "--progress": true, "-o": true, "--output": true,
	"--json": false, "-j": false, "-q": false, "--quiet": false, "-s": false, "--silent": false,
	"-v": false, "-vv": false, "-vvv": false, "--debug": false, "-d": false, "--interactive": false,
	"-i": false, "-E": false, "--no-exit": false, "-c": true, "--cloud": false, "-e": false,
	"--allow-llm": true, "--workdir": true, "--help": false, "-h": false,
}

// Check verifies one `dagger call` command line against the schema: every
// function in the chain exists on the object the previous one returned,
// every flag is an argument of its function, required arguments are given.
// A call to another module (-m pointing elsewhere) is not checked.
func (s *Schema) Check(c Call) error {
	words := c.Words
	i := indexOf(words, "call")
	if i < 0 {
		return fmt.Errorf("%q is not a dagger call", c)
	}
	// Global flags before "call".
	for j := 1; j < i; j++ {
		if ref, ok := modRef(words[:i], j); ok && !s.isSelf(ref) {
			return nil // another module
		}
	}
	rest := words[i+1:]
	obj := s.Objects[s.Root]
	fn := s.Constructor
	given := map[string]bool{}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("line %d: %s: %s", c.Line, c, fmt.Sprintf(format, args...))
	}
	finish := func() error {
		for _, a := range fn.Args {
			if a.Required && !given[a.Flag] {
				return fail("function %q needs --%s", fn.Name, a.Flag)
			}
		}
		return nil
	}
	for k := 0; k < len(rest); k++ {
		w := rest[k]
		if strings.HasPrefix(w, "-") {
			name, _, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
			if takes, isCLI := cliFlags[strings.SplitN(w, "=", 2)[0]]; isCLI {
				if ref, ok := modRef(rest, k); ok && !s.isSelf(ref) {
					return nil // another module
				}
				if takes && !hasValue {
					k++
				}
				continue
			}
			a, ok := fn.Args[name]
			if !ok {
				return fail("function %q has no argument --%s (it has: %s)", fn.Name, name, flagList(fn))
			}
			given[name] = true
			if !hasValue {
				if a.Bool {
					if k+1 < len(rest) && (rest[k+1] == "true" || rest[k+1] == "false") {
						k++
					}
					continue
				}
				if k+1 >= len(rest) {
					return fail("argument --%s of %q has no value", name, fn.Name)
				}
				k++
			}
			continue
		}
		// A function name: the previous function ends here.
		if err := finish(); err != nil {
			return err
		}
		if obj == nil {
			return fail("%q follows %q, which returns no object", w, fn.Name)
		}
		next, ok := obj.Functions[w]
		if !ok {
			return fail("object %s has no function %q (it has: %s)", obj.Name, w, funcList(obj))
		}
		fn = next
		given = map[string]bool{}
		obj = nil
		if next.Result != "" {
			obj = s.Objects[next.Result]
		}
	}
	return finish()
}

// modRef returns the module reference of a -m/--mod flag at words[j]
// ("-m ref" or "-m=ref"), and whether words[j] is such a flag.
func modRef(words []string, j int) (string, bool) {
	w := words[j]
	if w == "-m" || w == "--mod" {
		if j+1 < len(words) {
			return words[j+1], true
		}
		return "", true
	}
	if strings.HasPrefix(w, "-m=") || strings.HasPrefix(w, "--mod=") {
		_, ref, _ := strings.Cut(w, "=")
		return ref, true
	}
	return "", false
}

func (s *Schema) isSelf(ref string) bool {
	ref = strings.Trim(ref, `"'`)
	base, _, _ := strings.Cut(ref, "@")
	for _, self := range s.Self {
		if base == self {
			return true
		}
	}
	return false
}

func flagList(f *Function) string {
	var names []string
	for n := range f.Args {
		names = append(names, "--"+n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func funcList(o *Object) string {
	var names []string
	for n := range o.Functions {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
