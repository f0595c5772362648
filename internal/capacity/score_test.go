package capacity

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func scoreNode(name string, cpu int64, labels ...string) NodeRoom {
	l := map[string]string{corev1.LabelHostname: name}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	return NodeRoom{Name: name, Labels: l, State: NodeReady,
		Allocatable: Resources{corev1.ResourceCPU: cpu * 1000, corev1.ResourceMemory: 128 << 30, corev1.ResourcePods: 110},
		Requested:   Resources{}}
}

// TestPlacerMatchesTheScheduler replays placements measured on the local
// control plane (kube-scheduler v1.37.2, default profile, kwok nodes):
// spreading by pod count outweighs the free share, so a workload gets as
// many pods on a 28-core node as on a 32-core one. LeastAllocated alone
// would put more on the 32-core nodes.
func TestPlacerMatchesTheScheduler(t *testing.T) {
	oneCore := Resources{corev1.ResourceCPU: 1000, corev1.ResourceMemory: 1 << 30, corev1.ResourcePods: 1}
	tests := []struct {
		name      string
		rooms     []NodeRoom
		paid      []int64 // paid pods per node, of paidCores each and 1 GiB
		paidCores int64
		pods      int
		want      string
	}{
		{
			// Measured: 7 paid 4-core pods went [2 1 1 1 1 1], then a
			// worker scaled from 0 to 100 (the last tie broken as it was).
			name: "after seven 4-core paid pods, 100 one-core replicas",
			rooms: []NodeRoom{scoreNode("big-0", 32), scoreNode("big-1", 32), scoreNode("big-2", 32), scoreNode("big-3", 32),
				scoreNode("small-0", 28), scoreNode("small-1", 28)},
			paid: []int64{2, 1, 1, 1, 1, 1}, paidCores: 4,
			pods: 100,
			want: "[16 17 17 17 17 16]",
		},
		{
			// Measured as above with big-0 and small-0 in zone a, the others in b.
			name: "two zones of unequal size: the zone term spreads over zones first",
			rooms: []NodeRoom{scoreNode("big-0", 32, corev1.LabelTopologyZone, "a"), scoreNode("big-1", 32, corev1.LabelTopologyZone, "b"),
				scoreNode("big-2", 32, corev1.LabelTopologyZone, "b"), scoreNode("big-3", 32, corev1.LabelTopologyZone, "b"),
				scoreNode("small-0", 28, corev1.LabelTopologyZone, "a"), scoreNode("small-1", 28, corev1.LabelTopologyZone, "b")},
			paid: []int64{2, 1, 1, 1, 1, 1}, paidCores: 4,
			pods: 90,
			want: "[19 13 13 13 19 13]",
		},
		{
			// Measured: 6 kwok nodes, a Deployment of 30 paid pods (5 per
			// node), then a worker Deployment scaled from 0 to 132 at once.
			name: "the write-up's cluster: 132 one-core replicas over 4 x 32 + 2 x 28 cores with 5 paid pods each",
			rooms: []NodeRoom{scoreNode("big-0", 32), scoreNode("big-1", 32), scoreNode("big-2", 32), scoreNode("big-3", 32),
				scoreNode("small-0", 28), scoreNode("small-1", 28)},
			paid: []int64{5, 5, 5, 5, 5, 5}, paidCores: 1,
			pods: 132,
			want: "[22 22 22 22 22 22]",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := range tc.rooms {
				tc.rooms[i].Requested = Resources{corev1.ResourceCPU: tc.paid[i] * tc.paidCores * 1000, corev1.ResourceMemory: tc.paid[i] << 30, corev1.ResourcePods: tc.paid[i]}
			}
			p := NewPlacer(LeastAllocated, tc.rooms, Shape{Requests: oneCore}, nil)
			got := make([]int, len(tc.rooms))
			for range tc.pods {
				i := p.Next()
				if i < 0 {
					t.Fatal("a pod fits nowhere")
				}
				p.Place(i)
				got[i]++
			}
			if s := fmt.Sprint(got); s != tc.want {
				t.Errorf("pods per node %s, want %s (as the real scheduler placed them)", s, tc.want)
			}
		})
	}
}

