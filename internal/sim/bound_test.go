package sim

import (
	"math/rand/v2"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

func boundRoom(state capacity.NodeState, cpu, mem, paidCPU, paidMem, oppCPU, oppMem int64) capacity.NodeRoom {
	return capacity.NodeRoom{
		State:                  state,
		Allocatable:            capacity.Resources{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem, corev1.ResourcePods: 110},
		Requested:              capacity.Resources{corev1.ResourceCPU: paidCPU + oppCPU, corev1.ResourceMemory: paidMem + oppMem},
		OpportunisticRequested: capacity.Resources{corev1.ResourceCPU: oppCPU, corev1.ResourceMemory: oppMem},
	}
}

func boundShapeOf(cpu, mem int64, maxReplicas int32, eligible ...bool) boundShape {
	return boundShape{requests: capacity.Resources{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem, corev1.ResourcePods: 1}, cpu: cpu, max: maxReplicas, eligible: eligible}
}

func TestPackBound(t *testing.T) {
	const gi = 1 << 30
	ready, down := capacity.NodeReady, capacity.NodeNotReady
	tests := []struct {
		name   string
		rooms  []capacity.NodeRoom
		shapes []boundShape
		want   int64
	}{
		{"one shape fills each node's free room, node by node",
			[]capacity.NodeRoom{boundRoom(ready, 16000, 64*gi, 5000, 0, 0, 0), boundRoom(ready, 16000, 64*gi, 0, 0, 0, 0)},
			[]boundShape{boundShapeOf(4000, gi, 100, true, true)}, 8000 + 16000}, // 11 cores hold 2 of 4, 16 hold 4
		{"the opportunistic pods' own room is free room",
			[]capacity.NodeRoom{boundRoom(ready, 16000, 64*gi, 4000, 0, 12000, 3*gi)},
			[]boundShape{boundShapeOf(4000, gi, 100, true)}, 12000},
		{"memory binds",
			[]capacity.NodeRoom{boundRoom(ready, 16000, 4*gi, 0, 2*gi, 0, 0)},
			[]boundShape{boundShapeOf(1000, gi, 100, true)}, 2000},
		{"NotReady nodes hold nothing", []capacity.NodeRoom{boundRoom(down, 16000, 64*gi, 0, 0, 0, 0)},
			[]boundShape{boundShapeOf(1000, gi, 100, true)}, 0},
		{"ineligible nodes hold nothing",
			[]capacity.NodeRoom{boundRoom(ready, 16000, 64*gi, 0, 0, 0, 0), boundRoom(ready, 8000, 64*gi, 0, 0, 0, 0)},
			[]boundShape{boundShapeOf(1000, gi, 100, false, true)}, 8000},
		{"maxReplicas caps each workload",
			[]capacity.NodeRoom{boundRoom(ready, 16000, 64*gi, 0, 0, 0, 0), boundRoom(ready, 16000, 64*gi, 0, 0, 0, 0)},
			[]boundShape{boundShapeOf(1000, gi, 20, true, true)}, 20000},
		{"several shapes on one node: each as if alone, capped by the node's free cpu",
			[]capacity.NodeRoom{boundRoom(ready, 4000, 4*gi, 0, 0, 0, 0)},
			// 3 cpu + 1Gi fits once, 2 cpu + 2Gi twice: together at most the 4 free cores
			// (first fit decreasing would pack 3 cores, the best packing 4).
			[]boundShape{boundShapeOf(3000, gi, 10, true), boundShapeOf(2000, 2*gi, 10, true)}, 4000},
		{"paid pods over allocatable leave nothing, never less",
			[]capacity.NodeRoom{boundRoom(ready, 4000, 4*gi, 6000, 0, 0, 0)},
			[]boundShape{boundShapeOf(1000, gi, 10, true)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := packBound(tt.rooms, tt.shapes); got != tt.want {
				t.Errorf("packBound = %dm, want %dm", got, tt.want)
			}
		})
	}
}

// bestPacking is the most CPU any packing of the shapes puts on one node's
// free room, by enumeration (small counts only).
func bestPacking(free capacity.Resources, shapes []boundShape) int64 {
	if len(shapes) == 0 {
		return 0
	}
	s, rest := shapes[0], shapes[1:]
	best := bestPacking(free, rest)
	left := free.Clone()
	for n := int64(1); ; n++ {
		for name, v := range s.requests {
			left[name] -= v
		}
		for _, v := range left {
			if v < 0 {
				return best
			}
		}
		best = max(best, n*s.cpu+bestPacking(left, rest))
	}
}

// No packing of the opportunistic shapes holds more than packBound: random
// nodes and shapes against an exhaustive search, node by node.
func TestPackBoundIsABound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		n, k := 1+rng.IntN(3), 1+rng.IntN(3)
		var rooms []capacity.NodeRoom
		for range n {
			cpu, mem := int64(1+rng.IntN(8))*1000, int64(1+rng.IntN(8))<<30
			rooms = append(rooms, boundRoom(capacity.NodeReady, cpu, mem, rng.Int64N(cpu), rng.Int64N(mem), 0, 0))
		}
		var shapes []boundShape
		for range k {
			eligible := make([]bool, n)
			for i := range eligible {
				eligible[i] = rng.IntN(4) > 0
			}
			shapes = append(shapes, boundShapeOf(int64(1+rng.IntN(4))*500, int64(1+rng.IntN(4))<<29, 1<<20, eligible...))
		}
		var best int64
		for i, r := range rooms {
			free := capacity.Resources{}
			for name, v := range r.Allocatable {
				free[name] = v - r.Requested[name]
			}
			var here []boundShape
			for _, s := range shapes {
				if s.eligible[i] {
					here = append(here, s)
				}
			}
			best += bestPacking(free, here)
		}
		got := packBound(rooms, shapes)
		if got < best {
			t.Fatalf("packBound = %dm, but a packing holds %dm: rooms %+v shapes %+v", got, best, rooms, shapes)
		}
		if k == 1 && got != best {
			t.Fatalf("one shape: packBound = %dm, the best packing %dm: it should be exact", got, best)
		}
	}
}

