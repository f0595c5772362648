package capacity

import (
	"math/rand/v2"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestAmountsAreResources: the ledger's sums (amounts) hold what Resources
// would after the same additions and subtractions, entries at zero included.
func TestAmountsAreResources(t *testing.T) {
	names := []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods,
		corev1.ResourceEphemeralStorage, "nvidia.com/gpu", "hugepages-2Mi"}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var sum amounts
		want := Resources{}
		for range rng.IntN(8) {
			r := Resources{}
			for _, name := range names {
				if rng.IntN(3) == 0 {
					r[name] = rng.Int64N(5) // zero too: an entry all the same
				}
			}
			a := amountsOf(r)
			if got := a.resources(false); !reflect.DeepEqual(got, r) {
				t.Fatalf("round %d: amountsOf(%v) converts back to %v", round, r, got)
			}
			if rng.IntN(2) == 0 {
				want.Add(r)
				sum.add(&a, 1)
			} else {
				want.Sub(r)
				sum.add(&a, -1)
			}
		}
		if got := sum.resources(false); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: sum %v, want %v", round, got, want)
		}
		if got := sum.resources(true); !reflect.DeepEqual(got, nonZero(want)) {
			t.Fatalf("round %d: non-zero sum %v, want %v", round, got, nonZero(want))
		}
		for _, name := range names {
			if sum.get(name) != want[name] {
				t.Fatalf("round %d: get(%s) = %d, want %d", round, name, sum.get(name), want[name])
			}
		}
		if back := amountsOf(want); !back.same(&sum) || !sum.same(&back) {
			t.Fatalf("round %d: %v and its conversion are not the same", round, want)
		}
	}
}

// TestLedgerSharedRequests: pods that share one requests map (a simulated
// ReplicaSet's) are summed as pods with their own copies.
func TestLedgerSharedRequests(t *testing.T) {
	shared := Resources{corev1.ResourceCPU: 500, corev1.ResourceMemory: 1 << 20, corev1.ResourcePods: 1, "nvidia.com/gpu": 1}
	own := Resources{corev1.ResourceCPU: 250, corev1.ResourcePods: 1}
	l := NewLedger(nil)
	l.UpsertNode(Node{Name: "n", Ready: true, Allocatable: Resources{corev1.ResourceCPU: 4000, corev1.ResourcePods: 10}})
	pods := []Pod{
		{Namespace: "d", Name: "a", NodeName: "n", Requests: shared},
		{Namespace: "d", Name: "b", NodeName: "n", Requests: own},
		{Namespace: "d", Name: "c", NodeName: "n", Requests: shared},
		{Namespace: "d", Name: "d", Requests: shared},
	}
	for _, p := range pods {
		l.UpsertPod(p)
	}
	l.UpsertPod(Pod{Namespace: "d", Name: "c", NodeName: "n", Requests: shared, Terminating: true}) // moves no sum
	l.DeletePod("d", "a")
	want := Summarize([]Node{{Name: "n", Ready: true, Allocatable: Resources{corev1.ResourceCPU: 4000, corev1.ResourcePods: 10}}},
		[]Pod{pods[1], {Namespace: "d", Name: "c", NodeName: "n", Requests: shared.Clone(), Terminating: true}, {Namespace: "d", Name: "d", Requests: shared.Clone()}}, nil)
	if got := l.Report(); !reflect.DeepEqual(got, want) {
		t.Fatalf("report %+v, want %+v", got, want)
	}
}
