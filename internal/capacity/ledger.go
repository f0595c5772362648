package capacity

import "sort"

// Ledger keeps the capacity accounting of a cluster up to date one event at a
// time: adding, changing or removing a pod costs O(its resources), a node
// O(its resources), so a watch stream never triggers a full recompute. It is
// not safe for concurrent use; internal/cluster serialises access.
type Ledger struct {
	workloads []Workload
	nodes     map[string]*nodeEntry
	pods      map[string]*podEntry
	// pending indexes the unbound, non-terminal pods, so listing them costs
	// O(pending), not O(pods).
	pending map[string]*podEntry
	states  [numNodeStates]stateTotals
	// pendingPaid is the demand of unbound, non-terminal paid pods that the
	// scheduler may place; gatedPaid that of those with scheduling gates.
	pendingPaid, gatedPaid Demand
	usage                  map[string]*WorkloadUsage
}

type nodeEntry struct {
	node  Node
	known bool
	state NodeState
	// requested and opportunistic sum the bound, non-terminal pods on the node.
	requested     Resources
	opportunistic Resources
	pods          int
	// workloadPods counts the bound, non-terminal pods of each opportunistic
	// workload, so a change of the node's state moves them in or out of
	// their workload's Stranded count.
	workloadPods map[string]int
	// oppPods indexes the bound, non-terminal opportunistic pods by key
	// (nil until the first), so listing them costs O(them), not O(pods).
	oppPods map[string]*podEntry
}

type podEntry struct {
	pod Pod
	// workload is the key of the opportunistic workload owning the pod, "" if paid.
	workload string
}

type stateTotals struct {
	nodes         int
	capacity      Resources
	allocatable   Resources
	requested     Resources
	opportunistic Resources
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
		nodes:   map[string]*nodeEntry{},
		pods:    map[string]*podEntry{},
		pending: map[string]*podEntry{},
	}
	for i := range l.states {
		l.states[i] = stateTotals{capacity: Resources{}, allocatable: Resources{}, requested: Resources{}, opportunistic: Resources{}}
	}
	l.pendingPaid.Requests, l.gatedPaid.Requests = Resources{}, Resources{}
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
	l.usage = make(map[string]*WorkloadUsage, len(workloads))
	for _, w := range workloads {
		l.usage[w.Key] = &WorkloadUsage{Key: w.Key, Requests: Resources{}}
	}
	for _, p := range pods {
		l.UpsertPod(p)
	}
}

// UpsertNode adds a node or replaces what is known of it.
func (l *Ledger) UpsertNode(n Node) {
	e := l.nodes[n.Name]
	if e == nil {
		e = &nodeEntry{requested: Resources{}, opportunistic: Resources{}, state: NodeMissing}
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

// UpsertPod adds a pod or replaces what is known of it.
func (l *Ledger) UpsertPod(p Pod) {
	key := p.Key()
	if old := l.pods[key]; old != nil {
		l.unaccount(old)
	}
	e := &podEntry{pod: p, workload: l.classify(&p)}
	l.pods[key] = e
	l.account(e)
}

// PendingPod is an unbound, non-terminal pod: demand for room.
type PendingPod struct {
	Pod
	// Workload is the key of the opportunistic workload owning it, "" if paid.
	Workload string
}

// Pending returns the unbound, non-terminal pods, sorted by key.
func (l *Ledger) Pending() []PendingPod {
	out := make([]PendingPod, 0, len(l.pending))
	for _, e := range l.pending {
		out = append(out, PendingPod{Pod: e.pod, Workload: e.workload})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
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
			list = append(list, BoundPod{Key: e.pod.Key(), Workload: e.workload, Requests: e.pod.Requests,
				Terminating: e.pod.Terminating, DeletionCost: e.pod.DeletionCost})
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Key < list[j].Key })
		out[name] = list
	}
	return out
}

// DeletePod forgets a pod.
func (l *Ledger) DeletePod(namespace, name string) {
	key := namespace + "/" + name
	if e := l.pods[key]; e != nil {
		l.unaccount(e)
		delete(l.pods, key)
	}
}

// WorkloadOf returns the key of the opportunistic workload owning a known
// pod, "" for a paid pod, and false for an unknown pod.
func (l *Ledger) WorkloadOf(namespace, name string) (string, bool) {
	e, ok := l.pods[namespace+"/"+name]
	if !ok {
		return "", false
	}
	return e.workload, true
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
	usage := l.usage[e.workload] // nil for paid pods
	if p.NodeName == "" {
		if sign > 0 {
			l.pending[p.Key()] = e
		} else {
			delete(l.pending, p.Key())
		}
		switch {
		case usage != nil:
			usage.Pending += sign
		case p.Gated:
			l.gatedPaid.Pods += sign
			addSigned(l.gatedPaid.Requests, p.Requests, sign)
		default:
			l.pendingPaid.Pods += sign
			addSigned(l.pendingPaid.Requests, p.Requests, sign)
		}
		return
	}
	n := l.nodes[p.NodeName]
	if n == nil {
		n = &nodeEntry{node: Node{Name: p.NodeName}, state: NodeMissing, requested: Resources{}, opportunistic: Resources{}}
		l.nodes[p.NodeName] = n
	}
	st := &l.states[n.state]
	n.pods += sign
	addSigned(n.requested, p.Requests, sign)
	addSigned(st.requested, p.Requests, sign)
	if usage != nil {
		usage.Pods += sign
		if n.state != NodeReady {
			usage.Stranded += sign
		}
		if n.workloadPods == nil {
			n.workloadPods = map[string]int{}
		}
		if n.workloadPods[e.workload] += sign; n.workloadPods[e.workload] == 0 {
			delete(n.workloadPods, e.workload)
		}
		addSigned(usage.Requests, p.Requests, sign)
		addSigned(n.opportunistic, p.Requests, sign)
		addSigned(st.opportunistic, p.Requests, sign)
		if sign > 0 {
			if n.oppPods == nil {
				n.oppPods = map[string]*podEntry{}
			}
			n.oppPods[p.Key()] = e
		} else {
			delete(n.oppPods, p.Key())
		}
	}
	if sign < 0 {
		l.dropIfEmpty(n)
	}
}

func addSigned(dst, src Resources, sign int) {
	if sign > 0 {
		dst.Add(src)
	} else {
		dst.Sub(src)
	}
}

// moveRequests moves a node's pod requests into the totals of a new state.
func (l *Ledger) moveRequests(e *nodeEntry, to NodeState) {
	if e.state == to {
		return
	}
	from, dest := &l.states[e.state], &l.states[to]
	from.requested.Sub(e.requested)
	from.opportunistic.Sub(e.opportunistic)
	dest.requested.Add(e.requested)
	dest.opportunistic.Add(e.opportunistic)
	if (e.state == NodeReady) != (to == NodeReady) {
		sign := 1 // the pods become stranded
		if to == NodeReady {
			sign = -1
		}
		for key, n := range e.workloadPods {
			if u := l.usage[key]; u != nil {
				u.Stranded += sign * n
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
