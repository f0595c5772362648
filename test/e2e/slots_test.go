//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/opportunist/opportunist/api/v1alpha1"
)

// The shapes: a paid web tier of 4-core pods and a 1-core worker.
var (
	webRequests    = requests("cpu", "4", "memory", "1Gi")
	workerRequests = requests("cpu", "1", "memory", "64Mi")
)

// TestSlotHeadroom is issue 20 on the real control plane, without
// PriorityClasses (nothing preempts): the write-up's six nodes (4 x 32 + 2 x
// 28 cores), a paid web Deployment of 4-core pods, a 1-core worker spread by
// the real scheduler (LeastAllocated), and a scaler that keeps room for 4
// web pods node by node (headroomSlots) instead of a sum of cores.
//
//	(a) it settles with 4 of 4 slots fitting, by its status and by the
//	    test's own count on the real pods;
//	(b) web grows by 4 at once: all 4 run within 5 s, each where the
//	    settled cluster had a slot for it (none waited for a yield);
//	(c) the worker then yields the fewest pods that restore the 4 slots,
//	    on the nodes where they restore them;
//	(d) web shrinks back: the worker refills, and rounds later the 4 slots
//	    still fit and no worker pod had to yield (it refilled only where no
//	    slot is lost).
//
// (a) and (d) are where the law's prediction of the scheduler
// (capacity.Placer) meets the real one. The default profile scores
// NodeResourcesFit (LeastAllocated) at weight 1 beside PodTopologySpread's
// system default (a ReplicaSet's pods spread over hostnames, maxSkew 3,
// ScheduleAnyway) at weight 2 and BalancedAllocation at 1. Measured on this
// cluster (web at 2 pods on two 32-core nodes), a 1-core Deployment scaled
// 0 -> 150 at once lands 25 pods on every node, 32 cores or 28 alike (free
// cores 3 3 7 7 3 3: 2 web slots), where LeastAllocated alone would place
// 24 24 27 27 24 24 (free 4 4 5 5 4 4: 6 slots).
func TestSlotHeadroom(t *testing.T) {
	requireEmptyCluster(t)
	c := installCRD(t)
	seedCluster(t)
	ns := "e2e-slots"
	createNamespace(t, ns) // after the nodes: deleted, and waited for, before them
	createDeployment(t, ns, "web", DeploymentSpec{Replicas: 2, Requests: webRequests})
	waitForRunningPods(t, ns, "web", 2)
	createDeployment(t, ns, "worker", DeploymentSpec{Replicas: 0, Requests: workerRequests})
	createSlotScaler(t, c, scalerFor(ns, "worker", "worker", 0, 200, nil), slotFrom("web", 4))

	trace := traceReplicas(t, ns, "worker")
	start := time.Now()
	o := startOpportunist(t, "--round-interval", "1s", "--status-interval", "0")
	r := &slotRun{c: c, o: o, ns: ns, scaler: "worker", target: "worker"}
	web, worker := shapeOf(webRequests), shapeOf(workerRequests)
	// The status says 4 of 4 web slots fit, and the real pods agree.
	fourOfFour := func(v scalerView, s clusterState) error {
		if err := v.slotsFit("web", 4, 4); err != nil {
			return err
		}
		if total, per := s.slots(web); total < 4 {
			return fmt.Errorf("the status says 4 of 4 web slots fit, the real pods leave room for %d: %v", total, per)
		}
		return nil
	}
	// Grown as far as the slots let it: the slots, not the budget (no
	// headroom, so all 176 free cores) nor a window, set the count.
	heldBySlots := func(v scalerView, s clusterState) error {
		if v.LimitedBy != "Slots" {
			return fmt.Errorf("limitedBy %s, want Slots (%q)", v.LimitedBy, v.Reason)
		}
		return fourOfFour(v, s)
	}

	// (a) Settled: status and the pods agree, 4 of 4 web slots fit.
	a := r.waitSettled(t, 180*time.Second, "the worker to fill up to 4 web slots", heldBySlots)
	t.Logf("(a) settled %s after opportunist started (held 3 rounds more): worker at %d replicas, limitedBy %s (%q); slots %s",
		a.seenAt.Sub(start).Round(time.Millisecond), a.replicas, a.view.LimitedBy, a.view.Reason, a.view.slotsString())
	t.Logf("(a) worker pods per node %v; free cores per node %v", a.state.workersPerNode(), a.state.freeCores())
	total, perNode := a.state.slots(web)
	if total < 4 {
		t.Fatalf("(a) the status says 4 of 4 web slots fit, but on the real pods only %d do: %v", total, perNode)
	}
	a.view.checkSlotNodes(t, "(a)", "web", perNode)
	r.checkSlotMetrics(t, "web", 4, 4)

	// (b) Web grows by 4 at once: the scheduler places them in the slots.
	events := watchPodDeletions(t, ns, "worker", a.state.resourceVersion)
	bStart := time.Now()
	scaleDeployment(t, ns, "web", 6)
	var allBound time.Duration
	var newWeb map[string]string // pod -> node
	waitFor(t, 30*time.Second, "the 4 new web pods to run", func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		bound, running := 0, 0
		newWeb = map[string]string{}
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil || p.Spec.NodeName == "" {
				continue
			}
			bound++
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
			if _, old := a.state.web[p.Name]; !old {
				newWeb[p.Name] = p.Spec.NodeName
			}
		}
		if bound == 6 && allBound == 0 {
			allBound = time.Since(bStart)
		}
		if running != 6 || len(pods.Items) != 6 {
			return false, fmt.Errorf("%d web pods, %d bound, %d running", len(pods.Items), bound, running)
		}
		return true, nil
	})
	webRan := time.Now()
	allRunning := webRan.Sub(bStart)
	t.Logf("(b) web 2 -> 6: the 4 new pods were bound after %s and Running after %s (want <= 5s), on %v",
		allBound.Round(time.Millisecond), allRunning.Round(time.Millisecond), newWeb)
	if allRunning > 5*time.Second {
		t.Errorf("(b) the 4 new web pods took %s to run, want <= 5s", allRunning.Round(time.Millisecond))
	}
	// The web pods needed no yield: each landed where the settled cluster
	// already had a slot for it. (A round may see the first of them bound
	// while the others are still coming, and start restoring the slots they
	// took: a yield then, but not one they waited for.)
	if early := events.since(t, bStart, bStart.Add(allBound)); len(early) > 0 {
		t.Logf("(b) worker pods deleted before the 4 new web pods were all bound (restoring the slots the first ones took): %v", early)
	}
	preYield := a.state.withPods(newWeb, web)
	for node, n := range countByNode(newWeb) {
		if free := slotsOn(a.state.free(node), web); free < n {
			t.Errorf("(b) %d new web pods run on %s, where the settled cluster had room for %d: a worker pod had to go", n, node, free)
		}
	}

	// (c) The slots are taken: the worker yields the fewest pods that restore them.
	preSlots, _ := preYield.slots(web)
	want := minYields(preYield, web, worker, 4)
	t.Logf("(c) with the 4 new web pods placed, %d web slots fit; the fewest worker pods whose removal restores 4 is %d; free cores per node %v",
		preSlots, want, preYield.freeCores())
	seenFrom := r.seenCount()
	c4 := r.waitSettled(t, 60*time.Second, "the worker to yield and 4 of 4 web slots to fit again", func(v scalerView, s clusterState) error {
		if preSlots < 4 && len(events.since(t, bStart, time.Now())) == 0 {
			return fmt.Errorf("no worker pod yielded yet (status: limitedBy %s, %q, slots %s)", v.LimitedBy, v.Reason, v.slotsString())
		}
		return fourOfFour(v, s)
	})
	yielded := events.since(t, bStart, time.Now())
	lastGone := time.Duration(0)
	for _, e := range yielded {
		lastGone = max(lastGone, e.at.Sub(webRan))
	}
	t.Logf("(c) the web pods ran; %s later the last of %d yielded worker pods was deleted, %s later 4 of 4 web slots fit again (held 3 rounds more): worker %d -> %d replicas; yielded %v",
		lastGone.Round(time.Millisecond), len(yielded), c4.seenAt.Sub(webRan).Round(time.Millisecond), a.replicas, c4.replicas, yielded)
	seen := r.seenSince(seenFrom)
	t.Logf("(c) statuses seen meanwhile:\n  %s", strings.Join(seen, "\n  "))
	if preSlots < 4 && !slices.ContainsFunc(seen, func(s string) bool { return strings.HasPrefix(s, "Slots:") }) {
		t.Errorf("(c) the worker yielded for the slots, but its status never said limitedBy Slots")
	}
	if len(yielded) != want {
		t.Errorf("(c) %d worker pods yielded, want %d, the fewest that restore 4 web slots (free cores before the yield %v)", len(yielded), want, preYield.freeCores())
	}
	if got := a.replicas - int32(len(yielded)); c4.replicas != got {
		t.Errorf("(c) worker at %d replicas after %d yielded from %d, want %d", c4.replicas, len(yielded), a.replicas, got)
	}
	_, perNode = c4.state.slots(web)
	for _, e := range yielded {
		if e.cost != "-1000" {
			t.Errorf("(c) yielded worker pod %s had pod-deletion-cost %q, want \"-1000\" (marked by opportunist)", e.name, e.cost)
		}
		if perNode[e.node] == 0 {
			t.Errorf("(c) worker pod %s yielded on %s, which holds no web slot now (slots per node %v): its room restores nothing", e.name, e.node, perNode)
		}
	}
	c4.view.checkSlotNodes(t, "(c)", "web", perNode)

	// (d) Web shrinks back: the worker refills, only where no slot is lost.
	dStart := time.Now()
	scaleDeployment(t, ns, "web", 2)
	waitForRunningPods(t, ns, "web", 2)
	d := r.waitSettled(t, 60*time.Second, "the worker to refill with 4 of 4 web slots kept", func(v scalerView, s clusterState) error {
		if s.replicas <= c4.replicas {
			return fmt.Errorf("worker still at %d replicas (status: limitedBy %s, %q)", s.replicas, v.LimitedBy, v.Reason)
		}
		return heldBySlots(v, s)
	})
	t.Logf("(d) web 6 -> 2: the worker refilled %d -> %d replicas, settled %s after the scale-down (held 3 rounds more; scale-up window 3s); it had %d in (a); limitedBy %s (%q)",
		c4.replicas, d.replicas, d.seenAt.Sub(dStart).Round(time.Millisecond), a.replicas, d.view.LimitedBy, d.view.Reason)
	o.waitRounds(t, 5, 30*time.Second)
	end, err := r.observe(context.Background())
	if err != nil {
		t.Fatalf("(d) 5 rounds after the refill: %v", err)
	}
	total, perNode = end.state.slots(web)
	t.Logf("(d) 5 rounds later: worker at %d, slots %s; on the real pods %d web slots fit: %v; worker pods per node %v",
		end.replicas, end.view.slotsString(), total, perNode, end.state.workersPerNode())
	if total < 4 {
		t.Errorf("(d) after the refill only %d web slots fit on the real pods (%v), want 4", total, perNode)
	}
	if err := fourOfFour(end.view, end.state); err != nil {
		t.Errorf("(d) 5 rounds after the refill: %v", err)
	}
	if end.replicas != d.replicas {
		t.Errorf("(d) the worker moved from %d to %d replicas within 5 rounds of settling", d.replicas, end.replicas)
	}
	end.view.checkSlotNodes(t, "(d)", "web", perNode)
	if lost := events.since(t, dStart, time.Now()); len(lost) > 0 {
		t.Errorf("(d) worker pods yielded after the refill began: %v; a refill took room kept for a slot", lost)
	}
	// Up in (a), down in (c), up in (d), and nothing between: a refill that
	// took a slot and yielded it back would show as two more changes.
	changes, values := trace.directionChanges()
	t.Logf("worker replica counts seen: %v (%d direction changes)", values, changes)
	if changes != 3 {
		t.Errorf("the worker changed direction %d times, want 3 (fill, yield, refill): %v", changes, values)
	}
}

