package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/reclaim"
)

const ext = reclaim.ExtendedResourceCPU

func reclaimingPod(key, workload string, milli int64) capacity.BoundPod {
	return capacity.BoundPod{Key: key, Workload: workload, Requests: capacity.Resources{ext: milli, corev1.ResourceCPU: 10, corev1.ResourcePods: 1}}
}

func TestPressure(t *testing.T) {
	rooms := map[string]reclaim.NodeRoom{
		"n1": {Node: "n1", Publish: capacity.Resources{corev1.ResourceCPU: 2500}},
		"n2": {Node: "n2", Publish: capacity.Resources{corev1.ResourceCPU: 8000}},
	}
	tests := []struct {
		name        string
		pods        map[string][]capacity.BoundPod
		wantVictims []string
	}{
		{"under the room: none", map[string][]capacity.BoundPod{
			"n1": {reclaimingPod("ns/a", "ns/w", 1000), reclaimingPod("ns/b", "ns/w", 1000)},
		}, nil},
		{"over by 1.5 cores: two one-core pods go", map[string][]capacity.BoundPod{
			"n1": {reclaimingPod("ns/a", "ns/w", 1000), reclaimingPod("ns/b", "ns/w", 1000), reclaimingPod("ns/c", "ns/w", 1000), reclaimingPod("ns/d", "ns/w", 1000)},
			"n2": {reclaimingPod("ns/e", "ns/w", 1000)},
		}, []string{"ns/a", "ns/b"}},
		{"terminating pods free their room and are not chosen", map[string][]capacity.BoundPod{
			"n1": {{Key: "ns/a", Workload: "ns/w", Requests: capacity.Resources{ext: 1000}, Terminating: true}, reclaimingPod("ns/b", "ns/w", 1000), reclaimingPod("ns/c", "ns/w", 1000), reclaimingPod("ns/d", "ns/w", 1000)},
		}, []string{"ns/b"}},
		{"lowest deletion cost first", map[string][]capacity.BoundPod{
			"n1": {reclaimingPod("ns/a", "ns/w", 1000), reclaimingPod("ns/b", "ns/w", 1000), {Key: "ns/c", Workload: "ns/w", Requests: capacity.Resources{ext: 1000}, DeletionCost: -5}},
		}, []string{"ns/c"}},
		{"another scaler's pods count in the sum but are not ours to yield", map[string][]capacity.BoundPod{
			"n1": {reclaimingPod("ns/x", "ns/other", 2000), reclaimingPod("ns/a", "ns/w", 1000)},
		}, []string{"ns/a"}},
		{"requests-based pods do not count", map[string][]capacity.BoundPod{
			"n1": {{Key: "ns/r", Workload: "ns/w", Requests: capacity.Resources{corev1.ResourceCPU: 4000}}, reclaimingPod("ns/a", "ns/w", 2000)},
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, why := pressure("ns/w", []string{"n1", "n2"}, rooms, tc.pods)
			if !reflect.DeepEqual(got, tc.wantVictims) {
				t.Fatalf("victims %v, want %v (why %v)", got, tc.wantVictims, why)
			}
			if (len(why) > 0) != (len(got) > 0) {
				t.Fatalf("why %v for victims %v", why, got)
			}
		})
	}
}

