package control

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/opportunist/opportunist/internal/reclaim"
)

// HeadroomOf is the room the scaler keeps free in one resource of a pool
// with this much allocatable: its Headroom (the larger of the quantity and
// the percent), else what TargetUtilizationPercent leaves, else nothing.
// The budget counts it; the simulator measures overshoot against
// KeptFree, which builds on it. There is no other copy of this arithmetic.
func HeadroomOf(s *Scaler, name corev1.ResourceName, alloc int64) int64 {
	if s.Reclaim != nil && slices.Contains(s.Reclaim.Resources, name) {
		return 0 // its pods request a token of it: see Scaler.Reclaim
	}
	if h, ok := s.Headroom[name]; ok {
		return max(h.Quantity, percentOf(alloc, h.Percent))
	}
	if _, ext := reclaim.Native(name); ext {
		return 0 // reclaimed room has its own safety: theta and margin
	}
	if u := s.TargetUtilizationPercent; u > 0 {
		return percentOf(alloc, 100-u)
	}
	return 0
}

// KeptFree is the room of one resource the scaler keeps free in a pool of
// alloc, counted as a sum: its HeadroomOf, and at least what its Slots
// request together (they need that much free, and more: they must fit node
// by node). The simulator draws its fill line and measures overshoot with it.
func KeptFree(s *Scaler, name corev1.ResourceName, alloc int64) int64 {
	var slots int64
	for _, sl := range s.Slots {
		slots += int64(sl.Count) * sl.Shape.Requests[name]
	}
	return max(HeadroomOf(s, name, alloc), slots)
}

// percentOf returns pct % of v, rounded up so the headroom is never short.
// It counts in parts per million, exactly and without overflow.
func percentOf(v int64, pct float64) int64 {
	if v <= 0 || pct <= 0 {
		return 0
	}
	ppm := int64(math.Round(min(pct, 100) * 1e4))
	const million = 1_000_000
	return v/million*ppm + (v%million*ppm+million-1)/million
}

// explain says in one sentence why the decision is what it is.
func explain(p *plan, rec int32, recLimit Limit, desired int32, held string, budget, fit, fitNow int64) string {
	s := p.s
	var why string
	switch recLimit {
	case LimitBudget:
		why = p.explainBudget(budget)
	case LimitPendingPaid:
		why = fmt.Sprintf("%d replicas, lowered by pending paid pods: %s", rec, p.explainBudget(budget))
	case LimitFit:
		why = fmt.Sprintf("fit %d replicas (%d bound + %d more fit node by node) under %s", fit, s.Bound, fitNow-int64(s.Bound), p.explainBudget(budget))
		if fit < fitNow {
			why = fmt.Sprintf("fit %d replicas: no node holds more once the room is shared (%d bound + %d more fit now) under %s", fit, s.Bound, fitNow-int64(s.Bound), p.explainBudget(budget))
		}
	case LimitMax:
		why = fmt.Sprintf("max %d replicas (budget %d, fit %d)", s.Max, budget, fit)
	case LimitSlots:
		why = p.slotWhy
	case LimitMin:
		why = fmt.Sprintf("min %d replicas (fit %d) over %s", rec, fit, p.explainBudget(budget))
	}
	if held != "" {
		return held + "; " + why
	}
	if desired != s.Current {
		return fmt.Sprintf("scale from %d to %d: %s", s.Current, desired, why)
	}
	return why
}

// explainBudget breaks the budget down on its binding resource, e.g.
// "budget 116 replicas: cpu 184000m allocatable - 30000m headroom - 38000m
// paid = 116000m / 1000m".
func (p *plan) explainBudget(budget int64) string {
	if len(p.names) == 0 {
		return "budget 0 replicas: the shape requests nothing"
	}
	k := 0
	for j := range p.names {
		if p.room(j, true)/p.request[j] < p.room(k, true)/p.request[k] {
			k = j
		}
	}
	name := p.names[k]
	q := func(v int64) string { return amount(name, v) }
	var b strings.Builder
	fmt.Fprintf(&b, "budget %d replicas: %s %s allocatable", budget, name, q(p.alloc[k]))
	if p.headroom[k] != 0 {
		fmt.Fprintf(&b, " - %s headroom", q(p.headroom[k]))
	}
	fmt.Fprintf(&b, " - %s paid", q(p.paid[k]))
	if p.pending[k] != 0 {
		fmt.Fprintf(&b, " - %s pending paid (%s)", q(p.pending[k]), plural(p.pendingPods, "pod"))
	}
	if held := p.others[k] + p.peers[k]; held != 0 {
		fmt.Fprintf(&b, " - %s other scalers", q(held))
	}
	fmt.Fprintf(&b, " = %s / %s", q(p.room(k, true)), q(p.request[k]))
	return b.String()
}

// amount prints a canonical amount as operators read it: milli-cores for
// cpu, binary units for bytes, a plain count otherwise.
func amount(name corev1.ResourceName, v int64) string {
	switch {
	case name == corev1.ResourceCPU:
		return strconv.FormatInt(v, 10) + "m"
	case name == corev1.ResourceMemory, name == corev1.ResourceEphemeralStorage,
		strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix):
		return resource.NewQuantity(v, resource.BinarySI).String()
	}
	return strconv.FormatInt(v, 10)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
