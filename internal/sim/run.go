package sim

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/control"
)

// Options select what a run simulates.
type Options struct {
	// Seed draws the scenario's noise and bursts: the same seed gives the
	// same result.
	Seed uint64
	// Strategies to report, in order (default: all). The instant law
	// always runs: harvest is measured against it.
	Strategies []string
	// StepTrace records Report.Steps.
	StepTrace bool
}

// Report is the outcome of a run.
type Report struct {
	Scenario string   `json:"scenario"`
	Results  []Result `json:"results"`
	// LoadChanges counts the instants at which the paid load or the nodes
	// changed: the yardstick for direction changes.
	LoadChanges int `json:"-"`
	// Series holds each strategy's requests over time, for plots.
	Series []Series `json:"-"`
	// Duration is the simulated time.
	Duration time.Duration `json:"-"`
	// Steps is the per-step trace of the reported strategies, in report
	// order (with Options.StepTrace).
	Steps []StepRow `json:"-"`
}

// Result is one strategy's outcome. Core-hours count CPU requests. Its JSON
// names (also simulate's CSV header) are camelCase and name their unit;
// ratios are fractions 0-1.
type Result struct {
	Strategy string `json:"strategy"`
	// HarvestCoreHours: requests of Ready, non-terminating opportunistic pods over time.
	HarvestCoreHours float64 `json:"harvestCoreHours"`
	// InstantLawCoreHours is the instant law's harvest, and HarvestRatio
	// harvest over it (harvestOfInstantLaw in JSON and CSV): the law graded
	// by the law.
	InstantLawCoreHours float64 `json:"instantLawCoreHours"`
	HarvestRatio        float64 `json:"harvestOfInstantLaw"`
	// BoundCoreHours is the packing bound over the run (bound.go): at each
	// instant, the most that the opportunistic shapes could hold beside the
	// paid pods as this run placed them, capped by allocatable - headroom -
	// paid demand. No strategy's harvest beyond the overshoot exceeds it.
	// HarvestOfBound is harvest over it: the law graded without the law
	// (harvest less ReclaimedCoreHours: reclaimed CPU is not in the bound).
	BoundCoreHours float64 `json:"boundCoreHours"`
	HarvestOfBound float64 `json:"harvestOfBound"`
	// MeanUtilization: requests of bound pods over allocatable, averaged over time.
	MeanUtilization float64 `json:"meanUtilization"`
	// OvershootCoreHours: harvest beyond allocatable - headroom - paid demand
	// (paid pods bound or waiting), i.e. harvest that ate into the headroom;
	// CPU reclaimed from idle paid requests is not overshoot.
	OvershootCoreHours float64 `json:"overshootCoreHours"`
	// PaidPendingPodSeconds: seconds paid pods spent unbound (their start-up
	// delay runs from binding, so all of it is waiting beyond it).
	PaidPendingPodSeconds float64 `json:"paidPendingPodSeconds"`
	// LongestPaidWaitSeconds is MaxPaidWait in seconds, for JSON and CSV.
	LongestPaidWaitSeconds float64 `json:"longestPaidWaitSeconds"`
	// ScaleEvents: writes of the opportunistic workloads' replica counts.
	ScaleEvents int `json:"scaleEvents"`
	// DirectionChanges: writes that reversed the direction of the previous one.
	DirectionChanges int `json:"directionChanges"`
	// MaxPaidWait is the longest a paid pod waited to be bound (or, never
	// bound, until the end).
	MaxPaidWait time.Duration `json:"-"`
	// UnboundOpportunisticPodHours counts opportunistic pods that exist but
	// fit nowhere: no harvest, and on a real cluster a cue for the
	// cluster-autoscaler to buy nodes.
	UnboundOpportunisticPodHours float64 `json:"unschedulablePodHours"`
	// ReclaimedCoreHours: CPU held by Ready opportunistic pods beyond what
	// requests leave free on their nodes (allocatable − paid requests),
	// i.e. harvested from paid requests left idle (usage.go). 0 without reclaim.
	ReclaimedCoreHours float64 `json:"reclaimedCoreHours"`
	// PaidCPUContentionSeconds: node-seconds during which a node's total
	// CPU usage (paid usage by its model + opportunistic pods using all
	// they hold) exceeded its allocatable while reclaiming pods ran there.
	// PaidCPUContentionOfNodeTime is it over the node-seconds of the run.
	PaidCPUContentionSeconds    float64 `json:"paidCpuContentionSeconds"`
	PaidCPUContentionOfNodeTime float64 `json:"paidCpuContentionOfNodeTime"`
	// RequestsOnlyCoreHours is the opportunist strategy's harvest on the
	// same scenario with reclaim off (the reclaiming pods requesting their
	// reclaimed cpu as cpu), and HarvestOfRequestsOnly harvest over it.
	// 0 in a scenario without reclaim.
	RequestsOnlyCoreHours float64 `json:"requestsOnlyCoreHours"`
	HarvestOfRequestsOnly float64 `json:"harvestOfRequestsOnly"`
	// OpportunisticPodsKilledYoung counts opportunistic pods stopped within
	// 5 minutes of starting (bound): work started and thrown away, what
	// reacting to every dip of paid demand costs (young.go).
	OpportunisticPodsKilledYoung int `json:"opportunisticPodsKilledYoung"`
}