func TestApplyPressure(t *testing.T) {
	in := &control.Scaler{Key: "ns/w", Min: 1}
	d := &control.Decision{Key: "ns/w", Desired: 6, Limit: control.LimitFit, Reason: "fit"}
	applyPressure(d, in, 5, []string{"ns/a", "ns/b"}, []string{"n1: ..."})
	if d.Desired != 3 || d.Limit != control.LimitReclaim || !reflect.DeepEqual(d.Yield, []string{"ns/a", "ns/b"}) {
		t.Fatalf("got desired %d limit %s yield %v, want 3 (5 bound − 2) Reclaim [ns/a ns/b]", d.Desired, d.Limit, d.Yield)
	}
	// Min wins.
	d = &control.Decision{Key: "ns/w", Desired: 2}
	applyPressure(d, in, 2, []string{"ns/a", "ns/b"}, nil)
	if d.Desired != 1 {
		t.Fatalf("desired %d, want Min 1", d.Desired)
	}
	// The law already goes lower (its budget sees the pool's total): the
	// count stays its, but the victims go first.
	d = &control.Decision{Key: "ns/w", Desired: 2, Limit: control.LimitBudget}
	applyPressure(d, in, 5, []string{"ns/a"}, nil)
	if d.Desired != 2 || d.Limit != control.LimitBudget || !reflect.DeepEqual(d.Yield, []string{"ns/a"}) {
		t.Fatalf("a lower decision: %+v, want 2 by Budget with ns/a marked", d)
	}
	// Nothing goes: nothing marked.
	d = &control.Decision{Key: "ns/w", Desired: 5}
	applyPressure(d, &control.Scaler{Min: 5}, 5, []string{"ns/a"}, nil)
	if d.Desired != 5 || d.Yield != nil {
		t.Fatalf("held at Min: %+v, want 5 and nothing marked", d)
	}
}

