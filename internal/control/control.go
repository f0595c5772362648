// Package control is opportunist's control law: how many replicas each
// opportunistic workload should run, given the cluster as internal/capacity
// models it. It is pure: no I/O, no clock (time is an input), no goroutines,
// and the same input always gives the same output. The controller, the
// simulator and the demo all call Decide.
//
// A scaler's pool is the Ready, schedulable nodes that match its pool
// selector and that one replica is eligible for (capacity.Eligible: node
// selector, required node affinity, untolerated NoSchedule/NoExecute taints).
//
// For each scaler, every round:
//  1. Budget: the pool's allocatable minus the headroom, minus what paid pods
//     request (bound ones, plus pending paid pods that yielding would let in),
//     minus what other scalers hold in the pool; in replicas of the shape.
//  2. Fit: the replicas bound to Ready nodes now plus how many more fit,
//     node by node. Replicas stranded on NotReady, cordoned or missing nodes
//     count for nothing: the target's count covers them until they are gone.
//  3. desired = clamp(min(budget, fit), Min, Max). Min wins, even over Max.
//     A scaler with Slots is also capped where paid pods of each slot's
//     shape still fit node by node, or yields pods to restore them (slots.go).
//  4. A scale-down is applied at once.
//  5. A scale-up is stabilised: a window, a step limit, and hysteresis.
//  6. Scalers share the room by priority, then by weight (water-filling).
package control

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/reclaim"
)

// Cluster is the cluster as the capacity model sees it.
type Cluster struct {
	// Rooms lists every node: its state, labels, taints and room (Ledger.Rooms).
	Rooms []capacity.NodeRoom
	// Pending lists the unbound, non-terminal pods (Ledger.Pending). Only the
	// paid ones (Workload == "") matter.
	Pending []capacity.PendingPod
	// Opportunistic lists the opportunistic pods bound to each node, by node
	// name (Ledger.Opportunistic): the pods a yield may choose. Read only
	// when a pending paid pod fits on no node, so a caller may leave it nil
	// while no paid pod is pending (then nothing is yielded).
	Opportunistic map[string][]capacity.BoundPod
	// Scoring is how the scheduler picks among the nodes a pod fits on:
	// where a scaler with Slots expects its new replicas to land ("" is
	// LeastAllocated, the scheduler's default).
	Scoring capacity.Scoring
	// Reclaim is each node's reclaim accounting (reclaim.Room), by node
	// name, when some scaler reclaims: its numbers explain a Reclaim limit.
	// The room itself is what the nodes publish (their extended resources
	// in Rooms, see WithReclaim), as the scheduler sees it.
	Reclaim map[string]reclaim.NodeRoom
	// opportunistic lists Opportunistic on demand (ClusterOf): a scaler with
	// Slots reads its pods every round.
	opportunistic func() map[string][]capacity.BoundPod
}

// CapacitySource is what ClusterOf reads: a capacity.Ledger, or the live
// cache over one.
type CapacitySource interface {
	Rooms() []capacity.NodeRoom
	Pending() []capacity.PendingPod
	Opportunistic() map[string][]capacity.BoundPod
}

// ClusterOf reads the cluster from a capacity source, as the controller and
// the simulator both do. The opportunistic pods per node are listed only
// while a paid, ungated pod is pending: only then may Decide yield, and
// listing them costs O(those pods).
func ClusterOf(src CapacitySource) Cluster {
	c := Cluster{Rooms: src.Rooms(), Pending: src.Pending(), opportunistic: src.Opportunistic}
	for _, pp := range c.Pending {
		if paidDemand(&pp) {
			c.Opportunistic = src.Opportunistic()
			break
		}
	}
	return c
}

