// Package predict is the predictive budget's state machine, shared by the
// controller (spec.prediction) and the simulator (opportunist-predictive):
// it records a pool's paid demand into a forecast.History, rechooses the
// forecaster every day, refreshes the forecast every hour, and turns the
// forecast over the lead time into the reserve control.Predictive counts.
// It is pure: every call is given the time; no clock, no I/O.
package predict

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/forecast"
)

// Keep is how much history a pool keeps (the issue: at least 14 days).
const Keep = 14 * 24 * time.Hour

// MaxCarry is how long the last observed level stands for steps in which
// nothing was observed (the caller observes at every round, every few
// seconds): a longer silence means the observer was not running, and its
// steps stay gaps.
const MaxCarry = 10 * time.Minute

// Recorder samples a pool's paid demand into its History: the highest
// value observed within each step, recorded once the step is over.
type Recorder struct {
	History *forecast.History
	open    time.Time          // start of the step being observed
	high    capacity.Resources // highest demand seen in it
	last    capacity.Resources // the last observation
	lastAt  time.Time
	started bool
}

// NewRecorder starts a recorder on h, or on a new history from now when h
// is nil.
func NewRecorder(h *forecast.History, now time.Time) *Recorder {
	if h == nil {
		h = forecast.NewHistory(now.Truncate(forecast.DefaultStep), forecast.DefaultStep, Keep)
	}
	return &Recorder{History: h}
}

// Observe takes the demand seen now. Steps that ended since the last call
// are recorded first (each with its highest value; a step with no
// observation holds the last level, within MaxCarry, and is a gap beyond).
// A time before the history's end is ignored: that step is recorded.
func (r *Recorder) Observe(now time.Time, demand capacity.Resources) {
	h := r.History
	step := h.Step
	if !r.started {
		r.started = true
		r.open = h.Start.Add(now.Sub(h.Start) / step * step)
		if end := h.Start.Add(time.Duration(h.Len()) * step); r.open.Before(end) {
			r.open = end // the step now is already recorded (a seeded history ahead of this clock)
		}
	}
	for !now.Before(r.open.Add(step)) {
		if r.high != nil {
			_ = h.Record(r.open, values(r.high)) // on the grid and in order by construction
		} else if r.last != nil && r.open.Sub(r.lastAt) < MaxCarry {
			_ = h.Record(r.open, values(r.last))
		}
		r.open = r.open.Add(step)
		r.high = nil
	}
	if now.Before(r.open) {
		return
	}
	if r.high == nil {
		r.high = capacity.Resources{}
	}
	for name, v := range demand {
		r.high[name] = max(r.high[name], v)
	}
	r.last, r.lastAt = demand.Clone(), now
}

func values(r capacity.Resources) map[corev1.ResourceName]float64 {
	out := make(map[corev1.ResourceName]float64, len(r))
	for name, v := range r {
		out[name] = float64(v)
	}
	return out
}

// Clone deep-copies a history (a snapshot that later samples do not change).
func Clone(h *forecast.History) *forecast.History {
	if h == nil {
		return nil
	}
	out := *h
	out.Demand = make(map[corev1.ResourceName][]float64, len(h.Demand))
	for name, vs := range h.Demand {
		out.Demand[name] = append([]float64(nil), vs...)
	}
	return &out
}
