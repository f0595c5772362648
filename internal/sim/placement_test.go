package sim

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opportunist/opportunist/internal/capacity"
)

// reservations is the room held for pods nominated after a preemption with
// a priority at least p's (the scheduler adds them to their node when it
// filters for p), as negative credit by node index, counted afresh from the
// nominated pods: what world.heldFor and world.heldAt keep up to date.
func (w *world) reservations(p *pod) map[int]capacity.Resources {
	var out map[int]capacity.Resources
	for _, q := range w.nominated {
		if q == p || q.rs.priority < p.rs.priority {
			continue
		}
		if out == nil {
			out = map[int]capacity.Resources{}
		}
		if out[q.nominated] == nil {
			out[q.nominated] = capacity.Resources{}
		}
		out[q.nominated].Sub(q.rs.pods.Shape.Requests)
	}
	return out
}

// pickByScan is the scheduler's choice as the simulator made it before the
// index: capacity.FitWith over every node with the room held for nominated
// pods, then capacity.Pick with the ReplicaSet's pods counted node by node.
func pickByScan(w *world, p *pod, held map[int]capacity.Resources) int {
	credit := map[string]capacity.Resources{}
	for i, r := range held {
		credit[w.nodes[i].name] = r
	}
	fit := capacity.FitWith(w.rooms, p.rs.pods.Shape, credit)
	if p.nominated >= 0 && fit.Nodes[p.nominated].Replicas > 0 {
		return p.nominated
	}
	fits := make([]bool, len(fit.Nodes))
	for i, f := range fit.Nodes {
		fits[i] = f.Replicas > 0
	}
	counts := make([]int64, len(w.nodes))
	for _, q := range p.rs.active {
		if q.node >= 0 {
			counts[q.node]++
		}
	}
	return capacity.Pick(w.scoring, w.rooms, p.rs.pods.Shape, counts, fits)
}

// preemptByScan is preempt's choice of node and victims as the simulator
// made it before it stopped at an unbeatable choice: every node tried.
func preemptByScan(w *world, p *pod, reserved map[int]capacity.Resources) (int, []*pod) {
	req := p.rs.pods.Shape.Requests
	type choice struct {
		node             int
		victims          []*pod
		highest, prioSum int64
	}
	var best *choice
	for i, n := range w.nodes {
		if !p.rs.eligible[i] || w.rooms[i].State != capacity.NodeReady {
			continue
		}
		free := capacity.Resources{}
		for name := range req {
			free[name] = w.rooms[i].Free(name) + reserved[i][name]
		}
		var lower []*pod
		for _, q := range n.pods {
			if !q.terminating && q.rs.priority < p.rs.priority {
				lower = append(lower, q)
				free.Add(q.rs.pods.Shape.Requests)
			}
		}
		if len(lower) == 0 || !fitsIn(free, req) {
			continue
		}
		slices.SortStableFunc(lower, func(a, b *pod) int {
			return cmp.Or(cmp.Compare(b.rs.priority, a.rs.priority), cmp.Compare(a.created, b.created))
		})
		c := &choice{node: i, highest: math.MinInt64}
		for _, q := range lower {
			free.Sub(q.rs.pods.Shape.Requests)
			if fitsIn(free, req) {
				continue
			}
			free.Add(q.rs.pods.Shape.Requests)
			c.victims = append(c.victims, q)
			c.highest = max(c.highest, int64(q.rs.priority))
			c.prioSum += int64(q.rs.priority) + math.MaxInt32 + 1
		}
		if best == nil || c.highest < best.highest ||
			c.highest == best.highest && (c.prioSum < best.prioSum || c.prioSum == best.prioSum && len(c.victims) < len(best.victims)) {
			best = c
		}
	}
	if best == nil {
		return -1, nil
	}
	return best.node, best.victims
}

// TestPickIndexIsTheScan runs every built-in scenario (shortened) and two
// small BenchmarkSimulate clusters (the second with a burst that preempts)
// under every strategy and checks each node the scheduler picks from its
// index against a scan of every node, and each preemption against one that
// tries every node.
func TestPickIndexIsTheScan(t *testing.T) {
	var mu sync.Mutex
	picks, mismatches := 0, 0
	checkPick = func(w *world, p *pod, chosen int) {
		held := w.reservations(p)
		want := pickByScan(w, p, held)
		differs := w.heldFor(p)
		mu.Lock()
		defer mu.Unlock()
		for i := range w.nodes {
			if got := w.heldAt(i, differs); !isZero(got) || !isZero(held[i]) {
				d := got.Clone()
				if d.Sub(held[i]); !isZero(d) {
					mismatches++
					t.Errorf("%s at %v: room held for pod %s on node %d: %v, want %v", w.sc.Name, w.now, p.name, i, got, held[i])
				}
			}
		}
		picks++
		if chosen != want {
			mismatches++
			if mismatches <= 5 {
				t.Errorf("%s at %v: pod %s went to node %d, a scan of every node picks %d", w.sc.Name, w.now, p.name, chosen, want)
			}
		}
	}
	preemptions := 0
	checkPreempt = func(w *world, p *pod, node int, victims []*pod) {
		wantNode, wantVictims := preemptByScan(w, p, w.reservations(p))
		mu.Lock()
		defer mu.Unlock()
		preemptions++
		if node != wantNode || !slices.Equal(victims, wantVictims) {
			mismatches++
			if mismatches <= 5 {
				t.Errorf("%s at %v: pod %s preempts %d pods on node %d, trying every node %d pods on node %d", w.sc.Name, w.now, p.name, len(victims), node, len(wantVictims), wantNode)
			}
		}
	}
	defer func() { checkPick, checkPreempt = nil, nil }()
	small, err := ParseScenario("scale.yaml", []byte(scaleScenario(60, 25)), nil) // zones, PriorityClasses
	if err != nil {
		t.Fatal(err)
	}
	big, err := ParseScenario("scale.yaml", []byte(scaleScenario(60, 3)), nil) // a burst that preempts
	if err != nil {
		t.Fatal(err)
	}
	scenarios := []*Scenario{small, big}
	for _, name := range BuiltinNames() {
		sc, err := Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		scenarios = append(scenarios, sc)
	}
	for _, sc := range scenarios {
		sc.Duration = min(sc.Duration, 26*time.Hour)
		if _, err := Run(sc, Options{Seed: 3}); err != nil {
			t.Fatal(err)
		}
	}
	if picks < 1000 || preemptions < 100 {
		t.Errorf("only %d picks and %d preemptions checked", picks, preemptions)
	}
	t.Logf("%d picks and %d preemptions checked", picks, preemptions)
}
