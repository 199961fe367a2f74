// Package deploy holds the tests of the Kubernetes manifests in this
// directory: every kustomization builds with kustomize and the way Flux's
// kustomize-controller builds it, and every object decodes strictly into
// its Kubernetes or Flux API type.
package deploy
