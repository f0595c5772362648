package control

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

// TestSlotPods counts, per slot, the paid pods of its shape in the pool:
// bound (terminating too) to a pool node, or pending and fitting one; not
// those off the pool, gated, finished, opportunistic or of another shape.
func TestSlotPods(t *testing.T) {
	nodes := concat(
		[]*corev1.Node{kubeNode("a", cores(16), labelled("pool", "web")), kubeNode("b", cores(16), labelled("pool", "web"))},
		[]*corev1.Node{kubeNode("c", cores(16))}, // off the pool
	)
	web, big := list("cpu", "4", "memory", "8Gi"), list("cpu", "8")
	ps := concat(
		pods("web", 3, []string{"a", "b", "c"}, web), // two in the pool
		[]*corev1.Pod{
			kubePod("web-leaving", "a", web, terminating()),
			kubePod("web-done", "b", web, finished()),
			kubePod("web-pending", "", web),
			kubePod("web-gated", "", web, gated("kueue")),
			kubePod("web-more-memory", "a", list("cpu", "4", "memory", "9Gi")),
			kubePod("big", "b", big),
			kubePod("worker-0", "a", web, app("worker")), // opportunistic, same requests
		},
	)
	e := newEnv(nodes, ps, "worker")
	s := worker("worker", list("cpu", "1"), pool("pool", "web"))
	s.Slots = []Slot{
		{Name: "web", Shape: capacity.Shape{Requests: capacity.FromResourceList(list("cpu", "4", "memory", "8Gi", "pods", "1"))}},
		{Name: "big", Shape: capacity.Shape{Requests: capacity.FromResourceList(list("cpu", "8", "pods", "1"))}},
		{Name: "none", Shape: capacity.Shape{Requests: capacity.FromResourceList(list("cpu", "2", "pods", "1"))}},
	}
	c := e.cluster()
	got := SlotPods(&c, &s, e.l.Paid())
	// web: web-0 (a), web-1 (b), web-leaving, web-pending.
	if want := []int{4, 1, 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("slot pods %v, want %v", got, want)
	}
}

func terminating() podOpt {
	return func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: t0} }
}
func finished() podOpt { return func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded } }
