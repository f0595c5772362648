package controller

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/forecast"
	"slices"
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

// dailyHistory is three days of paid CPU demand up to roundStart (12:00):
// 4 cores, and 40 cores each day from 12:01 to 13:00.
func dailyHistory() *forecast.History {
	start := roundStart.Add(-72 * time.Hour)
	h := forecast.NewHistory(start, forecast.DefaultStep, 14*24*time.Hour)
	for at := start; at.Before(roundStart); at = at.Add(forecast.DefaultStep) {
		cpu := 4000.0
		if m := at.Hour()*60 + at.Minute(); m >= 12*60+1 && m < 13*60 {
			cpu = 40000
		}
		if err := h.Record(at, map[corev1.ResourceName]float64{corev1.ResourceCPU: cpu}); err != nil {
			panic(err)
		}
	}
	return h
}

// predictingWorld is a 64-core node with 4 paid cores, a worker of 60
// one-core replicas with spec.prediction.mode, seeded with dailyHistory:
// the forecast sees 36 more paid cores within its lead time.
func predictingWorld(t *testing.T, mode v1alpha1.PredictionMode) *world {
	targets := newFakeTargets()
	targets.add("worker", &fakeTarget{replicas: 60})
	s := scaler("worker", 100, nil)
	if mode != "" {
		s.Spec.Prediction = &v1alpha1.Prediction{Mode: mode}
	}
	w := newWorld(t, newCapacity(64, 4), targets, s)
	w.r.HistoryClock = w.clock.Now
	w.r.SeedHistory(testNamespace+"/worker", dailyHistory())
	return w
}

func TestPredictionModes(t *testing.T) {
	tests := []struct {
		mode        v1alpha1.PredictionMode
		wantDesired func(int32) bool
		says        string
		status      bool
	}{
		{mode: "", wantDesired: func(d int32) bool { return d == 60 }, says: "today's behaviour: no forecast"},
		{mode: v1alpha1.PredictionOff, wantDesired: func(d int32) bool { return d == 60 }, says: "Off: no forecast", status: true},
		{mode: v1alpha1.PredictionPreview, wantDesired: func(d int32) bool { return d == 60 }, says: "Preview changes nothing", status: true},
		{mode: v1alpha1.PredictionAuto, wantDesired: func(d int32) bool { return d <= 24 }, says: "Auto hands back the 36 cores of the peak before it comes", status: true},
	}
	for _, tc := range tests {
		t.Run(string(tc.mode), func(t *testing.T) {
			w := predictingWorld(t, tc.mode)
			w.round(t)
			got := w.targets.replicas("worker")
			if !tc.wantDesired(got) {
				t.Fatalf("worker scaled to %d: %s", got, tc.says)
			}
			st := w.status(t, "worker")
			if tc.mode == "" || tc.mode == v1alpha1.PredictionOff {
				if st.Prediction != nil {
					t.Errorf("status.prediction %+v with prediction %q, want none", st.Prediction, tc.mode)
				}
				return
			}
			p := st.Prediction
			if p == nil || p.Mode != tc.mode {
				t.Fatalf("status.prediction %+v, want mode %s", p, tc.mode)
			}
			if p.Forecaster == "" || p.Forecaster == string(forecast.None) || p.Period != "24h0m0s" || p.BacktestError == "" {
				t.Errorf("forecaster %q over period %q, error %q: want one found on the daily history (%s)", p.Forecaster, p.Period, p.BacktestError, p.Reason)
			}
			peak := p.Peak[corev1.ResourceCPU]
			reserve := p.Reserve[corev1.ResourceCPU]
			if peak.MilliValue() < 40000 || reserve.MilliValue() < 36000 || p.PeakTime == nil || !p.PeakTime.Time.Equal(roundStart.Add(time.Minute)) {
				t.Errorf("peak %s at %v, reserve %s: want 40 cores (and more: band) at 12:01 and a reserve of at least 36", peak.String(), p.PeakTime, reserve.String())
			}
			if p.LeadTime == nil || p.LeadTimeSource == "" {
				t.Errorf("lead time %v from %q, want it and where it came from", p.LeadTime, p.LeadTimeSource)
			}
			if tc.mode == v1alpha1.PredictionAuto {
				w.wantEvent(t, "Normal PreYield scaled from 60 to")
				if !strings.HasPrefix(st.Reason, "yielding ") || !strings.Contains(st.Reason, "ahead of the 12:01 peak") {
					t.Errorf("reason %q, want it to say it yields ahead of the 12:01 peak", st.Reason)
				}
			}
		})
	}
}

