// Package resourceset renders a Flux Operator ResourceSet's
// resourcesTemplate for one set of inputs, as the operator does, so tests
// can apply what the operator would apply.
//
// The rendering follows flux-operator v0.58/v0.59
// internal/builder/resourceset.go (newTemplate, BuildResourcesFromYAML):
// text/template with "<<" ">>" delimiters, the inputs as the function
// `inputs`, missingkey=error, then the multi-document YAML read with
// fluxcd/pkg/ssa's ReadObjects. The operator also registers slim-sprig's
// functions, slugify and toYaml; templates in this repository use none, and
// one that did fails here with "function not defined" rather than passing.
// The copyFrom annotation is resolved as the operator documents it: the
// Secret's or ConfigMap's data copied from namespace/name.
package resourceset

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"text/template"

	fluxopv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	ssautil "github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Render executes the template for inputs.
func Render(tmpl string, inputs map[string]any) ([]*unstructured.Unstructured, error) {
	tp, err := template.New("resourceset").
		Delims("<<", ">>").
		Funcs(template.FuncMap{"inputs": func() any { return inputs }}).
		Option("missingkey=error").
		Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("parse resourcesTemplate: %w", err)
	}
	var b strings.Builder
	if err := tp.Execute(&b, nil); err != nil {
		return nil, fmt.Errorf("execute resourcesTemplate: %w", err)
	}
	return ssautil.ReadObjects(bytes.NewReader([]byte(b.String())))
}

// CopyFrom fills the data of every Secret or ConfigMap that carries the
// copyFrom annotation from its source object.
func CopyFrom(ctx context.Context, c client.Client, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		src, ok := o.GetAnnotations()[fluxopv1.CopyFromAnnotation]
		if !ok {
			continue
		}
		ns, name, ok := strings.Cut(src, "/")
		if !ok {
			return fmt.Errorf("%s %s: copyFrom %q is not namespace/name", o.GetKind(), o.GetName(), src)
		}
		from := &unstructured.Unstructured{}
		from.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, from); err != nil {
			return fmt.Errorf("%s %s: copyFrom %s: %w", o.GetKind(), o.GetName(), src, err)
		}
		for _, field := range []string{"data", "stringData", "binaryData"} {
			if v, found, _ := unstructured.NestedFieldCopy(from.Object, field); found {
				if err := unstructured.SetNestedField(o.Object, v, field); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
