//go:build !nocluster

package cli

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/controller"
)

type fakeCapacity struct {
	pending []capacity.PendingPod
}

func (fakeCapacity) Report() capacity.Report {
	return capacity.Report{
		Resources: []capacity.ResourceSummary{{Name: corev1.ResourceCPU, Allocatable: 16000, Requests: 12000, PaidRequests: 4000, OpportunisticRequests: 8000}},
		Workloads: []capacity.WorkloadUsage{{Key: "batch/worker", Pods: 8, Stranded: 3}},
	}
}

func (fakeCapacity) Rooms() []capacity.NodeRoom {
	return []capacity.NodeRoom{{Name: "n-1", State: capacity.NodeReady,
		Allocatable:            capacity.Resources{corev1.ResourceCPU: 16000},
		Requested:              capacity.Resources{corev1.ResourceCPU: 12000},
		OpportunisticRequested: capacity.Resources{corev1.ResourceCPU: 8000}, Pods: 9}}
}

func (f *fakeCapacity) Pending() []capacity.PendingPod { return f.pending }

type fakeDesired map[string]int32

func (f fakeDesired) Keys() []string { return slices.Sorted(maps.Keys(f)) }
func (f fakeDesired) Get(k string) (controller.Published, bool) {
	d, ok := f[k]
	return controller.Published{Desired: d, Min: 2, Max: 20, Limit: "Budget", Reason: "budget " + fmt.Sprint(d), PoolNodes: 4,
		Slots: []control.SlotFit{{Name: "web", Wanted: 4, Fit: 3, Nodes: []control.NodeSlots{{Node: "n-1", Slots: 3}}}}}, ok
}

func TestClusterSource(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	capa := &fakeCapacity{pending: []capacity.PendingPod{{Pod: capacity.Pod{Namespace: "shop", Name: "web-1"}},
		{Pod: capacity.Pod{Namespace: "shop", Name: "queued", Gated: true}}}}
	desired := fakeDesired{"batch/worker": 8}
	s := &clusterSource{capacity: capa, desired: desired, now: func() time.Time { return now }, history: sampler{name: "cluster"},
		lastDesired: map[string]int32{}, pendingSince: map[string]time.Time{}}
	s.sample()
	now = now.Add(5 * time.Second)
	desired["batch/worker"] = 6
	s.sample()

	st := s.State()
	v := st.Views[0]
	if cpu := v.Resources[0]; cpu.Allocatable != 16 || cpu.Paid != 4 || cpu.Opportunistic != 8 {
		t.Errorf("cpu = %+v", cpu)
	}
	if w := v.Workloads[0]; w.Name != "batch/worker" || w.Current != 8 || w.Desired != 6 || w.Min != 2 || w.Max != 20 || w.LimitedBy != "Budget" || w.Reason != "budget 6" ||
		w.PoolNodes != 4 || w.Stranded != 3 {
		t.Errorf("workload = %+v", w)
	}
	if w := v.Workloads[0]; len(w.Slots) != 1 || w.Slots[0].Name != "web" || w.Slots[0].Fit != 3 || w.Slots[0].Wanted != 4 {
		t.Errorf("the live dashboard's slots = %+v, want web 3/4 as the controller published it", w.Slots)
	}
	if p := v.PendingPaid; p.Pods != 1 || p.OldestWaitSeconds != 5 || p.Gated != 1 {
		t.Errorf("pending = %+v", p)
	}
	if n := v.Nodes[0]; n.CPU.Free != 4 || n.CPU.Paid != 4 || n.CPU.Opportunistic != 8 || n.State != "ready" {
		t.Errorf("node = %+v", n)
	}
	if len(v.Decisions) != 1 || v.Decisions[0].From != 8 || v.Decisions[0].To != 6 || v.Decisions[0].LimitedBy != "Budget" {
		t.Errorf("decisions = %+v", v.Decisions)
	}
	if h := s.History(); len(h.Views[0].Points) != 2 {
		t.Errorf("history = %+v", h)
	}

	capa.pending = nil
	now = now.Add(5 * time.Second)
	s.sample()
	if p := s.State().Views[0].PendingPaid; p.Pods != 0 || p.MaxWaitSeconds != 10 {
		t.Errorf("after binding, pending = %+v", p)
	}
}