// Series is a strategy's CPU requests over time, in cores, sampled evenly.
type Series struct {
	Strategy string
	Points   []Point
}

// Point averages one sample interval.
type Point struct {
	At            time.Duration // start of the interval
	Paid          float64       // paid pods bound
	Opportunistic float64       // opportunistic pods bound (virtual for the instant law)
	Allocatable   float64
	Target        float64 // allocatable - headroom: the fill line
	PaidPending   float64 // paid pods not bound (a count, not cores)
}

// maxPoints bounds a series.
const maxPoints = 1500

// Run simulates the scenario under each strategy. Strategies run in
// parallel, each on its own copy of the cluster; the result does not
// depend on it.
func Run(sc *Scenario, opts Options) (*Report, error) {
	names := opts.Strategies
	if len(names) == 0 {
		names = Strategies()
		if sc.Reclaims() {
			names = []string{Opportunist, InstantLaw}
		}
	}
	for i, n := range names {
		if err := CheckStrategy(n); err != nil {
			return nil, err
		}
		if sc.Reclaims() && n != Opportunist && n != InstantLaw {
			return nil, fmt.Errorf("strategy %q: scenario %s reclaims idle paid requests, which only opportunist and instant-law do (docs/reclaim.md)", n, sc.Name)
		}
		if slices.Index(names, n) != i {
			return nil, fmt.Errorf("strategy %q is listed twice", n)
		}
	}
	load := loadEvents(sc, opts.Seed)
	if err := checkPeak(sc, load); err != nil {
		return nil, err
	}
	run := names
	if !slices.Contains(run, InstantLaw) {
		run = append(slices.Clone(run), InstantLaw)
	}
	outs := make([]outcome, len(run))
	var wg sync.WaitGroup
	var requestsOnly outcome // the opportunist with reclaim off
	if sc.Reclaims() {
		wg.Go(func() { requestsOnly = simulate(sc.withoutReclaim(), Opportunist, load, false) })
	}
	for i, name := range run {
		var steps *stepTrace
		if opts.StepTrace && i < len(names) {
			steps = &stepTrace{strategy: name}
		}
		wg.Go(func() { outs[i] = simulateTraced(sc, name, load, false, steps) })
	}
	wg.Wait()
	var instantHours float64
	if requestsOnly.err != nil {
		return nil, requestsOnly.err
	}
	for _, o := range outs {
		if o.err != nil {
			return nil, o.err
		}
		if o.result.Strategy == InstantLaw {
			instantHours = o.result.HarvestCoreHours
		}
	}
	rep := &Report{Scenario: sc.Name, LoadChanges: load.changes, Duration: sc.Duration}
	for i := range names {
		r := outs[i].result
		r.InstantLawCoreHours = instantHours
		if instantHours > 0 {
			r.HarvestRatio = r.HarvestCoreHours / instantHours
		}
		if r.BoundCoreHours > 0 {
			// The bound counts what requests allow: reclaimed CPU is beside it.
			r.HarvestOfBound = (r.HarvestCoreHours - r.ReclaimedCoreHours) / r.BoundCoreHours
		}
		if sc.Reclaims() {
			r.RequestsOnlyCoreHours = requestsOnly.result.HarvestCoreHours
			if r.RequestsOnlyCoreHours > 0 {
				r.HarvestOfRequestsOnly = r.HarvestCoreHours / r.RequestsOnlyCoreHours
			}
		}
		rep.Results = append(rep.Results, r.rounded())
		rep.Series = append(rep.Series, outs[i].series)
		rep.Steps = append(rep.Steps, outs[i].steps...)
	}
	return rep, nil
}

