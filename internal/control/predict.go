package control

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

// Prediction is what a forecast of paid demand says about one scaler's
// pool, for the predictive budget (spec.prediction, issue 14). It is an
// input like the cluster: whoever forecasts (internal/forecast) fills it;
// Predictive only does the arithmetic.
type Prediction struct {
	// Observed is the pool's paid demand now, per resource: requests of its
	// bound paid pods plus its pending paid pods (canonical units).
	Observed capacity.Resources
	// Forecast is the forecast paid demand per resource, at the forecast's
	// own step, from now on: over the lead time (its first Lead values),
	// then over the young life of a pod (how long a pod must run to be
	// worth starting). A resource without a forecast (or with an empty one)
	// is not predicted: the budget reacts.
	Forecast map[corev1.ResourceName][]float64
	// Lead is how many of each Forecast's values fall in the lead time
	// (0: all of them).
	Lead int
	// Band is added to each forecast value: the backtest's quantile of
	// actual - forecast, so the peak is short that rarely.
	Band map[corev1.ResourceName]float64
	// MarginPercent is added on top of the peak (Autopilot keeps 10-15 %).
	MarginPercent float64
	// Deadband, per resource: a forecast rise or dip smaller than this is
	// the forecast's own noise, not a shape, and reserves nothing.
	Deadband map[corev1.ResourceName]int64
}

// LeadTime is how long before a paid peak the room must start to be handed
// back for it to be free when the peak arrives: the opportunistic pods'
// termination grace, plus the time to schedule (a decision round and the
// scheduler), plus the paid pods' start-up.
func LeadTime(grace, scheduling, startup time.Duration) time.Duration {
	return grace + scheduling + startup
}

// Peak is the highest forecast paid demand in the window, per resource:
// max(forecast + band), plus the margin, rounded up. Resources without a
// forecast are absent.
func (p Prediction) Peak() capacity.Resources {
	return p.level(func(fc []float64) []float64 {
		if p.Lead > 0 && p.Lead < len(fc) {
			return fc[:p.Lead]
		}
		return fc
	})
}

// ForecastNow is the forecast for now (the window's first value) in the
// same terms as Peak: the band and the margin added.
func (p Prediction) ForecastNow() capacity.Resources {
	return p.level(func(fc []float64) []float64 { return fc[:1] })
}

func (p Prediction) level(window func([]float64) []float64) capacity.Resources {
	out := capacity.Resources{}
	for name, fc := range p.Forecast {
		if len(fc) == 0 {
			continue
		}
		peak := math.Inf(-1)
		for _, v := range window(fc) {
			if !math.IsNaN(v) {
				peak = max(peak, v)
			}
		}
		if math.IsInf(peak, -1) {
			continue
		}
		peak += p.Band[name]
		peak *= 1 + max(p.MarginPercent, 0)/100
		out[name] = int64(math.Ceil(max(peak, 0) - 1e-6)) // a float product a hair above a whole unit is that unit
	}
	return out
}

// Guard is the highest point forecast over the whole Forecast (the lead
// time and the young life), per resource, without band or margin: paid
// demand expected back before a pod started now would have done its work.
func (p Prediction) Guard() capacity.Resources {
	out := capacity.Resources{}
	for name, fc := range p.Forecast {
		high := math.Inf(-1)
		for _, v := range fc {
			if !math.IsNaN(v) {
				high = max(high, v)
			}
		}
		if !math.IsInf(high, -1) {
			out[name] = int64(math.Ceil(max(high, 0) - 1e-6))
		}
	}
	return out
}

// Reserve is the room the forecast keeps for a paid rise it sees coming
// within the lead time, per resource: Peak - max(Observed, ForecastNow),
// never negative, and nothing under the Deadband. Measured from the
// forecast for now, not from what is observed, so that a forecast running
// above the demand (a dip of noise, a bias) does not hold room for
// nothing. A forecast below today's demand gives nothing back: room is
// refilled only when observed demand falls (as AWS predictive scaling
// never scales in on a forecast, and as Alibaba's AHPA takes the max of
// the proactive and the reactive answer).
func (p Prediction) Reserve() capacity.Resources {
	out := capacity.Resources{}
	now := p.ForecastNow()
	for name, peak := range p.Peak() {
		if r := peak - max(p.Observed[name], now[name]); r > 0 && r >= p.Deadband[name] {
			out[name] = r
		}
	}
	return out
}

