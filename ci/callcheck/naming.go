package callcheck

import (
	"fmt"
	"go/types"
	"regexp"
	"sort"
	"strings"
)

// ciVariable finds a GitLab predefined variable given as an argument's
// whole example value ("e.g. $CI_COMMIT_SHA", "(e.g. $CI_PIPELINE_URL)"):
// the variable names the concept the argument stands for. A variable inside
// a longer value ("registry.example.com/review:$CI_COMMIT_SHA") does not.
var ciVariable = regexp.MustCompile(`(?:^|[\s(])\$\{?((?:CI|GITLAB)_[A-Z0-9_]+)\}?(?:[\s).,;]|$)`)

// NamingProblems reports where the module's CLI has two names for one
// concept or one name for two:
//
//   - a flag whose Go type differs between the functions that take it;
//   - two flags whose docs give the same GitLab CI variable as an example
//     value (both are $CI_COMMIT_SHA: they are one concept and need one
//     name).
//
// Only the module's own objects and constructor count, not core types.
func (s *Schema) NamingProblems() []string {
	type use struct {
		where string
		arg   *Arg
	}
	uses := map[string][]use{}
	add := func(where string, f *Function) {
		for _, a := range f.Params {
			uses[a.Flag] = append(uses[a.Flag], use{where, a})
		}
	}
	if s.Constructor != nil {
		add("(constructor)", s.Constructor)
	}
	for name, o := range s.Objects {
		if o.Core {
			continue
		}
		for fn, f := range o.Functions {
			add(name+"."+fn, f)
		}
	}
	var problems []string
	byVariable := map[string]map[string][]string{} // variable -> flag -> where
	for flag, us := range uses {
		sort.Slice(us, func(i, j int) bool { return us[i].where < us[j].where })
		first := us[0]
		for _, u := range us[1:] {
			if !types.Identical(u.arg.Type, first.arg.Type) {
				problems = append(problems, fmt.Sprintf("--%s is %s in %s but %s in %s: one name, one meaning",
					flag, types.TypeString(first.arg.Type, relative), first.where, types.TypeString(u.arg.Type, relative), u.where))
			}
		}
		for _, u := range us {
			for _, m := range ciVariable.FindAllStringSubmatch(u.arg.Doc, -1) {
				if byVariable[m[1]] == nil {
					byVariable[m[1]] = map[string][]string{}
				}
				byVariable[m[1]][flag] = append(byVariable[m[1]][flag], u.where)
			}
		}
	}
	for v, flags := range byVariable {
		if len(flags) < 2 {
			continue
		}
		var names []string
		for f, where := range flags {
			names = append(names, fmt.Sprintf("--%s (%s)", f, strings.Join(where, ", ")))
		}
		sort.Strings(names)
		problems = append(problems, fmt.Sprintf("$%s is the example of %s: one concept, give it one name", v, strings.Join(names, " and ")))
	}
	sort.Strings(problems)
	return problems
}

// relative prints types without their package path.
func relative(p *types.Package) string { return p.Name() }