func (r Result) rounded() Result {
	round := func(v float64, digits int) float64 {
		p := math.Pow10(digits)
		return math.Round(v*p) / p
	}
	r.HarvestCoreHours = round(r.HarvestCoreHours, 3)
	r.InstantLawCoreHours = round(r.InstantLawCoreHours, 3)
	r.HarvestRatio = round(r.HarvestRatio, 4)
	r.BoundCoreHours = round(r.BoundCoreHours, 3)
	r.HarvestOfBound = round(r.HarvestOfBound, 4)
	r.MeanUtilization = round(r.MeanUtilization, 4)
	r.OvershootCoreHours = round(r.OvershootCoreHours, 3)
	r.PaidPendingPodSeconds = round(r.PaidPendingPodSeconds, 1)
	r.LongestPaidWaitSeconds = round(r.MaxPaidWait.Seconds(), 1)
	r.UnboundOpportunisticPodHours = round(r.UnboundOpportunisticPodHours, 2)
	r.ReclaimedCoreHours = round(r.ReclaimedCoreHours, 3)
	r.PaidCPUContentionSeconds = round(r.PaidCPUContentionSeconds, 1)
	r.PaidCPUContentionOfNodeTime = round(r.PaidCPUContentionOfNodeTime, 5)
	r.RequestsOnlyCoreHours = round(r.RequestsOnlyCoreHours, 3)
	r.HarvestOfRequestsOnly = round(r.HarvestOfRequestsOnly, 4)
	return r
}

// events is the scenario's timeline: paid replica counts and node events,
// in time order.
type events struct {
	list    []event
	changes int
	seed    uint64 // draws paid usage too (usage.go)
}

type event struct {
	at       time.Duration
	paid     int // index of the paid workload, or -1 for a node event
	replicas int32
	node     *NodeEvent
}

func loadEvents(sc *Scenario, seed uint64) events {
	out := events{seed: seed}
	for i := range sc.Paid {
		for _, st := range sc.Paid[i].Load.schedule(sc.Paid[i].Name, sc.Duration, seed) {
			out.list = append(out.list, event{at: st.At, paid: i, replicas: st.Replicas})
		}
	}
	for i := range sc.NodeEvents {
		if e := &sc.NodeEvents[i]; e.At < sc.Duration {
			out.list = append(out.list, event{at: e.At, paid: -1, node: e})
		}
	}
	slices.SortStableFunc(out.list, func(a, b event) int { return int(a.at - b.at) })
	var last time.Duration
	for _, e := range out.list {
		if e.at > 0 && e.at != last {
			out.changes++
			last = e.at
		}
	}
	return out
}