func TestComputeRooms(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	rooms := []capacity.NodeRoom{
		{Name: "n1", State: capacity.NodeReady, Labels: map[string]string{"pool": "a"}, Allocatable: capacity.Resources{corev1.ResourceCPU: 16500, corev1.ResourcePods: 110}},
		{Name: "other", State: capacity.NodeReady, Labels: map[string]string{"pool": "b"}, Allocatable: capacity.Resources{corev1.ResourceCPU: 16000}},
	}
	paid := map[string][]capacity.BoundPod{"n1": {
		{Key: "p/a", Requests: capacity.Resources{corev1.ResourceCPU: 8000}},
		{Key: "p/b", Requests: capacity.Resources{corev1.ResourceCPU: 8000}},
	}}
	opp := map[string][]capacity.BoundPod{"n1": {reclaimingPod("ns/w1", "ns/w", 1000)}}
	var samples []reclaim.Usage
	for i := range 20 {
		samples = append(samples, reclaim.Usage{At: now.Add(-time.Duration(20-i) * 15 * time.Second), CPUMilli: 2000})
	}
	usage := UsageSnapshot{
		Pods:  map[string][]reclaim.Usage{"p/a": samples, "p/b": samples, "ns/w1": {{At: now, CPUMilli: 1000}}},
		Nodes: map[string]reclaim.Usage{"n1": {At: now, CPUMilli: 5300}},
	}
	cfg := reclaim.DefaultRoomConfig()
	cfg.Theta = 0.9
	scaler := control.Scaler{Key: "ns/w", PoolSelector: labels.SelectorFromSet(labels.Set{"pool": "a"})}
	res := reclaim.ReservationConfig{Settle: time.Minute, Quantile: 0.95, MarginPercent: 10, Window: 30 * time.Minute}
	rr := computeRooms(now, rooms, paid, opp, usage, res, nil, []reclaimInput{{key: "ns/w", config: cfg, in: &scaler}})
	if !reflect.DeepEqual(rr.pools["ns/w"], []string{"n1"}) {
		t.Fatalf("pool %v, want [n1]", rr.pools["ns/w"])
	}
	if _, ok := rr.rooms["other"]; ok {
		t.Fatalf("a node outside every reclaiming pool got a room")
	}
	n1 := rr.rooms["n1"]
	// Each paid pod: 2 cores used, 10 % of 8 margin → reserved 2.8; system
	// = 5.3 − (2 + 2 + 1) = 0.3; requests (16 of paid) leave 0.5 free.
	// 0.9 × 16.5 = 14.85 → 14850 − 300 − 5600 − 500 = 8450.
	if got := n1.Reserved[corev1.ResourceCPU]; got != 5600 {
		t.Errorf("reserved %d, want 5600", got)
	}
	if got := n1.System[corev1.ResourceCPU]; got != 300 {
		t.Errorf("system %d, want 300", got)
	}
	if got := n1.Reclaimable[corev1.ResourceCPU]; got != 8450 {
		t.Errorf("reclaimable %d, want 8450; %s", got, n1.Formula)
	}
	if got := n1.Publish[corev1.ResourceCPU]; got != 8450 {
		t.Errorf("publish %d, want 8450", got)
	}
	// A new paid pod without samples yet, while the node's usage already
	// counts its 1.5 cores: they are its own (it is reserved at its 4-core
	// request), not the system's, which stays 0.3.
	rooms[0].Allocatable[corev1.ResourceCPU] = 20500
	paid["n1"] = append(paid["n1"], capacity.BoundPod{Key: "p/new", Requests: capacity.Resources{corev1.ResourceCPU: 4000}})
	usage.Nodes["n1"] = reclaim.Usage{At: now, CPUMilli: 6800}
	rr = computeRooms(now, rooms, paid, opp, usage, res, nil, []reclaimInput{{key: "ns/w", config: cfg, in: &scaler}})
	if got := rr.rooms["n1"].System[corev1.ResourceCPU]; got != 0 {
		t.Errorf("with a new paid pod: system %d, want 0 (its 1.5 cores in use are its own, within its request)", got)
	}
	if got := rr.rooms["n1"].Reserved[corev1.ResourceCPU]; got != 9600 {
		t.Errorf("with a new paid pod: reserved %d, want 9600 (5.6 + its request)", got)
	}
	// A new reclaiming pod likewise: its usage is its own up to the room it
	// requests, not the system's.
	paid["n1"] = paid["n1"][:2]
	opp["n1"] = append(opp["n1"], reclaimingPod("ns/w2", "ns/w", 1000))
	usage.Nodes["n1"] = reclaim.Usage{At: now, CPUMilli: 6300}
	rr = computeRooms(now, rooms, paid, opp, usage, res, nil, []reclaimInput{{key: "ns/w", config: cfg, in: &scaler}})
	if got := rr.rooms["n1"].System[corev1.ResourceCPU]; got != 300 {
		t.Errorf("with a new reclaiming pod: system %d, want 300", got)
	}
	rooms[0].Allocatable[corev1.ResourceCPU] = 16500
	opp["n1"] = opp["n1"][:1]
	usage.Nodes["n1"] = reclaim.Usage{At: now, CPUMilli: 5300}

	// The hold: a room that was lower within the window is published at
	// its lowest, but never below what the reclaiming pod there claims (1
	// core) nor the free 0.5; the pressure yield compares with the same
	// published value, so a room below the claim is published as it is.
	held := &reclaim.RoomHistory{Hold: 5 * time.Minute}
	held.Record("n1", now.Add(-time.Minute), capacity.Resources{corev1.ResourceCPU: 3000})
	rr = computeRooms(now, rooms, paid, opp, usage, res, held, []reclaimInput{{key: "ns/w", config: cfg, in: &scaler}})
	if got := rr.rooms["n1"]; got.Publish[corev1.ResourceCPU] != 3000 || got.Room[corev1.ResourceCPU] != 8450 {
		t.Errorf("held: publish %d of room %d, want 3000 of 8450: %s", got.Publish[corev1.ResourceCPU], got.Room[corev1.ResourceCPU], got.Formula)
	}
	held.Record("n1", now.Add(-30*time.Second), capacity.Resources{corev1.ResourceCPU: 200})
	rr = computeRooms(now, rooms, paid, opp, usage, res, held, []reclaimInput{{key: "ns/w", config: cfg, in: &scaler}})
	if got := rr.rooms["n1"].Publish[corev1.ResourceCPU]; got != 1000 {
		t.Errorf("held below the claim: publish %d, want 1000 (what the reclaiming pod there claims)", got)
	}
	// Stale usage: requests alone.
	usage.Stale = errors.New("stale")
	rr = computeRooms(now, rooms, paid, opp, usage, res, nil, []reclaimInput{{key: "ns/w", config: cfg, in: &scaler}})
	if got := rr.rooms["n1"].Publish[corev1.ResourceCPU]; got != 500 {
		t.Errorf("stale: publish %d, want 500 (what requests leave)", got)
	}
}

