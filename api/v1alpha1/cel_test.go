package v1alpha1

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// TestReclaimCEL runs the CRD's CEL rules for spec.reclaim as the API server
// does (its own validator, on the generated CRD), without a cluster: they
// compile, accept what is valid and refuse the rest with their messages.
// test/e2e's TestInvalidScalersRejected checks the same on a real server.
func TestReclaimCEL(t *testing.T) {
	data, err := os.ReadFile("../../config/crd/opportunist.io_opportunisticscalers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	var in apiextensions.CustomResourceValidation
	if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(crd.Spec.Versions[0].Schema, &in, nil); err != nil {
		t.Fatal(err)
	}
	s, err := structuralschema.NewStructural(in.OpenAPIV3Schema)
	if err != nil {
		t.Fatal(err)
	}
	v := cel.NewValidator(s, true, celconfig.PerCallLimit)
	tests := []struct{ reclaim, want string }{
		{`{enabled: true}`, ""},
		{`{enabled: true, theta: "0.75", resources: [cpu, memory], margin: {cpu: 500m, memory: "5%"}}`, ""},
		{`{enabled: true, theta: ".5"}`, ""},
		{`{enabled: true, theta: "1"}`, ""},
		{`{enabled: true, resources: [memory], margin: {memory: 1Gi}}`, ""},
		{`{enabled: true, theta: "1.5"}`, `spec.reclaim.theta: Invalid value: "1.5": theta must be a decimal above 0 and at most 1, e.g. "0.75"`},
		{`{enabled: true, theta: "0.0"}`, "theta must be a decimal above 0"},
		{`{enabled: true, theta: "1."}`, "theta must be a decimal above 0"},
		{`{enabled: true, resources: [cpu, cpu]}`, "spec.reclaim.resources: Invalid value: resources must not repeat"},
		{`{enabled: true, margin: {memory: 1Gi}}`, "spec.reclaim: Invalid value: margin may name only the reclaimed resources"},
	}
	for _, tt := range tests {
		t.Run(tt.reclaim, func(t *testing.T) {
			var obj map[string]any
			doc := "apiVersion: opportunist.io/v1alpha1\nkind: OpportunisticScaler\nmetadata: {name: x}\n" +
				"spec: {scaleTargetRef: {kind: Deployment, name: w}, maxReplicas: 5, reclaim: " + tt.reclaim + "}"
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				t.Fatal(err)
			}
			errs, _ := v.Validate(context.Background(), nil, s, obj, nil, celconfig.RuntimeCELCostBudget)
			got := fmt.Sprint(errs)
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Errorf("refused: %s", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Errorf("errors %s, want one containing %q", got, tt.want)
			}
		})
	}
}