// TestSlotShapeNotFound: a slot whose shapeFrom names no Deployment is a
// scaler problem, not a slot of size zero: Ready=False, SlotShapeNotFound,
// and the worker is not scaled (TestScalerProblems checks the same among
// the other problems). Once the Deployment exists the scaler recovers on
// its own and acts, keeping its 2 slots.
func TestSlotShapeNotFound(t *testing.T) {
	requireEmptyCluster(t)
	c := installCRD(t)
	createNode(t, "slots-missing-1", NodeShape{CPU: "16", Memory: "16Gi"})
	ns := "e2e-slots-missing"
	createNamespace(t, ns)
	createDeployment(t, ns, "worker", DeploymentSpec{Replicas: 2, Requests: workerRequests})
	createSlotScaler(t, c, scalerFor(ns, "worker", "worker", 0, 100, nil), slotFrom("web", 2))
	o := startOpportunist(t, "--round-interval", "1s", "--status-interval", "0")
	r := &slotRun{c: c, o: o, ns: ns, scaler: "worker", target: "worker"}

	start := time.Now()
	var ready metav1.Condition
	waitFor(t, 20*time.Second, "the scaler to report Ready=False, SlotShapeNotFound", func(ctx context.Context) (bool, error) {
		v, err := readScaler(ctx, c, ns, "worker")
		if err != nil {
			return false, err
		}
		ready = v.condition("Ready")
		if ready.Status != metav1.ConditionFalse || ready.Reason != "SlotShapeNotFound" {
			return false, fmt.Errorf("Ready=%s reason %q: %s", ready.Status, ready.Reason, ready.Message)
		}
		return true, nil
	})
	t.Logf("Ready=False %s after %s: %s", ready.Reason, time.Since(start).Round(time.Millisecond), ready.Message)
	if !strings.Contains(ready.Message, "spec.headroomSlots[0].shapeFrom") {
		t.Errorf("the message %q does not name spec.headroomSlots[0].shapeFrom", ready.Message)
	}
	o.waitRounds(t, 3, 20*time.Second)
	if got, err := deploymentReplicas(context.Background(), ns, "worker"); err != nil || got != 2 {
		t.Errorf("the worker is at %d replicas (err %v), want 2: a scaler that cannot read its slot's shape must not write", got, err)
	}

	// 16 cores, no paid pod: 2 slots of 4 cores keep 8, the worker takes 8.
	created := time.Now()
	createDeployment(t, ns, "web", DeploymentSpec{Replicas: 0, Requests: webRequests})
	waitFor(t, 30*time.Second, "the scaler to be Ready once web exists", func(ctx context.Context) (bool, error) {
		v, err := readScaler(ctx, c, ns, "worker")
		if err != nil {
			return false, err
		}
		if cond := v.condition("Ready"); cond.Status != metav1.ConditionTrue {
			return false, fmt.Errorf("Ready=%s reason %q: %s", cond.Status, cond.Reason, cond.Message)
		}
		return true, nil
	})
	t.Logf("Ready=True %s after web was created", time.Since(created).Round(time.Millisecond))
	settled := r.waitSettled(t, 60*time.Second, "the worker to take 8 cores and keep 2 web slots", func(v scalerView, s clusterState) error {
		if s.replicas != 8 {
			return fmt.Errorf("worker at %d replicas, want 8 (16 cores - 2 slots x 4)", s.replicas)
		}
		return v.slotsFit("web", 2, 2)
	})
	t.Logf("worker at 8 replicas %s after web was created (held 3 rounds more); slots %s", settled.seenAt.Sub(created).Round(time.Millisecond), settled.view.slotsString())
}

