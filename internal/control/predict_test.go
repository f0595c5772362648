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
		{"band and margin on the peak",
			Prediction{Observed: capacity.Resources{cpu: 40000}, Forecast: map[corev1.ResourceName][]float64{cpu: {50000}},
				Band: map[corev1.ResourceName]float64{cpu: 5000}, MarginPercent: 10},
			capacity.Resources{cpu: 20500}},
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
			s := Predictive(base, alloc, p)
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
