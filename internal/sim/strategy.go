package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opportunist/opportunist/internal/control"
)

// Strategy names.
const (
	Opportunist     = "opportunist"
	HPAWriteup      = "hpa-writeup"
	HPAExample      = "hpa-example"
	HPAAverageValue = "hpa-averagevalue"
	// InstantLaw is the control law with perfect, instant knowledge and no
	// stabilisation: harvestOfInstantLaw grades harvest against it.
	InstantLaw = "instant-law"
)

// Strategies lists the strategies run by default, in report order.
// OpportunistPredictive (predictive.go) runs only when asked: it needs days
// of simulated history before it differs from Opportunist.
func Strategies() []string {
	return []string{Opportunist, HPAWriteup, HPAExample, HPAAverageValue, InstantLaw}
}

// renamedStrategies are names that used to exist, with what became of them.
var renamedStrategies = map[string]string{
	"hpa-seed": fmt.Sprintf("it was renamed: ask for %s (%s) or %s (%s)", HPAWriteup, presetDescriptions[HPAWriteup], HPAExample, presetDescriptions[HPAExample]),
	"oracle":   "it was renamed instant-law (the control law with perfect, instant knowledge, no stabilisation)",
}

// CheckStrategy returns nil for a strategy that exists, and otherwise an
// error that says what there is (and, for an old name, what it became).
func CheckStrategy(name string) error {
	if slices.Contains(Strategies(), name) || name == OpportunistPredictive {
		return nil
	}
	if why, ok := renamedStrategies[name]; ok {
		return fmt.Errorf("strategy %q: %s", name, why)
	}
	return fmt.Errorf("unknown strategy %q (known: %s)", name, strings.Join(append(Strategies(), OpportunistPredictive), ", "))
}

// strategy scales the opportunistic ReplicaSets of a world. act runs once a
// step, after the scenario's events, before the ReplicaSet controller (the
// instant law's, after the scheduler: it has no latency).
type strategy interface {
	act(w *world)
}

func newStrategy(name string, sc *Scenario, w *world) (strategy, error) {
	switch name {
	case Opportunist:
		return newOpportunist(sc, w, false), nil
	case OpportunistPredictive:
		return newPredictive(sc, w), nil
	case HPAWriteup, HPAExample, HPAAverageValue:
		return newHPAStrategy(name, sc, w)
	case InstantLaw:
		return &instantLaw{}, nil
	}
	return nil, CheckStrategy(name)
}

// epoch is the simulation's time zero for the control law, which takes
// wall-clock instants.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// opportunist is the OpportunisticScaler controller (internal/controller):
// one round of control.Decide over every scaler, fed from the capacity
// ledger (Rooms, Pending, and control.PodCountsOf of its Report) with the
// History of the previous round, on every change of the cluster and at
// least every RoundInterval. It writes the desired counts, or only publishes
// them (dry run: opportunist_desired_replicas for hpa-averagevalue).
type opportunist struct {
	sc      *Scenario
	dryRun  bool
	history map[string]control.History
	desired []int32 // last decision, by opportunistic workload
	// decisions of the last round, sorted by key: read by Live for its view.
	decisions []control.Decision

	ran       bool
	seen      uint64  // world.version at the last round
	currents  []int32 // replicas at the last round
	lastRound time.Duration
	// settled: at the last round no scaler's Desired was held back from its
	// Recommended by stabilisation. Until the cluster or a current count
	// changes, a resync round would then decide the same: the law is a pure
	// function, time matters to it only through stabilisation, and what
	// stabilisation lets through at one instant it lets through later (its
	// windows and periods only forget). So resync rounds are skipped, and
	// their trace in the history (LastTime) is put back before the next round.
	settled bool
	// resyncAlways runs every resync round (tests check skipping changes nothing).
	resyncAlways bool
	// adjust, when set, changes the scalers before each round
	// (opportunist-predictive: the predictive budget, predictive.go).
	adjust func([]control.Scaler)
}

func newOpportunist(sc *Scenario, w *world, dryRun bool) *opportunist {
	return &opportunist{sc: sc, dryRun: dryRun, history: map[string]control.History{},
		desired: make([]int32, len(w.opp)), currents: make([]int32, len(w.opp))}
}

