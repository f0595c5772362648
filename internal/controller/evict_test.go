package controller

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/reclaim"
)

// fakeEvictor records evictions; refuse names pods whose eviction a
// PodDisruptionBudget forbids.
type fakeEvictor struct {
	mu      sync.Mutex
	evicted []string
	refuse  map[string]bool
}

func (f *fakeEvictor) Evict(_ context.Context, namespace, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := namespace + "/" + name
	if f.refuse[key] {
		return apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
	}
	f.evicted = append(f.evicted, key)
	return nil
}

func TestApplyPressureEvicts(t *testing.T) {
	victims := []string{"ns/a", "ns/b", "ns/c"}
	for _, c := range []struct {
		name             string
		min, bound, want int32
		yield, evict     []string
	}{
		{"the count removes them all", 0, 5, 2, []string{"ns/a", "ns/b", "ns/c"}, nil},
		{"Min keeps one of them", 3, 5, 3, []string{"ns/a", "ns/b"}, []string{"ns/c"}},
		{"at Min: all evicted, none marked", 5, 5, 5, nil, []string{"ns/a", "ns/b", "ns/c"}},
	} {
		d := &control.Decision{Key: "ns/w", Desired: c.bound}
		evict := applyPressure(d, &control.Scaler{Min: c.min}, c.bound, slices.Clone(victims), []string{"n1: ..."})
		if d.Desired != c.want || !reflect.DeepEqual(d.Yield, c.yield) || !reflect.DeepEqual(evict, c.evict) {
			t.Errorf("%s: desired %d, marked %v, evict %v; want %d, %v, %v", c.name, d.Desired, d.Yield, evict, c.want, c.yield, c.evict)
		}
	}
}

// pressureWorld is node-1 with 4 reclaiming pods of worker, whose paid
// usage just rose to 15 of 16 cores: the node's room falls to 0 and all 4
// must leave.
func pressureWorld(t *testing.T, min int32, updateErr error) (*world, *fakeTargets, *fakeEvictor) {
	t.Helper()
	c := newCapacity(16, 16)
	c.Ledger.UpsertNode(capacity.FromNode(&corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("256Gi"),
				corev1.ResourcePods: resource.MustParse("500"), ext: resource.MustParse("4300")},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}))
	for i := range 4 {
		c.Ledger.UpsertPod(capacity.FromPod(&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: fmt.Sprintf("worker-%d", i), Labels: map[string]string{"app": "worker"}},
			Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0"), ext: resource.MustParse("1000")}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning},
		}))
	}
	targets := newFakeTargets()
	targets.add("worker", &fakeTarget{replicas: 4, cpu: "0", extended: corev1.ResourceList{ext: resource.MustParse("1000")}, updateErr: updateErr})
	s := scaler("worker", 100, nil)
	s.Spec.MinReplicas = &min
	s.Spec.Reclaim = &v1alpha1.Reclaim{Enabled: true, Theta: "0.65"}
	w := newWorld(t, c, targets, s)
	var samples []reclaim.Usage
	for i := range 40 {
		samples = append(samples, reclaim.Usage{At: roundStart.Add(-time.Duration(40-i) * 15 * time.Second), CPUMilli: 2000})
	}
	samples = append(samples, reclaim.Usage{At: roundStart, CPUMilli: 15000})
	ev := &fakeEvictor{refuse: map[string]bool{}}
	w.r.Reclaimer = &Reclaimer{
		Usage: fixedUsage{UsageSnapshot{Pods: map[string][]reclaim.Usage{"paid/app": samples},
			Nodes: map[string]reclaim.Usage{"node-1": {At: roundStart, CPUMilli: 15004}}}},
		Paid: c.Ledger, Nodes: &recordingNodes{set: map[string]int64{}}, Reservation: reclaim.DefaultReservation,
		Metrics: NewReclaimMetrics(prometheus.NewRegistry()), Log: w.r.Log, Evict: ev,
	}
	return w, targets, ev
}

func countEvents(evs []string, prefix string) int {
	n := 0
	for _, e := range evs {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

func TestReconcileEvictsAtMin(t *testing.T) {
	w, targets, ev := pressureWorld(t, 4, nil)
	ev.refuse[testNamespace+"/worker-3"] = true
	w.round(t)
	if got := targets.replicas("worker"); got != 4 {
		t.Fatalf("worker at %d, want its minReplicas 4", got)
	}
	want := []string{testNamespace + "/worker-0", testNamespace + "/worker-1", testNamespace + "/worker-2"}
	slices.Sort(ev.evicted)
	if !reflect.DeepEqual(ev.evicted, want) {
		t.Errorf("evicted %v, want %v: the count cannot go below 4, so the pods leave the node by eviction (worker-3's budget refuses)", ev.evicted, want)
	}
	evs := w.drainEvents()
	if n := countEvents(evs, "Normal "+ReasonReclaimEvicted); n != 3 {
		t.Errorf("%d %s Events, want one per eviction (3): %q", n, ReasonReclaimEvicted, evs)
	}
	if n := countEvents(evs, "Warning "+ReasonReclaimEvictFailed); n != 1 {
		t.Errorf("%d %s Events, want 1 (worker-3's budget): %q", n, ReasonReclaimEvictFailed, evs)
	}
}

func TestReconcileEvictsPartOfMin(t *testing.T) {
	w, targets, ev := pressureWorld(t, 2, nil)
	for i := range 4 { // so that the marks land
		if err := w.client.Create(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: fmt.Sprintf("worker-%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	w.round(t)
	if got := targets.replicas("worker"); got != 2 {
		t.Fatalf("worker at %d, want its minReplicas 2", got)
	}
	if len(ev.evicted) != 2 {
		t.Fatalf("evicted %v, want the 2 pods that the count (4 → 2) does not remove", ev.evicted)
	}
	var marked []string
	for i := range 4 {
		name := fmt.Sprintf("worker-%d", i)
		pod := &corev1.Pod{}
		if err := w.client.Get(context.Background(), types.NamespacedName{Namespace: testNamespace, Name: name}, pod); err != nil {
			t.Fatal(err)
		}
		if pod.Annotations[capacity.DeletionCostAnnotation] == YieldDeletionCost {
			marked = append(marked, testNamespace+"/"+name)
		}
	}
	if len(marked) != 2 {
		t.Errorf("marked %v, want the 2 pods the scale-down removes", marked)
	}
	for _, k := range marked {
		if slices.Contains(ev.evicted, k) {
			t.Errorf("%s both marked for the scale-down and evicted", k)
		}
	}
}

func TestReconcileEvictsWhenScaleRefused(t *testing.T) {
	refused := apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments/scale"}, "worker", errors.New("no"))
	w, _, ev := pressureWorld(t, 0, refused)
	w.round(t)
	if len(ev.evicted) != 4 {
		t.Fatalf("evicted %v, want all 4 pods under pressure: /scale was refused", ev.evicted)
	}
}