// fakeUsage is a UsageReader returning what it is given.
type fakeUsage struct {
	u   Usages
	err error
}

func (f *fakeUsage) Read(context.Context) (Usages, error) { return f.u, f.err }

func TestUsageHistory(t *testing.T) {
	start := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakePassiveClock(start)
	reader := &fakeUsage{}
	h := &UsageHistory{Reader: reader, Clock: clk, Log: slog.New(slog.DiscardHandler), Interval: 15 * time.Second, Window: time.Minute, StaleAfter: 2 * time.Minute}
	if s := h.Snapshot(start); s.Stale == nil || !s.Hold {
		t.Fatalf("before any read: stale %v, hold %t; want stale and hold", s.Stale, s.Hold)
	}
	// Reads failing from the start: missing usage holds until StaleAfter,
	// then counts as stale.
	reader.err = errors.New("no metrics API")
	h.Poll(context.Background())
	if s := h.Snapshot(start.Add(time.Minute)); !s.Hold {
		t.Fatal("no hold a minute after the start with no sample yet")
	}
	if s := h.Snapshot(start.Add(3 * time.Minute)); s.Hold || s.Stale == nil {
		t.Fatalf("3 minutes without a sample: hold %t stale %v, want stale, no hold", s.Hold, s.Stale)
	}
	reader.err = nil
	for i := range 8 {
		at := start.Add(time.Duration(i) * 15 * time.Second)
		clk.SetTime(at)
		reader.u = Usages{Pods: map[string]reclaim.Usage{"p/a": {At: at, CPUMilli: int64(100 * i)}}, Nodes: map[string]reclaim.Usage{"n": {At: at, CPUMilli: 1}}}
		h.Poll(context.Background())
		h.Poll(context.Background()) // the same sample again: kept once
	}
	s := h.Snapshot(clk.Now())
	if s.Stale != nil || s.Hold {
		t.Fatalf("stale: %v, hold %t", s.Stale, s.Hold)
	}
	// Within the one-minute window: 45 s, 30 s, 15 s, 0 s ago, and the one
	// at 60 s is cut (older than the window) once a newer one exists.
	if got := len(s.Pods["p/a"]); got != 5 {
		t.Fatalf("%d samples kept, want 5: %+v", got, s.Pods["p/a"])
	}
	// A snapshot shares the history's samples: later reads that append and
	// cut leave the samples it holds as they were.
	kept := append([]reclaim.Usage(nil), s.Pods["p/a"]...)
	for i := 8; i < 12; i++ {
		at := start.Add(time.Duration(i) * 15 * time.Second)
		clk.SetTime(at)
		reader.u = Usages{Pods: map[string]reclaim.Usage{"p/a": {At: at, CPUMilli: int64(100 * i)}}, Nodes: map[string]reclaim.Usage{"n": {At: at, CPUMilli: 1}}}
		h.Poll(context.Background())
	}
	if !reflect.DeepEqual(s.Pods["p/a"], kept) {
		t.Fatalf("an earlier snapshot changed under later reads:\n got  %+v\n want %+v", s.Pods["p/a"], kept)
	}
	// metrics-server gone: reads fail, the samples age into staleness.
	reader.err = errors.New("the server is currently unable to handle the request")
	clk.SetTime(clk.Now().Add(3 * time.Minute))
	h.Poll(context.Background())
	s = h.Snapshot(clk.Now())
	if s.Stale == nil || !errors.Is(s.Stale, ErrUsageStale) || !strings.Contains(s.Stale.Error(), "unable to handle") {
		t.Fatalf("want stale naming the read error, got %v", s.Stale)
	}
	// A pod metrics.k8s.io no longer lists is forgotten.
	reader.err = nil
	reader.u = Usages{Pods: map[string]reclaim.Usage{}, Nodes: map[string]reclaim.Usage{}}
	h.Poll(context.Background())
	if s := h.Snapshot(clk.Now()); len(s.Pods) != 0 {
		t.Fatalf("gone pod kept: %v", s.Pods)
	}
}