// Scaler is one opportunistic workload and how to scale it. A reconciler
// converts its OpportunisticScaler into this.
type Scaler struct {
	// Key names the scaler, "namespace/name"; keys are unique within a round.
	Key string
	// Shape is one replica: effective requests (with one "pods" slot), node
	// selector, required node affinity and tolerations.
	Shape capacity.Shape
	// Current is the target's spec.replicas; Bound counts its pods that are
	// bound to a Ready node and not terminal; Stranded those bound to a node
	// that is NotReady, cordoned or missing (see PodCountsOf).
	Current, Bound, Stranded int32
	// Min and Max bound the decision. Min wins over everything, Max included.
	Min, Max int32
	// Headroom is the room kept free for paid work, per resource. Resources
	// without an entry use TargetUtilizationPercent.
	Headroom map[corev1.ResourceName]Headroom
	// TargetUtilizationPercent (0-100) fills the pool up to this share of its
	// allocatable for resources without a Headroom entry; 0 fills it entirely.
	TargetUtilizationPercent float64
	// PoolSelector picks the pool's nodes among the Ready ones (nil: all);
	// of those, the pool keeps the nodes a replica of Shape is eligible for.
	PoolSelector labels.Selector
	// Priority orders the sharing: higher priorities take room first.
	Priority int32
	// Weight shares room within one priority, proportionally (0 counts as 1).
	Weight int32
	// PodPriority is the workload pods' priority: pending paid pods with a
	// priority at least as high take room from the budget.
	PodPriority int32
	// Slots are room kept free for paid pods of given shapes, node by node,
	// on top of Headroom (both hold): the count stays where Count pods of
	// every slot's shape still fit on the pool's free room once its new
	// replicas are placed as the scheduler would (Cluster.Scoring), and
	// yields the fewest pods that restore them when they no longer fit.
	Slots []Slot
	// ScaleUp stabilises growth. ScaleDown is immediate unless set.
	ScaleUp, ScaleDown Behavior
	// History is what the previous decision returned (zero the first time).
	History History
	// Reclaim is the scaler's spec.reclaim when enabled (nil: off). Its pods
	// request the extended resources of Reclaim.Resources (reclaim.Extended)
	// and only a token of the native ones, so no headroom applies to those:
	// theta and the margin keep reclaimed room safe.
	Reclaim *reclaim.RoomConfig
}

// Headroom is room kept free for paid work in one resource. When both forms
// are set, the larger headroom applies.
type Headroom struct {
	// Quantity is in the canonical unit of capacity.Resources: milli-cores,
	// bytes, or a count.
	Quantity int64
	// Auto: learned from the demand history (spec "auto"); the caller
	// sets Quantity to the learned value, zero until there is one.
	Auto bool
	// Percent (0-100) of the pool's allocatable, to 1e-4 %.
	Percent float64
}

// Slot is room for Count paid pods of one shape (spec.headroomSlots).
type Slot struct {
	// Name labels the slot in reasons, status and metrics.
	Name string
	// Shape is one paid pod: effective requests (with its pod slot), node
	// selector, required node affinity and tolerations.
	Shape capacity.Shape
	Count int32
	// Auto: Count is learned from the pool's history of paid pods of the
	// shape (internal/predict.LearnSlots); the controller sets it each
	// round, and until then it is 1, the least a learned count is.
	Auto bool
}

// SlotFit is how many of one slot's pods fit on the pool after a decision.
type SlotFit struct {
	Name string
	// Wanted is the slot's Count; Fit how many of them fit (at most Wanted),
	// counted together with the other slots so no room counts twice.
	Wanted, Fit int32
	// Nodes says where the slots that fit are, in the order they were counted.
	Nodes []NodeSlots
}

// NodeSlots is how many pods of one slot fit on one node.
type NodeSlots struct {
	Node  string
	Slots int32
}

// Behavior stabilises scaling in one direction.
type Behavior struct {
	// StabilizationWindow: scale up only to the lowest (down: to the highest)
	// count recommended at any time within the window.
	StabilizationWindow time.Duration
	// MaxStep limits the change to this many replicas per Period (0: no limit;
	// a zero Period limits each decision).
	MaxStep int32
	Period  time.Duration
}

// Limit names what set a decision.
type Limit string

