package control

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

// slot is Count paid pods of a cpu-only shape named name.
func slot(name, cpu string, count int32) Slot {
	return Slot{Name: name, Shape: capacity.ShapeOf(&kubePod(name, "", list("cpu", cpu)).Spec), Count: count}
}

func withSlots(slots ...Slot) scalerOpt {
	return func(s *Scaler) { s.Slots = append(s.Slots, slots...) }
}

// slotFitOf prints a decision's slots as "web 2/2 [a:1 b:1]".
func slotFitOf(d Decision) string {
	var parts []string
	for _, f := range d.Slots {
		var nodes []string
		for _, n := range f.Nodes {
			nodes = append(nodes, fmt.Sprintf("%s:%d", n.Node, n.Slots))
		}
		parts = append(parts, fmt.Sprintf("%s %d/%d [%s]", f.Name, f.Fit, f.Wanted, strings.Join(nodes, " ")))
	}
	return strings.Join(parts, "; ")
}

func TestSlots(t *testing.T) {
	w1 := list("cpu", "1")
	terminating := func(p *corev1.Pod) { now := metav1.Now(); p.DeletionTimestamp = &now }
	tests := []struct {
		name    string
		nodes   []yieldNode
		pending []*corev1.Pod
		scalers []Scaler
		scoring capacity.Scoring
		// want is "desired limit victims..." and the slots as slotFitOf prints them.
		want, wantSlots string
		wantReason      string
	}{
		{
			name: "grows until the next replica, where the scheduler would put it, takes a slot's room",
			nodes: []yieldNode{
				{name: "a", cores: 8, paid: "2"},
				{name: "b", cores: 8, paid: "2"},
			},
			// LeastAllocated puts replicas on a, b, a, b (6/6 → 4/4 free);
			// the fifth would leave a with 3 cores: 1 web slot.
			scalers:    []Scaler{worker("worker", w1, withSlots(slot("web", "4", 2)))},
			want:       "4 Slots",
			wantSlots:  "web 2/2 [a:1 b:1]",
			wantReason: "one more would take room kept for 2 of 2 web slots",
		},
		{
			name: "MostAllocated: the default spreading of a workload's pods over nodes still alternates a and b",
			nodes: []yieldNode{
				{name: "a", cores: 8, paid: "2"},
				{name: "b", cores: 8, paid: "2"},
			},
			scalers:   []Scaler{worker("worker", w1, withSlots(slot("web", "4", 2)))},
			scoring:   capacity.MostAllocated,
			want:      "4 Slots",
			wantSlots: "web 2/2 [a:1 b:1]",
		},
		{
			name: "slots and a cpu headroom: both hold",
			nodes: []yieldNode{
				{name: "a", cores: 8, paid: "2"},
				{name: "b", cores: 8, paid: "2"},
			},
			scalers:   []Scaler{worker("worker", w1, cpuHeadroom(10), withSlots(slot("web", "4", 2)))},
			want:      "2 Budget",
			wantSlots: "web 2/2 [a:1 b:1]",
		},
		{
			name: "slots short: yields the fewest pods, on the node where they restore a slot",
			nodes: []yieldNode{
				{name: "a", cores: 8, paid: "2", pods: []string{"worker:1", "worker:1", "worker:1", "worker:1"}},
				{name: "b", cores: 8, paid: "2", pods: []string{"worker:1", "worker:1"}},
			},
			scalers:    []Scaler{worker("worker", w1, withSlots(slot("web", "4", 2)))},
			want:       "4 Slots default/worker-a-0 default/worker-a-1",
			wantSlots:  "web 2/2 [a:1 b:1]",
			wantReason: "1 of 2 web slots fit: yielding 2 replicas on node a",
		},
		{
			name: "the pods leaving already restore the slots: no second yield, and no refill",
			nodes: []yieldNode{
				{name: "a", cores: 8, paid: "2", pods: []string{"worker:1", "worker:1", "worker:1", "worker:1"}},
				{name: "b", cores: 8, paid: "2", pods: []string{"worker:1", "worker:1"}},
			},
			pending: nil,
			scalers: []Scaler{worker("worker", w1, current(4), withSlots(slot("web", "4", 2)))},
			want:    "4 Slots",
		},
		{
			name: "Min wins over the slots",
			nodes: []yieldNode{
				{name: "a", cores: 8, paid: "2", pods: []string{"worker:1", "worker:1", "worker:1", "worker:1"}},
				{name: "b", cores: 8, paid: "2", pods: []string{"worker:1", "worker:1"}},
			},
			scalers:   []Scaler{worker("worker", w1, bounds(6, 100), withSlots(slot("web", "4", 2)))},
			want:      "6 Min",
			wantSlots: "web 1/2 [b:1]",
		},
		{
			name: "no pod of the workload can restore a slot: hold, never grow",
			nodes: []yieldNode{
				{name: "a", cores: 8, paid: "7", pods: []string{"worker:1"}},
				{name: "b", cores: 8, paid: "5"},
			},
			scalers:    []Scaler{worker("worker", w1, withSlots(slot("web", "4", 1)))},
			want:       "1 Slots",
			wantSlots:  "web 0/1 []",
			wantReason: "0 of 1 web slots fit, and removing no pod of this workload would restore one: holding at 1",
		},
		{
			name:  "two shapes share no room: 8 + 2 × 4 cores need 16",
			nodes: []yieldNode{{name: "a", cores: 17}},
			scalers: []Scaler{worker("worker", w1,
				withSlots(slot("web", "4", 2), slot("big", "8", 1)))},
			want:      "1 Slots",
			wantSlots: "web 2/2 [a:2]; big 1/1 [a:1]",
		},
		{
			name: "a pending paid pod the targeted yield serves: the slots wait for it",
			nodes: []yieldNode{
				{name: "a", cores: 8, paid: "3", pods: []string{"worker:1", "worker:1", "worker:1", "worker:1", "worker:1"}},
			},
			pending: []*corev1.Pod{pendingPaid("big", "2")},
			scalers: []Scaler{worker("worker", w1, withSlots(slot("web", "4", 1)))},
			want:    "3 PendingPaid default/worker-a-0 default/worker-a-1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nodes := tc.nodes
			if strings.HasPrefix(tc.name, "the pods leaving") {
				nodes[0].podOption = nil
			}
			e := yieldWorld(nodes, tc.pending, "worker")
			if strings.HasPrefix(tc.name, "the pods leaving") {
				// worker-a-0 and -1 are terminating: the previous round's victims.
				for _, n := range []string{"worker-a-0", "worker-a-1"} {
					p := kubePod(n, "a", w1, app("worker"), terminating)
					e.l.UpsertPod(capacity.FromPod(p))
				}
			}
			c := e.cluster()
			c.Scoring = tc.scoring
			ds := Decide(t0, c, e.withBound(tc.scalers...))
			d := ds[0]
			got := strings.TrimSpace(fmt.Sprintf("%d %s %s", d.Desired, d.Limit, strings.Join(d.Yield, " ")))
			if got != tc.want {
				t.Errorf("decision %q, want %q (reason: %s)", got, tc.want, d.Reason)
			}
			if tc.wantSlots != "" {
				if s := slotFitOf(d); s != tc.wantSlots {
					t.Errorf("slots %q, want %q", s, tc.wantSlots)
				}
			}
			if tc.wantReason != "" && !strings.Contains(d.Reason, tc.wantReason) {
				t.Errorf("reason %q, want it to say %q", d.Reason, tc.wantReason)
			}
		})
	}
}

