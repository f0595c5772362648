package controller

import (
	"context"
	"errors"
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/scale"

	"github.com/opportunist/opportunist/internal/capacity"
)

// Target problems: each becomes a status condition reason, and no write.
var (
	ErrTargetMissing = errors.New("TargetNotFound")
	ErrNoScale       = errors.New("NoScaleSubresource")
	ErrNoTemplate    = errors.New("NoPodTemplate")
	ErrNoRequests    = errors.New("NoResourceRequests")
)

// targetError carries one of the Err* reasons and a message for humans.
type targetError struct {
	reason error
	msg    string
}

func (e *targetError) Error() string { return e.msg }
func (e *targetError) Unwrap() error { return e.reason }

// Target is what a scaler needs of its scale target.
type Target struct {
	GroupResource schema.GroupResource
	// Scale is the target's /scale: replicas and pod selector.
	Scale *autoscalingv1.Scale
	// Shape is one replica's shape, from the target's pod template.
	Shape capacity.Shape
	// PodPriority is the priority its pods get from their PriorityClass.
	PodPriority int32
}

// TargetReader reads scale targets: their /scale and their pod template.
type TargetReader struct {
	Mapper  meta.RESTMapper
	Scales  scale.ScalesGetter
	Dynamic dynamic.Interface
	Kube    kubernetes.Interface
	// Cache, when set, serves the reads from watches (targetcache.go).
	Cache *TargetCache
}

// Read resolves ref in namespace. Its errors wrap one of the Err* reasons
// when the problem is the target's, not the API server's.
func (r *TargetReader) Read(ctx context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference) (*Target, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, &targetError{ErrTargetMissing, fmt.Sprintf("scaleTargetRef.apiVersion %q: %v", ref.APIVersion, err)}
	}
	mapping, err := r.Mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: ref.Kind}, gv.Version)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, &targetError{ErrTargetMissing, fmt.Sprintf("the API server serves no kind %s in %s", ref.Kind, ref.APIVersion)}
		}
		return nil, fmt.Errorf("mapping %s %s: %w", ref.APIVersion, ref.Kind, err)
	}
	obj, err := r.getObject(ctx, mapping.Resource, namespace, ref.Name)
	if apierrors.IsNotFound(err) {
		return nil, &targetError{ErrTargetMissing, fmt.Sprintf("%s %s/%s not found", ref.Kind, namespace, ref.Name)}
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s %s/%s: %w", ref.Kind, namespace, ref.Name, err)
	}
	gr := mapping.Resource.GroupResource()
	sc, err := r.getScale(ctx, gr, obj)
	if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
		// The object exists (read above), so a 404 here is the missing subresource.
		return nil, &targetError{ErrNoScale, fmt.Sprintf("%s %s/%s has no /scale subresource", ref.Kind, namespace, ref.Name)}
	}
	if err != nil {
		return nil, fmt.Errorf("reading /scale of %s %s/%s: %w", ref.Kind, namespace, ref.Name, err)
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
	return &Target{GroupResource: gr, Scale: sc, Shape: shape, PodPriority: prio}, nil
}

// priority resolves the priority the pods of spec will get, as the Priority
// admission plugin would: the named class, else the global default, else 0.
func (r *TargetReader) priority(ctx context.Context, spec *corev1.PodSpec) (int32, error) {
	if spec.Priority != nil {
		return *spec.Priority, nil
	}
	if spec.PriorityClassName != "" {
		pc, err := r.getPriorityClass(ctx, spec.PriorityClassName)
		if err != nil {
			return 0, fmt.Errorf("reading PriorityClass %s of the pod template: %w", spec.PriorityClassName, err)
		}
		return pc.Value, nil
	}
	classes, err := r.listPriorityClasses(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing PriorityClasses: %w", err)
	}
	for _, pc := range classes {
		if pc.GlobalDefault {
			return pc.Value, nil
		}
	}
	return 0, nil
}

// podTemplate reads spec.template (Deployments, StatefulSets, ReplicaSets
// and most custom workloads keep their pod template there).
func podTemplate(obj *unstructured.Unstructured) (*corev1.PodTemplateSpec, error) {
	raw, found, err := unstructured.NestedMap(obj.Object, "spec", "template")
	if err != nil || !found {
		return nil, &targetError{ErrNoTemplate, fmt.Sprintf("%s %s has no pod template at spec.template", obj.GetKind(), obj.GetName())}
	}
	var tpl corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &tpl); err != nil {
		return nil, &targetError{ErrNoTemplate, fmt.Sprintf("%s %s: spec.template is not a pod template: %v", obj.GetKind(), obj.GetName(), err)}
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
	return capacity.Shape{}, &targetError{ErrNoRequests, fmt.Sprintf("%s %s: its pod template requests no resources, so room cannot be counted in replicas; set resources.requests", obj.GetKind(), obj.GetName())}
}
