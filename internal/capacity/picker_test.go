package capacity

import (
	"fmt"
	"math/rand/v2"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestPickerIsPick changes random clusters one node at a time (requests,
// state, the workload's pods there, room held) and checks after each change
// that the Picker chooses the node Pick chooses over Fit's answer, with and
// without other room held on some nodes for one query.
func TestPickerIsPick(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 11))
		var rooms []NodeRoom
		var counts []int64
		for i := range 1 + rng.IntN(30) {
			var labels []string
			if z := rng.IntN(4); z < 3 {
				labels = append(labels, corev1.LabelTopologyZone, fmt.Sprint("z", z))
			}
			if rng.IntN(3) == 0 {
				labels = append(labels, "pool", "a")
			}
			r := scoreNode(fmt.Sprint("n", i), int64(2+rng.IntN(31)), labels...)
			if rng.IntN(10) == 0 {
				delete(r.Labels, corev1.LabelHostname)
			}
			if rng.IntN(8) == 0 {
				r.Taints = []corev1.Taint{{Key: "gpu", Effect: corev1.TaintEffectNoSchedule}}
			}
			r.Allocatable[corev1.ResourceMemory] = int64(1+rng.IntN(64)) << 30
			r.Requested = Resources{corev1.ResourceCPU: int64(rng.IntN(int(r.Allocatable[corev1.ResourceCPU]))), corev1.ResourceMemory: int64(rng.IntN(32)) << 30, corev1.ResourcePods: int64(rng.IntN(110))}
			rooms = append(rooms, r)
			counts = append(counts, int64(rng.IntN(4)))
		}
		scoring := []Scoring{LeastAllocated, MostAllocated}[rng.IntN(2)]
		shape := Shape{Requests: Resources{corev1.ResourceCPU: int64(250 * (1 + rng.IntN(8))), corev1.ResourceMemory: int64(1+rng.IntN(4)) << 29, corev1.ResourcePods: 1}}
		switch rng.IntN(4) {
		case 0:
			shape.NodeSelector = map[string]string{"pool": "a"}
		case 1:
			shape.Tolerations = []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists}}
		}
		p := NewPicker(scoring, rooms, shape, counts)
		holds := map[int]Resources{}
		for step := range 200 {
			i := rng.IntN(len(rooms))
			switch rng.IntN(5) {
			case 4:
				if rng.IntN(2) == 0 {
					holds[i] = Resources{corev1.ResourceCPU: -int64(250 * (1 + rng.IntN(8)))}
				} else {
					delete(holds, i)
				}
				p.Hold(i, holds[i])
			case 0:
				rooms[i].Requested[corev1.ResourceCPU] = int64(rng.IntN(int(rooms[i].Allocatable[corev1.ResourceCPU]) + 1))
				p.Update(i)
			case 1:
				rooms[i].Requested.Add(shape.Requests)
				p.Update(i)
				counts[i]++
				p.Count(i, 1)
			case 2:
				rooms[i].State = []NodeState{NodeReady, NodeNotReady}[rng.IntN(2)]
				p.Update(i)
			case 3:
				if counts[i] > 0 {
					rooms[i].Requested.Sub(shape.Requests)
					p.Update(i)
					counts[i]--
					p.Count(i, -1)
				}
			}
			var extra map[int]Resources
			credit, byIndex := map[string]Resources{}, map[int]Resources{}
			for j, h := range holds {
				credit[rooms[j].Name], byIndex[j] = h, h
			}
			if rng.IntN(3) == 0 {
				extra = map[int]Resources{}
				for range 1 + rng.IntN(3) {
					j := rng.IntN(len(rooms))
					var held Resources // none, in place of what Hold keeps there
					if rng.IntN(3) > 0 {
						held = Resources{corev1.ResourceCPU: -int64(250 * (1 + rng.IntN(8)))}
					}
					extra[j], credit[rooms[j].Name], byIndex[j] = held, held, held
				}
			}
			fits := make([]bool, len(rooms))
			for j, f := range FitWith(rooms, shape, credit).Nodes {
				fits[j] = f.Replicas > 0
			}
			if got, want := p.Pick(extra), Pick(scoring, rooms, shape, counts, fits); got != want {
				t.Fatalf("seed %d, step %d: the Picker chose node %d, Pick %d", seed, step, got, want)
			}
			for j := range rooms {
				if got, want := p.Fits(j, byIndex[j]), fits[j]; got != want {
					t.Fatalf("seed %d, step %d: the Picker says the pod fits on node %d: %v, Fit: %v", seed, step, j, got, want)
				}
			}
		}
	}
}

// BenchmarkPicker binds 20,000 pods of one workload, one after the other,
// on 5,000 nodes in three zones, as the simulator's scheduler does: each
// pod picked, its node's room and the workload's count updated.
func BenchmarkPicker(b *testing.B) {
	var rooms []NodeRoom
	for i := range 5000 {
		r := scoreNode(fmt.Sprintf("node-%05d", i), 32, corev1.LabelTopologyZone, fmt.Sprint("zone-", i%3))
		r.Requested = Resources{corev1.ResourceCPU: int64(i%7) * 1000, corev1.ResourceMemory: 4 << 30, corev1.ResourcePods: 30}
		rooms = append(rooms, r)
	}
	shape := Shape{Requests: Resources{corev1.ResourceCPU: 1000, corev1.ResourceMemory: 1 << 30, corev1.ResourcePods: 1}}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		rs := make([]NodeRoom, len(rooms))
		for i := range rooms {
			rs[i] = rooms[i]
			rs[i].Requested = rooms[i].Requested.Clone()
		}
		b.StartTimer()
		p := NewPicker(LeastAllocated, rs, shape, nil)
		for range 20000 {
			i := p.Pick(nil)
			rs[i].Requested.Add(shape.Requests)
			p.Update(i)
			p.Count(i, 1)
		}
	}
}
