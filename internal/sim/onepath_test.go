package sim

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/scalerspec"
)

// headroomScenario is one node group and one opportunistic workload whose
// scaler keeps what spec says (a headroom: or targetUtilizationPercent: line).
func headroomScenario(t *testing.T, spec string) *Scenario {
	t.Helper()
	yaml := `
duration: 1m
nodeGroups:
- {name: n, count: 1, allocatable: {cpu: "8"}}
opportunistic:
- name: w
  requests: {cpu: 1m}
  maxReplicas: 1000
  ` + spec + "\n"
	sc, err := ParseScenario("headroom.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatalf("%s: %v", spec, err)
	}
	return sc
}

// controllerHeadroom is the headroom the controller keeps on one node of
// alloc milli-cores for a scaler with spec: allocatable minus the budget
// control.Decide computes for 1m replicas, with no paid pod.
func controllerHeadroom(t *testing.T, spec v1alpha1.OpportunisticScalerSpec, alloc int64) int64 {
	t.Helper()
	spec.MaxReplicas = math.MaxInt32
	obj := &v1alpha1.OpportunisticScaler{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "w"}, Spec: spec}
	target := &scalerspec.Target{Scale: &autoscalingv1.Scale{}, Shape: capacity.Shape{Requests: capacity.Resources{corev1.ResourceCPU: 1, corev1.ResourcePods: 1}}}
	in, err := scalerspec.ToControl(obj, target, control.PodCounts{}, control.History{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	room := capacity.NodeRoom{Name: "n-1", State: capacity.NodeReady,
		Allocatable: capacity.Resources{corev1.ResourceCPU: alloc, corev1.ResourcePods: 1 << 40}, Requested: capacity.Resources{}}
	d := control.Decide(time.Unix(0, 0), control.Cluster{Rooms: []capacity.NodeRoom{room}}, []control.Scaler{in})
	return alloc - d[0].Budget
}

// The simulator and the controller keep the same headroom for every
// (allocatable, percent) pair: a percent headroom (to 1e-4 %, the most the
// law counts) and a target utilisation, on pools from one core to
// thousands. The sim's side is what it measures overshoot and draws the
// fill line with; the controller's is the budget its decision reports.
// Before the sim called the controller's conversion, 297 of ~6,000 pairs
// differed (184000m at 1.1 %: 2024m vs 2025m).
func TestHeadroomAgreesWithController(t *testing.T) {
	allocs := []int64{1000, 1500, 3900, 16000, 64000, 96000, 150000, 184000, 250000, 999999, 1_000_001, 5_000_000_000}
	var percents []string
	for k := 1; k <= 1000; k++ { // 0.1 % to 100 %
		percents = append(percents, strconv.FormatFloat(float64(k)/10, 'f', -1, 64))
	}
	percents = append(percents, "0", "0.0001", "1.1", "12.3456", "33.3333", "66.6667", "99.9999")
	pairs, differ := 0, 0
	check := func(what string, w *world, spec v1alpha1.OpportunisticScalerSpec) {
		for _, alloc := range allocs {
			pairs++
			sim, ctl := w.keptFree(corev1.ResourceCPU, alloc), controllerHeadroom(t, spec, alloc)
			if sim != ctl {
				if differ++; differ <= 10 {
					t.Errorf("%s on %dm: the simulator keeps %dm, the controller %dm", what, alloc, sim, ctl)
				}
			}
		}
	}
	for _, pct := range percents {
		sc := headroomScenario(t, fmt.Sprintf("headroom: {cpu: %q}", pct+"%"))
		check("headroom "+pct+"%", newWorld(sc, false),
			v1alpha1.OpportunisticScalerSpec{Headroom: map[corev1.ResourceName]v1alpha1.HeadroomValue{corev1.ResourceCPU: v1alpha1.HeadroomValue(pct + "%")}})
	}
	for u := int32(1); u <= 100; u++ {
		sc := headroomScenario(t, fmt.Sprintf("targetUtilizationPercent: %d", u))
		check(fmt.Sprintf("targetUtilizationPercent %d", u), newWorld(sc, false), v1alpha1.OpportunisticScalerSpec{TargetUtilizationPercent: &u})
	}
	if differ > 0 {
		t.Errorf("%d of %d pairs differ", differ, pairs)
	} else {
		t.Logf("%d (allocatable, percent) pairs agree", pairs)
	}
}

// controlInputs are the control law's input types: the simulator gets
// them from scalerspec.ToControl, never builds them itself.
var controlInputs = map[string]bool{"Scaler": true, "Headroom": true, "Behavior": true, "Slot": true}

// TestNoSecondConversion fails if the simulator's code (not its tests)
// builds a control.Scaler, Headroom, Behavior or Slot with any field set:
// that would be a second copy of the controller's conversion, its defaults
// or its headroom, free to drift. (The instant law clears a converted
// scaler's behaviour with empty control.Behavior{} values: allowed.)
func TestNoSecondConversion(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, file, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok || len(lit.Elts) == 0 {
				return true
			}
			typ := lit.Type
			if a, ok := typ.(*ast.ArrayType); ok { // []control.Slot{...}
				typ = a.Elt
			}
			if sel, ok := typ.(*ast.SelectorExpr); ok {
				if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "control" && controlInputs[sel.Sel.Name] {
					t.Errorf("%s: builds a control.%s: convert the scenario's OpportunisticScaler with scalerspec.ToControl instead", fset.Position(lit.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
	}
}
