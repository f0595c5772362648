package control

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

// The seed's cluster: 184 cores = 4 x 32 + 2 x 28.
func seedNodes() []*corev1.Node {
	return []*corev1.Node{
		kubeNode("n0", cores(32)), kubeNode("n1", cores(32)), kubeNode("n2", cores(32)), kubeNode("n3", cores(32)),
		kubeNode("n4", cores(28)), kubeNode("n5", cores(28)),
	}
}

var seedNames = []string{"n0", "n1", "n2", "n3", "n4", "n5"}

// seedPaid is 38 paid cores: 19 pods of 2 cores.
func seedPaid() []*corev1.Pod { return pods("paid", 19, seedNames, list("cpu", "2")) }

// seedPeak is 98 paid cores: 30 cores of base load plus the web app at 17
// replicas of 4 cores, as in the seed's demo.
func seedPeak() []*corev1.Pod {
	return concat(pods("paid", 15, seedNames, list("cpu", "2")), pods("web", 17, seedNames, list("cpu", "4"), app("web")))
}

// seedWorker is the seed's miner: 1 core, min 15, max 150, 30 cores reserved.
func seedWorker(opts ...scalerOpt) Scaler {
	return worker("worker", list("cpu", "1", "memory", "512Mi"), append([]scalerOpt{bounds(15, 150), cpuHeadroom(30)}, opts...)...)
}

