// Command etcd is etcd's own main (go.etcd.io/etcd/server/v3/main.go) in a
// wrapper module: `go install go.etcd.io/etcd/server/v3@...` is refused because
// that module's go.mod has replace directives.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
