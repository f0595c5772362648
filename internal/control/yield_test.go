package control

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

// yieldNode is one node of a yield test: its cores, the paid cores bound to
// it, and its opportunistic pods as "app:cores" (named <app>-<node>-<i>).
type yieldNode struct {
	name      string
	cores     int
	paid      string
	pods      []string
	podOption []podOpt
}

func yieldWorld(nodes []yieldNode, pending []*corev1.Pod, apps ...string) *env {
	var kn []*corev1.Node
	var ps []*corev1.Pod
	for _, n := range nodes {
		kn = append(kn, kubeNode(n.name, cores(n.cores)))
		if n.paid != "" {
			ps = append(ps, kubePod("paid-"+n.name, n.name, list("cpu", n.paid)))
		}
		for i, spec := range n.pods {
			a, c, _ := strings.Cut(spec, ":")
			ps = append(ps, kubePod(fmt.Sprintf("%s-%s-%d", a, n.name, i), n.name, list("cpu", c), append([]podOpt{app(a)}, n.podOption...)...))
		}
	}
	return newEnv(kn, append(ps, pending...), apps...)
}

// tenByEight is issue 13's measured case: 10 nodes of 8 cores, each with a
// 3-core paid pod and a 4-core worker pod.
func tenByEight() []yieldNode {
	var out []yieldNode
	for i := range 10 {
		out = append(out, yieldNode{name: fmt.Sprintf("n%d", i), cores: 8, paid: "3", pods: []string{"worker:4"}})
	}
	return out
}

func pendingPaid(name, cpu string, opts ...podOpt) *corev1.Pod {
	return kubePod(name, "", list("cpu", cpu), opts...)
}

func TestYield(t *testing.T) {
	w4 := list("cpu", "4")
	tests := []struct {
		name    string
		nodes   []yieldNode
		pending []*corev1.Pod
		scalers []Scaler
		// want: per scaler key, "desired limit victims...".
		want map[string]string
	}{
		{
			name:    "issue 13's measured case: one worker pod goes, though the budget allows them all",
			nodes:   tenByEight(),
			pending: []*corev1.Pod{pendingPaid("big", "5")},
			scalers: []Scaler{worker("worker", w4)},
			want:    map[string]string{"default/worker": "9 PendingPaid default/worker-n0-0"},
		},
		{
			name: "a single node where a victim helps",
			nodes: []yieldNode{
				{name: "a", cores: 8, paid: "7", pods: []string{"worker:1"}},
				{name: "b", cores: 8, paid: "3", pods: []string{"worker:4"}},
				{name: "c", cores: 8, paid: "6", pods: []string{"worker:1", "worker:1"}},
			},
			pending: []*corev1.Pod{pendingPaid("big", "5")},
			scalers: []Scaler{worker("worker", list("cpu", "1"))},
			want:    map[string]string{"default/worker": "3 PendingPaid default/worker-b-0"},
		},
		{
			name: "the node needing the fewest victims",
			nodes: []yieldNode{
				{name: "a", cores: 8, paid: "3", pods: []string{"small:1", "small:1", "small:1", "small:1", "small:1"}},
				{name: "b", cores: 8, paid: "3", pods: []string{"big:4", "small:1"}},
			},
			pending: []*corev1.Pod{pendingPaid("p", "5")},
			scalers: []Scaler{worker("small", list("cpu", "1")), worker("big", w4)},
			want:    map[string]string{"default/big": "0 PendingPaid default/big-b-0", "default/small": "5 PendingPaid default/small-b-1"},
		},
		{
			name:    "two pending pods take two nodes",
			nodes:   tenByEight(),
			pending: []*corev1.Pod{pendingPaid("p1", "5"), pendingPaid("p2", "5")},
			scalers: []Scaler{worker("worker", w4)},
			want:    map[string]string{"default/worker": "8 PendingPaid default/worker-n0-0 default/worker-n1-0"},
		},
		{
			name:    "a pending pod that fits nowhere even after a yield takes nothing",
			nodes:   tenByEight(),
			pending: []*corev1.Pod{pendingPaid("huge", "9")},
			scalers: []Scaler{worker("worker", w4)},
			want:    map[string]string{"default/worker": "10 Fit"},
		},
		{
			name: "a higher-priority scaler's pods stay when a lower one's suffice",
			nodes: []yieldNode{
				{name: "a", cores: 8, paid: "4", pods: []string{"high:4"}},
				{name: "b", cores: 8, paid: "4", pods: []string{"low:4"}},
				{name: "c", cores: 8, paid: "2", pods: []string{"high:3", "low:3"}},
			},
			pending: []*corev1.Pod{pendingPaid("p1", "4"), pendingPaid("p2", "3")},
			scalers: []Scaler{worker("high", list("cpu", "3"), prio(10)), worker("low", list("cpu", "3"))},
			want:    map[string]string{"default/high": "2 Budget", "default/low": "0 PendingPaid default/low-b-0 default/low-c-1"},
		},
		{
			name: "the pod whose removal suffices exactly",
			nodes: []yieldNode{
				{name: "a", cores: 16, paid: "4", pods: []string{"worker:2", "worker:6", "worker:4"}},
			},
			pending: []*corev1.Pod{pendingPaid("p", "4")},
			scalers: []Scaler{worker("worker", list("cpu", "2"))},
			want:    map[string]string{"default/worker": "2 PendingPaid default/worker-a-2"},
		},
		{
			name:    "never below Min",
			nodes:   tenByEight(),
			pending: []*corev1.Pod{pendingPaid("big", "5")},
			scalers: []Scaler{worker("worker", w4, bounds(10, 100))},
			want:    map[string]string{"default/worker": "10 Fit"},
		},
		{
			name:    "a paid pod below the workload's pod priority takes nothing",
			nodes:   tenByEight(),
			pending: []*corev1.Pod{pendingPaid("big", "5", priority(-1))},
			scalers: []Scaler{worker("worker", w4)},
			want:    map[string]string{"default/worker": "10 Fit"},
		},
		{
			// With PriorityClasses the scheduler preempts for it: a yield
			// too would cost a second pod.
			name:    "a paid pod above the workload's pod priority is the scheduler's to preempt for",
			nodes:   tenByEight(),
			pending: []*corev1.Pod{pendingPaid("big", "5", priority(1000))},
			scalers: []Scaler{worker("worker", w4, podPriority(-100))},
			want:    map[string]string{"default/worker": "10 Fit"},
		},
		{
			name:  "unless it never preempts",
			nodes: tenByEight(),
			pending: []*corev1.Pod{pendingPaid("big", "5", priority(1000), func(p *corev1.Pod) {
				never := corev1.PreemptNever
				p.Spec.PreemptionPolicy = &never
			})},
			scalers: []Scaler{worker("worker", w4, podPriority(-100))},
			want:    map[string]string{"default/worker": "9 PendingPaid default/worker-n0-0"},
		},
		{
			name:    "a gated paid pod takes nothing",
			nodes:   tenByEight(),
			pending: []*corev1.Pod{pendingPaid("big", "5", func(p *corev1.Pod) { p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "kueue"}} })},
			scalers: []Scaler{worker("worker", w4)},
			want:    map[string]string{"default/worker": "10 Fit"},
		},
		{
			name:    "a paid pod that fits now takes nothing",
			nodes:   append(tenByEight(), yieldNode{name: "spare", cores: 8}),
			pending: []*corev1.Pod{pendingPaid("big", "5")},
			scalers: []Scaler{worker("worker", w4)},
			want:    map[string]string{"default/worker": "12 Fit"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var apps []string
			for _, s := range tc.scalers {
				apps = append(apps, strings.TrimPrefix(s.Key, "default/"))
			}
			e := yieldWorld(tc.nodes, tc.pending, apps...)
			for key, d := range byKey(e.decide(t0, tc.scalers...)) {
				got := strings.Join(append([]string{fmt.Sprint(d.Desired), string(d.Limit)}, d.Yield...), " ")
				if got != tc.want[key] {
					t.Errorf("%s: got %q, want %q\nreason: %s", key, got, tc.want[key], d.Reason)
				}
			}
		})
	}
}

