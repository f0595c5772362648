package controller

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/scalerspec"
)

func shapeFrom(name, namespace string) *v1alpha1.SlotShapeSource {
	return &v1alpha1.SlotShapeSource{APIVersion: "apps/v1", Kind: "Deployment", Name: name, Namespace: namespace}
}

func TestSpecProblem(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	tests := []struct {
		err    error
		reason string
	}{
		{fmtSlotErr(&targetError{scalerspec.ErrTargetMissing, "Deployment batch/web not found"}), ReasonSlotShapeNotFound},
		{fmtSlotErr(readError("reading Deployment batch/web", apierrors.NewForbidden(gr, "web", errors.New("RBAC")))), "TargetForbidden"},
		{fmtSlotErr(&targetError{scalerspec.ErrNoTemplate, "Deployment web has no pod template"}), "NoPodTemplate"},
		{fmtSlotErr(&targetError{scalerspec.ErrNoRequests, "Deployment web requests nothing"}), "NoResourceRequests"},
		{fmtSlotErr(readError("reading Deployment batch/web", apierrors.NewInternalError(errors.New("etcd")))), "TargetUnavailable"},
		{errors.New(`spec.headroom[cpu]: "x" is neither a quantity nor a percent`), ReasonInvalidSpec},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			reason, msg := specProblem(tt.err)
			if reason != tt.reason || msg != tt.err.Error() {
				t.Errorf("specProblem = %s %q, want %s %q", reason, msg, tt.reason, tt.err.Error())
			}
		})
	}
}

func fmtSlotErr(err error) error {
	return errors.Join(errors.New("spec.headroomSlots[0].shapeFrom:"), err)
}

// TestReconcileSlotShapeNotFound: a slot whose shapeFrom is missing stops
// its scaler (Ready=False, an Event, the problem metric, no write) and not
// the others; once the workload exists, the scaler acts again.
func TestReconcileSlotShapeNotFound(t *testing.T) {
	targets := newFakeTargets()
	targets.add("worker", &fakeTarget{replicas: 2})
	targets.add("other", &fakeTarget{replicas: 2})
	s := scaler("worker", 10, nil)
	s.Spec.HeadroomSlots = []v1alpha1.HeadroomSlot{{ShapeFrom: shapeFrom("web", ""), Count: intstr.FromInt32(4)}}
	w := newWorld(t, newCapacity(40, 0), targets, s, scaler("other", 5, nil))
	w.round(t)
	if got := targets.replicas("worker"); got != 2 {
		t.Errorf("worker scaled to %d, want it left at 2 while its slot's shape is unknown", got)
	}
	if got := targets.replicas("other"); got != 5 {
		t.Errorf("other at %d, want 5: one scaler's bad slot must not stop another", got)
	}
	w.wantReady(t, "worker", metav1.ConditionFalse, ReasonSlotShapeNotFound, "spec.headroomSlots[0].shapeFrom: Deployment batch/web not found")
	w.wantEvent(t, "Warning "+ReasonSlotShapeNotFound)
	if got := w.problem("worker", ReasonSlotShapeNotFound); got != 1 {
		t.Errorf("opportunist_scaler_problem{reason=SlotShapeNotFound} = %v, want 1", got)
	}

	targets.addShape(testNamespace, "web", "4")
	w.clock.Step(time.Second)
	w.round(t)
	w.wantReady(t, "worker", metav1.ConditionTrue, ReasonActive, "")
	if got := targets.replicas("worker"); got <= 2 {
		t.Errorf("worker at %d once its slot's shape exists, want it grown", got)
	}

	targets.removeShape(testNamespace, "web")
	targets.shapeErrs[testNamespace+"/web"] = &targetError{scalerspec.ErrNoRequests, "Deployment web: its pod template requests no resources"}
	w.clock.Step(time.Second)
	w.round(t)
	w.wantReady(t, "worker", metav1.ConditionFalse, "NoResourceRequests", "spec.headroomSlots[0].shapeFrom: Deployment web")
}

func TestSlotStatus(t *testing.T) {
	if got := slotStatus(nil); got != nil {
		t.Errorf("no slots: %+v, want nil", got)
	}
	var nodes []control.NodeSlots
	for i := range 25 {
		nodes = append(nodes, control.NodeSlots{Node: "n" + string(rune('a'+i)), Slots: 1})
	}
	got := slotStatus([]control.SlotFit{
		{Name: "web", Wanted: 30, Fit: 25, Nodes: nodes},
		{Name: "db", Wanted: 2, Fit: 2, Nodes: []control.NodeSlots{{Node: "na", Slots: 2}}},
	})
	if len(got) != 2 || got[0].Name != "web" || got[0].Wanted != 30 || got[0].Fit != 25 || len(got[0].Nodes) != v1alpha1.MaxSlotNodes || got[0].MoreNodes != 5 {
		t.Fatalf("web: %+v, want 30 wanted, 25 fit, 20 nodes and 5 more", got[0])
	}
	if got[0].Nodes[19] != (v1alpha1.NodeSlotStatus{Node: "nt", Slots: 1}) {
		t.Errorf("20th node %+v, want the 20th counted (nt)", got[0].Nodes[19])
	}
	if want := (v1alpha1.SlotStatus{Name: "db", Wanted: 2, Fit: 2, Nodes: []v1alpha1.NodeSlotStatus{{Node: "na", Slots: 2}}}); !reflect.DeepEqual(got[1], want) {
		t.Errorf("db: %+v, want %+v", got[1], want)
	}
}

