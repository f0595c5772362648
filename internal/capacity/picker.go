package capacity

import (
	"container/heap"
	"math"

	corev1 "k8s.io/api/core/v1"
)

// Picker is Pick kept up to date for one replicated workload over rooms
// that the caller changes in place (a simulated scheduler's view of its
// cluster): the caller reports each node whose room or state changed
// (Update) and each change of the workload's pods on a node (Count), and
// Pick answers in O(classes + log n) what Pick answers by scoring every
// node. The nodes the pod fits on are kept in the Placer's classes (zone,
// hostname label, the workload's pods there), each a heap by the node's own
// scores, so the answer, ties included, is Pick's (TestPickerIsPick).
// Changes are taken in when Pick is next called, each changed node once: a
// workload that places no pod for a while costs nothing while others do.
//
// A node's labels and taints must not change: its eligibility (taints,
// node selector, required affinity) is read once. Its State, Requested and
// the workload's count on it may.
type Picker struct {
	scoring  Scoring
	shape    Shape
	rooms    []NodeRoom // the caller's, read only
	eligible []bool     // taints, selector and affinity allow the shape
	nothing  bool       // the shape requests nothing: it fits nowhere (as in Fit)
	// requests are the shape's positive requests as a list, scored its
	// requests of the scored resources: read for every change of a node.
	requests []amount
	scored   [2]int64
	counts   []int64
	zone     []int // zone index per node, -1 without the zone label
	inZone   []int64
	host     []bool
	own      []int64
	// feasible counts the nodes the pod fits on, feasibleInZone them by
	// zone index + 1 (0: no zone), zones how many of those are non-zero.
	feasible       int
	feasibleInZone []int
	zones          int
	classes        map[classKey]*placerHeap
	class          []*placerHeap // nil where the pod does not fit
	// spare are emptied heaps for new classes: as the workload's pods come
	// and go, classes (by count) do too.
	spare []*placerHeap
	at    []int // each node's position in its class's heap
	// dirty lists the nodes changed since the last Pick, once each.
	dirty   []int
	isDirty []bool
	// held is room held on nodes for other pods (negative), by node: see Hold.
	held map[int]Resources
}

// NewPicker indexes rooms (read, not changed; the caller keeps them up to
// date and reports changes) for pods of shape, given counts[i], the
// workload's pods on rooms[i] that are not terminating (nil: none).
func NewPicker(scoring Scoring, rooms []NodeRoom, shape Shape, counts []int64) *Picker {
	n := len(rooms)
	p := &Picker{scoring: scoring, shape: shape, rooms: rooms, eligible: make([]bool, n), counts: make([]int64, n),
		host: make([]bool, n), own: make([]int64, n),
		classes: map[classKey]*placerHeap{}, class: make([]*placerHeap, n), at: make([]int, n), isDirty: make([]bool, n),
		held: map[int]Resources{}}
	p.nothing = true
	for name, v := range shape.Requests {
		p.nothing = p.nothing && v <= 0
		if v > 0 {
			p.requests = append(p.requests, amount{name, v})
		}
	}
	p.scored = scoredOf(shape.Requests)
	copy(p.counts, counts)
	elig := EligibilityOf(shape)
	p.zone, p.inZone = zonesOf(rooms, p.counts)
	p.feasibleInZone = make([]int, len(p.inZone)+1) // by zone index + 1: nodes without a zone first
	for i := range rooms {
		r := rooms[i]
		r.State = NodeReady
		p.eligible[i], _ = elig.Node(&r)
		_, p.host[i] = rooms[i].Labels[corev1.LabelHostname]
		p.set(i, p.fits(i, nil))
	}
	return p
}

// fits is Fit's answer for node i, more than zero replicas, with extra
// room (negative: held for others) on it.
func (p *Picker) fits(i int, extra Resources) bool {
	r := &p.rooms[i]
	if p.nothing || !p.eligible[i] || r.State != NodeReady {
		return false
	}
	for _, a := range p.requests {
		if r.Free(a.name)+extra[a.name] < a.value {
			return false
		}
	}
	return true
}

// Hold sets the room held on node i for other pods (negative amounts; nil
// or empty: none), e.g. for pods nominated there after a preemption: the
// pod fits only beside it. held is read, not copied, until the next Hold.
func (p *Picker) Hold(i int, held Resources) {
	if len(held) == 0 {
		delete(p.held, i)
	} else {
		p.held[i] = held
	}
	p.Update(i)
}