const (
	// LimitBudget: the room the headroom leaves, after paid work and other scalers.
	LimitBudget Limit = "Budget"
	// LimitFit: no more replicas fit node by node.
	LimitFit Limit = "Fit"
	// LimitMax and LimitMin: the scaler's bounds.
	LimitMax Limit = "Max"
	LimitMin Limit = "Min"
	// LimitPendingPaid: pending paid pods lowered the budget.
	LimitPendingPaid Limit = "PendingPaid"
	// LimitStabilized: a scale-up held by the window or by hysteresis, or a
	// scale-down held by an opt-in scale-down window.
	LimitStabilized Limit = "Stabilized"
	// LimitStepLimit: a change cut by MaxStep.
	LimitStepLimit Limit = "StepLimit"
	// LimitSlots: another replica would take room kept for a slot, or the
	// slots no longer fit and the scaler yields pods to restore them.
	LimitSlots Limit = "Slots"
)

// Decision is the outcome of one round for one scaler.
type Decision struct {
	Key string
	// Desired is the replica count to set now.
	Desired int32
	// Recommended is clamp(min(Budget, Fit), Min, Max), before stabilisation.
	Recommended int32
	// Limit names what set Desired.
	Limit Limit
	// Budget and Fit are total replica counts, before clamping. Fit counts
	// the replicas bound and those that fit node by node after higher
	// priorities' new replicas, and never the room shared out to others.
	Budget, Fit int64
	// PoolNodes counts the nodes of the scaler's pool: Ready, schedulable,
	// matching its pool selector, and eligible for one replica.
	PoolNodes int
	// Stranded is the scaler's Stranded input: replicas on nodes that are
	// not Ready, which neither hold room in the fit nor are added on top.
	Stranded int32
	// Reason is one sentence with the numbers behind Desired.
	Reason string
	// History is the scaler's History for the next round.
	History History
	// Yield lists the scaler's pods ("namespace/name") whose removal lets
	// pending paid pods in: the target's count is lowered by as many, and
	// these pods must be the ones to go.
	Yield []string
	// Slots says, for a scaler with Slots, how many of each fit once this
	// decision's new replicas are placed and its yielded pods are gone.
	Slots []SlotFit
}