// TestSlotsClosedLoop plays issue 20's cluster round after round: the
// decision's new replicas are placed by the scheduler's scoring (each on
// the node with the best score where it fits, ties to the first by name,
// as the simulator does), yielded pods go at once. It checks, with
// capacity.Fit rather than the law's own count, that the 4 web slots fit
// whenever the loop settles, that paid pods taking them are followed by a
// yield that restores them, and that the count never saws.
func TestSlotsClosedLoop(t *testing.T) {
	var nodes []*corev1.Node
	var names []string
	for i := range 4 {
		names = append(names, fmt.Sprintf("big-%d", i))
		nodes = append(nodes, kubeNode(names[i], cores(32)))
	}
	for i := range 2 {
		names = append(names, fmt.Sprintf("small-%d", i))
		nodes = append(nodes, kubeNode(names[4+i], cores(28)))
	}
	webShape := capacity.ShapeOf(&kubePod("web", "", list("cpu", "4")).Spec)
	e := newEnv(nodes, pods("paid", 30, names, list("cpu", "1")), "worker")
	w := worker("worker", list("cpu", "1"), withSlots(Slot{Name: "web", Shape: webShape, Count: 4}))
	sched := newTestScheduler(e, capacity.LeastAllocated)
	place := func(name string, req corev1.ResourceList) bool { return sched.bind(name, req) }
	webFit := func() int64 { return capacity.Fit(e.l.Rooms(), webShape).Total }
	var counts []int32
	round := func() Decision {
		t.Helper()
		in := e.withBound(w)
		d := Decide(t0, e.cluster(), in)[0]
		for _, key := range d.Yield {
			_, name, _ := strings.Cut(key, "/")
			e.l.DeletePod("default", name)
		}
		for range int(d.Desired) - int(in[0].Bound) + len(d.Yield) {
			if !place("worker", list("cpu", "1")) {
				break
			}
		}
		w.Current = d.Desired
		counts = append(counts, d.Desired)
		return d
	}
	for range 5 {
		round()
	}
	if got := webFit(); got < 4 {
		t.Fatalf("settled at %v worker replicas with %d web pods fitting, want >= 4", counts, got)
	}
	settled := counts[len(counts)-1]
	free := int64(0)
	for _, r := range e.l.Rooms() {
		free += r.Free(corev1.ResourceCPU)
	}
	t.Logf("settled at %d replicas (rounds %v); %d cores free, %d web pods fit", settled, counts, free/1000, webFit())
	if free > 16000+6*3000 { // the slots, plus less than a web pod on each node
		t.Errorf("%dm free once settled: the slots keep more than they need", free)
	}
	// Paid work takes the 4 slots; the next round yields to restore them.
	for i := range 4 {
		if !place(fmt.Sprintf("web%d", i), list("cpu", "4")) {
			t.Fatalf("web pod %d found no room though 4 slots fit", i)
		}
	}
	d := round()
	if d.Limit != LimitSlots || len(d.Yield) == 0 {
		t.Fatalf("after paid pods took the slots: %s %s, want a yield for Slots", d.Limit, d.Reason)
	}
	if got := webFit(); got < 4 {
		t.Errorf("after yielding %v: %d web pods fit, want >= 4", d.Yield, got)
	}
	before := slices.Clone(counts)
	for range 3 {
		round()
	}
	if got := webFit(); got < 4 {
		t.Errorf("rounds after the yield (%v): %d web pods fit, want >= 4", counts[len(before):], got)
	}
	for i := len(before); i < len(counts); i++ {
		if counts[i] != counts[len(before)-1] {
			t.Errorf("count moved after the yield settled: %v", counts)
			break
		}
	}
}

