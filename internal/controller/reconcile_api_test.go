package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	scalefake "k8s.io/client-go/scale/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
)

// These tests run one Reconcile through the real TargetReader over
// client-go's fakes (an API server's answers, errors included), so they
// cover the TargetReader's error classification too.

// apiDeployment is a Deployment as the fake API server serves it.
type apiDeployment struct {
	replicas      int32
	version       int
	priorityClass string
	// getErr is the answer to GET of the Deployment, scaleGetErr to GET of
	// its /scale, updateErr to every update of its /scale.
	getErr, scaleGetErr, updateErr error
	// writesAfterRead: that many times, a status write moves the
	// resourceVersion right after a GET of /scale.
	writesAfterRead int
}

type fakeAPI struct {
	mu      sync.Mutex
	deploys map[string]*apiDeployment
	updates map[string]int
}

const apiNamespace = "batch"

func (a *fakeAPI) scaleOf(name string, d *apiDeployment) *autoscalingv1.Scale {
	return &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Namespace: apiNamespace, Name: name, ResourceVersion: strconv.Itoa(d.version)},
		Spec:       autoscalingv1.ScaleSpec{Replicas: d.replicas},
		Status:     autoscalingv1.ScaleStatus{Replicas: d.replicas, Selector: "app=" + name},
	}
}

// reader is a real TargetReader over the fake API server.
func (a *fakeAPI) reader(t *testing.T, classes ...runtime.Object) *TargetReader {
	t.Helper()
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{appsv1.SchemeGroupVersion})
	mapper.Add(appsv1.SchemeGroupVersion.WithKind("Deployment"), meta.RESTScopeNamespace)
	dyn := dynamicfake.NewSimpleDynamicClient(clientgoscheme.Scheme)
	dyn.PrependReactor("get", "deployments", func(action clienttesting.Action) (bool, runtime.Object, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		name := action.(clienttesting.GetAction).GetName()
		d, ok := a.deploys[name]
		switch {
		case !ok:
			return true, nil, apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: "deployments"}, name)
		case d.getErr != nil:
			return true, nil, d.getErr
		}
		dep := &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Namespace: apiNamespace, Name: name},
			Spec: appsv1.DeploymentSpec{Replicas: &d.replicas, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				PriorityClassName: d.priorityClass,
				Containers:        []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}},
			}}},
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(dep)
		return true, &unstructured.Unstructured{Object: u}, err
	})
	scales := &scalefake.FakeScaleClient{}
	scales.AddReactor("get", "deployments", func(action clienttesting.Action) (bool, runtime.Object, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		name := action.(clienttesting.GetAction).GetName()
		d := a.deploys[name]
		if d.scaleGetErr != nil {
			return true, nil, d.scaleGetErr
		}
		sc := a.scaleOf(name, d)
		if d.writesAfterRead > 0 {
			d.writesAfterRead--
			d.version++
		}
		return true, sc, nil
	})
	scales.AddReactor("update", "deployments", func(action clienttesting.Action) (bool, runtime.Object, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		sc := action.(clienttesting.UpdateAction).GetObject().(*autoscalingv1.Scale)
		d := a.deploys[sc.Name]
		a.updates[sc.Name]++
		switch {
		case d.updateErr != nil:
			return true, nil, d.updateErr
		case sc.ResourceVersion != strconv.Itoa(d.version):
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, sc.Name, errors.New("the object has been modified"))
		}
		d.replicas = sc.Spec.Replicas
		d.version++
		return true, a.scaleOf(sc.Name, d), nil
	})
	return &TargetReader{Mapper: mapper, Scales: scales, Dynamic: dyn, Kube: kubefake.NewSimpleClientset(classes...)}
}

func (a *fakeAPI) replicas(name string) int32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.deploys[name].replicas
}

// apiRun is one reconciler over the fake API server.
type apiRun struct {
	r       *Reconciler
	api     *fakeAPI
	client  client.Client
	events  *events.FakeRecorder
	clock   *clocktesting.FakeClock
	reg     *prometheus.Registry
	ledger  *capacity.Ledger
	patches map[string]int
	mu      sync.Mutex
}

type apiCapacity struct{ *capacity.Ledger }

func (apiCapacity) Stale() (time.Time, error) { return time.Time{}, nil }

func apiPaid(l *capacity.Ledger, cores int64) {
	l.UpsertPod(capacity.FromPod(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "paid", Name: "app"},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: *resource.NewQuantity(cores, resource.DecimalSI)}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}))
}

