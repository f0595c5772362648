package capacity

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// fuzzBytes hands out the fuzz input one small number at a time; once the
// input is spent it returns zeros, so every input decodes to some history.
type fuzzBytes []byte

func (b *fuzzBytes) next() int {
	if len(*b) == 0 {
		return 0
	}
	v := (*b)[0]
	*b = (*b)[1:]
	return int(v)
}

// n returns a number in [0, k).
func (b *fuzzBytes) n(k int) int { return b.next() % k }

// FuzzLedger decodes its input into a sequence of node and pod events (pods
// before their nodes, nodes deleted under pods, terminal and unbound pods,
// paid and opportunistic ones) and checks after each event that the
// incremental ledger agrees with a full recompute and with a direct sum over
// the live objects, and that Fit never exceeds the room the nodes have.
func FuzzLedger(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{
		4, 2, 1, // shape: 1 cpu, 512 MiB, a GPU
		0, 0, 4, 8, 9, 0, // node n0: 4 cores, 8 GiB, 9 pods, Ready
		0, 1, 2, 4, 3, 3, // node n1: not ready and cordoned
		3, 0, 0, 50, 10, 0, // pod p0 on n0
		3, 1, 0, 50, 10, 2, // pod p1 on n0, worker
		3, 2, 5, 50, 10, 0, // pod p2 unbound
		3, 3, 4, 50, 10, 1, // pod p3 on a node never seen, terminal
		2, 0, // delete n0 under its pods
		5, 1, // delete p1
		0, 0, 2, 2, 4, 4, // n0 back, with GPUs
	})
	f.Add([]byte("\x01\x01\x01\x00\x03\x07\x01\xff\xff\x0a\x00\x00\x03\x03\x00\x03\x07\x02\x90\x90\x0a\x02\x04\x01\x03\x06"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzBytes(data)
		// The shape the fit checks use: cpu and memory, sometimes a GPU.
		shapeReq := Resources{
			corev1.ResourceCPU:    int64(in.n(16)) * 250,
			corev1.ResourceMemory: int64(in.n(16)) << 28,
			corev1.ResourcePods:   1,
		}
		if in.n(4) == 0 {
			shapeReq["nvidia.com/gpu"] = 1
		}
		shape := Shape{Requests: shapeReq}
		workloads := []Workload{workload("worker"), workload("batch")}
		l := NewLedger(workloads)
		liveNodes := map[string]Node{}
		livePods := map[string]Pod{}
		for step := 0; len(in) > 0 && step < 64; step++ {
			var event string
			switch op := in.n(6); op {
			case 0, 1:
				name := fmt.Sprintf("n%d", in.n(4))
				alloc := list("cpu", fmt.Sprint(in.n(16)), "memory", fmt.Sprintf("%dGi", in.n(16)), "pods", fmt.Sprint(in.n(8)))
				flags := in.next()
				var opts []nodeOpt
				if flags&1 != 0 {
					opts = append(opts, notReady())
				}
				if flags&2 != 0 {
					opts = append(opts, cordoned())
				}
				if flags&4 != 0 {
					alloc["nvidia.com/gpu"] = list("g", "2")["g"]
				}
				n := FromNode(kubeNode(name, alloc, opts...))
				l.UpsertNode(n)
				liveNodes[n.Name] = n
				event = fmt.Sprintf("upsert node %s ready=%v unschedulable=%v alloc=%v", name, n.Ready, n.Unschedulable, n.Allocatable)
			case 2:
				name := fmt.Sprintf("n%d", in.n(5))
				l.DeleteNode(name)
				delete(liveNodes, name)
				event = "delete node " + name
			case 3, 4:
				name := fmt.Sprintf("p%d", in.n(8))
				node := ""
				if k := in.n(6); k < 5 {
					node = fmt.Sprintf("n%d", k) // n4 never exists as a node
				}
				req := list("cpu", fmt.Sprintf("%dm", in.next()*10), "memory", fmt.Sprintf("%dMi", in.next()*16))
				flags := in.next()
				var opts []podOpt
				if flags&1 != 0 {
					opts = append(opts, phase(corev1.PodSucceeded))
				}
				switch flags >> 1 & 3 {
				case 1:
					opts = append(opts, app("worker"))
				case 2:
					opts = append(opts, app("batch"))
				}
				if flags&8 != 0 {
					req["nvidia.com/gpu"] = list("g", "1")["g"]
				}
				p := FromPod(kubePod(name, node, req, opts...))
				l.UpsertPod(p)
				livePods[p.Key()] = p
				event = fmt.Sprintf("upsert pod %s node=%q terminal=%v labels=%v requests=%v", name, node, p.Terminal, p.Labels, p.Requests)
			case 5:
				name := fmt.Sprintf("p%d", in.n(9))
				l.DeletePod("default", name)
				delete(livePods, "default/"+name)
				event = "delete pod " + name
			}
			checkLedger(t, fmt.Sprintf("step %d (%s)", step, event), l, liveNodes, livePods, workloads, shape)
		}
		l.SetWorkloads(workloads[:1])
		checkLedger(t, "after SetWorkloads", l, liveNodes, livePods, workloads[:1], shape)
	})
}

