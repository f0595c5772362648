package sim

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/reclaim"
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
	pending   []*pod        // unbound pods, in no order (pod.pendingAt)
	// nominated lists the pending pods nominated to a node after a
	// preemption (pod.nominatedAt), in no order: the room held for them.
	nominated []*pod
	// held sums their requests by node, negated (the pickers hold it), and
	// heldByPriority by priority, then node.
	held           map[int]capacity.Resources
	heldPods       map[int]int
	heldByPriority map[int32]map[int]capacity.Resources
	timers         timerHeap
	podSeq         int
	slab           []pod // newPod's
	// queue and ranked are schedulePending's and victims' buffers.
	queue, ranked []*pod

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
	// killedYoung counts opportunistic pods stopped within killedYoungAge
	// of being bound (young.go).
	killedYoung int
	// reclaim publishes reclaimable room when a scaler reclaims (nil: none does).
	reclaim *reclaimWorld
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
	// scheduling is its pending pods' placement constraints, shared by
	// them (read only).
	scheduling *capacity.Scheduling
	// requests are its pods' requests (pods.Shape.Requests) as a list:
	// adding them to a node's room skips a map iteration.
	requests []amount
	// picker is the scheduler's choice of node for the set's next pod,
	// kept up to date as rooms and the set's pods move (nil for the
	// oracle's virtual opportunistic sets, which make no pods).
	picker *capacity.Picker
	// bound counts the set's pods bound and not terminating, boundOn by node.
	bound   int
	boundOn []int32

	replicas int32
	active   []*pod // not terminating: pending or bound, in no order (pod.activeAt)
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
	pendingAt   int // index in world.pending while pending
	activeAt    int // index in its replicaSet's active while not terminating
	nominatedAt int // index in world.nominated while nominated
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
		scalers: sc.restingScalers(),
		held:    map[int]capacity.Resources{}, heldPods: map[int]int{}, heldByPriority: map[int32]map[int]capacity.Resources{}}
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
	for _, rs := range w.sets {
		if rs.paid || !virtualOpp {
			rs.picker = capacity.NewPicker(w.scoring, w.rooms, rs.pods.Shape, nil)
		}
	}
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
	// A paid pod is demand on the pool when some node of the pool could
	// hold it: eligible, and with the allocatable for each of its requests
	// (a pod asking for a GPU tolerates its way onto a CPU node in vain).
	for _, rs := range w.paid {
		for i, n := range w.nodes {
			rs.inPool = rs.inPool || rs.eligible[i] && w.inPool[i] && holdsOne(n.spec.Allocatable, rs.pods.Shape.Requests)
		}
	}
	return w
}

// amount is one entry of a Resources.
type amount struct {
	name  corev1.ResourceName
	value int64
}

// addTo is dst.Add (sign 1) or dst.Sub (sign -1) of the Resources that
// list holds.
func addTo(dst capacity.Resources, list []amount, sign int64) {
	for _, a := range list {
		dst[a.name] += sign * a.value
	}
}

// holdsOne reports whether allocatable holds one pod of requests.
func holdsOne(allocatable, requests capacity.Resources) bool {
	for name, v := range requests {
		if v > allocatable[name] {
			return false
		}
	}
	return true
}

