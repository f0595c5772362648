package control

import (
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/reclaim"
)

// model is one round's working view of the Ready nodes, in name order (the
// order grants and placements follow is orderNodes'). It keeps two copies,
// each changed only by this round:
//   - actual: the nodes as they are, plus the new replicas decided so far, so
//     a lower-priority scaler's fit sees a higher one's growth;
//   - reclaim: the nodes as if every opportunistic pod were gone, plus the
//     replicas granted so far in the sharing; budgets are counted on it.
type model struct {
	actual  []capacity.NodeRoom
	owned   []bool // actual[i].Requested is this round's own copy
	reclaim []capacity.NodeRoom
	all     []int // every node index: the default pool
	// poolIDs numbers the distinct pools of the round (by their node
	// indexes), so that scalers with the same pool share cached answers.
	poolIDs map[string]int
	// reclaimRooms is Cluster.Reclaim: numbers for reclaiming scalers' reasons.
	reclaimRooms map[string]reclaim.NodeRoom
}

func newModel(rooms []capacity.NodeRoom) *model {
	m := &model{poolIDs: map[string]int{}}
	for _, r := range rooms {
		if r.State == capacity.NodeReady {
			m.actual = append(m.actual, r)
		}
	}
	slices.SortFunc(m.actual, func(a, b capacity.NodeRoom) int { return strings.Compare(a.Name, b.Name) })
	m.owned = make([]bool, len(m.actual))
	m.reclaim = make([]capacity.NodeRoom, len(m.actual))
	m.all = make([]int, len(m.actual))
	for i, r := range m.actual {
		paid := r.Requested.Clone()
		paid.Sub(r.OpportunisticRequested)
		r.Requested, r.OpportunisticRequested = paid, nil
		m.reclaim[i] = r
		m.all[i] = i
	}
	return m
}

// plan is one scaler's accounting for the round. The per-resource slices
// run parallel to names: the resources its shape requests, in report order.
type plan struct {
	s      *Scaler
	weight int64
	pool   []int  // indexes of the pool's nodes
	inPool []bool // by node index; nil when the pool is every node
	poolID int    // equal for plans with the same pool

	names                 []corev1.ResourceName
	request               []int64 // one replica
	alloc, headroom, paid []int64 // summed over the pool
	pending               []int64 // pending paid pods that yielding would let in
	pendingPods           int
	others                []int64     // granted to higher priorities, and Mins, on the pool's nodes
	peers                 []int64     // granted to scalers of the same priority on the pool's nodes
	eligible              []int       // pool nodes a replica could ever use this round, in grant order
	cursor                int         // eligible[:cursor] are full for this shape
	granted               int64       // replicas this scaler holds in the sharing
	grants                []nodeGrant // where they were counted, in grant order
	saturated             bool        // no node takes another replica
	slotWhy               string      // why the slots capped it (LimitSlots)
}

// newPlan starts a scaler's accounting. Its pool is the Ready, schedulable
// nodes that match its pool selector and that one replica is eligible for
// (capacity.Eligible: node selector, required node affinity, taints):
// budget, headroom, pending paid demand and fit all count over it, so a
// tainted GPU pool or a control-plane node never inflates a CPU worker's budget.
func (m *model) newPlan(s *Scaler) *plan {
	p := &plan{s: s, weight: max(int64(s.Weight), 1)}
	sel := s.PoolSelector
	if sel != nil && sel.Empty() {
		sel = nil
	}
	inPool := make([]bool, len(m.actual))
	eligibility := capacity.EligibilityOf(s.Shape)
	for i := range m.actual {
		if sel != nil && !sel.Matches(labels.Set(m.actual[i].Labels)) {
			continue
		}
		if ok, _ := eligibility.Node(&m.actual[i]); ok {
			p.pool = append(p.pool, i)
			inPool[i] = true
		}
	}
	if len(p.pool) == len(m.actual) {
		p.pool = m.all // the common case: no copy of the nodes later
	} else {
		p.inPool = inPool
	}
	p.poolID = m.poolID(p.pool)
	for _, name := range s.Shape.Requests.Names() {
		if v := s.Shape.Requests[name]; v > 0 {
			p.names, p.request = append(p.names, name), append(p.request, v)
		}
	}
	n := len(p.names)
	p.alloc, p.headroom, p.paid = make([]int64, n), make([]int64, n), make([]int64, n)
	p.pending, p.others, p.peers = make([]int64, n), make([]int64, n), make([]int64, n)
	for _, i := range p.pool {
		r := &m.reclaim[i]
		for k, name := range p.names {
			p.alloc[k] += r.Allocatable[name]
			p.paid[k] += r.Requested[name]
		}
	}
	for k, name := range p.names {
		p.headroom[k] = HeadroomOf(s, name, p.alloc[k])
	}
	for j, f := range capacity.Fit(m.rooms(m.reclaim, p.pool), s.Shape).Nodes {
		if f.Replicas > 0 {
			p.eligible = append(p.eligible, p.pool[j])
		}
	}
	return p
}

func (p *plan) contains(node int) bool { return p.inPool == nil || p.inPool[node] }

