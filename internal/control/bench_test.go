package control

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/opportunist/opportunist/internal/capacity"
)

// The Kubernetes scalability envelope: 5,000 nodes, 150,000 pods; 10 scalers.
const benchNodes, benchPods, benchScalers, benchPending = 5000, 150000, 10, 200

// benchWorld is a cluster at the envelope: 32-core nodes in three zones, a
// tenth of the pods opportunistic, some paid pods pending.
func benchWorld() (Cluster, []Scaler) {
	ws := make([]capacity.Workload, benchScalers)
	for i := range ws {
		ws[i] = capacity.Workload{Key: fmt.Sprintf("ns/w%d", i), Namespace: "ns", Selector: labels.SelectorFromSet(labels.Set{"app": fmt.Sprintf("w%d", i)})}
	}
	l := capacity.NewLedger(ws)
	for i := range benchNodes {
		l.UpsertNode(capacity.FromNode(kubeNode(fmt.Sprintf("node-%05d", i),
			list("cpu", "32", "memory", "128Gi", "pods", "110", "ephemeral-storage", "500Gi"),
			labelled("topology.kubernetes.io/zone", fmt.Sprintf("zone-%d", i%3)))))
	}
	paid := capacity.Resources{corev1.ResourceCPU: 150, corev1.ResourceMemory: 256 << 20, corev1.ResourcePods: 1}
	for i := range benchPods {
		p := capacity.Pod{Namespace: "ns", Name: fmt.Sprintf("pod-%06d", i), NodeName: fmt.Sprintf("node-%05d", i%benchNodes),
			Labels: map[string]string{"app": "paid"}, Requests: paid}
		if i%10 == 0 {
			p.Labels = map[string]string{"app": fmt.Sprintf("w%d", i/10%benchScalers)}
		}
		l.UpsertPod(p)
	}
	for i := range benchPending {
		l.UpsertPod(capacity.Pod{Namespace: "ns", Name: fmt.Sprintf("pending-%03d", i), Priority: 1000, Labels: map[string]string{"app": "batch"},
			Requests: capacity.Resources{corev1.ResourceCPU: 2000, corev1.ResourceMemory: 4 << 30, corev1.ResourcePods: 1}, Scheduling: &capacity.Scheduling{}})
	}

	shapes := []capacity.Resources{
		{corev1.ResourceCPU: 1000, corev1.ResourceMemory: 1 << 30, corev1.ResourcePods: 1},
		{corev1.ResourceCPU: 2000, corev1.ResourceMemory: 4 << 30, corev1.ResourcePods: 1},
		{corev1.ResourceCPU: 4000, corev1.ResourceMemory: 8 << 30, corev1.ResourcePods: 1},
	}
	usage := map[string]int32{}
	for _, u := range l.Report().Workloads {
		usage[u.Key] = int32(u.Pods)
	}
	scalers := make([]Scaler, benchScalers)
	for i := range scalers {
		s := Scaler{
			Key:      ws[i].Key,
			Shape:    capacity.Shape{Requests: shapes[i%len(shapes)]},
			Bound:    usage[ws[i].Key],
			Current:  usage[ws[i].Key],
			Max:      20000,
			Priority: int32(i % 3),
			Weight:   int32(1 + i%2),
			Headroom: map[corev1.ResourceName]Headroom{corev1.ResourceCPU: {Percent: 10}},
			ScaleUp:  Behavior{StabilizationWindow: 30 * time.Second, MaxStep: 500, Period: 15 * time.Second},
		}
		switch i % 4 {
		case 1: // a pool of one zone
			s.PoolSelector = labels.SelectorFromSet(labels.Set{"topology.kubernetes.io/zone": "zone-1"})
		case 2: // a node selector within the whole pool
			s.Shape.NodeSelector = map[string]string{"topology.kubernetes.io/zone": "zone-2"}
		}
		scalers[i] = s
	}
	return Cluster{Rooms: l.Rooms(), Pending: l.Pending(), opportunistic: l.Opportunistic}, scalers
}

// BenchmarkDecide is one round for every scaler at the scalability envelope.
// The hot path is capacity.Fit: twice per scaler over its pool.
func BenchmarkDecide(b *testing.B) {
	cluster, scalers := benchWorld()
	idle := cluster
	idle.Pending = nil
	for _, c := range []Cluster{idle, cluster} {
		b.Run(fmt.Sprintf("nodes=%d/scalers=%d/pending=%d", benchNodes, benchScalers, len(c.Pending)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Decide(t0, c, scalers)
			}
		})
	}
}

// BenchmarkDecideSlots is BenchmarkDecide with every scaler keeping 50 slots
// of a 4-core, 8 GiB paid pod: each reads its pods and predicts where its
// new replicas land, one by one, up to its Max.
func BenchmarkDecideSlots(b *testing.B) {
	cluster, scalers := benchWorld()
	cluster.Pending = nil
	web := capacity.Shape{Requests: capacity.Resources{corev1.ResourceCPU: 4000, corev1.ResourceMemory: 8 << 30, corev1.ResourcePods: 1}}
	for i := range scalers {
		scalers[i].Slots = []Slot{{Name: "web", Shape: web, Count: 50}}
	}
	b.Run(fmt.Sprintf("nodes=%d/scalers=%d/slots=50", benchNodes, benchScalers), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Decide(t0, cluster, scalers)
		}
	})
}
