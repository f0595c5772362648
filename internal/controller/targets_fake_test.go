package controller

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/scalerspec"
)

var deployments = schema.GroupResource{Group: "apps", Resource: "deployments"}

// fakeTargets is Targets over in-memory Deployments of one namespace, with
// the API server's optimistic concurrency: an update must carry the current
// resourceVersion.
type fakeTargets struct {
	mu      sync.Mutex
	targets map[string]*fakeTarget
	// shapes are the workloads slots read their shape from, by
	// "namespace/name"; a missing one is TargetNotFound, an error in
	// shapeErrs is returned as is.
	shapes    map[string]capacity.Shape
	shapeErrs map[string]error
	// gets and updates count the calls of GetScale and UpdateScale.
	gets, updates int
}

// fakeTarget is one Deployment as Targets sees it.
type fakeTarget struct {
	replicas int32
	cpu      string // one replica's CPU request
	grace    time.Duration
	priority int32
	version  int // resourceVersion
	// readErr is what Read returns instead of the target.
	readErr error
	// writesAfterRead: that many times, another writer (the Deployment
	// controller updating status) moves the resourceVersion right after a
	// Read, so the update that follows conflicts.
	writesAfterRead int
	// updateErr is what every UpdateScale returns.
	updateErr error
}

func newFakeTargets() *fakeTargets {
	return &fakeTargets{targets: map[string]*fakeTarget{}, shapes: map[string]capacity.Shape{}, shapeErrs: map[string]error{}}
}

// addShape makes namespace/name a workload whose pods request cpu.
func (f *fakeTargets) addShape(namespace, name, cpu string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shapes[namespace+"/"+name] = capacity.ShapeOf(&corev1.PodSpec{Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}})
}

func (f *fakeTargets) removeShape(namespace, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.shapes, namespace+"/"+name)
}

func (f *fakeTargets) Shape(_ context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference) (capacity.Shape, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.shapeErrs[namespace+"/"+ref.Name]; err != nil {
		return capacity.Shape{}, err
	}
	s, ok := f.shapes[namespace+"/"+ref.Name]
	if !ok {
		return capacity.Shape{}, &targetError{scalerspec.ErrTargetMissing, fmt.Sprintf("%s %s/%s not found", ref.Kind, namespace, ref.Name)}
	}
	return s, nil
}

func (f *fakeTargets) add(name string, t *fakeTarget) *fakeTarget {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.cpu == "" {
		t.cpu = "1"
	}
	t.version++
	f.targets[name] = t
	return t
}

func (f *fakeTargets) replicas(name string) int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.targets[name].replicas
}

func (t *fakeTarget) scale(namespace, name string) *autoscalingv1.Scale {
	return &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, ResourceVersion: strconv.Itoa(t.version)},
		Spec:       autoscalingv1.ScaleSpec{Replicas: t.replicas},
		Status:     autoscalingv1.ScaleStatus{Replicas: t.replicas, Selector: "app=" + name},
	}
}

func (f *fakeTargets) Read(_ context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference) (*scalerspec.Target, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.targets[ref.Name]
	if !ok {
		return nil, &targetError{scalerspec.ErrTargetMissing, fmt.Sprintf("%s %s/%s not found", ref.Kind, namespace, ref.Name)}
	}
	if t.readErr != nil {
		return nil, t.readErr
	}
	out := &scalerspec.Target{
		GroupResource:    deployments,
		Scale:            t.scale(namespace, ref.Name),
		Shape:            capacity.ShapeOf(&corev1.PodSpec{Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(t.cpu)}}}}}),
		PodPriority:      t.priority,
		TerminationGrace: t.grace,
	}
	if t.writesAfterRead > 0 {
		t.writesAfterRead--
		t.version++
	}
	return out, nil
}

func (f *fakeTargets) GetScale(_ context.Context, namespace string, gr schema.GroupResource, name string) (*autoscalingv1.Scale, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	t, ok := f.targets[name]
	if !ok {
		return nil, apierrors.NewNotFound(gr, name)
	}
	return t.scale(namespace, name), nil
}

func (f *fakeTargets) UpdateScale(_ context.Context, namespace string, gr schema.GroupResource, sc *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates++
	t, ok := f.targets[sc.Name]
	switch {
	case !ok:
		return nil, apierrors.NewNotFound(gr, sc.Name)
	case t.updateErr != nil:
		return nil, t.updateErr
	case sc.ResourceVersion != strconv.Itoa(t.version):
		return nil, apierrors.NewConflict(gr, sc.Name, fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
	}
	t.replicas = sc.Spec.Replicas
	t.version++
	return t.scale(namespace, sc.Name), nil
}

var _ Targets = (*fakeTargets)(nil)
