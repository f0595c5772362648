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
	utiljson "k8s.io/apimachinery/pkg/util/json"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// TestReclaimCEL runs the CRD's CEL rules for spec.reclaim as the API server
// does (its own validator, on the generated CRD), without a cluster: they
// compile, accept what is valid and refuse the rest with their messages.
// test/e2e's TestInvalidScalersRejected checks the same on a real server.
func TestReclaimCEL(t *testing.T) {
	v, s := crdValidator(t)
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
			checkCEL(t, v, s, "reclaim: "+tt.reclaim, tt.want)
		})
	}
}

// TestHeadroomSlotsCountCEL: a slot's count is a number from 1 to 10000 or
// "auto", and every manifest written before "auto" existed stays valid.
func TestHeadroomSlotsCountCEL(t *testing.T) {
	v, s := crdValidator(t)
	const msg = `must be a number of pods from 1 to 10000, or "auto"`
	tests := []struct{ count, want string }{
		{`1`, ""},
		{`4`, ""},
		{`10000`, ""},
		{`auto`, ""},
		{`"auto"`, ""},
		{`0`, "spec.headroomSlots[0].count: Invalid value: 0: " + msg},
		{`10001`, msg},
		{`-3`, msg},
		{`Auto`, msg},
		{`"4"`, msg},
	}
	for _, tt := range tests {
		t.Run(tt.count, func(t *testing.T) {
			checkCEL(t, v, s, "headroomSlots: [{requests: {cpu: 4}, count: "+tt.count+"}]", tt.want)
		})
	}
}

// crdValidator is the API server's CEL validator over the generated CRD.
func crdValidator(t *testing.T) (*cel.Validator, *structuralschema.Structural) {
	t.Helper()
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
	return cel.NewValidator(s, true, celconfig.PerCallLimit), s
}

// checkCEL validates a scaler whose spec holds field (YAML flow, after the
// required fields): no error when want is "", else one containing want.
func checkCEL(t *testing.T, v *cel.Validator, s *structuralschema.Structural, field, want string) {
	t.Helper()
	var obj map[string]any
	doc := "apiVersion: opportunist.io/v1alpha1\nkind: OpportunisticScaler\nmetadata: {name: x}\n" +
		"spec: {scaleTargetRef: {kind: Deployment, name: w}, maxReplicas: 5, " + field + "}"
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	// As the API server decodes: whole numbers as int64 (CEL's int), not float64.
	if err := utiljson.Unmarshal(js, &obj); err != nil {
		t.Fatal(err)
	}
	errs, _ := v.Validate(context.Background(), nil, s, obj, nil, celconfig.RuntimeCELCostBudget)
	got := fmt.Sprint(errs)
	switch {
	case want == "" && len(errs) > 0:
		t.Errorf("refused: %s", got)
	case want != "" && !strings.Contains(got, want):
		t.Errorf("errors %s, want one containing %q", got, want)
	}
}
