package cluster

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/opportunist/opportunist/internal/capacity"
)

// PodObject is what the pod informer stores instead of a *corev1.Pod: the
// pod's capacity model, computed once when the event arrives, and its
// resourceVersion, which tells the informer a real update from a resync. A
// full pod is several kilobytes, and even a trimmed ObjectMeta ~250 bytes:
// this keeps 150,000 of them small (BenchmarkCacheMemory). It implements
// metav1.Object over the model's namespace and name, for the informer's
// keys; the rest of the metadata reads as empty and is not kept.
type PodObject struct {
	ResourceVersion string
	Model           capacity.Pod
}

// GetObjectKind implements runtime.Object: a PodObject has no kind of its own.
func (*PodObject) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object. The model is never mutated after
// the transform built it, so sharing its maps is safe.
func (p *PodObject) DeepCopyObject() runtime.Object {
	out := *p
	return &out
}

var _ metav1.Object = &PodObject{}

func (p *PodObject) GetNamespace() string                        { return p.Model.Namespace }
func (p *PodObject) SetNamespace(s string)                       { p.Model.Namespace = s }
func (p *PodObject) GetName() string                             { return p.Model.Name }
func (p *PodObject) SetName(s string)                            { p.Model.Name = s }
func (p *PodObject) GetResourceVersion() string                  { return p.ResourceVersion }
func (p *PodObject) SetResourceVersion(s string)                 { p.ResourceVersion = s }
func (*PodObject) GetGenerateName() string                       { return "" }
func (*PodObject) SetGenerateName(string)                        {}
func (*PodObject) GetUID() types.UID                             { return "" }
func (*PodObject) SetUID(types.UID)                              {}
func (*PodObject) GetGeneration() int64                          { return 0 }
func (*PodObject) SetGeneration(int64)                           {}
func (*PodObject) GetSelfLink() string                           { return "" }
func (*PodObject) SetSelfLink(string)                            {}
func (*PodObject) GetCreationTimestamp() metav1.Time             { return metav1.Time{} }
func (*PodObject) SetCreationTimestamp(metav1.Time)              {}
func (*PodObject) GetDeletionTimestamp() *metav1.Time            { return nil }
func (*PodObject) SetDeletionTimestamp(*metav1.Time)             {}
func (*PodObject) GetDeletionGracePeriodSeconds() *int64         { return nil }
func (*PodObject) SetDeletionGracePeriodSeconds(*int64)          {}
func (*PodObject) GetLabels() map[string]string                  { return nil }
func (*PodObject) SetLabels(map[string]string)                   {}
func (*PodObject) GetAnnotations() map[string]string             { return nil }
func (*PodObject) SetAnnotations(map[string]string)              {}
func (*PodObject) GetFinalizers() []string                       { return nil }
func (*PodObject) SetFinalizers([]string)                        {}
func (*PodObject) GetOwnerReferences() []metav1.OwnerReference   { return nil }
func (*PodObject) SetOwnerReferences([]metav1.OwnerReference)    {}
func (*PodObject) GetManagedFields() []metav1.ManagedFieldsEntry { return nil }
func (*PodObject) SetManagedFields([]metav1.ManagedFieldsEntry)  {}

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
// PodObject, whose model shares equal namespaces, node names, labels and
// requests with the other pods' (podInterner). It must accept anything the
// informer hands it.
func TransformPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // e.g. cache.DeletedFinalStateUnknown
	}
	return &PodObject{ResourceVersion: p.ResourceVersion, Model: podInterner.Pod(capacity.FromPod(p))}, nil
}

// podInterner is shared by every cache in the process: the pods of one
// cluster, in practice.
var podInterner = capacity.NewInterner(0)

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
