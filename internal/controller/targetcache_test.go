package controller

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	scalefake "k8s.io/client-go/scale/fake"
	k8stesting "k8s.io/client-go/testing"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/scalerspec"
)

var (
	deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	// workers is a custom kind with a /scale subresource.
	workers = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "workers"}
)

// workload is a Deployment (or a Worker) with a pod template that requests
// cpu and, when priorityClass is set, names that class.
func workload(gvr schema.GroupVersionResource, name, rv string, replicas int64, priorityClass string) *unstructured.Unstructured {
	kind := map[string]string{"deployments": "Deployment", "workers": "Worker"}[gvr.Resource]
	spec := map[string]any{"containers": []any{map[string]any{"name": "c", "resources": map[string]any{"requests": map[string]any{"cpu": "1"}}}}}
	if priorityClass != "" {
		spec["priorityClassName"] = priorityClass
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": gvr.GroupVersion().String(), "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": "w", "resourceVersion": rv, "uid": "uid-" + name},
		"spec": map[string]any{
			"replicas": replicas,
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": name}}, "spec": spec},
		},
		"status": map[string]any{"replicas": replicas},
	}}
}

type cacheFixture struct {
	cache   *TargetCache
	reader  *TargetReader
	dynamic *dynamicfake.FakeDynamicClient
	kube    *kubefake.Clientset
	scales  *scalefake.FakeScaleClient
}

func newCacheFixture(t *testing.T, scalers []v1alpha1.OpportunisticScaler, objects ...runtime.Object) *cacheFixture {
	t.Helper()
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme,
		map[schema.GroupVersionResource]string{deploymentsGVR: "DeploymentList", workers: "WorkerList"}, objects...)
	kube := kubefake.NewClientset(
		&schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "low"}, Value: -10},
		&schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "normal"}, Value: 100, GlobalDefault: true})
	scales := &scalefake.FakeScaleClient{}
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Worker"}, meta.RESTScopeNamespace)
	crScheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(crScheme); err != nil {
		t.Fatal(err)
	}
	var objs []runtime.Object
	for i := range scalers {
		objs = append(objs, &scalers[i])
	}
	c := NewTargetCache(TargetClients{Dynamic: dyn, Kube: kube, WatchDynamic: dyn, WatchKube: kube}, scales, mapper, crfake.NewClientBuilder().WithScheme(crScheme).WithRuntimeObjects(objs...).Build(), slog.New(slog.DiscardHandler))
	t.Cleanup(c.stop)
	return &cacheFixture{
		cache:   c,
		reader:  &TargetReader{Mapper: mapper, Scales: c.WriteThrough(scales), Dynamic: dyn, Kube: kube, Cache: c},
		dynamic: dyn, kube: kube, scales: scales,
	}
}

func targetRef(kind, name string) autoscalingv2.CrossVersionObjectReference {
	apiVersion := map[string]string{"Deployment": "apps/v1", "Worker": "example.com/v1"}[kind]
	return autoscalingv2.CrossVersionObjectReference{APIVersion: apiVersion, Kind: kind, Name: name}
}

// verbs lists the verbs of the recorded requests, "get" for a GET.
func requestVerbs(actions []k8stesting.Action) []string {
	var out []string
	for _, a := range actions {
		out = append(out, a.GetVerb())
	}
	return out
}

func countVerb(actions []k8stesting.Action, verb string) int {
	n := 0
	for _, a := range actions {
		if a.GetVerb() == verb {
			n++
		}
	}
	return n
}

func (f *cacheFixture) read(t *testing.T, kind, name string) *scalerspec.Target {
	t.Helper()
	tg, err := f.reader.Read(context.Background(), "w", targetRef(kind, name))
	if err != nil {
		t.Fatalf("reading %s %s: %v", kind, name, err)
	}
	return tg
}

