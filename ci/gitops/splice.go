package gitops

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// A kyaml round trip keeps comments and key order but drops blank lines,
// normalises the spacing before comments and picks one sequence indentation
// for the whole file. To leave the rest of the file byte for byte as it was,
// the edits decided on the kyaml tree are also applied as line splices at the
// positions the parser recorded; the splice result is used only when it
// parses to exactly the kyaml result (otherwise the kyaml output is used).

type spliceOp struct {
	kind  int // opReplace, opDelete, opInsert
	line  int // 1-based line the op applies to (insert: after this line)
	col   int // 1-based column of the scalar (opReplace)
	style yaml.Style
	value string // new scalar (opReplace) or full text to insert (opInsert)
}

const (
	opReplace = iota
	opDelete
	opInsert
)

// splicer collects line splices; a failed precondition marks it unusable.
type splicer struct {
	ops      []spliceOp
	bad      bool
	itemLine int // first line of the list item a new item is modelled on
}

func (s *splicer) fail() { s.bad = true }

// replaceScalar records the replacement of an existing single-line scalar.
func (s *splicer) replaceScalar(n *yaml.Node, value string) {
	if n.Line == 0 || n.Kind != yaml.ScalarNode || strings.Contains(n.Value, "\n") {
		s.fail()
		return
	}
	s.ops = append(s.ops, spliceOp{kind: opReplace, line: n.Line, col: n.Column, style: n.Style, value: value})
}

// deleteField records the removal of "key: value" lines of a mapping.
func (s *splicer) deleteField(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Value != key {
			continue
		}
		if i == 0 || k.Line == 0 || v.Line != k.Line || v.Kind != yaml.ScalarNode {
			// The first key of a list item shares its line with "- ".
			s.fail()
			return
		}
		s.ops = append(s.ops, spliceOp{kind: opDelete, line: k.Line})
	}
}

// lastLine is the last line of a mapping of single-line scalars, or 0.
func lastLine(m *yaml.Node) int {
	last := 0
	for _, c := range m.Content {
		if c.Kind != yaml.ScalarNode || c.Line == 0 {
			return 0
		}
		last = max(last, c.Line)
	}
	return last
}

// insertFields records new "key: value" lines at the end of a mapping.
func (s *splicer) insertFields(m *yaml.Node, deleted map[string]bool, kv [][2]string) {
	anchor := 0
	for i := 0; i+1 < len(m.Content); i += 2 {
		if deleted[m.Content[i].Value] {
			continue
		}
		if m.Content[i+1].Kind != yaml.ScalarNode || m.Content[i+1].Line == 0 {
			s.fail()
			return
		}
		anchor = max(anchor, m.Content[i+1].Line)
	}
	if anchor == 0 || len(m.Content) == 0 {
		s.fail()
		return
	}
	indent := strings.Repeat(" ", m.Content[0].Column-1)
	var b strings.Builder
	for _, f := range kv {
		fmt.Fprintf(&b, "%s%s: %s\n", indent, f[0], f[1])
	}
	s.ops = append(s.ops, spliceOp{kind: opInsert, line: anchor, value: b.String()})
}

// apply runs the splices on src; ok is false when a precondition failed.
func (s *splicer) apply(src []byte) ([]byte, bool) {
	if s.bad {
		return nil, false
	}
	lines := strings.SplitAfter(string(src), "\n")
	byLine := map[int][]spliceOp{}
	for _, op := range s.ops {
		if op.line < 1 || op.line > len(lines) {
			return nil, false
		}
		byLine[op.line] = append(byLine[op.line], op)
	}
	var out strings.Builder
	for i, text := range lines {
		deleted := false
		var inserts []string
		for _, op := range byLine[i+1] {
			switch op.kind {
			case opReplace:
				t, ok := replaceToken(text, op)
				if !ok {
					return nil, false
				}
				text = t
			case opDelete:
				deleted = true
			case opInsert:
				ins := op.value
				if op.style == itemMarker {
					var ok bool
					if ins, ok = s.itemText(lines, op); !ok {
						return nil, false
					}
				}
				inserts = append(inserts, ins)
			}
		}
		if !deleted {
			out.WriteString(text)
		}
		if len(inserts) > 0 && !strings.HasSuffix(text, "\n") {
			if deleted {
				return nil, false
			}
			out.WriteString("\n")
		}
		for _, ins := range inserts {
			out.WriteString(ins)
		}
	}
	return []byte(out.String()), true
}

