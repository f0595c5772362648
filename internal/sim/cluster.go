package sim

import (
	"cmp"
	"container/heap"
	"math"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
)

// namespace holds every simulated pod.
const namespace = "sim"

// world is one simulated cluster: nodes, ReplicaSets and their pods, a
// scheduler, and the capacity ledger that the strategies read, fed exactly
// as the informers feed it in a real cluster (internal/cluster).
type world struct {
	sc         *Scenario
	now        time.Duration
	priorities bool

	nodes []*node
	rooms []capacity.NodeRoom // parallel to nodes: the scheduler's view, updated in place
	// scoring is the scheduler's NodeResourcesFit strategy ("": LeastAllocated).
	scoring capacity.Scoring
	groups  map[string][]int // node indexes by group name
	ledger  *capacity.Ledger

	paid, opp []*replicaSet
	sets      []*replicaSet // paid, then opportunistic
	pending   []*pod        // unbound pods
	timers    timerHeap
	podSeq    int

	// version counts the ledger's changes: event-driven controllers run
	// when it moves.
	version uint64
	// reschedule is set when something happened that may let a pending pod in.
	reschedule bool
	// virtualOpp: opportunistic ReplicaSets make no pods (the instant law's world).
	virtualOpp bool
	// scalers are the opportunistic workloads' scalers at rest
	// (Scenario.restingScalers): their pools and headroom.
	scalers []control.Scaler

	// Running totals in milli-cores, over Ready nodes.
	allocCPU     int64
	boundPaidCPU int64 // paid pods bound, terminating ones included (they hold room)
	boundOppCPU  int64
	readyOppCPU  int64 // opportunistic pods Ready and not terminating: what is harvested
	paidDemand   int64 // paid pods not terminating, bound or not (nor stranded on a node that is down)
	// The opportunistic pool: nodes some opportunistic workload may use
	// (its pool selector and capacity.Eligible), as the control law counts
	// its pools. Overshoot is measured there: room on nodes no
	// opportunistic pod may use is no room to fill.
	inPool      []bool // by node
	poolCPU     int64  // allocatable of the pool's Ready nodes
	paidPoolCPU int64  // paidDemand of the paid sets that may run in the pool
	pendingPaid int    // paid pods not bound
	// maxPaidWait is the longest a paid pod waited to be bound.
	maxPaidWait time.Duration
}

type node struct {
	index int
	name  string
	group string
	spec  capacity.Node
	pods  []*pod // bound, terminating ones included
	// downSince is when the node last went down: its pods are evicted
	// the scenario's PodEvictionTimeout later.
	downSince time.Duration
}

// replicaSet keeps Replicas pods of one template, as the ReplicaSet
// controller does.
type replicaSet struct {
	name     string
	paid     bool
	index    int // in world.opp or world.paid
	pods     Pods
	labels   map[string]string
	cpu      int64
	priority int32
	// preempts: the scheduler may preempt lower-priority pods for this
	// ReplicaSet's pods (PriorityClasses on, and a preemptionPolicy of
	// PreemptLowerPriority: Pods.Preempts).
	preempts bool
	eligible []bool // by node: taints, selector and affinity allow it
	inPool   bool   // a paid set that may run on a node of the opportunistic pool

	replicas int32
	active   []*pod // not terminating: pending or bound
	ready    int32  // active pods that are Ready
	seq      int

	// Scale events made by the strategy (opportunistic sets only).
	scales, directionChanges int
	lastDirection            int
}

type pod struct {
	id          int
	name        string
	rs          *replicaSet
	node        int // -1 while pending
	created     time.Duration
	readyAt     time.Duration // binding + startup: when it is Ready on a Ready node
	readySince  time.Duration
	ready       bool
	terminating bool
	gone        bool
	nominated   int // node the pod preempted for, -1 if none
	// cost is the pod-deletion-cost annotation: the ReplicaSet deletes
	// lower costs first among equally ready pods.
	cost int32
}

