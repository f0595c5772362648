package control

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

// Slot headroom. A headroom counted as a sum is not room for paid pods when
// it is scattered over the nodes (3 + 3 + 3 + 3 + 2 + 2 cores hold no 4-core
// pod), and the scheduler's default scoring spreads an opportunistic
// workload's pods over every node, which scatters it. So a scaler with slots
// keeps its count where Count paid pods of each slot's shape still fit node
// by node on its pool:
//   - growing, it predicts where its new replicas land, one at a time, as
//     the scheduler scores nodes (Cluster.Scoring), and stops before the
//     first that would take room a slot needs: it never refills into a slot;
//   - when the slots no longer fit (paid pods took some, or a prediction
//     missed), it yields the fewest of its pods whose removal restores them,
//     named in Decision.Yield so that exactly those go.
// Slots are counted together (bigger shapes first, first fit over the nodes
// in name order), so no room counts for two slots. Room that leaving pods
// (terminating, or singled out by their deletion cost) are about to free
// counts as free: a yield is not repeated while its pods terminate. Pending
// paid pods are not counted: the budget and the targeted yield serve them.

// slotShape is one slot, resolved against the round's nodes.
type slotShape struct {
	slot     *Slot
	names    []corev1.ResourceName
	request  []int64 // parallel to names
	eligible []bool  // by position in slotPlan.nodes
}

// slotPlan is one scaler's slots over its pool for the round.
type slotPlan struct {
	m      *model
	p      *plan
	shapes []slotShape // biggest first: the order slots are packed in
	// nodes are the pool's nodes (model indexes) where some slot's shape is
	// eligible; free holds their free room in the resources of names, row
	// by row, counting the room leaving pods are about to free.
	nodes []int
	pos   map[int]int // model index -> position in nodes
	names []corev1.ResourceName
	free  []int64
	// own lists, by model index, the scaler's bound pods that stay, by key.
	own map[int][]capacity.BoundPod
	// spread counts the scaler's pods that are not terminating on each
	// node (model index), as the scheduler's spreading counts them.
	spread []int64
	// live counts the scaler's bound pods that stay, anywhere.
	live   int32
	inFlux bool
}

// slotOutcome is what the slots decide for a scaler.
type slotOutcome struct {
	// limit caps the recommendation: live pods plus the new replicas that
	// keep every slot, or minus the pods yielded to restore them.
	limit int32
	// placements are the predicted nodes of the new replicas, in order.
	placements []int
	victims    []slotVictim
	why        string
	// short: the slots did not all fit before any yield.
	short bool
}

// slotVictim is a pod yielded to restore slots, and its node's model index.
type slotVictim struct {
	pod  capacity.BoundPod
	node int
}

func (m *model) newSlotPlan(p *plan, opportunistic map[string][]capacity.BoundPod, c *census) *slotPlan {
	s := p.s
	sp := &slotPlan{m: m, p: p, pos: map[int]int{}, own: map[int][]capacity.BoundPod{},
		live: c.live[s.Key], inFlux: c.inFlux[s.Key]}
	seen := capacity.Resources{}
	for i := range s.Slots {
		sh := slotShape{slot: &s.Slots[i]}
		for _, name := range s.Slots[i].Shape.Requests.Names() {
			if v := s.Slots[i].Shape.Requests[name]; v > 0 {
				sh.names, sh.request = append(sh.names, name), append(sh.request, v)
				seen[name] = 1
			}
		}
		sp.shapes = append(sp.shapes, sh)
	}
	for _, name := range p.names {
		seen[name] = 1
	}
	sp.names = seen.Names()
	slices.SortStableFunc(sp.shapes, func(a, b slotShape) int { // biggest first
		return -compareRoom(a.slot.Shape.Requests, b.slot.Shape.Requests)
	})
	eligibility := make([]*capacity.Eligibility, len(sp.shapes))
	for j := range sp.shapes {
		eligibility[j] = capacity.EligibilityOf(sp.shapes[j].slot.Shape)
	}
	for _, i := range p.pool {
		room := &m.actual[i]
		var ok []bool
		for j := range sp.shapes {
			if e, _ := eligibility[j].Node(room); e {
				if ok == nil {
					ok = make([]bool, len(sp.shapes))
				}
				ok[j] = true
			}
		}
		if ok == nil {
			continue
		}
		sp.pos[i] = len(sp.nodes)
		sp.nodes = append(sp.nodes, i)
		for j := range sp.shapes {
			sp.shapes[j].eligible = append(sp.shapes[j].eligible, ok[j])
		}
		for _, name := range sp.names {
			sp.free = append(sp.free, room.Free(name))
		}
	}
	sp.spread = make([]int64, len(m.actual))
	for name, pods := range opportunistic {
		i, known := m.nodeIndex(name)
		for _, bp := range pods {
			if known && bp.Workload == s.Key && !bp.Terminating {
				sp.spread[i]++
			}
			if c.leaving[bp.Key] {
				if at, held := sp.pos[i]; known && held {
					sp.credit(at, bp.Requests, 1)
				}
				continue
			}
			if bp.Workload == s.Key && known && p.contains(i) {
				sp.own[i] = append(sp.own[i], bp)
			}
		}
	}
	for _, pods := range sp.own { // pods marked to go first are yielded first
		slices.SortStableFunc(pods, func(a, b capacity.BoundPod) int { return cmp.Compare(a.DeletionCost, b.DeletionCost) })
	}
	return sp
}