func TestDecideSingleScaler(t *testing.T) {
	oneCore := list("cpu", "1", "memory", "1Gi")
	fourCores := list("cpu", "4", "memory", "1Gi")
	tests := []struct {
		name   string
		nodes  []*corev1.Node
		pods   []*corev1.Pod
		scaler Scaler
		want   int32
		limit  Limit
		budget int64
		fit    int64
		reason string // a part of the reason
	}{
		{
			name:   "seed: 184 cores - 30 headroom - 38 paid = 116 replicas of 1 core",
			nodes:  seedNodes(),
			pods:   seedPaid(),
			scaler: seedWorker(),
			want:   116, limit: LimitBudget, budget: 116, fit: 146,
			reason: "scale from 0 to 116: budget 116 replicas: cpu 184000m allocatable - 30000m headroom - 38000m paid = 116000m / 1000m",
		},
		{
			name:   "seed: paid load rises to 98 cores (30 + 17 x 4): 56 replicas",
			nodes:  seedNodes(),
			pods:   seedPeak(),
			scaler: seedWorker(current(116)),
			want:   56, limit: LimitBudget, budget: 56, fit: 86,
			reason: "scale from 116 to 56: budget 56 replicas: cpu 184000m allocatable - 30000m headroom - 98000m paid = 56000m / 1000m",
		},
		{
			name:   "seed: the worker's own bound pods do not lower its budget",
			nodes:  seedNodes(),
			pods:   concat(seedPaid(), pods("worker", 116, seedNames, oneCore, app("worker"))),
			scaler: seedWorker(),
			want:   116, limit: LimitBudget, budget: 116, fit: 146,
			reason: "budget 116 replicas: cpu 184000m allocatable - 30000m headroom - 38000m paid = 116000m / 1000m",
		},
		{
			name:   "percent headroom: 15% of 184 cores is 27.6 cores",
			nodes:  seedNodes(),
			pods:   seedPaid(),
			scaler: seedWorker(headroom(corev1.ResourceCPU, Headroom{Percent: 15})),
			want:   118, limit: LimitBudget, budget: 118, fit: 146,
			reason: "cpu 184000m allocatable - 27600m headroom - 38000m paid = 118400m / 1000m",
		},
		{
			name:  "target utilization 85% leaves the same 15%",
			nodes: seedNodes(),
			pods:  seedPaid(),
			scaler: worker("worker", oneCore, bounds(15, 150), func(s *Scaler) {
				s.TargetUtilizationPercent = 85
			}),
			want: 118, limit: LimitBudget, budget: 118, fit: 146,
		},
		{
			name:   "quantity and percent together: the larger headroom applies",
			nodes:  seedNodes(),
			pods:   seedPaid(),
			scaler: seedWorker(headroom(corev1.ResourceCPU, Headroom{Quantity: 30000, Percent: 10})),
			want:   116, limit: LimitBudget, budget: 116, fit: 146,
		},
		{
			name:   "memory headroom binds before cpu",
			nodes:  []*corev1.Node{kubeNode("n0", list("cpu", "64", "memory", "64Gi", "pods", "110"))},
			scaler: worker("worker", list("cpu", "1", "memory", "4Gi"), headroom(corev1.ResourceMemory, Headroom{Quantity: 24 << 30})),
			want:   10, limit: LimitBudget, budget: 10, fit: 16,
			reason: "memory 64Gi allocatable - 24Gi headroom - 0 paid = 40Gi / 4Gi",
		},
		{
			name:   "pod slots bind like any resource",
			nodes:  []*corev1.Node{kubeNode("n0", list("cpu", "64", "memory", "64Gi", "pods", "10"))},
			pods:   pods("paid", 4, []string{"n0"}, list("cpu", "100m")),
			scaler: worker("worker", oneCore),
			want:   6, limit: LimitBudget, budget: 6, fit: 6,
			reason: "pods 10 allocatable - 4 paid = 6 / 1",
		},
		{
			name:   "max binds",
			nodes:  seedNodes(),
			pods:   seedPaid(),
			scaler: seedWorker(bounds(15, 100)),
			want:   100, limit: LimitMax, budget: 116, fit: 146,
			reason: "max 100 replicas (budget 116, fit 146)",
		},
		{
			name:   "min wins over a zero budget",
			nodes:  seedNodes(),
			pods:   pods("paid", 46, seedNames, list("cpu", "4")),
			scaler: seedWorker(),
			want:   15, limit: LimitMin, budget: 0, fit: 0,
			reason: "min 15 replicas (fit 0) over budget 0 replicas: cpu 184000m allocatable - 30000m headroom - 184000m paid = -30000m / 1000m",
		},
		{
			name:   "min wins over max",
			nodes:  seedNodes(),
			scaler: seedWorker(bounds(20, 10)),
			want:   20, limit: LimitMin, budget: 154, fit: 184,
		},
		{
			name: "fragmentation: 30 free cores, 3 per node, hold no 4-core replica",
			nodes: []*corev1.Node{
				kubeNode("n0", cores(3)), kubeNode("n1", cores(3)), kubeNode("n2", cores(3)), kubeNode("n3", cores(3)), kubeNode("n4", cores(3)),
				kubeNode("n5", cores(3)), kubeNode("n6", cores(3)), kubeNode("n7", cores(3)), kubeNode("n8", cores(3)), kubeNode("n9", cores(3)),
			},
			scaler: worker("worker", fourCores),
			want:   0, limit: LimitFit, budget: 7, fit: 0,
			reason: "fit 0 replicas (0 bound + 0 more fit node by node) under budget 7 replicas",
		},
		{
			name:   "fit counts the bound replicas plus what fits node by node",
			nodes:  []*corev1.Node{kubeNode("n0", cores(10)), kubeNode("n1", cores(10))},
			pods:   concat(pods("worker", 2, []string{"n0", "n1"}, fourCores, app("worker")), pods("paid", 2, []string{"n0", "n1"}, list("cpu", "3"))),
			scaler: worker("worker", fourCores),
			want:   2, limit: LimitFit, budget: 3, fit: 2,
			reason: "fit 2 replicas (2 bound + 0 more fit node by node)",
		},
		{
			name:   "not ready and cordoned nodes are outside the pool",
			nodes:  []*corev1.Node{kubeNode("ok", cores(8)), kubeNode("down", cores(32), notReady()), kubeNode("drain", cores(32), cordoned())},
			scaler: worker("worker", oneCore),
			want:   8, limit: LimitBudget, budget: 8, fit: 8,
		},
		{
			name:   "untolerated taint: the node is outside the pool, for the budget as for the fit",
			nodes:  []*corev1.Node{kubeNode("gpu", cores(32), tainted("dedicated", "gpu", corev1.TaintEffectNoSchedule)), kubeNode("plain", cores(8))},
			scaler: worker("worker", oneCore),
			want:   8, limit: LimitBudget, budget: 8, fit: 8,
			reason: "budget 8 replicas: cpu 8000m allocatable - 0m paid = 8000m / 1000m",
		},
		{
			name:   "untolerated NoExecute taint: outside the pool; a PreferNoSchedule taint is not",
			nodes:  []*corev1.Node{kubeNode("evict", cores(32), tainted("x", "y", corev1.TaintEffectNoExecute)), kubeNode("soft", cores(8), tainted("x", "y", corev1.TaintEffectPreferNoSchedule))},
			scaler: worker("worker", oneCore),
			want:   8, limit: LimitBudget, budget: 8, fit: 8,
		},
		{
			// Issue 13, case 1: the budget counted the GPU nodes' 128 cores
			// (budget 176), fit (88) sat below it, and the 10 pending paid
			// cores never lowered the decision.
			name: "tainted GPU pool: the budget excludes its allocatable, so pending paid pods lower the decision",
			nodes: []*corev1.Node{
				kubeNode("cpu-1", cores(32)), kubeNode("cpu-2", cores(32)), kubeNode("cpu-3", cores(32)), kubeNode("cpu-4", cores(32)),
				kubeNode("gpu-1", cores(64), tainted("nvidia.com/gpu", "present", corev1.TaintEffectNoSchedule)),
				kubeNode("gpu-2", cores(64), tainted("nvidia.com/gpu", "present", corev1.TaintEffectNoSchedule)),
			},
			pods: concat(
				pods("paid", 20, []string{"cpu-1", "cpu-2", "cpu-3", "cpu-4"}, list("cpu", "2")),
				pods("worker", 88, []string{"cpu-1", "cpu-2", "cpu-3", "cpu-4"}, oneCore, app("worker")),
				pods("more-paid", 10, []string{""}, list("cpu", "1")),
			),
			scaler: worker("worker", oneCore, bounds(0, 200), cpuHeadroom(30)),
			want:   48, limit: LimitPendingPaid, budget: 48, fit: 78, // 88 bound less the 10 pods yielded to the 10 pending ones
			reason: "budget 48 replicas: cpu 128000m allocatable - 30000m headroom - 40000m paid - 10000m pending paid (10 pods) = 48000m / 1000m",
		},
		{
			name: "a pending paid pod that can only run outside the pool is not the worker's demand",
			nodes: []*corev1.Node{
				kubeNode("cpu-1", cores(32)),
				kubeNode("gpu-1", cores(64), labelled("accelerator", "nvidia"), tainted("nvidia.com/gpu", "present", corev1.TaintEffectNoSchedule)),
			},
			pods: concat(pods("worker", 20, []string{"cpu-1"}, oneCore, app("worker")),
				[]*corev1.Pod{kubePod("train", "", list("cpu", "16"), podTolerates("nvidia.com/gpu"), podSelector("accelerator", "nvidia"))}),
			scaler: worker("worker", oneCore, cpuHeadroom(4)),
			want:   28, limit: LimitBudget, budget: 28, fit: 32,
			reason: "budget 28 replicas: cpu 32000m allocatable - 4000m headroom - 0m paid = 28000m / 1000m",
		},
		{
			name: "percent headroom is a share of the eligible pool, not of tainted nodes",
			nodes: []*corev1.Node{
				kubeNode("cpu-1", cores(32)), kubeNode("cpu-2", cores(32)), kubeNode("cpu-3", cores(32)), kubeNode("cpu-4", cores(32)),
				kubeNode("gpu-1", cores(64), tainted("nvidia.com/gpu", "present", corev1.TaintEffectNoSchedule)),
				kubeNode("gpu-2", cores(64), tainted("nvidia.com/gpu", "present", corev1.TaintEffectNoSchedule)),
			},
			pods:   pods("paid", 20, []string{"cpu-1", "cpu-2", "cpu-3", "cpu-4"}, list("cpu", "2")),
			scaler: worker("worker", oneCore, headroom(corev1.ResourceCPU, Headroom{Percent: 25})),
			want:   56, limit: LimitBudget, budget: 56, fit: 88,
			reason: "cpu 128000m allocatable - 32000m headroom - 40000m paid = 56000m / 1000m",
		},
		{
			name: "a tainted control-plane node is outside the pool: target utilization counts the workers only",
			nodes: []*corev1.Node{
				kubeNode("control-plane", cores(8), tainted("node-role.kubernetes.io/control-plane", "", corev1.TaintEffectNoSchedule)),
				kubeNode("w1", cores(16)), kubeNode("w2", cores(16)),
			},
			pods: []*corev1.Pod{kubePod("apiserver", "control-plane", list("cpu", "2"))},
			scaler: worker("worker", oneCore, func(s *Scaler) {
				s.TargetUtilizationPercent = 75
			}),
			want: 24, limit: LimitBudget, budget: 24, fit: 32,
			reason: "budget 24 replicas: cpu 32000m allocatable - 8000m headroom - 0m paid = 24000m / 1000m",
		},
		{
			// Issue 13, case 5: a Kueue-gated 20-core paid pod cut the worker
			// from 60 to 40 (PendingPaid), although yielding cannot let it in.
			name:   "a scheduling-gated paid pod is not demand",
			nodes:  []*corev1.Node{kubeNode("n0", cores(32)), kubeNode("n1", cores(32))},
			pods:   concat(pods("worker", 60, []string{"n0", "n1"}, oneCore, app("worker")), []*corev1.Pod{kubePod("queued", "", list("cpu", "20"), gated("kueue.x-k8s.io/admission"))}),
			scaler: worker("worker", oneCore, cpuHeadroom(4)),
			want:   60, limit: LimitBudget, budget: 60, fit: 64,
			reason: "budget 60 replicas: cpu 64000m allocatable - 4000m headroom - 0m paid = 60000m / 1000m",
		},
		{
			name:   "the same paid pod without gates is demand",
			nodes:  []*corev1.Node{kubeNode("n0", cores(32)), kubeNode("n1", cores(32))},
			pods:   concat(pods("worker", 60, []string{"n0", "n1"}, oneCore, app("worker")), []*corev1.Pod{kubePod("queued", "", list("cpu", "20"))}),
			scaler: worker("worker", oneCore, cpuHeadroom(4)),
			want:   40, limit: LimitPendingPaid, budget: 40, fit: 42, // 60 bound less the 18 that make a 20-core hole beside the 2 free cores
		},
		{
			// Issue 13, case 6: with 30 worker pods on a NotReady node, fit
			// read 94 in a 64-core pool.
			name:  "replicas stranded on a NotReady node are no room in the fit",
			nodes: []*corev1.Node{kubeNode("a", cores(32)), kubeNode("b", cores(32)), kubeNode("down", cores(32), notReady())},
			pods: concat(pods("worker", 34, []string{"a", "b"}, oneCore, app("worker")),
				pods("stranded", 30, []string{"down"}, oneCore, app("worker"))),
			scaler: worker("worker", oneCore),
			want:   64, limit: LimitBudget, budget: 64, fit: 64,
			reason: "budget 64 replicas",
		},
		{
			name:  "replicas on a cordoned node and on a vanished one are stranded too",
			nodes: []*corev1.Node{kubeNode("a", cores(32)), kubeNode("drain", cores(32), cordoned())},
			pods: concat(pods("worker", 20, []string{"a"}, oneCore, app("worker")),
				pods("cordoned", 10, []string{"drain"}, oneCore, app("worker")),
				pods("gone", 5, []string{"vanished"}, oneCore, app("worker"))),
			scaler: worker("worker", oneCore, bounds(0, 30)),
			want:   30, limit: LimitMax, budget: 32, fit: 32,
		},
		{
			name:   "tolerated taint",
			nodes:  []*corev1.Node{kubeNode("gpu", cores(32), tainted("dedicated", "gpu", corev1.TaintEffectNoSchedule)), kubeNode("plain", cores(8))},
			scaler: worker("worker", oneCore, tolerates("dedicated")),
			want:   40, limit: LimitBudget, budget: 40, fit: 40,
		},
		{
			name:   "pool selector: budget and fit on the pool's nodes only",
			nodes:  []*corev1.Node{kubeNode("spot", cores(16), labelled("pool", "spot")), kubeNode("od", cores(32))},
			pods:   []*corev1.Pod{kubePod("p", "od", list("cpu", "30"))},
			scaler: worker("worker", oneCore, pool("pool", "spot"), cpuHeadroom(4)),
			want:   12, limit: LimitBudget, budget: 12, fit: 16,
			reason: "cpu 16000m allocatable - 4000m headroom - 0m paid = 12000m / 1000m",
		},
		{
			name:   "node selector narrower than the pool selector: the pool is the nodes it matches",
			nodes:  []*corev1.Node{kubeNode("a", cores(16), labelled("zone", "a")), kubeNode("b", cores(16), labelled("zone", "b"))},
			scaler: worker("worker", oneCore, nodeSelector("zone", "a")),
			want:   16, limit: LimitBudget, budget: 16, fit: 16,
		},
		{
			name: "a GPU shape is bound by GPUs",
			nodes: []*corev1.Node{
				kubeNode("g0", list("cpu", "32", "memory", "128Gi", "pods", "110", "nvidia.com/gpu", "4")),
				kubeNode("g1", list("cpu", "32", "memory", "128Gi", "pods", "110", "nvidia.com/gpu", "4")),
				kubeNode("c0", cores(64)),
			},
			pods:   []*corev1.Pod{kubePod("train", "g0", list("cpu", "4", "nvidia.com/gpu", "3"))},
			scaler: worker("worker", list("cpu", "2", "nvidia.com/gpu", "1")),
			want:   5, limit: LimitBudget, budget: 5, fit: 5,
			reason: "nvidia.com/gpu 8 allocatable - 3 paid = 5 / 1",
		},
		{
			name:   "a GPU shape in a pool without GPUs gets nothing",
			nodes:  []*corev1.Node{kubeNode("c0", cores(64))},
			scaler: worker("worker", list("cpu", "2", "nvidia.com/gpu", "1"), bounds(0, 10)),
			want:   0, limit: LimitBudget, budget: 0, fit: 0,
			reason: "nvidia.com/gpu 0 allocatable - 0 paid = 0 / 1",
		},
		{
			name:   "a shape requesting nothing gets no budget",
			nodes:  []*corev1.Node{kubeNode("n0", cores(8))},
			scaler: Scaler{Key: "default/empty", Max: 10},
			want:   0, limit: LimitBudget, budget: 0, fit: 0,
			reason: "the shape requests nothing",
		},
		{
			name:   "headroom above allocatable: budget zero, never negative",
			nodes:  []*corev1.Node{kubeNode("n0", cores(8))},
			scaler: worker("worker", oneCore, cpuHeadroom(10)),
			want:   0, limit: LimitBudget, budget: 0, fit: 8,
		},
		{
			name:   "no nodes at all",
			scaler: worker("worker", oneCore, bounds(2, 10)),
			want:   2, limit: LimitMin, budget: 0, fit: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(tc.nodes, tc.pods, "worker")
			ds := e.decide(t0, tc.scaler)
			if len(ds) != 1 {
				t.Fatalf("got %d decisions, want 1", len(ds))
			}
			d := ds[0]
			if d.Desired != tc.want || d.Limit != tc.limit || d.Budget != tc.budget || d.Fit != tc.fit {
				t.Errorf("desired %d limit %s budget %d fit %d, want %d %s %d %d\nreason: %s",
					d.Desired, d.Limit, d.Budget, d.Fit, tc.want, tc.limit, tc.budget, tc.fit, d.Reason)
			}
			if !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("reason %q\ndoes not contain %q", d.Reason, tc.reason)
			}
			if d.Desired != d.Recommended {
				t.Errorf("recommended %d, want the desired %d: nothing to stabilise", d.Recommended, d.Desired)
			}
		})
	}
}