func (w *world) newSet(name string, p Pods, paid bool) *replicaSet {
	// cpu is what a pod of the set holds of the nodes' CPU: its request,
	// plus the reclaimed cpu a reclaiming pod requests as an extended resource.
	rs := &replicaSet{name: name, paid: paid, pods: p, labels: map[string]string{"app": name},
		cpu: p.Shape.Requests[corev1.ResourceCPU] + p.Shape.Requests[reclaim.ExtendedResourceCPU], boundOn: make([]int32, len(w.rooms))}
	if w.priorities {
		rs.priority = p.Priority
		rs.preempts = p.Preempts
	}
	for name, v := range p.Shape.Requests {
		rs.requests = append(rs.requests, amount{name, v})
	}
	rs.scheduling = &capacity.Scheduling{NodeSelector: p.Shape.NodeSelector, Affinity: p.Shape.Affinity,
		Tolerations: p.Shape.Tolerations, NeverPreempts: !rs.preempts}
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

// newPod allocates a pod from a slab: the ReplicaSets of a churning
// strategy make millions of pods a week.
func (w *world) newPod() *pod {
	if len(w.slab) == 0 {
		w.slab = make([]pod, 256)
	}
	p := &w.slab[0]
	w.slab = w.slab[1:]
	return p
}

// podName is name-seq, built in one allocation.
func podName(name string, seq int) string {
	var buf [64]byte
	b := append(append(buf[:0], name...), '-')
	return string(strconv.AppendInt(b, int64(seq), 10))
}

func (w *world) ledgerPod(p *pod) capacity.Pod {
	out := capacity.Pod{Namespace: namespace, Name: p.name, Labels: p.rs.labels, Priority: p.rs.priority, Requests: p.rs.pods.Shape.Requests,
		Terminating: p.terminating, DeletionCost: p.cost}
	if p.node >= 0 {
		out.NodeName = w.nodes[p.node].name
	} else {
		out.Scheduling = p.rs.scheduling
	}
	return out
}

func (w *world) createPod(rs *replicaSet) {
	rs.seq++
	w.podSeq++
	p := w.newPod()
	*p = pod{id: w.podSeq, name: podName(rs.name, rs.seq), rs: rs, node: -1, nominated: -1, created: w.now}
	p.activeAt = len(rs.active)
	rs.active = append(rs.active, p)
	p.pendingAt = len(w.pending)
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
	w.unpend(p)
	w.nominate(p, -1)
	p.node = i
	n := w.nodes[i]
	n.pods = append(n.pods, p)
	addTo(w.rooms[i].Requested, p.rs.requests, 1)
	w.roomChanged(i)
	p.rs.picker.Count(i, 1)
	p.rs.bound++
	p.rs.boundOn[i]++
	if p.rs.paid {
		w.boundPaidCPU += p.rs.cpu
		w.pendingPaid--
		w.maxPaidWait = max(w.maxPaidWait, w.now-p.created)
	} else {
		addTo(w.rooms[i].OpportunisticRequested, p.rs.requests, 1)
		w.boundOppCPU += p.rs.cpu
	}
	w.ledger.UpsertPod(w.ledgerPod(p))
	w.version++
	p.readyAt = w.now + p.rs.pods.Startup
	if p.rs.pods.Startup <= 0 {
		w.setReady(p)
	} else {
		w.timers.push(timer{at: w.now + p.rs.pods.Startup, seq: p.id, pod: p, ready: true})
	}
}

// unpend takes a pod out of the pending list.
func (w *world) unpend(p *pod) {
	last := w.pending[len(w.pending)-1]
	w.pending[p.pendingAt], last.pendingAt = last, p.pendingAt
	w.pending = w.pending[:len(w.pending)-1]
	p.pendingAt = -1
}

// nominate sets the node a pending pod preempted for (-1: none).
func (w *world) nominate(p *pod, node int) {
	if node == p.nominated {
		return
	}
	req, byNode := p.rs.pods.Shape.Requests, w.heldByPriority[p.rs.priority]
	switch {
	case p.nominated < 0:
		p.nominatedAt = len(w.nominated)
		w.nominated = append(w.nominated, p)
	case node < 0:
		last := w.nominated[len(w.nominated)-1]
		w.nominated[p.nominatedAt], last.nominatedAt = last, p.nominatedAt
		w.nominated = w.nominated[:len(w.nominated)-1]
	}
	if old := p.nominated; old >= 0 {
		w.held[old].Add(req)
		byNode[old].Add(req)
		if isZero(byNode[old]) {
			delete(byNode, old)
		}
		if w.heldPods[old]--; w.heldPods[old] == 0 {
			delete(w.held, old)
			delete(w.heldPods, old)
		}
		w.hold(old)
	}
	if node >= 0 {
		if w.held[node] == nil {
			w.held[node] = capacity.Resources{}
		}
		w.held[node].Sub(req)
		w.heldPods[node]++
		if byNode == nil {
			byNode = map[int]capacity.Resources{}
			w.heldByPriority[p.rs.priority] = byNode
		}
		if byNode[node] == nil {
			byNode[node] = capacity.Resources{}
		}
		byNode[node].Sub(req)
		w.hold(node)
	}
	p.nominated = node
}

func isZero(r capacity.Resources) bool {
	for _, v := range r {
		if v != 0 {
			return false
		}
	}
	return true
}

// hold tells the schedulers' indexes the room held on node i.
func (w *world) hold(i int) {
	for _, rs := range w.sets {
		if rs.picker != nil {
			rs.picker.Hold(i, w.held[i])
		}
	}
}

// heldFor is what Picker.Pick needs for pod p beside the room the pickers
// hold for every nominated pod: the nodes where the room held for p differs
// and what it is there (nil: none), the scheduler's rule being that a pod
// counts the nominated pods of its priority or higher, itself excluded.
func (w *world) heldFor(p *pod) map[int]capacity.Resources {
	var out map[int]capacity.Resources
	at := func(i int) capacity.Resources {
		if out == nil {
			out = map[int]capacity.Resources{}
		}
		r, ok := out[i]
		if !ok {
			r = w.held[i].Clone()
			out[i] = r
		}
		return r
	}
	if len(w.heldByPriority) == 0 && p.nominated < 0 {
		return nil // nothing held: no map to build
	}
	for prio, byNode := range w.heldByPriority {
		if prio < p.rs.priority {
			for i, r := range byNode {
				at(i).Sub(r) // not held for p
			}
		}
	}
	if p.nominated >= 0 {
		at(p.nominated).Add(p.rs.pods.Shape.Requests) // held for p itself
	}
	return out
}

// heldAt is the room held on node i for p, given heldFor(p).
func (w *world) heldAt(i int, differs map[int]capacity.Resources) capacity.Resources {
	if r, ok := differs[i]; ok {
		return r
	}
	return w.held[i]
}

// roomChanged tells the schedulers' indexes that node i's room or state
// changed.
func (w *world) roomChanged(i int) {
	for _, rs := range w.sets {
		if rs.picker != nil {
			rs.picker.Update(i)
		}
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
	last := rs.active[len(rs.active)-1]
	rs.active[p.activeAt], last.activeAt = last, p.activeAt
	rs.active = rs.active[:len(rs.active)-1]
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
		w.unpend(p)
		w.nominate(p, -1)
		if rs.paid {
			w.pendingPaid--
			w.maxPaidWait = max(w.maxPaidWait, w.now-p.created) // it waited until it was no longer wanted
		}
		p.gone = true
		w.ledger.DeletePod(namespace, p.name)
		w.version++
		return
	}
	w.countKilledYoung(p)
	p.terminating = true
	rs.picker.Count(p.node, -1) // the scheduler's spreading counts pods not terminating
	rs.bound--
	rs.boundOn[p.node]--
	if rs.pods.Grace <= 0 {
		w.removePod(p)
		return
	}
	w.ledger.UpsertPod(w.ledgerPod(p)) // its deletionTimestamp is set
	w.version++
	w.timers.push(timer{at: w.now + rs.pods.Grace, seq: p.id, pod: p})
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
	addTo(w.rooms[i].Requested, p.rs.requests, -1)
	w.roomChanged(i)
	if w.rooms[i].State == capacity.NodeReady {
		if p.rs.paid {
			w.boundPaidCPU -= p.rs.cpu
		} else {
			w.boundOppCPU -= p.rs.cpu
		}
	}
	if !p.rs.paid {
		addTo(w.rooms[i].OpportunisticRequested, p.rs.requests, -1)
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

// timerHeap is a min-heap of timers by time, then seq. It is
// container/heap's algorithm step for step (timers of the same time and
// seq come out in the same order), typed, so a timer is not boxed.
type timerHeap []timer

func (h timerHeap) less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seq < h[j].seq
}

func (h *timerHeap) push(t timer) {
	*h = append(*h, t)
	for j := len(*h) - 1; ; { // container/heap's up
		i := (j - 1) / 2
		if i == j || !h.less(j, i) {
			break
		}
		(*h)[i], (*h)[j] = (*h)[j], (*h)[i]
		j = i
	}
}

func (h *timerHeap) pop() timer {
	old := *h
	n := len(old) - 1
	old[0], old[n] = old[n], old[0]
	for i := 0; ; { // container/heap's down over the first n
		j := 2*i + 1
		if j >= n {
			break
		}
		if j2 := j + 1; j2 < n && old.less(j2, j) {
			j = j2
		}
		if !old.less(j, i) {
			break
		}
		old[i], old[j] = old[j], old[i]
		i = j
	}
	t := old[n]
	old[n] = timer{} // drop the pod pointer
	*h = old[:n]
	return t
}

// fireTimers runs the pod transitions due by now.
func (w *world) fireTimers() {
	for len(w.timers) > 0 && w.timers[0].at <= w.now {
		w.fire(w.timers.pop())
	}
}

// settle plays out the start-ups and terminations pending at time zero:
// the cluster has run for a while, its pods are placed and Ready. Node
// evictions keep their time.
func (w *world) settle() {
	var keep []timer
	for len(w.timers) > 0 {
		t := w.timers.pop()
		if t.evict {
			keep = append(keep, t)
			continue
		}
		w.fire(t)
	}
	for _, t := range keep {
		w.timers.push(t)
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
	w.roomChanged(i)
	w.ledger.UpsertNode(n.spec)
	w.version++
	if !up {
		if w.sc.PodEvictionTimeout <= 0 {
			w.evict(i)
		} else {
			w.timers.push(timer{at: w.now + w.sc.PodEvictionTimeout, seq: -1 - i, evict: true, node: i})
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
	onNode := make([]int, len(w.nodes)+1) // by node index + 1: 0 for pending pods, none counted
	for _, p := range rs.active {
		if p.node >= 0 {
			onNode[p.node+1]++
		}
	}
	ranked := append(w.ranked[:0], rs.active...)
	w.ranked = ranked
	slices.SortFunc(ranked, func(a, b *pod) int { // a total order (ids differ): no need for a stable sort
		if c := cmp.Compare(boolRank(a.node < 0), boolRank(b.node < 0)); c != 0 {
			return -c
		}
		if c := cmp.Compare(boolRank(a.ready), boolRank(b.ready)); c != 0 {
			return c
		}
		if c := cmp.Compare(a.cost, b.cost); c != 0 {
			return c
		}
		if c := cmp.Compare(onNode[a.node+1], onNode[b.node+1]); c != 0 {
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
		queue := append(w.queue[:0], w.pending...)
		w.queue = queue
		slices.SortFunc(queue, func(a, b *pod) int { // a total order (ids differ)
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

// pickNode is the scheduler's filter and score for one pod: of the nodes
// where it fits (capacity.Fit: taints, selector, every requested resource,
// the room held for nominated pods), its nominated node if any, else the
// one the default profile scores best (capacity.Pick: the cluster's
// NodeResourcesFit scoring, the balance of CPU and memory, and the spread
// of its ReplicaSet's pods over nodes and zones), ties to the first by
// name. -1: none fits. The set's capacity.Picker answers as capacity.Pick
// would over every node, from an index kept up to date as pods move.
func (w *world) pickNode(p *pod) int {
	differs := w.heldFor(p)
	i := p.nominated
	if i < 0 || !p.rs.picker.Fits(i, w.heldAt(i, differs)) {
		i = p.rs.picker.Pick(differs)
	}
	if checkPick != nil {
		checkPick(w, p, i)
	}
	return i
}

// checkPick and checkPreempt, set by tests, see every choice of pickNode
// and preempt.
var (
	checkPick    func(w *world, p *pod, chosen int)
	checkPreempt func(w *world, p *pod, node int, victims []*pod)
)

// preempt is the scheduler's PostFilter for a pod that fits nowhere: on
// each node, remove every lower-priority pod, check the pod then fits, and
// reprieve as many of them as still lets it fit (highest priority first);
// choose the node whose victims have the lowest highest priority, then the
// lowest priority sum, then are fewest. The victims are deleted with their
// grace period and the pod is nominated to the node, whose room is then
// held for it. A pod already nominated to a node where victims are still
// terminating waits for them.
//
// Nodes are tried in order and ties go to the first, so the search stops
// at a choice nothing can beat: no victim, or, when no node takes the pod
// without victims, one victim of the lowest priority any pod has, which
// only the nodes holding such a pod can give.
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
	differs := w.heldFor(p)
	try := func(i int) *choice {
		n := w.nodes[i]
		if !p.rs.eligible[i] || w.rooms[i].State != capacity.NodeReady {
			return nil
		}
		held := w.heldAt(i, differs)
		free := capacity.Resources{}
		for name := range req {
			free[name] = w.rooms[i].Free(name) + held[name]
		}
		var lower []*pod
		for _, q := range n.pods {
			if !q.terminating && q.rs.priority < p.rs.priority {
				lower = append(lower, q)
				free.Add(q.rs.pods.Shape.Requests)
			}
		}
		if len(lower) == 0 || !fitsIn(free, req) {
			return nil
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
		return c
	}
	// The lowest priority of any pod that may be a victim, and the sets
	// of that priority.
	floor := int64(math.MaxInt64)
	for _, rs := range w.sets {
		if rs.priority < p.rs.priority && rs.bound > 0 {
			floor = min(floor, int64(rs.priority))
		}
	}
	var lowest []*replicaSet
	for _, rs := range w.sets {
		if int64(rs.priority) == floor && rs.bound > 0 {
			lowest = append(lowest, rs)
		}
	}
	var best *choice
	// When no node takes the pod without victims, one victim of the lowest
	// priority is a choice nothing beats: the first node giving it, of
	// those holding such a pod, is the answer.
	if len(lowest) > 0 && p.rs.picker.Pick(differs) < 0 && !requestsNothing(req) {
	nodes:
		for i := range w.nodes {
			// Cheaply, first: one such pod could make room for it.
			var one []*replicaSet
			for _, rs := range lowest {
				if rs.boundOn[i] > 0 {
					one = append(one, rs)
				}
			}
			if len(one) == 0 {
				continue
			}
			held := w.heldAt(i, differs)
			for name, v := range req {
				most := int64(0)
				for _, rs := range one {
					most = max(most, rs.pods.Shape.Requests[name])
				}
				if v > 0 && w.rooms[i].Free(name)+held[name]+most < v {
					continue nodes
				}
			}
			if c := try(i); c != nil && len(c.victims) == 1 && c.highest == floor {
				best = c
				break
			}
		}
	}
	if best == nil && len(lowest) > 0 {
		for i := range w.nodes {
			c := try(i)
			if c == nil {
				continue
			}
			if best == nil || c.highest < best.highest ||
				c.highest == best.highest && (c.prioSum < best.prioSum || c.prioSum == best.prioSum && len(c.victims) < len(best.victims)) {
				best = c
			}
			if len(best.victims) == 0 {
				break // nothing beats it, and ties go to the first
			}
		}
	}
	if checkPreempt != nil {
		node, victims := -1, []*pod(nil)
		if best != nil {
			node, victims = best.node, best.victims
		}
		checkPreempt(w, p, node, victims)
	}
	if best == nil {
		return
	}
	w.nominate(p, best.node)
	for _, q := range best.victims {
		w.deletePod(q)
	}
}

func requestsNothing(req capacity.Resources) bool {
	for _, v := range req {
		if v > 0 {
			return false
		}
	}
	return true
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
