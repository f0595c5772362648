package cli

import (
	"strings"
	"testing"

	"github.com/opportunist/opportunist/internal/dashboard"
	"github.com/opportunist/opportunist/internal/sim"
)

// The demo's page says what the scenario is and what each strategy is, and
// shows simulate's own numbers: the same as a sim.Run of the scenario.
func TestDemoStateExplainsItself(t *testing.T) {
	o := defaultDemoOptions()
	src, err := o.newSource()
	if err != nil {
		t.Fatal(err)
	}
	st := src.State()
	sc := st.Scenario
	if sc == nil {
		t.Fatal("the demo's state has no scenario")
	}
	if sc.Name != "seed-burst" || sc.DurationSeconds != 2400 || sc.LoadChanges != 2 || sc.Description == "" {
		t.Errorf("scenario = %+v, want seed-burst, 2400 s, 2 load changes and its description", sc)
	}
	for _, want := range []string{"6 nodes, 184 cores and 480 GiB of memory in all.", "sample-metrics-app, 2 pods of 4 cores at first, changing over time",
		"worker, pods of 1 core, 15 to 150 of them, keeping 30 cores free for paid work"} {
		if !strings.Contains(sc.Setting, want) {
			t.Errorf("setting %q lacks %q", sc.Setting, want)
		}
	}

	sc2, err := sim.Builtin("seed-burst")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := sim.Run(sc2, sim.Options{Seed: o.Seed, Strategies: []string{sim.Opportunist, sim.HPAWriteup}})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Views) != 2 {
		t.Fatalf("%d views, want 2", len(st.Views))
	}
	for i, v := range st.Views {
		r := rep.Results[i]
		if v.Description == "" || v.Description != sim.PlainWords(v.Name) {
			t.Errorf("view %s: description %q, want sim.PlainWords", v.Name, v.Description)
		}
		s := v.Summary
		if s == nil {
			t.Fatalf("view %s has no summary", v.Name)
		}
		if r.Strategy != v.Name || s.HarvestCoreHours != r.HarvestCoreHours || s.HarvestOfInstantLaw != r.HarvestRatio ||
			s.OvershootCoreHours != r.OvershootCoreHours || s.LongestPaidWaitSeconds != r.LongestPaidWaitSeconds ||
			s.DirectionChanges != r.DirectionChanges || s.UnschedulablePodHours != r.UnboundOpportunisticPodHours {
			t.Errorf("view %s: summary %+v, want simulate's %+v", v.Name, *s, r)
		}
	}
	// The comparison that persuades: the write-up's HPA saws.
	if a, b := st.Views[0].Summary.DirectionChanges, st.Views[1].Summary.DirectionChanges; a >= b {
		t.Errorf("direction changes: opportunist %d, hpa-writeup %d; want the HPA to saw more", a, b)
	}
}

func TestKeptFree(t *testing.T) {
	for _, name := range []struct{ scenario, want string }{
		{"seed-burst", "30 cores"},
		{"fragmented", "10% of the cores"},
		{"web-slots", "room for 4 web pods"},
	} {
		t.Run(name.scenario, func(t *testing.T) {
			sc, err := sim.Builtin(name.scenario)
			if err != nil {
				t.Fatal(err)
			}
			if got := keptFree(sc.Opportunistic[0]); got != name.want {
				t.Errorf("keptFree = %q, want %q", got, name.want)
			}
		})
	}
}

// A short paid wait survives the thinning of a long history.
func TestSamplerKeepsShortWaits(t *testing.T) {
	s := &sampler{name: "x"}
	waitAt := 3*maxSamples + 1 // not a kept sample once the stride grows
	for i := range 4 * maxSamples {
		p := dashboard.Sample{}
		if i == waitAt {
			p.PendingPaidPods = 3
		}
		s.add(p)
	}
	most := 0
	for _, p := range s.points {
		most = max(most, p.PendingPaidPods)
	}
	if most != 3 || len(s.points) > maxSamples {
		t.Errorf("after thinning to %d points the most paid pods waiting is %d, want 3", len(s.points), most)
	}
}