// Update takes in a change of node i's room (Requested or State).
func (p *Picker) Update(i int) {
	if !p.isDirty[i] {
		p.isDirty[i] = true
		p.dirty = append(p.dirty, i)
	}
}

// refresh rescores the nodes changed since the last Pick.
func (p *Picker) refresh() {
	for _, i := range p.dirty {
		p.isDirty[i] = false
		var held Resources
		if len(p.held) > 0 { // rarely: skip the lookup
			held = p.held[i]
		}
		p.set(i, p.fits(i, held))
	}
	p.dirty = p.dirty[:0]
}

// set puts node i in its class (scored afresh) if the pod fits on it, or
// takes it out.
func (p *Picker) set(i int, fits bool) {
	k := classKey{p.zone[i], p.host[i], p.counts[i]}
	if h := p.class[i]; fits && h != nil && h.key == k { // same class: rescore in place
		p.own[i] = p.ownScore(i)
		heap.Fix(h, h.pos(i))
		return
	}
	if h := p.class[i]; h != nil {
		heap.Remove(h, h.pos(i))
		if len(h.nodes) == 0 {
			delete(p.classes, h.key)
			p.spare = append(p.spare, h)
		}
		p.class[i] = nil
		p.feasible--
		if p.feasibleInZone[p.zone[i]+1]--; p.feasibleInZone[p.zone[i]+1] == 0 {
			p.zones--
		}
	}
	if !fits {
		return
	}
	p.own[i] = p.ownScore(i)
	h := p.classes[k]
	if h == nil {
		if n := len(p.spare); n > 0 {
			h, p.spare = p.spare[n-1], p.spare[:n-1]
			h.key = k
		} else {
			h = &placerHeap{key: k, own: p.own, rooms: p.rooms, at: p.at}
		}
		p.classes[k] = h
	}
	heap.Push(h, i)
	p.class[i] = h
	p.feasible++
	if p.feasibleInZone[p.zone[i]+1]++; p.feasibleInZone[p.zone[i]+1] == 1 {
		p.zones++
	}
}

// ownScore is node i's score for the pod without the spreading term.
func (p *Picker) ownScore(i int) int64 {
	r := &p.rooms[i]
	l := loadOf(r)
	return weightFit*p.scoring.score(&l, p.scored) + weightBalanced*balancedOf(&l, p.scored)
}

// Count adds delta to the workload's pods on node i.
func (p *Picker) Count(i int, delta int64) {
	p.counts[i] += delta
	if z := p.zone[i]; z >= 0 {
		p.inZone[z] += delta
	}
	p.Update(i) // its class changes
}

// Fits reports whether the pod fits on node i with extra room there
// (negative: room held for other pods).
func (p *Picker) Fits(i int, extra Resources) bool { return p.fits(i, extra) }

// Pick is Pick(scoring, rooms, shape, counts, fits) where fits is Fit's
// answer over the rooms with the room held on each node (Hold) added to its
// free room, except on the nodes of extra, where extra[i] is added instead
// (nil: no exception). -1: the pod fits nowhere.
func (p *Picker) Pick(extra map[int]Resources) int {
	type undo struct {
		node int
		fits bool
	}
	p.refresh()
	var undos []undo
	for i, e := range extra {
		was := p.class[i] != nil
		if now := p.fits(i, e); now != was {
			p.set(i, now)
			undos = append(undos, undo{i, was})
		}
	}
	best := p.best()
	for _, u := range undos {
		p.set(u.node, u.fits)
	}
	return best
}

// best is Placer.Next over the classes.
func (p *Picker) best() int {
	hostWeight := math.Log(float64(p.feasible + 2))
	zoneWeight := math.Log(float64(p.zones + 2))
	lo, hi := int64(math.MaxInt64), int64(0)
	for k := range p.classes {
		raw := rawSpread(k, hostWeight, zoneWeight, p.inZone)
		lo, hi = min(lo, raw), max(hi, raw)
	}
	best, bestScore := -1, int64(-1)
	for k, h := range p.classes {
		i := h.nodes[0]
		spread := int64(maxNodeScore)
		if hi > 0 {
			spread = maxNodeScore * (hi + lo - rawSpread(k, hostWeight, zoneWeight, p.inZone)) / hi
		}
		if s := p.own[i] + weightSpread*spread; s > bestScore || (s == bestScore && p.rooms[i].Name < p.rooms[best].Name) {
			best, bestScore = i, s
		}
	}
	return best
}
