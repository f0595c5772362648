package capacity

import (
	"container/heap"
	"fmt"
	"math"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Scoring is the kube-scheduler's NodeResourcesFit scoring strategy: where,
// among the nodes a pod fits on, it prefers to put it. The simulator's
// scheduler and the control law's prediction of where a scaler's new
// replicas land both score with it, so the two cannot drift apart.
type Scoring string

const (
	// LeastAllocated is the scheduler's default: the node with the largest
	// share of CPU and memory left free. It spreads a workload's pods over
	// every node, and so scatters the free room.
	LeastAllocated Scoring = "LeastAllocated"
	// MostAllocated packs: the node with the smallest share left free.
	MostAllocated Scoring = "MostAllocated"
)

// ParseScoring reads a scoring strategy's name; "" is LeastAllocated.
func ParseScoring(s string) (Scoring, error) {
	switch Scoring(s) {
	case "", LeastAllocated:
		return LeastAllocated, nil
	case MostAllocated:
		return MostAllocated, nil
	}
	return "", fmt.Errorf("unknown scheduler scoring %q: use %s (the scheduler's default) or %s", s, LeastAllocated, MostAllocated)
}

// Score rates a node for a pod of req, 0-100, higher preferred: the mean,
// over CPU and memory (the default resources, weight 1 each), of the share
// of allocatable left free once the pod is placed (LeastAllocated) or taken
// (MostAllocated), in integer arithmetic as the scheduler does. It reads
// requests as they are; the scheduler scores a container without requests
// as 100m CPU and 200 MiB, which opportunist's shapes never are (a shape
// must request something to be counted).
func (s Scoring) Score(r *NodeRoom, req Resources) int64 {
	l := loadOf(r)
	return s.score(&l, scoredOf(req))
}

// scored are the resources the default scores weigh: CPU and memory.
var scored = [2]corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}

// load is what the default scores read of a node: its allocatable and
// requested CPU and memory (by scored's index).
type load struct{ alloc, requested [2]int64 }

func loadOf(r *NodeRoom) load {
	return load{alloc: [2]int64{r.Allocatable[scored[0]], r.Allocatable[scored[1]]},
		requested: [2]int64{r.Requested[scored[0]], r.Requested[scored[1]]}}
}

// scoredOf is a pod's requests of the scored resources.
func scoredOf(req Resources) [2]int64 {
	return [2]int64{req[scored[0]], req[scored[1]]}
}

// score is Score over a node's load.
func (s Scoring) score(l *load, req [2]int64) int64 {
	var sum, n int64
	for k := range scored {
		alloc := l.alloc[k]
		if alloc <= 0 {
			continue
		}
		used := min(max(l.requested[k]+req[k], 0), alloc)
		if s == MostAllocated {
			sum += used * 100 / alloc
		} else {
			sum += (alloc - used) * 100 / alloc
		}
		n++
	}
	if n == 0 {
		return 0
	}
	return sum / n
}

// The default profile's score weights (kube-scheduler v1.37
// pkg/scheduler/apis/config/v1/default_plugins.go) of the plugins whose
// scores differ between nodes for a replicated pod with no preferences.
const (
	weightFit      = 1 // NodeResourcesFit
	weightBalanced = 1 // NodeResourcesBalancedAllocation
	weightSpread   = 2 // PodTopologySpread
)

// The system default topology spread constraints, ScheduleAnyway: they
// score every pod owned by a ReplicaSet, StatefulSet or Service.
const (
	hostnameSkew = 3
	zoneSkew     = 5
)

