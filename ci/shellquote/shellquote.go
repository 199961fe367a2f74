// Package shellquote quotes arguments for a POSIX shell, for the scripts the
// pipeline runs with `sh -c` inside its containers.
package shellquote

import (
	"regexp"
	"strings"
)

var safeWord = regexp.MustCompile(`^[A-Za-z0-9_./=:@%+,-]+$`)

// Quote returns s as one shell word: unchanged when it holds only safe
// characters, otherwise in single quotes.
func Quote(s string) string {
	if safeWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// Join quotes every argument and joins them with spaces.
func Join(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}
