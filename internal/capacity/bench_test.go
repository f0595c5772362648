package capacity

import (
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The Kubernetes scalability envelope: 5,000 nodes, 150,000 pods.
const benchNodes, benchPods = 5000, 150000

func benchCluster() ([]Node, []Pod) {
	ns := make([]Node, benchNodes)
	for i := range ns {
		ns[i] = FromNode(kubeNode(fmt.Sprintf("node-%05d", i), list("cpu", "32", "memory", "128Gi", "pods", "110", "ephemeral-storage", "500Gi"),
			labelled("topology.kubernetes.io/zone", fmt.Sprintf("zone-%d", i%3))))
	}
	ps := make([]Pod, benchPods)
	for i := range ps {
		p := kubePod(fmt.Sprintf("pod-%06d", i), ns[i%benchNodes].Name, list("cpu", "100m", "memory", "256Mi"))
		p.Namespace = fmt.Sprintf("ns-%d", i%50)
		p.Labels = map[string]string{"app": fmt.Sprintf("app-%d", i%500), "pod-template-hash": "5d8f7c9b6"}
		if i%10 == 0 {
			p.Labels["app"] = "worker"
		}
		ps[i] = FromPod(p)
	}
	return ns, ps
}

func benchWorkloads() []Workload {
	ws := make([]Workload, 10)
	for i := range ws {
		ws[i] = workload("worker")
		ws[i].Namespace = fmt.Sprintf("ns-%d", i)
		ws[i].Key = ws[i].Namespace + "/worker"
	}
	return ws
}

// BenchmarkSummarize is a full recompute of the cluster's report.
func BenchmarkSummarize(b *testing.B) {
	ns, ps := benchCluster()
	ws := benchWorkloads()
	b.Run(fmt.Sprintf("nodes=%d/pods=%d", benchNodes, benchPods), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Summarize(ns, ps, ws)
		}
	})
}

// BenchmarkPodEvent is one incremental update: a pod moves from pending to
// bound, as the scheduler's binding arrives through the watch. It also reports
// the heap held by the trimmed nodes and pods and a ledger of them (heap-MiB).
func BenchmarkPodEvent(b *testing.B) {
	b.Run(fmt.Sprintf("nodes=%d/pods=%d", benchNodes, benchPods), func(b *testing.B) {
		before := heapInUse()
		ns, ps := benchCluster() // trimmed nodes and pods, labels included
		l := NewLedger(benchWorkloads())
		for i := range ns {
			l.UpsertNode(ns[i])
		}
		for i := range ps {
			l.UpsertPod(ps[i])
		}
		ledgerBytes := heapInUse() - before
		pending, bound := ps[7], ps[7]
		pending.NodeName = ""
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i%2 == 0 {
				l.UpsertPod(pending)
			} else {
				l.UpsertPod(bound)
			}
			i++
		}
		b.ReportMetric(float64(ledgerBytes)/(1<<20), "heap-MiB")
		runtime.KeepAlive(l)
		runtime.KeepAlive(ns)
	})
}

// BenchmarkPending lists the pending pods, sorted by key, as each decision
// round does: here 5,000 of them (a worker scaled up faster than the
// scheduler binds, as in the 5,000-node run of docs/scale.md) among
// 150,000 bound.
func BenchmarkPending(b *testing.B) {
	const pending = 5000
	b.Run(fmt.Sprintf("nodes=%d/pods=%d/pending=%d", benchNodes, benchPods, pending), func(b *testing.B) {
		ns, ps := benchCluster()
		l := NewLedger(benchWorkloads())
		for i := range ns {
			l.UpsertNode(ns[i])
		}
		for i := range ps {
			if i%(benchPods/pending) == 0 {
				// Named as a Deployment's pods are: keys longer than the
				// 32 bytes a concatenation may build on the stack.
				ps[i].NodeName = ""
				ps[i].Namespace, ps[i].Name = "batch-workers", fmt.Sprintf("transcode-worker-5d8f7c9b6-%05d", i)
			}
			l.UpsertPod(ps[i])
		}
		if n := len(l.Pending()); n != pending {
			b.Fatalf("%d pending pods, want %d", n, pending)
		}
		b.ReportAllocs()
		for b.Loop() {
			l.Pending()
		}
	})
}

// BenchmarkFit places one shape on every node of the cluster.
func BenchmarkFit(b *testing.B) {
	ns, ps := benchCluster()
	l := NewLedger(nil)
	for i := range ns {
		l.UpsertNode(ns[i])
	}
	for i := range ps {
		l.UpsertPod(ps[i])
	}
	rooms := l.Rooms()
	shape := ShapeOf(&corev1.PodSpec{
		Containers:   []corev1.Container{{Resources: corev1.ResourceRequirements{Requests: list("cpu", "4", "memory", "8Gi")}}},
		NodeSelector: map[string]string{"topology.kubernetes.io/zone": "zone-1"},
	})
	b.Run(fmt.Sprintf("nodes=%d", benchNodes), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Fit(rooms, shape)
		}
	})
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