// Placer predicts where the default kube-scheduler binds the pods of one
// replicated workload (a ReplicaSet's pods: same shape, same labels), one
// after the other, as kube-scheduler v1.37's default profile scores nodes:
// NodeResourcesFit (Scoring, weight 1), NodeResourcesBalancedAllocation
// (weight 1) and PodTopologySpread with the system default constraints
// (pods per node, maxSkew 3, and per zone, maxSkew 5; weight 2). The other
// default scores are the same on every node for such a pod (no preferred
// affinities or PreferNoSchedule taints) and are left out. The spreading
// term is what makes the scheduler put about as many of a workload's pods
// on each node, whatever the node's size. Ties go to the first name (the
// scheduler picks one of them at random), so the answer does not depend on
// the order of rooms.
//
// The spreading term is the same for every node of one zone holding as
// many of the workload's pods, so nodes are kept in classes (zone, hostname
// label, pods held), each a heap by the node's own scores: Next compares
// the classes' best nodes, O(classes), and Place moves one node, O(log n).
type Placer struct {
	scoring Scoring
	shape   Shape
	rooms   []NodeRoom // candidates; Requested is the placer's own copy once placed on
	owned   []bool
	counts  []int64 // the workload's pods per node (not terminating)
	zone    []int   // zone index per node, -1 without the zone label
	inZone  []int64 // the workload's pods per zone
	host    []bool  // the node has a hostname label
	own     []int64 // the node's own scores: fit and balance, weighted
	// Spreading weights, log(domains + 2), over the nodes the pod fits on
	// (the scheduler's filtered nodes), kept as nodes fill. Each default
	// constraint scores only the nodes with its label.
	hostWeight, zoneWeight float64
	feasible               int
	feasibleInZone         map[int]int // by zone index, -1 for nodes without one
	classes                map[classKey]*placerHeap
	class                  []*placerHeap // each node's class; nil once the pod no longer fits it
	at                     []int         // each node's position in its class's heap
}

// classKey is the nodes alike for the spreading term.
type classKey struct {
	zone  int
	host  bool
	count int64
}

// NewPlacer starts a prediction over rooms (not changed) for pods of shape,
// given counts[i], the workload's pods on rooms[i] that are not
// terminating (nil: none). Nodes not Ready, or where shape is not
// eligible, never get a pod.
func NewPlacer(scoring Scoring, rooms []NodeRoom, shape Shape, counts []int64) *Placer {
	fit := Fit(rooms, shape)
	fits := make([]bool, len(rooms))
	for i, f := range fit.Nodes {
		fits[i] = f.Replicas > 0
	}
	return newPlacer(scoring, rooms, shape, counts, fits)
}

// Pick is the node the default scheduler binds one pod of a workload to,
// among the rooms where fits says it passes the filters (the simulator's
// scheduler decides those, with the room held for nominated pods), or -1.
// It scores every node once, as the Placer would for its first pod
// (TestPickIsPlacersFirst), without building the Placer's classes.
func Pick(scoring Scoring, rooms []NodeRoom, shape Shape, counts []int64, fits []bool) int {
	feasible, domains := 0, map[int]bool{}
	zoneOf, inZone := zonesOf(rooms, counts)
	for i := range rooms {
		if fits[i] {
			feasible++
			domains[zoneOf[i]] = true
		}
	}
	p := Placer{hostWeight: math.Log(float64(feasible + 2)), zoneWeight: math.Log(float64(len(domains) + 2)), inZone: inZone}
	keyOf := func(i int) classKey {
		_, host := rooms[i].Labels[corev1.LabelHostname]
		return classKey{zoneOf[i], host, counts[i]}
	}
	lo, hi := int64(math.MaxInt64), int64(0)
	for i := range rooms {
		if fits[i] {
			raw := p.raw(keyOf(i))
			lo, hi = min(lo, raw), max(hi, raw)
		}
	}
	best, bestScore := -1, int64(-1)
	for i := range rooms {
		if !fits[i] {
			continue
		}
		r := &rooms[i]
		spread := int64(maxNodeScore)
		if hi > 0 {
			spread = maxNodeScore * (hi + lo - p.raw(keyOf(i))) / hi
		}
		s := weightFit*scoring.Score(r, shape.Requests) + weightBalanced*balanced(r, shape.Requests) + weightSpread*spread
		if s > bestScore || (s == bestScore && r.Name < rooms[best].Name) {
			best, bestScore = i, s
		}
	}
	return best
}

