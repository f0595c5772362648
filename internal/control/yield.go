package control

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

// Targeted yield. Without PriorityClasses nothing preempts: a pending paid
// pod waits until room frees on one node, and when a scaler shrinks, its
// ReplicaSet picks the pods to delete by its own ranking, so the room freed
// can land on nodes where the paid pod still fits nowhere. And the budget is
// a sum: a paid pod may be pending while the budget still allows every
// replica. So, as the scheduler's preemption would, for each paid pod that
// fits on no node but would if opportunistic pods left, choose the node and
// the fewest pods whose removal lets it in; the scalers owning them are held
// at their count minus those pods (Limit PendingPaid), and the controller
// marks exactly those pods to go first (pod-deletion-cost).

// yieldPlan is what Decide yields this round, by scaler key.
type yieldPlan struct {
	// victims are the pods to remove, sorted.
	victims map[string][]string
	// fits are the replicas each affected scaler may keep: those that stay
	// bound once its ReplicaSet has removed the victims (and its unbound
	// pods, which it removes first, and which would race the paid pods for
	// the freed room). Decide caps its fit there.
	fits map[string]int32
	// why says, per affected scaler, which paid pods it yields to.
	why map[string]string
}

// planYield chooses, for the pending paid pods that only a yield lets in,
// the opportunistic pods to remove. Paid pods are served highest priority
// first, then by key; each one served is placed on its node for the next.
// A paid pod takes from a scaler only when its priority is at least the
// scaler's pods' (paid work wins ties), and never below the scaler's Min.
// It costs O(pending paid pods) when they all fit somewhere now.
// counted, when not nil, is the round's census of the opportunistic pods
// (the slots take it): the plan reads it rather than count them again.
func planYield(c Cluster, scalers []Scaler, counted *census) yieldPlan {
	waiting := waitingPaid(c.Pending, scalers)
	if len(waiting) == 0 {
		return yieldPlan{}
	}
	y := newYieldState(c, scalers)
	y.census = counted
	for i := range waiting {
		y.serve(&waiting[i])
	}
	return y.plan()
}

// waitingPaid returns the pending paid pods that some scaler yields to,
// highest priority first, then by key.
func waitingPaid(pending []capacity.PendingPod, scalers []Scaler) []capacity.PendingPod {
	lowest := int32(math.MaxInt32)
	for i := range scalers {
		lowest = min(lowest, scalers[i].PodPriority)
	}
	var out []capacity.PendingPod
	for _, pp := range pending {
		if paidDemand(&pp) && !pp.Terminating && pp.Priority >= lowest {
			out = append(out, pp)
		}
	}
	slices.SortFunc(out, func(a, b capacity.PendingPod) int {
		return cmp.Or(cmp.Compare(b.Priority, a.Priority), strings.Compare(a.Key(), b.Key()))
	})
	return out
}

// yieldState is planYield's working view of the nodes. The rooms are the
// caller's, never changed: what the plan places and frees is kept apart as
// room handed back per node (capacity.FitWith's credit), so a round with
// nothing to yield copies nothing.
type yieldState struct {
	c     Cluster
	rooms []capacity.NodeRoom
	// adjust is, by node name, the room freed minus the room taken by the
	// paid pods placed so far.
	adjust  map[string]capacity.Resources
	scalers map[string]*yieldScaler
	// Built on first need, when a paid pod fits nowhere now.
	counted bool
	census  *census // the round's, when the slots counted the pods already
	// leaving holds the pods whose room is about to come free: terminating
	// ones, those the ReplicaSet will remove (already yielded), and those
	// chosen as victims in this plan.
	leaving map[string]bool
	// handedOut holds the leaving pods whose room a paid pod took already.
	handedOut map[string]bool
}

type yieldScaler struct {
	s *Scaler
	// live counts its bound pods not leaving; spare how many may go.
	live, spare int32
	victims     []string
	affected    bool
	// inFlux: its ReplicaSet is removing pods that their deletion cost does
	// not single out, so which room comes free is unknown until they
	// terminate. It gives no victims meanwhile and is held where it is.
	inFlux     bool
	servedPods []string
	nodes      []string
}

func newYieldState(c Cluster, scalers []Scaler) *yieldState {
	// Nodes that are not Ready stay in rooms: capacity.Fit never places on them.
	y := &yieldState{c: c, rooms: canonicalOrder(c), adjust: map[string]capacity.Resources{},
		scalers: make(map[string]*yieldScaler, len(scalers)), handedOut: map[string]bool{}}
	for i := range scalers {
		y.scalers[scalers[i].Key] = &yieldScaler{s: &scalers[i]}
	}
	return y
}

