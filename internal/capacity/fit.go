package capacity

import (
	"fmt"
	"math"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

// Shape is what one replica of a workload needs from a node.
type Shape struct {
	// Requests are the effective requests of one replica, including its pod slot.
	Requests     Resources
	NodeSelector map[string]string
	// Affinity is used for its required node affinity only.
	Affinity    *corev1.Affinity
	Tolerations []corev1.Toleration
}

// ShapeOf returns the shape of the pods a template makes.
func ShapeOf(spec *corev1.PodSpec) Shape {
	return Shape{
		Requests:     EffectiveRequests(spec),
		NodeSelector: spec.NodeSelector,
		Affinity:     spec.Affinity,
		Tolerations:  spec.Tolerations,
	}
}

// NodeFit says how many more replicas fit on one node, and if none, why.
type NodeFit struct {
	Node     string `json:"node"`
	Replicas int64  `json:"replicas"`
	Reason   string `json:"reason,omitempty"`
}

// FitResult is the node-by-node answer for one shape.
type FitResult struct {
	Total int64     `json:"total"`
	Nodes []NodeFit `json:"nodes"`
}

// Fit returns how many more replicas of shape can be placed on rooms, node by
// node, as the scheduler's filters would allow: usable nodes only, untolerated
// NoSchedule/NoExecute taints excluded, node selector and required node
// affinity honoured, every requested resource checked. Replicas do not
// straddle nodes, so fragmented room counts for nothing.
func Fit(rooms []NodeRoom, shape Shape) FitResult {
	return FitWith(rooms, shape, nil)
}

// FitWith is Fit where credit (by node name) is room handed back before
// placing: e.g. the requests of the workload's own pods when asking how many
// replicas fit in total rather than how many more.
func FitWith(rooms []NodeRoom, shape Shape, credit map[string]Resources) FitResult {
	affinity := nodeaffinity.NewRequiredNodeAffinity(shape.NodeSelector, shape.Affinity)
	names := shape.Requests.Names() // a fixed order makes the reported reason deterministic
	res := FitResult{Nodes: make([]NodeFit, 0, len(rooms))}
	for i := range rooms {
		f := fitNode(&rooms[i], &shape, names, affinity, credit[rooms[i].Name])
		res.Total += f.Replicas
		res.Nodes = append(res.Nodes, f)
	}
	return res
}

var logger = klog.Background()

// Eligible reports whether one replica of shape may ever run on the node,
// whatever its free room: the node is Ready and schedulable, no NoSchedule or
// NoExecute taint goes untolerated, and the node selector and required node
// affinity match. When it may not, reason says why. It is the half of the
// scheduler's filters that ignores resources: a scaler's pool is the nodes
// its replicas are eligible for.
func Eligible(room *NodeRoom, shape Shape) (bool, string) {
	return EligibilityOf(shape).Node(room)
}

// Eligibility is Eligible for one shape over many nodes: it builds the
// shape's node affinity once.
type Eligibility struct {
	shape    Shape
	affinity nodeaffinity.RequiredNodeAffinity
}

// EligibilityOf prepares the eligibility checks of one shape.
func EligibilityOf(shape Shape) *Eligibility {
	e := &Eligibility{shape: shape}
	if placed(&shape) {
		e.affinity = nodeaffinity.NewRequiredNodeAffinity(shape.NodeSelector, shape.Affinity)
	}
	return e
}

// Node is Eligible(room, shape).
func (e *Eligibility) Node(room *NodeRoom) (bool, string) {
	return eligible(room, &e.shape, e.affinity)
}

// placed reports whether the shape restricts its nodes by label: without a
// node selector or required node affinity, matching them is skipped (it
// costs an allocation per node, and pools are rebuilt every round).
func placed(shape *Shape) bool {
	return len(shape.NodeSelector) > 0 ||
		shape.Affinity != nil && shape.Affinity.NodeAffinity != nil && shape.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil
}

func eligible(n *NodeRoom, shape *Shape, affinity nodeaffinity.RequiredNodeAffinity) (bool, string) {
	if n.State != NodeReady {
		return false, "node " + n.State.String()
	}
	if taint, bad := corev1helpers.FindMatchingUntoleratedTaint(logger, n.Taints, shape.Tolerations, blocksScheduling, true); bad {
		return false, "untolerated taint " + taint.ToString()
	}
	if !placed(shape) {
		return true, ""
	}
	match, err := affinity.Match(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels}})
	if err != nil {
		return false, "invalid node affinity: " + err.Error()
	}
	if !match {
		return false, "node selector or affinity does not match"
	}
	return true, ""
}

func fitNode(n *NodeRoom, shape *Shape, names []corev1.ResourceName, affinity nodeaffinity.RequiredNodeAffinity, credit Resources) NodeFit {
	f := NodeFit{Node: n.Name}
	if ok, why := eligible(n, shape, affinity); !ok {
		f.Reason = why
		return f
	}
	f.Replicas = math.MaxInt64
	for _, name := range names {
		want := shape.Requests[name]
		if want <= 0 {
			continue
		}
		k := max((n.Free(name)+credit[name])/want, 0)
		if k < f.Replicas {
			f.Replicas = k
		}
		if k == 0 {
			f.Reason = fmt.Sprintf("insufficient %s", name)
			break
		}
	}
	if f.Replicas == math.MaxInt64 { // a shape that requests nothing, not even a pod slot
		f.Replicas = 0
		f.Reason = "shape requests nothing"
	}
	return f
}

func blocksScheduling(t *corev1.Taint) bool {
	return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
}