func newWorld(sc *Scenario, virtualOpp bool) *world {
	w := &world{sc: sc, priorities: sc.PriorityClasses, scoring: sc.SchedulerScoring, groups: map[string][]int{}, virtualOpp: virtualOpp,
		scalers: sc.restingScalers()}
	var workloads []capacity.Workload
	for i := range sc.Opportunistic {
		o := &sc.Opportunistic[i]
		workloads = append(workloads, capacity.Workload{Key: namespace + "/" + o.Name, Namespace: namespace, Selector: labels.SelectorFromSet(labels.Set{"app": o.Name})})
	}
	w.ledger = capacity.NewLedger(workloads)
	for _, g := range sc.NodeGroups {
		for i := 1; i <= g.Count; i++ {
			name := g.Name + "-" + strconv.Itoa(i)
			lbls := map[string]string{corev1.LabelHostname: name, "opportunist.io/node-group": g.Name}
			for k, v := range g.Labels {
				lbls[k] = v
			}
			n := &node{index: len(w.nodes), name: name, group: g.Name, spec: capacity.Node{
				Name: name, Labels: lbls, Taints: g.Taints, Ready: true, Capacity: g.Allocatable, Allocatable: g.Allocatable,
			}}
			w.groups[g.Name] = append(w.groups[g.Name], n.index)
			w.nodes = append(w.nodes, n)
			w.rooms = append(w.rooms, capacity.NodeRoom{
				Name: name, Labels: lbls, Taints: g.Taints, State: capacity.NodeReady,
				Allocatable: g.Allocatable, Requested: capacity.Resources{}, OpportunisticRequested: capacity.Resources{},
			})
			w.ledger.UpsertNode(n.spec)
			w.allocCPU += g.Allocatable[corev1.ResourceCPU]
		}
	}
	for i := range sc.Paid {
		rs := w.newSet(sc.Paid[i].Name, sc.Paid[i].Pods, true)
		rs.index = len(w.paid)
		w.paid = append(w.paid, rs)
	}
	for i := range sc.Opportunistic {
		o := &sc.Opportunistic[i]
		rs := w.newSet(o.Name, o.Pods, false)
		rs.index = len(w.opp)
		rs.replicas = o.Replicas
		w.opp = append(w.opp, rs)
	}
	w.sets = append(append([]*replicaSet(nil), w.paid...), w.opp...)
	w.inPool = make([]bool, len(w.nodes))
	for i, n := range w.nodes {
		for j, rs := range w.opp {
			sel := w.scalers[j].PoolSelector
			if rs.eligible[i] && (sel == nil || sel.Matches(labels.Set(n.spec.Labels))) {
				w.inPool[i] = true
			}
		}
		if w.inPool[i] {
			w.poolCPU += n.spec.Allocatable[corev1.ResourceCPU]
		}
	}
	for _, rs := range w.paid {
		for i := range w.nodes {
			rs.inPool = rs.inPool || rs.eligible[i] && w.inPool[i]
		}
	}
	return w
}

func (w *world) newSet(name string, p Pods, paid bool) *replicaSet {
	rs := &replicaSet{name: name, paid: paid, pods: p, labels: map[string]string{"app": name}, cpu: p.Shape.Requests[corev1.ResourceCPU]}
	if w.priorities {
		rs.priority = p.Priority
		rs.preempts = p.Preempts
	}
	// A node is eligible when its taints, the pods' node selector and
	// affinity allow it, whatever its room: the rule of the control law's
	// pools. Node state is checked where it is used (nodes go down and up).
	for _, r := range w.rooms {
		r.State = capacity.NodeReady
		ok, _ := capacity.Eligible(&r, p.Shape)
		rs.eligible = append(rs.eligible, ok)
	}
	return rs
}

// ---- pods ----

func (w *world) ledgerPod(p *pod) capacity.Pod {
	out := capacity.Pod{Namespace: namespace, Name: p.name, Labels: p.rs.labels, Priority: p.rs.priority, Requests: p.rs.pods.Shape.Requests,
		Terminating: p.terminating, DeletionCost: p.cost}
	if p.node >= 0 {
		out.NodeName = w.nodes[p.node].name
	} else {
		out.Scheduling = &capacity.Scheduling{NodeSelector: p.rs.pods.Shape.NodeSelector, Affinity: p.rs.pods.Shape.Affinity,
			Tolerations: p.rs.pods.Shape.Tolerations, NeverPreempts: !p.rs.preempts}
	}
	return out
}