// zonesOf indexes each room's zone label (-1 without one) and counts the
// workload's pods (counts by room, nil: none) in each zone.
func zonesOf(rooms []NodeRoom, counts []int64) (zone []int, inZone []int64) {
	zone, ids := make([]int, len(rooms)), map[string]int{}
	for i := range rooms {
		zone[i] = -1
		z, ok := rooms[i].Labels[corev1.LabelTopologyZone]
		if !ok {
			continue
		}
		id, seen := ids[z]
		if !seen {
			id = len(ids)
			ids[z] = id
			inZone = append(inZone, 0)
		}
		zone[i] = id
		if counts != nil {
			inZone[id] += counts[i]
		}
	}
	return zone, inZone
}

func newPlacer(scoring Scoring, rooms []NodeRoom, shape Shape, counts []int64, fits []bool) *Placer {
	n := len(rooms)
	p := &Placer{scoring: scoring, shape: shape, rooms: slices.Clone(rooms), owned: make([]bool, n),
		counts: slices.Clone(counts), host: make([]bool, n), own: make([]int64, n),
		classes: map[classKey]*placerHeap{}, class: make([]*placerHeap, n), at: make([]int, n), feasibleInZone: map[int]int{}}
	if p.counts == nil {
		p.counts = make([]int64, n)
	}
	p.zone, p.inZone = zonesOf(rooms, p.counts)
	for i := range rooms {
		_, p.host[i] = rooms[i].Labels[corev1.LabelHostname]
		if fits[i] {
			p.feasible++
			p.feasibleInZone[p.zone[i]]++
			p.enter(i)
		}
	}
	p.weigh()
	return p
}

// weigh sets the spreading weights from the nodes the pod fits on: each
// node is a hostname domain, each zone value (none counting as one) a zone.
func (p *Placer) weigh() {
	p.hostWeight = math.Log(float64(p.feasible + 2))
	p.zoneWeight = math.Log(float64(len(p.feasibleInZone) + 2))
}

// enter scores node i and puts it in its class.
func (p *Placer) enter(i int) {
	r := &p.rooms[i]
	p.own[i] = weightFit*p.scoring.Score(r, p.shape.Requests) + weightBalanced*balanced(r, p.shape.Requests)
	k := classKey{p.zone[i], p.host[i], p.counts[i]}
	h := p.classes[k]
	if h == nil {
		h = &placerHeap{key: k, own: p.own, rooms: p.rooms, at: p.at}
		p.classes[k] = h
	}
	heap.Push(h, i)
	p.class[i] = h
}

// Next returns the index of the node the next pod goes to, or -1 when it
// fits nowhere. It does not place the pod: Place does.
func (p *Placer) Next() int {
	lo, hi := int64(math.MaxInt64), int64(0)
	for k := range p.classes {
		raw := p.raw(k)
		lo, hi = min(lo, raw), max(hi, raw)
	}
	best, bestScore := -1, int64(-1)
	for k, h := range p.classes {
		i := h.nodes[0]
		spread := int64(maxNodeScore)
		if hi > 0 {
			spread = maxNodeScore * (hi + lo - p.raw(k)) / hi
		}
		if s := p.own[i] + weightSpread*spread; s > bestScore || (s == bestScore && p.rooms[i].Name < p.rooms[best].Name) {
			best, bestScore = i, s
		}
	}
	return best
}

// Place binds one pod to node i: its room and the spreading counts move.
func (p *Placer) Place(i int) {
	r := &p.rooms[i]
	if !p.owned[i] {
		r.Requested, p.owned[i] = r.Requested.Clone(), true
		if r.Requested == nil {
			r.Requested = Resources{}
		}
	}
	r.Requested.Add(p.shape.Requests)
	wasFeasible := p.class[i] != nil
	if h := p.class[i]; h != nil {
		heap.Remove(h, h.pos(i))
		if len(h.nodes) == 0 {
			delete(p.classes, h.key)
		}
		p.class[i] = nil
	}
	p.counts[i]++
	if z := p.zone[i]; z >= 0 {
		p.inZone[z]++
	}
	if fitsOn(r, p.shape.Requests) {
		if !wasFeasible {
			p.feasible++
			p.feasibleInZone[p.zone[i]]++
			p.weigh()
		}
		p.enter(i)
		return
	}
	if !wasFeasible {
		return
	}
	p.feasible--
	if p.feasibleInZone[p.zone[i]]--; p.feasibleInZone[p.zone[i]] == 0 {
		delete(p.feasibleInZone, p.zone[i])
	}
	p.weigh()
}

