package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHello(t *testing.T) {
	srv := httptest.NewServer(handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/hello/ada")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if got, want := string(body), "hello, ada\n"; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
}

func TestHealthzReportsCommit(t *testing.T) {
	commit = "0123456789abcdef"
	srv := httptest.NewServer(handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if want := `"commit":"0123456789abcdef"`; !strings.Contains(string(body), want) {
		t.Fatalf("healthz %s lacks %s", body, want)
	}
}
