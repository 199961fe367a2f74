package suite

import (
	"bytes"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

// WriteScripts stores recorded model sides into a case file: for every case
// named in scripts, each turn's `model` key is replaced by the recorded
// responses (turns the conversation never reached lose their script, so the
// case becomes unscripted and is skipped, never passed). Comments and the
// rest of the file are kept; the file is re-indented with two spaces.
func WriteScripts(file string, scripts map[string][][]Response) error {
	return editFile(file, func(name string, cn *yaml.Node) error {
		turns, ok := scripts[name]
		if !ok {
			return nil
		}
		turnNodes, err := turnsOf(name, cn)
		if err != nil {
			return err
		}
		for i, tn := range turnNodes {
			var responses []Response
			if i < len(turns) {
				responses = turns[i]
			}
			if err := setModel(tn, responses); err != nil {
				return fmt.Errorf("case %s turn %d: %w", name, i+1, err)
			}
		}
		return nil
	})
}

// turnsOf returns the turn nodes of the case node cn.
func turnsOf(name string, cn *yaml.Node) ([]*yaml.Node, error) {
	turnList := value(cn, "turns")
	if turnList == nil || turnList.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("case %s has no turns list", name)
	}
	return turnList.Content, nil
}

func value(mapping *yaml.Node, key string) *yaml.Node {
	if mapping.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(mapping.Content); i += 2 {
		if mapping.Content[i].Value == key {
			return mapping.Content[i+1]
		}
	}
	return nil
}

func setModel(turn *yaml.Node, responses []Response) error {
	if turn.Kind != yaml.MappingNode {
		return fmt.Errorf("turn is not a mapping")
	}
	return setResponses(turn, "model", responses)
}

// setResponses replaces key of mapping with responses, put last; no
// responses drop the key.
func setResponses(mapping *yaml.Node, key string, responses []Response) error {
	for i := 0; i+1 < len(mapping.Content); i += 2 {
		if mapping.Content[i].Value == key {
			mapping.Content = append(mapping.Content[:i], mapping.Content[i+2:]...)
			break
		}
	}
	if len(responses) == 0 {
		return nil
	}
	var n yaml.Node
	if err := n.Encode(responses); err != nil {
		return err
	}
	mapping.Content = append(mapping.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, &n)
	return nil
}

// Keyed is a case's recording re-keyed: a key per turn and response, and
// the recording block to store.
type Keyed struct {
	Keys      [][]string
	Greeting  []string
	Recording Recording
}

// WriteKeys stores re-keyed recordings into a case file: every scripted
// response of the named cases gets its `key`, and the case its
// `recording` block. Comments and the rest of the file are kept; the file
// is re-indented with two spaces.
func WriteKeys(file string, keyed map[string]Keyed) error {
	return editFile(file, func(name string, cn *yaml.Node) error {
		k, ok := keyed[name]
		if !ok {
			return nil
		}
		turnNodes, err := turnsOf(name, cn)
		if err != nil {
			return err
		}
		for i, tn := range turnNodes {
			model := value(tn, "model")
			if model == nil {
				continue
			}
			for j, rn := range model.Content {
				if i >= len(k.Keys) || j >= len(k.Keys[i]) || k.Keys[i][j] == "" {
					return fmt.Errorf("case %s: turn %d response %d has no key", name, i+1, j+1)
				}
				setKey(rn, "key", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k.Keys[i][j]})
			}
		}
		if g := value(cn, "greeting"); g != nil {
			for j, rn := range g.Content {
				if j >= len(k.Greeting) || k.Greeting[j] == "" {
					return fmt.Errorf("case %s: greeting response %d has no key", name, j+1)
				}
				setKey(rn, "key", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k.Greeting[j]})
			}
		}
		var rec yaml.Node
		if err := rec.Encode(k.Recording); err != nil {
			return err
		}
		setKey(cn, "recording", &rec)
		return nil
	})
}

func setKey(mapping *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(mapping.Content); i += 2 {
		if mapping.Content[i].Value == key {
			mapping.Content[i+1] = v
			return
		}
	}
	mapping.Content = append(mapping.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

// editFile applies edit to every case mapping of file (with its name),
// checks the result loads, and replaces the file.
func editFile(file string, edit func(name string, cn *yaml.Node) error) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("suite: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("suite: %s: %w", file, err)
	}
	if len(root.Content) != 1 {
		return fmt.Errorf("suite: %s: not a case file", file)
	}
	var caseNodes []*yaml.Node
	switch top := root.Content[0]; top.Kind {
	case yaml.MappingNode:
		caseNodes = []*yaml.Node{top}
	case yaml.SequenceNode:
		caseNodes = top.Content
	}
	for _, cn := range caseNodes {
		name := value(cn, "name")
		if name == nil {
			continue
		}
		if err := edit(name.Value, cn); err != nil {
			return fmt.Errorf("suite: %s: %w", file, err)
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return fmt.Errorf("suite: encode %s: %w", file, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("suite: encode %s: %w", file, err)
	}
	if _, err := Parse(file, buf.Bytes()); err != nil {
		return fmt.Errorf("suite: the updated file would not load: %w", err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("suite: %w", err)
	}
	return os.WriteFile(file, buf.Bytes(), fi.Mode().Perm())
}

// WriteGreetings stores recorded greetings (the responses before the
// caller speaks) into a case file; a case with none loses its greeting.
func WriteGreetings(file string, greetings map[string][]Response) error {
	return editFile(file, func(name string, cn *yaml.Node) error {
		g, ok := greetings[name]
		if !ok {
			return nil
		}
		return setResponses(cn, "greeting", g)
	})
}