// TestPredictionAfterRestart: a new leader seeded with the history the
// old one saved forecasts the same peak and reserve.
func TestPredictionAfterRestart(t *testing.T) {
	w := predictingWorld(t, v1alpha1.PredictionPreview)
	w.round(t)
	before := w.status(t, "worker").Prediction
	saved := w.r.HistorySnapshot()

	w.r = w.newReconciler(newCapacity(64, 4))
	w.r.HistoryClock = w.clock.Now
	for key, h := range saved {
		w.r.SeedHistory(key, h)
	}
	w.clock.Step(time.Second)
	w.round(t)
	after := w.status(t, "worker").Prediction
	if before == nil || after == nil || !equality(before.Peak, after.Peak) || !equality(before.Reserve, after.Reserve) || !before.PeakTime.Equal(after.PeakTime) || before.Forecaster != after.Forecaster {
		t.Fatalf("after a restart the forecast is %+v, before it was %+v", after, before)
	}
}

// TestLearnedHeadroom: headroom {cpu: auto} keeps the rise the history
// saw at this hour of the day within one lead time, with prediction Off.
func TestLearnedHeadroom(t *testing.T) {
	w := predictingWorld(t, "")
	var s v1alpha1.OpportunisticScaler
	if err := w.client.Get(t.Context(), client.ObjectKey{Namespace: testNamespace, Name: "worker"}, &s); err != nil {
		t.Fatal(err)
	}
	s.Spec.Headroom = map[corev1.ResourceName]v1alpha1.HeadroomValue{corev1.ResourceCPU: "auto"}
	if err := w.client.Update(t.Context(), &s); err != nil {
		t.Fatal(err)
	}
	w.round(t)
	if got := w.targets.replicas("worker"); got != 24 {
		t.Errorf("worker scaled to %d, want 24: 64 cores - 4 paid - 36 learned headroom", got)
	}
	p := w.status(t, "worker").Prediction
	if p == nil || len(p.LearnedHeadroom) != 1 {
		t.Fatalf("status.prediction %+v, want the learned headroom", p)
	}
	l := p.LearnedHeadroom[0]
	if l.Resource != corev1.ResourceCPU || l.Quantity.MilliValue() != 36000 || !strings.Contains(l.Source, "at this hour of the 24h0m0s period") {
		t.Errorf("learned headroom %s %s from %q, want cpu 36 at this hour of the day", l.Resource, l.Quantity.String(), l.Source)
	}
}

var update = flag.Bool("update", false, "rewrite golden files")

// TestPredictionStatusGolden renders the status of the Auto world (a 10 %
// margin, a worker with a 60 s grace) as docs/learning.md shows it.
func TestPredictionStatusGolden(t *testing.T) {
	w := predictingWorld(t, v1alpha1.PredictionAuto)
	w.targets.targets["worker"].grace = time.Minute
	var s v1alpha1.OpportunisticScaler
	if err := w.client.Get(t.Context(), client.ObjectKey{Namespace: testNamespace, Name: "worker"}, &s); err != nil {
		t.Fatal(err)
	}
	s.Spec.Prediction.MarginPercent = 10
	if err := w.client.Update(t.Context(), &s); err != nil {
		t.Fatal(err)
	}
	w.round(t)
	st := w.status(t, "worker")
	st.Conditions = nil // their times move
	out, err := yaml.Marshal(map[string]any{"status": st})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "prediction-auto-status.yaml")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("status differs from %s:\n%s", golden, out)
	}
}