// slotFrom is a headroomSlots entry of count pods shaped like a Deployment's.
func slotFrom(deployment string, count int64) map[string]any {
	return map[string]any{
		"shapeFrom": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
		"count":     count,
	}
}

// createSlotScaler creates s with spec.headroomSlots, written as the JSON a
// user writes (the field the CRD validates), not through Go types.
func createSlotScaler(t *testing.T, c crclient.Client, s *v1alpha1.OpportunisticScaler, slots ...map[string]any) {
	t.Helper()
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(s)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("OpportunisticScaler"))
	delete(u.Object, "status")
	list := make([]any, len(slots))
	for i, sl := range slots {
		list[i] = sl
	}
	if err := unstructured.SetNestedSlice(u.Object, list, "spec", "headroomSlots"); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(context.Background(), u); err != nil {
		t.Fatalf("creating OpportunisticScaler %s/%s with headroomSlots %v: %v", s.Namespace, s.Name, slots, err)
	}
}

// scalerView is the part of a scaler's status this test reads, as JSON.
type scalerView struct {
	DesiredReplicas int32              `json:"desiredReplicas"`
	LimitedBy       string             `json:"limitedBy"`
	Reason          string             `json:"reason"`
	Slots           []slotStatus       `json:"slots"`
	Conditions      []metav1.Condition `json:"conditions"`
}

