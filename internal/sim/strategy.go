package sim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/opportunist/opportunist/internal/control"
)

// Strategy names.
const (
	Opportunist     = "opportunist"
	HPAWriteup      = "hpa-writeup"
	HPAExample      = "hpa-example"
	HPAAverageValue = "hpa-averagevalue"
	Oracle          = "oracle"
)

// Strategies lists every strategy, in report order.
func Strategies() []string {
	return []string{Opportunist, HPAWriteup, HPAExample, HPAAverageValue, Oracle}
}

// renamedStrategies are names that used to exist, with what to ask for now.
var renamedStrategies = map[string]string{
	"hpa-seed": fmt.Sprintf("%s (%s) or %s (%s)", HPAWriteup, presetDescriptions[HPAWriteup], HPAExample, presetDescriptions[HPAExample]),
}

// CheckStrategy returns nil for a strategy that exists, and otherwise an
// error that says what there is (and, for an old name, what it became).
func CheckStrategy(name string) error {
	if slices.Contains(Strategies(), name) {
		return nil
	}
	if now, ok := renamedStrategies[name]; ok {
		return fmt.Errorf("strategy %q was renamed: ask for %s", name, now)
	}
	return fmt.Errorf("unknown strategy %q (known: %s)", name, strings.Join(Strategies(), ", "))
}

// strategy scales the opportunistic ReplicaSets of a world. act runs once a
// step, after the scenario's events, before the ReplicaSet controller (the
// oracle's, after the scheduler: it has no latency).
type strategy interface {
	act(w *world)
}

