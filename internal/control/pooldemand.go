package control

import (
	"k8s.io/apimachinery/pkg/labels"

	"github.com/opportunist/opportunist/internal/capacity"
)

// PaidDemand is the paid demand of a scaler's pool, per resource: the
// requests of the paid pods bound to its nodes (terminating ones too: they
// hold their room until they are gone) plus those of the paid pods pending
// that could land on one of them (not gated). It is what the demand
// history records and what the predictive budget calls observed demand.
// The pool is the budget's: Ready nodes matching the pool selector that a
// replica is eligible for.
func PaidDemand(c *Cluster, s *Scaler) capacity.Resources {
	_, paid := PoolDemand(c, s)
	return paid
}

// PoolDemand is PaidDemand with the pool's allocatable room.
func PoolDemand(c *Cluster, s *Scaler) (alloc, paid capacity.Resources) {
	out, alloc := capacity.Resources{}, capacity.Resources{}
	pool := poolOf(c, s)
	for _, r := range pool {
		for name, v := range r.Allocatable {
			alloc[name] += v
		}
		for name, v := range r.Requested {
			out[name] += v - r.OpportunisticRequested[name]
		}
	}
	for i := range c.Pending {
		pp := &c.Pending[i]
		if !paidDemand(pp) {
			continue
		}
		shape := pp.Shape()
		for _, r := range pool {
			if ok, _ := capacity.Eligible(r, shape); ok {
				for name, v := range pp.Requests {
					out[name] += v
				}
				break
			}
		}
	}
	return alloc, out
}

// poolOf is the budget's pool of s: the Ready nodes matching its pool
// selector that a replica is eligible for.
func poolOf(c *Cluster, s *Scaler) []*capacity.NodeRoom {
	sel := s.PoolSelector
	if sel != nil && sel.Empty() {
		sel = nil
	}
	eligibility := capacity.EligibilityOf(s.Shape)
	var pool []*capacity.NodeRoom
	for i := range c.Rooms {
		r := &c.Rooms[i]
		if r.State != capacity.NodeReady || sel != nil && !sel.Matches(labels.Set(r.Labels)) {
			continue
		}
		if ok, _ := eligibility.Node(r); !ok {
			continue
		}
		pool = append(pool, r)
	}
	return pool
}

// SlotPods counts, for each of s.Slots, the paid pods of its shape in s's
// pool, as PaidDemand counts paid demand: bound to a pool node (paidBound,
// the requests of the paid pods bound to each node, terminating ones too)
// or pending and able to land on one. A pod is of a slot's shape when its
// effective requests equal the slot's (resources at zero aside): for a
// shapeFrom slot, the pods of that workload and of any other paid
// workload with the same requests. It is what the history of an "auto"
// slot records.
func SlotPods(c *Cluster, s *Scaler, paidBound map[string][]capacity.BoundPod) []int {
	out := make([]int, len(s.Slots))
	if len(s.Slots) == 0 {
		return out
	}
	pool := poolOf(c, s)
	for _, r := range pool {
		for _, bp := range paidBound[r.Name] {
			for j := range s.Slots {
				if sameRequests(bp.Requests, s.Slots[j].Shape.Requests) {
					out[j]++
				}
			}
		}
	}
	for i := range c.Pending {
		pp := &c.Pending[i]
		if !paidDemand(pp) {
			continue
		}
		shape := pp.Shape()
		for _, r := range pool {
			if ok, _ := capacity.Eligible(r, shape); ok {
				for j := range s.Slots {
					if sameRequests(pp.Requests, s.Slots[j].Shape.Requests) {
						out[j]++
					}
				}
				break
			}
		}
	}
	return out
}

// sameRequests: a and b request the same amounts (a zero is an absence).
func sameRequests(a, b capacity.Resources) bool {
	for name, v := range a {
		if b[name] != v {
			return false
		}
	}
	for name, v := range b {
		if a[name] != v {
			return false
		}
	}
	return true
}