// waitUntil polls cond: watch events reach the informers asynchronously.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTargetCacheServesDeploymentsFromTheWatch: reading a Deployment
// target every round costs one list and one watch of that one object, and
// no GET of it or of its /scale.
func TestTargetCacheServesDeploymentsFromTheWatch(t *testing.T) {
	f := newCacheFixture(t, nil, workload(deploymentsGVR, "worker", "5", 3, ""), workload(deploymentsGVR, "other", "6", 1, ""))
	for range 5 {
		tg := f.read(t, "Deployment", "worker")
		if tg.Scale.Spec.Replicas != 3 || tg.Scale.Status.Selector != "app=worker" || tg.Scale.ResourceVersion != "5" {
			t.Fatalf("scale = %+v, want 3 replicas, selector app=worker, resourceVersion 5", tg.Scale)
		}
		if tg.PodPriority != 100 {
			t.Fatalf("pod priority = %d, want the global default's 100", tg.PodPriority)
		}
	}
	if got := requestVerbs(f.dynamic.Actions()); !slices.Equal(got, []string{"list", "watch"}) {
		t.Errorf("requests for the object: %v, want one list and one watch", got)
	}
	for _, a := range f.dynamic.Actions() {
		var sel string
		switch a := a.(type) {
		case k8stesting.ListAction:
			sel = a.GetListRestrictions().Fields.String()
		case k8stesting.WatchAction:
			sel = a.GetWatchRestrictions().Fields.String()
		}
		if sel != "metadata.name=worker" {
			t.Errorf("%s with field selector %q, want metadata.name=worker (so resourceNames RBAC allows it)", a.GetVerb(), sel)
		}
	}
	if n := len(f.scales.Actions()); n != 0 {
		t.Errorf("%d /scale requests, want none: a Deployment's /scale is derived from the object", n)
	}
	if got := requestVerbs(f.kube.Actions()); !slices.Equal(got, []string{"list", "watch"}) {
		t.Errorf("PriorityClass requests: %v, want one list and one watch", got)
	}
}

// TestDerivedScaleIsTheAPIServers: the /scale built from a Deployment is
// the one the API server serves for it.
func TestDerivedScaleIsTheAPIServers(t *testing.T) {
	obj := workload(deploymentsGVR, "worker", "5", 3, "")
	_ = unstructured.SetNestedField(obj.Object, int64(2), "status", "replicas")
	_ = unstructured.SetNestedField(obj.Object, []any{map[string]any{"key": "tier", "operator": "In", "values": []any{"b", "a"}}}, "spec", "selector", "matchExpressions")
	got, ok := derivedScale(deploymentsGVR.GroupResource(), obj)
	if !ok {
		t.Fatal("no scale derived from a Deployment")
	}
	want := &autoscalingv1.Scale{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "w", UID: "uid-worker", ResourceVersion: "5"},
		Spec:       autoscalingv1.ScaleSpec{Replicas: 3},
		Status:     autoscalingv1.ScaleStatus{Replicas: 2, Selector: "app=worker,tier in (a,b)"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("derived scale\n %+v\nwant\n %+v", got, want)
	}
	if _, ok := derivedScale(workers.GroupResource(), workload(workers, "w", "1", 1, "")); ok {
		t.Error("derived a scale for a custom kind: its /scale may map any fields")
	}
}

// TestTargetCacheReadsScaleOnlyWhenTheObjectChanged: a custom kind's /scale
// is read again only after its object's resourceVersion moved.
func TestTargetCacheReadsScaleOnlyWhenTheObjectChanged(t *testing.T) {
	f := newCacheFixture(t, nil, workload(workers, "worker", "5", 2, ""))
	replicas := int32(2)
	f.scales.AddReactor("get", "workers", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "w"},
			Spec: autoscalingv1.ScaleSpec{Replicas: replicas}, Status: autoscalingv1.ScaleStatus{Selector: "app=worker"}}, nil
	})
	for range 3 {
		if got := f.read(t, "Worker", "worker").Scale.Spec.Replicas; got != 2 {
			t.Fatalf("replicas = %d, want 2", got)
		}
	}
	if n := countVerb(f.scales.Actions(), "get"); n != 1 {
		t.Fatalf("%d GETs of /scale over 3 reads of an unchanged object, want 1", n)
	}
	replicas = 4
	if _, err := f.dynamic.Resource(workers).Namespace("w").Update(context.Background(), workload(workers, "worker", "6", 4, ""), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new replicas to be read", func() bool { return f.read(t, "Worker", "worker").Scale.Spec.Replicas == 4 })
	f.read(t, "Worker", "worker")
	if n := countVerb(f.scales.Actions(), "get"); n != 2 {
		t.Errorf("%d GETs of /scale after one change of the object, want 2", n)
	}
	if n := countVerb(f.dynamic.Actions(), "get"); n != 0 {
		t.Errorf("%d GETs of the object, want none: it comes from the watch", n)
	}
}