type slotStatus struct {
	Name   string `json:"name"`
	Wanted int32  `json:"wanted"`
	Fit    int32  `json:"fit"`
	Nodes  []struct {
		Node  string `json:"node"`
		Slots int32  `json:"slots"`
	} `json:"nodes"`
	MoreNodes int32 `json:"moreNodes"`
}

func readScaler(ctx context.Context, c crclient.Client, ns, name string) (scalerView, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("OpportunisticScaler"))
	if err := c.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		return scalerView{}, err
	}
	var v scalerView
	raw, err := json.Marshal(u.Object["status"])
	if err == nil {
		err = json.Unmarshal(raw, &v)
	}
	return v, err
}

func (v scalerView) condition(typ string) metav1.Condition {
	for _, c := range v.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{Type: typ, Status: metav1.ConditionUnknown, Reason: "NotReported"}
}

func (v scalerView) slot(name string) (slotStatus, bool) {
	for _, s := range v.Slots {
		if s.Name == name {
			return s, true
		}
	}
	return slotStatus{}, false
}

// slotsFit says why the status does not report fit of wanted name slots.
func (v scalerView) slotsFit(name string, fit, wanted int32) error {
	s, ok := v.slot(name)
	if !ok {
		return fmt.Errorf("status.slots has no %q (slots %s; limitedBy %s, %q)", name, v.slotsString(), v.LimitedBy, v.Reason)
	}
	if s.Fit != fit || s.Wanted != wanted {
		return fmt.Errorf("status.slots says %d of %d %s slots fit, want %d of %d (limitedBy %s, %q)", s.Fit, s.Wanted, name, fit, wanted, v.LimitedBy, v.Reason)
	}
	return nil
}