// TestYieldNextRounds: once the victims are chosen and the count lowered,
// the following rounds hold the count and choose nobody else, whether the
// marks, the ReplicaSet or the termination have been seen yet or not.
func TestYieldNextRounds(t *testing.T) {
	w4 := list("cpu", "4")
	marked := func(p *corev1.Pod) {
		if p.Name == "worker-n0-0" {
			p.Annotations = map[string]string{capacity.DeletionCostAnnotation: "-1000"}
		}
	}
	terminating := func(p *corev1.Pod) {
		if p.Name == "worker-n0-0" {
			p.DeletionTimestamp = &metav1.Time{Time: t0}
		}
	}
	tests := []struct {
		name    string
		opt     podOpt
		current int32
		want    string
	}{
		{name: "the first round yields", current: 10, want: "9 PendingPaid default/worker-n0-0"},
		{name: "lowered, the mark not seen yet: hold", current: 9, want: "9 PendingPaid"},
		{name: "lowered and marked: hold", opt: marked, current: 9, want: "9 PendingPaid"},
		{name: "the victim terminating: hold", opt: terminating, current: 9, want: "9 PendingPaid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nodes := tenByEight()
			if tc.opt != nil {
				nodes[0].podOption = []podOpt{tc.opt}
			}
			e := yieldWorld(nodes, []*corev1.Pod{pendingPaid("big", "5")}, "worker")
			d := e.decide(t0, worker("worker", w4, current(tc.current)))[0]
			got := strings.Join(append([]string{fmt.Sprint(d.Desired), string(d.Limit)}, d.Yield...), " ")
			if got != tc.want {
				t.Errorf("got %q, want %q\nreason: %s", got, tc.want, d.Reason)
			}
		})
	}
}

// TestYieldIgnoresNodeNames: renaming and reordering the nodes changes
// nothing when they differ; the victims' room decides, not the name.
func TestYieldIgnoresNodeNames(t *testing.T) {
	for _, names := range [][2]string{{"a", "b"}, {"b", "a"}, {"z", "m"}} {
		nodes := []yieldNode{
			{name: names[0], cores: 8, paid: "3", pods: []string{"worker:4"}},
			{name: names[1], cores: 8, paid: "2", pods: []string{"worker:5"}},
		}
		e := yieldWorld(nodes, []*corev1.Pod{pendingPaid("p", "5")}, "worker")
		d := e.decide(t0, worker("worker", list("cpu", "4")))[0]
		if want := []string{"default/worker-" + names[0] + "-0"}; !slices.Equal(d.Yield, want) {
			t.Errorf("nodes %v: yield %v, want the 4-core pod %v", names, d.Yield, want)
		}
	}
}
