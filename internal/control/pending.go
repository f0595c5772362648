package control

import "github.com/opportunist/opportunist/internal/capacity"

// pendingDemand finds, for each scaler, the pending paid pods it must yield to.
type pendingDemand struct {
	pods []capacity.PendingPod // paid ones only
	// fits caches, by pool and pod, whether the pod fits in the pool once the
	// opportunistic pods are gone: scalers often share one pool.
	fits map[poolPod]bool
}

type poolPod struct {
	pool int
	pod  string
}

func newPendingDemand(pending []capacity.PendingPod) *pendingDemand {
	d := &pendingDemand{fits: map[poolPod]bool{}}
	for _, pp := range pending {
		if paidDemand(&pp) {
			d.pods = append(d.pods, pp)
		}
	}
	return d
}

// paidDemand reports whether a pending pod is paid work waiting for room:
// paid, unbound, not finished, and not gated. A gated pod is not demand: the
// scheduler will not try it, so room yielded for it would sit idle until its
// gates are lifted.
func paidDemand(pp *capacity.PendingPod) bool {
	return pp.Workload == "" && pp.NodeName == "" && !pp.Terminal && !pp.Gated
}

// charge adds to p's budget the paid pods pending at a priority at least its
// pods' (paid work wins ties: without any PriorityClass every pod has priority
// 0, and paid pods must still get their room) that would fit on a node of its pool if the opportunistic pods
// there were gone. A pod that would not fit even then is left out: yielding
// would not help it. It must run before any room is shared out.
func (d *pendingDemand) charge(m *model, p *plan) {
	var rooms []capacity.NodeRoom // built on first need
	for i := range d.pods {
		pp := &d.pods[i]
		if pp.Priority < p.s.PodPriority {
			continue
		}
		key := poolPod{p.poolID, pp.Key()}
		fits, seen := d.fits[key]
		if !seen {
			if rooms == nil {
				rooms = m.rooms(m.reclaim, p.pool)
			}
			fits = fitsSomewhere(rooms, pp.Shape())
			d.fits[key] = fits
		}
		if fits {
			p.pendingPods++
			for k, name := range p.names {
				p.pending[k] += pp.Requests[name]
			}
		}
	}
}

// fitsSomewhere reports whether one pod of shape fits on one of rooms.
func fitsSomewhere(rooms []capacity.NodeRoom, shape capacity.Shape) bool {
	return firstFit(rooms, shape, nil) >= 0
}
