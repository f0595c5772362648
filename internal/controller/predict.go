package controller

import (
	"time"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/forecast"
	"github.com/opportunist/opportunist/internal/predict"
)

// HistoryKey names a scaler's demand history: "<namespace>/<name>".
func HistoryKey(s *v1alpha1.OpportunisticScaler) string { return s.Namespace + "/" + s.Name }

// SeedHistory replaces the demand history of the scaler keyed key (a
// leader calls it with the persisted history at start, before its first
// round). Later rounds record onto it.
func (r *Reconciler) SeedHistory(key string, h *forecast.History) {
	r.historyMu.Lock()
	defer r.historyMu.Unlock()
	if r.recorders == nil {
		r.recorders = map[string]*predict.Recorder{}
	}
	r.recorders[key] = predict.NewRecorder(predict.Clone(h), r.historyNow())
}

// HistorySnapshot returns a deep copy of every scaler's demand history,
// by HistoryKey, for saving.
func (r *Reconciler) HistorySnapshot() map[string]*forecast.History {
	r.historyMu.Lock()
	defer r.historyMu.Unlock()
	out := make(map[string]*forecast.History, len(r.recorders))
	for key, rec := range r.recorders {
		out[key] = predict.Clone(rec.History)
	}
	return out
}

func (r *Reconciler) historyNow() time.Time {
	if r.HistoryClock != nil {
		return r.HistoryClock()
	}
	return time.Now()
}

// recordDemand records each acting scaler's observed paid demand, on the
// history clock: the pool's bound (terminating too) and pending paid pods.
func (r *Reconciler) recordDemand(cluster *control.Cluster, inputs []control.Scaler) {
	now := r.historyNow()
	r.historyMu.Lock()
	defer r.historyMu.Unlock()
	if r.recorders == nil {
		r.recorders = map[string]*predict.Recorder{}
	}
	for i := range inputs {
		in := &inputs[i]
		rec, ok := r.recorders[in.Key]
		if !ok {
			rec = predict.NewRecorder(nil, now)
			r.recorders[in.Key] = rec
		}
		rec.Observe(now, shapeResources(control.PaidDemand(cluster, in), in))
	}
}

// shapeResources keeps the resources a replica requests: the ones its
// budget counts, so the history holds nothing the forecast never reads.
func shapeResources(demand capacity.Resources, in *control.Scaler) capacity.Resources {
	out := capacity.Resources{}
	for name, v := range in.Shape.Requests {
		if v > 0 {
			out[name] = demand[name]
		}
	}
	return out
}
