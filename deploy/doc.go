// Package deploy holds the tests of the Kubernetes manifests in this
// directory: every kustomization builds with kustomize and the way Flux's
// kustomize-controller builds it, every object decodes strictly into its
// Kubernetes, Flux or Flux Operator API type, and, on a real kube-apiserver
// and etcd built by .ci/setup (internal/controlplane), every manifest is
// applied the way kustomize-controller applies it (internal/fluxapply),
// including end-to-end GitOps runs of ci/gitops's bump and review apps.
package deploy