// nextByScan is the Placer's choice computed the plain way: every node the
// pod fits on scored, with the spreading score normalised over them.
func nextByScan(p *Placer) int {
	lo, hi := int64(math.MaxInt64), int64(0)
	fits := func(i int) bool { return p.class[i] != nil }
	rawOf := func(i int) int64 { return p.raw(classKey{p.zone[i], p.host[i], p.counts[i]}) }
	for i := range p.rooms {
		if fits(i) {
			lo, hi = min(lo, rawOf(i)), max(hi, rawOf(i))
		}
	}
	best, bestScore := -1, int64(-1)
	for i := range p.rooms {
		if !fits(i) {
			continue
		}
		r := &p.rooms[i]
		spread := int64(maxNodeScore)
		if hi > 0 {
			spread = maxNodeScore * (hi + lo - rawOf(i)) / hi
		}
		s := weightFit*p.scoring.Score(r, p.shape.Requests) + weightBalanced*balanced(r, p.shape.Requests) + weightSpread*spread
		if s > bestScore || (s == bestScore && r.Name < p.rooms[best].Name) {
			best, bestScore = i, s
		}
	}
	return best
}

// TestPlacerHeapIsExact checks the heap's answers against a scan of every
// node, pod after pod, on random clusters with zones, hostname labels,
// other pods of the workload already there, and both scorings; and that
// Pick agrees with the Placer's first answer.
func TestPlacerHeapIsExact(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var rooms []NodeRoom
		var counts []int64
		for i := range 1 + rng.IntN(40) {
			var labels []string
			if z := rng.IntN(4); z < 3 {
				labels = append(labels, corev1.LabelTopologyZone, fmt.Sprint("z", z))
			}
			r := scoreNode(fmt.Sprint("n", i), int64(2+rng.IntN(63)), labels...)
			if rng.IntN(10) == 0 {
				delete(r.Labels, corev1.LabelHostname)
			}
			r.Allocatable[corev1.ResourceMemory] = int64(1+rng.IntN(256)) << 30
			r.Requested = Resources{corev1.ResourceCPU: int64(rng.IntN(2000 * int(r.Allocatable[corev1.ResourceCPU]/1000+1) / 2)), corev1.ResourceMemory: int64(rng.IntN(64)) << 30}
			rooms = append(rooms, r)
			counts = append(counts, int64(rng.IntN(5)))
		}
		scoring := []Scoring{LeastAllocated, MostAllocated}[rng.IntN(2)]
		shape := Shape{Requests: Resources{corev1.ResourceCPU: int64(250 * (1 + rng.IntN(8))), corev1.ResourceMemory: int64(1+rng.IntN(4)) << 29, corev1.ResourcePods: 1}}
		fast, slow := NewPlacer(scoring, rooms, shape, counts), NewPlacer(scoring, rooms, shape, counts)
		fits := make([]bool, len(rooms))
		for i, f := range Fit(rooms, shape).Nodes {
			fits[i] = f.Replicas > 0
		}
		if got, want := Pick(scoring, rooms, shape, counts, fits), fast.Next(); got != want {
			t.Fatalf("seed %d: Pick chose node %d, the Placer's first pod %d", seed, got, want)
		}
		for pod := range 300 {
			got, want := fast.Next(), nextByScan(slow)
			if got != want {
				t.Fatalf("seed %d, pod %d (%s): the heap chose node %d, a scan of every node %d", seed, pod, scoring, got, want)
			}
			if got < 0 {
				break
			}
			fast.Place(got)
			slow.Place(want)
		}
	}
}

// BenchmarkPlacer places 20,000 pods of one workload on 5,000 nodes in
// three zones: the prediction a scaler with slots makes when it fills an
// empty cluster at the scalability envelope.
func BenchmarkPlacer(b *testing.B) {
	var rooms []NodeRoom
	for i := range 5000 {
		r := scoreNode(fmt.Sprintf("node-%05d", i), 32, corev1.LabelTopologyZone, fmt.Sprint("zone-", i%3))
		r.Requested = Resources{corev1.ResourceCPU: int64(i%7) * 1000, corev1.ResourceMemory: 4 << 30, corev1.ResourcePods: 30}
		rooms = append(rooms, r)
	}
	shape := Shape{Requests: Resources{corev1.ResourceCPU: 1000, corev1.ResourceMemory: 1 << 30, corev1.ResourcePods: 1}}
	b.ReportAllocs()
	for b.Loop() {
		p := NewPlacer(LeastAllocated, rooms, shape, nil)
		for range 20000 {
			p.Place(p.Next())
		}
	}
}
