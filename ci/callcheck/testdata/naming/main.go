// Package main is a module whose CLI names one concept twice and gives
// one name two meanings, to test callcheck's NamingProblems.
package main

// Shop is the main object.
type Shop struct{}

// Build builds a commit.
func (s *Shop) Build(
	// Full commit SHA, e.g. $CI_COMMIT_SHA.
	commit string,
	// Pipeline URL, e.g. $CI_PIPELINE_URL.
	pipelineUrl string,
) string {
	return commit + pipelineUrl
}

// Ship records where a build came from.
func (s *Shop) Ship(
	// Source commit, recorded as a trailer (e.g. $CI_COMMIT_SHA).
	sourceCommit string,
	// $CI_PIPELINE_URL, recorded in the trailer.
	pipelineUrl string,
) string {
	return sourceCommit + pipelineUrl
}

// Refund refunds a merge request.
func (s *Shop) Refund(
	// Merge request IID.
	mr int,
) int {
	return mr
}

// Note comments on a merge request.
func (s *Shop) Note(
	// Merge request reference.
	mr string,
	// Registry host, e.g. $CI_REGISTRY_IMAGE/cache: part of an address is not the concept.
	cache string,
	// Image, e.g. $CI_REGISTRY_IMAGE.
	image string,
	// Review image, e.g. registry.example.com/review:$CI_COMMIT_SHA.
	reviewImage string,
) string {
	return mr + cache + image + reviewImage
}
