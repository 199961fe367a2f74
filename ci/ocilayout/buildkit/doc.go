// Package buildkit checks ocilayout.Normalize against real BuildKit, the
// build engine inside Dagger's: two engines with empty caches (separate
// buildkitd processes and state directories, started at different wall
// clocks) build the image the module's build step builds (the base image
// by digest, /app/voice-agent copied in, /data owned by the non-root user),
// for linux/amd64 and linux/arm64, and export it as an OCI layout tarball.
// The raw exports differ in the layer the build adds, as they did on a
// real Dagger engine; once normalized they are byte-identical.
//
// It is its own Go module so that BuildKit's client stays out of the
// Dagger module. The daemon is built by .ci/buildkit/build (called by
// .ci/setup) into .ci/tools/buildkit; the test needs root (buildkitd
// mounts its snapshots) and runc on the PATH for the OCI worker.
package buildkit
