package control

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Overlapping pools (issue 13, case 4): nodes "spot1" and "spot2" labelled
// pool=spot and a plain node "plain", 16 cores each, no pods, no headroom.
// A scaler on every node ("all") and one on pool=spot ("spot") overlap on
// the spot nodes. Whatever the nodes are called, both must get room, and no
// core that either could use may stay idle: the sharing must let "all"
// take the plain node before the spot ones, and the replicas must be placed
// where the sharing counted them.
func TestOverlappingPoolsShareFairly(t *testing.T) {
	oneCore, fourCores := list("cpu", "1"), list("cpu", "4")
	tests := []struct {
		name    string
		plain   corev1.ResourceList // the plain node's allocatable (16 cores unless set)
		scalers []Scaler
		want    map[string]int32
		cores   int64 // the cores the two scalers must use together: all that either could use
	}{
		{
			name:    "equal weights, 1-core replicas",
			scalers: []Scaler{worker("all", oneCore), worker("spot", oneCore, pool("pool", "spot"))},
			// Each holds the same fraction of the room it can use: 29/48 and 19/32.
			want:  map[string]int32{"default/all": 29, "default/spot": 19},
			cores: 48,
		},
		{
			name:    "weights 3:1 for the scaler of the smaller pool",
			scalers: []Scaler{worker("all", oneCore), worker("spot", oneCore, pool("pool", "spot"), weight(3))},
			// Levels per weight equal: 16/48 = 32/(3 x 32).
			want:  map[string]int32{"default/all": 16, "default/spot": 32},
			cores: 48,
		},
		{
			name:    "a higher priority on every node takes the plain node first",
			scalers: []Scaler{worker("all", oneCore, prio(10), bounds(0, 20)), worker("spot", oneCore, pool("pool", "spot"))},
			want:    map[string]int32{"default/all": 20, "default/spot": 28},
			cores:   48,
		},
		{
			name:    "a higher priority on the smaller pool leaves the rest to the lower one",
			scalers: []Scaler{worker("all", oneCore), worker("spot", oneCore, pool("pool", "spot"), prio(10), bounds(0, 20))},
			want:    map[string]int32{"default/all": 28, "default/spot": 20},
			cores:   48,
		},
		{
			name:    "Mins are granted where they take least from the other scaler",
			scalers: []Scaler{worker("all", oneCore, bounds(20, 1000)), worker("spot", oneCore, pool("pool", "spot"), bounds(20, 1000))},
			want:    map[string]int32{"default/all": 28, "default/spot": 20},
			cores:   48,
		},
		{
			name:    "shapes differ: 4-core replicas on every node, 1-core ones on the spot pool",
			scalers: []Scaler{worker("all", fourCores), worker("spot", oneCore, pool("pool", "spot"))},
			want:    map[string]int32{"default/all": 7, "default/spot": 20},
			cores:   48,
		},
		{
			name:    "a plain node too small for the shape is no room for it",
			plain:   cores(3),
			scalers: []Scaler{worker("all", fourCores), worker("spot", oneCore, pool("pool", "spot"))},
			// all's 4 replicas are counted on the spot nodes; its budget
			// counts the plain node's 3 cores, which no replica can use.
			want:  map[string]int32{"default/all": 4, "default/spot": 16},
			cores: 32,
		},
	}
	namings := []struct{ name, spot1, spot2, plain string }{
		{"spot nodes named first", "a", "b", "c"},
		{"plain node named first", "b", "c", "a"},
		{"plain node named between", "a", "c", "b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plain := tc.plain
			if plain == nil {
				plain = cores(16)
			}
			for _, n := range namings {
				nodes := []*corev1.Node{
					kubeNode(n.spot1, cores(16), labelled("pool", "spot")),
					kubeNode(n.spot2, cores(16), labelled("pool", "spot")),
					kubeNode(n.plain, plain),
				}
				got := byKey(newEnv(nodes, nil, "all", "spot").decide(t0, tc.scalers...))
				all, spot := got["default/all"], got["default/spot"]
				if all.Desired == 0 || spot.Desired == 0 {
					t.Errorf("%s: a scaler starved: all %d (%s), spot %d (%s)", n.name, all.Desired, all.Reason, spot.Desired, spot.Reason)
				}
				used := int64(all.Desired)*tc.scalers[0].Shape.Requests[corev1.ResourceCPU]/1000 +
					int64(spot.Desired)*tc.scalers[1].Shape.Requests[corev1.ResourceCPU]/1000
				if used != tc.cores {
					t.Errorf("%s: all %d and spot %d replicas use %d cores, want all %d usable ones used", n.name, all.Desired, spot.Desired, used, tc.cores)
				}
				for key, want := range tc.want {
					if d := got[key]; d.Desired != want {
						t.Errorf("%s: %s desired %d, want %d (%s: %s)", n.name, key, d.Desired, want, d.Limit, d.Reason)
					}
				}
			}
		})
	}
}