// TestSlotsHoldOnRandomClusters plays random small clusters (static paid
// load) round after round, placing the new replicas with the scheduler's
// scoring as the simulator does and removing the yielded pods, and checks
// with capacity.Fit (not the law's own count) that whenever a decision says
// its slots fit, they do once it is applied; and that the count settles.
func TestSlotsHoldOnRandomClusters(t *testing.T) {
	checked, yielded, capped := 0, 0, 0
	defer func() {
		t.Logf("%d applied decisions checked, %d yields, %d capped by Slots", checked, yielded, capped)
		if checked < 1000 || yielded == 0 || capped == 0 {
			t.Errorf("the random clusters exercise too little: %d checked, %d yields, %d capped", checked, yielded, capped)
		}
	}()
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 20))
		var nodes []*corev1.Node
		var names []string
		for i := range 2 + rng.IntN(7) {
			names = append(names, fmt.Sprintf("n%d", i))
			nodes = append(nodes, kubeNode(names[i], list("cpu", fmt.Sprint(4+rng.IntN(29)), "memory", fmt.Sprintf("%dGi", 8+rng.IntN(57)), "pods", "110")))
		}
		var paid []*corev1.Pod
		for i := range rng.IntN(12) {
			paid = append(paid, kubePod(fmt.Sprintf("paid-%d", i), names[rng.IntN(len(names))], list("cpu", fmt.Sprint(1+rng.IntN(3)), "memory", "1Gi")))
		}
		e := newEnv(nodes, paid, "worker")
		scoring := []capacity.Scoring{capacity.LeastAllocated, capacity.MostAllocated}[rng.IntN(2)]
		slotReq := list("cpu", fmt.Sprint(2+rng.IntN(5)), "memory", fmt.Sprintf("%dGi", 1+rng.IntN(8)))
		slotShape := capacity.ShapeOf(&kubePod("web", "", slotReq).Spec)
		want := int32(1 + rng.IntN(4))
		wreq := list("cpu", fmt.Sprint(1+rng.IntN(2)), "memory", fmt.Sprintf("%dGi", 1+rng.IntN(4)))
		w := worker("worker", wreq,
			withSlots(Slot{Name: "web", Shape: slotShape, Count: want}))
		var counts []int32
		sched := newTestScheduler(e, scoring)
		place := func(name string, req corev1.ResourceList) bool { return sched.bind(name, req) }
		for round := range 10 {
			if round == 4 { // paid pods of the slot's shape arrive and take slots
				for range 1 + rng.IntN(int(want)) {
					place("web", slotReq)
				}
			}
			in := e.withBound(w)
			c := e.cluster()
			c.Scoring = scoring
			d := Decide(t0, c, in)[0]
			for _, key := range d.Yield {
				_, name, _ := strings.Cut(key, "/")
				e.l.DeletePod("default", name)
			}
			live := int(in[0].Bound) - len(d.Yield)
			for range int(d.Desired) - live {
				if !place("worker", wreq) {
					break
				}
			}
			w.Current = d.Desired
			counts = append(counts, d.Desired)
			if len(d.Slots) != 1 {
				t.Fatalf("seed %d round %d: %d slot fits reported, want 1", seed, round, len(d.Slots))
			}
			if len(d.Yield) > 0 {
				yielded++
			}
			if d.Limit == LimitSlots {
				capped++
			}
			if said := d.Slots[0]; said.Fit == said.Wanted {
				checked++
				if got := capacity.Fit(e.l.Rooms(), slotShape).Total; got < int64(want) {
					t.Fatalf("seed %d round %d (%s): the decision (%d, %s: %s) says %d of %d slots fit; applied, %d do",
						seed, round, scoring, d.Desired, d.Limit, d.Reason, said.Fit, said.Wanted, got)
				}
			}
		}
		if n := len(counts); counts[n-1] != counts[n-2] || counts[n-2] != counts[n-3] {
			t.Errorf("seed %d (%s): the count does not settle on a static cluster: %v", seed, scoring, counts)
		}
	}
}

