package callcheck

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// reservedKeys are top-level keys of .gitlab-ci.yml that are not jobs.
var reservedKeys = map[string]bool{
	"stages": true, "variables": true, "workflow": true, "default": true, "include": true,
	"image": true, "services": true, "before_script": true, "after_script": true, "cache": true,
	"spec": true,
}

// Job is the part of a GitLab CI job that the checks read.
type Job struct {
	Name    string
	Hidden  bool
	Scripts []string
	OnStop  string
}

// Pipeline is a parsed .gitlab-ci.yml.
type Pipeline struct {
	Jobs map[string]*Job
}

// ParsePipeline reads the jobs of a .gitlab-ci.yml document.
func ParsePipeline(data []byte) (*Pipeline, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse .gitlab-ci.yml: %w", err)
	}
	p := &Pipeline{Jobs: map[string]*Job{}}
	for name, v := range doc {
		if reservedKeys[name] {
			continue
		}
		body, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("parse .gitlab-ci.yml: job %q is not a mapping", name)
		}
		job := &Job{Name: name, Hidden: strings.HasPrefix(name, ".")}
		for _, key := range []string{"before_script", "script", "after_script"} {
			switch s := body[key].(type) {
			case string:
				job.Scripts = append(job.Scripts, s)
			case []any:
				for _, line := range s {
					if str, ok := line.(string); ok {
						job.Scripts = append(job.Scripts, str)
					}
				}
			}
		}
		if env, ok := body["environment"].(map[string]any); ok {
			if stop, ok := env["on_stop"].(string); ok {
				job.OnStop = stop
			}
		}
		p.Jobs[name] = job
	}
	return p, nil
}

// Problems lists every broken reference in the pipeline: an on_stop naming a
// job that does not exist, and `dagger call` lines that do not match the
// module's schema.
func (p *Pipeline) Problems(s *Schema) []string {
	var out []string
	names := make([]string, 0, len(p.Jobs))
	for n := range p.Jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		job := p.Jobs[n]
		if job.OnStop != "" {
			if stop, ok := p.Jobs[job.OnStop]; !ok || stop.Hidden {
				out = append(out, fmt.Sprintf("job %s: environment.on_stop names %q, which is not a job", n, job.OnStop))
			}
		}
		for _, script := range job.Scripts {
			calls, err := Calls(script)
			if err != nil {
				out = append(out, fmt.Sprintf("job %s: %v", n, err))
				continue
			}
			for _, c := range calls {
				if err := s.Check(c); err != nil {
					out = append(out, fmt.Sprintf("job %s: %v", n, err))
				}
			}
		}
	}
	return out
}

// checkableSpan tells an inline command (with flags, no placeholders in
// place of functions) from prose naming a function, like `dagger call bump`
// or `dagger call build ... publish`.
func checkableSpan(span string) bool {
	if strings.ContainsAny(span, "<>") || !strings.Contains(span, " --") {
		return false
	}
	words := strings.Fields(span)
	for i, w := range words {
		if w == "..." && (i == 0 || !strings.HasPrefix(words[i-1], "-") || strings.Contains(words[i-1], "=")) {
			return false
		}
	}
	return true
}

// inlineCall matches an inline code span holding a dagger command.
var inlineCall = regexp.MustCompile("`(dagger [^`]*\\bcall\\b[^`]*)`")

// MarkdownCalls returns the `dagger call` commands in the fenced shell code
// blocks of a Markdown document and in its inline code spans that give
// flags (see checkableSpan), with their line numbers in the document.
func MarkdownCalls(doc string) ([]Call, error) {
	var out []Call
	lines := strings.Split(doc, "\n")
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(fence, "```") {
			for _, m := range inlineCall.FindAllStringSubmatch(lines[i], -1) {
				if !checkableSpan(m[1]) {
					continue
				}
				calls, err := Calls(m[1])
				if err != nil {
					return nil, fmt.Errorf("line %d: %w", i+1, err)
				}
				for _, c := range calls {
					c.Line = i + 1
					out = append(out, c)
				}
			}
			continue
		}
		lang := strings.TrimPrefix(fence, "```")
		start := i + 1
		j := start
		for j < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[j]), "```") {
			j++
		}
		if lang == "sh" || lang == "bash" || lang == "shell" || lang == "console" {
			block := strings.Join(lines[start:j], "\n")
			if lang == "console" {
				block = stripPrompts(block)
			}
			calls, err := Calls(block)
			if err != nil {
				return nil, fmt.Errorf("code block at line %d: %w", start, err)
			}
			for _, c := range calls {
				c.Line += start
				out = append(out, c)
			}
		}
		i = j
	}
	return out, nil
}

func stripPrompts(block string) string {
	var keep []string
	for _, l := range strings.Split(block, "\n") {
		if strings.HasPrefix(l, "$ ") {
			keep = append(keep, strings.TrimPrefix(l, "$ "))
		} else {
			keep = append(keep, "")
		}
	}
	return strings.Join(keep, "\n")
}
