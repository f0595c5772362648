package capacity

import (
	"maps"
	"reflect"
	"slices"
	"sort"
	"time"
)

// Ledger keeps the capacity accounting of a cluster up to date one event at a
// time: adding, changing or removing a pod costs O(its resources), a node
// O(its resources), so a watch stream never triggers a full recompute. It is
// not safe for concurrent use; internal/cluster serialises access.
type Ledger struct {
	workloads []Workload
	nodes     map[string]*nodeEntry
	pods      map[string]*podEntry
	// pending lists the unbound, non-terminal pods (podEntry.at), in no
	// order, so listing them costs O(pending), not O(pods).
	pending []*podEntry
	// free are entries of deleted pods, for the next new ones: a simulated
	// cluster makes and deletes millions.
	free   []*podEntry
	states [numNodeStates]stateTotals
	// pendingPaid is the demand of unbound, non-terminal paid pods that the
	// scheduler may place; gatedPaid that of those with scheduling gates.
	pendingPaid, gatedPaid demand
	usage                  map[string]*usage
	workloadUsage          []*usage // usage by workload index
	// last is the last Requests converted to amounts, lastRequests its map.
	last         *amounts
	lastRequests Resources
}

// demand is Demand as the ledger sums it.
type demand struct {
	pods     int
	requests amounts
}

// usage is WorkloadUsage as the ledger sums it.
type usage struct {
	key                     string
	index                   int // in the workloads
	pods, stranded, pending int
	requests                amounts
	// startUps are the workload's last pods' start-ups (creation to
	// Ready), a ring of at most keptStartUps, next at startUpNext.
	startUps    []time.Duration
	startUpNext int
}

// keptStartUps bounds the start-ups kept per workload: enough for a
// median that one slow pod does not move.
const keptStartUps = 16

func (u *usage) noteStartUp(d time.Duration) {
	if len(u.startUps) < keptStartUps {
		u.startUps = append(u.startUps, d)
		return
	}
	u.startUps[u.startUpNext] = d
	u.startUpNext = (u.startUpNext + 1) % keptStartUps
}

type nodeEntry struct {
	node  Node
	known bool
	state NodeState
	// requested and opportunistic sum the bound, non-terminal pods on the node.
	requested     amounts
	opportunistic amounts
	pods          int
	// workloadPods counts the bound, non-terminal pods of each opportunistic
	// workload, so a change of the node's state moves them in or out of
	// their workload's Stranded count.
	workloadPods []int // by workload index (nil until the first)
	// oppPods lists the bound, non-terminal opportunistic pods
	// (podEntry.at), in no order, so listing them costs O(them), not
	// O(pods).
	oppPods []*podEntry
}

type podEntry struct {
	pod Pod
	// usage is the opportunistic workload owning the pod, nil if paid.
	usage *usage
	// requests are pod.Requests as amounts, shared by the pods that share
	// the map (read only).
	requests *amounts
	// at is the pod's index in Ledger.pending while pending, in its
	// node's oppPods while there.
	at int
}

// workload is the key of the opportunistic workload owning the pod, "" if paid.
func (e *podEntry) workload() string {
	if e.usage == nil {
		return ""
	}
	return e.usage.key
}

type stateTotals struct {
	nodes         int
	capacity      Resources
	allocatable   Resources
	requested     amounts
	opportunistic amounts
}

// Demand is what unbound pods ask for.
type Demand struct {
	Pods     int       `json:"pods"`
	Requests Resources `json:"requests"`
}

// WorkloadUsage is what one opportunistic workload holds and waits for.
type WorkloadUsage struct {
	Key string `json:"key"`
	// Pods are bound and not terminal; Requests are theirs.
	Pods     int       `json:"pods"`
	Requests Resources `json:"requests"`
	// Stranded of the Pods are bound to a node that is NotReady, cordoned or
	// missing: they hold no room the pool can count on, and will likely be
	// evicted (after the not-ready toleration, 300 s by default).
	Stranded int `json:"stranded"`
	// Pending pods are not bound yet.
	Pending int `json:"pending"`
}

