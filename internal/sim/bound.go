package sim

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

// The packing bound grades harvest by something other than the control law
// (the instant law is control.Decide itself). At each instant it is the
// most CPU the opportunistic workloads could hold given the paid pods as
// they are placed (and, through the cap, as they are pending):
//
//   - each Ready node's free room is its allocatable minus the requests of
//     the paid pods bound to it (terminating ones included: they hold it);
//   - on it, each opportunistic shape the node is eligible for (node
//     selector, affinity, taints) fits as many replicas as first fit of
//     that one shape places, its count alone; together they are capped by
//     the node's free CPU. With one shape this is exactly what first-fit
//     decreasing packs; with several on one node it relaxes the packing
//     (each counted as if alone), so it may exceed any real packing but
//     never falls below one: it stays a bound;
//   - each workload holds at most its maxReplicas;
//   - the total is capped by the pool's allocatable - headroom - paid
//     demand (bound or pending), the line overshoot is measured against.
//
// Every strategy's opportunistic pods that are Ready at an instant sit on
// Ready nodes beside the paid pods of that run, so their CPU is at most the
// packing, and their harvest beyond the overshoot at most the cap: the
// bound is an upper bound of every strategy's non-overshooting harvest, in
// its own run (bound_test.go checks it at every step of every built-in scenario). It does
// not call control.Decide.

// boundShape is one opportunistic workload as the bound counts it.
type boundShape struct {
	requests capacity.Resources
	cpu      int64
	max      int32
	eligible []bool // by node
}

// packBound is the most CPU (milli-cores) the shapes could hold on the
// Ready nodes' room beside their paid pods (the packing above, uncapped).
func packBound(rooms []capacity.NodeRoom, shapes []boundShape) int64 {
	var onNodes int64
	alone := make([]int64, len(shapes))
	for i := range rooms {
		r := &rooms[i]
		if r.State != capacity.NodeReady {
			continue
		}
		free := func(name corev1.ResourceName) int64 {
			return r.Allocatable[name] - (r.Requested[name] - r.OpportunisticRequested[name])
		}
		var node int64
		for j := range shapes {
			s := &shapes[j]
			if !s.eligible[i] || s.cpu <= 0 {
				continue
			}
			n := int64(-1)
			for name, v := range s.requests {
				if v > 0 {
					if k := max(free(name), 0) / v; n < 0 || k < n {
						n = k
					}
				}
			}
			n = max(n, 0)
			alone[j] += n
			node += n * s.cpu
		}
		onNodes += min(node, max(free(corev1.ResourceCPU), 0))
	}
	var byMax int64
	for j := range shapes {
		byMax += min(alone[j], int64(shapes[j].max)) * shapes[j].cpu
	}
	return min(onNodes, byMax)
}

// packing caches the packing of a world between its changes: the paid
// pods' room changes only with the ledger (world.version).
type packing struct {
	ran     bool
	version uint64
	cpu     int64
	shapes  []boundShape
}

// of is the packing of the world now, in milli-cores.
func (p *packing) of(w *world) int64 {
	if p.ran && p.version == w.version {
		return p.cpu
	}
	if p.shapes == nil {
		for i, rs := range w.opp {
			p.shapes = append(p.shapes, boundShape{requests: rs.pods.Shape.Requests, cpu: rs.cpu, max: w.sc.Opportunistic[i].MaxReplicas, eligible: rs.eligible})
		}
	}
	p.ran, p.version = true, w.version
	p.cpu = packBound(w.rooms, p.shapes)
	return p.cpu
}