func (w *world) createPod(rs *replicaSet) {
	rs.seq++
	w.podSeq++
	p := &pod{id: w.podSeq, name: rs.name + "-" + strconv.Itoa(rs.seq), rs: rs, node: -1, nominated: -1, created: w.now}
	rs.active = append(rs.active, p)
	w.pending = append(w.pending, p)
	if rs.paid {
		w.paidDemand += rs.cpu
		if rs.inPool {
			w.paidPoolCPU += rs.cpu
		}
		w.pendingPaid++
	}
	w.ledger.UpsertPod(w.ledgerPod(p))
	w.version++
	w.reschedule = true
}

func (w *world) bind(p *pod, i int) {
	w.pending = slices.DeleteFunc(w.pending, func(q *pod) bool { return q == p })
	p.node, p.nominated = i, -1
	n := w.nodes[i]
	n.pods = append(n.pods, p)
	w.rooms[i].Requested.Add(p.rs.pods.Shape.Requests)
	if p.rs.paid {
		w.boundPaidCPU += p.rs.cpu
		w.pendingPaid--
		w.maxPaidWait = max(w.maxPaidWait, w.now-p.created)
	} else {
		w.rooms[i].OpportunisticRequested.Add(p.rs.pods.Shape.Requests)
		w.boundOppCPU += p.rs.cpu
	}
	w.ledger.UpsertPod(w.ledgerPod(p))
	w.version++
	p.readyAt = w.now + p.rs.pods.Startup
	if p.rs.pods.Startup <= 0 {
		w.setReady(p)
	} else {
		heap.Push(&w.timers, timer{at: w.now + p.rs.pods.Startup, seq: p.id, pod: p, ready: true})
	}
}

func (w *world) setReady(p *pod) {
	if p.gone || p.terminating || p.node < 0 || p.ready || !w.nodes[p.node].spec.Ready {
		return
	}
	p.ready, p.readySince = true, w.now
	p.rs.ready++
	if !p.rs.paid {
		w.readyOppCPU += p.rs.cpu
	}
}

// deletePod deletes a pod as the API server does: an unbound pod goes at
// once; a bound one terminates and holds its room for its grace period.
func (w *world) deletePod(p *pod) {
	if p.terminating || p.gone {
		return
	}
	rs := p.rs
	rs.active = slices.DeleteFunc(rs.active, func(q *pod) bool { return q == p })
	if p.ready {
		rs.ready--
		if !rs.paid {
			w.readyOppCPU -= rs.cpu
		}
	}
	if rs.paid && w.demands(p) {
		w.paidDemand -= rs.cpu
		if rs.inPool {
			w.paidPoolCPU -= rs.cpu
		}
	}
	if p.node < 0 {
		w.pending = slices.DeleteFunc(w.pending, func(q *pod) bool { return q == p })
		if rs.paid {
			w.pendingPaid--
			w.maxPaidWait = max(w.maxPaidWait, w.now-p.created) // it waited until it was no longer wanted
		}
		p.gone = true
		w.ledger.DeletePod(namespace, p.name)
		w.version++
		return
	}
	p.terminating = true
	if rs.pods.Grace <= 0 {
		w.removePod(p)
		return
	}
	w.ledger.UpsertPod(w.ledgerPod(p)) // its deletionTimestamp is set
	w.version++
	heap.Push(&w.timers, timer{at: w.now + rs.pods.Grace, seq: p.id, pod: p})
}

// demands: a paid pod that is not terminating counts as paid demand unless
// it is stranded on a node that is down (as the controller's pools count
// it); once evicted, its replacement does.
func (w *world) demands(p *pod) bool {
	return p.node < 0 || w.nodes[p.node].spec.Ready
}

// removePod takes a bound pod off its node for good.
func (w *world) removePod(p *pod) {
	if p.gone {
		return
	}
	p.gone = true
	i := p.node
	n := w.nodes[i]
	n.pods = slices.DeleteFunc(n.pods, func(q *pod) bool { return q == p })
	w.rooms[i].Requested.Sub(p.rs.pods.Shape.Requests)
	if w.rooms[i].State == capacity.NodeReady {
		if p.rs.paid {
			w.boundPaidCPU -= p.rs.cpu
		} else {
			w.boundOppCPU -= p.rs.cpu
		}
	}
	if !p.rs.paid {
		w.rooms[i].OpportunisticRequested.Sub(p.rs.pods.Shape.Requests)
	}
	w.ledger.DeletePod(namespace, p.name)
	w.version++
	w.reschedule = true
}

