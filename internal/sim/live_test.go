package sim

import (
	"testing"
)

// A Live played to the end ends where Run's run of the same strategy does.
func TestLiveMatchesRun(t *testing.T) {
	for _, name := range []string{Opportunist, HPAWriteup, HPAExample, HPAAverageValue} {
		sc, err := Builtin("seed-burst")
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Run(sc, Options{Seed: 1, Strategies: []string{name}})
		if err != nil {
			t.Fatal(err)
		}
		l, err := NewLive(sc, name, 1)
		if err != nil {
			t.Fatal(err)
		}
		steps := 0
		for !l.Done() {
			l.Step()
			steps++
		}
		scales := 0
		for _, rs := range l.w.opp {
			scales += rs.scales
		}
		if want := rep.Results[0].ScaleEvents; scales != want {
			t.Errorf("%s: %d scale events live, %d in Run", name, scales, want)
		}
		if l.w.maxPaidWait != rep.Results[0].MaxPaidWait && len(l.w.pending) == 0 {
			t.Errorf("%s: max paid wait %v live, %v in Run", name, l.w.maxPaidWait, rep.Results[0].MaxPaidWait)
		}
		s := l.Snapshot()
		if !s.Finished || s.CPU.Allocatable == 0 || s.CPU.Line > s.CPU.Allocatable || len(s.Nodes) == 0 || len(s.Workloads) != len(sc.Opportunistic) {
			t.Errorf("%s: snapshot %+v", name, s)
		}
		if len(s.Decisions) == 0 || s.Decisions[0].At < s.Decisions[len(s.Decisions)-1].At {
			t.Errorf("%s: decisions not newest first or empty: %+v", name, s.Decisions)
		}
		if name != HPAWriteup && name != HPAExample && s.Workloads[0].PoolNodes != len(s.Nodes) { // seed-burst: every node is the worker's
			t.Errorf("%s: pool of %d nodes, want %d", name, s.Workloads[0].PoolNodes, len(s.Nodes))
		}
		if name == Opportunist && s.Workloads[0].Limit == "" {
			t.Errorf("%s: workload without a limit: %+v", name, s.Workloads[0])
		}
		l.Step() // a no-op once done
		if l.Now() != s.Now {
			t.Errorf("%s: Step after the end moved time", name)
		}
	}
}

func TestLiveRefusesInstantLaw(t *testing.T) {
	sc, err := Builtin("seed-burst")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewLive(sc, InstantLaw, 1); err == nil {
		t.Error("the instant law accepted")
	}
}
