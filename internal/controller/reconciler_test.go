package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/scalerspec"
)

const testNamespace = "batch"

var roundStart = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// fakeCapacity is a capacity model fed through the real ledger.
type fakeCapacity struct{ *capacity.Ledger }

func (fakeCapacity) Stale() (time.Time, error) { return time.Time{}, nil }

// newCapacity is one Ready node of cores cores, with paidCores of them
// requested by a paid pod.
func newCapacity(cores, paidCores int) fakeCapacity {
	l := capacity.NewLedger(nil)
	l.UpsertNode(capacity.FromNode(&corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: *resource.NewQuantity(int64(cores), resource.DecimalSI), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("500")},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}))
	setPaid(l, paidCores)
	return fakeCapacity{l}
}

func setPaid(l *capacity.Ledger, cores int) {
	l.UpsertPod(capacity.FromPod(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "paid", Name: "app"},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: *resource.NewQuantity(int64(cores), resource.DecimalSI)}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}))
}

// scaler is an OpportunisticScaler of the Deployment of the same name, in
// [0, max], growing without a window unless window is set.
func scaler(name string, max int32, window *int32) *v1alpha1.OpportunisticScaler {
	if window == nil {
		window = new(int32)
	}
	return &v1alpha1.OpportunisticScaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name, Generation: 1},
		Spec: v1alpha1.OpportunisticScalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    new(int32),
			MaxReplicas:    max,
			Behavior:       v1alpha1.Behavior{ScaleUp: &v1alpha1.ScalingRules{StabilizationWindowSeconds: window}},
		},
	}
}

// world is one reconciler with everything around it faked.
type world struct {
	r       *Reconciler
	client  client.Client
	targets *fakeTargets
	events  *events.FakeRecorder
	clock   *clocktesting.FakeClock
	metrics *Metrics
	mu      sync.Mutex
	patches map[string]int // status patches by scaler name
}

func newWorld(t *testing.T, capacity fakeCapacity, targets *fakeTargets, scalers ...*v1alpha1.OpportunisticScaler) *world {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	w := &world{targets: targets, events: events.NewFakeRecorder(100), clock: clocktesting.NewFakeClock(roundStart), patches: map[string]int{}}
	objs := make([]client.Object, len(scalers))
	for i, s := range scalers {
		objs[i] = s
	}
	w.client = fake.NewClientBuilder().WithScheme(scheme).
		WithStatusSubresource(&v1alpha1.OpportunisticScaler{}).
		WithObjects(objs...).
		WithInterceptorFuncs(interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			w.mu.Lock()
			w.patches[obj.GetName()]++
			w.mu.Unlock()
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		}}).Build()
	w.metrics = NewMetrics(prometheus.NewRegistry())
	w.r = w.newReconciler(capacity)
	return w
}

// newReconciler is a reconciler as a freshly elected leader starts it: no
// memory of earlier rounds.
func (w *world) newReconciler(capacity fakeCapacity) *Reconciler {
	return &Reconciler{
		Client: w.client, Targets: w.targets, Capacity: capacity, Recorder: w.events,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: w.clock,
		Resync: 5 * time.Second, Metrics: w.metrics, StatusInterval: 30 * time.Second,
	}
}

func (w *world) round(t *testing.T) {
	t.Helper()
	res, err := w.r.Reconcile(context.Background(), RoundRequest)
	if err != nil {
		t.Fatalf("Reconcile: %v; a scaler's trouble must not fail the round", err)
	}
	if res.RequeueAfter != w.r.Resync {
		t.Fatalf("RequeueAfter %s, want the normal %s", res.RequeueAfter, w.r.Resync)
	}
}