// slotsString prints status.slots as "web 4/4 [seed-1:1 seed-3:2 ...]".
func (v scalerView) slotsString() string {
	var parts []string
	for _, s := range v.Slots {
		var nodes []string
		for _, n := range s.Nodes {
			nodes = append(nodes, fmt.Sprintf("%s:%d", n.Node, n.Slots))
		}
		more := ""
		if s.MoreNodes > 0 {
			more = fmt.Sprintf(" +%d nodes", s.MoreNodes)
		}
		parts = append(parts, fmt.Sprintf("%s %d/%d [%s%s]", s.Name, s.Fit, s.Wanted, strings.Join(nodes, " "), more))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// checkSlotNodes asserts that every node the status counts slots on has
// room for at least that many on the real pods, and that they add up.
func (v scalerView) checkSlotNodes(t *testing.T, phase, name string, real map[string]int) {
	t.Helper()
	s, _ := v.slot(name)
	var sum int32
	for _, n := range s.Nodes {
		sum += n.Slots
		if real[n.Node] < int(n.Slots) {
			t.Errorf("%s status.slots counts %d %s slots on %s, where the real pods leave room for %d", phase, n.Slots, name, n.Node, real[n.Node])
		}
	}
	if s.MoreNodes == 0 && sum != s.Fit {
		t.Errorf("%s status.slots lists %d %s slots node by node, but says %d fit", phase, sum, name, s.Fit)
	}
}

// room is an amount of each resource in milli-units (cores as milli-cores,
// memory as milli-bytes, pods as milli-pods), so one unit fits every resource.
type room map[corev1.ResourceName]int64

func roomOf(list corev1.ResourceList) room {
	out := room{}
	for r, q := range list {
		out[r] = q.MilliValue()
	}
	return out
}

// shapeOf is one pod of these requests, with its pod slot.
func shapeOf(req corev1.ResourceList) room {
	out := roomOf(req)
	out[corev1.ResourcePods] = 1000
	return out
}

// podShape is a pod's effective requests as the scheduler counts them: the
// larger of its containers' sum and any init container, plus overhead, plus
// its pod slot.
func podShape(p *corev1.Pod) room {
	out := room{}
	for _, c := range p.Spec.Containers {
		for r, q := range c.Resources.Requests {
			out[r] += q.MilliValue()
		}
	}
	for _, c := range p.Spec.InitContainers {
		for r, q := range c.Resources.Requests {
			out[r] = max(out[r], q.MilliValue())
		}
	}
	for r, q := range p.Spec.Overhead {
		out[r] += q.MilliValue()
	}
	out[corev1.ResourcePods] += 1000
	return out
}

// slotsOn is how many pods of shape fit in free.
func slotsOn(free, shape room) int {
	n := -1
	for r, q := range shape {
		if q <= 0 {
			continue
		}
		k := int(max(free[r], 0) / q)
		if n < 0 || k < n {
			n = k
		}
	}
	return max(n, 0)
}

// clusterState is the cluster as the test reads it, independently of
// opportunist: every node's allocatable and what the pods bound there take.
type clusterState struct {
	resourceVersion string // of the pod list, to watch from
	alloc, used     map[string]room
	// web and worker pods of the namespace: name -> node.
	web, worker map[string]string
	// replicas is the worker's spec.replicas; pods counts its pods (bound
	// or not, terminating too), running those Running and not terminating.
	replicas, pods, running int32
}

func readClusterState(ctx context.Context, ns, target string) (clusterState, error) {
	s := clusterState{alloc: map[string]room{}, used: map[string]room{}, web: map[string]string{}, worker: map[string]string{}}
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, err
	}
	for _, n := range nodes.Items {
		if nodeReady(&n) && !n.Spec.Unschedulable {
			s.alloc[n.Name] = roomOf(n.Status.Allocatable)
		}
	}
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, err
	}
	s.resourceVersion = pods.ResourceVersion
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Namespace == ns && p.Labels["app"] == target {
			s.pods++
			if p.DeletionTimestamp == nil && p.Spec.NodeName != "" && p.Status.Phase == corev1.PodRunning {
				s.running++
			}
		}
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue // holds no room
		}
		used := s.used[p.Spec.NodeName]
		if used == nil {
			used = room{}
			s.used[p.Spec.NodeName] = used
		}
		for r, q := range podShape(p) {
			used[r] += q
		}
		if p.Namespace == ns {
			switch p.Labels["app"] {
			case "web":
				s.web[p.Name] = p.Spec.NodeName
			case target:
				s.worker[p.Name] = p.Spec.NodeName
			}
		}
	}
	if s.replicas, err = deploymentReplicas(ctx, ns, target); err != nil {
		return s, err
	}
	return s, nil
}