// TestHistorySnapshotWhileRounds: the leader's saver reads the histories
// while rounds record (run with -race).
func TestHistorySnapshotWhileRounds(t *testing.T) {
	w := predictingWorld(t, v1alpha1.PredictionPreview)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			if h := w.r.HistorySnapshot()[testNamespace+"/worker"]; h == nil || h.Len() < 3*24*60 {
				t.Errorf("snapshot %v lost the seeded history", h)
				return
			}
		}
	}()
	for range 5 {
		w.clock.Step(30 * time.Second)
		w.round(t)
	}
	<-done
}

// TestLearnedSlots: a slot with count "auto" learns its count from the
// history of how many paid pods of its shape the pool held (1 pod of 4
// cores, 10 each day from 12:01 to 13:00: 9 more within the lead time at
// this hour of the day), records that history on, and says in status
// where the number came from; without history it is 10 % of the pods of
// the shape seen now, at least 1.
func TestLearnedSlots(t *testing.T) {
	slot := []v1alpha1.HeadroomSlot{{Name: "web", Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}, Count: intstr.FromString("auto")}}
	key := testNamespace + "/worker"
	for _, tc := range []struct {
		name     string
		seed     bool
		count    int32
		replicas int32
		source   string
	}{
		{name: "learned", seed: true, count: 9, replicas: 24, source: "the 0.99-quantile of the number of paid pods of the shape's rise within the lead time"},
		{name: "default", count: 1, replicas: 56, source: "10% of the 1 paid pods of the shape seen now, at least 1, until 24h0m0s of history is held"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			targets := newFakeTargets()
			targets.add("worker", &fakeTarget{replicas: 60})
			s := scaler("worker", 100, nil)
			s.Spec.HeadroomSlots = slot
			w := newWorld(t, newCapacity(64, 4), targets, s) // the paid "app" pod is one pod of the slot's shape
			w.r.HistoryClock = w.clock.Now
			if tc.seed {
				h := dailyHistory()
				pods := h.Series(corev1.ResourceCPU).Values
				h.Demand[SlotResource("web")] = make([]float64, len(pods))
				for i, v := range pods {
					h.Demand[SlotResource("web")][i] = v / 4000 // 1 pod, 10 at the peak
				}
				w.r.SeedHistory(key, h)
			}
			w.round(t)
			if got := w.targets.replicas("worker"); got != tc.replicas {
				t.Errorf("worker scaled to %d, want %d: 64 cores - 4 paid - %d slots of 4 cores", got, tc.replicas, tc.count)
			}
			st := w.status(t, "worker")
			if len(st.Slots) != 1 || st.Slots[0].Wanted != tc.count {
				t.Errorf("status.slots %+v, want web wanted %d", st.Slots, tc.count)
			}
			if st.Prediction == nil || len(st.Prediction.LearnedHeadroom) != 1 {
				t.Fatalf("status.prediction %+v, want the learned count", st.Prediction)
			}
			l := st.Prediction.LearnedHeadroom[0]
			t.Logf("learned %s %s: %s", l.Resource, l.Quantity.String(), l.Source)
			if l.Resource != "slots/web" || l.Quantity.Value() != int64(tc.count) || !strings.Contains(l.Source, tc.source) {
				t.Errorf("learned %s %s from %q, want slots/web %d from %q", l.Resource, l.Quantity.String(), l.Source, tc.count, tc.source)
			}
			if tc.seed && !strings.Contains(l.Source, "at this hour of the 24h0m0s period") {
				t.Errorf("learned from %q, want at this hour of the day", l.Source)
			}
			// The round's count of the slot's pods goes on the history.
			w.clock.Step(time.Minute)
			w.round(t)
			got := w.r.HistorySnapshot()[key].Series(SlotResource("web")).Values
			if len(got) == 0 || got[len(got)-1] != 1 {
				t.Errorf("slots/web history ends %v, want the 1 pod of the shape seen", got[max(len(got)-3, 0):])
			}
		})
	}
}

