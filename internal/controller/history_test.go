package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/forecast"
	"github.com/opportunist/opportunist/internal/history"
)

var h0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

type fakeHolder struct {
	mu     sync.Mutex
	seeded map[string]*forecast.History
}

func (f *fakeHolder) SeedHistory(key string, h *forecast.History) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seeded == nil {
		f.seeded = map[string]*forecast.History{}
	}
	f.seeded[key] = h
}

func (f *fakeHolder) HistorySnapshot() map[string]*forecast.History {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]*forecast.History{}
	for k, v := range f.seeded {
		out[k] = v
	}
	return out
}

func (f *fakeHolder) forget(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.seeded, key)
}

func cpuHistory(start time.Time, vs ...float64) *forecast.History {
	return &forecast.History{Start: start, Step: time.Minute, Keep: 24 * time.Hour, Demand: map[corev1.ResourceName][]float64{corev1.ResourceCPU: vs}}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// run starts the keeper and returns a stop that ends it: as a shutdown
// (Stopping done) or as a lost leadership.
func run(t *testing.T, k *HistoryKeeper) (stop func(shutdown bool)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stopping := make(chan struct{})
	k.Stopping = stopping
	done := make(chan error, 1)
	go func() { done <- k.Start(ctx) }()
	select {
	case <-k.Loaded():
	case <-time.After(10 * time.Second):
		t.Fatal("histories not loaded within 10s")
	}
	return func(shutdown bool) {
		if shutdown {
			close(stopping)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestHistoryKeeperLoadsAndSaves(t *testing.T) {
	store := &history.Fake{}
	ctx := context.Background()
	store.Save(ctx, "batch/worker", cpuHistory(h0, 1, math.NaN(), 3))
	store.Save(ctx, "batch/gone", cpuHistory(h0, 5))
	store.Data["batch/broken"] = []byte("OPPHIST\x01not gzip")
	reg := prometheus.NewRegistry()
	holder := &fakeHolder{}
	k := &HistoryKeeper{Store: store, Holder: holder, Interval: time.Hour, Log: quiet(), Metrics: NewHistoryMetrics(reg)}
	stop := run(t, k)
	// Seeded before Loaded closed.
	got := holder.HistorySnapshot()
	if len(got) != 2 || got["batch/worker"].Len() != 3 || !math.IsNaN(got["batch/worker"].Demand[corev1.ResourceCPU][1]) {
		t.Fatalf("seeded %v, want batch/worker (with its gap) and batch/gone; batch/broken skipped", got)
	}
	if v := testutil.ToFloat64(k.Metrics.samples.WithLabelValues("batch/worker")); v != 2 {
		t.Errorf("opportunist_history_loaded_samples{batch/worker} = %v, want 2 (the gap is not a sample)", v)
	}
	// The reconciler records on; batch/gone's scaler was deleted.
	holder.SeedHistory("batch/worker", cpuHistory(h0, 1, math.NaN(), 3, 4))
	holder.forget("batch/gone")
	stop(true)
	after, _, _ := store.Load(ctx)
	if after["batch/worker"] == nil || after["batch/worker"].Len() != 4 {
		t.Errorf("after shutdown the store holds %v, want batch/worker's 4 samples", after)
	}
	if _, ok := store.Data["batch/gone"]; ok {
		t.Error("the history of a deleted scaler was kept")
	}
	if _, ok := store.Data["batch/broken"]; !ok {
		t.Error("a history that did not load was deleted: only a save replaces it")
	}
}

func TestHistoryKeeperLeadershipLost(t *testing.T) {
	store := &history.Fake{}
	store.Save(context.Background(), "a/b", cpuHistory(h0, 1))
	holder := &fakeHolder{}
	k := &HistoryKeeper{Store: store, Holder: holder, Interval: time.Hour, Log: quiet()}
	stop := run(t, k)
	holder.SeedHistory("a/b", cpuHistory(h0, 1, 2))
	stop(false)
	if n := store.SaveCount("a/b"); n != 1 {
		t.Errorf("saved %d times (1 is the test's own): a replica that lost the lease must not write", n)
	}
}

func TestHistoryKeeperSavesPeriodically(t *testing.T) {
	store := &history.Fake{}
	holder := &fakeHolder{}
	holder.SeedHistory("a/b", cpuHistory(h0, 1))
	k := &HistoryKeeper{Store: store, Holder: holder, Interval: 10 * time.Millisecond, Log: quiet()}
	stop := run(t, k)
	defer stop(false)
	deadline := time.Now().Add(10 * time.Second)
	for store.SaveCount("a/b") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("not saved twice within 10s at a 10ms interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHistoryKeeperLoadFails(t *testing.T) {
	k := &HistoryKeeper{Store: &history.Fake{Err: errors.New("forbidden")}, Holder: &fakeHolder{}, Interval: time.Hour, Log: quiet()}
	stop := run(t, k) // Loaded closes all the same: rounds must not wait forever
	stop(false)
}

type fakeBackfill struct {
	past   *forecast.History
	err    error
	anchor time.Time
}

func (f *fakeBackfill) Fetch(_ context.Context, anchor, _ time.Time, _, _ time.Duration) (*forecast.History, error) {
	f.anchor = anchor
	return f.past, f.err
}

func TestHistoryKeeperBackfill(t *testing.T) {
	store := &history.Fake{}
	store.Save(context.Background(), "a/loaded", cpuHistory(h0.Add(2*time.Minute), math.NaN(), 7))
	holder := &fakeHolder{}
	bf := &fakeBackfill{past: cpuHistory(h0, 1, 2, 3, 4, 5)}
	reg := prometheus.NewRegistry()
	k := &HistoryKeeper{Store: store, Holder: holder, Interval: time.Hour, Log: quiet(), Backfill: bf, Metrics: NewHistoryMetrics(reg),
		Now:     func() time.Time { return h0.Add(4*time.Minute + 10*time.Second) },
		Scalers: func(context.Context) ([]string, error) { return []string{"a/loaded", "a/new"}, nil }}
	stop := run(t, k)
	stop(false) // Start backfills before its loop: done once it returns
	if !bf.anchor.Equal(h0.Add(4 * time.Minute)) {
		t.Errorf("anchor %v, want the history clock's minute", bf.anchor)
	}
	got := holder.HistorySnapshot()
	if vs := got["a/loaded"].Demand[corev1.ResourceCPU]; len(vs) != 4 || vs[0] != 1 || vs[2] != 3 || vs[3] != 7 {
		t.Errorf("a/loaded = %v, want [1 2 3 7]: the gap and the time before filled, the persisted sample kept", vs)
	}
	if h := got["a/new"]; h == nil || h.Len() != 5 || h.Keep == 0 {
		t.Errorf("a/new = %+v, want the whole backfill, with a Keep", h)
	}
	if v := testutil.ToFloat64(k.Metrics.backfilled); v != 3+5 {
		t.Errorf("backfilled %v samples, want 8", v)
	}
}

// TestFirstRoundWaitsForHistory: a new leader's first round runs only once
// the keeper has seeded the persisted history, and records on top of it.
func TestFirstRoundWaitsForHistory(t *testing.T) {
	targets := newFakeTargets()
	targets.add("worker", &fakeTarget{replicas: 2})
	capa := newCapacity(64, 4)
	w := newWorld(t, capa, targets, scaler("worker", 100, nil))
	key := testNamespace + "/worker"
	store := &history.Fake{}
	store.Save(context.Background(), key, cpuHistory(roundStart.Add(-3*time.Minute), 1000, math.NaN(), 3000))
	k := &HistoryKeeper{Store: store, Holder: w.r, Interval: time.Hour, Log: quiet()}
	w.r.HistoryLoaded = k.Loaded()
	now := roundStart
	w.r.HistoryClock = func() time.Time { return now }

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := w.r.Reconcile(ctx, RoundRequest); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a round before the history was loaded: err = %v, want it held until then", err)
	}
	if n := testutil.ToFloat64(w.metrics.rounds); n != 0 {
		t.Fatalf("%v rounds ran before the history was loaded", n)
	}
	stop := run(t, k)
	defer stop(false)
	w.round(t)
	now = now.Add(time.Minute)
	w.round(t)
	got := w.r.HistorySnapshot()[key].Series(corev1.ResourceCPU)
	if !got.Start.Equal(roundStart.Add(-3*time.Minute)) || len(got.Values) != 4 || got.Values[0] != 1000 || !math.IsNaN(got.Values[1]) || got.Values[3] != 4000 {
		t.Errorf("history after the first rounds: %v from %s, want [1000 NaN 3000 4000] from %s", got.Values, got.Start, roundStart.Add(-3*time.Minute))
	}
}