func TestPercentOf(t *testing.T) {
	tests := []struct {
		name string
		v    int64
		pct  float64
		want int64
	}{
		{name: "exact", v: 184000, pct: 15, want: 27600},
		{name: "rounds up", v: 1001, pct: 10, want: 101},
		{name: "fractional percent", v: 64 << 30, pct: 12.5, want: 8 << 30},
		{name: "huge memory without overflow", v: 5000 * (1 << 40), pct: 33.3333, want: 1832517547107288},
		{name: "over 100 is 100", v: 10, pct: 150, want: 10},
		{name: "zero and negative", v: 10, pct: -5, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentOf(tc.v, tc.pct); got != tc.want {
				t.Errorf("percentOf(%d, %v) = %d, want %d", tc.v, tc.pct, got, tc.want)
			}
		})
	}
}

func TestHeadroomOfAndKeptFree(t *testing.T) {
	slot := func(cpu int64, count int32) Slot {
		return Slot{Name: "s", Shape: capacity.Shape{Requests: capacity.Resources{corev1.ResourceCPU: cpu, corev1.ResourcePods: 1}}, Count: count}
	}
	tests := []struct {
		name          string
		s             Scaler
		alloc         int64
		headroom, kep int64
	}{
		{name: "quantity", s: Scaler{Headroom: map[corev1.ResourceName]Headroom{"cpu": {Quantity: 30000}}}, alloc: 184000, headroom: 30000, kep: 30000},
		{name: "the larger of quantity and percent", s: Scaler{Headroom: map[corev1.ResourceName]Headroom{"cpu": {Quantity: 1000, Percent: 1.1}}}, alloc: 184000, headroom: 2024, kep: 2024},
		{name: "target utilisation for a resource without headroom", s: Scaler{TargetUtilizationPercent: 85}, alloc: 184000, headroom: 27600, kep: 27600},
		{name: "headroom wins over target utilisation", s: Scaler{Headroom: map[corev1.ResourceName]Headroom{"cpu": {Quantity: 0}}, TargetUtilizationPercent: 50}, alloc: 100, headroom: 0, kep: 0},
		{name: "slots count as a sum when larger", s: Scaler{Headroom: map[corev1.ResourceName]Headroom{"cpu": {Quantity: 10000}}, Slots: []Slot{slot(4000, 4), slot(6000, 1)}}, alloc: 184000, headroom: 10000, kep: 22000},
		{name: "slots under the headroom change nothing", s: Scaler{Headroom: map[corev1.ResourceName]Headroom{"cpu": {Quantity: 30000}}, Slots: []Slot{slot(4000, 4)}}, alloc: 184000, headroom: 30000, kep: 30000},
		{name: "nothing kept", s: Scaler{}, alloc: 184000, headroom: 0, kep: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := HeadroomOf(&tc.s, corev1.ResourceCPU, tc.alloc); got != tc.headroom {
				t.Errorf("HeadroomOf = %d, want %d", got, tc.headroom)
			}
			if got := KeptFree(&tc.s, corev1.ResourceCPU, tc.alloc); got != tc.kep {
				t.Errorf("KeptFree = %d, want %d", got, tc.kep)
			}
		})
	}
}