// nodeIndex finds a Ready node of the model by name.
func (m *model) nodeIndex(name string) (int, bool) {
	i, found := slices.BinarySearchFunc(m.actual, name, func(r capacity.NodeRoom, name string) int {
		return strings.Compare(r.Name, name)
	})
	return i, found
}

// credit adds sign times requests to the free room at position at.
func (sp *slotPlan) credit(at int, requests capacity.Resources, sign int64) {
	row := sp.free[at*len(sp.names) : (at+1)*len(sp.names)]
	for k, name := range sp.names {
		row[k] += sign * requests[name]
	}
}

// pack fits the wanted slots into free, biggest shape first, each over the
// nodes in order, and returns how many of each fit (by position in
// sp.shapes) and what they take, by node position. free is not changed.
// With early it stops once a shape falls short (the answer to "do all
// fit?" is then no); with where it records the nodes.
func (sp *slotPlan) pack(free []int64, early bool, where [][]NodeSlots) ([]int32, map[int][]int64) {
	fit := make([]int32, len(sp.shapes))
	used := map[int][]int64{}
	width := len(sp.names)
	idx := make([]int, 0, 4)
	for j := range sp.shapes {
		sh := &sp.shapes[j]
		idx = idx[:0]
		for _, name := range sh.names {
			idx = append(idx, slices.Index(sp.names, name))
		}
		want := sh.slot.Count
		for at := 0; at < len(sp.nodes) && fit[j] < want; at++ {
			if !sh.eligible[at] {
				continue
			}
			row, taken := free[at*width:(at+1)*width], used[at]
			n := int64(want - fit[j])
			for k, r := range idx {
				room := row[r]
				if taken != nil {
					room -= taken[r]
				}
				n = min(n, max(room/sh.request[k], 0))
			}
			if n <= 0 {
				continue
			}
			if taken == nil {
				taken = make([]int64, width)
				used[at] = taken
			}
			for k, r := range idx {
				taken[r] += n * sh.request[k]
			}
			fit[j] += int32(n)
			if where != nil {
				where[j] = append(where[j], NodeSlots{Node: sp.m.actual[sp.nodes[at]].Name, Slots: int32(n)})
			}
		}
		if early && fit[j] < want {
			return fit, used
		}
	}
	return fit, used
}

// allFit reports whether every slot fits on free, and where they are
// counted (by node position) when they do: less room on any other node
// leaves the answer as it is.
func (sp *slotPlan) allFit(free []int64) (bool, map[int][]int64) {
	fit, used := sp.pack(free, true, nil)
	for j := range sp.shapes {
		if fit[j] < sp.shapes[j].slot.Count {
			return false, nil
		}
	}
	return true, used
}

// fits reports the slots that fit on free, in the scaler's slot order.
func (sp *slotPlan) fits(free []int64) []SlotFit {
	where := make([][]NodeSlots, len(sp.shapes))
	fit, _ := sp.pack(free, false, where)
	out := make([]SlotFit, len(sp.p.s.Slots))
	for j := range sp.shapes {
		i := slotIndex(sp.p.s.Slots, sp.shapes[j].slot)
		out[i] = SlotFit{Name: sp.shapes[j].slot.Name, Wanted: sp.shapes[j].slot.Count, Fit: fit[j], Nodes: where[j]}
	}
	return out
}

func slotIndex(slots []Slot, s *Slot) int {
	for i := range slots {
		if &slots[i] == s {
			return i
		}
	}
	return -1
}

// decide caps a scaler whose recommendation is rec: grown by the new
// replicas that keep every slot, or shrunk by the pods that restore them.
func (sp *slotPlan) decide(rec int32, scoring capacity.Scoring) slotOutcome {
	s := sp.p.s
	if ok, _ := sp.allFit(sp.free); ok {
		out := slotOutcome{limit: sp.live}
		if want := int64(rec) - int64(sp.live); want > 0 {
			out.placements = sp.grow(want, scoring)
		}
		out.limit += int32(len(out.placements))
		if out.limit < rec {
			out.why = sp.explainGrowth(out.limit)
		}
		return out
	}
	before := sp.fits(sp.free)
	out := slotOutcome{limit: sp.live, short: true}
	if !sp.inFlux {
		out.victims = sp.restore(max(sp.live-s.Min, 0))
	}
	out.limit -= int32(len(out.victims))
	out.why = sp.explainYield(before, out.victims)
	return out
}