// TestStatusSlotsAreLiveNumbers: how many slots fit and where is written at
// most once per status interval; what is wanted, at once.
func TestStatusSlotsAreLiveNumbers(t *testing.T) {
	was := &v1alpha1.OpportunisticScalerStatus{DesiredReplicas: 3, Slots: []v1alpha1.SlotStatus{{Name: "web", Wanted: 4, Fit: 4, Nodes: []v1alpha1.NodeSlotStatus{{Node: "a", Slots: 4}}}}}
	fewer := was.DeepCopy()
	fewer.Slots[0].Fit, fewer.Slots[0].Nodes = 3, []v1alpha1.NodeSlotStatus{{Node: "a", Slots: 2}, {Node: "b", Slots: 1}}
	if statusNeedsWrite(was, fewer, time.Second, 30*time.Second) {
		t.Error("a change of where slots fit only was written within the status interval")
	}
	if !statusNeedsWrite(was, fewer, time.Minute, 30*time.Second) {
		t.Error("a change of where slots fit was not written after the status interval")
	}
	more := was.DeepCopy()
	more.Slots[0].Wanted = 6
	if !statusNeedsWrite(was, more, time.Second, 30*time.Second) {
		t.Error("a new count of slots wanted was not written at once")
	}
	if !statusNeedsWrite(was, &v1alpha1.OpportunisticScalerStatus{DesiredReplicas: 3}, time.Second, 30*time.Second) {
		t.Error("slots removed were not written at once")
	}
}

func TestSlotMetrics(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	// check compares the series with want, by "shape/state"; counting
	// first, since reading a series that is not there would make it.
	check := func(when string, want map[string]float64) {
		t.Helper()
		if n := testutil.CollectAndCount(m.slots); n != len(want) {
			t.Errorf("%s: %d series of opportunist_headroom_slots, want %d", when, n, len(want))
			return
		}
		for k, v := range want {
			shape, state, _ := strings.Cut(k, "/")
			if got := testutil.ToFloat64(m.slots.WithLabelValues("batch/worker", shape, state)); got != v {
				t.Errorf("%s: opportunist_headroom_slots{shape=%s,state=%s} = %v, want %v", when, shape, state, got, v)
			}
		}
	}
	m.Decision("batch/worker", 3, &control.Decision{Key: "batch/worker", Limit: control.LimitSlots,
		Slots: []control.SlotFit{{Name: "web", Wanted: 4, Fit: 3}, {Name: "db", Wanted: 2, Fit: 2}}})
	check("two slots", map[string]float64{"web/fit": 3, "web/wanted": 4, "db/fit": 2, "db/wanted": 2})
	m.Decision("batch/worker", 3, &control.Decision{Key: "batch/worker", Slots: []control.SlotFit{{Name: "web", Wanted: 4, Fit: 4}}})
	check("db removed", map[string]float64{"web/fit": 4, "web/wanted": 4})
	m.Forget(map[string]bool{})
	check("scaler gone", nil)
}

// twoNodes is nodes a and b of 8 cores, 2 of each requested by paid pods.
func twoNodes() fakeCapacity {
	l := capacity.NewLedger(nil)
	for _, name := range []string{"a", "b"} {
		l.UpsertNode(capacity.FromNode(&corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Status: corev1.NodeStatus{
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi"), corev1.ResourcePods: resource.MustParse("110")},
				Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			},
		}))
		l.UpsertPod(capacity.FromPod(&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "paid", Name: "app-" + name},
			Spec: corev1.PodSpec{NodeName: name, Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning},
		}))
	}
	return fakeCapacity{l}
}

// TestReconcileSlots: a round with slots decides with the control law and
// the --scheduler-scoring given, and reports the slots in status and the
// metric. On a and b (6 free cores each), with room for 2 web pods of 4
// cores: spread (LeastAllocated) the worker's new 1-core replicas land on
// a, b, a, b and a fifth would take a slot; packed (MostAllocated) the
// third would.
func TestReconcileSlots(t *testing.T) {
	for _, tc := range []struct {
		scoring capacity.Scoring
		want    int32
	}{{"", 4}, {capacity.LeastAllocated, 4}, {capacity.MostAllocated, 2}} {
		t.Run("scoring="+string(tc.scoring), func(t *testing.T) {
			targets := newFakeTargets()
			targets.add("worker", &fakeTarget{replicas: 0})
			s := scaler("worker", 100, nil)
			s.Spec.HeadroomSlots = []v1alpha1.HeadroomSlot{{Name: "web", Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}, Count: intstr.FromInt32(2)}}
			w := newWorld(t, twoNodes(), targets, s)
			w.r.Scoring = tc.scoring
			w.round(t)
			if got := targets.replicas("worker"); got != tc.want {
				t.Errorf("worker at %d, want %d", got, tc.want)
			}
			st := w.status(t, "worker")
			want := []v1alpha1.SlotStatus{{Name: "web", Wanted: 2, Fit: 2, Nodes: []v1alpha1.NodeSlotStatus{{Node: "a", Slots: 1}, {Node: "b", Slots: 1}}}}
			if st.LimitedBy != string(control.LimitSlots) || !reflect.DeepEqual(st.Slots, want) {
				t.Errorf("status limited by %s, slots %+v; want Slots and %+v", st.LimitedBy, st.Slots, want)
			}
			for state, v := range map[string]float64{"fit": 2, "wanted": 2} {
				if got := testutil.ToFloat64(w.metrics.slots.WithLabelValues(testNamespace+"/worker", "web", state)); got != v {
					t.Errorf("opportunist_headroom_slots{state=%s} = %v, want %v", state, got, v)
				}
			}
		})
	}
}
