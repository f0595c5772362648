package capacity

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestLedgerAgreesWithSummarize drives a ledger through random node and pod
// events, in any order (pods before their nodes, nodes deleted under pods),
// and checks after each step that it reports exactly what a full recompute of
// the same state reports.
func TestLedgerAgreesWithSummarize(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			workloads := []Workload{workload("worker")}
			l := NewLedger(workloads)
			liveNodes := map[string]Node{}
			livePods := map[string]Pod{}
			for step := range 400 {
				switch op := rng.IntN(10); {
				case op < 3:
					n := randomNode(rng)
					l.UpsertNode(n)
					liveNodes[n.Name] = n
				case op < 4:
					name := fmt.Sprintf("n%d", rng.IntN(6))
					l.DeleteNode(name)
					delete(liveNodes, name)
				case op < 8:
					p := randomPod(rng)
					l.UpsertPod(p)
					livePods[p.Key()] = p
				default:
					name := fmt.Sprintf("p%d", rng.IntN(30))
					l.DeletePod("default", name)
					delete(livePods, "default/"+name)
				}
				want := Summarize(values(liveNodes), values(livePods), workloads)
				if got := l.Report(); !reflect.DeepEqual(got, want) {
					t.Fatalf("step %d: incremental report differs from recompute:\n got  %+v\n want %+v", step, got, want)
				}
				for _, name := range []corev1.ResourceName{"cpu", "memory", "pods", "nvidia.com/gpu", "example.com/absent"} {
					got, gotOK := l.ReadyResource(name)
					if want, wantOK := want.Resource(name); got != want || gotOK != wantOK {
						t.Fatalf("step %d: ReadyResource(%s) = %+v, %t; the report's is %+v, %t", step, name, got, gotOK, want, wantOK)
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
					t.Fatalf("step %d: pending %v, want %v", step, gotPending, wantPending)
				}
				wantOpp, gotOpp := map[string][]string{}, map[string][]string{}
				for _, p := range livePods {
					if p.NodeName != "" && !p.Terminal && workloads[0].matches(&p) {
						wantOpp[p.NodeName] = append(wantOpp[p.NodeName], p.Key())
					}
				}
				for node := range wantOpp {
					slices.Sort(wantOpp[node])
				}
				for node, pods := range l.Opportunistic() {
					for _, bp := range pods {
						gotOpp[node] = append(gotOpp[node], bp.Key)
					}
				}
				if !reflect.DeepEqual(gotOpp, wantOpp) {
					t.Fatalf("step %d: opportunistic pods per node %v, want %v", step, gotOpp, wantOpp)
				}
				wantPaid, gotPaid := map[string][]string{}, map[string][]string{}
				for _, p := range livePods {
					if p.NodeName != "" && !p.Terminal && !workloads[0].matches(&p) {
						wantPaid[p.NodeName] = append(wantPaid[p.NodeName], p.Key())
					}
				}
				for node := range wantPaid {
					slices.Sort(wantPaid[node])
				}
				for node, pods := range l.Paid() {
					for _, bp := range pods {
						gotPaid[node] = append(gotPaid[node], bp.Key)
					}
				}
				if !reflect.DeepEqual(gotPaid, wantPaid) {
					t.Fatalf("step %d: paid pods per node %v, want %v", step, gotPaid, wantPaid)
				}
			}
			// Changing the workload set reclassifies every pod.
			l.SetWorkloads(nil)
			if got, want := l.Report(), Summarize(values(liveNodes), values(livePods), nil); !reflect.DeepEqual(got, want) {
				t.Fatalf("after SetWorkloads: got %+v, want %+v", got, want)
			}
		})
	}
}

func TestLedgerForgetsPlaceholderNodes(t *testing.T) {
	l := NewLedger(nil)
	l.UpsertPod(FromPod(kubePod("p", "later", list("cpu", "1"))))
	l.UpsertNode(FromNode(kubeNode("later", list("cpu", "4"))))
	if got, _ := l.Report().Resource(corev1.ResourceCPU); got.Requests != 1000 {
		t.Fatalf("pod bound before its node arrived: requests %d, want 1000", got.Requests)
	}
	l.DeleteNode("later")
	l.DeletePod("default", "p")
	if len(l.nodes) != 0 {
		t.Fatalf("ledger still holds %d node entries after node and pod are gone", len(l.nodes))
	}
}

func values[T any](m map[string]T) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func randomNode(rng *rand.Rand) Node {
	alloc := list("cpu", fmt.Sprint(rng.IntN(32)), "memory", fmt.Sprintf("%dGi", rng.IntN(64)), "pods", "110")
	if rng.IntN(4) == 0 {
		alloc["nvidia.com/gpu"] = list("g", "4")["g"]
	}
	var opts []nodeOpt
	if rng.IntN(4) == 0 {
		opts = append(opts, notReady())
	}
	if rng.IntN(4) == 0 {
		opts = append(opts, cordoned())
	}
	return FromNode(kubeNode(fmt.Sprintf("n%d", rng.IntN(6)), alloc, opts...))
}

