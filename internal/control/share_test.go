package control

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// flat is 100 free cores: four nodes of 25, zones a (n0, n1) and b (n2, n3).
func flat() []*corev1.Node {
	return []*corev1.Node{
		kubeNode("n0", cores(25), labelled("zone", "a")), kubeNode("n1", cores(25), labelled("zone", "a")),
		kubeNode("n2", cores(25), labelled("zone", "b")), kubeNode("n3", cores(25), labelled("zone", "b")),
	}
}

func TestDecideSharing(t *testing.T) {
	oneCore, fourCores := list("cpu", "1"), list("cpu", "4")
	tests := []struct {
		name    string
		pods    []*corev1.Pod
		scalers []Scaler
		want    map[string]int32
		limits  map[string]Limit
		reason  map[string]string // a part of the reason
	}{
		{
			name:    "higher priority first, up to its max; the rest to the lower one",
			scalers: []Scaler{worker("low", oneCore), worker("high", oneCore, prio(10), bounds(0, 60))},
			want:    map[string]int32{"default/high": 60, "default/low": 40},
			limits:  map[string]Limit{"default/high": LimitMax, "default/low": LimitBudget},
			reason:  map[string]string{"default/low": "cpu 100000m allocatable - 0m paid - 60000m other scalers = 40000m / 1000m"},
		},
		{
			name:    "higher priority takes everything it can use",
			scalers: []Scaler{worker("low", oneCore), worker("high", oneCore, prio(10))},
			want:    map[string]int32{"default/high": 100, "default/low": 0},
			limits:  map[string]Limit{"default/high": LimitBudget, "default/low": LimitBudget},
		},
		{
			name:    "every Min is honoured first, even a lower priority's",
			scalers: []Scaler{worker("low", oneCore, bounds(10, 1000)), worker("high", oneCore, prio(10))},
			want:    map[string]int32{"default/high": 90, "default/low": 10},
		},
		{
			name:    "a lower priority's fit sees the higher one's new replicas",
			scalers: []Scaler{worker("low", fourCores), worker("high", oneCore, prio(10), bounds(0, 60))},
			// high fills n0 and n1 and takes 10 cores of n2: 15/4 + 25/4 = 3 + 6
			want:   map[string]int32{"default/high": 60, "default/low": 9},
			limits: map[string]Limit{"default/low": LimitFit},
			reason: map[string]string{"default/low": "fit 9 replicas (0 bound + 9 more fit node by node) under budget 10 replicas"},
		},
		{
			name:    "equal weights split evenly",
			scalers: []Scaler{worker("a", oneCore), worker("b", oneCore)},
			want:    map[string]int32{"default/a": 50, "default/b": 50},
		},
		{
			name:    "weights 1:3",
			scalers: []Scaler{worker("a", oneCore, weight(1)), worker("b", oneCore, weight(3))},
			want:    map[string]int32{"default/a": 25, "default/b": 75},
		},
		{
			name:    "weight 0 counts as 1",
			scalers: []Scaler{worker("a", oneCore, weight(0)), worker("b", oneCore, weight(1))},
			want:    map[string]int32{"default/a": 50, "default/b": 50},
		},
		{
			name:    "three equal peers: the remainder goes by key",
			scalers: []Scaler{worker("c", oneCore), worker("b", oneCore), worker("a", oneCore)},
			want:    map[string]int32{"default/a": 34, "default/b": 33, "default/c": 33},
		},
		{
			name:    "one capped by its max: its share flows to the other",
			scalers: []Scaler{worker("a", oneCore, bounds(0, 10)), worker("b", oneCore)},
			want:    map[string]int32{"default/a": 10, "default/b": 90},
			limits:  map[string]Limit{"default/a": LimitMax, "default/b": LimitBudget},
		},
		{
			// a's node selector makes n0 its whole pool (the pool is the nodes
			// a replica is eligible for). b takes the nodes only it can use
			// first, so a, at weight 3, keeps all of n0.
			name:    "one confined by its node selector to one node: it keeps that node",
			scalers: []Scaler{worker("a", oneCore, weight(3), nodeSelector("kubernetes.io/hostname", "n0")), worker("b", oneCore)},
			want:    map[string]int32{"default/a": 25, "default/b": 75},
			limits:  map[string]Limit{"default/a": LimitBudget, "default/b": LimitBudget},
		},
		{
			name:    "a min above the fair share is kept, the rest levels up to it",
			scalers: []Scaler{worker("a", oneCore, bounds(40, 1000)), worker("b", oneCore), worker("c", oneCore)},
			want:    map[string]int32{"default/a": 40, "default/b": 30, "default/c": 30},
		},
		{
			name:    "a min below the fair share changes nothing",
			scalers: []Scaler{worker("a", oneCore, bounds(20, 1000)), worker("b", oneCore)},
			want:    map[string]int32{"default/a": 50, "default/b": 50},
		},
		{
			name:    "weights share room, not replica counts, when shapes differ",
			scalers: []Scaler{worker("a", oneCore), worker("b", fourCores)},
			// The shares: b 12 x 4 = 48 cores; a 50 cores and the 2 that hold no
			// 4-core replica (the last core of n2 and of n3). a's replicas are
			// placed where they were granted, so b's 12 fit this round.
			want:   map[string]int32{"default/a": 52, "default/b": 12},
			limits: map[string]Limit{"default/b": LimitBudget},
		},
		{
			name:    "disjoint pools of one priority fill each their own",
			scalers: []Scaler{worker("a", oneCore, pool("zone", "a")), worker("b", oneCore, pool("zone", "b"), weight(9))},
			want:    map[string]int32{"default/a": 50, "default/b": 50},
		},
		{
			name:    "a grant is charged to another pool only for the nodes it lands on",
			scalers: []Scaler{worker("zone-b", oneCore, pool("zone", "b")), worker("high", oneCore, prio(10), bounds(0, 60))},
			// high lands on n0, n1 and 10 cores of n2: zone b keeps 40
			want: map[string]int32{"default/high": 60, "default/zone-b": 40},
		},
		{
			name:    "the budget counts every scaler's pods as room, each scaler's share decides",
			pods:    concat(pods("a", 80, []string{"n0", "n1", "n2", "n3"}, oneCore, app("a")), pods("b", 20, []string{"n0", "n1", "n2", "n3"}, oneCore, app("b"))),
			scalers: []Scaler{worker("a", oneCore), worker("b", oneCore)},
			want:    map[string]int32{"default/a": 50, "default/b": 20},
			limits:  map[string]Limit{"default/a": LimitBudget, "default/b": LimitFit},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(flat(), tc.pods, "a", "b", "c", "low", "high", "zone-b")
			got := byKey(e.decide(t0, tc.scalers...))
			for key, want := range tc.want {
				d := got[key]
				if d.Desired != want {
					t.Errorf("%s: desired %d, want %d (%s: %s)", key, d.Desired, want, d.Limit, d.Reason)
				}
				if limit, ok := tc.limits[key]; ok && d.Limit != limit {
					t.Errorf("%s: limit %s, want %s (%s)", key, d.Limit, limit, d.Reason)
				}
				if part, ok := tc.reason[key]; ok && !strings.Contains(d.Reason, part) {
					t.Errorf("%s: reason %q\ndoes not contain %q", key, d.Reason, part)
				}
			}
		})
	}
}

