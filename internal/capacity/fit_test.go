package capacity

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestFit(t *testing.T) {
	cores := func(n string) corev1.ResourceList { return list("cpu", n, "memory", "64Gi", "pods", "110") }
	fourCores := ShapeOf(&kubePod("w", "", list("cpu", "4", "memory", "1Gi")).Spec)
	tests := []struct {
		name    string
		nodes   []*corev1.Node
		pods    []*corev1.Pod
		shape   Shape
		want    int64
		perNode map[string]int64
		reason  map[string]string
	}{
		{
			name:    "free room divided by the shape, node by node",
			nodes:   []*corev1.Node{kubeNode("a", cores("32")), kubeNode("b", cores("28"))},
			pods:    []*corev1.Pod{kubePod("p", "a", list("cpu", "10"))},
			shape:   fourCores,
			want:    5 + 7,
			perNode: map[string]int64{"a": 5, "b": 7},
		},
		{
			name: "fragmentation: 30 free cores, 3 per node, hold no 4-core pod",
			nodes: []*corev1.Node{
				kubeNode("n0", cores("3")), kubeNode("n1", cores("3")), kubeNode("n2", cores("3")), kubeNode("n3", cores("3")), kubeNode("n4", cores("3")),
				kubeNode("n5", cores("3")), kubeNode("n6", cores("3")), kubeNode("n7", cores("3")), kubeNode("n8", cores("3")), kubeNode("n9", cores("3")),
			},
			shape:  fourCores,
			want:   0,
			reason: map[string]string{"n0": "insufficient cpu"},
		},
		{
			name:   "cordoned and NotReady nodes hold nothing",
			nodes:  []*corev1.Node{kubeNode("c", cores("32"), cordoned()), kubeNode("d", cores("32"), notReady())},
			shape:  fourCores,
			want:   0,
			reason: map[string]string{"c": "node cordoned", "d": "node not_ready"},
		},
		{
			name:    "NoSchedule taint without toleration",
			nodes:   []*corev1.Node{kubeNode("t", cores("32"), tainted("dedicated", "gpu", corev1.TaintEffectNoSchedule)), kubeNode("plain", cores("8"))},
			shape:   fourCores,
			want:    2,
			perNode: map[string]int64{"t": 0, "plain": 2},
			reason:  map[string]string{"t": "untolerated taint dedicated=gpu:NoSchedule"},
		},
		{
			name:  "NoSchedule taint with toleration",
			nodes: []*corev1.Node{kubeNode("t", cores("32"), tainted("dedicated", "gpu", corev1.TaintEffectNoSchedule))},
			shape: func() Shape {
				s := fourCores
				s.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
				return s
			}(),
			want: 8,
		},
		{
			name:  "PreferNoSchedule taints do not block",
			nodes: []*corev1.Node{kubeNode("t", cores("8"), tainted("soft", "", corev1.TaintEffectPreferNoSchedule))},
			shape: fourCores,
			want:  2,
		},
		{
			name:    "node selector",
			nodes:   []*corev1.Node{kubeNode("spot", cores("8"), labelled("pool", "spot")), kubeNode("on-demand", cores("32"))},
			shape:   func() Shape { s := fourCores; s.NodeSelector = map[string]string{"pool": "spot"}; return s }(),
			want:    2,
			perNode: map[string]int64{"spot": 2, "on-demand": 0},
			reason:  map[string]string{"on-demand": "node selector or affinity does not match"},
		},
		{
			name:  "required node affinity",
			nodes: []*corev1.Node{kubeNode("a", cores("8"), labelled("zone", "a")), kubeNode("b", cores("8"), labelled("zone", "b")), kubeNode("c", cores("8"), labelled("zone", "c"))},
			shape: func() Shape {
				s := fourCores
				s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a", "c"}}}}},
				}}}
				return s
			}(),
			want:    4,
			perNode: map[string]int64{"a": 2, "b": 0, "c": 2},
		},
		{
			name:    "extended resource: GPUs bound the count",
			nodes:   []*corev1.Node{kubeNode("gpu", list("cpu", "64", "memory", "256Gi", "pods", "110", "nvidia.com/gpu", "4")), kubeNode("cpu-only", cores("64"))},
			pods:    []*corev1.Pod{kubePod("train", "gpu", list("nvidia.com/gpu", "1"))},
			shape:   ShapeOf(&kubePod("w", "", list("cpu", "1", "nvidia.com/gpu", "1")).Spec),
			want:    3,
			perNode: map[string]int64{"gpu": 3, "cpu-only": 0},
			reason:  map[string]string{"cpu-only": "insufficient nvidia.com/gpu"},
		},
		{
			name:   "a node with zero allocatable holds nothing",
			nodes:  []*corev1.Node{kubeNode("empty", list("cpu", "0", "memory", "0", "pods", "0"))},
			shape:  fourCores,
			want:   0,
			reason: map[string]string{"empty": "insufficient cpu"},
		},
		{
			name:   "a shape with no requests is bounded by pod slots",
			nodes:  []*corev1.Node{kubeNode("a", list("cpu", "1", "pods", "5"))},
			pods:   []*corev1.Pod{kubePod("p", "a", nil), kubePod("q", "a", nil)},
			shape:  ShapeOf(&kubePod("w", "", nil).Spec),
			want:   3,
			reason: map[string]string{"a": ""},
		},
		{
			name:   "an overcommitted node holds zero, not a negative count",
			nodes:  []*corev1.Node{kubeNode("a", cores("4"))},
			pods:   []*corev1.Pod{kubePod("static", "a", list("cpu", "6"))},
			shape:  fourCores,
			want:   0,
			reason: map[string]string{"a": "insufficient cpu"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLedger(nil)
			for _, n := range nodes(tt.nodes...) {
				l.UpsertNode(n)
			}
			for _, p := range pods(tt.pods...) {
				l.UpsertPod(p)
			}
			got := Fit(l.Rooms(), tt.shape)
			if got.Total != tt.want {
				t.Errorf("total = %d, want %d (%+v)", got.Total, tt.want, got.Nodes)
			}
			for _, nf := range got.Nodes {
				if want, ok := tt.perNode[nf.Node]; ok && nf.Replicas != want {
					t.Errorf("node %s: %d replicas, want %d", nf.Node, nf.Replicas, want)
				}
				if want, ok := tt.reason[nf.Node]; ok && nf.Reason != want {
					t.Errorf("node %s: reason %q, want %q", nf.Node, nf.Reason, want)
				}
			}
		})
	}
}

func TestFitWithCreditCountsOwnPods(t *testing.T) {
	l := NewLedger([]Workload{workload("worker")})
	l.UpsertNode(FromNode(kubeNode("a", list("cpu", "8", "memory", "8Gi", "pods", "110"))))
	for _, p := range pods(kubePod("w1", "a", list("cpu", "4"), app("worker")), kubePod("w2", "a", list("cpu", "4"), app("worker"))) {
		l.UpsertPod(p)
	}
	shape := ShapeOf(&kubePod("w", "", list("cpu", "4")).Spec)
	rooms := l.Rooms()
	if more := Fit(rooms, shape).Total; more != 0 {
		t.Fatalf("more replicas on a full node = %d, want 0", more)
	}
	credit := map[string]Resources{"a": rooms[0].OpportunisticRequested}
	if total := FitWith(rooms, shape, credit).Total; total != 2 {
		t.Fatalf("replicas in total with own pods credited = %d, want 2", total)
	}
	if !reflect.DeepEqual(rooms[0].Requested, Resources{"cpu": 8000, "pods": 2}) {
		t.Fatalf("requested = %v", rooms[0].Requested)
	}
}
