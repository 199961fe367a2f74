// Command agent is a stand-in for the voice agent used by the build tests:
// a small main package with a dependency and the same ldflags variables.
package main

import (
	"fmt"

	"github.com/google/uuid"
)

var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	fmt.Println("voice-agent", version, commit, uuid.NewSHA1(uuid.NameSpaceURL, []byte(commit)))
}