// NewLedger returns an empty ledger that treats the pods of workloads as
// opportunistic and every other pod as paid.
func NewLedger(workloads []Workload) *Ledger {
	l := &Ledger{
		nodes: map[string]*nodeEntry{},
		pods:  map[string]*podEntry{},
	}
	for i := range l.states {
		l.states[i] = stateTotals{capacity: Resources{}, allocatable: Resources{}}
	}
	l.SetWorkloads(workloads)
	return l
}

// SetWorkloads replaces the set of opportunistic workloads and reclassifies
// every pod: O(pods), meant for the rare change of the scaler set.
func (l *Ledger) SetWorkloads(workloads []Workload) {
	pods := make([]Pod, 0, len(l.pods))
	for _, e := range l.pods {
		pods = append(pods, e.pod)
	}
	for _, p := range pods {
		l.DeletePod(p.Namespace, p.Name)
	}
	l.workloads = append([]Workload(nil), workloads...)
	l.usage = make(map[string]*usage, len(workloads))
	l.workloadUsage = nil
	for i, w := range workloads {
		u := &usage{key: w.Key, index: i}
		l.usage[w.Key] = u
		l.workloadUsage = append(l.workloadUsage, u)
	}
	for _, p := range pods {
		l.UpsertPod(p)
	}
}

// UpsertNode adds a node or replaces what is known of it.
func (l *Ledger) UpsertNode(n Node) {
	e := l.nodes[n.Name]
	if e == nil {
		e = &nodeEntry{state: NodeMissing}
		l.nodes[n.Name] = e
	} else if e.known {
		l.removeRoom(e)
	}
	l.moveRequests(e, n.State())
	e.node, e.known = n, true
	l.addRoom(e)
}

// DeleteNode forgets a node. Pods still bound to it stay accounted under
// NodeMissing until they are deleted too.
func (l *Ledger) DeleteNode(name string) {
	e := l.nodes[name]
	if e == nil || !e.known {
		return
	}
	l.removeRoom(e)
	e.known, e.node = false, Node{Name: name}
	l.moveRequests(e, NodeMissing)
	l.dropIfEmpty(e)
}

// UpsertPod adds a pod or replaces what is known of it. A change that
// moves no sums (a pod starting to terminate, a new deletion cost) costs
// one lookup.
func (l *Ledger) UpsertPod(p Pod) {
	requests := l.amountsOf(p.Requests)
	e := l.pods[p.Namespace+"/"+p.Name] // the key's concatenation stays on the stack
	switch {
	case e == nil:
		if n := len(l.free); n > 0 {
			e, l.free = l.free[n-1], l.free[:n-1]
		} else {
			e = &podEntry{}
		}
		l.pods[p.Key()] = e
	case e.pod.NodeName == p.NodeName && e.pod.Terminal == p.Terminal && e.pod.Gated == p.Gated &&
		(e.requests == requests || e.requests.same(requests)) && sameLabels(e.pod.Labels, p.Labels):
		started := p.StartUp > 0 && e.pod.StartUp == 0
		e.pod = p // same workload, same sums
		if started && e.usage != nil {
			e.usage.noteStartUp(p.StartUp)
		}
		return
	default:
		l.unaccount(e)
	}
	started := p.StartUp > 0 && e.pod.StartUp == 0 // a recycled entry is zeroed
	e.pod, e.requests = p, requests
	e.usage = l.usage[l.classify(&e.pod)]
	if started && e.usage != nil {
		e.usage.noteStartUp(p.StartUp)
	}
	l.account(e)
}

// StartUps returns the start-ups (creation to Ready) of the last pods of
// an opportunistic workload that became Ready while watched, oldest
// first among those kept; nil for an unknown workload.
func (l *Ledger) StartUps(workload string) []time.Duration {
	u := l.usage[workload]
	if u == nil || len(u.startUps) == 0 {
		return nil
	}
	out := append([]time.Duration(nil), u.startUps[u.startUpNext:]...)
	return append(out, u.startUps[:u.startUpNext]...)
}