// On every built-in scenario, under every strategy, no step's harvest
// beyond the overshoot exceeds the packing bound of its run; and the
// instant law, which packs with the law's own accounting, gets close.
func TestBoundAboveEveryStrategy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every strategy on every built-in scenario")
	}
	for _, name := range BuiltinNames() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc, err := Builtin(name)
			if err != nil {
				t.Fatal(err)
			}
			sc.Duration = min(sc.Duration, 24*time.Hour) // the week-long ones repeat their days
			load := loadEvents(sc, 1)
			for _, strategy := range Strategies() {
				if sc.Reclaims() && strategy != Opportunist && strategy != InstantLaw {
					continue // only they reclaim: Run refuses the others
				}
				out := simulate(sc, strategy, load, false)
				if out.err != nil {
					t.Fatal(out.err)
				}
				r := out.result
				// Reclaimed CPU is beside the bound, which counts what requests allow.
				if out.aboveBound > 0 || r.HarvestCoreHours-r.OvershootCoreHours-r.ReclaimedCoreHours > r.BoundCoreHours*(1+1e-9) {
					t.Errorf("%s: %d steps above the bound; harvest %.3f - overshoot %.3f core-h, bound %.3f",
						strategy, out.aboveBound, r.HarvestCoreHours, r.OvershootCoreHours, r.BoundCoreHours)
				}
				if strategy == InstantLaw && r.HarvestCoreHours < 0.9*r.BoundCoreHours {
					t.Errorf("the instant law harvests %.3f core-h, under 90 %% of the bound %.3f: is the bound that loose?", r.HarvestCoreHours, r.BoundCoreHours)
				}
				t.Logf("%s: harvest %.3f core-h, overshoot %.3f, bound %.3f (%.2f %%)", strategy, r.HarvestCoreHours, r.OvershootCoreHours, r.BoundCoreHours, 100*r.HarvestCoreHours/r.BoundCoreHours)
			}
		})
	}
}

// TestPaidDemandOnlyWhereItFits: paid pods that tolerate a GPU pool's taint
// but ask for a GPU are no demand on the CPU nodes the worker fills, though
// nothing in their selectors keeps them off those nodes. Counting them there
// lowered the fill line by their 16 cores: every strategy showed that much
// overshoot, and its harvest above the bound.
func TestPaidDemandOnlyWhereItFits(t *testing.T) {
	sc, err := ParseScenario("gpu.yaml", []byte(`
duration: 10m
nodeGroups:
- {name: cpu, count: 4, allocatable: {cpu: "16", memory: 64Gi}}
- name: gpu
  count: 1
  allocatable: {cpu: "32", memory: 128Gi, nvidia.com/gpu: "4"}
  taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
paid:
- name: train
  requests: {cpu: "8", nvidia.com/gpu: "1"}
  tolerations: [{key: nvidia.com/gpu, operator: Exists}]
  replicas: 2
opportunistic:
- {name: worker, requests: {cpu: "1"}, maxReplicas: 100, headroom: {cpu: "4"}}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(sc, Options{Seed: 1, Strategies: []string{Opportunist, InstantLaw}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.OvershootCoreHours > 0.01 || r.HarvestCoreHours > r.BoundCoreHours {
			t.Errorf("%s: harvest %.3f core-h, bound %.3f, overshoot %.3f: the GPU pods count as demand on the CPU nodes", r.Strategy, r.HarvestCoreHours, r.BoundCoreHours, r.OvershootCoreHours)
		}
	}
}