// TestDecisionReportsPoolAndStranded: the decision says how many nodes the
// pool has and how many replicas are stranded, for status and the CLI.
func TestDecisionReportsPoolAndStranded(t *testing.T) {
	oneCore := list("cpu", "1", "memory", "1Gi")
	nodes := []*corev1.Node{
		kubeNode("a", cores(32)), kubeNode("b", cores(32)), kubeNode("down", cores(32), notReady()),
		kubeNode("gpu", cores(64), tainted("nvidia.com/gpu", "present", corev1.TaintEffectNoSchedule)),
		kubeNode("cp", cores(8), tainted("node-role.kubernetes.io/control-plane", "", corev1.TaintEffectNoSchedule)),
	}
	ps := concat(pods("worker", 34, []string{"a", "b"}, oneCore, app("worker")), pods("stranded", 30, []string{"down"}, oneCore, app("worker")))
	e := newEnv(nodes, ps, "worker")
	d := e.decide(t0, worker("worker", oneCore))[0]
	if d.PoolNodes != 2 || d.Stranded != 30 || d.Fit != 64 {
		t.Errorf("pool %d nodes, %d stranded, fit %d; want 2, 30, 64 (%s)", d.PoolNodes, d.Stranded, d.Fit, d.Reason)
	}
	d = e.decide(t0, worker("worker", oneCore, tolerates("nvidia.com/gpu")))[0]
	if d.PoolNodes != 3 {
		t.Errorf("tolerating the GPU taint: pool %d nodes, want 3", d.PoolNodes)
	}
}