// grow predicts where up to n new replicas land, one at a time, as the
// scheduler's default profile would bind them (capacity.Placer: the
// cluster's Scoring, the balance of CPU and memory, and the default spread
// of a workload's pods over nodes and zones) among every Ready node a
// replica fits on, in the pool or not (the scheduler knows no pools); it
// stops before the first replica that would leave a slot unfit. It returns
// the nodes, in order.
func (sp *slotPlan) grow(n int64, scoring capacity.Scoring) []int {
	p := sp.p
	placer := capacity.NewPlacer(scoring, sp.m.actual, p.s.Shape, sp.spread)
	var placed []int
	_, counted := sp.allFit(sp.free)
	for int64(len(placed)) < n {
		i := placer.Next()
		if i < 0 {
			break
		}
		if at, held := sp.pos[i]; held {
			sp.credit(at, p.s.Shape.Requests, -1)
			if _, slotHere := counted[at]; slotHere { // else the packing is unchanged
				ok, now := sp.allFit(sp.free)
				if !ok {
					sp.credit(at, p.s.Shape.Requests, 1)
					break
				}
				counted = now
			}
		}
		placer.Place(i)
		placed = append(placed, i)
	}
	return placed
}

// restore chooses at most spare of the scaler's pods whose removal lets the
// missing slots fit, greedily: each step takes, on one node, the fewest pods
// that make room for at least one more missing slot (ties: more slots
// restored, then the node first by name), until every slot fits or no pod
// of the scaler helps. Room is what the packing left: slots already
// counted keep theirs.
func (sp *slotPlan) restore(spare int32) []slotVictim {
	left := slices.Clone(sp.free)
	fit, used := sp.pack(left, false, nil)
	for at, taken := range used {
		for r, v := range taken {
			left[at*len(sp.names)+r] -= v
		}
	}
	missing := make([]int32, len(sp.shapes))
	short := int32(0)
	for j := range sp.shapes {
		missing[j] = sp.shapes[j].slot.Count - fit[j]
		short += missing[j]
	}
	req := sp.p.s.Shape.Requests
	taken := map[int]int{} // pods already chosen, by model index
	var victims []slotVictim
	row := make([]int64, len(sp.names))
	for short > 0 && int32(len(victims)) < spare {
		bestNode, bestPods, bestGain := -1, 0, int32(0)
		for _, i := range sp.nodes {
			at := sp.pos[i]
			avail := len(sp.own[i]) - taken[i]
			for k := 1; k <= avail && int32(len(victims)+k) <= spare; k++ {
				if bestNode >= 0 && k > bestPods {
					break
				}
				copy(row, left[at*len(sp.names):(at+1)*len(sp.names)])
				for r, name := range sp.names {
					row[r] += int64(k) * req[name]
				}
				gain := sp.packNode(row, at, slices.Clone(missing))
				if gain == 0 {
					continue
				}
				if bestNode < 0 || k < bestPods || (k == bestPods && gain > bestGain) {
					bestNode, bestPods, bestGain = i, k, gain
				}
				break
			}
		}
		if bestNode < 0 {
			break
		}
		at := sp.pos[bestNode]
		row := left[at*len(sp.names) : (at+1)*len(sp.names)]
		for r, name := range sp.names {
			row[r] += int64(bestPods) * req[name]
		}
		short -= sp.packNodeInto(row, at, missing)
		for _, bp := range sp.own[bestNode][taken[bestNode] : taken[bestNode]+bestPods] {
			victims = append(victims, slotVictim{pod: bp, node: bestNode})
		}
		taken[bestNode] += bestPods
	}
	// A partial restore is kept: each pod chosen let a missing slot fit.
	return victims
}

// packNode is how many missing slots fit into one node's row (not changed).
func (sp *slotPlan) packNode(row []int64, at int, missing []int32) int32 {
	return sp.packNodeInto(slices.Clone(row), at, missing)
}

// packNodeInto fits missing slots, biggest first, into row (consumed),
// lowers missing by what fits, and returns how many fit.
func (sp *slotPlan) packNodeInto(row []int64, at int, missing []int32) int32 {
	total := int32(0)
	for j := range sp.shapes {
		sh := &sp.shapes[j]
		if missing[j] == 0 || !sh.eligible[at] {
			continue
		}
		n := int64(missing[j])
		for k, name := range sh.names {
			n = min(n, max(row[slices.Index(sp.names, name)]/sh.request[k], 0))
		}
		if n <= 0 {
			continue
		}
		for k, name := range sh.names {
			row[slices.Index(sp.names, name)] -= n * sh.request[k]
		}
		missing[j] -= int32(n)
		total += int32(n)
	}
	return total
}

