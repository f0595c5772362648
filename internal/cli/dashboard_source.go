//go:build !nocluster

package cli

import (
	"context"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/controller"
	"github.com/opportunist/opportunist/internal/dashboard"
)

// capacityView is what the dashboard reads of the live capacity cache
// (cluster.Cache).
type capacityView interface {
	Report() capacity.Report
	Rooms() []capacity.NodeRoom
	Pending() []capacity.PendingPod
}

// desiredView is what the dashboard reads of the controller's last round
// (controller.DecisionStore).
type desiredView interface {
	Keys() []string
	Get(key string) (controller.Published, bool)
}

// clusterSource feeds the dashboard from a live cluster. It samples the
// cache every interval: the history and the decision feed are built from
// those samples, so they start when opportunist run starts.
type clusterSource struct {
	capacity capacityView
	desired  desiredView
	now      func() time.Time

	mu           sync.Mutex
	state        dashboard.State
	history      sampler
	decisions    []dashboard.Decision // oldest first
	lastDesired  map[string]int32
	pendingSince map[string]time.Time // paid pods pending, by key: when first seen
	maxWait      time.Duration
}

func newClusterSource(c capacityView, d desiredView) *clusterSource {
	s := &clusterSource{capacity: c, desired: d, now: time.Now, history: sampler{name: "cluster"},
		lastDesired: map[string]int32{}, pendingSince: map[string]time.Time{}}
	s.sample()
	return s
}

// run samples every interval until ctx ends.
func (s *clusterSource) run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.sample()
		}
	}
}

func (s *clusterSource) State() dashboard.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *clusterSource) History() dashboard.History {
	s.mu.Lock()
	defer s.mu.Unlock()
	return dashboard.History{Views: []dashboard.Series{{Name: s.history.name, Points: slices.Clone(s.history.points)}}}
}

// sample reads the cache and the controller's decisions once.
func (s *clusterSource) sample() {
	now := s.now()
	rep := s.capacity.Report()
	rooms := s.capacity.Rooms()
	pending := s.capacity.Pending()

	s.mu.Lock()
	defer s.mu.Unlock()
	v := dashboard.View{
		Name:        "cluster",
		Resources:   []dashboard.Resource{liveResource(rep, corev1.ResourceCPU, "cores", milliPerCore), liveResource(rep, corev1.ResourceMemory, "GiB", bytesPerGiB)},
		PendingPaid: s.pendingPaid(now, pending),
		Nodes:       []dashboard.Node{},
	}
	v.Workloads, v.Forecasts = s.workloads(now, rep)
	reclaimed := s.reclaimByNode()
	for _, r := range rooms {
		n := nodeOf(r)
		n.Reclaim = reclaimed[n.Name]
		v.Nodes = append(v.Nodes, n)
	}
	v.Decisions = make([]dashboard.Decision, 0, len(s.decisions))
	for i := len(s.decisions) - 1; i >= 0; i-- {
		v.Decisions = append(v.Decisions, s.decisions[i])
	}
	s.state = dashboard.State{Time: now, Origin: "cluster", Views: []dashboard.View{v}}
	s.history.add(dashboard.Sample{Time: now, Resources: v.Resources, PendingPaidPods: v.PendingPaid.Pods})
}

// reclaimByNode is the reclaimer's last room of each node in a reclaiming
// scaler's pool. The room is the node's, whichever scaler's round computed
// it: the first scaler by key names it.
func (s *clusterSource) reclaimByNode() map[string]*dashboard.NodeReclaim {
	out := map[string]*dashboard.NodeReclaim{}
	if s.desired == nil {
		return out
	}
	for _, k := range s.desired.Keys() {
		d, ok := s.desired.Get(k)
		if !ok || d.Reclaim == nil {
			continue
		}
		for _, n := range d.Reclaim.Nodes {
			if _, seen := out[n.Node]; seen {
				continue
			}
			out[n.Node] = &dashboard.NodeReclaim{Workload: k, ReclaimableCores: float64(n.Reclaimable) / milliPerCore,
				PublishedCores: float64(n.Published) / milliPerCore, Formula: n.Formula,
				UsageFresh: d.Reclaim.UsageFresh, Message: d.Reclaim.Message}
		}
	}
	return out
}

// liveResource is one resource of the usable pool. The headroom line is
// left at 0 (not drawn): each OpportunisticScaler keeps its own headroom,
// which the cache does not hold.
func liveResource(rep capacity.Report, name corev1.ResourceName, unit string, per float64) dashboard.Resource {
	r, _ := rep.Resource(name)
	return dashboard.Resource{Name: string(name), Unit: unit, Allocatable: float64(r.Allocatable) / per,
		Paid: float64(r.PaidRequests) / per, Opportunistic: float64(r.OpportunisticRequests) / per}
}