// TestTargetCacheFallsBackWhenTheWatchIsForbidden: RBAC that grants get
// but not list and watch still works, with a GET each read, and the refused
// watch is not retried on every read.
func TestTargetCacheFallsBackWhenTheWatchIsForbidden(t *testing.T) {
	f := newCacheFixture(t, nil, workload(deploymentsGVR, "worker", "5", 3, ""))
	forbidden := func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(deploymentsGVR.GroupResource(), "", errors.New("no list or watch"))
	}
	f.dynamic.PrependReactor("list", "deployments", forbidden)
	f.dynamic.PrependWatchReactor("deployments", func(a k8stesting.Action) (bool, watch.Interface, error) {
		_, _, err := forbidden(a)
		return true, nil, err
	})
	for range 3 {
		if got := f.read(t, "Deployment", "worker").Scale.Spec.Replicas; got != 3 {
			t.Fatalf("replicas = %d, want 3", got)
		}
	}
	if n := countVerb(f.dynamic.Actions(), "get"); n != 3 {
		t.Errorf("%d GETs over 3 reads with the watch refused, want 3", n)
	}
	if n := countVerb(f.dynamic.Actions(), "list") + countVerb(f.dynamic.Actions(), "watch"); n != 1 {
		t.Errorf("%d lists and watches, want the one refused: %v", n, requestVerbs(f.dynamic.Actions()))
	}
	if w := f.cache.Watching(); len(w) != 0 {
		t.Errorf("still watching %v after a refusal", w)
	}
}

// TestTargetCacheServesTheWrittenCount: after a /scale write, reads return
// the written count until the watch shows the object changed, and after a
// conflict the next read GETs /scale.
func TestTargetCacheServesTheWrittenCount(t *testing.T) {
	f := newCacheFixture(t, nil, workload(deploymentsGVR, "worker", "5", 3, ""))
	tg := f.read(t, "Deployment", "worker")
	f.scales.AddReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sc := a.(k8stesting.UpdateAction).GetObject().(*autoscalingv1.Scale).DeepCopy()
		sc.ResourceVersion = "6"
		return true, sc, nil
	})
	sc := tg.Scale.DeepCopy()
	sc.Spec.Replicas = 7
	if _, err := f.reader.Scales.Scales("w").Update(context.Background(), deploymentsGVR.GroupResource(), sc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := f.read(t, "Deployment", "worker").Scale; got.Spec.Replicas != 7 || got.ResourceVersion != "6" {
		t.Fatalf("read after writing 7: %d replicas at resourceVersion %s, want 7 at 6 (the watch has not shown the write yet)", got.Spec.Replicas, got.ResourceVersion)
	}
	// The watch shows a later change by someone else: the object wins.
	if _, err := f.dynamic.Resource(deploymentsGVR).Namespace("w").Update(context.Background(), workload(deploymentsGVR, "worker", "8", 2, ""), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the object's count to win once it changed", func() bool { return f.read(t, "Deployment", "worker").Scale.Spec.Replicas == 2 })

	f.scales.PrependReactor("update", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewConflict(deploymentsGVR.GroupResource(), "worker", errors.New("changed"))
	})
	f.scales.AddReactor("get", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "w", ResourceVersion: "9"}, Spec: autoscalingv1.ScaleSpec{Replicas: 9}}, nil
	})
	if _, err := f.reader.Scales.Scales("w").Update(context.Background(), deploymentsGVR.GroupResource(), sc, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("update error = %v, want the conflict", err)
	}
	if got := f.read(t, "Deployment", "worker").Scale.Spec.Replicas; got != 9 {
		t.Errorf("read after a conflict = %d replicas, want 9 from a GET of /scale", got)
	}
	if got := f.read(t, "Deployment", "worker").Scale.Spec.Replicas; got != 2 {
		t.Errorf("second read after a conflict = %d replicas, want 2 from the object again", got)
	}
}