func (w *world) status(t *testing.T, name string) v1alpha1.OpportunisticScalerStatus {
	t.Helper()
	var s v1alpha1.OpportunisticScaler
	if err := w.client.Get(context.Background(), client.ObjectKey{Namespace: testNamespace, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	return s.Status
}

// wantReady checks a scaler's Ready condition.
func (w *world) wantReady(t *testing.T, name string, status metav1.ConditionStatus, reason, says string) {
	t.Helper()
	c := meta.FindStatusCondition(w.status(t, name).Conditions, ConditionReady)
	if c == nil || c.Status != status || c.Reason != reason || !strings.Contains(c.Message, says) {
		t.Errorf("%s: Ready condition %+v, want %s %s saying %q", name, c, status, reason, says)
	}
}

// drainEvents returns the Events recorded so far.
func (w *world) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-w.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func (w *world) wantEvent(t *testing.T, prefix string) {
	t.Helper()
	evs := w.drainEvents()
	for _, e := range evs {
		if strings.HasPrefix(e, prefix) {
			return
		}
	}
	t.Errorf("no Event %q among %q", prefix, evs)
}

func (w *world) problem(name, reason string) float64 {
	return testutil.ToFloat64(w.metrics.problem.WithLabelValues(testNamespace+"/"+name, reason))
}

func (w *world) writes(name, direction, result string) float64 {
	return testutil.ToFloat64(w.metrics.scales.WithLabelValues(testNamespace+"/"+name, direction, result))
}

func TestReconcileIsolatesTargetReadErrors(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	tests := []struct {
		name    string
		readErr error
		reason  string
		says    string
	}{
		{name: "Forbidden GET", reason: "TargetForbidden", says: "forbidden",
			readErr: readError("reading Deployment batch/bad", apierrors.NewForbidden(gr, "bad", errors.New("RBAC: access denied")))},
		{name: "PriorityClass missing", reason: "PriorityClassNotFound", says: "PriorityClass gold",
			readErr: &targetError{scalerspec.ErrPriorityClassNotFound, "the pod template names PriorityClass gold, which does not exist: its pods' priority is unknown"}},
		{name: "5xx", reason: "TargetUnavailable", says: "etcdserver: request timed out",
			readErr: readError("reading /scale of Deployment batch/bad", apierrors.NewInternalError(errors.New("etcdserver: request timed out")))},
		{name: "timeout", reason: "TargetUnavailable", says: "the server was unable to return a response",
			readErr: readError("reading Deployment batch/bad", apierrors.NewTimeoutError("the server was unable to return a response in the time allotted", 1))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			targets := newFakeTargets()
			targets.add("bad", &fakeTarget{replicas: 3, readErr: tc.readErr})
			targets.add("good", &fakeTarget{replicas: 2})
			w := newWorld(t, newCapacity(20, 0), targets, scaler("bad", 100, nil), scaler("good", 100, nil))
			w.round(t)
			if got := targets.replicas("good"); got != 20 {
				t.Errorf("good scaled to %d, want 20: the other scaler's bad target must not stop it", got)
			}
			if got := targets.replicas("bad"); got != 3 {
				t.Errorf("bad scaled to %d, want it left at 3", got)
			}
			w.wantReady(t, "bad", metav1.ConditionFalse, tc.reason, tc.says)
			w.wantReady(t, "good", metav1.ConditionTrue, ReasonActive, "")
			w.wantEvent(t, "Warning "+tc.reason)
			if got := w.problem("bad", tc.reason); got != 1 {
				t.Errorf("opportunist_scaler_problem{reason=%s} = %v, want 1", tc.reason, got)
			}
		})
	}
}

func TestReconcileWritePath(t *testing.T) {
	t.Run("a conflicting update is retried on a fresh read", func(t *testing.T) {
		targets := newFakeTargets()
		targets.add("worker", &fakeTarget{replicas: 2, writesAfterRead: 1})
		w := newWorld(t, newCapacity(20, 0), targets, scaler("worker", 100, nil))
		w.round(t)
		if got := targets.replicas("worker"); got != 20 {
			t.Errorf("worker at %d, want 20", got)
		}
		if targets.gets != 1 || targets.updates != 2 {
			t.Errorf("%d fresh reads and %d updates, want 1 and 2", targets.gets, targets.updates)
		}
		if c, ok := w.writes("worker", "up", WriteConflict), w.writes("worker", "up", WriteOK); c != 1 || ok != 1 {
			t.Errorf("writes: %v conflict, %v ok; want 1 and 1", c, ok)
		}
		w.wantReady(t, "worker", metav1.ConditionTrue, ReasonActive, "")
		if st := w.status(t, "worker"); st.CurrentReplicas != 20 || st.LastScaleTime == nil {
			t.Errorf("status current %d, last scale %v; want 20 and set", st.CurrentReplicas, st.LastScaleTime)
		}
	})

	t.Run("a failed write is the scaler's: condition, Event, metric, normal requeue", func(t *testing.T) {
		targets := newFakeTargets()
		targets.add("broken", &fakeTarget{replicas: 2, updateErr: apierrors.NewInternalError(errors.New("admission webhook timed out"))})
		targets.add("fine", &fakeTarget{replicas: 2})
		w := newWorld(t, newCapacity(20, 0), targets, scaler("broken", 5, nil), scaler("fine", 5, nil))
		w.round(t) // checks err == nil and RequeueAfter == Resync
		if got := targets.replicas("fine"); got != 5 {
			t.Errorf("fine at %d, want 5", got)
		}
		w.wantReady(t, "broken", metav1.ConditionFalse, ReasonScaleFailed, "scaling from 2 to 5 failed")
		w.wantEvent(t, "Warning ScaleFailed")
		if st := w.status(t, "broken"); st.DesiredReplicas != 5 || st.CurrentReplicas != 2 {
			t.Errorf("status desired %d current %d, want 5 and 2", st.DesiredReplicas, st.CurrentReplicas)
		}
		if got := w.writes("broken", "up", WriteError); got != 1 {
			t.Errorf("writes{result=error} = %v, want 1", got)
		}
		if got := w.problem("broken", ReasonScaleFailed); got != 1 {
			t.Errorf("opportunist_scaler_problem{reason=ScaleFailed} = %v, want 1", got)
		}
	})

	t.Run("a target that keeps changing gives up after a bounded number of tries", func(t *testing.T) {
		targets := newFakeTargets()
		targets.add("busy", &fakeTarget{replicas: 2})
		w := newWorld(t, newCapacity(20, 0), targets, scaler("busy", 5, nil))
		targets.targets["busy"].updateErr = apierrors.NewConflict(deployments, "busy", errors.New("modified"))
		w.round(t)
		if want := scaleRetry.Steps; targets.updates != want {
			t.Errorf("%d updates, want %d", targets.updates, want)
		}
		w.wantReady(t, "busy", metav1.ConditionFalse, ReasonScaleFailed, "conflicted")
	})
}

func TestReconcileWritesStatusOnlyOnChange(t *testing.T) {
	targets := newFakeTargets()
	targets.add("worker", &fakeTarget{replicas: 5})
	capacity := newCapacity(20, 0)
	w := newWorld(t, capacity, targets, scaler("worker", 5, nil))

	w.round(t)
	w.clock.Step(time.Second)
	w.round(t)
	if got := w.patches["worker"]; got != 1 {
		t.Fatalf("two identical rounds made %d status patches, want 1", got)
	}
	before := w.status(t, "worker")

	// Paid load takes 3 cores: the budget and the reason's numbers move,
	// the decision (5, limited by max) does not.
	setPaid(capacity.Ledger, 3)
	w.clock.Step(time.Second)
	w.round(t)
	if got := w.patches["worker"]; got != 1 {
		t.Errorf("a change of the live numbers only, within --status-interval, made %d patches in all, want still 1", got)
	}
	w.clock.Step(w.r.StatusInterval)
	w.round(t)
	after := w.status(t, "worker")
	if got := w.patches["worker"]; got != 2 || after.BudgetReplicas != 17 || after.Reason == before.Reason {
		t.Errorf("after --status-interval: %d patches, budget %d (reason %q); want 2 patches and budget 17", got, after.BudgetReplicas, after.Reason)
	}

	// A change of the decision is written at once.
	setPaid(capacity.Ledger, 17)
	w.clock.Step(time.Second)
	w.round(t)
	if got, st := w.patches["worker"], w.status(t, "worker"); got != 3 || st.DesiredReplicas != 3 {
		t.Errorf("a new decision: %d patches, desired %d; want 3 and 3", got, st.DesiredReplicas)
	}
}

func TestReconcileRestartKeepsTheWindow(t *testing.T) {
	window := int32(30)
	targets := newFakeTargets()
	targets.add("worker", &fakeTarget{replicas: 10})
	capacity := newCapacity(20, 0)
	w := newWorld(t, capacity, targets, scaler("worker", 100, &window))
	for _, step := range []struct {
		at   time.Duration
		want int32
	}{{0, 10}, {10 * time.Second, 10}, {29 * time.Second, 10}, {31 * time.Second, 20}} {
		w.clock.SetTime(roundStart.Add(step.at))
		w.round(t)
		if got := targets.replicas("worker"); got != step.want {
			t.Fatalf("%s after the new leader's first round: worker at %d, want %d (a %ds scale-up window)", step.at, got, step.want, window)
		}
	}
	// A second failover starts a new window again.
	setPaid(capacity.Ledger, 0)
	targets.targets["worker"].replicas = 10
	w.r = w.newReconciler(capacity)
	w.clock.Step(time.Minute)
	w.round(t)
	if got := targets.replicas("worker"); got != 10 {
		t.Errorf("right after another failover: worker at %d, want 10", got)
	}
}

// staleCapacity is capacity data stale since a time.
type staleCapacity struct {
	fakeCapacity
	since time.Time
}

func (s staleCapacity) Stale() (time.Time, error) {
	return s.since, errors.New("list/watch pods: forbidden")
}

func TestStaleRoundIsolatesTargets(t *testing.T) {
	targets := newFakeTargets()
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	targets.add("bad", &fakeTarget{replicas: 5, readErr: readError("reading Deployment batch/bad", apierrors.NewForbidden(gr, "bad", errors.New("RBAC")))})
	targets.add("broken", &fakeTarget{replicas: 5, updateErr: apierrors.NewServiceUnavailable("webhook down")})
	targets.add("good", &fakeTarget{replicas: 5})
	min := int32(1)
	scalers := []*v1alpha1.OpportunisticScaler{scaler("bad", 10, nil), scaler("broken", 10, nil), scaler("good", 10, nil)}
	for _, s := range scalers {
		s.Spec.MinReplicas = &min
	}
	w := newWorld(t, newCapacity(20, 0), targets, scalers...)
	w.r.Capacity = staleCapacity{newCapacity(20, 0), roundStart.Add(-time.Minute)}
	w.r.Stale = StalePolicy{After: 30 * time.Second, Behaviour: StaleShrinkToMin}
	res, err := w.r.Reconcile(context.Background(), RoundRequest)
	if err != nil || res.RequeueAfter != time.Second {
		t.Fatalf("Reconcile: %v, requeue %s; want nil and 1s", err, res.RequeueAfter)
	}
	if got := targets.replicas("good"); got != 1 {
		t.Errorf("good at %d, want its min 1 (shrink-to-min)", got)
	}
	w.wantReady(t, "good", metav1.ConditionFalse, ReasonCapacityStale, "shrink-to-min applied")
	w.wantReady(t, "bad", metav1.ConditionFalse, "TargetForbidden", "forbidden")
	w.wantReady(t, "broken", metav1.ConditionFalse, ReasonScaleFailed, "scaling down to minReplicas failed")
	if got := w.writes("broken", "down", WriteError); got != 1 {
		t.Errorf("broken: writes{result=error} = %v, want 1", got)
	}
}