// countPods reads the opportunistic pods once: how many of each scaler stay
// bound, and which are leaving (censusOf).
func (y *yieldState) countPods() {
	y.counted = true
	if y.census == nil {
		scalers := make(map[string]*Scaler, len(y.scalers))
		for key, ys := range y.scalers {
			scalers[key] = ys.s
		}
		c := censusOf(y.c.Opportunistic, scalers)
		y.census = &c
	}
	c := y.census
	y.leaving = maps.Clone(c.leaving) // the plan adds its victims: the census stays as counted
	for key, ys := range y.scalers {
		ys.live, ys.inFlux = c.live[key], c.inFlux[key]
		if !ys.inFlux {
			ys.spare = max(ys.live-ys.s.Min, 0)
		}
	}
}

// census is what the opportunistic pods say about the scalers' pods.
type census struct {
	// leaving holds the pods whose room is about to come free.
	leaving map[string]bool
	// live counts, by scaler key, its bound pods that are not leaving.
	live map[string]int32
	// inFlux: the scaler's ReplicaSet is removing pods that their deletion
	// cost does not single out, so which room comes free is unknown.
	inFlux map[string]bool
}

// censusOf reads the opportunistic pods once. Terminating pods are leaving.
// A ReplicaSet whose count is below its bound pods removes the difference,
// unassigned pods first, then the lowest deletion cost (among equally ready
// pods): those are leaving when their cost sets them apart, as the victims
// of an earlier round do; otherwise the scaler is in flux.
func censusOf(opportunistic map[string][]capacity.BoundPod, scalers map[string]*Scaler) census {
	c := census{leaving: map[string]bool{}, live: map[string]int32{}, inFlux: map[string]bool{}}
	byScaler := map[string][]capacity.BoundPod{}
	for _, list := range opportunistic {
		for _, bp := range list {
			if bp.Terminating {
				c.leaving[bp.Key] = true
			} else if scalers[bp.Workload] != nil {
				byScaler[bp.Workload] = append(byScaler[bp.Workload], bp)
			}
		}
	}
	for key, s := range scalers {
		pods := byScaler[key]
		live := int32(len(pods))
		if excess := live - s.Current; excess > 0 {
			slices.SortFunc(pods, func(a, b capacity.BoundPod) int {
				return cmp.Or(cmp.Compare(a.DeletionCost, b.DeletionCost), strings.Compare(a.Key, b.Key))
			})
			if excess == live || pods[excess-1].DeletionCost < pods[excess].DeletionCost {
				for _, bp := range pods[:excess] {
					c.leaving[bp.Key] = true
				}
			} else {
				c.inFlux[key] = true
			}
			live = s.Current
		}
		c.live[key] = live
	}
	return c
}

// serve finds room for one paid pod: where it fits now, or else where the
// fewest victims let it in.
func (y *yieldState) serve(pp *capacity.PendingPod) {
	shape := pp.Shape()
	if i := firstFit(y.rooms, shape, y.adjust); i >= 0 {
		y.place(i, pp.Requests, nil)
		return
	}
	if !y.counted {
		y.countPods()
	}
	for _, ys := range y.scalers {
		if ys.inFlux && ys.s.PodPriority <= pp.Priority { // hold it: its next pods to go may be the ones pp needs
			ys.affected = true
			ys.servedPods = append(ys.servedPods, pp.Key())
		}
	}
	credit, found := map[string]capacity.Resources{}, false
	for name, adj := range y.adjust {
		credit[name] = adj.Clone()
	}
	for name, pods := range y.c.Opportunistic {
		for _, bp := range pods {
			if y.freeing(&bp) || y.candidate(&bp, pp) != nil {
				if credit[name] == nil {
					credit[name] = capacity.Resources{}
				}
				credit[name].Add(bp.Requests)
				found = true
			}
		}
	}
	if !found {
		return
	}
	var best *yieldChoice
	for i, f := range capacity.FitWith(y.rooms, shape, credit).Nodes {
		if f.Replicas == 0 {
			continue
		}
		if c := y.chooseOn(i, pp); c != nil && (best == nil || c.better(best, y.rooms)) {
			best = c
		}
	}
	if best == nil {
		return
	}
	for _, v := range best.victims {
		ys := y.scalers[v.Workload]
		ys.victims = append(ys.victims, v.Key)
		ys.spare--
		y.leaving[v.Key] = true
	}
	node := y.rooms[best.node].Name
	freed := capacity.Resources{}
	for _, bp := range y.c.Opportunistic[node] { // the leaving pods' room goes to pp
		if !y.freeing(&bp) {
			continue
		}
		freed.Add(bp.Requests)
		y.handedOut[bp.Key] = true
		if ys := y.scalers[bp.Workload]; ys != nil {
			ys.affected = true
			ys.servedPods = append(ys.servedPods, pp.Key())
			ys.nodes = append(ys.nodes, node)
		}
	}
	y.place(best.node, pp.Requests, freed)
}

