package capacity

import (
	"cmp"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	resourcehelper "k8s.io/component-helpers/resource"
)

// NodeState says whether a node's allocatable room is usable for new pods.
type NodeState int

const (
	// NodeReady nodes are Ready and schedulable: only they contribute room.
	NodeReady NodeState = iota
	// NodeNotReady nodes have a Ready condition that is not True.
	NodeNotReady
	// NodeCordoned nodes are Ready but marked unschedulable.
	NodeCordoned
	// NodeMissing holds pods bound to a node that is not (or no longer) known.
	NodeMissing
	numNodeStates
)

// NodeStates lists every state in report order.
var NodeStates = [numNodeStates]NodeState{NodeReady, NodeNotReady, NodeCordoned, NodeMissing}

func (s NodeState) String() string {
	switch s {
	case NodeReady:
		return "ready"
	case NodeNotReady:
		return "not_ready"
	case NodeCordoned:
		return "cordoned"
	case NodeMissing:
		return "missing"
	}
	return "unknown"
}

// MarshalText renders the state by name in JSON.
func (s NodeState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Node is what the model needs of a Kubernetes node.
type Node struct {
	Name          string
	Labels        map[string]string
	Taints        []corev1.Taint
	Ready         bool
	Unschedulable bool
	Capacity      Resources
	Allocatable   Resources
}

// State classifies the node. A NotReady node is reported as such even when it
// is also cordoned: the fault is the more urgent fact.
func (n *Node) State() NodeState {
	switch {
	case !n.Ready:
		return NodeNotReady
	case n.Unschedulable:
		return NodeCordoned
	}
	return NodeReady
}

// Pod is what the model needs of a Kubernetes pod.
type Pod struct {
	Namespace string
	Name      string
	Labels    map[string]string
	// NodeName is empty while the pod is not bound: it is then demand, not usage.
	NodeName string
	// Terminal pods (Succeeded or Failed) hold no room.
	Terminal bool
	// Terminating pods (deletionTimestamp set) still hold their room, but
	// are leaving: yielding counts their room as coming free.
	Terminating bool
	// Gated pods have scheduling gates (spec.schedulingGates, e.g. Kueue's):
	// the scheduler does not try them until the gates are removed, so room
	// made for them now would only sit idle.
	Gated    bool
	Priority int32
	// DeletionCost is the controller.kubernetes.io/pod-deletion-cost
	// annotation (0 when absent or invalid): a ReplicaSet that shrinks
	// deletes lower costs first among equally ready pods.
	DeletionCost int32
	// Requests are the effective requests, including one "pods" slot.
	// The Ledger keeps the map: it is read only once given to it (so pods
	// may share one).
	Requests Resources
	// Scheduling holds the placement constraints of a pod that is not bound
	// yet (nil once bound: the model never needs them then).
	Scheduling *Scheduling
	// StartUp is how long the pod took from creation to Ready (0 while it
	// has not been Ready): an opportunistic workload's start-ups are part of
	// the lead time a forecast must look ahead (internal/predict).
	StartUp time.Duration
}

// Scheduling is where a pod may be placed.
type Scheduling struct {
	NodeSelector map[string]string
	Affinity     *corev1.Affinity
	Tolerations  []corev1.Toleration
	// NeverPreempts is spec.preemptionPolicy Never: the scheduler evicts
	// nothing to place the pod.
	NeverPreempts bool
}

// Shape returns the pod's shape, for fit checks of pending pods.
func (p *Pod) Shape() Shape {
	s := Shape{Requests: p.Requests}
	if p.Scheduling != nil {
		s.NodeSelector, s.Affinity, s.Tolerations = p.Scheduling.NodeSelector, p.Scheduling.Affinity, p.Scheduling.Tolerations
	}
	return s
}

// Key identifies a pod within the cluster.
func (p *Pod) Key() string { return p.Namespace + "/" + p.Name }

// compareKeys orders pods as their keys (namespace/name) compare, without
// building the keys: sorting thousands of pending pods by Key allocated two
// strings a comparison, a quarter of the opportunist's CPU at 5,000 nodes
// (docs/scale.md). A namespace is a DNS label, so it holds no '/'.
func compareKeys(a, b *Pod) int {
	if a.Namespace == b.Namespace {
		return strings.Compare(a.Name, b.Name)
	}
	n := min(len(a.Namespace), len(b.Namespace))
	if c := strings.Compare(a.Namespace[:n], b.Namespace[:n]); c != 0 {
		return c
	}
	// One namespace is a prefix of the other: the shorter one's key goes
	// on with '/', the longer one's with its next byte.
	if len(a.Namespace) < len(b.Namespace) {
		return cmp.Compare('/', b.Namespace[n])
	}
	return cmp.Compare(a.Namespace[n], '/')
}

// Workload is an opportunistic workload: its pods are not paid load.
type Workload struct {
	// Key names the workload in reports, conventionally "namespace/name".
	Key       string
	Namespace string
	// Selector picks the workload's pods within Namespace.
	Selector labels.Selector
}

func (w *Workload) matches(p *Pod) bool {
	return w.Namespace == p.Namespace && w.Selector != nil && !w.Selector.Empty() &&
		w.Selector.Matches(labels.Set(p.Labels))
}

// FromNode trims a Kubernetes node to what the model needs.
func FromNode(n *corev1.Node) Node {
	return Node{
		Name:          n.Name,
		Labels:        n.Labels,
		Taints:        n.Spec.Taints,
		Ready:         isReady(n),
		Unschedulable: n.Spec.Unschedulable,
		Capacity:      FromResourceList(n.Status.Capacity),
		Allocatable:   FromResourceList(n.Status.Allocatable),
	}
}

func isReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// FromPod trims a Kubernetes pod to what the model needs. Requests are the
// scheduler's effective requests (init containers, restartable sidecars, pod
// overhead, pod-level resources) computed by component-helpers, plus one pod slot.
func FromPod(p *corev1.Pod) Pod {
	out := Pod{
		Namespace: p.Namespace,
		Name:      p.Name,
		Labels:    p.Labels,
		NodeName:  p.Spec.NodeName,
		Terminal:  p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed,
		Gated:     len(p.Spec.SchedulingGates) > 0,
		Priority:  podPriority(p),
		Requests:  EffectiveRequests(&p.Spec),

		Terminating:  p.DeletionTimestamp != nil,
		DeletionCost: deletionCost(p.Annotations),
		StartUp:      startUp(p),
	}
	if out.NodeName == "" && !out.Terminal {
		out.Scheduling = &Scheduling{NodeSelector: p.Spec.NodeSelector, Affinity: p.Spec.Affinity, Tolerations: p.Spec.Tolerations,
			NeverPreempts: p.Spec.PreemptionPolicy != nil && *p.Spec.PreemptionPolicy == corev1.PreemptNever}
	}
	return out
}

// startUp is creation to the Ready condition's last transition, 0 when the
// pod is not Ready (or its clock went back).
func startUp(p *corev1.Pod) time.Duration {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			if c.Status != corev1.ConditionTrue || c.LastTransitionTime.IsZero() {
				return 0
			}
			return max(0, c.LastTransitionTime.Sub(p.CreationTimestamp.Time))
		}
	}
	return 0
}

// DeletionCostAnnotation ranks the pods a ReplicaSet deletes when it
// shrinks: lower costs go first among pods equally assigned, in the same
// phase and equally ready (k8s.io/kubernetes pkg/controller ActivePodsWithRanks).
const DeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

// deletionCost parses the annotation as the ReplicaSet controller does: an
// int32, anything else counting as 0.
func deletionCost(annotations map[string]string) int32 {
	v, ok := annotations[DeletionCostAnnotation]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

func podPriority(p *corev1.Pod) int32 {
	if p.Spec.Priority != nil {
		return *p.Spec.Priority
	}
	return 0
}

// EffectiveRequests returns what one pod of this spec takes from a node.
func EffectiveRequests(spec *corev1.PodSpec) Resources {
	list := resourcehelper.PodRequests(&corev1.Pod{Spec: *spec}, resourcehelper.PodResourcesOptions{})
	r := FromResourceList(list)
	r[corev1.ResourcePods]++
	return r
}
