package sim

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

// testWorld builds a world from a scenario's YAML, at time zero, with
// nothing placed yet.
func testWorld(t *testing.T, yaml string) *world {
	t.Helper()
	sc, err := ParseScenario("test.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	return newWorld(sc, false)
}

// advance runs the cluster alone (no strategy) for n seconds.
func advance(w *world, n int) {
	for range n {
		w.now += time.Second
		w.fireTimers()
		w.reconcileSets()
		w.schedulePending()
	}
}

func (w *world) set(name string) *replicaSet {
	for _, rs := range w.sets {
		if rs.name == name {
			return rs
		}
	}
	panic("no ReplicaSet " + name)
}

// placement lists each node's pods by ReplicaSet, e.g. "a-1: web web".
func placement(w *world) string {
	var lines []string
	for _, n := range w.nodes {
		var names []string
		for _, p := range n.pods {
			names = append(names, p.rs.name)
		}
		slices.Sort(names)
		lines = append(lines, n.name+": "+strings.Join(names, " "))
	}
	return strings.Join(lines, "\n")
}

const threeNodes = `duration: 1h
priorityClasses: %v
nodeGroups:
- name: a
  count: 3
  allocatable: {cpu: "8", memory: 32Gi}
paid:
- name: web
  requests: {cpu: "4", memory: 1Gi}
  priority: 1000
  startup: 2s
  terminationGracePeriod: 10s
opportunistic:
- name: worker
  requests: {cpu: "1", memory: 1Gi}
  priority: -10
  terminationGracePeriod: 5s
  maxReplicas: 100
`

func TestSchedulerSpreadsAndFits(t *testing.T) {
	w := testWorld(t, fmt.Sprintf(threeNodes, true))
	w.set("web").replicas = 3
	advance(w, 1)
	if got, want := placement(w), "a-1: web\na-2: web\na-3: web"; got != want {
		t.Errorf("least allocated first:\n%s\nwant\n%s", got, want)
	}
	w.set("web").replicas = 7
	advance(w, 1)
	if got, want := placement(w), "a-1: web web\na-2: web web\na-3: web web"; got != want {
		t.Errorf("full nodes:\n%s\nwant\n%s", got, want)
	}
	if w.pendingPaid != 1 || len(w.pending) != 1 {
		t.Errorf("%d paid pods pending (%d in all), want the 7th", w.pendingPaid, len(w.pending))
	}
	advance(w, 2)
	if rs := w.set("web"); rs.ready != 6 {
		t.Errorf("%d web pods Ready after their 2 s start-up, want 6", rs.ready)
	}
}

// TestSchedulerPacksWithMostAllocated: with schedulerScoring MostAllocated
// the scheduler puts a pod on the fuller node that fits, where the default
// (LeastAllocated) takes the emptiest one.
func TestSchedulerPacksWithMostAllocated(t *testing.T) {
	for _, tt := range []struct{ scoring, want string }{
		{"LeastAllocated", "a-1: web\na-2: worker\na-3: "},
		{"MostAllocated", "a-1: web worker\na-2: \na-3: "},
	} {
		t.Run(tt.scoring, func(t *testing.T) {
			w := testWorld(t, fmt.Sprintf(threeNodes, true)+"schedulerScoring: "+tt.scoring+"\n")
			w.set("web").replicas = 1
			advance(w, 1)
			w.set("worker").replicas = 1
			advance(w, 1)
			if got := placement(w); got != tt.want {
				t.Errorf("placement:\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestSchedulerHonoursTaintsAndSelectors(t *testing.T) {
	w := testWorld(t, `duration: 1h
nodeGroups:
- name: plain
  count: 1
  allocatable: {cpu: "8"}
- name: gpu
  count: 1
  allocatable: {cpu: "8", nvidia.com/gpu: "2"}
  labels: {accelerator: nvidia}
  taints: [{key: dedicated, value: gpu, effect: NoSchedule}]
paid:
- name: train
  requests: {cpu: "1", nvidia.com/gpu: "1"}
  tolerations: [{key: dedicated, operator: Exists}]
  nodeSelector: {accelerator: nvidia}
- name: web
  requests: {cpu: "1"}
opportunistic:
- name: worker
  requests: {cpu: "1"}
  maxReplicas: 100
`)
	w.set("train").replicas = 3
	w.set("web").replicas = 10
	advance(w, 1)
	if got, want := placement(w), "plain-1: web web web web web web web web\ngpu-1: train train"; got != want {
		t.Errorf("placement:\n%s\nwant\n%s", got, want)
	}
	if len(w.pending) != 3 {
		t.Errorf("%d pods pending, want a third GPU pod and 2 web pods that fit nowhere", len(w.pending))
	}
}

func TestPreemption(t *testing.T) {
	w := testWorld(t, fmt.Sprintf(threeNodes, true))
	w.set("worker").replicas = 24
	advance(w, 6) // t=6: 24 workers Ready
	w.set("web").replicas = 1
	advance(w, 1) // t=7: the web pod fits nowhere and preempts
	web := w.set("web").active[0]
	nominated := web.nominated
	if web.node >= 0 || web.nominated < 0 {
		t.Fatalf("web pod on node %d nominated %d, want it to wait for its victims", web.node, web.nominated)
	}
	var terminating []string
	for _, n := range w.nodes {
		for _, p := range n.pods {
			if p.terminating {
				terminating = append(terminating, n.name)
			}
		}
	}
	if len(terminating) != 4 || terminating[0] != w.nodes[web.nominated].name {
		t.Fatalf("victims on %v, want 4 workers (not 8: the rest are reprieved) on the nominated node %s", terminating, w.nodes[web.nominated].name)
	}
	if got := len(w.set("worker").active); got != 20 {
		t.Errorf("%d workers active, want 20 until the ReplicaSet replaces the victims", got)
	}
	advance(w, 1) // t=8: the replacements wait, the room is held for the web pod
	if w.set("worker").ready != 20 || len(w.pending) != 5 {
		t.Errorf("%d workers Ready, %d pods pending, want 20 and the web pod plus 4 replacements", w.set("worker").ready, len(w.pending))
	}
	advance(w, 3) // t=11
	if web.node >= 0 {
		t.Fatal("the web pod was bound before its victims' 5 s grace period ended")
	}
	advance(w, 1) // t=12: the victims are gone
	if web.node != nominated || w.pendingPaid != 0 {
		t.Fatalf("web pod on node %d, %d paid pods pending: want it on the nominated %d", web.node, w.pendingPaid, nominated)
	}
}

func TestNoPreemptionWithoutPriorityClasses(t *testing.T) {
	w := testWorld(t, fmt.Sprintf(threeNodes, false))
	w.set("worker").replicas = 24
	advance(w, 1)
	w.set("web").replicas = 1
	advance(w, 30)
	web := w.set("web").active[0]
	if web.node >= 0 || web.nominated >= 0 || w.set("worker").ready != 24 {
		t.Fatalf("web on %d nominated %d, %d workers Ready: want the paid pod waiting and no worker touched", web.node, web.nominated, w.set("worker").ready)
	}
	// The controller yields. The ReplicaSet deletes newest first, and they
	// are spread (least allocated first): 12 must go to free 4 cores on one node.
	w.set("worker").replicas = 12
	advance(w, 5)
	if web.node >= 0 {
		t.Fatal("the paid pod took room still held by terminating workers")
	}
	advance(w, 1)
	if web.node < 0 {
		t.Fatal("the paid pod is still pending 5 s after 12 workers were deleted")
	}
}

func TestReplicaSetScaleDownOrder(t *testing.T) {
	w := testWorld(t, fmt.Sprintf(threeNodes, true))
	worker := w.set("worker")
	w.set("web").replicas = 3
	worker.replicas = 4
	advance(w, 10) // 12 + 4 cores taken, the 4 workers Ready
	worker.replicas = 14
	advance(w, 1) // 8 cores free: 8 more bound and starting, 2 pending
	if len(w.pending) != 2 {
		t.Fatalf("%d pods pending, want 2", len(w.pending))
	}
	worker.replicas = 8
	advance(w, 1)
	var terminating, ready int
	for _, p := range worker.active {
		if p.node < 0 {
			t.Errorf("pending worker %s kept while bound ones were deleted", p.name)
		}
		if p.ready {
			ready++
		}
	}
	for _, n := range w.nodes {
		for _, p := range n.pods {
			if p.terminating {
				terminating++
				if p.ready {
					t.Errorf("Ready worker %s deleted before the ones still starting", p.name)
				}
			}
		}
	}
	if terminating != 4 || ready != 4 {
		t.Errorf("%d workers terminating, %d Ready kept: want the 2 pending and 4 starting ones deleted", terminating, ready)
	}
}

// TestNodeDownAndUp: pods on a node that goes down stay there, not Ready
// and still counted by their ReplicaSet, until the pod eviction timeout;
// then the ReplicaSet replaces them. A node back in time has them Ready.
func TestNodeDownAndUp(t *testing.T) {
	w := testWorld(t, fmt.Sprintf(threeNodes, true)+"podEvictionTimeout: 1m\n")
	web := w.set("web")
	web.replicas = 3
	advance(w, 3) // Ready after their 2 s start-up
	w.setNode(0, false)
	if w.allocCPU != 16000 || w.ledger.Report().States[1].Nodes != 1 {
		t.Errorf("allocatable %dm, report %+v: want 16 cores and one NotReady node", w.allocCPU, w.ledger.Report().States)
	}
	advance(w, 59)
	if got, want := placement(w), "a-1: web\na-2: web\na-3: web"; got != want {
		t.Errorf("59 s after a-1 went down:\n%s\nwant the pod still on it\n%s", got, want)
	}
	if web.ready != 2 || len(web.active) != 3 || w.paidDemand != 8000 || w.boundPaidCPU != 8000 {
		t.Errorf("%d web pods Ready of %d, paid demand %dm, bound %dm: want 2 of 3, the stranded pod neither demand nor bound on a Ready node",
			web.ready, len(web.active), w.paidDemand, w.boundPaidCPU)
	}
	advance(w, 1) // evicted at 60 s, replaced and bound at once
	if got, want := placement(w), "a-1: \na-2: web web\na-3: web"; got != want {
		t.Errorf("after the eviction timeout:\n%s\nwant\n%s", got, want)
	}
	if w.paidDemand != 12000 || w.boundPaidCPU != 12000 {
		t.Errorf("paid demand %dm, bound %dm, want 12000m each", w.paidDemand, w.boundPaidCPU)
	}
	w.setNode(0, true)
	web.replicas = 4
	advance(w, 1)
	if got, want := placement(w), "a-1: web\na-2: web web\na-3: web"; got != want {
		t.Errorf("after a-1 came back:\n%s\nwant\n%s", got, want)
	}

	// Back before the timeout: the pods were running all along.
	w.setNode(1, false)
	advance(w, 30)
	if web.ready != 2 {
		t.Errorf("%d web pods Ready with a-2 down, want 2", web.ready)
	}
	w.setNode(1, true)
	advance(w, 40)
	if got, want := placement(w), "a-1: web\na-2: web web\na-3: web"; got != want || web.ready != 4 {
		t.Errorf("a-2 back after 30 s: %d Ready,\n%s\nwant all 4 Ready, where they were\n%s", web.ready, got, want)
	}
}

// TestStrandedOpportunisticPods: the ledger counts the opportunistic pods
// on a node that is down as stranded (control.PodCountsOf reads it), and
// they harvest nothing.
func TestStrandedOpportunisticPods(t *testing.T) {
	w := testWorld(t, fmt.Sprintf(threeNodes, true))
	worker := w.set("worker")
	worker.replicas = 6
	advance(w, 6)
	on := len(w.nodes[0].pods)
	w.setNode(0, false)
	advance(w, 10)
	u := w.ledger.Report().Workloads
	if len(u) != 1 || u[0].Stranded != on || on == 0 {
		t.Errorf("workloads %+v, want the %d pods on the node that is down stranded", u, on)
	}
	if w.readyOppCPU != int64(6-on)*1000 || w.boundOppCPU != int64(6-on)*1000 {
		t.Errorf("ready %dm, bound %dm, want %d cores: stranded pods harvest nothing", w.readyOppCPU, w.boundOppCPU, 6-on)
	}
}

// TestNodeDownNoEvictionTimeout: podEvictionTimeout 0 loses a node's pods
// at once.
func TestNodeDownNoEvictionTimeout(t *testing.T) {
	w := testWorld(t, fmt.Sprintf(threeNodes, true)+"podEvictionTimeout: 0s\n")
	w.set("web").replicas = 3
	advance(w, 1)
	w.setNode(0, false)
	advance(w, 1)
	if got, want := placement(w), "a-1: \na-2: web web\na-3: web"; got != want {
		t.Errorf("after a-1 went down:\n%s\nwant\n%s", got, want)
	}
}

// TestEvictionTimeoutRestartsWhenTheNodeFailsAgain: a node down, back, and
// down again evicts its pods the timeout after the last failure.
func TestEvictionTimeoutRestartsWhenTheNodeFailsAgain(t *testing.T) {
	w := testWorld(t, fmt.Sprintf(threeNodes, true)+"podEvictionTimeout: 1m\n")
	w.set("web").replicas = 3
	advance(w, 3)
	w.setNode(0, false)
	advance(w, 50)
	w.setNode(0, true)
	advance(w, 5)
	w.setNode(0, false)
	advance(w, 30) // 85 s after the first failure, 30 s after the second
	if got, want := placement(w), "a-1: web\na-2: web\na-3: web"; got != want {
		t.Errorf("30 s after the second failure:\n%s\nwant the pod still on a-1\n%s", got, want)
	}
	advance(w, 30)
	if got, want := placement(w), "a-1: \na-2: web web\na-3: web"; got != want {
		t.Errorf("60 s after the second failure:\n%s\nwant\n%s", got, want)
	}
}

// TestLedgerMatchesWorld drives a world at random and checks that the
// ledger (what the strategies read) agrees with the scheduler's own view.
func TestLedgerMatchesWorld(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			w := testWorld(t, fmt.Sprintf(threeNodes, seed%2 == 0))
			for step := range 300 {
				switch rng.IntN(6) {
				case 0:
					w.set("web").replicas = int32(rng.IntN(7))
				case 1:
					w.set("worker").replicas = int32(rng.IntN(30))
				case 2:
					w.setNode(rng.IntN(3), rng.IntN(3) > 0)
				}
				advance(w, 1)
				var want []capacity.NodeRoom
				var cpu [2]int64
				for i, r := range w.rooms {
					r.Pods = len(w.nodes[i].pods)
					want = append(want, r)
					if r.State == capacity.NodeReady {
						cpu[0] += r.Requested[corev1.ResourceCPU] - r.OpportunisticRequested[corev1.ResourceCPU]
						cpu[1] += r.OpportunisticRequested[corev1.ResourceCPU]
					}
				}
				got := w.ledger.Rooms()
				for i := range got {
					if !reflect.DeepEqual(nonZero(got[i].Requested), nonZero(want[i].Requested)) || got[i].State != want[i].State || got[i].Pods != want[i].Pods ||
						!reflect.DeepEqual(nonZero(got[i].OpportunisticRequested), nonZero(want[i].OpportunisticRequested)) {
						t.Fatalf("step %d, node %s: ledger %+v, world %+v", step, got[i].Name, got[i], want[i])
					}
				}
				if len(w.ledger.Pending()) != len(w.pending) {
					t.Fatalf("step %d: ledger has %d pending pods, world %d", step, len(w.ledger.Pending()), len(w.pending))
				}
				if cpu != [2]int64{w.boundPaidCPU, w.boundOppCPU} {
					t.Fatalf("step %d: bound cpu paid/opportunistic %v, running totals %d/%d", step, cpu, w.boundPaidCPU, w.boundOppCPU)
				}
			}
		})
	}
}

func nonZero(r capacity.Resources) capacity.Resources {
	out := capacity.Resources{}
	for k, v := range r {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}