// TestTargetCachePriorityClasses: classes come from the watch; a class not
// seen there is confirmed with a GET, so a missing one is still an error.
func TestTargetCachePriorityClasses(t *testing.T) {
	f := newCacheFixture(t, nil, workload(deploymentsGVR, "worker", "5", 3, "low"), workload(deploymentsGVR, "orphan", "5", 3, "missing"))
	for range 3 {
		if got := f.read(t, "Deployment", "worker").PodPriority; got != -10 {
			t.Fatalf("priority = %d, want -10 from PriorityClass low", got)
		}
	}
	if got := requestVerbs(f.kube.Actions()); !slices.Equal(got, []string{"list", "watch"}) {
		t.Errorf("PriorityClass requests: %v, want one list and one watch", got)
	}
	_, err := f.reader.Read(context.Background(), "w", targetRef("Deployment", "orphan"))
	if !errors.Is(err, scalerspec.ErrPriorityClassNotFound) {
		t.Errorf("reading a target whose PriorityClass is missing: %v, want %v", err, scalerspec.ErrPriorityClassNotFound)
	}
	if n := countVerb(f.kube.Actions(), "get"); n != 1 {
		t.Errorf("%d GETs of PriorityClasses, want 1 (confirming the miss)", n)
	}
}

// TestTargetCacheSweep: the watch of a target no scaler names stops.
func TestTargetCacheSweep(t *testing.T) {
	scaler := v1alpha1.OpportunisticScaler{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "w"}}
	scaler.Spec.ScaleTargetRef = targetRef("Deployment", "worker")
	f := newCacheFixture(t, []v1alpha1.OpportunisticScaler{scaler}, workload(deploymentsGVR, "worker", "5", 3, ""), workload(deploymentsGVR, "gone", "5", 3, ""))
	f.read(t, "Deployment", "worker")
	f.read(t, "Deployment", "gone")
	if n := len(f.cache.Watching()); n != 2 {
		t.Fatalf("watching %d targets, want 2", n)
	}
	if err := f.cache.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.cache.Watching(); !slices.Equal(got, []string{"deployments.apps w/worker"}) {
		t.Errorf("watching %v after the sweep, want only the named target", got)
	}
	// Named again later: watched again.
	f.read(t, "Deployment", "gone")
	if n := len(f.cache.Watching()); n != 2 {
		t.Errorf("watching %d targets after reading the swept one again, want 2", n)
	}
}

// TestTargetCacheShape: a slot's shapeFrom is read like a target, from a
// watch of that one workload and without /scale, and stays watched while a
// scaler's slot names it.
func TestTargetCacheShape(t *testing.T) {
	scaler := v1alpha1.OpportunisticScaler{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "w"}}
	scaler.Spec.ScaleTargetRef = targetRef("Deployment", "worker")
	scaler.Spec.HeadroomSlots = []v1alpha1.HeadroomSlot{{ShapeFrom: &v1alpha1.SlotShapeSource{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}, Count: intstr.FromInt32(4)}}
	f := newCacheFixture(t, []v1alpha1.OpportunisticScaler{scaler}, workload(deploymentsGVR, "web", "5", 3, ""))
	for range 3 {
		shape, err := f.reader.Shape(context.Background(), "w", targetRef("Deployment", "web"))
		if err != nil {
			t.Fatal(err)
		}
		if shape.Requests["cpu"] != 1000 || shape.Requests["pods"] != 1 {
			t.Fatalf("shape requests %v, want 1 core and one pod", shape.Requests)
		}
	}
	if n := countVerb(f.dynamic.Actions(), "get"); n != 0 {
		t.Errorf("%d GETs of the workload, want none: the watch serves it", n)
	}
	if n := len(f.scales.Actions()); n != 0 {
		t.Errorf("%d /scale requests, want none: a shape needs no /scale", n)
	}
	if _, err := f.reader.Shape(context.Background(), "w", targetRef("Deployment", "missing")); !errors.Is(err, scalerspec.ErrTargetMissing) {
		t.Errorf("shape of a missing workload: %v, want %v", err, scalerspec.ErrTargetMissing)
	}
	if _, err := f.reader.Shape(context.Background(), "w", targetRef("Gadget", "web")); !errors.Is(err, scalerspec.ErrTargetMissing) {
		t.Errorf("shape of a kind nobody serves: %v, want %v", err, scalerspec.ErrTargetMissing)
	}
	if err := f.cache.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.cache.Watching(); !slices.Equal(got, []string{"deployments.apps w/web"}) {
		t.Errorf("watching %v after the sweep, want only the workload a slot names", got)
	}
}
