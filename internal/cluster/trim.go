package cluster

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/opportunist/opportunist/internal/capacity"
)

// PodObject is what the pod informer stores instead of a *corev1.Pod: the
// pod's identity and its capacity model, computed once when the event
// arrives. A full pod is several kilobytes; this keeps 150,000 of them small.
type PodObject struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	Model capacity.Pod
}

// DeepCopyObject implements runtime.Object. The model is never mutated after
// the transform built it, so sharing it is safe.
func (p *PodObject) DeepCopyObject() runtime.Object {
	out := *p
	p.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	return &out
}

// NodeObject is what the node informer stores instead of a *corev1.Node.
type NodeObject struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	Model capacity.Node
}

// DeepCopyObject implements runtime.Object; the model is immutable.
func (n *NodeObject) DeepCopyObject() runtime.Object {
	out := *n
	n.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	return &out
}

// TransformPod is the pod informer's transform: it replaces a pod by its
// PodObject. It must accept anything the informer hands it.
func TransformPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // e.g. cache.DeletedFinalStateUnknown
	}
	return &PodObject{ObjectMeta: trimMeta(&p.ObjectMeta), Model: capacity.FromPod(p)}, nil
}

// TransformNode is the node informer's transform.
func TransformNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &NodeObject{ObjectMeta: trimMeta(&n.ObjectMeta), Model: capacity.FromNode(n)}, nil
}

// trimMeta keeps the identity the informer's store and a controller need.
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
