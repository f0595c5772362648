package control

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

func TestPredictionReserve(t *testing.T) {
	cpu := corev1.ResourceCPU
	tests := []struct {
		name string
		p    Prediction
		want capacity.Resources
	}{
		{"a rise ahead is reserved",
			Prediction{Observed: capacity.Resources{cpu: 40000}, Forecast: map[corev1.ResourceName][]float64{cpu: {40000, 70000, 100000}}},
			capacity.Resources{cpu: 60000}},
		{"band and margin on the forecast rise",
			Prediction{Observed: capacity.Resources{cpu: 40000}, Forecast: map[corev1.ResourceName][]float64{cpu: {50000, 60000}},
				Band: map[corev1.ResourceName]float64{cpu: 5000}, MarginPercent: 10},
			capacity.Resources{cpu: 11000}},
		{"a flat forecast above the demand holds nothing",
			Prediction{Observed: capacity.Resources{cpu: 40000}, Forecast: map[corev1.ResourceName][]float64{cpu: {60000, 60000}}},
			capacity.Resources{}},
		{"demand above the forecast: the rise counts from it",
			Prediction{Observed: capacity.Resources{cpu: 50000}, Forecast: map[corev1.ResourceName][]float64{cpu: {40000, 70000}}},
			capacity.Resources{cpu: 20000}},
		{"a fall ahead gives nothing back",
			Prediction{Observed: capacity.Resources{cpu: 90000}, Forecast: map[corev1.ResourceName][]float64{cpu: {60000, 20000}}},
			capacity.Resources{}},
		{"no forecast: reactive",
			Prediction{Observed: capacity.Resources{cpu: 90000}},
			capacity.Resources{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.p.Reserve()
			if len(got) != len(tt.want) || got[cpu] != tt.want[cpu] {
				t.Errorf("Reserve = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPredictiveBudget(t *testing.T) {
	cpu := corev1.ResourceCPU
	// Four nodes of 32 cores, 40 cores paid, 30 cores of headroom: the
	// reactive budget is 58 one-core replicas.
	nodes := []*corev1.Node{kubeNode("a", cores(32)), kubeNode("b", cores(32)), kubeNode("c", cores(32)), kubeNode("d", cores(32))}
	e := newEnv(nodes, []*corev1.Pod{kubePod("p1", "a", list("cpu", "10")), kubePod("p2", "b", list("cpu", "10")),
		kubePod("p3", "c", list("cpu", "10")), kubePod("p4", "d", list("cpu", "10"))})
	base := worker("worker", list("cpu", "1"), bounds(0, 200), current(58), cpuHeadroom(30))
	alloc := capacity.Resources{cpu: 128000}
	tests := []struct {
		name     string
		forecast []float64
		want     int32
	}{
		{"no forecast: the reactive budget", nil, 58},
		{"a peak of 70 cores paid ahead", []float64{40000, 70000}, 28},
		{"a fall ahead changes nothing", []float64{40000, 10000}, 58},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Prediction{Observed: capacity.Resources{cpu: 40000}}
			if tt.forecast != nil {
				p.Forecast = map[corev1.ResourceName][]float64{cpu: tt.forecast}
			}
			s := Predictive(base, alloc, p.Reserve())
			d := e.decide(t0, s)[0]
			if d.Desired != tt.want {
				t.Errorf("Desired = %d, want %d (%s)", d.Desired, tt.want, d.Reason)
			}
			if base.Headroom[cpu].Quantity != 30000 || len(base.Headroom) != 1 {
				t.Errorf("Predictive changed the scaler's own headroom map")
			}
		})
	}
}

func TestLeadTime(t *testing.T) {
	if got := LeadTime(120*time.Second, 5*time.Second, 10*time.Second); got != 135*time.Second {
		t.Errorf("LeadTime = %v, want 2m15s", got)
	}
}

func TestNextReserve(t *testing.T) {
	cpu := corev1.ResourceCPU
	hold := 10 * time.Minute
	type round struct {
		minute   int
		observed int64
		forecast []float64
		want     int64
		lead     int // forecast values in the lead time (0: all)
	}
	tests := []struct {
		name   string
		rounds []round
	}{
		{"a forecast rise is held until it comes", []round{
			{0, 40000, []float64{40000, 80000}, 40000, 0},
			{1, 40000, []float64{40000, 40000}, 40000, 0}, // the forecast alone falls: no refill
			{2, 80000, []float64{80000, 80000}, 0, 0},     // it came
		}},
		{"observed demand falling gives room back as it falls", []round{
			{0, 50000, []float64{50000, 80000}, 30000, 0},
			{1, 45000, []float64{45000, 45000}, 30000, 0}, // the level falls with it: 75000 - 45000
		}},
		{"a forecast that did not come is dropped after the hold", []round{
			{0, 40000, []float64{40000, 80000}, 40000, 0},
			{5, 40000, nil, 40000, 0},
			{10, 40000, nil, 0, 0},
		}},
		{"a new rise raises the level", []round{
			{0, 40000, []float64{40000, 60000}, 20000, 0},
			{1, 40000, []float64{40000, 90000}, 50000, 0},
		}},
		{"a dip the forecast sees ending within the young life is not refilled", []round{
			{0, 56000, []float64{56000, 56000, 56000}, 0, 1},
			{1, 40000, []float64{40000, 56000, 56000}, 16000, 1}, // the rise is past the lead time: only the guard holds
			{2, 56000, []float64{56000, 56000, 56000}, 0, 1},
		}},
		{"a dip the forecast sees lasting is refilled", []round{
			{0, 56000, []float64{56000, 56000, 56000}, 0, 1},
			{1, 40000, []float64{40000, 40000, 40000}, 0, 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var last map[corev1.ResourceName]Reserved
			for _, r := range tt.rounds {
				p := Prediction{Observed: capacity.Resources{cpu: r.observed}, Lead: r.lead}
				if r.forecast != nil {
					p.Forecast = map[corev1.ResourceName][]float64{cpu: r.forecast}
				}
				var got capacity.Resources
				got, last = p.NextReserve(t0.Add(time.Duration(r.minute)*time.Minute), hold, last)
				if got[cpu] != r.want {
					t.Fatalf("minute %d: reserve %d, want %d", r.minute, got[cpu], r.want)
				}
			}
		})
	}
}

func TestDescribeReserve(t *testing.T) {
	cpu := corev1.ResourceCPU
	p := Prediction{Observed: capacity.Resources{cpu: 88000}, Forecast: map[corev1.ResourceName][]float64{cpu: {88000, 112000}}}
	want := "keeping 24000m cpu for the forecast peak of 112000m paid (now 88000m)"
	if got := DescribeReserve(p); got != want {
		t.Errorf("DescribeReserve = %q, want %q", got, want)
	}
	p.Forecast[cpu] = []float64{88000, 80000}
	if got := DescribeReserve(p); got != "no reserve: the forecast peak is within the paid demand seen now" {
		t.Errorf("DescribeReserve with no rise = %q", got)
	}
}