// apiScaler scales the Deployment of its name within [0, max].
func apiScaler(name string, max, window int32) *v1alpha1.OpportunisticScaler {
	return &v1alpha1.OpportunisticScaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: apiNamespace, Name: name, Generation: 1},
		Spec: v1alpha1.OpportunisticScalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    new(int32),
			MaxReplicas:    max,
			Behavior:       v1alpha1.Behavior{ScaleUp: &v1alpha1.ScalingRules{StabilizationWindowSeconds: &window}},
		},
	}
}

// newAPIRun: one 20-core node, the Deployments and their scalers.
func newAPIRun(t *testing.T, deploys map[string]*apiDeployment, scalers []*v1alpha1.OpportunisticScaler, classes ...runtime.Object) *apiRun {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ar := &apiRun{api: &fakeAPI{deploys: deploys, updates: map[string]int{}}, events: events.NewFakeRecorder(100),
		clock: clocktesting.NewFakeClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)), reg: prometheus.NewRegistry(), patches: map[string]int{}}
	objs := make([]client.Object, len(scalers))
	for i, s := range scalers {
		objs[i] = s
	}
	ar.client = fake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(&v1alpha1.OpportunisticScaler{}).WithObjects(objs...).
		WithInterceptorFuncs(interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			ar.mu.Lock()
			ar.patches[obj.GetName()]++
			ar.mu.Unlock()
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		}}).Build()
	ar.ledger = capacity.NewLedger(nil)
	ar.ledger.UpsertNode(capacity.FromNode(&corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("20"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("500")},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}))
	apiPaid(ar.ledger, 0)
	metrics := NewMetrics(ar.reg)
	ar.r = &Reconciler{Client: ar.client, Targets: ar.api.reader(t, classes...), Capacity: apiCapacity{ar.ledger}, Recorder: ar.events,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: ar.clock, Resync: 5 * time.Second, Metrics: metrics}
	ar.r.StatusInterval = 30 * time.Second
	return ar
}

// round runs one Reconcile and returns its error and requeue.
func (ar *apiRun) round() (time.Duration, error) {
	res, err := ar.r.Reconcile(context.Background(), RoundRequest)
	return res.RequeueAfter, err
}

