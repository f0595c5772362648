package sim

import (
	"sync"
	"testing"
	"time"

	"github.com/opportunist/opportunist/internal/capacity"
)

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

// TestPickIndexIsTheScan runs every built-in scenario (shortened) and a
// small BenchmarkSimulate cluster under
// every strategy and checks each node the scheduler picks from its index
// against a scan of every node.
func TestPickIndexIsTheScan(t *testing.T) {
	var mu sync.Mutex
	picks, mismatches := 0, 0
	checkPick = func(w *world, p *pod, held map[int]capacity.Resources, chosen int) {
		want := pickByScan(w, p, held)
		mu.Lock()
		defer mu.Unlock()
		picks++
		if chosen != want {
			mismatches++
			if mismatches <= 5 {
				t.Errorf("%s at %v: pod %s went to node %d, a scan of every node picks %d", w.sc.Name, w.now, p.name, chosen, want)
			}
		}
	}
	defer func() { checkPick = nil }()
	small, err := ParseScenario("scale.yaml", []byte(scaleScenario(60)), nil) // zones, PriorityClasses
	if err != nil {
		t.Fatal(err)
	}
	scenarios := []*Scenario{small}
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
	if picks < 1000 {
		t.Errorf("only %d picks checked", picks)
	}
	t.Logf("%d picks checked", picks)
}