// ---- timers ----

type timer struct {
	at    time.Duration
	seq   int
	pod   *pod
	ready bool // else: the end of a termination
	// evict: the pod eviction timeout of node (pod is nil).
	evict bool
	node  int
}

type timerHeap []timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// fireTimers runs the pod transitions due by now.
func (w *world) fireTimers() {
	for len(w.timers) > 0 && w.timers[0].at <= w.now {
		w.fire(heap.Pop(&w.timers).(timer))
	}
}

// settle plays out the start-ups and terminations pending at time zero:
// the cluster has run for a while, its pods are placed and Ready. Node
// evictions keep their time.
func (w *world) settle() {
	var keep []timer
	for len(w.timers) > 0 {
		t := heap.Pop(&w.timers).(timer)
		if t.evict {
			keep = append(keep, t)
			continue
		}
		w.fire(t)
	}
	for _, t := range keep {
		heap.Push(&w.timers, t)
	}
}

// fire runs one timer.
func (w *world) fire(t timer) {
	switch {
	case t.evict:
		w.evict(t.node)
	case t.ready:
		w.setReady(t.pod)
	default:
		w.removePod(t.pod)
	}
}

// evict deletes the pods of a node that has been down for the pod
// eviction timeout, as the node lifecycle controller's taint eviction
// does: their ReplicaSets replace them. The node cannot confirm that they
// stopped, and it is not room while down, so they go at once.
func (w *world) evict(i int) {
	n := w.nodes[i]
	if n.spec.Ready || w.now < n.downSince+w.sc.PodEvictionTimeout {
		return // back since, or down again later: a later timer evicts
	}
	for _, p := range slices.Clone(n.pods) {
		w.deletePod(p)
		w.removePod(p)
	}
}

// ---- nodes ----

// setNode takes a node down or brings it back. Its pods stay on it, not
// Ready, still counted by their ReplicaSets, until the pod eviction
// timeout evicts them; a node back before that has them Ready again (their
// containers kept running). While down, the node is no room and what its
// pods request is not counted as bound.
func (w *world) setNode(i int, up bool) {
	n := w.nodes[i]
	if n.spec.Ready == up {
		return
	}
	cpu := n.spec.Allocatable[corev1.ResourceCPU]
	sign := int64(1)
	if !up {
		sign = -1
		w.allocCPU -= cpu
		if w.inPool[i] {
			w.poolCPU -= cpu
		}
		w.rooms[i].State = capacity.NodeNotReady
		n.downSince = w.now
	} else {
		w.allocCPU += cpu
		if w.inPool[i] {
			w.poolCPU += cpu
		}
		w.rooms[i].State = capacity.NodeReady
		w.reschedule = true
	}
	n.spec.Ready = up
	for _, p := range n.pods {
		if p.rs.paid {
			w.boundPaidCPU += sign * p.rs.cpu
			if !p.terminating {
				w.paidDemand += sign * p.rs.cpu
				if p.rs.inPool {
					w.paidPoolCPU += sign * p.rs.cpu
				}
			}
		} else {
			w.boundOppCPU += sign * p.rs.cpu
		}
		switch {
		case !up && p.ready:
			p.ready = false
			p.rs.ready--
			if !p.rs.paid {
				w.readyOppCPU -= p.rs.cpu
			}
		case up && p.readyAt <= w.now:
			w.setReady(p)
		}
	}
	w.ledger.UpsertNode(n.spec)
	w.version++
	if !up {
		if w.sc.PodEvictionTimeout <= 0 {
			w.evict(i)
		} else {
			heap.Push(&w.timers, timer{at: w.now + w.sc.PodEvictionTimeout, seq: -1 - i, evict: true, node: i})
		}
	}
}

// ---- the ReplicaSet controller ----