// after returns the slots that fit once the first made placements are in
// and the victims are gone: what Decision.Slots reports. grow left every
// placement it accepted in sp.free.
func (sp *slotPlan) after(placements []int, made int, victims []slotVictim) []SlotFit {
	free := slices.Clone(sp.free)
	add := func(node int, requests capacity.Resources) {
		if at, held := sp.pos[node]; held {
			row := free[at*len(sp.names) : (at+1)*len(sp.names)]
			for k, name := range sp.names {
				row[k] += requests[name]
			}
		}
	}
	for _, i := range placements[min(max(made, 0), len(placements)):] {
		add(i, sp.p.s.Shape.Requests)
	}
	for _, v := range victims {
		add(v.node, v.pod.Requests)
	}
	return sp.fits(free)
}

func (sp *slotPlan) explainGrowth(limit int32) string {
	return fmt.Sprintf("%d replicas: one more would take room kept for %s", limit, describeSlots(sp.fits(sp.free)))
}

func (sp *slotPlan) explainYield(before []SlotFit, victims []slotVictim) string {
	short := describeShort(before)
	if len(victims) == 0 {
		if sp.inFlux {
			return fmt.Sprintf("%s: holding at %d until the ReplicaSet has removed the pods it is removing", short, sp.live)
		}
		if sp.live <= sp.p.s.Min {
			return fmt.Sprintf("%s: holding at min %d", short, sp.p.s.Min)
		}
		return fmt.Sprintf("%s, and removing no pod of this workload would restore one: holding at %d", short, sp.live)
	}
	var nodes []string
	for _, v := range victims {
		nodes = append(nodes, sp.m.actual[v.node].Name)
	}
	slices.Sort(nodes)
	nodes = slices.Compact(nodes)
	where := "node " + nodes[0]
	if len(nodes) > 1 {
		where = "nodes " + strings.Join(nodes, ", ")
	}
	return fmt.Sprintf("%s: yielding %s on %s", short, plural(len(victims), "replica"), where)
}

// describeSlots says how the slots fit: "4 of 4 web slots (a-1, b-2) and 2 of 2 big slots (c-1)".
func describeSlots(fits []SlotFit) string {
	parts := make([]string, 0, len(fits))
	for _, f := range fits {
		nodes := make([]string, 0, len(f.Nodes))
		for _, n := range f.Nodes {
			nodes = append(nodes, fmt.Sprintf("%d on %s", n.Slots, n.Node))
		}
		where := ""
		if len(nodes) > 0 {
			if len(nodes) > 4 {
				nodes = append(nodes[:4], fmt.Sprintf("%d more nodes", len(f.Nodes)-4))
			}
			where = " (" + strings.Join(nodes, ", ") + ")"
		}
		parts = append(parts, fmt.Sprintf("%d of %d %s slots%s", f.Fit, f.Wanted, f.Name, where))
	}
	return strings.Join(parts, " and ")
}

// describeShort names the slots that do not all fit: "3 of 4 web slots fit".
func describeShort(fits []SlotFit) string {
	var parts []string
	for _, f := range fits {
		if f.Fit < f.Wanted {
			parts = append(parts, fmt.Sprintf("%d of %d %s slots", f.Fit, f.Wanted, f.Name))
		}
	}
	return strings.Join(parts, " and ") + " fit"
}

// anySlots reports whether a scaler keeps slots.
func anySlots(scalers []Scaler) bool {
	return slices.ContainsFunc(scalers, func(s Scaler) bool { return len(s.Slots) > 0 })
}

// slotScalers indexes the scalers by key, for censusOf.
func slotScalers(scalers []Scaler) map[string]*Scaler {
	out := make(map[string]*Scaler, len(scalers))
	for i := range scalers {
		out[scalers[i].Key] = &scalers[i]
	}
	return out
}

// slotRound is what the scalers with slots share in a round.
type slotRound struct {
	census        census
	opportunistic map[string][]capacity.BoundPod
	scoring       capacity.Scoring
}

// affects reports whether the targeted yield holds or shrinks a scaler.
func (y *yieldPlan) affects(key string) bool {
	_, ok := y.fits[key]
	return ok
}

// slotYield names the first n victims (the count goes down by n), sorted.
func slotYield(victims []slotVictim, n int32) []string {
	var out []string
	for _, v := range victims[:min(max(int(n), 0), len(victims))] {
		out = append(out, v.pod.Key)
	}
	slices.Sort(out)
	return out
}