// freeing reports whether a pod's room is coming free and not yet handed
// out to an earlier paid pod.
func (y *yieldState) freeing(bp *capacity.BoundPod) bool {
	return y.leaving[bp.Key] && !y.handedOut[bp.Key]
}

// candidate returns the scaler a pod may be taken from for pp, or nil.
// Pods of a lower priority than pp are the scheduler's to preempt, unless
// pp never preempts: yielding one of them too would cost a second pod.
func (y *yieldState) candidate(bp *capacity.BoundPod, pp *capacity.PendingPod) *yieldScaler {
	ys := y.scalers[bp.Workload]
	if ys == nil || y.leaving[bp.Key] || ys.spare <= 0 || ys.s.PodPriority > pp.Priority {
		return nil
	}
	if ys.s.PodPriority < pp.Priority && (pp.Scheduling == nil || !pp.Scheduling.NeverPreempts) {
		return nil
	}
	return ys
}

// place puts a paid pod's requests on node i, once freed is handed back.
func (y *yieldState) place(i int, requests, freed capacity.Resources) {
	adj := y.adjust[y.rooms[i].Name]
	if adj == nil {
		adj = capacity.Resources{}
		y.adjust[y.rooms[i].Name] = adj
	}
	adj.Add(freed)
	adj.Sub(requests)
}

// yieldChoice is the victims that let a paid pod in on one node.
type yieldChoice struct {
	node    int
	victims []capacity.BoundPod
	// highest is the highest scaler priority among the victims.
	highest int32
	room    capacity.Resources
}

// better orders the choices as the scheduler's preemption does, in the
// scalers' terms: the lowest-priority scalers' pods first, then the fewest
// pods, then the least room taken from them, then the smaller node (a big
// node stays whole for big pods), then the node name.
func (c *yieldChoice) better(o *yieldChoice, rooms []capacity.NodeRoom) bool {
	if c.highest != o.highest {
		return c.highest < o.highest
	}
	if len(c.victims) != len(o.victims) {
		return len(c.victims) < len(o.victims)
	}
	if d := compareRoom(c.room, o.room); d != 0 {
		return d < 0
	}
	if d := compareRoom(rooms[c.node].Allocatable, rooms[o.node].Allocatable); d != 0 {
		return d < 0
	}
	return c.node < o.node // rooms are in canonicalOrder: names only split twins
}

// chooseOn picks the victims on node i that let pp in, or nil when its
// candidates cannot: the lowest scaler priorities that suffice, the fewest
// pods among them, then those whose removal suffices most exactly.
func (y *yieldState) chooseOn(i int, pp *capacity.PendingPod) *yieldChoice {
	r := &y.rooms[i]
	need := capacity.Resources{}
	var cands []capacity.BoundPod
	for _, bp := range y.c.Opportunistic[r.Name] {
		if y.freeing(&bp) {
			need.Sub(bp.Requests)
		} else if y.candidate(&bp, pp) != nil {
			cands = append(cands, bp)
		}
	}
	short := false
	for name, v := range pp.Requests {
		need[name] += v - r.Free(name) - y.adjust[r.Name][name]
		short = short || (v > 0 && need[name] > 0)
	}
	if !short { // the leaving pods' room suffices
		return &yieldChoice{node: i, highest: math.MinInt32}
	}
	prio := func(bp capacity.BoundPod) int32 { return y.scalers[bp.Workload].s.Priority }
	slices.SortFunc(cands, func(a, b capacity.BoundPod) int { return cmp.Compare(prio(a), prio(b)) })
	for end := 0; end < len(cands); {
		end++ // widen to the next scaler priority
		for end < len(cands) && prio(cands[end]) == prio(cands[end-1]) {
			end++
		}
		if victims := y.cover(cands[:end], need); victims != nil {
			c := &yieldChoice{node: i, victims: victims, highest: math.MinInt32, room: capacity.Resources{}}
			for _, v := range victims {
				c.highest = max(c.highest, prio(v))
				c.room.Add(v.Requests)
			}
			return c
		}
	}
	return nil
}

