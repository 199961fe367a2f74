// Command greeter is a tiny HTTP service: the example consumer of the voice
// pipeline module. Its .gitlab-ci.yml calls the module with `dagger -m`.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"
)

// Stamped by the pipeline's build step (-ldflags -X).
var (
	version = "dev"
	commit  = "unknown"
)

func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ok","version":%q,"commit":%q}`, version, commit)
	})
	mux.HandleFunc("GET /hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s\n", r.PathValue("name"))
	})
	return mux
}

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	flag.Parse()
	srv := &http.Server{Addr: *addr, Handler: handler(), ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
