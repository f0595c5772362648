package cluster

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrimPod keeps only what the capacity model (and later the controller) needs
// of a pod, so the informer cache of a 150,000-pod cluster stays small. It is
// an informer transform: it must accept anything the informer hands it.
func TrimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // e.g. cache.DeletedFinalStateUnknown
	}
	out := &corev1.Pod{
		ObjectMeta: trimMeta(&p.ObjectMeta),
		Spec: corev1.PodSpec{
			NodeName:          p.Spec.NodeName,
			Priority:          p.Spec.Priority,
			PriorityClassName: p.Spec.PriorityClassName,
			Overhead:          p.Spec.Overhead,
			Resources:         p.Spec.Resources,
			Containers:        trimContainers(p.Spec.Containers),
			InitContainers:    trimContainers(p.Spec.InitContainers),
		},
		Status: corev1.PodStatus{Phase: p.Status.Phase},
	}
	return out, nil
}

func trimContainers(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i := range cs {
		out[i] = corev1.Container{
			Name:          cs[i].Name,
			Resources:     corev1.ResourceRequirements{Requests: cs[i].Resources.Requests},
			RestartPolicy: cs[i].RestartPolicy, // marks restartable sidecars
		}
	}
	return out
}

// TrimNode keeps only what the capacity model needs of a node.
func TrimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	out := &corev1.Node{
		ObjectMeta: trimMeta(&n.ObjectMeta),
		Spec:       corev1.NodeSpec{Unschedulable: n.Spec.Unschedulable, Taints: n.Spec.Taints},
		Status:     corev1.NodeStatus{Capacity: n.Status.Capacity, Allocatable: n.Status.Allocatable},
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Status.Conditions = []corev1.NodeCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	return out, nil
}

func trimMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		Labels:            m.Labels,
		OwnerReferences:   m.OwnerReferences,
		DeletionTimestamp: m.DeletionTimestamp,
	}
}