// cover returns the fewest of cands whose requests cover need, or nil. It
// takes the pods that cover most of the need first (fewest victims in one
// resource), drops any that turn out not to be needed, then swaps each for
// a smaller one that still suffices (the exact fit, like a best fit), never
// taking more of a scaler than its spare.
func (y *yieldState) cover(cands []capacity.BoundPod, need capacity.Resources) []capacity.BoundPod {
	names := need.Names()
	share := func(bp capacity.BoundPod) float64 {
		s := 0.0
		for _, name := range names {
			if n := need[name]; n > 0 {
				s += float64(min(bp.Requests[name], n)) / float64(n)
			}
		}
		return s
	}
	order := slices.Clone(cands)
	slices.SortStableFunc(order, func(a, b capacity.BoundPod) int {
		return cmp.Or(cmp.Compare(share(b), share(a)), compareRoom(a.Requests, b.Requests), strings.Compare(a.Key, b.Key))
	})
	covers := func(set []capacity.BoundPod) bool {
		for _, name := range names {
			if n := need[name]; n > 0 {
				for _, bp := range set {
					n -= bp.Requests[name]
				}
				if n > 0 {
					return false
				}
			}
		}
		return true
	}
	taken := map[string]int32{}
	withinSpare := func(bp capacity.BoundPod) bool { return taken[bp.Workload] < y.scalers[bp.Workload].spare }
	set := func(idx []int) []capacity.BoundPod {
		out := make([]capacity.BoundPod, len(idx))
		for k, j := range idx {
			out[k] = order[j]
		}
		return out
	}
	var picked []int // indexes in order
	for j, bp := range order {
		if covers(set(picked)) {
			break
		}
		if withinSpare(bp) {
			picked = append(picked, j)
			taken[bp.Workload]++
		}
	}
	if !covers(set(picked)) {
		return nil
	}
	for k := len(picked) - 1; k >= 0; k-- { // reprieve what is not needed
		rest := slices.Delete(slices.Clone(picked), k, k+1)
		if covers(set(rest)) {
			taken[order[picked[k]].Workload]--
			picked = rest
		}
	}
	for k := range picked { // swap for the smallest pod that still suffices
		cur, best := order[picked[k]], -1
		for j, alt := range order {
			if slices.Contains(picked, j) || compareRoom(alt.Requests, cur.Requests) >= 0 ||
				alt.Workload != cur.Workload && !withinSpare(alt) ||
				best >= 0 && compareRoom(alt.Requests, order[best].Requests) >= 0 {
				continue
			}
			trial := slices.Clone(picked)
			trial[k] = j
			if covers(set(trial)) {
				best = j
			}
		}
		if best >= 0 {
			taken[cur.Workload]--
			taken[order[best].Workload]++
			picked[k] = best
		}
	}
	out := set(picked)
	slices.SortFunc(out, func(a, b capacity.BoundPod) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// compareRoom orders amounts of room: fewer cores first, then less memory,
// then the other resources in report order.
func compareRoom(a, b capacity.Resources) int {
	names := append(a.Names(), b.Names()...)
	capacity.SortNames(names)
	for _, name := range names {
		if c := cmp.Compare(a[name], b[name]); c != 0 {
			return c
		}
	}
	return 0
}

// plan turns the state into the caps and victims of each affected scaler.
func (y *yieldState) plan() yieldPlan {
	out := yieldPlan{}
	for key, ys := range y.scalers {
		if !ys.affected && len(ys.victims) == 0 {
			continue
		}
		if out.fits == nil {
			out.fits, out.victims, out.why = map[string]int32{}, map[string][]string{}, map[string]string{}
		}
		out.fits[key] = ys.live - int32(len(ys.victims))
		slices.Sort(ys.victims)
		if len(ys.victims) > 0 {
			out.victims[key] = ys.victims
		}
		out.why[key] = ys.explain()
	}
	return out
}

func (ys *yieldScaler) explain() string {
	served := slices.Compact(slices.Sorted(slices.Values(ys.servedPods)))
	paid := "pending paid pod " + strings.Join(served, ", ")
	if len(served) > 1 {
		paid = "pending paid pods " + strings.Join(served, ", ")
	}
	nodes := strings.Join(slices.Compact(slices.Sorted(slices.Values(ys.nodes))), ", ")
	switch {
	case len(ys.victims) == 0 && nodes == "":
		return fmt.Sprintf("holding at %d for %s until the ReplicaSet has removed the pods it is removing", ys.live, paid)
	case len(ys.victims) == 0:
		return fmt.Sprintf("holding at %d for %s: room coming free on %s", ys.live, paid, nodes)
	}
	return fmt.Sprintf("yielding %s (%s) on %s to %s", plural(len(ys.victims), "pod"), strings.Join(ys.victims, ", "), nodes, paid)
}

// firstFit returns the first of rooms where one pod of shape fits, or -1.
// It asks capacity.Fit in chunks that double, so that a pod that fits stops
// after a few nodes and one that fits nowhere costs about two full fits.
func firstFit(rooms []capacity.NodeRoom, shape capacity.Shape, credit map[string]capacity.Resources) int {
	for i, chunk := 0, 8; i < len(rooms); i, chunk = i+chunk, chunk*2 {
		for j, f := range capacity.FitWith(rooms[i:min(i+chunk, len(rooms))], shape, credit).Nodes {
			if f.Replicas > 0 {
				return i + j
			}
		}
	}
	return -1
}

// canonicalOrder returns the rooms in an order that does not depend on the
// nodes' names: most free room first (where the scheduler's default
// LeastAllocated scoring sends a pod that fits now), then the larger node,
// then what else sets nodes apart (labels but the hostname, taints, state,
// the opportunistic pods they hold). Only nodes alike in all of that, which
// are interchangeable, are ordered by name. The caller's rooms are not changed.
func canonicalOrder(c Cluster) []capacity.NodeRoom {
	// Keys are computed once per node: a round with paid pods pending sorts
	// every node, and comparing maps would allocate on each comparison.
	seen := map[corev1.ResourceName]bool{}
	for i := range c.Rooms {
		for name := range c.Rooms[i].Allocatable {
			seen[name] = true
		}
	}
	names := slices.Collect(maps.Keys(seen))
	capacity.SortNames(names)
	k := len(names)
	keys := make([]int64, 2*k*len(c.Rooms)) // per node: free, then allocatable, in names' order
	for i := range c.Rooms {
		r := &c.Rooms[i]
		for j, name := range names {
			keys[2*k*i+j] = r.Free(name)
			keys[2*k*i+k+j] = r.Allocatable[name]
		}
	}
	signatures := make([]uint64, len(c.Rooms))
	for i := range c.Rooms {
		signatures[i] = signatureOf(&c.Rooms[i], c.Opportunistic[c.Rooms[i].Name])
	}
	order := make([]int, len(c.Rooms))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		ka, kb := keys[2*k*a:2*k*(a+1)], keys[2*k*b:2*k*(b+1)]
		if d := slices.Compare(kb, ka); d != 0 { // most free room, then the larger node, first
			return d
		}
		return cmp.Or(cmp.Compare(signatures[a], signatures[b]), strings.Compare(c.Rooms[a].Name, c.Rooms[b].Name))
	})
	rooms := make([]capacity.NodeRoom, len(order))
	for j, i := range order {
		rooms[j] = c.Rooms[i]
	}
	return rooms
}

