//go:build race

package main

// raceEnabled: the test binary runs with -race, so the binary under test is
// built with -race too (reusing the race-compiled packages of this test
// build instead of compiling every dependency a second time).
const raceEnabled = true