func (s clusterState) free(node string) room {
	out := room{}
	for r, q := range s.alloc[node] {
		out[r] = q - s.used[node][r]
	}
	return out
}

// slots is how many pods of shape fit, in all and per node.
func (s clusterState) slots(shape room) (int, map[string]int) {
	total, per := 0, map[string]int{}
	for node := range s.alloc {
		n := slotsOn(s.free(node), shape)
		per[node], total = n, total+n
	}
	return total, per
}

// withPods is s with more pods of shape bound (pod -> node).
func (s clusterState) withPods(pods map[string]string, shape room) clusterState {
	out := s
	out.used = map[string]room{}
	for node, u := range s.used {
		out.used[node] = maps.Clone(u)
	}
	for _, node := range pods {
		if out.used[node] == nil {
			out.used[node] = room{}
		}
		for r, q := range shape {
			out.used[node][r] += q
		}
	}
	return out
}

func (s clusterState) workersPerNode() string { return perNodeString(countByNode(s.worker)) }

func (s clusterState) freeCores() string {
	m := map[string]int{}
	for node := range s.alloc {
		m[node] = int(s.free(node)[corev1.ResourceCPU] / 1000)
	}
	return perNodeString(m)
}

func countByNode(pods map[string]string) map[string]int {
	out := map[string]int{}
	for _, node := range pods {
		out[node]++
	}
	return out
}

