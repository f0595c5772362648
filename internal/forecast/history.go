// Package forecast predicts a pool's paid demand from its own past: it
// finds a daily or weekly period, backtests a few seasonal forecasters on
// the last period with a loss that punishes under-forecasting, and keeps
// the best one, or none (reactive) with the reason. It is pure: plain
// structs in, plain structs out, no clock, no I/O; randomness (the
// shuffles of the period test) comes from a seed.
package forecast

import (
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Series is one resource's paid demand sampled every Step from Start, in
// the canonical unit of capacity.Resources (milli-cores, bytes, a count).
// A NaN is a gap: opportunist was not running, so nothing is known. A gap
// is never a zero: zero paid demand is a fact, a gap is its absence.
type Series struct {
	Start  time.Time
	Step   time.Duration
	Values []float64
}

// End is the instant after the last sample.
func (s Series) End() time.Time { return s.Start.Add(time.Duration(len(s.Values)) * s.Step) }

// Gaps counts the samples that are gaps.
func (s Series) Gaps() int {
	n := 0
	for _, v := range s.Values {
		if math.IsNaN(v) {
			n++
		}
	}
	return n
}

// DefaultStep is the history's sampling step: one sample a minute keeps 14
// days in 20,160 values per resource.
const DefaultStep = time.Minute

// History is a pool's paid demand per resource (requests of bound paid
// pods plus pending paid pods), all resources on the same grid. It is what
// a leader records and persists and what a forecast reads.
type History struct {
	Start time.Time
	Step  time.Duration
	// Demand holds one value per step and resource; NaN is a gap.
	Demand map[corev1.ResourceName][]float64
	// Keep bounds the history: older samples are dropped (0 keeps all).
	Keep time.Duration
}

// NewHistory starts an empty history on a grid of step from start.
func NewHistory(start time.Time, step time.Duration, keep time.Duration) *History {
	return &History{Start: start, Step: step, Keep: keep, Demand: map[corev1.ResourceName][]float64{}}
}

// Record adds the demand measured for the step that starts at at. A step
// that was skipped since the last one is a gap; a sample before the end of
// the history, or off the grid, is an error (the recorder's clock went
// back, or its step changed).
func (h *History) Record(at time.Time, demand map[corev1.ResourceName]float64) error {
	if h.Step <= 0 {
		return fmt.Errorf("history: step %v must be positive", h.Step)
	}
	off := at.Sub(h.Start)
	if off%h.Step != 0 {
		return fmt.Errorf("history: sample at %s is not on the %v grid from %s: record at whole steps", at.Format(time.RFC3339), h.Step, h.Start.Format(time.RFC3339))
	}
	i := int(off / h.Step)
	n := h.Len()
	if i < n {
		return fmt.Errorf("history: sample at %s is before the end of the history (%s): samples must move forward", at.Format(time.RFC3339), h.end().Format(time.RFC3339))
	}
	for name := range demand {
		if _, ok := h.Demand[name]; !ok {
			h.Demand[name] = gaps(n) // a resource seen for the first time was unknown before
		}
	}
	for name, vs := range h.Demand {
		for len(vs) < i {
			vs = append(vs, math.NaN())
		}
		v, ok := demand[name]
		if !ok {
			v = math.NaN()
		}
		h.Demand[name] = append(vs, v)
	}
	h.trim()
	return nil
}

// Len is the number of steps the history covers, gaps included.
func (h *History) Len() int {
	n := 0
	for _, vs := range h.Demand {
		n = max(n, len(vs))
	}
	return n
}

func (h *History) end() time.Time { return h.Start.Add(time.Duration(h.Len()) * h.Step) }

// Series returns one resource's samples (gaps for a resource never seen).
func (h *History) Series(name corev1.ResourceName) Series {
	vs, ok := h.Demand[name]
	if !ok {
		vs = gaps(h.Len())
	}
	return Series{Start: h.Start, Step: h.Step, Values: vs}
}

// trim drops what is older than Keep, a day at a time so that the slices
// are not copied at every sample.
func (h *History) trim() {
	if h.Keep <= 0 {
		return
	}
	keep := int(h.Keep / h.Step)
	slack := max(int(24*time.Hour/h.Step), 1)
	n := h.Len()
	if n <= keep+slack {
		return
	}
	drop := n - keep
	for name, vs := range h.Demand {
		h.Demand[name] = append([]float64(nil), vs[drop:]...)
	}
	h.Start = h.Start.Add(time.Duration(drop) * h.Step)
}

func gaps(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.NaN()
	}
	return out
}

// filled returns the values with each gap filled by linear interpolation
// between the samples around it (a gap at either end takes the nearest
// sample), as Crane fills missing points, and how many were gaps. All
// gaps: nil.
func filled(values []float64) ([]float64, int) {
	out := make([]float64, len(values))
	copy(out, values)
	gapCount := 0
	last := -1 // index of the last known sample
	for i, v := range out {
		if math.IsNaN(v) {
			gapCount++
			continue
		}
		if last < 0 {
			for j := 0; j < i; j++ {
				out[j] = v
			}
		} else if i-last > 1 {
			step := (v - out[last]) / float64(i-last)
			for j := last + 1; j < i; j++ {
				out[j] = out[last] + step*float64(j-last)
			}
		}
		last = i
	}
	if last < 0 {
		return nil, gapCount
	}
	for j := last + 1; j < len(out); j++ {
		out[j] = out[last]
	}
	return out, gapCount
}