// Room is node i's room with the pods placed so far.
func (p *Placer) Room(i int) *NodeRoom { return &p.rooms[i] }

// raw is PodTopologySpread's raw score of the nodes of a class: the
// workload's pods in each of their domains, weighted (lower is better).
func (p *Placer) raw(k classKey) int64 {
	return rawSpread(k, p.hostWeight, p.zoneWeight, p.inZone)
}

// rawSpread is the raw spreading score of a class, given the weights and
// the workload's pods per zone.
func rawSpread(k classKey, hostWeight, zoneWeight float64, inZone []int64) int64 {
	score := 0.0
	if k.host {
		score += float64(k.count)*hostWeight + hostnameSkew - 1
	}
	if k.zone >= 0 {
		score += float64(inZone[k.zone])*zoneWeight + zoneSkew - 1
	}
	return int64(math.Round(score))
}

// placerHeap is one class's nodes, the highest own score first, ties to
// the first name.
type placerHeap struct {
	key   classKey
	nodes []int
	own   []int64 // the Placer's, by node
	rooms []NodeRoom
	at    []int // by node, shared by the owner's heaps: a node is in one at most
}

func (h *placerHeap) pos(i int) int { return h.at[i] }
func (h *placerHeap) Len() int      { return len(h.nodes) }
func (h *placerHeap) Less(a, b int) bool {
	x, y := h.nodes[a], h.nodes[b]
	if h.own[x] != h.own[y] {
		return h.own[x] > h.own[y]
	}
	return h.rooms[x].Name < h.rooms[y].Name
}
func (h *placerHeap) Swap(a, b int) {
	h.nodes[a], h.nodes[b] = h.nodes[b], h.nodes[a]
	h.at[h.nodes[a]], h.at[h.nodes[b]] = a, b
}
func (h *placerHeap) Push(x any) {
	h.at[x.(int)] = len(h.nodes)
	h.nodes = append(h.nodes, x.(int))
}
func (h *placerHeap) Pop() any {
	last := h.nodes[len(h.nodes)-1]
	h.nodes = h.nodes[:len(h.nodes)-1]
	return last
}

const maxNodeScore = 100

// balanced is NodeResourcesBalancedAllocation's score (v1.37): how much
// placing the pod improves the balance of CPU and memory on the node, 50-100.
func balanced(r *NodeRoom, req Resources) int64 {
	l := loadOf(r)
	return balancedOf(&l, scoredOf(req))
}

// balancedOf is balanced over a node's load.
func balancedOf(l *load, req [2]int64) int64 {
	with := balance(l, req)
	without := balance(l, [2]int64{})
	return maxNodeScore/2 + (maxNodeScore/2+with-without)/2
}

// balance is (1 - std) * 100 of the node's CPU and memory request fractions.
func balance(l *load, req [2]int64) int64 {
	var fractions [2]float64
	n := 0
	for k := range scored {
		alloc := l.alloc[k]
		if alloc == 0 {
			continue
		}
		fractions[n] = min(float64(l.requested[k]+req[k])/float64(alloc), 1)
		n++
	}
	std := 0.0
	if n == 2 {
		std = math.Abs((fractions[0] - fractions[1]) / 2)
	}
	return int64((1 - std) * maxNodeScore)
}

// fitsOn reports whether requests still fit the node's free room.
func fitsOn(r *NodeRoom, requests Resources) bool {
	for name, v := range requests {
		if v > 0 && r.Free(name) < v {
			return false
		}
	}
	return true
}
