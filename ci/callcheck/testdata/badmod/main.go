// Package main is a module a Dagger engine would refuse, to test callcheck.
package main

import (
	"context"
	"time"
)

// Bad is the main object.
type Bad struct {
	// Labels cannot be exposed.
	Labels map[string]string
	// URL becomes "url", like the Url method.
	URL string
	// ID clashes with the engine's own id.
	ID string
}

// Url clashes with the field URL once both are kebab-cased.
func (b *Bad) Url() string { return "" }

// Wait takes a duration.
func (b *Bad) Wait(
	// How long.
	d time.Duration,
) error {
	return nil
}

// Defaults has defaults of the wrong shape.
func (b *Bad) Defaults(
	// Not JSON.
	//
	// +default=abc
	word string,
	// Not an integer.
	//
	// +default="3"
	count int,
	// Fine.
	//
	// +default=["a", "b"]
	names []string,
	// Wrong element type.
	//
	// +default=[1, 2]
	tags []string,
	// Not a directory.
	//
	// +defaultPath="/"
	path string,
) string {
	return ""
}

// Late takes the context second.
func (b *Bad) Late(
	// A word.
	word string,
	ctx context.Context,
) {
}

// Many returns too much.
func (b *Bad) Many() (string, int, error) { return "", 0, nil }

func main() {}
