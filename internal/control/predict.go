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
	// Forecast is the forecast paid demand over the next lead time, per
	// resource, at the forecast's own step, from now on. A resource without
	// a forecast (or with an empty one) is not predicted: the budget reacts.
	Forecast map[corev1.ResourceName][]float64
	// Band is added to each forecast value: the backtest's quantile of
	// actual - forecast, so the peak is short that rarely.
	Band map[corev1.ResourceName]float64
	// MarginPercent is added on top of the peak (Autopilot keeps 10-15 %).
	MarginPercent float64
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
	out := capacity.Resources{}
	for name, fc := range p.Forecast {
		if len(fc) == 0 {
			continue
		}
		peak := math.Inf(-1)
		for _, v := range fc {
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

// Reserve is the room the forecast keeps for paid demand beyond what is
// observed: max(0, peak - observed), per resource. It is never negative: a
// forecast below today's demand gives nothing back, because room is
// refilled only when observed demand falls (as AWS predictive scaling
// never scales in on a forecast, and as Alibaba's AHPA takes the max of
// the proactive and the reactive answer).
func (p Prediction) Reserve() capacity.Resources {
	out := capacity.Resources{}
	for name, peak := range p.Peak() {
		if r := peak - p.Observed[name]; r > 0 {
			out[name] = r
		}
	}
	return out
}

// Predictive returns the scaler with its headroom raised by the
// prediction's Reserve in each resource, in a pool of alloc: the budget
// then counts the highest forecast paid demand over the lead time instead
// of the paid demand seen now, so the room is handed back before the peak
// arrives. Only the budget moves; fit, slots, sharing and stabilisation
// are Decide's as always, and since the reserve is never negative the
// predictive budget is never above the reactive one. The scaler's
// Headroom map is not modified (it is copied when changed).
func Predictive(s Scaler, alloc capacity.Resources, p Prediction) Scaler {
	reserve := p.Reserve()
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
