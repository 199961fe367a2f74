// Package agent is the voice agent service that this repository's pipeline
// tests, evaluates, builds and deploys.
package agent
