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