func perNodeString(m map[string]int) string {
	var parts []string
	for _, node := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s:%d", node, m[node]))
	}
	return strings.Join(parts, " ")
}

// minYields is the fewest worker pods whose removal lets want pods of slot
// fit in s: per node, the fewest of its worker pods that make room for k
// slots, combined over nodes (a knapsack over at most want slots a node).
func minYields(s clusterState, slot, worker room, want int) int {
	const none = 1 << 30
	best := make([]int, want+1) // best[j]: fewest yields for j slots so far
	for j := 1; j <= want; j++ {
		best[j] = none
	}
	workers := countByNode(s.worker)
	for _, node := range slices.Sorted(maps.Keys(s.alloc)) {
		cost := make([]int, want+1) // cost[k]: yields on this node for k slots
		for k := range cost {
			cost[k] = none
		}
		for y := 0; y <= workers[node]; y++ {
			free := s.free(node)
			for r, q := range worker {
				free[r] += int64(y) * q
			}
			k := min(slotsOn(free, slot), want)
			for j := 0; j <= k; j++ {
				cost[j] = min(cost[j], y)
			}
		}
		next := slices.Clone(best)
		for j := range best {
			for k := 1; k <= want && best[j] < none; k++ {
				if cost[k] < none {
					to := min(j+k, want)
					next[to] = min(next[to], best[j]+cost[k])
				}
			}
		}
		best = next
	}
	return best[want]
}

// slotRun follows one scaler with slots and its target.
type slotRun struct {
	c          crclient.Client
	o          *Opportunist
	ns, scaler string
	target     string
	mu         sync.Mutex
	seen       []string // "limitedBy: reason", each change as observed
}

// observation is the scaler's status and the cluster, read together.
type observation struct {
	view     scalerView
	state    clusterState
	replicas int32
	// seenAt is when waitSettled first saw the state it returns.
	seenAt time.Time
}

// observe reads the status and the cluster, and says why they are not
// settled: the status's desired count is the target's spec.replicas, and
// exactly that many target pods run, none pending or terminating.
func (r *slotRun) observe(ctx context.Context) (observation, error) {
	v, err := readScaler(ctx, r.c, r.ns, r.scaler)
	if err != nil {
		return observation{}, err
	}
	r.record(v)
	s, err := readClusterState(ctx, r.ns, r.target)
	if err != nil {
		return observation{}, err
	}
	obs := observation{view: v, state: s, replicas: s.replicas}
	if v.DesiredReplicas != s.replicas || s.running != s.replicas || s.pods != s.replicas {
		return obs, fmt.Errorf("not settled: desired %d, spec.replicas %d, %d pods of which %d running (limitedBy %s, %q)",
			v.DesiredReplicas, s.replicas, s.pods, s.running, v.LimitedBy, v.Reason)
	}
	return obs, nil
}

