package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/scale"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/scalerspec"
)

// Targets reads and writes scale targets: the reconciler's only I/O with
// the workloads it scales.
//
// Error contract: every error of Read and Shape wraps one of the
// scalerspec.Err* reasons (errors.Is works), so a bad target is its scaler's problem
// and never the round's. UpdateScale returns the API server's error as is
// (apierrors.IsConflict tells a stale resourceVersion).
type Targets interface {
	// Read resolves ref in namespace: its /scale, one replica's shape and
	// the priority its pods get. It may answer from a cache.
	Read(ctx context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference) (*scalerspec.Target, error)
	// Shape reads the shape of the pods a workload's template makes (a
	// slot's spec.headroomSlots[].shapeFrom): no /scale needed. scalerspec.ErrTargetMissing
	// means the workload does not exist. It may answer from a cache.
	Shape(ctx context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference) (capacity.Shape, error)
	// GetScale reads a target's /scale from the API server, never from a
	// cache: the fresh read after a conflicting update.
	GetScale(ctx context.Context, namespace string, gr schema.GroupResource, name string) (*autoscalingv1.Scale, error)
	// UpdateScale writes a target's /scale; sc carries the resourceVersion
	// it was read at.
	UpdateScale(ctx context.Context, namespace string, gr schema.GroupResource, sc *autoscalingv1.Scale) (*autoscalingv1.Scale, error)
}

var _ Targets = (*TargetReader)(nil)

// targetError carries one of the scalerspec.Err* reasons and a message for humans.
type targetError struct {
	reason error
	msg    string
}

func (e *targetError) Error() string { return e.msg }
func (e *targetError) Unwrap() error { return e.reason }

// TargetReader is the Targets of a real cluster: it reads targets through
// the dynamic client and their /scale through the scale client.
type TargetReader struct {
	Mapper  meta.RESTMapper
	Scales  scale.ScalesGetter
	Dynamic dynamic.Interface
	Kube    kubernetes.Interface
	// Cache, when set, serves the reads from watches (targetcache.go).
	Cache *TargetCache
}

// Read resolves ref in namespace. Every error wraps one of the Err* reasons.
func (r *TargetReader) Read(ctx context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference) (*scalerspec.Target, error) {
	obj, mapping, err := r.object(ctx, namespace, ref)
	if err != nil {
		return nil, err
	}
	gr := mapping.Resource.GroupResource()
	sc, err := r.getScale(ctx, gr, obj)
	if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
		// The object exists (read above), so a 404 here is the missing subresource.
		return nil, &targetError{scalerspec.ErrNoScale, fmt.Sprintf("%s %s/%s has no /scale subresource", ref.Kind, namespace, ref.Name)}
	}
	if err != nil {
		return nil, readError(fmt.Sprintf("reading /scale of %s %s/%s", ref.Kind, namespace, ref.Name), err)
	}
	tpl, err := podTemplate(obj)
	if err != nil {
		return nil, err
	}
	shape, err := templateShape(obj, tpl)
	if err != nil {
		return nil, err
	}
	prio, err := r.priority(ctx, &tpl.Spec)
	if err != nil {
		return nil, err
	}
	return &scalerspec.Target{GroupResource: gr, Scale: sc, Shape: shape, PodPriority: prio, TerminationGrace: terminationGrace(&tpl.Spec)}, nil
}

// terminationGrace is a pod spec's grace period, or the API server's
// default (30 s) when unset.
func terminationGrace(spec *corev1.PodSpec) time.Duration {
	if g := spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return corev1.DefaultTerminationGracePeriodSeconds * time.Second
}

// Shape reads the shape of the pods ref's template makes, like Read reads a
// target's (watched alone when Cache is set). Every error wraps one of the
// Err* reasons.
func (r *TargetReader) Shape(ctx context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference) (capacity.Shape, error) {
	obj, _, err := r.object(ctx, namespace, ref)
	if err != nil {
		return capacity.Shape{}, err
	}
	tpl, err := podTemplate(obj)
	if err != nil {
		return capacity.Shape{}, err
	}
	return templateShape(obj, tpl)
}