// poolID numbers a pool by its node indexes.
func (m *model) poolID(pool []int) int {
	var buf []byte
	if len(pool) != len(m.all) {
		buf = make([]byte, 0, 6*len(pool))
		for _, i := range pool {
			buf = strconv.AppendInt(buf, int64(i), 10)
			buf = append(buf, ',')
		}
	}
	key := string(buf)
	id, seen := m.poolIDs[key]
	if !seen {
		id = len(m.poolIDs)
		m.poolIDs[key] = id
	}
	return id
}

// rooms returns the pool's nodes out of one copy. The default pool is the
// copy itself, so the common case costs no allocation.
func (m *model) rooms(nodes []capacity.NodeRoom, pool []int) []capacity.NodeRoom {
	if len(pool) == len(nodes) {
		return nodes
	}
	out := make([]capacity.NodeRoom, len(pool))
	for j, i := range pool {
		out[j] = nodes[i]
	}
	return out
}

func (m *model) actualPool(p *plan) []capacity.NodeRoom { return m.rooms(m.actual, p.pool) }

// budget is how many replicas in total the room of the pool allows this
// scaler: min over its resources of (allocatable - headroom - paid - pending
// - other scalers) / request, never negative. Its own pods are not subtracted.
func (p *plan) budget(withPending bool) int64 {
	return p.replicas(func(k int) int64 { return p.room(k, withPending) })
}

// groupRoom is the budget before same-priority peers take their share: the
// room the scaler's priority shares out, in its replicas.
func (p *plan) groupRoom() int64 {
	return p.replicas(func(k int) int64 { return p.room(k, true) + p.peers[k] })
}

func (p *plan) replicas(room func(k int) int64) int64 {
	best := int64(-1)
	for k := range p.names {
		if n := max(room(k)/p.request[k], 0); best < 0 || n < best {
			best = n
		}
	}
	return max(best, 0) // a shape requesting nothing gets no budget
}

func (p *plan) room(k int, withPending bool) int64 {
	r := p.alloc[k] - p.headroom[k] - p.paid[k] - p.others[k] - p.peers[k]
	if withPending {
		r -= p.pending[k]
	}
	return r
}

// nodeGrant is replicas of one plan counted on one node in the sharing.
type nodeGrant struct {
	node     int
	replicas int64
}

// grant places up to n more replicas of p in the sharing, first fit in the
// order of p.eligible (see orderNodes), records where, and charges them to
// the other plans whose pool holds the node:
// higher priorities are charged only for a Min (minimum true), since what a
// lower priority gets above its Min is what they left. It returns how many
// found a node; fewer than n saturates p.
func (m *model) grant(p *plan, n int64, plans []*plan, minimum bool) int64 {
	placed := int64(0)
	for placed < n && p.cursor < len(p.eligible) {
		i := p.eligible[p.cursor]
		take := min(replicasOn(&m.reclaim[i], p), n-placed)
		if take == 0 {
			p.cursor++ // room only shrinks within a round
			continue
		}
		for k, name := range p.names {
			m.reclaim[i].Requested[name] += take * p.request[k]
		}
		if last := len(p.grants) - 1; last >= 0 && p.grants[last].node == i {
			p.grants[last].replicas += take
		} else {
			p.grants = append(p.grants, nodeGrant{node: i, replicas: take})
		}
		for _, q := range plans {
			if q == p || !q.contains(i) || (q.s.Priority > p.s.Priority && !minimum) {
				continue
			}
			held := q.others
			if q.s.Priority == p.s.Priority {
				held = q.peers
			}
			for k, name := range q.names {
				held[k] += take * p.s.Shape.Requests[name]
			}
		}
		placed += take
	}
	p.granted += placed
	if placed < n {
		p.saturated = true
	}
	return placed
}

// replicasOn is how many replicas of p's shape the node's free room holds;
// the node's eligibility (taints, affinity) was checked when p was made.
func replicasOn(r *capacity.NodeRoom, p *plan) int64 {
	n := int64(-1)
	for k, name := range p.names {
		if v := max(r.Free(name)/p.request[k], 0); n < 0 || v < n {
			n = v
		}
	}
	return max(n, 0)
}

// placeNew puts n new replicas of p on the actual copy where the sharing
// counted them: first on the nodes of its grants, up to the grant on each
// (its pods already bound there are part of the grant, so the node's free
// room caps the take), then, if the sharing gave it fewer than it runs, on
// its nodes in grant order. Placing where the grants are is what lets a
// scaler decided later find the room the sharing left to it.
func (m *model) placeNew(p *plan, n int64) {
	for _, g := range p.grants {
		if n <= 0 {
			return
		}
		n -= m.place(p, g.node, min(g.replicas, n))
	}
	for _, i := range p.eligible {
		if n <= 0 {
			return
		}
		n -= m.place(p, i, n)
	}
}

// place puts up to n replicas of p on node i of the actual copy, as many as
// its free room holds, and returns how many. Every node p could use on the
// actual copy is in p.eligible: its room there is never more than on the
// reclaim copy when p was made.
func (m *model) place(p *plan, i int, n int64) int64 {
	take := min(replicasOn(&m.actual[i], p), n)
	if take <= 0 {
		return 0
	}
	if !m.owned[i] {
		m.actual[i].Requested, m.owned[i] = m.actual[i].Requested.Clone(), true
	}
	for k, name := range p.names {
		m.actual[i].Requested[name] += take * p.request[k]
	}
	return take
}
