package controller

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opportunist/opportunist/internal/forecast"
	"github.com/opportunist/opportunist/internal/history"
	"github.com/opportunist/opportunist/internal/predict"
)

// HistoryHolder is where the rounds record demand: the Reconciler.
type HistoryHolder interface {
	SeedHistory(key string, h *forecast.History)
	HistorySnapshot() map[string]*forecast.History
}

// Backfiller reads past demand on the grid of anchor, up to end.
type Backfiller interface {
	Fetch(ctx context.Context, anchor, end time.Time, span, step time.Duration) (*forecast.History, error)
}

// HistoryKeeper makes the demand history survive restarts and failovers.
// It runs on the leader only (a manager Runnable that needs leader
// election): once elected it loads every scaler's history from Store and
// seeds the reconciler before its first round (Loaded), then saves every
// history each Interval and once more at shutdown. A standby never writes.
// When the keeper stops while Stopping is not done, leadership was lost:
// another replica may lead already, so it does not save.
type HistoryKeeper struct {
	Store    history.Store
	Holder   HistoryHolder
	Interval time.Duration
	Log      *slog.Logger
	Stopping <-chan struct{}
	// Backfill, when set, fills the gaps of each loaded history, and gives
	// a history to each live scaler that has none, from a Prometheus.
	Backfill Backfiller
	// Scalers lists the keys of the scalers that exist (for the backfill).
	Scalers func(ctx context.Context) ([]string, error)
	// Now is the history clock (nil: time.Now).
	Now     func() time.Time
	Metrics *HistoryMetrics

	once   sync.Once
	loaded chan struct{}
	// saved holds the keys this keeper loaded or wrote: a key that leaves
	// the snapshot (its scaler was deleted) has its ConfigMap deleted.
	saved map[string]bool
}

// NeedLeaderElection: only the leader loads and writes.
func (k *HistoryKeeper) NeedLeaderElection() bool { return true }

func (k *HistoryKeeper) init() { k.once.Do(func() { k.loaded = make(chan struct{}) }) }

// Loaded is closed once the leader's histories are seeded (or could not be
// read: the rounds then start without them).
func (k *HistoryKeeper) Loaded() <-chan struct{} {
	k.init()
	return k.loaded
}

func (k *HistoryKeeper) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// Start runs until ctx ends.
func (k *HistoryKeeper) Start(ctx context.Context) error {
	k.init()
	k.load(ctx)
	close(k.loaded)
	if k.Backfill != nil {
		k.backfill(ctx)
	}
	interval := k.Interval
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			k.save(ctx)
		case <-ctx.Done():
			select {
			case <-k.Stopping:
				// Shutting down while still leading (the lease is released
				// after the runnables stop): the last minutes are kept.
				final, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				k.save(final)
				cancel()
			default:
				k.Log.Warn("demand history: leadership lost, not saving (the new leader owns the history)")
			}
			return nil
		}
	}
}

func (k *HistoryKeeper) load(ctx context.Context) {
	k.saved = map[string]bool{}
	hs, problems, err := k.Store.Load(ctx)
	for _, p := range problems {
		k.Log.Error("demand history not loaded", "err", p)
	}
	if err != nil {
		k.Log.Error("demand histories not loaded: every scaler starts without history", "err", err)
		k.Metrics.load("error")
		return
	}
	k.Metrics.load("ok")
	for _, key := range sortedKeys(hs) {
		h := hs[key]
		k.Holder.SeedHistory(key, h)
		k.saved[key] = true
		known, span := knownSamples(h)
		k.Metrics.loaded(key, known)
		k.Log.Info("demand history loaded", "scaler", key, "from", h.Start, "span", span, "samples", known, "gaps", h.Len()*len(h.Demand)-known)
	}
}