func (o *opportunist) act(w *world) {
	changed := !o.ran || w.version != o.seen
	for i, rs := range w.opp {
		changed = changed || rs.replicas != o.currents[i]
	}
	if !changed && (w.now-o.lastRound < o.sc.RoundInterval || o.settled && !o.resyncAlways) {
		return
	}
	if o.ran && o.settled && !o.resyncAlways {
		o.replaySkippedResyncs(w.now)
	}
	o.round(w)
}

// replaySkippedResyncs sets LastTime to the last resync round that would
// have run before now, on the step grid.
func (o *opportunist) replaySkippedResyncs(now time.Duration) {
	step := o.sc.Step
	last := o.lastRound
	for {
		next := (last + o.sc.RoundInterval + step - 1) / step * step
		if next >= now {
			break
		}
		last = next
	}
	if last == o.lastRound {
		return
	}
	for k, h := range o.history {
		h.LastTime = epoch.Add(last)
		o.history[k] = h
	}
}

func (o *opportunist) round(w *world) {
	counts := control.PodCountsOf(w.ledger.Report())
	scalers := make([]control.Scaler, len(w.opp))
	for i, rs := range w.opp {
		key := namespace + "/" + rs.name
		scalers[i] = o.sc.mustScaler(i, rs.replicas, counts[key], rs.priority, o.history[key])
	}
	if o.adjust != nil {
		o.adjust(scalers)
	}
	cluster := control.ClusterOf(w.ledger)
	cluster.Scoring = o.sc.SchedulerScoring
	if w.reclaim != nil {
		cluster.Reclaim = w.reclaim.published
	}
	decisions := control.Decide(epoch.Add(w.now), cluster, scalers)
	o.decisions = decisions
	byKey := make(map[string]*control.Decision, len(decisions))
	for i := range decisions {
		byKey[decisions[i].Key] = &decisions[i]
		o.history[decisions[i].Key] = decisions[i].History
	}
	o.settled = true
	for i, rs := range w.opp {
		d := byKey[scalers[i].Key]
		o.desired[i] = d.Desired
		o.settled = o.settled && d.Desired == d.Recommended
		if !o.dryRun {
			w.markYield(rs, d.Yield, yieldDeletionCost) // the pods to go, before the count goes down
			w.scale(rs, d.Desired)
		}
	}
	o.ran, o.seen, o.lastRound = true, w.version, w.now
	for i, rs := range w.opp {
		o.currents[i] = rs.replicas
	}
}

// yieldDeletionCost is the pod-deletion-cost the controller sets on the
// pods a decision yields (internal/controller YieldDeletionCost).
const yieldDeletionCost = -1000

// mustScaler is Scenario.scaler for a run: the scenario converted when it
// was loaded and converts the same way now (the conversion is a pure
// function of what the run does not change).
func (s *Scenario) mustScaler(i int, current int32, pods control.PodCounts, podPriority int32, history control.History) control.Scaler {
	out, err := s.scaler(i, current, pods, podPriority, history)
	if err != nil {
		panic(fmt.Sprintf("sim: scenario %s changed since it was validated: %v", s.Name, err))
	}
	return out
}

// instantLaw is the control law with perfect, instant knowledge and no
// stabilisation: at every instant each workload runs the most replicas
// that fit under the headroom beside the paid pods, as the control law
// counts them (control.Decide with no stabilisation and nothing of its own
// in the way, the same headroom slots kept, its replicas placed as the
// scheduler would). Its pods are virtual: they take no room from paid
// pods, which it would have let in ahead of time. It grades the law by the
// law; the packing bound (bound.go) grades it by something else.
type instantLaw struct {
	ran  bool
	seen uint64
}

func (o *instantLaw) act(w *world) {
	if o.ran && w.version == o.seen {
		return
	}
	o.ran, o.seen = true, w.version
	scalers := make([]control.Scaler, len(w.opp))
	for i, rs := range w.opp {
		s := w.sc.mustScaler(i, 0, control.PodCounts{}, rs.priority, control.History{})
		s.ScaleUp, s.ScaleDown = control.Behavior{}, control.Behavior{}
		scalers[i] = s
	}
	cluster := control.Cluster{Rooms: w.ledger.Rooms(), Pending: w.ledger.Pending(), Scoring: w.sc.SchedulerScoring}
	if w.reclaim != nil {
		cluster.Reclaim = w.reclaim.published
	}
	decisions := control.Decide(epoch.Add(w.now), cluster, scalers)
	for i, rs := range w.opp {
		for _, d := range decisions {
			if d.Key == scalers[i].Key {
				w.scale(rs, d.Desired)
			}
		}
	}
}
