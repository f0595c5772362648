package capacity

import (
	"encoding/json"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Report is a consistent summary of the cluster's capacity.
type Report struct {
	// Resources describes the usable pool: Ready, schedulable nodes and the
	// pods bound to them. One row per resource present, in report order.
	Resources []ResourceSummary `json:"resources"`
	// States has one entry per node state, usable or not, in report order.
	States []StateSummary `json:"nodeStates"`
	// PendingPaid is the demand of paid pods that are not bound to a node
	// and that the scheduler may place (no scheduling gates).
	PendingPaid Demand `json:"pendingPaid"`
	// GatedPaid is the demand of unbound paid pods held by scheduling gates:
	// not demand yet, since yielding room cannot let them in.
	GatedPaid Demand `json:"gatedPaid"`
	// Workloads has one entry per opportunistic workload, sorted by key.
	Workloads []WorkloadUsage `json:"workloads"`
}

// ResourceSummary is one resource of the usable pool, every amount in the
// resource's canonical unit (its JSON names it: MarshalJSON).
type ResourceSummary struct {
	Name        corev1.ResourceName `json:"name"`
	Capacity    int64               `json:"capacity"`
	Allocatable int64               `json:"allocatable"`
	// Requests = PaidRequests + OpportunisticRequests.
	Requests              int64 `json:"requests"`
	PaidRequests          int64 `json:"paidRequests"`
	OpportunisticRequests int64 `json:"opportunisticRequests"`
	// Remaining = Allocatable - Requests; negative when the pool is overcommitted.
	Remaining int64 `json:"remaining"`
}

// StateSummary is what the nodes of one state hold.
type StateSummary struct {
	State       string    `json:"state"`
	Nodes       int       `json:"nodes"`
	Capacity    Resources `json:"capacity"`
	Allocatable Resources `json:"allocatable"`
	Requests    Resources `json:"requests"`
}

// MarshalJSON adds the unit of the amounts beside the name:
// {"name": "cpu", "unit": "milliCores", "capacity": 60000, ...}.
func (s ResourceSummary) MarshalJSON() ([]byte, error) {
	type fields ResourceSummary // without this method
	return json.Marshal(struct {
		Name corev1.ResourceName `json:"name"`
		Unit string              `json:"unit"`
		fields
	}{s.Name, UnitOf(s.Name), fields(s)})
}

// Resource returns the summary of one resource of the usable pool, and false
// when the resource is absent.
func (r Report) Resource(name corev1.ResourceName) (ResourceSummary, bool) {
	for _, s := range r.Resources {
		if s.Name == name {
			return s, true
		}
	}
	return ResourceSummary{Name: name}, false
}

// Report summarises the ledger. It costs O(resources × states + workloads),
// independent of the number of nodes and pods.
func (l *Ledger) Report() Report {
	ready := &l.states[NodeReady]
	names := map[corev1.ResourceName]bool{}
	for _, set := range []Resources{ready.capacity, ready.allocatable} {
		for name, v := range set {
			if v != 0 {
				names[name] = true
			}
		}
	}
	ready.requested.each(func(name corev1.ResourceName, v int64) {
		if v != 0 {
			names[name] = true
		}
	})
	rep := Report{}
	ordered := make([]corev1.ResourceName, 0, len(names))
	for name := range names {
		ordered = append(ordered, name)
	}
	SortNames(ordered)
	for _, name := range ordered {
		rep.Resources = append(rep.Resources, l.readySummary(name))
	}
	for _, s := range NodeStates {
		st := &l.states[s]
		rep.States = append(rep.States, StateSummary{
			State:       s.String(),
			Nodes:       st.nodes,
			Capacity:    nonZero(st.capacity),
			Allocatable: nonZero(st.allocatable),
			Requests:    st.requested.resources(true),
		})
	}
	rep.PendingPaid = Demand{Pods: l.pendingPaid.pods, Requests: l.pendingPaid.requests.resources(true)}
	rep.GatedPaid = Demand{Pods: l.gatedPaid.pods, Requests: l.gatedPaid.requests.resources(true)}
	for _, u := range l.usage {
		rep.Workloads = append(rep.Workloads, WorkloadUsage{Key: u.key, Pods: u.pods, Requests: u.requests.resources(true), Stranded: u.stranded, Pending: u.pending})
	}
	sort.Slice(rep.Workloads, func(i, j int) bool { return rep.Workloads[i].Key < rep.Workloads[j].Key })
	return rep
}

// ReadyResource is Report().Resource(name) without building the report:
// O(1), for a caller that reads one number often (a simulated metrics
// adapter).
func (l *Ledger) ReadyResource(name corev1.ResourceName) (ResourceSummary, bool) {
	ready := &l.states[NodeReady]
	if ready.capacity[name] == 0 && ready.allocatable[name] == 0 && ready.requested.get(name) == 0 {
		return ResourceSummary{Name: name}, false
	}
	return l.readySummary(name), true
}

// readySummary is the row of one resource of the usable pool.
func (l *Ledger) readySummary(name corev1.ResourceName) ResourceSummary {
	ready := &l.states[NodeReady]
	requests, opp := ready.requested.get(name), ready.opportunistic.get(name)
	return ResourceSummary{
		Name:                  name,
		Capacity:              ready.capacity[name],
		Allocatable:           ready.allocatable[name],
		Requests:              requests,
		PaidRequests:          requests - opp,
		OpportunisticRequests: opp,
		Remaining:             ready.allocatable[name] - requests,
	}
}

func nonZero(r Resources) Resources {
	out := Resources{}
	for name, v := range r {
		if v != 0 {
			out[name] = v
		}
	}
	return out
}

// NodeRoom is one node's free room, as the fit check sees it.
type NodeRoom struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Taints []corev1.Taint    `json:"taints,omitempty"`
	State  NodeState         `json:"state"`
	// Allocatable is the node's allocatable room; Requested what bound pods take.
	Allocatable Resources `json:"allocatable"`
	Requested   Resources `json:"requested"`
	// OpportunisticRequested is the part of Requested held by opportunistic pods.
	OpportunisticRequested Resources `json:"opportunisticRequested"`
	Pods                   int       `json:"pods"`
}

