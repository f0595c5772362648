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
	sel := s.PoolSelector
	if sel != nil && sel.Empty() {
		sel = nil
	}
	eligibility := capacity.EligibilityOf(s.Shape)
	out, alloc := capacity.Resources{}, capacity.Resources{}
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
