package schedule

import (
	"crypto/rand"
	"encoding/hex"
)

// newID returns prefix_ followed by 12 random hex digits.
func newID(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return prefix + "_" + hex.EncodeToString(b[:])
}
