package control

import (
	"cmp"
	"math"
	"slices"
)

// share hands out the room to plans sorted by priority (highest first), then
// key: first every scaler's Min, then one priority at a time the rest, by
// weight. A grant is placed on the nodes, so it is charged only to the
// scalers whose pool holds those nodes, and never exceeds what fits there.
// Each plan takes its nodes in orderNodes' order, the nodes fewer plans can
// use first: where pools overlap, a scaler on every node does not take the
// smaller pool's nodes while others stand idle. placeNew later puts the
// replicas where they were granted.
//
// A grant is what a scaler is entitled to, not what it runs: it may exceed
// the scaler's fit while lower-priority pods hold the room, and those then
// yield, so the next round's fit lets it grow. Likewise a scaler whose
// growth its window holds keeps its grant: lower priorities do not grow into
// room that is about to be taken from them.
func share(m *model, plans []*plan) {
	for _, p := range plans {
		m.grant(p, int64(max(p.s.Min, 0)), plans, true)
	}
	for rest := plans; len(rest) > 0; {
		n := 1
		for n < len(rest) && rest[n].s.Priority == rest[0].s.Priority {
			n++
		}
		m.fill(rest[:n], plans)
		rest = rest[n:]
	}
}

// fill shares the room left among one priority's plans by water-filling.
// A plan's level is the fraction of the priority's room it holds, divided by
// its weight: the lowest level rises first, so weights share room (not
// replica counts) when shapes differ, a Min above the fair share is kept,
// and what one plan cannot take (its Max, or no node holds another replica)
// flows to the others.
func (m *model) fill(group, plans []*plan) {
	for {
		var ps []claimant
		for _, p := range group {
			s := claimant{p: p, room: p.budget(true) - p.granted, capLeft: int64(p.s.Max) - p.granted}
			s.weight = float64(p.weight) * float64(p.groupRoom())
			if !p.saturated && s.room > 0 && s.capLeft > 0 {
				ps = append(ps, s)
			}
		}
		if len(ps) == 0 {
			return
		}
		more := waterFill(ps)
		if !slices.ContainsFunc(more, func(n int64) bool { return n > 0 }) {
			more[lowestLevel(ps)] = 1 // rounding left less than a replica each
		}
		progress := false
		for i, s := range ps {
			n := min(more[i], s.p.budget(true)-s.p.granted) // this round's earlier grants may have taken room
			if n > 0 && (m.grant(s.p, n, plans, false) > 0 || s.p.saturated) {
				progress = true
			}
		}
		if !progress {
			return
		}
	}
}

// claimant is one plan in a pass of the water-filling.
type claimant struct {
	p *plan
	// weight is the plan's weight times the priority's room in its replicas,
	// so that granted/weight is the fraction of the room held per weight.
	weight float64
	// room is how many more replicas the room left holds for it; capLeft how
	// many more its Max allows.
	room, capLeft int64
}

func (s *claimant) level() float64 { return float64(s.p.granted) / s.weight }

// waterFill returns how many more replicas each plan gets so that the levels
// rise evenly from the lowest and use up the room left. Plans may differ in
// shape and pool, so room is normalised: a replica of plan i uses 1/room of
// it. The level L solves sum over the raised plans of
// (L*weight - granted)/room = 1; floors, caps and disjoint pools leave
// something to the next pass.
func waterFill(ps []claimant) []int64 {
	order := make([]int, len(ps))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(ps[a].level(), ps[b].level()) })
	level := 0.0
	var sumW, sumG float64
	for j, i := range order {
		sumW += ps[i].weight / float64(ps[i].room)
		sumG += float64(ps[i].p.granted) / float64(ps[i].room)
		level = (1 + sumG) / sumW
		if j+1 == len(order) || level <= ps[order[j+1]].level() {
			break // the next plan's level is not reached: it gets nothing
		}
	}
	more := make([]int64, len(ps))
	for i, s := range ps {
		n := math.Floor(level*s.weight - float64(s.p.granted))
		more[i] = int64(max(0, min(n, float64(s.capLeft))))
	}
	return more
}

// lowestLevel is the index of the plan with the lowest level, the first one
// on ties (plans are in key order).
func lowestLevel(ps []claimant) int {
	best := 0
	for i := range ps {
		if ps[i].level() < ps[best].level() {
			best = i
		}
	}
	return best
}