type outcome struct {
	result Result
	series Series
	steps  []StepRow
	err    error
	// aboveBound counts the steps whose harvest beyond the overshoot
	// exceeded the packing bound: zero, or the bound is no bound.
	aboveBound int
}

// accounting integrates a world's measures over time.
type accounting struct {
	harvest, overshoot float64 // milli-core seconds
	bound              float64 // milli-core seconds
	packing            packing // the bound's packing of the last change
	aboveBound         int     // steps whose harvest beyond the overshoot exceeded the bound
	utilization        float64 // fraction x seconds
	pending            float64 // paid pod seconds
	unboundOpp         float64 // opportunistic pod seconds
	reclaimed          float64 // milli-core seconds
	contention         float64 // node seconds
	nodeSeconds        float64
	seconds            float64

	every  time.Duration
	bucket Point
	n      float64
	series []Point
}

func simulate(sc *Scenario, name string, load events, resyncAlways bool) outcome {
	return simulateTraced(sc, name, load, resyncAlways, nil)
}

// simulateTraced is simulate, recording the per-step trace into steps
// unless nil.
func simulateTraced(sc *Scenario, name string, load events, resyncAlways bool, steps *stepTrace) outcome {
	w := newWorld(sc, name == InstantLaw)
	w.initReclaim(load.seed)
	strat, err := newStrategy(name, sc, w)
	if err != nil {
		return outcome{err: err}
	}
	if o, ok := strat.(*opportunist); ok {
		o.resyncAlways = resyncAlways
	}
	if h, ok := strat.(*hpaStrategy); ok && h.ctl != nil {
		h.ctl.resyncAlways = resyncAlways
	}
	acc := &accounting{every: max(sc.Step, (sc.Duration/maxPoints+sc.Step-1)/sc.Step*sc.Step)}
	next := 0
	apply := func() {
		for ; next < len(load.list) && load.list[next].at <= w.now; next++ {
			e := load.list[next]
			if e.paid >= 0 {
				w.paid[e.paid].replicas = e.replicas
				continue
			}
			changed := 0 // the first Count nodes of the group not yet in that state change
			for _, i := range w.groups[e.node.Group] {
				if changed < e.node.Count && w.nodes[i].spec.Ready == e.node.Down {
					w.setNode(i, !e.node.Down)
					changed++
				}
			}
		}
	}
	// The cluster at time zero has run for a while: its pods are placed and Ready.
	apply()
	w.reconcileSets()
	w.schedulePending()
	w.settle()
	w.schedulePending()

	instant := name == InstantLaw
	for w.now = 0; w.now < sc.Duration; w.now += sc.Step {
		apply()
		w.fireTimers()
		w.publish()
		if !instant {
			strat.act(w)
		}
		w.reconcileSets()
		w.schedulePending()
		if instant {
			strat.act(w)
		}
		acc.add(w, min(sc.Step, sc.Duration-w.now))
		if steps != nil {
			steps.record(w, strat)
		}
	}
	acc.flush()
	r := Result{Strategy: name}
	const milliCoreSecondsPerCoreHour = 1000 * 3600
	r.HarvestCoreHours = acc.harvest / milliCoreSecondsPerCoreHour
	r.OvershootCoreHours = acc.overshoot / milliCoreSecondsPerCoreHour
	r.BoundCoreHours = acc.bound / milliCoreSecondsPerCoreHour
	r.PaidPendingPodSeconds = acc.pending
	r.UnboundOpportunisticPodHours = acc.unboundOpp / 3600
	r.ReclaimedCoreHours = acc.reclaimed / milliCoreSecondsPerCoreHour
	r.PaidCPUContentionSeconds = acc.contention
	if acc.nodeSeconds > 0 {
		r.PaidCPUContentionOfNodeTime = acc.contention / acc.nodeSeconds
	}
	if acc.seconds > 0 {
		r.MeanUtilization = acc.utilization / acc.seconds
	}
	for _, rs := range w.opp {
		r.ScaleEvents += rs.scales
		r.DirectionChanges += rs.directionChanges
	}
	r.MaxPaidWait = w.maxPaidWait
	r.OpportunisticPodsKilledYoung = w.killedYoung
	for _, p := range w.pending {
		if p.rs.paid {
			r.MaxPaidWait = max(r.MaxPaidWait, sc.Duration-p.created)
		}
	}
	out := outcome{result: r, series: Series{Strategy: name, Points: acc.series}, aboveBound: acc.aboveBound}
	if steps != nil {
		steps.finish()
		out.steps = steps.rows
	}
	return out
}

