package main

import (
	"fmt"
	"strconv"

	"dagger/voice/internal/dagger"
)

// gateReports is the part of a gate's reports directory that every gate
// (tests, evals) has: its output, its summary line and its exit code, so a
// CI job can keep the reports of a failed run and then fail on exit-code.
func gateReports(output, summary string, exitCode int) *dagger.Directory {
	return dag.Directory().
		WithNewFile("output.txt", output).
		WithNewFile("summary.txt", summary+"\n").
		WithNewFile("exit-code", strconv.Itoa(exitCode)+"\n")
}

// gateCheck fails, with the gate's output, unless its exit code is 0; on
// success it returns the summary line.
func gateCheck(what, output, summary string, exitCode int) (string, error) {
	if exitCode != 0 {
		return "", fmt.Errorf("%s failed (exit code %d): %s\n%s", what, exitCode, summary, output)
	}
	return summary, nil
}