// A lower priority holding all the room yields it to a higher one at once,
// though the higher one cannot grow before the room is free: its grant, not
// its fit, is what the lower one must leave.
func TestHigherPriorityReclaimsRoomHeldByLowerOne(t *testing.T) {
	oneCore := list("cpu", "1")
	scalers := func() []Scaler {
		return []Scaler{worker("low", oneCore), worker("high", oneCore, prio(10))}
	}
	full := newEnv(flat(), pods("low", 100, []string{"n0", "n1", "n2", "n3"}, oneCore, app("low")), "low", "high")
	first := byKey(full.decide(t0, scalers()...))
	if d := first["default/low"]; d.Desired != 0 || d.Limit != LimitBudget {
		t.Errorf("low: desired %d (%s), want 0 (Budget): %s", d.Desired, d.Limit, d.Reason)
	}
	if d := first["default/high"]; d.Desired != 0 || d.Limit != LimitFit || d.Budget != 100 {
		t.Errorf("high: desired %d (%s) budget %d, want 0 (Fit) budget 100: %s", d.Desired, d.Limit, d.Budget, d.Reason)
	}

	empty := newEnv(flat(), nil, "low", "high")
	second := byKey(empty.decide(at(1), scalers()...))
	if d := second["default/high"]; d.Desired != 100 {
		t.Errorf("high once the room is free: desired %d, want 100: %s", d.Desired, d.Reason)
	}
}

// A higher priority whose growth its window holds keeps its grant: the lower
// one does not grow into room that is about to be taken from it.
func TestHeldScaleUpKeepsItsGrant(t *testing.T) {
	oneCore := list("cpu", "1")
	e := newEnv(flat(), pods("low", 20, []string{"n0", "n1", "n2", "n3"}, oneCore, app("low")), "low", "high")
	held := History{Recommendations: []Recommendation{{Time: at(-10), Replicas: 40}}, LastTime: at(-10), LastReplicas: 40}
	got := byKey(e.decide(t0,
		worker("low", oneCore),
		worker("high", oneCore, prio(10), current(40), scaleUp(Behavior{StabilizationWindow: time.Minute}), history(held))))
	if d := got["default/high"]; d.Desired != 40 || d.Recommended != 80 || d.Limit != LimitStabilized {
		t.Errorf("high: desired %d recommended %d (%s), want 40 of 80 (Stabilized): %s", d.Desired, d.Recommended, d.Limit, d.Reason)
	}
	if d := got["default/low"]; d.Desired != 0 {
		t.Errorf("low: desired %d, want 0: %s", d.Desired, d.Reason)
	}
}
