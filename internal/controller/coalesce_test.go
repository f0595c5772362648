package controller

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
)

// quietCapacity is a current, empty capacity model.
type quietCapacity struct{}

func (quietCapacity) Stale() (time.Time, error)                     { return time.Time{}, nil }
func (quietCapacity) Report() capacity.Report                       { return capacity.Report{} }
func (quietCapacity) Rooms() []capacity.NodeRoom                    { return nil }
func (quietCapacity) Pending() []capacity.PendingPod                { return nil }
func (quietCapacity) SetWorkloads([]capacity.Workload)              {}
func (quietCapacity) Opportunistic() map[string][]capacity.BoundPod { return nil }

// TestMinRoundIntervalCoalesces: requests within the interval of a round's
// start run no round but come back when the interval ends, never later.
func TestMinRoundIntervalCoalesces(t *testing.T) {
	type request struct {
		at      time.Duration // since the first request
		runs    bool          // a round runs (else it is coalesced)
		requeue time.Duration // when it does not run: how long until it comes back
	}
	const resync = 5 * time.Second
	tests := []struct {
		name     string
		min      time.Duration
		requests []request
	}{
		{name: "a burst is one round, the next comes when the interval ends", min: time.Second, requests: []request{
			{at: 0, runs: true},
			{at: 10 * time.Millisecond, requeue: 990 * time.Millisecond},
			{at: 400 * time.Millisecond, requeue: 600 * time.Millisecond},
			{at: 999 * time.Millisecond, requeue: time.Millisecond},
			{at: time.Second, runs: true},
			{at: 3500 * time.Millisecond, runs: true},
			{at: 4 * time.Second, requeue: 500 * time.Millisecond},
		}},
		{name: "zero runs every request", min: 0, requests: []request{
			{at: 0, runs: true}, {at: time.Millisecond, runs: true}, {at: 2 * time.Millisecond, runs: true},
		}},
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			clk := clocktesting.NewFakeClock(start)
			metrics := NewMetrics(prometheus.NewRegistry())
			r := &Reconciler{
				Client: fake.NewClientBuilder().WithScheme(scheme).Build(), Capacity: quietCapacity{},
				Log: slog.New(slog.DiscardHandler), Clock: clk, Resync: resync, Metrics: metrics,
				Decisions: NewDecisionStore(), MinRoundInterval: tt.min,
			}
			rounds := 0
			for _, req := range tt.requests {
				clk.SetTime(start.Add(req.at))
				res, err := r.Reconcile(context.Background(), RoundRequest)
				if err != nil {
					t.Fatalf("at %s: %v", req.at, err)
				}
				if req.runs {
					rounds++
				}
				if got := int(testutil.ToFloat64(metrics.rounds)); got != rounds {
					t.Fatalf("at %s: %d rounds ran, want %d", req.at, got, rounds)
				}
				want := req.requeue
				if req.runs {
					want = resync
				}
				if res.RequeueAfter != want {
					t.Errorf("at %s: comes back after %s, want %s", req.at, res.RequeueAfter, want)
				}
				if !req.runs && res.RequeueAfter > tt.min {
					t.Errorf("at %s: put off by %s, more than the interval %s", req.at, res.RequeueAfter, tt.min)
				}
			}
		})
	}
}

// pendingCapacity is a current capacity model with a settable pending list.
type pendingCapacity struct {
	quietCapacity
	pending []capacity.PendingPod
}

func (p *pendingCapacity) Pending() []capacity.PendingPod { return p.pending }

// TestNewPaidPendingRunsEarly: a paid pod the last round did not see pending
// gets its round within a tenth of the interval, not at its end; gated
// paid pods, opportunistic pods and paid pods already seen wait as before.
func TestNewPaidPendingRunsEarly(t *testing.T) {
	paid := func(name string) capacity.PendingPod {
		return capacity.PendingPod{Pod: capacity.Pod{Namespace: "shop", Name: name}}
	}
	gatedPaid := paid("gated")
	gatedPaid.Gated = true
	worker := paid("worker-1")
	worker.Workload = "batch/worker"
	type request struct {
		at      time.Duration
		pending []capacity.PendingPod
		runs    bool
		requeue time.Duration
	}
	requests := []request{
		{at: 0, runs: true},
		{at: 10 * time.Millisecond, pending: []capacity.PendingPod{paid("web-1")}, requeue: 90 * time.Millisecond},
		{at: 100 * time.Millisecond, pending: []capacity.PendingPod{paid("web-1")}, runs: true},
		{at: 150 * time.Millisecond, pending: []capacity.PendingPod{paid("web-1")}, requeue: 950 * time.Millisecond},
		{at: 200 * time.Millisecond, pending: []capacity.PendingPod{paid("web-1"), gatedPaid, worker}, requeue: 900 * time.Millisecond},
		{at: 400 * time.Millisecond, pending: []capacity.PendingPod{paid("web-1"), paid("web-2")}, runs: true},
		{at: 1400 * time.Millisecond, pending: []capacity.PendingPod{paid("web-2")}, runs: true},
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	metrics := NewMetrics(prometheus.NewRegistry())
	capa := &pendingCapacity{}
	r := &Reconciler{
		Client: fake.NewClientBuilder().WithScheme(scheme).Build(), Capacity: capa,
		Log: slog.New(slog.DiscardHandler), Clock: clk, Resync: 5 * time.Second, Metrics: metrics,
		Decisions: NewDecisionStore(), MinRoundInterval: time.Second,
	}
	rounds := 0
	for _, req := range requests {
		clk.SetTime(start.Add(req.at))
		capa.pending = req.pending
		res, err := r.Reconcile(context.Background(), RoundRequest)
		if err != nil {
			t.Fatalf("at %s: %v", req.at, err)
		}
		if req.runs {
			rounds++
		}
		if got := int(testutil.ToFloat64(metrics.rounds)); got != rounds {
			t.Fatalf("at %s: %d rounds ran, want %d", req.at, got, rounds)
		}
		if !req.runs && res.RequeueAfter != req.requeue {
			t.Errorf("at %s: comes back after %s, want %s", req.at, res.RequeueAfter, req.requeue)
		}
	}
}