func randomPod(rng *rand.Rand) Pod {
	node := ""
	if rng.IntN(5) > 0 {
		node = fmt.Sprintf("n%d", rng.IntN(7)) // n6 never exists as a node
	}
	req := list("cpu", fmt.Sprintf("%dm", rng.IntN(4000)), "memory", fmt.Sprintf("%dMi", rng.IntN(4096)))
	if rng.IntN(5) == 0 {
		req["nvidia.com/gpu"] = list("g", "1")["g"]
	}
	var opts []podOpt
	if rng.IntN(3) == 0 {
		opts = append(opts, app("worker"))
	}
	if rng.IntN(6) == 0 {
		opts = append(opts, phase(corev1.PodSucceeded))
	}
	return FromPod(kubePod(fmt.Sprintf("p%d", rng.IntN(30)), node, req, opts...))
}

// TestFromPodYieldFields: what a yield needs to know of a pod.
func TestFromPodYieldFields(t *testing.T) {
	now := metav1.Now()
	tests := []struct {
		name string
		pod  corev1.Pod
		want Pod
	}{
		{name: "plain", want: Pod{}},
		{name: "terminating", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}}, want: Pod{Terminating: true}},
		{name: "gated", pod: corev1.Pod{Spec: corev1.PodSpec{SchedulingGates: []corev1.PodSchedulingGate{{Name: "kueue"}}}}, want: Pod{Gated: true}},
		{name: "deletion cost", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{DeletionCostAnnotation: "-1000"}}}, want: Pod{DeletionCost: -1000}},
		{name: "invalid deletion cost counts as 0", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{DeletionCostAnnotation: "cheap"}}}, want: Pod{}},
		{name: "deletion cost beyond int32 counts as 0", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{DeletionCostAnnotation: "3000000000"}}}, want: Pod{}},
		{name: "ready: start-up is creation to Ready", pod: readyPod(now, now.Add(7*time.Second), corev1.ConditionTrue), want: Pod{StartUp: 7 * time.Second}},
		{name: "not ready: no start-up yet", pod: readyPod(now, now.Add(7*time.Second), corev1.ConditionFalse), want: Pod{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := FromPod(&tc.pod)
			if got.Terminating != tc.want.Terminating || got.Gated != tc.want.Gated || got.DeletionCost != tc.want.DeletionCost || got.StartUp != tc.want.StartUp {
				t.Errorf("terminating %v gated %v cost %d start-up %v, want %v %v %d %v", got.Terminating, got.Gated, got.DeletionCost, got.StartUp,
					tc.want.Terminating, tc.want.Gated, tc.want.DeletionCost, tc.want.StartUp)
			}
		})
	}
}

func readyPod(created metav1.Time, ready time.Time, status corev1.ConditionStatus) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: created},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.NewTime(ready)}}}}
}

// TestStartUps keeps the last start-ups of a workload's pods, each counted
// once when the pod first turns Ready, oldest first.
func TestStartUps(t *testing.T) {
	w := Workload{Key: "d/w", Namespace: "d", Selector: labels.SelectorFromSet(labels.Set{"app": "w"})}
	l := NewLedger([]Workload{w})
	pod := func(i int, up time.Duration) Pod {
		return Pod{Namespace: "d", Name: fmt.Sprintf("w-%d", i), Labels: map[string]string{"app": "w"}, NodeName: "n",
			Requests: Resources{corev1.ResourceCPU: 1000}, StartUp: up}
	}
	if got := l.StartUps("d/w"); got != nil {
		t.Fatalf("no pod Ready yet: got %v", got)
	}
	l.UpsertPod(pod(0, 0))
	l.UpsertPod(pod(0, 3*time.Second))
	l.UpsertPod(pod(0, 3*time.Second)) // an update of a Ready pod counts nothing
	l.UpsertPod(Pod{Namespace: "d", Name: "paid", NodeName: "n", Requests: Resources{corev1.ResourceCPU: 1000}, StartUp: time.Minute})
	if got := l.StartUps("d/w"); !slices.Equal(got, []time.Duration{3 * time.Second}) {
		t.Fatalf("got %v, want [3s]: one pod, counted once; paid pods are not the workload's", got)
	}
	for i := 1; i <= keptStartUps+2; i++ {
		l.UpsertPod(pod(i, time.Duration(i)*time.Second))
	}
	got := l.StartUps("d/w")
	if len(got) != keptStartUps || got[0] != 3*time.Second || got[len(got)-1] != time.Duration(keptStartUps+2)*time.Second {
		t.Fatalf("got %v: want the last %d, oldest first", got, keptStartUps)
	}
}

// TestCompareKeys: pods order as their keys do, also where one namespace
// is a prefix of another ("a/x" sorts after "a-b/y": '/' is above '-').
func TestCompareKeys(t *testing.T) {
	pods := []Pod{}
	for _, ns := range []string{"a", "a-b", "ab", "b", "a0", "z", "a-"} {
		for _, name := range []string{"x", "y", "a-b", "0"} {
			pods = append(pods, Pod{Namespace: ns, Name: name})
		}
	}
	for i := range pods {
		for j := range pods {
			a, b := &pods[i], &pods[j]
			if got, want := compareKeys(a, b), strings.Compare(a.Key(), b.Key()); got != want {
				t.Errorf("compareKeys(%s, %s) = %d, want %d", a.Key(), b.Key(), got, want)
			}
		}
	}
}