// Decide runs one round of the control law for every scaler and returns the
// decisions sorted by key. Room is shared in order of priority (highest
// first), then by weight, ties broken by key, so the order of scalers does
// not matter.
func Decide(now time.Time, cluster Cluster, scalers []Scaler) []Decision {
	m := newModel(cluster.Rooms)
	m.reclaimRooms = cluster.Reclaim
	plans := make([]*plan, len(scalers))
	for i := range scalers {
		plans[i] = m.newPlan(&scalers[i])
	}
	slices.SortStableFunc(plans, func(a, b *plan) int {
		return cmp.Or(cmp.Compare(b.s.Priority, a.s.Priority), cmp.Compare(a.s.Key, b.s.Key))
	})
	m.orderNodes(plans)
	demand := newPendingDemand(cluster.Pending)
	for _, p := range plans {
		demand.charge(m, p)
	}
	share(m, plans)
	var slots *slotRound
	if anySlots(scalers) { // they read their pods every round
		if cluster.Opportunistic == nil && cluster.opportunistic != nil {
			cluster.Opportunistic = cluster.opportunistic()
		}
		slots = &slotRound{census: censusOf(cluster.Opportunistic, slotScalers(scalers)),
			opportunistic: cluster.Opportunistic, scoring: cluster.Scoring}
	}
	var counted *census
	if slots != nil {
		counted = &slots.census
	}
	yield := planYield(cluster, scalers, counted)
	out := make([]Decision, 0, len(plans))
	for _, p := range plans { // priority order: higher ones' new replicas take room first
		out = append(out, m.decide(now, p, &yield, slots))
	}
	slices.SortFunc(out, func(a, b Decision) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// decide computes one scaler's decision once the room is shared, and places
// its new replicas so that later scalers' fit sees them.
func (m *model) decide(now time.Time, p *plan, yield *yieldPlan, slots *slotRound) Decision {
	s := p.s
	budget, budgetNoPending := p.budget(true), p.budget(false)
	fitRes := capacity.Fit(m.actualPool(p), s.Shape)
	fitNow := int64(s.Bound) + fitRes.Total
	fit := fitNow
	if p.saturated { // never count on room the sharing gave to another scaler
		fit = min(fit, p.granted)
	}
	// The room a yield frees goes to pending paid pods: only the replicas
	// that stay bound fit.
	fitUnyielded := fit
	yieldFit, yielding := yield.fits[s.Key]
	if yielding = yielding && int64(yieldFit) < fit; yielding {
		fit = int64(yieldFit)
	}

	rec, limit := clampDesired(budget, fit, s.Min, s.Max)
	if limit == LimitBudget && p.saturated && fit == budget {
		limit = LimitFit // others took the room it had no node for: fit is the cause
	}
	if noPending, _ := clampDesired(budgetNoPending, fitUnyielded, s.Min, s.Max); noPending > rec {
		limit = LimitPendingPaid // a scale-down for pending paid pods is never held
	}
	yielding = yielding && fit < budget && int64(rec) == fit // the yield set the count
	victims := yield.victims[s.Key]
	var sp *slotPlan
	var kept slotOutcome
	if len(s.Slots) > 0 && slots != nil {
		sp = m.newSlotPlan(p, slots.opportunistic, &slots.census)
		if !yield.affects(s.Key) { // room a pending paid pod is let into is no slot's
			kept = sp.decide(rec, slots.scoring)
			if kept.limit < rec {
				rec, limit, p.slotWhy = max(kept.limit, s.Min), LimitSlots, kept.why
				if rec > kept.limit || (kept.short && s.Min > 0 && rec == s.Min) {
					limit = LimitMin // Min keeps pods the slots would have yielded
				}
				victims = slotYield(kept.victims, sp.live-rec)
			}
		}
	}
	hist := s.History.next(now, s, rec)
	desired, finalLimit, held := stabilize(now, s, &hist, rec, limit)
	reason := explain(p, rec, limit, desired, held, budget, fit, fitNow)
	if yielding {
		reason = fmt.Sprintf("scale from %d to %d: %s", s.Current, desired, yield.why[s.Key])
		if desired == s.Current {
			reason = yield.why[s.Key]
		}
	}
	finalLimit, reason = m.reclaimLimit(p, finalLimit, reason)

	var slotFits []SlotFit
	if sp == nil {
		m.placeNew(p, int64(desired)-int64(s.Bound))
	} else {
		made := min(max(int(desired)-int(sp.live), 0), len(kept.placements))
		for _, i := range kept.placements[:made] {
			m.place(p, i, 1)
		}
		m.placeNew(p, int64(desired)-int64(sp.live)-int64(made))
		yielded := kept.victims
		if limit != LimitSlots {
			yielded = nil
		}
		slotFits = sp.after(kept.placements, made, yielded)
	}
	return Decision{
		Key:         s.Key,
		Desired:     desired,
		Recommended: rec,
		Limit:       finalLimit,
		Budget:      budget,
		Fit:         fit,
		PoolNodes:   len(p.pool),
		Stranded:    s.Stranded,
		Reason:      reason,
		History:     hist,
		Yield:       victims,
		Slots:       slotFits,
	}
}

// clampDesired returns clamp(min(budget, fit), lo, hi) and what bound it.
// On a tie between budget and fit the budget is named: it is the plan; on
// a tie with Max, Max is: an explicit cap explains more.
func clampDesired(budget, fit int64, lo, hi int32) (int32, Limit) {
	v, limit := budget, LimitBudget
	if fit < budget {
		v, limit = fit, LimitFit
	}
	if v >= int64(hi) {
		v, limit = int64(hi), LimitMax
	}
	if v < int64(lo) { // after Max: Min wins
		v, limit = int64(lo), LimitMin
	}
	return int32(v), limit
}

// PodCounts is what a workload's pods hold: Bound to Ready nodes, and
// Stranded on nodes that are NotReady, cordoned or missing.
type PodCounts struct {
	Bound, Stranded int32
}

// PodCountsOf reads each opportunistic workload's pod counts, by key, from
// the capacity report: the one conversion the controller, the simulator and
// the demo use to fill Scaler.Bound and Scaler.Stranded.
func PodCountsOf(rep capacity.Report) map[string]PodCounts {
	out := make(map[string]PodCounts, len(rep.Workloads))
	for _, w := range rep.Workloads {
		out[w.Key] = PodCounts{Bound: int32(w.Pods - w.Stranded), Stranded: int32(w.Stranded)}
	}
	return out
}
