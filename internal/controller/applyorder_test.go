package controller

import (
	"slices"
	"sync"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"

	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/scalerspec"
)

// The round writes the scale-downs for pending paid pods first, then the
// other scale-downs, then the rest, each group in key order: at 5,000 nodes
// each scaler's writes took ~1.4 s, and the yield was seventh in key order.
func TestApplyOrderPutsYieldsFirst(t *testing.T) {
	round := func(key string, current int32) *scalerRound {
		return &scalerRound{key: key, target: &scalerspec.Target{Scale: &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: current}}}}
	}
	rounds := []*scalerRound{
		round("a/up", 5), round("b/down-fit", 5), round("c/same", 5), round("d/yield", 5),
		round("e/problem", 5), round("f/no-decision", 5), round("g/yield", 5), round("h/down-budget", 5),
	}
	rounds[4].problem = ReasonScaleFailed
	decisions := map[string]*control.Decision{
		"a/up":          {Desired: 6, Limit: control.LimitFit},
		"b/down-fit":    {Desired: 4, Limit: control.LimitFit},
		"c/same":        {Desired: 5, Limit: control.LimitPendingPaid},
		"d/yield":       {Desired: 3, Limit: control.LimitPendingPaid},
		"e/problem":     {Desired: 1, Limit: control.LimitPendingPaid},
		"g/yield":       {Desired: 0, Limit: control.LimitPendingPaid},
		"h/down-budget": {Desired: 2, Limit: control.LimitBudget},
	}
	var got []string
	for _, sr := range applyOrder(rounds, decisions) {
		got = append(got, sr.key)
	}
	want := []string{"d/yield", "g/yield", "b/down-fit", "h/down-budget", "a/up", "c/same", "e/problem", "f/no-decision"}
	if !slices.Equal(got, want) {
		t.Errorf("applyOrder = %v, want %v", got, want)
	}
	if rounds[0].key != "a/up" {
		t.Errorf("applyOrder reordered its input: %s first", rounds[0].key)
	}
}

// A round has applyWorkers scalers' writes in flight at once, started in
// the order given, so the yields that go first are not held by the rest.
func TestInParallelStartsInOrderWorkersAtOnce(t *testing.T) {
	const workers, items = 3, 7
	var (
		mu      sync.Mutex
		started []int
	)
	full := make(chan struct{})
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		inParallel([]int{0, 1, 2, 3, 4, 5, 6}, workers, func(i int) {
			mu.Lock()
			started = append(started, i)
			if len(started) == workers {
				close(full)
			}
			mu.Unlock()
			if i < workers {
				<-release // the first ones wait until all of them are in flight
			}
		})
		close(done)
	}()
	select {
	case <-full:
	case <-time.After(10 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("only %v in flight after 10s, want %d at once", started, workers)
	}
	mu.Lock()
	first := slices.Clone(started)
	mu.Unlock()
	slices.Sort(first)
	if !slices.Equal(first, []int{0, 1, 2}) {
		t.Errorf("in flight first: %v, want the first %d items", first, workers)
	}
	close(release)
	<-done
	if len(started) != items {
		t.Errorf("%d items done, want %d", len(started), items)
	}
}