func (ar *apiRun) ready(t *testing.T, name string) *metav1.Condition {
	t.Helper()
	var s v1alpha1.OpportunisticScaler
	if err := ar.client.Get(context.Background(), client.ObjectKey{Namespace: apiNamespace, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	return meta.FindStatusCondition(s.Status.Conditions, ConditionReady)
}

// series sums the samples of a metric family whose labels include want.
func (ar *apiRun) series(t *testing.T, family string, want map[string]string) float64 {
	t.Helper()
	mfs, err := ar.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			total += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return total
}

func (ar *apiRun) eventsSaying(reason string) int {
	n := 0
	for {
		select {
		case e := <-ar.events.Events:
			if strings.Contains(e, " "+reason+" ") {
				n++
			}
		default:
			return n
		}
	}
}

func TestReconcileOverTheAPI(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	twoScalers := []*v1alpha1.OpportunisticScaler{apiScaler("bad", 100, 0), apiScaler("good", 100, 0)}
	readErrors := []struct {
		name   string
		bad    *apiDeployment
		reason string
	}{
		{name: "Forbidden GET of one target", reason: "TargetForbidden",
			bad: &apiDeployment{replicas: 3, getErr: apierrors.NewForbidden(gr, "bad", errors.New("RBAC: access denied"))}},
		{name: "PriorityClass of one target missing", reason: "PriorityClassNotFound",
			bad: &apiDeployment{replicas: 3, priorityClass: "gold"}},
		{name: "5xx on one target's /scale", reason: "TargetUnavailable",
			bad: &apiDeployment{replicas: 3, scaleGetErr: apierrors.NewServiceUnavailable("etcd is down")}},
	}
	for _, tc := range readErrors {
		t.Run(tc.name, func(t *testing.T) {
			ar := newAPIRun(t, map[string]*apiDeployment{"bad": tc.bad, "good": {replicas: 2}}, twoScalers)
			requeue, err := ar.round()
			c := ar.ready(t, "bad")
			t.Logf("good at %d, bad at %d, Reconcile error %v, requeue %s, bad's Ready %+v", ar.api.replicas("good"), ar.api.replicas("bad"), err, requeue, c)
			if err != nil || requeue != ar.r.Resync {
				t.Errorf("Reconcile: %v, requeue %s; want nil and %s", err, requeue, ar.r.Resync)
			}
			if got := ar.api.replicas("good"); got != 20 {
				t.Errorf("good at %d, want 20", got)
			}
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != tc.reason {
				t.Errorf("bad's Ready %+v, want False %s", c, tc.reason)
			}
			if n := ar.eventsSaying(tc.reason); n != 1 {
				t.Errorf("%d Events %s, want 1", n, tc.reason)
			}
			if got := ar.series(t, "opportunist_scaler_problem", map[string]string{"scaler": "batch/bad", "reason": tc.reason}); got != 1 {
				t.Errorf("opportunist_scaler_problem{reason=%s} = %v, want 1", tc.reason, got)
			}
		})
	}

	t.Run("conflicting update", func(t *testing.T) {
		ar := newAPIRun(t, map[string]*apiDeployment{"worker": {replicas: 2, writesAfterRead: 1}}, []*v1alpha1.OpportunisticScaler{apiScaler("worker", 100, 0)})
		requeue, err := ar.round()
		conflicts := ar.series(t, "opportunist_scale_writes_total", map[string]string{"scaler": "batch/worker", "result": "conflict"})
		oks := ar.series(t, "opportunist_scale_writes_total", map[string]string{"scaler": "batch/worker", "result": "ok"})
		t.Logf("worker at %d after one round, %d updates (%v conflict, %v ok), Reconcile error %v, requeue %s", ar.api.replicas("worker"), ar.api.updates["worker"], conflicts, oks, err, requeue)
		if err != nil || ar.api.replicas("worker") != 20 || conflicts != 1 || oks != 1 {
			t.Errorf("want worker at 20 in one round, one conflict then one ok, no error")
		}
	})

	t.Run("failed write", func(t *testing.T) {
		ar := newAPIRun(t, map[string]*apiDeployment{"worker": {replicas: 2, updateErr: apierrors.NewInternalError(errors.New("webhook timed out"))}},
			[]*v1alpha1.OpportunisticScaler{apiScaler("worker", 100, 0)})
		requeue, err := ar.round()
		c := ar.ready(t, "worker")
		errs := ar.series(t, "opportunist_scale_writes_total", map[string]string{"scaler": "batch/worker", "result": "error"})
		t.Logf("Reconcile error %v, requeue %s, Ready %+v, %v writes counted error, %d ScaleFailed Events", err, requeue, c, errs, ar.eventsSaying("ScaleFailed"))
		if err != nil || requeue != ar.r.Resync {
			t.Errorf("Reconcile: %v, requeue %s; want nil and %s", err, requeue, ar.r.Resync)
		}
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != "ScaleFailed" || errs != 1 {
			t.Errorf("want Ready=False ScaleFailed and one write counted error")
		}
	})

	t.Run("status only on change", func(t *testing.T) {
		ar := newAPIRun(t, map[string]*apiDeployment{"worker": {replicas: 5}}, []*v1alpha1.OpportunisticScaler{apiScaler("worker", 5, 0)})
		_, _ = ar.round()
		ar.clock.Step(time.Second)
		_, _ = ar.round()
		identical := ar.patches["worker"]
		apiPaid(ar.ledger, 3) // the budget and the reason move, the decision does not
		ar.clock.Step(time.Second)
		_, _ = ar.round()
		t.Logf("status patches: %d after two identical rounds, %d after a third whose reason alone changed", identical, ar.patches["worker"])
		if identical != 1 || ar.patches["worker"] != 1 {
			t.Errorf("want 1 and 1")
		}
	})

	t.Run("a new leader keeps the window", func(t *testing.T) {
		ar := newAPIRun(t, map[string]*apiDeployment{"worker": {replicas: 10}}, []*v1alpha1.OpportunisticScaler{apiScaler("worker", 100, 30)})
		var trace []string
		for _, at := range []time.Duration{0, 10 * time.Second, 29 * time.Second, 31 * time.Second} {
			ar.clock.SetTime(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).Add(at))
			_, _ = ar.round()
			trace = append(trace, fmt.Sprintf("%s:%d", at, ar.api.replicas("worker")))
		}
		t.Logf("worker (current 10, room for 20, 30s scale-up window) after rounds at %v", trace)
		if want := []string{"0s:10", "10s:10", "29s:10", "31s:20"}; strings.Join(trace, " ") != strings.Join(want, " ") {
			t.Errorf("want %v", want)
		}
	})

	t.Run("PriorityClass that exists", func(t *testing.T) {
		gold := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "gold"}, Value: 1000}
		ar := newAPIRun(t, map[string]*apiDeployment{"worker": {replicas: 2, priorityClass: "gold"}}, []*v1alpha1.OpportunisticScaler{apiScaler("worker", 100, 0)}, gold)
		target, err := ar.r.Targets.Read(context.Background(), apiNamespace, apiScaler("worker", 1, 0).Spec.ScaleTargetRef)
		if err != nil || target.PodPriority != 1000 {
			t.Errorf("Read: priority %v, err %v; want 1000", target, err)
		}
	})
}