// replaceToken replaces the scalar token starting at op.col on one line.
func replaceToken(line string, op spliceOp) (string, bool) {
	start := op.col - 1
	if start < 0 || start >= len(line) || !isASCII(line[:start]) {
		return "", false
	}
	rest := line[start:]
	var end int
	switch op.style {
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		q := rest[0]
		j := strings.IndexByte(rest[1:], q)
		if j < 0 || strings.ContainsRune(rest[1:j+1], '\\') || strings.ContainsRune(op.value, rune(q)) {
			return "", false
		}
		return line[:start] + string(q) + op.value + string(q) + rest[j+2:], true
	case 0:
		end = len(rest)
		if k := strings.Index(rest, " #"); k >= 0 {
			end = k
		}
		end = len(strings.TrimRight(rest[:end], " \t\r\n"))
	default:
		return "", false
	}
	if needsQuotes(op.value) {
		return "", false
	}
	return line[:start] + op.value + rest[end:], true
}

func needsQuotes(v string) bool {
	return v == "" || strings.ContainsAny(v, "#\"' \t{}[],&*!|>%@`") || strings.Contains(v, ": ")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// sameDocument reports whether two YAML texts parse to the same tree
// (comments included, whitespace ignored).
func sameDocument(a, b []byte) bool {
	na, err := yaml.Parse(string(a))
	if err != nil {
		return false
	}
	nb, err := yaml.Parse(string(b))
	if err != nil {
		return false
	}
	sa, err := na.String()
	if err != nil {
		return false
	}
	sb, err := nb.String()
	return err == nil && sa == sb
}

// appendEntry records a new list item after the last one, indented like it.
func (s *splicer) appendEntry(elems []*yaml.RNode, kv [][2]string) {
	if len(elems) == 0 {
		s.fail()
		return
	}
	last := elems[len(elems)-1].YNode()
	end := lastLine(last)
	if last.Kind != yaml.MappingNode || end == 0 {
		s.fail()
		return
	}
	// The dash prefix ("  - ") is recorded from the item's first line when
	// the splice runs; here only its key column is known.
	s.ops = append(s.ops, spliceOp{kind: opInsert, line: end, col: last.Content[0].Column, style: itemMarker, value: encodeItem(kv)})
	s.itemLine = last.Content[0].Line
}

const itemMarker yaml.Style = 1 << 10

func encodeItem(kv [][2]string) string {
	var b strings.Builder
	for _, f := range kv {
		fmt.Fprintf(&b, "%s: %s\n", f[0], f[1])
	}
	return b.String()
}

// itemText indents a new list item like the item on s.itemLine.
func (s *splicer) itemText(lines []string, op spliceOp) (string, bool) {
	if s.itemLine < 1 || s.itemLine > len(lines) || op.col-1 > len(lines[s.itemLine-1]) {
		return "", false
	}
	prefix := lines[s.itemLine-1][:op.col-1]
	if strings.Count(prefix, "-") != 1 || strings.Trim(prefix, " -") != "" {
		return "", false
	}
	indent := strings.Repeat(" ", op.col-1)
	var b strings.Builder
	for i, l := range strings.SplitAfter(strings.TrimSuffix(op.value, "\n"), "\n") {
		if i == 0 {
			b.WriteString(prefix)
		} else {
			b.WriteString(indent)
		}
		b.WriteString(l)
	}
	b.WriteString("\n")
	return b.String(), true
}