// amountsOf is amountsOf(r), converted once for the pods that share r
// (the pods of one ReplicaSet, in a simulation): Pod.Requests is read only.
func (l *Ledger) amountsOf(r Resources) *amounts {
	if r == nil || !sameMap(r, l.lastRequests) {
		a := amountsOf(r)
		l.last, l.lastRequests = &a, r
	}
	return l.last
}

// sameMap reports whether a and b are one map (not merely equal).
func sameMap[M ~map[K]V, K comparable, V any](a, b M) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// sameLabels is maps.Equal(a, b), at once when both are one map (a
// simulated ReplicaSet's pods share theirs).
func sameLabels(a, b map[string]string) bool {
	return sameMap(a, b) || maps.Equal(a, b)
}

// PendingPod is an unbound, non-terminal pod: demand for room.
type PendingPod struct {
	Pod
	// Workload is the key of the opportunistic workload owning it, "" if paid.
	Workload string
}

// Pending returns the unbound, non-terminal pods, sorted by key.
func (l *Ledger) Pending() []PendingPod {
	sorted := slices.Clone(l.pending)
	slices.SortFunc(sorted, func(a, b *podEntry) int { return compareKeys(&a.pod, &b.pod) })
	out := make([]PendingPod, 0, len(sorted))
	for _, e := range sorted {
		out = append(out, PendingPod{Pod: e.pod, Workload: e.workload()})
	}
	return out
}

// BoundPod is an opportunistic pod bound to a node: what yielding it frees.
type BoundPod struct {
	// Key is "namespace/name".
	Key string
	// Workload is the key of the opportunistic workload owning it.
	Workload string
	// Requests are shared with the ledger: read only.
	Requests     Resources
	Terminating  bool
	DeletionCost int32
}

// Opportunistic returns the bound, non-terminal opportunistic pods of every
// node (in any state), by node name, each sorted by key: O(those pods).
func (l *Ledger) Opportunistic() map[string][]BoundPod {
	out := map[string][]BoundPod{}
	for name, n := range l.nodes {
		if len(n.oppPods) == 0 {
			continue
		}
		list := make([]BoundPod, 0, len(n.oppPods))
		for _, e := range n.oppPods {
			list = append(list, BoundPod{Key: e.pod.Key(), Workload: e.workload(), Requests: e.pod.Requests,
				Terminating: e.pod.Terminating, DeletionCost: e.pod.DeletionCost})
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Key < list[j].Key })
		out[name] = list
	}
	return out
}

// Paid returns the bound, non-terminal paid pods of every node, by node
// name, each sorted by key (Workload is empty): O(pods), for reclaim, which
// reserves room for each paid pod by its usage.
func (l *Ledger) Paid() map[string][]BoundPod {
	out := map[string][]BoundPod{}
	for _, e := range l.pods {
		if e.usage != nil || e.pod.NodeName == "" || e.pod.Terminal {
			continue
		}
		out[e.pod.NodeName] = append(out[e.pod.NodeName], BoundPod{Key: e.pod.Key(), Requests: e.pod.Requests,
			Terminating: e.pod.Terminating, DeletionCost: e.pod.DeletionCost})
	}
	for _, list := range out {
		sort.Slice(list, func(i, j int) bool { return list[i].Key < list[j].Key })
	}
	return out
}

// DeletePod forgets a pod.
func (l *Ledger) DeletePod(namespace, name string) {
	key := namespace + "/" + name
	if e := l.pods[key]; e != nil { // the key's concatenation stays on the stack
		l.unaccount(e)
		delete(l.pods, key)
		*e = podEntry{}
		l.free = append(l.free, e)
	}
}

// WorkloadOf returns the key of the opportunistic workload owning a known
// pod, "" for a paid pod, and false for an unknown pod.
func (l *Ledger) WorkloadOf(namespace, name string) (string, bool) {
	e, ok := l.pods[namespace+"/"+name]
	if !ok {
		return "", false
	}
	return e.workload(), true
}