// keptFree is the room of one resource kept free in a pool of alloc: the
// largest any workload's scaler keeps (control.KeptFree, as converted by
// the controller's ToControl). The fill line and the overshoot use it.
func (w *world) keptFree(name corev1.ResourceName, alloc int64) int64 {
	var kept int64
	for i := range w.scalers {
		kept = max(kept, control.KeptFree(&w.scalers[i], name, alloc))
	}
	return kept
}

// add accounts one step of dt.
func (a *accounting) add(w *world, dt time.Duration) {
	secs := dt.Seconds()
	harvest, bound := w.readyOppCPU, w.boundOppCPU
	if w.virtualOpp {
		harvest = 0
		for _, rs := range w.opp {
			harvest += int64(rs.replicas) * rs.cpu
		}
		bound = harvest
	}
	headroom, poolHeadroom := w.keptFree(corev1.ResourceCPU, w.allocCPU), w.keptFree(corev1.ResourceCPU, w.poolCPU)
	allowed := w.poolCPU - poolHeadroom - w.paidPoolCPU
	// Reclaimed CPU is harvest beyond what requests allow by design: the
	// overshoot and the packing bound (requests both) judge the rest.
	var reclaimed int64
	if w.reclaim != nil {
		nodes, r := w.contention()
		if w.virtualOpp { // no pods to place: reclaimed is what requests leave short, cluster-wide
			r = max(harvest-max(w.allocCPU-w.boundPaidCPU, 0), 0)
		}
		a.contention += float64(nodes) * secs
		a.reclaimed += float64(r) * secs
		reclaimed = min(r, harvest)
	}
	over := min(max(harvest-reclaimed-allowed, 0), harvest-reclaimed)
	a.harvest += float64(harvest) * secs
	a.overshoot += float64(over) * secs
	ceiling := min(a.packing.of(w), max(allowed, 0)) // the packing bound now
	a.bound += float64(ceiling) * secs
	if min(harvest-reclaimed, allowed) > ceiling {
		a.aboveBound++ // never: bound_test.go
	}
	a.pending += float64(w.pendingPaid) * secs
	a.nodeSeconds += float64(len(w.nodes)) * secs
	a.unboundOpp += float64(len(w.pending)-w.pendingPaid) * secs
	a.seconds += secs
	if w.allocCPU > 0 {
		a.utilization += float64(w.boundPaidCPU+bound) / float64(w.allocCPU) * secs
	}

	if a.n == 0 {
		a.bucket = Point{At: w.now}
	}
	a.bucket.Paid += float64(w.boundPaidCPU) / 1000
	a.bucket.Opportunistic += float64(bound) / 1000
	a.bucket.Allocatable += float64(w.allocCPU) / 1000
	a.bucket.Target += float64(w.allocCPU-headroom) / 1000
	a.bucket.PaidPending += float64(w.pendingPaid)
	a.n++
	if w.now+dt-a.bucket.At >= a.every {
		a.flush()
	}
}

func (a *accounting) flush() {
	if a.n == 0 {
		return
	}
	p := a.bucket
	p.Paid /= a.n
	p.Opportunistic /= a.n
	p.Allocatable /= a.n
	p.Target /= a.n
	p.PaidPending /= a.n
	a.series = append(a.series, p)
	a.n = 0
}
