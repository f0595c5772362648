package control

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/reclaim"
)

// LimitReclaim: the room reclaimed from idle paid requests set the count. A
// reclaiming scaler's pods request an extended resource
// (reclaim.ExtendedResourceCPU) that each node publishes as
// max(reclaimable by usage, free by requests); the limit is named Reclaim
// when that resource binds and usage gave the pool more than requests alone.
const LimitReclaim Limit = "Reclaim"

// reclaimed is a reclaiming scaler's view of its pool for one resource.
type reclaimed struct {
	ext, native                corev1.ResourceName
	nodes, stale               int
	publish, reclaimable, free int64
	formula                    string // of the pool's first node with room, as an example
}

// reclaimOf sums the reclaim accounting of p's pool for the first extended
// resource its shape requests; ok is false for a shape that requests none.
func (m *model) reclaimOf(p *plan) (r reclaimed, ok bool) {
	for _, name := range p.names {
		if native, isExt := reclaim.Native(name); isExt {
			r.ext, r.native, ok = name, native, true
			break
		}
	}
	if !ok {
		return r, false
	}
	for _, i := range p.pool {
		nr, known := m.reclaimRooms[m.actual[i].Name]
		if !known {
			// Published by someone else: the scheduler's view is all we have.
			r.publish += m.actual[i].Allocatable[r.ext]
			r.free += m.actual[i].Allocatable[r.ext]
			continue
		}
		r.nodes++
		if !nr.Fresh {
			r.stale++
		}
		r.publish += nr.Publish[r.native]
		r.reclaimable += nr.Reclaimable[r.native]
		r.free += nr.Free[r.native]
		if r.formula == "" && nr.Reclaimable[r.native] > nr.Free[r.native] {
			r.formula = nr.Node + ": " + nr.Formula
		}
	}
	return r, true
}

// reclaimLimit renames a limit set by the extended resource to Reclaim when
// usage gave the pool more room than requests alone, and says so with the
// numbers. Stale usage leaves requests alone: the reason says that too.
func (m *model) reclaimLimit(p *plan, limit Limit, why string) (Limit, string) {
	r, ok := m.reclaimOf(p)
	if !ok {
		return limit, why
	}
	binding := limit == LimitBudget || limit == LimitFit || limit == LimitPendingPaid
	var b strings.Builder
	q := func(v int64) string { return amount(r.native, v) }
	switch {
	case r.stale > 0 && r.stale == r.nodes:
		fmt.Fprintf(&b, "reclaim: usage stale on all %d nodes, requests alone: %s free", r.nodes, q(r.free))
	case r.publish > r.free:
		fmt.Fprintf(&b, "reclaim: %s %s published on the pool (%s by usage, requests alone leave %s)",
			r.ext, q(r.publish), q(r.reclaimable), q(r.free))
		if r.stale > 0 {
			fmt.Fprintf(&b, ", usage stale on %d of %d nodes", r.stale, r.nodes)
		}
		if binding && p.bindingResource() == r.ext {
			limit = LimitReclaim
		}
		if r.formula != "" {
			fmt.Fprintf(&b, "; e.g. %s", r.formula)
		}
	default:
		fmt.Fprintf(&b, "reclaim: usage leaves no more than requests: %s free", q(r.free))
	}
	return limit, why + "; " + b.String()
}

// bindingResource is the resource whose room bounds the budget (as
// explainBudget names it).
func (p *plan) bindingResource() corev1.ResourceName {
	if len(p.names) == 0 {
		return ""
	}
	k := 0
	for j := range p.names {
		if p.room(j, true)/p.request[j] < p.room(k, true)/p.request[k] {
			k = j
		}
	}
	return p.names[k]
}

// WithReclaim returns rooms with each node's extended reclaim resources set
// to what reclaim.Room published for it (the scheduler's view once the
// controller has patched node status; the simulator's at each metrics
// interval). Nodes without an entry are left as they are.
func WithReclaim(rooms []capacity.NodeRoom, published map[string]reclaim.NodeRoom) []capacity.NodeRoom {
	out := make([]capacity.NodeRoom, len(rooms))
	for i, r := range rooms {
		nr, ok := published[r.Name]
		if ok {
			r.Allocatable = r.Allocatable.Clone()
			for native, v := range nr.Publish {
				if ext, isExt := reclaim.Extended(native); isExt {
					r.Allocatable[ext] = v
				}
			}
		}
		out[i] = r
	}
	return out
}