func (l *Ledger) classify(p *Pod) string {
	for i := range l.workloads {
		if l.workloads[i].matches(p) {
			return l.workloads[i].Key
		}
	}
	return ""
}

func (l *Ledger) account(e *podEntry)   { l.apply(e, 1) }
func (l *Ledger) unaccount(e *podEntry) { l.apply(e, -1) }

// apply adds (sign 1) or removes (sign -1) a pod's contribution.
func (l *Ledger) apply(e *podEntry, sign int) {
	p := &e.pod
	if p.Terminal {
		return
	}
	u, req, s64 := e.usage, e.requests, int64(sign)
	if p.NodeName == "" {
		if sign > 0 {
			e.at = len(l.pending)
			l.pending = append(l.pending, e)
		} else {
			l.pending = unlist(l.pending, e)
		}
		switch {
		case u != nil:
			u.pending += sign
		case p.Gated:
			l.gatedPaid.pods += sign
			l.gatedPaid.requests.add(req, s64)
		default:
			l.pendingPaid.pods += sign
			l.pendingPaid.requests.add(req, s64)
		}
		return
	}
	n := l.nodes[p.NodeName]
	if n == nil {
		n = &nodeEntry{node: Node{Name: p.NodeName}, state: NodeMissing}
		l.nodes[p.NodeName] = n
	}
	st := &l.states[n.state]
	n.pods += sign
	n.requested.add(req, s64)
	st.requested.add(req, s64)
	if u != nil {
		u.pods += sign
		if n.state != NodeReady {
			u.stranded += sign
		}
		if len(n.workloadPods) <= u.index {
			n.workloadPods = append(n.workloadPods, make([]int, u.index+1-len(n.workloadPods))...)
		}
		n.workloadPods[u.index] += sign
		u.requests.add(req, s64)
		n.opportunistic.add(req, s64)
		st.opportunistic.add(req, s64)
		if sign > 0 {
			e.at = len(n.oppPods)
			n.oppPods = append(n.oppPods, e)
		} else {
			n.oppPods = unlist(n.oppPods, e)
		}
	}
	if sign < 0 {
		l.dropIfEmpty(n)
	}
}

// unlist takes e out of list (its index e.at), moving the last entry
// into its place.
func unlist(list []*podEntry, e *podEntry) []*podEntry {
	last := list[len(list)-1]
	list[e.at], last.at = last, e.at
	list[len(list)-1] = nil
	return list[:len(list)-1]
}

// moveRequests moves a node's pod requests into the totals of a new state.
func (l *Ledger) moveRequests(e *nodeEntry, to NodeState) {
	if e.state == to {
		return
	}
	from, dest := &l.states[e.state], &l.states[to]
	from.requested.add(&e.requested, -1)
	from.opportunistic.add(&e.opportunistic, -1)
	dest.requested.add(&e.requested, 1)
	dest.opportunistic.add(&e.opportunistic, 1)
	if (e.state == NodeReady) != (to == NodeReady) {
		sign := 1 // the pods become stranded
		if to == NodeReady {
			sign = -1
		}
		for i, n := range e.workloadPods {
			if n != 0 { // past the workloads after SetWorkloads: zeros
				l.workloadUsage[i].stranded += sign * n
			}
		}
	}
	e.state = to
}

func (l *Ledger) addRoom(e *nodeEntry) {
	st := &l.states[e.state]
	st.nodes++
	st.capacity.Add(e.node.Capacity)
	st.allocatable.Add(e.node.Allocatable)
}

func (l *Ledger) removeRoom(e *nodeEntry) {
	st := &l.states[e.state]
	st.nodes--
	st.capacity.Sub(e.node.Capacity)
	st.allocatable.Sub(e.node.Allocatable)
}

// dropIfEmpty deletes a placeholder for an unknown node once no pod is bound to it.
func (l *Ledger) dropIfEmpty(e *nodeEntry) {
	if !e.known && e.pods == 0 {
		delete(l.nodes, e.node.Name)
	}
}
