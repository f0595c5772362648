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
	v, src, ok := quantileRise(s, period, now, lead, q, "the paid demand's")
	if !ok {
		return Headroom{Quantity: floor, Source: fmt.Sprintf("the floor, %d%% of the pool's allocatable (%s): no rise measured in the history", HeadroomFloorPercent, unit(floor))}
	}
	if v < floor {
		return Headroom{Quantity: floor, Source: fmt.Sprintf("the floor, %d%% of the pool's allocatable (%s): %s gave %s", HeadroomFloorPercent, unit(floor), src, unit(v))}
	}
	return Headroom{Quantity: v, Source: src}
}

// quantileRise is the q-quantile of how much s rose within one lead time
// (the highest sample in the lead time after each sample, minus that
// sample), from the samples at now's hour of period when period is found;
// src says so with its numbers, of what ("the paid demand's"). ok is false
// when no rise is measured.
func quantileRise(s forecast.Series, period forecast.Period, now time.Time, lead time.Duration, q float64, what string) (v int64, src string, ok bool) {
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
		return 0, "", false
	}
	slices.Sort(rises)
	v = int64(math.Ceil(rises[min(int(math.Ceil(q*float64(len(rises))))-1, len(rises)-1)] - 1e-6))
	where := "over the whole history"
	if hourly {
		where = fmt.Sprintf("at this hour of the %s period", period.Length)
	}
	return v, fmt.Sprintf("the %g-quantile of %s rise within the lead time %s (%s), %d samples", q, what, lead, where, len(rises)), true
}

// Learned slot counts (spec.headroomSlots[].count "auto").
const (
	// SlotsDefaultPercent of the pods of the slot's shape seen now is the
	// count until HeadroomMinHistory of history is held (at least 1).
	SlotsDefaultPercent = 10
	// SlotsFloor is the least learned count.
	SlotsFloor = 1
	// SlotsMax is the most (the API's bound on a count).
	SlotsMax = 10000
)

// LearnSlots is the count of a slot kept as room for paid pods of one
// shape, learned as LearnHeadroom learns a headroom, from s, the history
// of how many paid pods of the shape the pool held: the q-quantile of how
// many more of them there were within one lead time (at now's hour of
// period when period is found). It is never below SlotsFloor; with less
// than HeadroomMinHistory of samples it is SlotsDefaultPercent of current,
// the pods of the shape seen now (at least SlotsFloor).
func LearnSlots(s forecast.Series, period forecast.Period, now time.Time, lead time.Duration, q float64, current int) (count int32, source string) {
	known := len(s.Values) - s.Gaps()
	if time.Duration(known)*s.Step < HeadroomMinHistory {
		v := max(int32(math.Ceil(float64(current)*SlotsDefaultPercent/100)), SlotsFloor)
		return min(v, SlotsMax), fmt.Sprintf("%d%% of the %d paid pods of the shape seen now, at least %d, until %s of history is held (%s now)",
			SlotsDefaultPercent, current, SlotsFloor, HeadroomMinHistory, time.Duration(known)*s.Step)
	}
	v, src, ok := quantileRise(s, period, now, lead, q, "the number of paid pods of the shape's")
	if !ok {
		return SlotsFloor, fmt.Sprintf("the floor, %d: no rise measured in the history of paid pods of the shape", SlotsFloor)
	}
	if v < SlotsFloor {
		return SlotsFloor, fmt.Sprintf("the floor, %d: %s gave %d", SlotsFloor, src, v)
	}
	return int32(min(v, SlotsMax)), src
}

// hourOf is the hour of the period at offset d (hours since the period's start).
func hourOf(d, period time.Duration) int {
	return int((d % period) / time.Hour)
}