func (r *slotRun) record(v scalerView) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := v.LimitedBy + ": " + v.Reason + " " + v.slotsString()
	if n := len(r.seen); n == 0 || r.seen[n-1] != s {
		r.seen = append(r.seen, s)
	}
}

func (r *slotRun) seenCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *slotRun) seenSince(i int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen[i:])
}

// waitSettled waits until the status and the cluster are settled and check
// holds, and then stay so, the same worker pods, over 3 more rounds.
func (r *slotRun) waitSettled(t *testing.T, timeout time.Duration, what string, check func(scalerView, clusterState) error) observation {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var first observation
		waitFor(t, max(time.Until(deadline), time.Second), what, func(ctx context.Context) (bool, error) {
			obs, err := r.observe(ctx)
			if err == nil {
				err = check(obs.view, obs.state)
			}
			first = obs
			first.seenAt = time.Now()
			return err == nil, err
		})
		r.o.waitRounds(t, 3, 30*time.Second)
		obs, err := r.observe(context.Background())
		if err == nil {
			err = check(obs.view, obs.state)
		}
		if err == nil && obs.replicas == first.replicas && maps.Equal(obs.state.worker, first.state.worker) {
			obs.seenAt = first.seenAt
			return obs
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s to hold for 3 rounds: %v (worker %d -> %d replicas)", timeout, what, err, first.replicas, obs.replicas)
		}
		t.Logf("%s held, then moved within 3 rounds (%v; worker %d -> %d replicas): waiting again", what, err, first.replicas, obs.replicas)
	}
}

// checkSlotMetrics waits for opportunist_headroom_slots to say fit of wanted.
func (r *slotRun) checkSlotMetrics(t *testing.T, shape string, fit, wanted float64) {
	t.Helper()
	key := func(state string) string {
		return fmt.Sprintf("opportunist_headroom_slots{scaler=%q,shape=%q,state=%q}", r.ns+"/"+r.scaler, shape, state)
	}
	r.o.waitForMetrics(t, 10*time.Second, map[string]float64{key("fit"): fit, key("wanted"): wanted})
}

// podDeletions records, from a watch, each pod of an app that is deleted:
// when the test saw it go, from which node, with which pod-deletion-cost.
type podDeletions struct {
	mu     sync.Mutex
	events []podDeletion
	seen   map[string]bool
	closed error
}

type podDeletion struct {
	at               time.Time
	name, node, cost string
}

func (d podDeletion) String() string { return d.name + "@" + d.node }

func watchPodDeletions(t *testing.T, ns, app, resourceVersion string) *podDeletions {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	timeout := int64(1800)
	w, err := client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "app=" + app, ResourceVersion: resourceVersion, TimeoutSeconds: &timeout})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	d := &podDeletions{seen: map[string]bool{}}
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); w.Stop(); <-done })
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || !(ev.Type == watch.Deleted || ev.Type == watch.Modified && p.DeletionTimestamp != nil) {
				continue
			}
			d.mu.Lock()
			if !d.seen[p.Name] {
				d.seen[p.Name] = true
				d.events = append(d.events, podDeletion{at: time.Now(), name: p.Name, node: p.Spec.NodeName, cost: p.Annotations["controller.kubernetes.io/pod-deletion-cost"]})
			}
			d.mu.Unlock()
		}
		d.mu.Lock()
		if ctx.Err() == nil {
			d.closed = fmt.Errorf("the watch of %s/%s pods closed at %s", ns, app, time.Now().Format("15:04:05.000"))
		}
		d.mu.Unlock()
	}()
	return d
}

// since returns the deletions seen in [from, to), oldest first.
func (d *podDeletions) since(t *testing.T, from, to time.Time) []podDeletion {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed != nil {
		t.Fatal(d.closed)
	}
	var out []podDeletion
	for _, e := range d.events {
		if !e.at.Before(from) && e.at.Before(to) {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}
