package capacity

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestEligible(t *testing.T) {
	room := func(n *corev1.Node) *NodeRoom {
		m := FromNode(n)
		return &NodeRoom{Name: m.Name, Labels: m.Labels, Taints: m.Taints, State: m.State(), Allocatable: m.Allocatable, Requested: Resources{}}
	}
	big := list("cpu", "32", "memory", "64Gi", "pods", "110")
	full := list("cpu", "0", "memory", "0", "pods", "0")
	plain := Shape{Requests: Resources{"cpu": 1000, "pods": 1}}
	with := func(f func(*Shape)) Shape { s := plain; f(&s); return s }
	gpuToleration := []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists}}
	zoneA := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}}},
	}}}
	tests := []struct {
		name   string
		node   *corev1.Node
		shape  Shape
		want   bool
		reason string
	}{
		{name: "plain Ready node", node: kubeNode("n", big), shape: plain, want: true},
		{name: "resources are ignored: a full node is eligible", node: kubeNode("n", full), shape: plain, want: true},
		{name: "NotReady", node: kubeNode("n", big, notReady()), shape: plain, reason: "node not_ready"},
		{name: "cordoned", node: kubeNode("n", big, cordoned()), shape: plain, reason: "node cordoned"},
		{name: "untolerated NoSchedule taint", node: kubeNode("n", big, tainted("nvidia.com/gpu", "present", corev1.TaintEffectNoSchedule)), shape: plain,
			reason: "untolerated taint nvidia.com/gpu=present:NoSchedule"},
		{name: "untolerated NoExecute taint", node: kubeNode("n", big, tainted("x", "y", corev1.TaintEffectNoExecute)), shape: plain,
			reason: "untolerated taint x=y:NoExecute"},
		{name: "PreferNoSchedule does not exclude", node: kubeNode("n", big, tainted("x", "y", corev1.TaintEffectPreferNoSchedule)), shape: plain, want: true},
		{name: "control-plane taint", node: kubeNode("cp", big, tainted("node-role.kubernetes.io/control-plane", "", corev1.TaintEffectNoSchedule)), shape: plain,
			reason: "untolerated taint node-role.kubernetes.io/control-plane:NoSchedule"},
		{name: "tolerated taint", node: kubeNode("n", big, tainted("nvidia.com/gpu", "present", corev1.TaintEffectNoSchedule)),
			shape: with(func(s *Shape) { s.Tolerations = gpuToleration }), want: true},
		{name: "node selector matches", node: kubeNode("n", big, labelled("zone", "a")), shape: with(func(s *Shape) { s.NodeSelector = map[string]string{"zone": "a"} }), want: true},
		{name: "node selector does not match", node: kubeNode("n", big, labelled("zone", "b")), shape: with(func(s *Shape) { s.NodeSelector = map[string]string{"zone": "a"} }),
			reason: "node selector or affinity does not match"},
		{name: "required node affinity matches", node: kubeNode("n", big, labelled("zone", "a")), shape: with(func(s *Shape) { s.Affinity = zoneA }), want: true},
		{name: "required node affinity does not match", node: kubeNode("n", big), shape: with(func(s *Shape) { s.Affinity = zoneA }),
			reason: "node selector or affinity does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := Eligible(room(tt.node), tt.shape)
			if got != tt.want || reason != tt.reason {
				t.Errorf("Eligible = %v, %q; want %v, %q", got, reason, tt.want, tt.reason)
			}
		})
	}
}

func TestGatedPaidPodsAreReportedApart(t *testing.T) {
	gate := func(p *corev1.Pod) {
		p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "kueue.x-k8s.io/admission"}}
	}
	gatedPod := kubePod("queued", "", list("cpu", "20"), phase(corev1.PodPending), gate)
	if !FromPod(gatedPod).Gated {
		t.Fatal("a pod with scheduling gates is not Gated")
	}
	l := NewLedger(nil)
	l.UpsertNode(FromNode(kubeNode("a", list("cpu", "32"))))
	l.UpsertPod(FromPod(gatedPod))
	l.UpsertPod(FromPod(kubePod("waiting", "", list("cpu", "2"), phase(corev1.PodPending))))
	rep := l.Report()
	if want := (Demand{Pods: 1, Requests: Resources{"cpu": 2000, "pods": 1}}); !reflect.DeepEqual(rep.PendingPaid, want) {
		t.Errorf("pending paid = %+v, want %+v", rep.PendingPaid, want)
	}
	if want := (Demand{Pods: 1, Requests: Resources{"cpu": 20000, "pods": 1}}); !reflect.DeepEqual(rep.GatedPaid, want) {
		t.Errorf("gated paid = %+v, want %+v", rep.GatedPaid, want)
	}
	// The gate is lifted: the same pod becomes demand.
	ungated := gatedPod.DeepCopy()
	ungated.Spec.SchedulingGates = nil
	l.UpsertPod(FromPod(ungated))
	rep = l.Report()
	if rep.PendingPaid.Pods != 2 || rep.GatedPaid.Pods != 0 {
		t.Errorf("after the gate is lifted: pending %d, gated %d; want 2, 0", rep.PendingPaid.Pods, rep.GatedPaid.Pods)
	}
}

// TestStrandedFollowsNodeState: a workload's pods on nodes that are not
// Ready are Stranded, and move in and out as the node's state changes.
func TestStrandedFollowsNodeState(t *testing.T) {
	l := NewLedger([]Workload{workload("worker")})
	l.UpsertNode(FromNode(kubeNode("a", list("cpu", "32"))))
	l.UpsertNode(FromNode(kubeNode("b", list("cpu", "32"))))
	for i, node := range []string{"a", "a", "b", "b", "b", "gone"} {
		l.UpsertPod(FromPod(kubePod("w"+string(rune('0'+i)), node, list("cpu", "1"), app("worker"))))
	}
	stranded := func() (int, int) {
		u := l.Report().Workloads[0]
		return u.Pods, u.Stranded
	}
	steps := []struct {
		name     string
		do       func()
		stranded int
	}{
		{"a pod on a node never seen", func() {}, 1},
		{"b goes NotReady", func() { l.UpsertNode(FromNode(kubeNode("b", list("cpu", "32"), notReady()))) }, 4},
		{"b is Ready but cordoned", func() { l.UpsertNode(FromNode(kubeNode("b", list("cpu", "32"), cordoned()))) }, 4},
		{"b is back", func() { l.UpsertNode(FromNode(kubeNode("b", list("cpu", "32")))) }, 1},
		{"the missing node appears", func() { l.UpsertNode(FromNode(kubeNode("gone", list("cpu", "32")))) }, 0},
		{"a is deleted", func() { l.DeleteNode("a") }, 2},
		{"a stranded pod goes", func() { l.DeletePod("default", "w0") }, 1},
		{"a is back", func() { l.UpsertNode(FromNode(kubeNode("a", list("cpu", "32")))) }, 0},
	}
	for _, s := range steps {
		s.do()
		pods, got := stranded()
		if got != s.stranded {
			t.Fatalf("%s: %d of %d pods stranded, want %d", s.name, got, pods, s.stranded)
		}
	}
	if rep := l.Report(); rep.Workloads[0].Pods != 5 {
		t.Errorf("pods %d, want 5", rep.Workloads[0].Pods)
	}
}