// signatureOf describes a node by everything but its name, as a hash: its
// state, labels (but the hostname), taints and opportunistic pods. Each item
// is hashed alone and the hashes summed, so the order of maps and lists does
// not matter and nothing is allocated. Nodes alike in all of that are
// interchangeable; two that differ but collide are ordered by name.
func signatureOf(r *capacity.NodeRoom, pods []capacity.BoundPod) uint64 {
	sum := mix(fnvInt(fnvOffset, int64(r.State)))
	for k, v := range r.Labels {
		if k != corev1.LabelHostname {
			sum += mix(fnvString(fnvInt(fnvString(fnvOffset+1, k), 0), v))
		}
	}
	for _, t := range r.Taints {
		sum += mix(fnvString(fnvInt(fnvString(fnvInt(fnvString(fnvOffset+2, t.Key), 0), t.Value), 0), string(t.Effect)))
	}
	for _, bp := range pods {
		var requests uint64
		for name, v := range bp.Requests {
			requests += mix(fnvInt(fnvString(fnvOffset+4, string(name)), v))
		}
		terminating := int64(0)
		if bp.Terminating {
			terminating = 1
		}
		h := fnvInt(fnvInt(fnvInt(fnvString(fnvOffset+3, bp.Workload), int64(requests)), int64(bp.DeletionCost)), terminating)
		sum += mix(h)
	}
	return sum
}

// FNV-1a, written out so that hashing a node allocates nothing.
const fnvOffset, fnvPrime = 14695981039346656037, 1099511628211

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func fnvInt(h uint64, v int64) uint64 {
	for i := range 8 {
		h ^= uint64(byte(v >> (8 * i)))
		h *= fnvPrime
	}
	return h
}

// mix spreads a hash's bits (splitmix64's finaliser), so that sums of item
// hashes do not cancel out.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}
