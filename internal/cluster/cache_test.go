package cluster

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/opportunist/opportunist/internal/capacity"
)

func node(name, cpu string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{"cpu": resource.MustParse(cpu), "pods": resource.MustParse("110")},
			Allocatable: corev1.ResourceList{"cpu": resource.MustParse(cpu), "pods": resource.MustParse("110")},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
}

func pod(name, nodeName, cpu string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{
			Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": resource.MustParse(cpu)}},
		}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func cpuRequests(c *Cache) int64 {
	r, _ := c.Report().Resource(corev1.ResourceCPU)
	return r.Requests
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCacheFollowsEvents(t *testing.T) {
	client := fake.NewClientset(node("a", "32"), pod("p1", "a", "2"))
	c := New(client, Options{Probe: func(context.Context) error { return nil }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	if err := c.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := cpuRequests(c); got != 2000 {
		t.Fatalf("cpu requests after sync = %d, want 2000", got)
	}
	pods := client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, pod("p2", "a", "500m"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "p2 to be counted", func() bool { return cpuRequests(c) == 2500 })
	select {
	case <-c.Changes():
	default:
		t.Fatal("no change signalled after a pod event")
	}

	done := pod("p1", "a", "2")
	done.Status.Phase = corev1.PodSucceeded
	if _, err := pods.Update(ctx, done, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "p1 to stop counting once Succeeded", func() bool { return cpuRequests(c) == 500 })

	if err := pods.Delete(ctx, "p2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "p2 deletion", func() bool { return cpuRequests(c) == 0 })

	if err := client.CoreV1().Nodes().Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node deletion", func() bool { r, _ := c.Report().Resource(corev1.ResourceCPU); return r.Allocatable == 0 })
}

func TestPaidPodWaitIsMeasured(t *testing.T) {
	var waits atomic.Int32
	client := fake.NewClientset(node("a", "32"), pod("waiting", "", "1"))
	c := New(client, Options{Probe: func(context.Context) error { return nil }, PaidPodScheduled: func(time.Duration) { waits.Add(1) }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	if err := c.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	if waits.Load() != 0 {
		t.Fatal("a wait was reported before the pod was bound")
	}
	if _, err := client.CoreV1().Pods("default").Update(ctx, pod("waiting", "a", "1"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the paid pod's wait to be reported once bound", func() bool { return waits.Load() == 1 })
}

func TestReadyFollowsProbe(t *testing.T) {
	var failing atomic.Bool
	client := fake.NewClientset()
	c := New(client, Options{ProbeInterval: 10 * time.Millisecond, Probe: func(context.Context) error {
		if failing.Load() {
			return errors.New("connection refused")
		}
		return nil
	}})
	if err := c.Ready(); err == nil {
		t.Fatal("ready before the informers synced")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	if err := c.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ready", func() bool { return c.Ready() == nil })
	failing.Store(true)
	eventually(t, "unready while the API server is gone", func() bool { return c.Ready() != nil })
	failing.Store(false)
	eventually(t, "ready again", func() bool { return c.Ready() == nil })
}

// TestTransformKeepsWhatTheModelNeeds checks that the informer transforms
// model exactly what the full objects model, and keep the identity.
func TestTransformKeepsWhatTheModelNeeds(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	prio := int32(-10)
	p := pod("full", "a", "1")
	p.ResourceVersion = "42"
	p.Labels = map[string]string{"app": "worker"}
	p.Spec.Priority = &prio
	p.Spec.Overhead = corev1.ResourceList{"cpu": resource.MustParse("100m")}
	p.Spec.InitContainers = []corev1.Container{
		{Name: "sidecar", RestartPolicy: &always, Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": resource.MustParse("250m")}}},
		{Name: "setup", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{"memory": resource.MustParse("2Gi")}}},
	}
	p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	obj, err := TransformPod(p)
	if err != nil {
		t.Fatal(err)
	}
	got := obj.(*PodObject)
	if want := capacity.FromPod(p); !reflect.DeepEqual(got.Model, want) {
		t.Fatalf("transformed pod models differently:\n got  %+v\n want %+v", got.Model, want)
	}
	if got.GetNamespace() != "default" || got.GetName() != "full" || got.GetResourceVersion() != "42" {
		t.Fatalf("transformed pod identity wrong: %+v", got)
	}
	if copied := got.DeepCopyObject().(*PodObject); !reflect.DeepEqual(copied, got) {
		t.Fatal("DeepCopyObject changed the object")
	}
	// Pods of one ReplicaSet share their labels and requests (capacity.Interner).
	twin := p.DeepCopy()
	twin.Name = "twin"
	obj2, _ := TransformPod(twin)
	if a, b := got.Model, obj2.(*PodObject).Model; reflect.ValueOf(a.Labels).UnsafePointer() != reflect.ValueOf(b.Labels).UnsafePointer() ||
		reflect.ValueOf(a.Requests).UnsafePointer() != reflect.ValueOf(b.Requests).UnsafePointer() {
		t.Error("equal pods do not share their labels and requests")
	}

	n := node("a", "32")
	n.Spec.Unschedulable = true
	n.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}
	n.Status.Images = []corev1.ContainerImage{{Names: []string{"big"}}}
	nobj, _ := TransformNode(n)
	if got, want := nobj.(*NodeObject).Model, capacity.FromNode(n); !reflect.DeepEqual(got, want) {
		t.Fatalf("transformed node models differently:\n got  %+v\n want %+v", got, want)
	}
	if other, _ := TransformPod("not a pod"); other != "not a pod" {
		t.Fatal("transform must pass through what is not a pod")
	}
}

// TestForbiddenWatchMarksStale: a pod watch that breaks and whose re-list is
// Forbidden (RBAC taken away) makes the data stale even while /readyz
// answers, from the first failure on; a successful re-list clears it.
func TestForbiddenWatchMarksStale(t *testing.T) {
	var forbidden atomic.Bool
	watches := make(chan *watch.FakeWatcher, 10)
	client := fake.NewClientset(node("a", "32"))
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if forbidden.Load() {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("RBAC: access denied"))
		}
		return true, &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}, nil
	})
	client.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		if forbidden.Load() {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("RBAC: access denied"))
		}
		w := watch.NewFake()
		watches <- w
		return true, w, nil
	})
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	c := New(client, Options{Clock: clk, ProbeInterval: time.Hour, Probe: func(context.Context) error { return nil }})
	if since, err := c.Stale(); !errors.Is(err, ErrNotSynced) || !since.Equal(clk.Now()) {
		t.Fatalf("before sync: Stale() = %s, %v; want ErrNotSynced since creation", since, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	if err := c.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "fresh after sync", func() bool { return c.Ready() == nil })
	w := <-watches

	clk.Step(time.Minute)
	brokeAt := clk.Now()
	forbidden.Store(true)
	w.Stop() // the connection drops; the re-list is refused
	eventually(t, "stale once the re-list is Forbidden", func() bool { return c.Ready() != nil })
	since, err := c.Stale()
	if err == nil || !since.Equal(brokeAt) || !strings.Contains(err.Error(), "forbidden") || errors.Is(err, ErrNotSynced) {
		t.Fatalf("Stale() = %s, %v; want since %s naming the Forbidden list", since, err, brokeAt)
	}
	// The probe answering does not make it fresh, and since stays the first failure.
	clk.Step(time.Minute)
	c.probe(ctx)
	if since, err := c.Stale(); err == nil || !since.Equal(brokeAt) {
		t.Fatalf("after a good probe: Stale() = %s, %v; want still stale since %s", since, err, brokeAt)
	}
	forbidden.Store(false)
	eventually(t, "fresh once the re-list succeeds", func() bool { return c.Ready() == nil })
}

// TestUpdatesSignalOnlyModelChanges: a status-only pod update or a node
// heartbeat leaves the capacity model as it was, so it must not signal a
// round; anything the model keeps must.
func TestUpdatesSignalOnlyModelChanges(t *testing.T) {
	bound := pod("p", "a", "1")
	withStatus := func(mutate func(*corev1.Pod)) *corev1.Pod {
		p := bound.DeepCopy()
		mutate(p)
		return p
	}
	readyNode := node("a", "32")
	heartbeat := readyNode.DeepCopy()
	heartbeat.ResourceVersion = "2"
	heartbeat.Status.Conditions[0].LastHeartbeatTime = metav1.Now()
	heartbeat.Status.Images = []corev1.ContainerImage{{Names: []string{"busybox"}}}
	notReady := readyNode.DeepCopy()
	notReady.Status.Conditions[0].Status = corev1.ConditionFalse
	cordoned := readyNode.DeepCopy()
	cordoned.Spec.Unschedulable = true

	tests := []struct {
		name     string
		old, new runtime.Object
		want     bool
	}{
		{"pod conditions and IP only", bound, withStatus(func(p *corev1.Pod) {
			p.ResourceVersion = "2"
			p.Status.PodIP = "10.0.0.1"
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}), false},
		// Terminating and the deletion cost are in the model: a yield reads them.
		{"pod terminating", bound, withStatus(func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)} }), true},
		{"pod deletion cost", bound, withStatus(func(p *corev1.Pod) {
			p.Annotations = map[string]string{capacity.DeletionCostAnnotation: "-1000"}
		}), true},
		{"pod annotation only", bound, withStatus(func(p *corev1.Pod) { p.Annotations = map[string]string{"a": "b"} }), false},
		{"pod bound", pod("p", "", "1"), bound, true},
		{"pod finished", bound, withStatus(func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }), true},
		{"pod relabelled", bound, withStatus(func(p *corev1.Pod) { p.Labels = map[string]string{"app": "x"} }), true},
		{"pod resized", bound, withStatus(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests["cpu"] = resource.MustParse("2")
		}), true},
		{"node heartbeat", readyNode, heartbeat, false},
		{"node NotReady", readyNode, notReady, true},
		{"node cordoned", readyNode, cordoned, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(fake.NewClientset(), Options{Probe: func(context.Context) error { return nil }})
			transform, update := TransformPod, c.updatePod
			if _, isNode := tt.old.(*corev1.Node); isNode {
				transform, update = TransformNode, c.updateNode
			}
			old, _ := transform(tt.old)
			updated, _ := transform(tt.new)
			update(old, updated)
			select {
			case <-c.Changes():
				if !tt.want {
					t.Error("signalled a round for an update that leaves the model as it was")
				}
			default:
				if tt.want {
					t.Error("no round signalled for an update that changes the model")
				}
			}
		})
	}
}

// A probe answered slower than the probe interval is an answer: the data
// stays fresh (at 5,000 nodes /readyz took over a second and held rounds).
// One not answered within ProbeTimeout is not.
func TestSlowProbeIsAnAnswer(t *testing.T) {
	var hang atomic.Bool
	var answered, unreadyDuring atomic.Int32
	client := fake.NewClientset()
	var c *Cache
	c = New(client, Options{ProbeInterval: 10 * time.Millisecond, ProbeTimeout: time.Second, Probe: func(ctx context.Context) error {
		if hang.Load() {
			<-ctx.Done()
			return ctx.Err()
		}
		select {
		case <-time.After(50 * time.Millisecond): // five intervals
		case <-ctx.Done():
			return ctx.Err()
		}
		if answered.Add(1) > 1 && c.Ready() != nil {
			unreadyDuring.Add(1)
		}
		return nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	if err := c.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "five slow probes answered", func() bool { return answered.Load() >= 5 })
	if n := unreadyDuring.Load(); n > 0 {
		t.Errorf("unready during %d slow probes that answered within the timeout", n)
	}
	hang.Store(true)
	eventually(t, "unready once a probe is not answered within the timeout", func() bool { return c.Ready() != nil })
}
