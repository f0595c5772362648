package predict

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/opportunist/opportunist/internal/forecast"
)

// Learned headroom (spec.headroom "auto").
const (
	// HeadroomQuantile of the paid demand's rises within one lead time.
	HeadroomQuantile = 0.99
	// HeadroomMinHistory is the history needed before the headroom is learned.
	HeadroomMinHistory = 24 * time.Hour
	// HeadroomDefaultPercent of the pool's allocatable is kept until then.
	HeadroomDefaultPercent = 10
	// HeadroomFloorPercent of the pool's allocatable is the least learned
	// headroom: a quiet hour in the past is no promise of a quiet hour now.
	HeadroomFloorPercent = 1
)

// Headroom is a learned headroom and how it was learned.
type Headroom struct {
	Quantity int64
	// Source says where the number came from, with its numbers.
	Source string
}

// LearnHeadroom is the headroom one resource needs, learned from its
// demand history: the q-quantile of how much the paid demand rose within
// one lead time (the highest sample in the lead time after each sample,
// minus that sample). When period is found, only the rises from the same
// hour of the period as now count (the morning's rises for a morning), so
// a quiet night keeps little room and a busy morning much. It is never
// below HeadroomFloorPercent of alloc, and with less than
// HeadroomMinHistory of samples it is HeadroomDefaultPercent of alloc.
// unit prints amounts in status ("12000m").
func LearnHeadroom(s forecast.Series, period forecast.Period, now time.Time, lead time.Duration, q float64, alloc int64, unit func(int64) string) Headroom {
	floor := int64(math.Ceil(float64(alloc) * HeadroomFloorPercent / 100))
	known := len(s.Values) - s.Gaps()
	if time.Duration(known)*s.Step < HeadroomMinHistory {
		v := int64(math.Ceil(float64(alloc) * HeadroomDefaultPercent / 100))
		return Headroom{Quantity: v, Source: fmt.Sprintf("%d%% of the pool's allocatable (%s) until %s of history is held (%s now)",
			HeadroomDefaultPercent, unit(v), HeadroomMinHistory, time.Duration(known)*s.Step)}
	}
	steps := max(int((lead+s.Step-1)/s.Step), 1)
	var rises []float64
	hourly := period.Found()
	var hour int
	if hourly {
		hour = hourOf(now.Sub(s.Start), period.Length)
	}
	for i, v := range s.Values {
		if math.IsNaN(v) || i+1 >= len(s.Values) {
			continue
		}
		if hourly && hourOf(time.Duration(i)*s.Step, period.Length) != hour {
			continue
		}
		high := math.NaN()
		for _, w := range s.Values[i+1 : min(i+1+steps, len(s.Values))] {
			if !math.IsNaN(w) && !(w <= high) {
				high = w
			}
		}
		if !math.IsNaN(high) {
			rises = append(rises, max(high-v, 0))
		}
	}
	if len(rises) == 0 {
		return Headroom{Quantity: floor, Source: fmt.Sprintf("the floor, %d%% of the pool's allocatable (%s): no rise measured in the history", HeadroomFloorPercent, unit(floor))}
	}
	slices.Sort(rises)
	v := int64(math.Ceil(rises[min(int(math.Ceil(q*float64(len(rises))))-1, len(rises)-1)] - 1e-6))
	where := "over the whole history"
	if hourly {
		where = fmt.Sprintf("at this hour of the %s period", period.Length)
	}
	src := fmt.Sprintf("the %g-quantile of the paid demand's rise within the lead time %s (%s), %s samples", q, lead, where, fmt.Sprint(len(rises)))
	if v < floor {
		return Headroom{Quantity: floor, Source: fmt.Sprintf("the floor, %d%% of the pool's allocatable (%s): %s gave %s", HeadroomFloorPercent, unit(floor), src, unit(v))}
	}
	return Headroom{Quantity: v, Source: src}
}

// hourOf is the hour of the period at offset d (hours since the period's start).
func hourOf(d, period time.Duration) int {
	return int((d % period) / time.Hour)
}
