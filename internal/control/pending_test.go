package control

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestPendingPaidPods(t *testing.T) {
	oneCore := list("cpu", "1")
	// Two full nodes of 8 cores: 2 paid cores and 6 worker replicas on each.
	nodes := func() []*corev1.Node {
		return []*corev1.Node{kubeNode("n0", cores(8), labelled("pool", "x")), kubeNode("n1", cores(8))}
	}
	bound := concat(pods("paid", 2, []string{"n0", "n1"}, list("cpu", "2")), pods("worker", 12, []string{"n0", "n1"}, oneCore, app("worker")))
	pending := func(name, cpu string, opts ...podOpt) *corev1.Pod {
		return kubePod(name, "", list("cpu", cpu), append([]podOpt{priority(100)}, opts...)...)
	}
	tests := []struct {
		name    string
		pending []*corev1.Pod
		scaler  Scaler
		want    int32
		limit   Limit
		reason  string
	}{
		{
			name:    "a higher-priority paid pod that yielding lets in lowers the budget at once",
			pending: []*corev1.Pod{pending("batch", "4")},
			scaler:  worker("worker", oneCore),
			want:    8, limit: LimitPendingPaid,
			reason: "scale from 12 to 8: 8 replicas, lowered by pending paid pods: budget 8 replicas: cpu 16000m allocatable - 4000m paid - 4000m pending paid (1 pod) = 8000m / 1000m",
		},
		{
			name:    "yielding to pending paid pods ignores an opt-in scale-down window",
			pending: []*corev1.Pod{pending("batch", "4")},
			scaler: worker("worker", oneCore, scaleDown(Behavior{StabilizationWindow: 5 * time.Minute}),
				history(History{Recommendations: []Recommendation{{Time: at(-10), Replicas: 12}}, LastTime: at(-10), LastReplicas: 12})),
			want: 8, limit: LimitPendingPaid,
		},
		{
			name:    "a pod too big for any node even if the worker yielded does not count",
			pending: []*corev1.Pod{pending("huge", "12")},
			scaler:  worker("worker", oneCore),
			want:    12, limit: LimitBudget,
		},
		{
			name:    "only the pending pods that would fit count",
			pending: []*corev1.Pod{pending("huge", "12"), pending("a", "2"), pending("b", "1")},
			scaler:  worker("worker", oneCore),
			want:    9, limit: LimitPendingPaid,
			reason: "- 3000m pending paid (2 pods) =",
		},
		{
			name:    "a pending paid pod of lower priority does not count",
			pending: []*corev1.Pod{pending("batch", "4", priority(-5))},
			scaler:  worker("worker", oneCore),
			want:    12, limit: LimitBudget,
		},
		{
			name:    "a pending paid pod of the workload's own priority counts: paid work wins ties",
			pending: []*corev1.Pod{pending("batch", "4")},
			scaler:  worker("worker", oneCore, podPriority(100)),
			want:    8, limit: LimitPendingPaid,
		},
		{
			name:    "without PriorityClasses (all priorities 0) pending paid pods count",
			pending: []*corev1.Pod{pending("batch", "4", priority(0))},
			scaler:  worker("worker", oneCore),
			want:    8, limit: LimitPendingPaid,
		},
		{
			name:    "a pending opportunistic pod is not paid demand",
			pending: []*corev1.Pod{pending("worker-x", "1", app("worker"))},
			scaler:  worker("worker", oneCore),
			want:    12, limit: LimitBudget,
		},
		{
			name:    "a pending paid pod that may only run outside the pool does not count",
			pending: []*corev1.Pod{pending("batch", "4", podSelector("kubernetes.io/hostname", "n1"))},
			scaler:  worker("worker", oneCore, pool("pool", "x")),
			want:    6, limit: LimitBudget,
		},
		{
			name:    "a pending paid pod that may run in the pool counts",
			pending: []*corev1.Pod{pending("batch", "4", podSelector("kubernetes.io/hostname", "n0"))},
			scaler:  worker("worker", oneCore, pool("pool", "x")),
			want:    2, limit: LimitPendingPaid,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(nodes(), concat(bound, tc.pending), "worker")
			d := e.decide(t0, tc.scaler)[0]
			if d.Desired != tc.want || d.Limit != tc.limit {
				t.Errorf("desired %d limit %s, want %d %s\nreason: %s", d.Desired, d.Limit, tc.want, tc.limit, d.Reason)
			}
			if !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("reason %q\ndoes not contain %q", d.Reason, tc.reason)
			}
		})
	}
}

// A pending paid pod lowers the budget of the scalers whose pods it
// outranks, and only theirs.
func TestPendingPaidPodsOutrankSomeScalers(t *testing.T) {
	oneCore := list("cpu", "1")
	e := newEnv(flat(), []*corev1.Pod{kubePod("batch", "", list("cpu", "10"), priority(50))}, "cheap", "precious")
	got := byKey(e.decide(t0,
		worker("cheap", oneCore, bounds(0, 20), podPriority(0)),
		worker("precious", oneCore, bounds(0, 20), podPriority(100))))
	if d := got["default/cheap"]; d.Budget != 70 {
		t.Errorf("cheap: budget %d, want 100 - 20 (precious) - 10 (pending) = 70: %s", d.Budget, d.Reason)
	}
	if d := got["default/precious"]; d.Budget != 80 {
		t.Errorf("precious: budget %d, want 100 - 20 (cheap) = 80: %s", d.Budget, d.Reason)
	}
}
