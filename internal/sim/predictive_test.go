package sim

import (
	"reflect"
	"testing"
	"time"
)

// TestPredictiveTargets checks issue 14's targets on the periodic
// built-ins (seed 1): against the reactive opportunist, paid pending
// pod-seconds at most 25 % and opportunistic pods killed young at most
// 50 %, and a harvest of at least 95 % of the instant law's.
func TestPredictiveTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("three simulated weeks per scenario (about 10 s each): run without -short")
	}
	for _, name := range []string{"daily-office", "daily-checkpoint"} {
		t.Run(name, func(t *testing.T) {
			sc, err := Builtin(name)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Run(sc, Options{Seed: 1, Strategies: []string{Opportunist, OpportunistPredictive}})
			if err != nil {
				t.Fatal(err)
			}
			reactive, pred := rep.Results[0], rep.Results[1]
			t.Logf("reactive %+v", reactive)
			t.Logf("predictive %+v", pred)
			if reactive.PaidPendingPodSeconds == 0 || reactive.OpportunisticPodsKilledYoung == 0 {
				t.Fatalf("the reactive opportunist neither kept paid pods waiting nor killed pods young: the scenario shows nothing")
			}
			if got := pred.PaidPendingPodSeconds / reactive.PaidPendingPodSeconds; got > 0.25 {
				t.Errorf("paid pending %.0f pod-s, %.0f %% of reactive's %.0f: want <= 25 %%", pred.PaidPendingPodSeconds, 100*got, reactive.PaidPendingPodSeconds)
			}
			if got := float64(pred.OpportunisticPodsKilledYoung) / float64(reactive.OpportunisticPodsKilledYoung); got > 0.5 {
				t.Errorf("%d pods killed young, %.0f %% of reactive's %d: want <= 50 %%", pred.OpportunisticPodsKilledYoung, 100*got, reactive.OpportunisticPodsKilledYoung)
			}
			if pred.HarvestRatio < 0.95 {
				t.Errorf("harvest %.4f of the instant law, want >= 0.95", pred.HarvestRatio)
			}
		})
	}
}

// TestPredictiveFallsBack: with no period in the paid load, the predictive
// strategy finds none and is the reactive opportunist, to the number.
func TestPredictiveFallsBack(t *testing.T) {
	sc, err := Builtin("random-bursts")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(sc, Options{Seed: 1, Strategies: []string{Opportunist, OpportunistPredictive}})
	if err != nil {
		t.Fatal(err)
	}
	reactive, pred := rep.Results[0], rep.Results[1]
	pred.Strategy = reactive.Strategy
	if !reflect.DeepEqual(pred, reactive) {
		t.Errorf("predictive %+v\nreactive   %+v\nwant the same numbers", pred, reactive)
	}
}

// TestPredictiveDoesNotPeek: what the predictive strategy does up to an
// instant depends on the load up to it only. A run cut short decides, step
// by step, exactly as the longer run did until the cut.
func TestPredictiveDoesNotPeek(t *testing.T) {
	if testing.Short() {
		t.Skip("three simulated days, twice: run without -short")
	}
	trace := func(d time.Duration) []StepRow {
		sc, err := Builtin("daily-office")
		if err != nil {
			t.Fatal(err)
		}
		sc.Duration = d
		rep, err := Run(sc, Options{Seed: 1, Strategies: []string{OpportunistPredictive}, StepTrace: true})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Steps
	}
	cut := 60 * time.Hour // a day and a half into forecasting
	short, long := trace(cut), trace(72*time.Hour)
	var prefix []StepRow
	for _, r := range long {
		if r.At < cut-time.Minute {
			prefix = append(prefix, r)
		}
	}
	if len(prefix) == 0 || len(short) < len(prefix) || !reflect.DeepEqual(short[:len(prefix)], prefix) {
		t.Errorf("the run cut at %s decided differently before the cut than the longer run (%d rows vs %d)", cut, len(short), len(prefix))
	}
}
