package controller

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/control"
)

func statusScaler(name string, gen int64, ready metav1.ConditionStatus, condGen int64) v1alpha1.OpportunisticScaler {
	return v1alpha1.OpportunisticScaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Generation: gen},
		Spec:       v1alpha1.OpportunisticScalerSpec{MinReplicas: ptr.To[int32](1), MaxReplicas: 9},
		Status: v1alpha1.OpportunisticScalerStatus{
			ObservedGeneration: gen, CurrentReplicas: 3, DesiredReplicas: 5, LimitedBy: "fit", Reason: "room for 5",
			Slots:      []v1alpha1.SlotStatus{{Name: "web", Wanted: 4, Fit: 3, Nodes: []v1alpha1.NodeSlotStatus{{Node: "n1", Slots: 3}}, MoreNodes: 2}},
			Conditions: []metav1.Condition{{Type: ConditionReady, Status: ready, ObservedGeneration: condGen, Reason: ReasonActive}},
		},
	}
}

func TestPublishedFromStatus(t *testing.T) {
	noStatus := statusScaler("fresh", 1, metav1.ConditionTrue, 1)
	noStatus.Status = v1alpha1.OpportunisticScalerStatus{}
	got := PublishedFromStatus([]v1alpha1.OpportunisticScaler{
		statusScaler("ready", 2, metav1.ConditionTrue, 2),
		statusScaler("stale-capacity", 2, metav1.ConditionFalse, 2), // the leader withholds a count
		statusScaler("edited", 3, metav1.ConditionTrue, 2),          // spec changed since the leader looked
		noStatus,
	})
	want := Published{Current: 3, Desired: 5, Min: 1, Max: 9, Limit: "fit", Reason: "room for 5",
		Slots: []control.SlotFit{{Name: "web", Wanted: 4, Fit: 3, Nodes: []control.NodeSlots{{Node: "n1", Slots: 3}}}}}
	if len(got) != 1 || !reflect.DeepEqual(got["ns/ready"], want) {
		t.Fatalf("PublishedFromStatus = %+v, want only ns/ready = %+v", got, want)
	}
}

func TestStandbyMirrorYieldsToOwnRounds(t *testing.T) {
	s := NewDecisionStore()
	s.replaceFromStatus(map[string]Published{"ns/a": {Desired: 4}})
	if d, ok := s.Desired("ns/a"); !ok || d != 4 {
		t.Fatalf("standby store: Desired = %d, %v; want 4 from status", d, ok)
	}
	s.replace(map[string]Published{"ns/a": {Desired: 7}})
	s.replaceFromStatus(map[string]Published{"ns/a": {Desired: 4}, "ns/b": {Desired: 1}})
	if d, _ := s.Desired("ns/a"); d != 7 {
		t.Fatalf("after a round of its own, the status mirror overwrote the decision: %d, want 7", d)
	}
	if _, ok := s.Desired("ns/b"); ok {
		t.Fatal("after a round of its own, the status mirror added a key")
	}
}

func TestWorkloadsFromStatus(t *testing.T) {
	withSelector := func(name, sel string) v1alpha1.OpportunisticScaler {
		s := statusScaler(name, 1, metav1.ConditionTrue, 1)
		s.Status.Selector = sel
		return s
	}
	got := WorkloadsFromStatus([]v1alpha1.OpportunisticScaler{
		withSelector("worker", "app=worker"),
		withSelector("never-resolved", ""),
		withSelector("broken", "app in (("),
	})
	if len(got) != 1 || got[0].Key != "ns/worker" || got[0].Namespace != "ns" || got[0].Selector.String() != "app=worker" {
		t.Fatalf("WorkloadsFromStatus = %+v, want only ns/worker with app=worker", got)
	}
}