// Reserved is the paid demand one round's budget counted in one resource:
// Observed plus the reserve. A round passes it to the next (zero the first
// time), like History.
type Reserved struct {
	Level, Observed int64
	// Since is when Level was last raised.
	Since time.Time
}

// NextReserve returns the reserve to count now, per resource, and what
// to pass to the next round. The paid level counted (Observed + reserve)
// is Observed plus Reserve, except that it does not fall (room is not
// refilled):
//   - on a forecast alone: it falls only as far as observed demand fell
//     since the last round, until hold has passed since it was last raised
//     (the peak that raised it was in its window and did not come: the
//     forecast was wrong, and the room goes back);
//   - below the Guard: paid demand the forecast expects back within the
//     young life would stop the pods started in the room young.
func (p Prediction) NextReserve(now time.Time, hold time.Duration, last map[corev1.ResourceName]Reserved) (capacity.Resources, map[corev1.ResourceName]Reserved) {
	reserve, guard := p.Reserve(), p.Guard()
	next := make(map[corev1.ResourceName]Reserved, len(reserve))
	out := capacity.Resources{}
	for _, name := range slices.Sorted(maps.Keys(p.Observed)) {
		obs := p.Observed[name]
		level := obs + reserve[name]
		r := Reserved{Level: level, Observed: obs, Since: now}
		if prev, ok := last[name]; ok && level < prev.Level {
			kept := level
			if now.Sub(prev.Since) < hold {
				kept = prev.Level - max(prev.Observed-obs, 0)
			}
			if g, ok := guard[name]; ok && g-obs >= p.Deadband[name] {
				kept = max(kept, min(prev.Level, g))
			}
			if kept > level {
				r = Reserved{Level: kept, Observed: obs, Since: prev.Since}
			}
		}
		next[name] = r // a level equal to the demand too: the next round's guard starts from it
		if r.Level > obs {
			out[name] = r.Level - obs
		}
	}
	return out, next
}

// Predictive returns the scaler with its headroom raised by reserve (from
// NextReserve) in each resource, in a pool of alloc: the budget then
// counts the highest forecast paid demand over the lead time instead of
// the paid demand seen now, so the room is handed back before the peak
// arrives. Only the budget moves; fit, slots, sharing and stabilisation
// are Decide's as always, and since the reserve is never negative the
// predictive budget is never above the reactive one. The scaler's
// Headroom map is not modified (it is copied when changed).
func Predictive(s Scaler, alloc, reserve capacity.Resources) Scaler {
	if len(reserve) == 0 {
		return s
	}
	headroom := make(map[corev1.ResourceName]Headroom, len(s.Headroom)+len(reserve))
	maps.Copy(headroom, s.Headroom)
	for name, r := range reserve {
		headroom[name] = Headroom{Quantity: HeadroomOf(&s, name, alloc[name]) + r}
	}
	s.Headroom = headroom
	return s
}

// DescribeReserve says what a reserve is for, e.g. "keeping 24000m cpu
// for the forecast peak of 112000m paid (now 88000m)".
func DescribeReserve(p Prediction) string {
	reserve, peak := p.Reserve(), p.Peak()
	if len(reserve) == 0 {
		return "no reserve: the forecast peak is within the paid demand seen now"
	}
	names := slices.Sorted(maps.Keys(reserve))
	var parts []string
	for _, name := range names {
		parts = append(parts, fmt.Sprintf("keeping %s %s for the forecast peak of %s paid (now %s)",
			amount(name, reserve[name]), name, amount(name, peak[name]), amount(name, p.Observed[name])))
	}
	return strings.Join(parts, "; ")
}