// fixedUsage is a UsageSource with a fixed snapshot.
type fixedUsage struct{ s UsageSnapshot }

func (f fixedUsage) Snapshot(time.Time) UsageSnapshot { return f.s }

// recordingNodes is a NodeStatus that records what was published.
type recordingNodes struct{ set map[string]int64 }

func (r *recordingNodes) SetExtended(_ context.Context, node string, res corev1.ResourceName, v int64) error {
	r.set[node+"/"+string(res)] = v
	return nil
}

// TestReconcileYieldsOnPressure: one round with reclaim, from usage to
// /scale. A 16-core node full of paid requests publishes 4300m and holds 4
// reclaiming pods; the paid pod's usage rises to 15 cores: the round
// publishes what requests leave (0), and the worker goes from 4 to 0 at
// once, limited by Reclaim, with the Reclaim condition True (usage fresh).
func TestReconcileYieldsOnPressure(t *testing.T) {
	c := newCapacity(16, 16)
	l := c.Ledger
	l.UpsertNode(capacity.FromNode(&corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("256Gi"),
				corev1.ResourcePods: resource.MustParse("500"), ext: resource.MustParse("4300")},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}))
	for i := range 4 {
		l.UpsertPod(capacity.FromPod(&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: fmt.Sprintf("worker-%d", i), Labels: map[string]string{"app": "worker"}},
			Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0"), ext: resource.MustParse("1000")}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning},
		}))
	}
	targets := newFakeTargets()
	targets.add("worker", &fakeTarget{replicas: 4, cpu: "0", extended: corev1.ResourceList{ext: resource.MustParse("1000")}})
	s := scaler("worker", 100, nil)
	s.Spec.Reclaim = &v1alpha1.Reclaim{Enabled: true, Theta: "0.65"}
	w := newWorld(t, c, targets, s)
	nodes := &recordingNodes{set: map[string]int64{}}
	var samples []reclaim.Usage
	for i := range 40 {
		samples = append(samples, reclaim.Usage{At: roundStart.Add(-time.Duration(40-i) * 15 * time.Second), CPUMilli: 2000})
	}
	samples = append(samples, reclaim.Usage{At: roundStart, CPUMilli: 15000})
	w.r.Reclaimer = &Reclaimer{
		Usage: fixedUsage{UsageSnapshot{Pods: map[string][]reclaim.Usage{"paid/app": samples},
			Nodes: map[string]reclaim.Usage{"node-1": {At: roundStart, CPUMilli: 15004}}}},
		Paid: c.Ledger, Nodes: nodes, Reservation: reclaim.DefaultReservation,
		Metrics: NewReclaimMetrics(prometheus.NewRegistry()), Log: w.r.Log,
	}
	w.r.Decisions = NewDecisionStore()
	w.round(t)
	if got, ok := nodes.set["node-1/"+ext]; !ok || got != 0 {
		t.Fatalf("published %v (%t), want 0 on node-1: %v", got, ok, nodes.set)
	}
	if got := targets.replicas("worker"); got != 0 {
		t.Fatalf("worker at %d, want 0: its 4 pods no longer fit the node's room", got)
	}
	st := w.status(t, "worker")
	if !strings.Contains(st.Reason, "reclaim") {
		t.Errorf("reason %q does not say reclaim", st.Reason)
	}
	if st.Reclaim == nil || !st.Reclaim.UsageFresh || len(st.Reclaim.Nodes) != 1 || st.Reclaim.Nodes[0].Published != 0 {
		t.Errorf("status.reclaim %+v", st.Reclaim)
	}
	// The dashboard reads the same per-node room from the decision store.
	if p, ok := w.r.Decisions.Get(testNamespace + "/worker"); !ok || p.Reclaim == nil || st.Reclaim == nil || !reflect.DeepEqual(p.Reclaim.Nodes, st.Reclaim.Nodes) {
		t.Errorf("published reclaim %+v, want status.reclaim's nodes %+v", p.Reclaim, st.Reclaim)
	}
}