// forecastDesired publishes one decision with a cpu forecast.
type forecastDesired struct{ f controller.Forecast }

func (forecastDesired) Keys() []string { return []string{"batch/worker"} }
func (d forecastDesired) Get(string) (controller.Published, bool) {
	return controller.Published{Desired: 4, Forecasts: []controller.Forecast{d.f}}, true
}

// TestClusterSourceForecast: a published forecast reaches the live
// dashboard in cores, a gap as null, with its band and peak.
func TestClusterSourceForecast(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f := controller.Forecast{Resource: corev1.ResourceCPU, Step: time.Minute, ObservedStart: now.Add(-3 * time.Minute),
		Observed: []float64{4000, math.NaN(), 6000}, ForecastStart: now, Forecast: []float64{6000, 40000}, Band: 2500,
		Peak: 44000, PeakAt: now.Add(time.Minute), Forecaster: "SeasonalNaive"}
	s := &clusterSource{capacity: &fakeCapacity{}, desired: forecastDesired{f}, now: func() time.Time { return now }, history: sampler{name: "cluster"},
		lastDesired: map[string]int32{}, pendingSince: map[string]time.Time{}}
	s.sample()
	fs := s.State().Views[0].Forecasts
	if len(fs) != 1 {
		t.Fatalf("forecasts %+v, want the one published", fs)
	}
	got := fs[0]
	if got.Workload != "batch/worker" || got.Unit != "cores" || got.StepSeconds != 60 || got.Band != 2.5 || got.Peak != 44 ||
		got.PeakTime == nil || !got.PeakTime.Equal(now.Add(time.Minute)) || got.ForecastStart == nil || !slices.Equal(got.Forecast, []float64{6, 40}) {
		t.Errorf("forecast %+v, want it in cores with its band and peak", got)
	}
	if len(got.Observed) != 3 || got.Observed[0] == nil || *got.Observed[0] != 4 || got.Observed[1] != nil || *got.Observed[2] != 6 {
		t.Errorf("observed %v, want 4, a gap (null), 6", got.Observed)
	}
}

// reclaimDesired publishes one reclaiming scaler's last round.
type reclaimDesired struct{ fakeDesired }

func (f reclaimDesired) Get(k string) (controller.Published, bool) {
	p, ok := f.fakeDesired.Get(k)
	p.Reclaim = &v1alpha1.ReclaimStatus{UsageFresh: true, Nodes: []v1alpha1.NodeReclaimStatus{
		{Node: "n-1", Reclaimable: 9500, Published: 12000, Formula: "0.9×32000m − 500m − 18000m − 800m = 9500m"}}}
	return p, ok
}

func TestClusterSourceNodeReclaim(t *testing.T) {
	capa := &fakeCapacity{}
	s := newClusterSource(capa, reclaimDesired{fakeDesired{"batch/worker": 8}})
	n := s.State().Views[0].Nodes[0]
	if r := n.Reclaim; r == nil || r.Workload != "batch/worker" || r.ReclaimableCores != 9.5 || r.PublishedCores != 12 || !r.UsageFresh ||
		r.Formula != "0.9×32000m − 500m − 18000m − 800m = 9500m" {
		t.Errorf("n-1 reclaim = %+v, want 9.5 cores reclaimable, 12 published, with the controller's formula", r)
	}
	s = newClusterSource(capa, fakeDesired{"batch/worker": 8})
	if r := s.State().Views[0].Nodes[0].Reclaim; r != nil {
		t.Errorf("without a reclaiming scaler, n-1 reclaim = %+v, want none", r)
	}
}