// testScheduler binds pods of one app (labelled app=<name>) at a time as the
// law predicts the scheduler does (capacity.Placer), so a test can apply
// decisions round after round.
type testScheduler struct {
	e       *env
	scoring capacity.Scoring
	seq     int
	on      map[string]map[string]int64 // app -> node -> pods
}

func newTestScheduler(e *env, scoring capacity.Scoring) *testScheduler {
	return &testScheduler{e: e, scoring: scoring, on: map[string]map[string]int64{}}
}

func (s *testScheduler) bind(name string, req corev1.ResourceList) bool {
	rooms := s.e.l.Rooms()
	if s.on[name] == nil {
		s.on[name] = map[string]int64{}
	}
	counts := make([]int64, len(rooms))
	for i := range rooms {
		counts[i] = s.on[name][rooms[i].Name]
	}
	if name == "worker" { // the workload's pods as the ledger has them (yields remove some)
		opp := s.e.l.Opportunistic()
		for i := range rooms {
			counts[i] = int64(len(opp[rooms[i].Name]))
		}
	}
	i := capacity.NewPlacer(s.scoring, rooms, capacity.ShapeOf(&kubePod(name, "", req).Spec), counts).Next()
	if i < 0 {
		return false
	}
	s.seq++
	s.on[name][rooms[i].Name]++
	s.e.l.UpsertPod(capacity.FromPod(kubePod(fmt.Sprintf("%s-%03d", name, s.seq), rooms[i].Name, req, app(name))))
	return true
}