// reconcileSets brings every ReplicaSet to its replica count.
func (w *world) reconcileSets() {
	for _, rs := range w.sets {
		if !rs.paid && w.virtualOpp {
			continue
		}
		diff := int(rs.replicas) - len(rs.active)
		for range diff {
			w.createPod(rs)
		}
		if diff < 0 {
			for _, p := range w.victims(rs, -diff) {
				w.deletePod(p)
			}
		}
	}
}

// victims picks the n pods a ReplicaSet deletes first when it shrinks, by
// the ReplicaSet controller's ranking (controller.ActivePodsWithRanks):
// unbound before bound, not Ready before Ready, lower pod-deletion-cost
// first, pods on nodes crowded with their siblings first, Ready for less
// time first, newer first.
func (w *world) victims(rs *replicaSet, n int) []*pod {
	onNode := map[int]int{}
	for _, p := range rs.active {
		if p.node >= 0 {
			onNode[p.node]++
		}
	}
	ranked := slices.Clone(rs.active)
	slices.SortStableFunc(ranked, func(a, b *pod) int {
		if c := cmp.Compare(boolRank(a.node < 0), boolRank(b.node < 0)); c != 0 {
			return -c
		}
		if c := cmp.Compare(boolRank(a.ready), boolRank(b.ready)); c != 0 {
			return c
		}
		if c := cmp.Compare(a.cost, b.cost); c != 0 {
			return c
		}
		if c := cmp.Compare(onNode[a.node], onNode[b.node]); c != 0 {
			return -c
		}
		if a.ready && b.ready {
			if c := cmp.Compare(a.readySince, b.readySince); c != 0 {
				return -c
			}
		}
		return -cmp.Compare(a.id, b.id)
	})
	return ranked[:n]
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ---- the scheduler ----

// schedulePending binds what fits, node by node, highest priority first
// (then oldest first), and preempts lower-priority pods for paid pods that
// fit nowhere when PriorityClasses are on.
func (w *world) schedulePending() {
	for range 3 { // a preemption with no grace period frees room at once: try again
		if !w.reschedule || len(w.pending) == 0 {
			return
		}
		w.reschedule = false
		queue := slices.Clone(w.pending)
		slices.SortStableFunc(queue, func(a, b *pod) int {
			return cmp.Or(cmp.Compare(b.rs.priority, a.rs.priority), cmp.Compare(a.created, b.created), cmp.Compare(a.id, b.id))
		})
		unschedulable := map[*replicaSet]bool{}
		for _, p := range queue {
			if p.gone || p.node >= 0 {
				continue
			}
			// Once a pod of a ReplicaSet fits nowhere, its siblings do not
			// either in this pass (unless room is held for them), but each
			// may still preempt.
			if !unschedulable[p.rs] || p.nominated >= 0 {
				if i := w.pickNode(p); i >= 0 {
					w.bind(p, i)
					continue
				}
				if p.nominated < 0 {
					unschedulable[p.rs] = true
				}
			}
			if p.rs.preempts {
				w.preempt(p)
			}
		}
	}
}

// reservations returns the room held for pods nominated after a preemption
// with a priority at least p's (the scheduler adds them to their node when it
// filters for p), as negative credit per node; nil when there is none.
func (w *world) reservations(p *pod) map[string]capacity.Resources {
	var out map[string]capacity.Resources
	for _, q := range w.pending {
		if q == p || q.nominated < 0 || q.rs.priority < p.rs.priority {
			continue
		}
		if out == nil {
			out = map[string]capacity.Resources{}
		}
		name := w.nodes[q.nominated].name
		if out[name] == nil {
			out[name] = capacity.Resources{}
		}
		out[name].Sub(q.rs.pods.Shape.Requests)
	}
	return out
}

// pickNode is the scheduler's filter and score for one pod: of the nodes
// where it fits (capacity.Fit: taints, selector, every requested resource,
// the room held for nominated pods), its nominated node if any, else the
// one the default profile scores best (capacity.Pick: the cluster's
// NodeResourcesFit scoring, the balance of CPU and memory, and the spread
// of its ReplicaSet's pods over nodes and zones), ties to the first by
// name. -1: none fits.
func (w *world) pickNode(p *pod) int {
	fit := capacity.FitWith(w.rooms, p.rs.pods.Shape, w.reservations(p))
	if p.nominated >= 0 && fit.Nodes[p.nominated].Replicas > 0 {
		return p.nominated
	}
	fits := make([]bool, len(fit.Nodes))
	for i, f := range fit.Nodes {
		fits[i] = f.Replicas > 0
	}
	counts := make([]int64, len(w.nodes))
	for _, q := range p.rs.active {
		if q.node >= 0 {
			counts[q.node]++
		}
	}
	return capacity.Pick(w.scoring, w.rooms, p.rs.pods.Shape, counts, fits)
}

// preempt is the scheduler's PostFilter for a pod that fits nowhere: on
// each node, remove every lower-priority pod, check the pod then fits, and
// reprieve as many of them as still lets it fit (highest priority first);
// choose the node whose victims have the lowest highest priority, then the
// lowest priority sum, then are fewest. The victims are deleted with their
// grace period and the pod is nominated to the node, whose room is then
// held for it. A pod already nominated to a node where victims are still
// terminating waits for them.
func (w *world) preempt(p *pod) {
	if p.nominated >= 0 {
		for _, q := range w.nodes[p.nominated].pods {
			if q.terminating && q.rs.priority < p.rs.priority {
				return
			}
		}
	}
	req := p.rs.pods.Shape.Requests
	type choice struct {
		node             int
		victims          []*pod
		highest, prioSum int64
	}
	var best *choice
	reserved := w.reservations(p)
	for i, n := range w.nodes {
		if !p.rs.eligible[i] || w.rooms[i].State != capacity.NodeReady {
			continue
		}
		free := capacity.Resources{}
		for name := range req {
			free[name] = w.rooms[i].Free(name) + reserved[n.name][name]
		}
		var lower []*pod
		for _, q := range n.pods {
			if !q.terminating && q.rs.priority < p.rs.priority {
				lower = append(lower, q)
				free.Add(q.rs.pods.Shape.Requests)
			}
		}
		if len(lower) == 0 || !fitsIn(free, req) {
			continue
		}
		slices.SortStableFunc(lower, func(a, b *pod) int {
			return cmp.Or(cmp.Compare(b.rs.priority, a.rs.priority), cmp.Compare(a.created, b.created))
		})
		c := &choice{node: i, highest: math.MinInt64}
		for _, q := range lower { // reprieve
			free.Sub(q.rs.pods.Shape.Requests)
			if fitsIn(free, req) {
				continue
			}
			free.Add(q.rs.pods.Shape.Requests)
			c.victims = append(c.victims, q)
			c.highest = max(c.highest, int64(q.rs.priority))
			c.prioSum += int64(q.rs.priority) + math.MaxInt32 + 1
		}
		if best == nil || c.highest < best.highest ||
			c.highest == best.highest && (c.prioSum < best.prioSum || c.prioSum == best.prioSum && len(c.victims) < len(best.victims)) {
			best = c
		}
	}
	if best == nil {
		return
	}
	p.nominated = best.node
	for _, q := range best.victims {
		w.deletePod(q)
	}
}

func fitsIn(free, req capacity.Resources) bool {
	for name, v := range req {
		if v > 0 && free[name] < v {
			return false
		}
	}
	return true
}

// ---- scaling ----

// markYield sets the deletion cost of the named pods of an opportunistic
// ReplicaSet to cost, as the controller's annotation patch does.
func (w *world) markYield(rs *replicaSet, keys []string, cost int32) {
	for _, p := range rs.active {
		if p.cost != cost && slices.Contains(keys, namespace+"/"+p.name) {
			p.cost = cost
			w.ledger.UpsertPod(w.ledgerPod(p))
			w.version++
		}
	}
}

// scale sets an opportunistic ReplicaSet's replica count, counting the
// write and whether it reverses the previous one.
func (w *world) scale(rs *replicaSet, replicas int32) {
	if replicas == rs.replicas {
		return
	}
	dir := 1
	if replicas < rs.replicas {
		dir = -1
	}
	if rs.lastDirection != 0 && dir != rs.lastDirection {
		rs.directionChanges++
	}
	rs.lastDirection = dir
	rs.scales++
	rs.replicas = replicas
}
