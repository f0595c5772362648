package controller

import (
	"math"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/forecast"
)

// paidPod adds a paid pod of cores cores, bound to node-1 or pending.
func paidPod(l *capacity.Ledger, name string, cores int, bound, terminating bool) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "paid", Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: *resource.NewQuantity(int64(cores), resource.DecimalSI)}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	if bound {
		p.Spec.NodeName, p.Status.Phase = "node-1", corev1.PodRunning
	}
	if terminating {
		p.DeletionTimestamp = &metav1.Time{Time: roundStart}
	}
	l.UpsertPod(capacity.FromPod(p))
}

// TestHistoryRecordsPaidDemand: each round records the pool's paid demand
// (bound, terminating and pending paid pods) on
// the history clock, the highest of each minute once the minute is over.
func TestHistoryRecordsPaidDemand(t *testing.T) {
	targets := newFakeTargets()
	targets.add("worker", &fakeTarget{replicas: 2})
	capa := newCapacity(64, 4) // "app": 4 bound paid cores
	w := newWorld(t, capa, targets, scaler("worker", 100, nil))
	now := roundStart
	w.r.HistoryClock = func() time.Time { return now }
	key := testNamespace + "/worker"

	w.round(t) // 12:00:00: 4 cores
	paidPod(capa.Ledger, "terminating", 2, true, true)
	paidPod(capa.Ledger, "pending", 3, false, false)
	now = now.Add(30 * time.Second)
	w.round(t) // 12:00:30: 4 + 2 + 3 = 9 cores
	capa.DeletePod("paid", "pending")
	capa.DeletePod("paid", "terminating")
	now = now.Add(40 * time.Second)
	w.round(t) // 12:01:10: the first minute is over; 4 cores
	now = now.Add(60 * time.Second)
	w.round(t) // 12:02:10: the second minute is over

	h := w.r.HistorySnapshot()[key]
	if h == nil {
		t.Fatalf("no history for %s in %v", key, w.r.HistorySnapshot())
	}
	cpu := h.Series(corev1.ResourceCPU)
	if !cpu.Start.Equal(roundStart) || cpu.Step != forecast.DefaultStep {
		t.Fatalf("history from %s every %s, want from %s every %s", cpu.Start, cpu.Step, roundStart, forecast.DefaultStep)
	}
	if want := []float64{9000, 4000}; len(cpu.Values) != 2 || cpu.Values[0] != want[0] || cpu.Values[1] != want[1] {
		t.Fatalf("cpu history %v, want %v (each minute's highest paid demand, the worker's pods not counted)", cpu.Values, want)
	}
	if h.Keep < 14*24*time.Hour {
		t.Errorf("history keeps %s, want at least 14 days", h.Keep)
	}

	// A snapshot is a copy: later rounds do not change it.
	now = now.Add(time.Minute)
	w.round(t)
	if got := len(h.Series(corev1.ResourceCPU).Values); got != 2 {
		t.Errorf("the snapshot grew to %d samples with a later round", got)
	}

	// A new leader seeded with the history records on after it, and the
	// minutes it was away are gaps, not zeros.
	w.r = w.newReconciler(capa)
	w.r.HistoryClock = func() time.Time { return now }
	w.r.SeedHistory(key, h)
	now = now.Add(3 * time.Minute) // 12:06:10
	w.round(t)
	now = now.Add(time.Minute)
	w.round(t)
	got := w.r.HistorySnapshot()[key].Series(corev1.ResourceCPU)
	if !got.Start.Equal(roundStart) || len(got.Values) != 7 {
		t.Fatalf("seeded history: %d samples from %s, want 7 from %s: %v", len(got.Values), got.Start, roundStart, got.Values)
	}
	for i, v := range got.Values {
		gap := i >= 2 && i < 6
		if gap != math.IsNaN(v) || !gap && v != 4000 && i != 0 {
			t.Errorf("sample %d = %v, want %s", i, v, map[bool]string{true: "a gap", false: "4000"}[gap])
		}
	}
}