// object maps ref to its resource and reads it. Every error wraps one of
// the Err* reasons.
func (r *TargetReader) object(ctx context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference) (*unstructured.Unstructured, *meta.RESTMapping, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, nil, &targetError{scalerspec.ErrTargetMissing, fmt.Sprintf("apiVersion %q: %v", ref.APIVersion, err)}
	}
	mapping, err := r.Mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: ref.Kind}, gv.Version)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil, &targetError{scalerspec.ErrTargetMissing, fmt.Sprintf("the API server serves no kind %s in %s", ref.Kind, ref.APIVersion)}
		}
		return nil, nil, readError(fmt.Sprintf("mapping %s %s", ref.APIVersion, ref.Kind), err)
	}
	obj, err := r.getObject(ctx, mapping.Resource, namespace, ref.Name)
	if apierrors.IsNotFound(err) {
		return nil, nil, &targetError{scalerspec.ErrTargetMissing, fmt.Sprintf("%s %s/%s not found", ref.Kind, namespace, ref.Name)}
	}
	if err != nil {
		return nil, nil, readError(fmt.Sprintf("reading %s %s/%s", ref.Kind, namespace, ref.Name), err)
	}
	return obj, mapping, nil
}

// GetScale reads a target's /scale from the API server.
func (r *TargetReader) GetScale(ctx context.Context, namespace string, gr schema.GroupResource, name string) (*autoscalingv1.Scale, error) {
	return r.Scales.Scales(namespace).Get(ctx, gr, name, metav1.GetOptions{})
}

// UpdateScale writes a target's /scale.
func (r *TargetReader) UpdateScale(ctx context.Context, namespace string, gr schema.GroupResource, sc *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	return r.Scales.Scales(namespace).Update(ctx, gr, sc, metav1.UpdateOptions{FieldManager: "opportunist"})
}

// readError turns a failed read into its scaler's problem: Forbidden is
// TargetForbidden (fix the RBAC), anything else TargetUnavailable (the next
// round tries again). what says what was being read.
func readError(what string, err error) error {
	if apierrors.IsForbidden(err) {
		return &targetError{scalerspec.ErrTargetForbidden, fmt.Sprintf("%s: forbidden: grant opportunist read access to it: %v", what, err)}
	}
	return &targetError{scalerspec.ErrTargetUnavailable, fmt.Sprintf("%s: %v", what, err)}
}

// priority resolves the priority the pods of spec will get, as the Priority
// admission plugin would: the named class, else the global default, else 0.
func (r *TargetReader) priority(ctx context.Context, spec *corev1.PodSpec) (int32, error) {
	if spec.Priority != nil {
		return *spec.Priority, nil
	}
	if spec.PriorityClassName != "" {
		pc, err := r.getPriorityClass(ctx, spec.PriorityClassName)
		if apierrors.IsNotFound(err) {
			return 0, &targetError{scalerspec.ErrPriorityClassNotFound, fmt.Sprintf("the pod template names PriorityClass %s, which does not exist: its pods' priority is unknown", spec.PriorityClassName)}
		}
		if err != nil {
			return 0, readError("reading PriorityClass "+spec.PriorityClassName+" of the pod template", err)
		}
		return pc.Value, nil
	}
	classes, err := r.listPriorityClasses(ctx)
	if err != nil {
		return 0, readError("listing PriorityClasses", err)
	}
	for _, pc := range classes {
		if pc.GlobalDefault {
			return pc.Value, nil
		}
	}
	return 0, nil
}

// podTemplate reads spec.template (Deployments, StatefulSets, ReplicaSets,
// Jobs and most custom workloads keep their pod template there), else a
// CronJob's spec.jobTemplate.spec.template.
func podTemplate(obj *unstructured.Unstructured) (*corev1.PodTemplateSpec, error) {
	path := []string{"spec", "template"}
	raw, found, err := unstructured.NestedMap(obj.Object, path...)
	if err == nil && !found {
		path = []string{"spec", "jobTemplate", "spec", "template"}
		raw, found, err = unstructured.NestedMap(obj.Object, path...)
	}
	if err != nil || !found {
		return nil, &targetError{scalerspec.ErrNoTemplate, fmt.Sprintf("%s %s has no pod template at spec.template (nor, as a CronJob, at spec.jobTemplate.spec.template)", obj.GetKind(), obj.GetName())}
	}
	var tpl corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &tpl); err != nil {
		return nil, &targetError{scalerspec.ErrNoTemplate, fmt.Sprintf("%s %s: %s is not a pod template: %v", obj.GetKind(), obj.GetName(), strings.Join(path, "."), err)}
	}
	return &tpl, nil
}

// templateShape is one replica's shape; a template that requests nothing
// cannot be counted in replicas of room.
func templateShape(obj *unstructured.Unstructured, tpl *corev1.PodTemplateSpec) (capacity.Shape, error) {
	shape := capacity.ShapeOf(&tpl.Spec)
	for name, v := range shape.Requests {
		if name != corev1.ResourcePods && v > 0 {
			return shape, nil
		}
	}
	return capacity.Shape{}, &targetError{scalerspec.ErrNoRequests, fmt.Sprintf("%s %s: its pod template requests no resources, so room cannot be counted in replicas; set resources.requests", obj.GetKind(), obj.GetName())}
}