func checkLedger(t *testing.T, at string, l *Ledger, liveNodes map[string]Node, livePods map[string]Pod, workloads []Workload, shape Shape) {
	t.Helper()
	got := l.Report()
	if want := Summarize(values(liveNodes), values(livePods), workloads); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: incremental report differs from recompute:\n got  %+v\n want %+v", at, got, want)
	}

	// The usable pool summed directly from the live objects.
	alloc, requests, opp := Resources{}, Resources{}, Resources{}
	for _, n := range liveNodes {
		if n.State() == NodeReady {
			alloc.Add(n.Allocatable)
		}
	}
	for _, p := range livePods {
		n, ok := liveNodes[p.NodeName]
		if p.Terminal || !ok || n.State() != NodeReady {
			continue
		}
		requests.Add(p.Requests)
		if p.Labels["app"] == "worker" || (len(workloads) > 1 && p.Labels["app"] == "batch") {
			opp.Add(p.Requests)
		}
	}
	seen := map[corev1.ResourceName]bool{}
	for _, r := range got.Resources {
		seen[r.Name] = true
		if r.Allocatable != alloc[r.Name] || r.Requests != requests[r.Name] || r.OpportunisticRequests != opp[r.Name] {
			t.Fatalf("%s: %s allocatable %d requests %d opportunistic %d, want %d %d %d", at, r.Name,
				r.Allocatable, r.Requests, r.OpportunisticRequests, alloc[r.Name], requests[r.Name], opp[r.Name])
		}
		if r.Remaining != r.Allocatable-r.Requests {
			t.Fatalf("%s: %s remaining %d != allocatable %d - requests %d", at, r.Name, r.Remaining, r.Allocatable, r.Requests)
		}
		if r.PaidRequests+r.OpportunisticRequests != r.Requests {
			t.Fatalf("%s: %s paid %d + opportunistic %d != requests %d", at, r.Name, r.PaidRequests, r.OpportunisticRequests, r.Requests)
		}
	}
	for _, set := range []Resources{alloc, requests} {
		for name, v := range set {
			if v != 0 && !seen[name] {
				t.Fatalf("%s: resource %s (%d) missing from the report", at, name, v)
			}
		}
	}

	var wantPending, gotPending []string
	for _, p := range livePods {
		if p.NodeName == "" && !p.Terminal {
			wantPending = append(wantPending, p.Key())
		}
	}
	slices.Sort(wantPending)
	for _, p := range l.Pending() {
		gotPending = append(gotPending, p.Key())
	}
	if !slices.Equal(gotPending, wantPending) {
		t.Fatalf("%s: pending %v, want %v", at, gotPending, wantPending)
	}

	// Fit never exceeds the room: per requested resource, the sum over Ready
	// nodes of what each node's free room holds; nothing on other nodes.
	rooms := l.Rooms()
	if len(rooms) != len(liveNodes) {
		t.Fatalf("%s: %d rooms for %d live nodes", at, len(rooms), len(liveNodes))
	}
	fit := Fit(rooms, shape)
	if len(fit.Nodes) != len(rooms) {
		t.Fatalf("%s: fit has %d nodes for %d rooms", at, len(fit.Nodes), len(rooms))
	}
	var sum int64
	for i, nf := range fit.Nodes {
		sum += nf.Replicas
		if nf.Node != rooms[i].Name {
			t.Fatalf("%s: fit node %d is %s, room is %s", at, i, nf.Node, rooms[i].Name)
		}
		if nf.Replicas < 0 {
			t.Fatalf("%s: %d replicas fit on %s", at, nf.Replicas, nf.Node)
		}
		if rooms[i].State != NodeReady && nf.Replicas != 0 {
			t.Fatalf("%s: %d replicas fit on %s node %s", at, nf.Replicas, rooms[i].State, nf.Node)
		}
		if nf.Replicas == 0 && nf.Reason == "" {
			t.Fatalf("%s: nothing fits on %s and no reason", at, nf.Node)
		}
	}
	if sum != fit.Total {
		t.Fatalf("%s: fit total %d, nodes sum to %d", at, fit.Total, sum)
	}
	for name, want := range shape.Requests {
		if want <= 0 {
			continue
		}
		var bound, aggregate int64
		for i := range rooms {
			if rooms[i].State == NodeReady {
				free := max(rooms[i].Free(name), 0)
				bound += free / want
				aggregate += free
			}
		}
		if fit.Total > bound || fit.Total > aggregate/want {
			t.Fatalf("%s: fit total %d above the %s bound %d (aggregate %d/%d)", at, fit.Total, name, bound, aggregate, want)
		}
	}
}
