package bindings

import (
	"strings"
	"unicode"
)

// lintName applies golint's initialism rule, as the Dagger Go generator
// does (its lint_name.go is golint's lintName with three more
// initialisms): FooId -> FooID, SourceUrl -> SourceURL.
func lintName(name string) string {
	if name == "_" {
		return name
	}
	allLower := true
	for _, r := range name {
		if !unicode.IsLower(r) {
			allLower = false
			break
		}
	}
	if allLower {
		return name
	}
	runes := []rune(name)
	w, i := 0, 0 // start of the word, scan position
	for i+1 <= len(runes) {
		eow := false
		switch {
		case i+1 == len(runes):
			eow = true
		case runes[i+1] == '_':
			eow = true
			n := 1
			for i+n+1 < len(runes) && runes[i+n+1] == '_' {
				n++
			}
			// Keep one underscore between two digits.
			if i+n+1 < len(runes) && unicode.IsDigit(runes[i]) && unicode.IsDigit(runes[i+n+1]) {
				n--
			}
			copy(runes[i+1:], runes[i+n+1:])
			runes = runes[:len(runes)-n]
		case unicode.IsLower(runes[i]) && !unicode.IsLower(runes[i+1]):
			eow = true
		}
		i++
		if !eow {
			continue
		}
		word := string(runes[w:i])
		if u := strings.ToUpper(word); commonInitialisms[u] {
			if w == 0 && unicode.IsLower(runes[w]) {
				u = strings.ToLower(u)
			}
			copy(runes[w:], []rune(u))
		} else if w > 0 && strings.ToLower(word) == word {
			runes[w] = unicode.ToUpper(runes[w])
		}
		w = i
	}
	return string(runes)
}

var commonInitialisms = map[string]bool{
	"ACL": true, "API": true, "ASCII": true, "CPU": true, "CSS": true, "DNS": true,
	"EOF": true, "GUID": true, "HTML": true, "HTTP": true, "HTTPS": true, "ID": true,
	"IP": true, "JSON": true, "LHS": true, "QPS": true, "RAM": true, "RHS": true,
	"RPC": true, "SLA": true, "SMTP": true, "SQL": true, "SSH": true, "TCP": true,
	"TLS": true, "TTL": true, "UDP": true, "UI": true, "UID": true, "UUID": true,
	"URI": true, "URL": true, "UTF8": true, "VM": true, "XML": true, "XMPP": true,
	"XSRF": true, "XSS": true,
	// Added by Dagger.
	"FS": true, "SDK": true, "LLM": true,
}