// Free returns what is left of one resource on the node.
func (n *NodeRoom) Free(name corev1.ResourceName) int64 {
	return n.Allocatable[name] - n.Requested[name]
}

// Rooms returns every known node's room, sorted by name. It copies, so the
// result stays valid while the ledger moves on: O(nodes × resources).
func (l *Ledger) Rooms() []NodeRoom {
	rooms := make([]NodeRoom, 0, len(l.nodes))
	for _, e := range l.nodes {
		if !e.known {
			continue
		}
		rooms = append(rooms, NodeRoom{
			Name:                   e.node.Name,
			Labels:                 e.node.Labels,
			Taints:                 e.node.Taints,
			State:                  e.state,
			Allocatable:            e.node.Allocatable,
			Requested:              e.requested.resources(false),
			OpportunisticRequested: e.opportunistic.resources(false),
			Pods:                   e.pods,
		})
	}
	sort.Slice(rooms, func(i, j int) bool { return rooms[i].Name < rooms[j].Name })
	return rooms
}

// Summarize builds the report of a whole snapshot at once: the reference
// computation that the incremental ledger must always agree with.
func Summarize(nodes []Node, pods []Pod, workloads []Workload) Report {
	l := NewLedger(workloads)
	for i := range nodes {
		l.UpsertNode(nodes[i])
	}
	for i := range pods {
		l.UpsertPod(pods[i])
	}
	return l.Report()
}

// The units of canonical amounts, as ResourceSummary.Unit names them.
const (
	UnitMilliCores = "milliCores"
	UnitBytes      = "bytes"
	UnitCount      = "count"
)

// UnitOf names the canonical unit of a resource's amounts: milli-cores for
// cpu, bytes for memory, storage and hugepages, a count for the rest.
func UnitOf(name corev1.ResourceName) string {
	switch {
	case name == corev1.ResourceCPU:
		return UnitMilliCores
	case InBytes(name):
		return UnitBytes
	}
	return UnitCount
}

// jsonKey is the JSON name of a resource's amount: the resource name and
// its unit, as every number in our JSON names its unit ("cpuMilliCores",
// "memoryBytes"); counts keep the bare name ("pods", "nvidia.com/gpu").
func jsonKey(name corev1.ResourceName) string {
	switch unit := UnitOf(name); unit {
	case UnitMilliCores:
		return string(name) + "MilliCores"
	case UnitBytes:
		return string(name) + "Bytes"
	}
	return string(name)
}

// resourceName inverts jsonKey.
func resourceName(key string) corev1.ResourceName {
	if name, ok := strings.CutSuffix(key, "MilliCores"); ok && UnitOf(corev1.ResourceName(name)) == UnitMilliCores {
		return corev1.ResourceName(name)
	}
	if name, ok := strings.CutSuffix(key, "Bytes"); ok && UnitOf(corev1.ResourceName(name)) == UnitBytes {
		return corev1.ResourceName(name)
	}
	return corev1.ResourceName(key)
}

// MarshalJSON writes the amounts under keys that name their unit:
// {"cpuMilliCores": 1500, "memoryBytes": 1073741824, "pods": 3}.
func (r Resources) MarshalJSON() ([]byte, error) {
	out := make(map[string]int64, len(r))
	for name, v := range r {
		out[jsonKey(name)] = v
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Resources) UnmarshalJSON(data []byte) error {
	var in map[string]int64
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	*r = make(Resources, len(in))
	for key, v := range in {
		(*r)[resourceName(key)] = v
	}
	return nil
}