func newStrategy(name string, sc *Scenario, w *world) (strategy, error) {
	switch name {
	case Opportunist:
		return newOpportunist(sc, w, false), nil
	case HPAWriteup, HPAExample, HPAAverageValue:
		return newHPAStrategy(name, sc, w)
	case Oracle:
		return &oracle{}, nil
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
		scalers[i] = o.sc.Opportunistic[i].scaler(key, rs.replicas, counts[key], rs.priority, o.history[key])
	}
	cluster := control.ClusterOf(w.ledger)
	cluster.Scoring = o.sc.SchedulerScoring
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

// scaler is the control law's input for this workload, as internal/controller's
// toControl builds it from an OpportunisticScaler and its target.
func (o *OpportunisticWorkload) scaler(key string, current int32, pods control.PodCounts, podPriority int32, history control.History) control.Scaler {
	return control.Scaler{
		Key:                      key,
		Shape:                    o.Shape,
		Current:                  current,
		Bound:                    pods.Bound,
		Stranded:                 pods.Stranded,
		Min:                      o.MinReplicas,
		Max:                      o.MaxReplicas,
		Headroom:                 o.Headroom,
		TargetUtilizationPercent: o.TargetUtilization,
		PoolSelector:             o.PoolSelector,
		Priority:                 o.ScalerPriority,
		Weight:                   o.Weight,
		PodPriority:              podPriority,
		ScaleUp:                  o.ScaleUp,
		ScaleDown:                o.ScaleDown,
		Slots:                    o.Slots,
		History:                  history,
	}
}

// oracle knows the future and has no latency: at every instant each
// workload runs the most replicas that fit under the headroom beside the
// paid pods, as the control law counts them (control.Decide with no
// stabilisation and nothing of its own in the way, the same headroom slots
// kept, its replicas placed as the scheduler would). Its pods are virtual:
// they take no room from paid pods, which it would have let in ahead of time.
type oracle struct {
	ran  bool
	seen uint64
}

func (o *oracle) act(w *world) {
	if o.ran && w.version == o.seen {
		return
	}
	o.ran, o.seen = true, w.version
	scalers := make([]control.Scaler, len(w.opp))
	for i, rs := range w.opp {
		s := w.sc.Opportunistic[i].scaler(namespace+"/"+rs.name, 0, control.PodCounts{}, rs.priority, control.History{})
		s.ScaleUp, s.ScaleDown = control.Behavior{}, control.Behavior{}
		scalers[i] = s
	}
	cluster := control.Cluster{Rooms: w.ledger.Rooms(), Pending: w.ledger.Pending(), Scoring: w.sc.SchedulerScoring}
	decisions := control.Decide(epoch.Add(w.now), cluster, scalers)
	for i, rs := range w.opp {
		for _, d := range decisions {
			if d.Key == scalers[i].Key {
				w.scale(rs, d.Desired)
			}
		}
	}
}

// hpaStrategy runs one HorizontalPodAutoscaler per opportunistic workload,
// synced as the v1.37 controller does: first at FirstSync, then each
// SyncPeriod after the previous sync was processed. It reads the metrics
// opportunist serves: cpu_capacity_remaining (milli-cores, allocatable
// minus the requests of every bound pod, as the exporter serves it) and
// opportunist_desired_replicas (from the opportunist controller in dry run:
// it decides and publishes, the HPA writes).
type hpaStrategy struct {
	name string
	hpas []*hpa
	next []time.Duration // each HPA's next sync
	ctl  *opportunist    // nil unless an HPA reads opportunist_desired_replicas
}

func newHPAStrategy(name string, sc *Scenario, w *world) (*hpaStrategy, error) {
	cfg, ok := sc.HPA[name]
	if !ok {
		cfg = hpaPresets()[name]
	}
	s := &hpaStrategy{name: name}
	for i := range sc.Opportunistic {
		spec, err := hpaSpecFor(name, cfg, &sc.Opportunistic[i], w.allocCPU)
		if err != nil {
			return nil, err
		}
		h := newHPA(spec, cfg.Controller)
		s.hpas = append(s.hpas, h)
		s.next = append(s.next, cfg.Controller.FirstSync)
		if usesDesired(&spec) && s.ctl == nil {
			s.ctl = newOpportunist(sc, w, true)
		}
		// The workload was at least at the HPA's minimum when the HPA was created.
		w.opp[i].replicas = max(w.opp[i].replicas, h.min)
	}
	return s, nil
}

func (s *hpaStrategy) act(w *world) {
	if s.ctl != nil {
		s.ctl.act(w)
	}
	var remaining *int64 // read once a step, when a sync needs it
	m := metricValues{
		object: func(string) (int64, error) { // cpuRemainingMetric: the only Object metric checked in
			if remaining == nil {
				cpu, _ := w.ledger.Report().Resource(corev1.ResourceCPU)
				// The custom metrics API serves the milli-cores as a plain
				// number; the controller reads its milli-value.
				v := cpu.Remaining * 1000
				remaining = &v
			}
			return *remaining, nil
		},
		external: func(_ string, sel labels.Selector) (int64, error) { // desiredMetric
			var sum int64
			found := false
			for i, rs := range w.opp {
				if sel.Matches(labels.Set{scalerLabel: rs.name}) {
					sum += int64(s.ctl.desired[i]) * 1000
					found = true
				}
			}
			if !found {
				return 0, fmt.Errorf("no decision for the OpportunisticScaler %v selects", sel)
			}
			return sum, nil
		},
	}
	for i, rs := range w.opp {
		h := s.hpas[i]
		for s.next[i] <= w.now {
			at := s.next[i]
			st := scaleState{spec: rs.replicas, status: int32(len(rs.active)), ready: rs.ready, pods: int32(len(rs.active))}
			n, _ := h.reconcile(at, rs.replicas, func() int32 { return h.proposal(st, m) })
			w.scale(rs, n)
			s.next[i] = at + h.flags.ProcessingTime + h.flags.SyncPeriod
		}
	}
}

// why says in a sentence what sets workload i's size.
func (s *hpaStrategy) why(i int) string {
	h := s.hpas[i]
	var metrics []string
	for _, m := range h.spec.Metrics {
		switch m.Type {
		case autoscalingv2.ObjectMetricSourceType:
			metrics = append(metrics, fmt.Sprintf("Object %s %s %s", m.Object.Metric.Name, m.Object.Target.Type, targetValue(m.Object.Target)))
		case autoscalingv2.ExternalMetricSourceType:
			metrics = append(metrics, fmt.Sprintf("External %s %s %s", m.External.Metric.Name, m.External.Target.Type, targetValue(m.External.Target)))
		}
	}
	behavior := "no behavior"
	if h.spec.Behavior != nil {
		behavior = fmt.Sprintf("behavior: up window %ds, down window %s", *h.spec.Behavior.ScaleUp.StabilizationWindowSeconds, downWindow(h))
	}
	return fmt.Sprintf("%s: the HPA on %s, %s, syncing every %s", s.name, strings.Join(metrics, ", "), behavior, h.flags.SyncPeriod)
}

// targetValue prints a target as a manifest would ("30000", not "30k").
func targetValue(t autoscalingv2.MetricTarget) string {
	q := t.Value
	if q == nil {
		q = t.AverageValue
	}
	if q == nil {
		return "?"
	}
	if m := q.MilliValue(); m%1000 == 0 {
		return strconv.FormatInt(m/1000, 10)
	}
	return q.String()
}

func downWindow(h *hpa) string {
	if w := h.spec.Behavior.ScaleDown.StabilizationWindowSeconds; w != nil {
		return fmt.Sprintf("%ds", *w)
	}
	return h.flags.DownscaleStabilization.String()
}
