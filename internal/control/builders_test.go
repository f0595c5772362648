package control

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/opportunist/opportunist/internal/capacity"
)

// t0 is an arbitrary fixed instant: tests never read the clock.
var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func at(seconds int) time.Time { return t0.Add(time.Duration(seconds) * time.Second) }

// list builds a resource list from name/quantity pairs: list("cpu", "2", "memory", "1Gi").
func list(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

// cores is a node's allocatable: n cores, plenty of memory and pod slots.
func cores(n int) corev1.ResourceList {
	return list("cpu", fmt.Sprint(n), "memory", "256Gi", "pods", "250")
}

type nodeOpt func(*corev1.Node)

func kubeNode(name string, alloc corev1.ResourceList, opts ...nodeOpt) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{
			Capacity:    alloc.DeepCopy(),
			Allocatable: alloc,
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func notReady() nodeOpt {
	return func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }
}
func cordoned() nodeOpt { return func(n *corev1.Node) { n.Spec.Unschedulable = true } }
func labelled(k, v string) nodeOpt {
	return func(n *corev1.Node) { n.Labels[k] = v }
}
func tainted(key, value string, effect corev1.TaintEffect) nodeOpt {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Value: value, Effect: effect})
	}
}

type podOpt func(*corev1.Pod)

// kubePod is a running paid pod on node, or a pending one when node is "".
func kubePod(name, node string, requests corev1.ResourceList, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": "paid"}},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "main", Resources: corev1.ResourceRequirements{Requests: requests}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if node == "" {
		p.Status.Phase = corev1.PodPending
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func app(name string) podOpt { return func(p *corev1.Pod) { p.Labels["app"] = name } }
func priority(v int32) podOpt {
	return func(p *corev1.Pod) { p.Spec.Priority = &v }
}
func gated(gate string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.SchedulingGates = append(p.Spec.SchedulingGates, corev1.PodSchedulingGate{Name: gate})
	}
}
func podTolerates(key string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists})
	}
}
func podSelector(k, v string) podOpt {
	return func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{k: v} }
}

// pods spreads n pods of one request over nodes, round robin.
func pods(prefix string, n int, nodes []string, requests corev1.ResourceList, opts ...podOpt) []*corev1.Pod {
	out := make([]*corev1.Pod, n)
	for i := range out {
		out[i] = kubePod(fmt.Sprintf("%s-%d", prefix, i), nodes[i%len(nodes)], requests, opts...)
	}
	return out
}

// env is a cluster fed through the capacity ledger, as the controller sees it.
type env struct{ l *capacity.Ledger }

// newEnv builds a cluster whose opportunistic workloads are the pods labelled
// app=<name> for each of apps.
func newEnv(nodes []*corev1.Node, ps []*corev1.Pod, apps ...string) *env {
	ws := make([]capacity.Workload, len(apps))
	for i, a := range apps {
		ws[i] = capacity.Workload{Key: "default/" + a, Namespace: "default", Selector: labels.SelectorFromSet(labels.Set{"app": a})}
	}
	e := &env{l: capacity.NewLedger(ws)}
	for _, n := range nodes {
		e.l.UpsertNode(capacity.FromNode(n))
	}
	for _, p := range ps {
		e.l.UpsertPod(capacity.FromPod(p))
	}
	return e
}

func (e *env) cluster() Cluster {
	return Cluster{Rooms: e.l.Rooms(), Pending: e.l.Pending(), Opportunistic: e.l.Opportunistic()}
}

// withBound sets each scaler's Bound and Stranded from the ledger (as the
// controller does, with PodCountsOf), and Current to all its bound pods
// unless it was set.
func (e *env) withBound(scalers ...Scaler) []Scaler {
	counts := PodCountsOf(e.l.Report())
	for i := range scalers {
		c := counts[scalers[i].Key]
		scalers[i].Bound, scalers[i].Stranded = c.Bound, c.Stranded
		if scalers[i].Current == 0 {
			scalers[i].Current = c.Bound + c.Stranded
		}
	}
	return scalers
}

func (e *env) decide(now time.Time, scalers ...Scaler) []Decision {
	return Decide(now, e.cluster(), e.withBound(scalers...))
}

type scalerOpt func(*Scaler)

// worker is the scaler of the pods labelled app=name, each requesting requests.
func worker(name string, requests corev1.ResourceList, opts ...scalerOpt) Scaler {
	s := Scaler{
		Key:   "default/" + name,
		Shape: capacity.ShapeOf(&kubePod(name, "", requests).Spec),
		Max:   1000,
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func bounds(lo, hi int32) scalerOpt { return func(s *Scaler) { s.Min, s.Max = lo, hi } }
func current(n int32) scalerOpt     { return func(s *Scaler) { s.Current = n } }
func headroom(name corev1.ResourceName, h Headroom) scalerOpt {
	return func(s *Scaler) {
		if s.Headroom == nil {
			s.Headroom = map[corev1.ResourceName]Headroom{}
		}
		s.Headroom[name] = h
	}
}
func cpuHeadroom(cores int64) scalerOpt {
	return headroom(corev1.ResourceCPU, Headroom{Quantity: cores * 1000})
}
func prio(p int32) scalerOpt        { return func(s *Scaler) { s.Priority = p } }
func weight(w int32) scalerOpt      { return func(s *Scaler) { s.Weight = w } }
func podPriority(p int32) scalerOpt { return func(s *Scaler) { s.PodPriority = p } }
func pool(k, v string) scalerOpt {
	return func(s *Scaler) { s.PoolSelector = labels.SelectorFromSet(labels.Set{k: v}) }
}
func nodeSelector(k, v string) scalerOpt {
	return func(s *Scaler) { s.Shape.NodeSelector = map[string]string{k: v} }
}
func tolerates(key string) scalerOpt {
	return func(s *Scaler) {
		s.Shape.Tolerations = append(s.Shape.Tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists})
	}
}
func scaleUp(b Behavior) scalerOpt   { return func(s *Scaler) { s.ScaleUp = b } }
func scaleDown(b Behavior) scalerOpt { return func(s *Scaler) { s.ScaleDown = b } }
func history(h History) scalerOpt    { return func(s *Scaler) { s.History = h } }

func byKey(ds []Decision) map[string]Decision {
	out := map[string]Decision{}
	for _, d := range ds {
		out[d.Key] = d
	}
	return out
}

func nodeNames(ns []*corev1.Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}

func concat[T any](parts ...[]T) []T {
	var out []T
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