// backfill fills each live scaler's history from Prometheus, where it has
// gaps only. It runs after the first rounds started (a slow or absent
// Prometheus must not delay a yield): a round in between records onto the
// history that the backfill then merges into.
func (k *HistoryKeeper) backfill(ctx context.Context) {
	keys, err := k.Scalers(ctx)
	if err != nil {
		k.Log.Error("demand history backfill skipped: cannot list the scalers", "err", err)
		return
	}
	now := k.now()
	// Recorders start their grids at whole minutes: so does the backfill.
	anchor := now.Truncate(forecast.DefaultStep)
	fetchCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	began := time.Now()
	past, err := k.Backfill.Fetch(fetchCtx, anchor, now, predict.Keep, forecast.DefaultStep)
	if err != nil {
		k.Log.Error("demand history backfill from Prometheus failed: the history starts from what was persisted", "err", err)
		return
	}
	k.Log.Info("demand history fetched from Prometheus", "from", past.Start, "samples", past.Len(), "took", time.Since(began).Round(time.Millisecond))
	snapshot := k.Holder.HistorySnapshot()
	total := 0
	for _, key := range keys {
		h, filled, err := history.Fill(snapshot[key], past)
		if err != nil {
			k.Log.Error("demand history backfill not used", "scaler", key, "err", err)
			continue
		}
		if filled == 0 {
			continue
		}
		if h.Keep == 0 {
			h.Keep = predict.Keep
		}
		k.Holder.SeedHistory(key, h)
		total += filled
		k.Log.Info("demand history backfilled from Prometheus", "scaler", key, "samples", filled)
	}
	k.Metrics.backfill(total)
}

func (k *HistoryKeeper) save(ctx context.Context) {
	snapshot := k.Holder.HistorySnapshot()
	for _, key := range sortedKeys(snapshot) {
		if err := k.Store.Save(ctx, key, snapshot[key]); err != nil {
			k.Log.Error("demand history not saved", "scaler", key, "err", err)
			k.Metrics.save("error")
			continue
		}
		k.saved[key] = true
		k.Metrics.save("ok")
	}
	for key := range k.saved {
		if _, live := snapshot[key]; live {
			continue
		}
		// The reconciler forgot it: its scaler was deleted.
		if err := k.Store.Delete(ctx, key); err != nil {
			k.Log.Error("demand history of a deleted scaler not deleted", "scaler", key, "err", err)
			continue
		}
		delete(k.saved, key)
		k.Metrics.forget(key)
		k.Log.Info("demand history deleted with its scaler", "scaler", key)
	}
}

// waitHistory blocks a round until the leader's histories are seeded.
func (r *Reconciler) waitHistory(ctx context.Context) error {
	if r.HistoryLoaded == nil {
		return nil
	}
	select {
	case <-r.HistoryLoaded:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func knownSamples(h *forecast.History) (int, time.Duration) {
	n := 0
	for _, vs := range h.Demand {
		for _, v := range vs {
			if !math.IsNaN(v) {
				n++
			}
		}
	}
	return n, time.Duration(h.Len()) * h.Step
}

// HistoryMetrics are the keeper's metrics (a nil *HistoryMetrics records
// nothing).
type HistoryMetrics struct {
	loads, saves *prometheus.CounterVec
	samples      *prometheus.GaugeVec
	backfilled   prometheus.Counter
}

// NewHistoryMetrics registers the keeper's metrics on reg.
func NewHistoryMetrics(reg prometheus.Registerer) *HistoryMetrics {
	m := &HistoryMetrics{
		loads:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "opportunist_history_loads_total", Help: "Loads of the persisted demand histories by a new leader, by result (ok, error: none could be listed)."}, []string{"result"}),
		saves:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "opportunist_history_saves_total", Help: "Writes of one scaler's demand history to its ConfigMap, by result (ok, error)."}, []string{"result"}),
		samples:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opportunist_history_loaded_samples", Help: "Known (non-gap) samples of each scaler's demand history as this leader loaded it, all resources together."}, []string{"scaler"}),
		backfilled: prometheus.NewCounter(prometheus.CounterOpts{Name: "opportunist_history_backfilled_samples_total", Help: "Samples filled into the demand histories' gaps from Prometheus (--history-prometheus-url)."}),
	}
	reg.MustRegister(m.loads, m.saves, m.samples, m.backfilled)
	return m
}

func (m *HistoryMetrics) load(result string) {
	if m != nil {
		m.loads.WithLabelValues(result).Inc()
	}
}

func (m *HistoryMetrics) save(result string) {
	if m != nil {
		m.saves.WithLabelValues(result).Inc()
	}
}

func (m *HistoryMetrics) loaded(key string, n int) {
	if m != nil {
		m.samples.WithLabelValues(key).Set(float64(n))
	}
}

func (m *HistoryMetrics) forget(key string) {
	if m != nil {
		m.samples.DeleteLabelValues(key)
	}
}

func (m *HistoryMetrics) backfill(n int) {
	if m != nil {
		m.backfilled.Add(float64(n))
	}
}