// TestPublishedForecast: the dashboard's forecast (history, plan, band,
// peak) is published for a scaler in Preview, and not in Off.
func TestPublishedForecast(t *testing.T) {
	for _, mode := range []v1alpha1.PredictionMode{v1alpha1.PredictionOff, v1alpha1.PredictionPreview} {
		t.Run(string(mode), func(t *testing.T) {
			w := predictingWorld(t, mode)
			w.r.Decisions = NewDecisionStore()
			w.round(t)
			p, ok := w.r.Decisions.Get(testNamespace + "/worker")
			if !ok {
				t.Fatal("no decision published")
			}
			if mode == v1alpha1.PredictionOff {
				if p.Forecasts != nil {
					t.Fatalf("published %d forecasts in Off, want none", len(p.Forecasts))
				}
				return
			}
			if len(p.Forecasts) != 1 || p.Forecasts[0].Resource != corev1.ResourceCPU {
				t.Fatalf("published forecasts %+v, want one of cpu", p.Forecasts)
			}
			f := p.Forecasts[0]
			if len(f.Observed) != MaxForecastPoints || !f.ObservedStart.Equal(roundStart.Add(-MaxForecastPoints*time.Minute)) || f.Observed[len(f.Observed)-1] != 4000 {
				t.Errorf("history of %d points from %v ending at %v, want the last %d minutes before 12:00 ending at 4 cores",
					len(f.Observed), f.ObservedStart, f.Observed[len(f.Observed)-1], MaxForecastPoints)
			}
			if len(f.Forecast) < 2 || len(f.Forecast) > MaxForecastPoints || !f.ForecastStart.Equal(roundStart) || f.Band < 0 {
				t.Fatalf("forecast of %d points from %v, band %v: want the plan from 12:00", len(f.Forecast), f.ForecastStart, f.Band)
			}
			if f.Forecast[1] < 36000 || f.Peak < 40000 || !f.PeakAt.Equal(roundStart.Add(time.Minute)) || f.Forecaster == string(forecast.None) {
				t.Errorf("forecast at 12:01 %v, peak %v at %v by %s: want the 40-core peak of 12:01", f.Forecast[1], f.Peak, f.PeakAt, f.Forecaster)
			}
		})
	}
}

// TestOutlookOf: status' outlook keeps the history since its last gap in
// whole five-minute buckets ending now, each the highest of its minutes,
// and the plan in buckets from now.
func TestOutlookOf(t *testing.T) {
	obs := make([]float64, 20)
	for i := range obs {
		obs[i] = float64(1000 * i)
	}
	obs[3] = math.NaN() // a restart: what came before is not shown
	f := Forecast{Resource: corev1.ResourceCPU, Step: time.Minute, ObservedStart: roundStart.Add(-20 * time.Minute), Observed: obs,
		ForecastStart: roundStart, Forecast: []float64{5000, 9000, 7000, 1000, 1000, 1000, 2000}, Band: 1499.6}
	o := outlookOf([]Forecast{{Resource: corev1.ResourceMemory, Step: time.Minute}, f})
	if o == nil {
		t.Fatal("no outlook of a cpu forecast")
	}
	// 16 minutes after the gap: three whole buckets, 5-9, 10-14, 15-19.
	if !slices.Equal(o.ObservedMilliCores, []int64{9000, 14000, 19000}) || !o.Start.Time.Equal(roundStart.Add(-15*time.Minute)) || o.Step.Duration != 5*time.Minute {
		t.Errorf("observed %v from %v by %v, want 9, 14, 19 cores from 11:45 by 5m", o.ObservedMilliCores, o.Start, o.Step.Duration)
	}
	if !slices.Equal(o.ForecastMilliCores, []int64{9000, 2000}) || o.BandMilliCores != 1500 {
		t.Errorf("forecast %v band %d, want 9 then 2 cores, band 1500m", o.ForecastMilliCores, o.BandMilliCores)
	}
	if outlookOf([]Forecast{{Resource: corev1.ResourceMemory, Step: time.Minute}}) != nil {
		t.Error("an outlook without a cpu forecast")
	}
}
