package capacity

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// list builds a resource list from name/quantity pairs: list("cpu", "2", "memory", "1Gi").
func list(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
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

func withCapacity(c corev1.ResourceList) nodeOpt {
	return func(n *corev1.Node) { n.Status.Capacity = c }
}
func notReady() nodeOpt {
	return func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionUnknown }
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

func kubePod(name, node string, requests corev1.ResourceList, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": "paid"}},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "main", Resources: corev1.ResourceRequirements{Requests: requests}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }
func app(name string) podOpt          { return func(p *corev1.Pod) { p.Labels["app"] = name } }
func initContainer(requests corev1.ResourceList, sidecar bool) podOpt {
	return func(p *corev1.Pod) {
		c := corev1.Container{Name: "init", Resources: corev1.ResourceRequirements{Requests: requests}}
		if sidecar {
			always := corev1.ContainerRestartPolicyAlways
			c.RestartPolicy = &always
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
}
func overhead(o corev1.ResourceList) podOpt { return func(p *corev1.Pod) { p.Spec.Overhead = o } }

func nodes(kn ...*corev1.Node) []Node {
	out := make([]Node, len(kn))
	for i, n := range kn {
		out[i] = FromNode(n)
	}
	return out
}

func pods(kp ...*corev1.Pod) []Pod {
	out := make([]Pod, len(kp))
	for i, p := range kp {
		out[i] = FromPod(p)
	}
	return out
}

func workload(appName string) Workload {
	return Workload{Key: "default/" + appName, Namespace: "default", Selector: labels.SelectorFromSet(labels.Set{"app": appName})}
}