// workloads lists the opportunistic workloads with the controller's last
// decision (desired, bounds, limit and reason) and their bound pods as the
// current count, and records each change of the desired count in the feed;
// and the forecasts of the predicting ones.
func (s *clusterSource) workloads(now time.Time, rep capacity.Report) ([]dashboard.Workload, []dashboard.Forecast) {
	out := []dashboard.Workload{}
	var forecasts []dashboard.Forecast
	decided := map[string]controller.Published{}
	if s.desired != nil {
		for _, k := range s.desired.Keys() {
			if d, ok := s.desired.Get(k); ok {
				decided[k] = d
			}
		}
	}
	for _, u := range rep.Workloads {
		w := dashboard.Workload{Name: u.Key, Current: int32(u.Pods), Desired: int32(u.Pods), Stranded: int32(u.Stranded),
			Reason: "no decision yet (the controller does not run here, or the scaler is not Ready)"}
		if d, ok := decided[u.Key]; ok {
			w.Desired, w.Min, w.Max, w.LimitedBy, w.Reason, w.PoolNodes = d.Desired, d.Min, d.Max, d.Limit, d.Reason, d.PoolNodes
			w.Slots = slotsOf(d.Slots)
		}
		out = append(out, w)
	}
	desired := map[string]int32{}
	for _, k := range slices.Sorted(maps.Keys(decided)) {
		d := decided[k]
		desired[k] = d.Desired
		for _, f := range d.Forecasts {
			forecasts = append(forecasts, forecastOf(k, f))
		}
		if last, seen := s.lastDesired[k]; seen && last != d.Desired {
			s.decisions = append(s.decisions, dashboard.Decision{Time: now, Workload: k, From: last, To: d.Desired, LimitedBy: d.Limit, Reason: d.Reason})
		}
	}
	if extra := len(s.decisions) - 100; extra > 0 {
		s.decisions = slices.Delete(s.decisions, 0, extra)
	}
	s.lastDesired = desired
	return out, forecasts
}

// forecastOf is a published forecast in the dashboard's units.
func forecastOf(workload string, f controller.Forecast) dashboard.Forecast {
	unit, per := "cores", float64(milliPerCore)
	switch f.Resource {
	case corev1.ResourceCPU:
	case corev1.ResourceMemory:
		unit, per = "GiB", bytesPerGiB
	default:
		unit, per = string(f.Resource), 1
	}
	out := dashboard.Forecast{Workload: workload, Resource: string(f.Resource), Unit: unit, Forecaster: f.Forecaster, Reason: f.Reason,
		StepSeconds: f.Step.Seconds(), ObservedStart: f.ObservedStart, Observed: make([]*float64, len(f.Observed)),
		Forecast: make([]float64, len(f.Forecast)), Band: f.Band / per, Peak: f.Peak / per}
	for i, v := range f.Observed {
		if !math.IsNaN(v) {
			v /= per
			out.Observed[i] = &v
		}
	}
	for i, v := range f.Forecast {
		out.Forecast[i] = v / per
	}
	if len(f.Forecast) > 0 {
		at := f.ForecastStart
		out.ForecastStart = &at
	}
	if !f.PeakAt.IsZero() {
		at := f.PeakAt
		out.PeakTime = &at
	}
	return out
}

// pendingPaid counts the paid pods not bound; their wait runs from when the
// dashboard first saw them pending.
func (s *clusterSource) pendingPaid(now time.Time, pending []capacity.PendingPod) dashboard.PendingPaid {
	var out dashboard.PendingPaid
	still := map[string]time.Time{}
	for _, p := range pending {
		if p.Workload != "" {
			continue
		}
		if p.Gated {
			out.Gated++
			continue
		}
		since, ok := s.pendingSince[p.Key()]
		if !ok {
			since = now
		}
		still[p.Key()] = since
		out.Pods++
		out.OldestWaitSeconds = max(out.OldestWaitSeconds, now.Sub(since).Seconds())
	}
	for k, since := range s.pendingSince {
		if _, ok := still[k]; !ok {
			s.maxWait = max(s.maxWait, now.Sub(since))
		}
	}
	s.pendingSince = still
	out.MaxWaitSeconds = max(s.maxWait.Seconds(), out.OldestWaitSeconds)
	return out
}
