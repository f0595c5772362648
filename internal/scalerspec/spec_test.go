package scalerspec

import (
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
)

func TestParseHeadroom(t *testing.T) {
	tests := []struct {
		resource corev1.ResourceName
		value    string
		want     control.Headroom
		err      string
	}{
		{resource: "cpu", value: "30", want: control.Headroom{Quantity: 30000}},
		{resource: "cpu", value: "500m", want: control.Headroom{Quantity: 500}},
		{resource: "memory", value: "64Gi", want: control.Headroom{Quantity: 64 << 30}},
		{resource: "nvidia.com/gpu", value: "1", want: control.Headroom{Quantity: 1}},
		{resource: "cpu", value: "15%", want: control.Headroom{Percent: 15}},
		{resource: "cpu", value: "12.5%", want: control.Headroom{Percent: 12.5}},
		{resource: "cpu", value: "0%", want: control.Headroom{}},
		{resource: "cpu", value: "150%", err: "not a percent between 0% and 100%"},
		{resource: "cpu", value: "x%", err: "not a percent"},
		{resource: "cpu", value: "-1", err: "is negative"},
		{resource: "cpu", value: "thirty", err: "neither a quantity nor a percent"},
	}
	for _, tt := range tests {
		t.Run(string(tt.resource)+"="+tt.value, func(t *testing.T) {
			got, err := parseHeadroom(tt.resource, tt.value)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestToControl(t *testing.T) {
	target := &Target{
		Scale:       &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 15}},
		Shape:       capacity.Shape{Requests: capacity.Resources{"cpu": 1000, "pods": 1}},
		PodPriority: -10,
	}
	window := int32(5)
	s := &v1alpha1.OpportunisticScaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "batch", Name: "worker"},
		Spec: v1alpha1.OpportunisticScalerSpec{
			MinReplicas:              int32p(15),
			MaxReplicas:              150,
			Headroom:                 map[corev1.ResourceName]v1alpha1.HeadroomValue{"cpu": "30"},
			TargetUtilizationPercent: int32p(85),
			PoolSelector:             &metav1.LabelSelector{MatchLabels: map[string]string{"pool": "spot"}},
			Priority:                 3,
			Behavior:                 v1alpha1.Behavior{ScaleUp: &v1alpha1.ScalingRules{StabilizationWindowSeconds: &window, MaxStep: 10}},
		},
	}
	got, err := ToControl(s, target, control.PodCounts{Bound: 12, Stranded: 2}, control.History{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != "batch/worker" || got.Current != 15 || got.Bound != 12 || got.Stranded != 2 || got.Min != 15 || got.Max != 150 || got.Priority != 3 || got.Weight != 1 || got.PodPriority != -10 {
		t.Errorf("identity, bounds or priorities wrong: %+v", got)
	}
	if got.Headroom["cpu"] != (control.Headroom{Quantity: 30000}) || got.TargetUtilizationPercent != 85 {
		t.Errorf("headroom %+v, target utilisation %v", got.Headroom, got.TargetUtilizationPercent)
	}
	if got.PoolSelector.String() != "pool=spot" {
		t.Errorf("pool selector %q", got.PoolSelector)
	}
	if got.ScaleUp != (control.Behavior{StabilizationWindow: 5 * time.Second, MaxStep: 10, Period: defaultPeriod}) {
		t.Errorf("scale-up behaviour %+v", got.ScaleUp)
	}
	if got.ScaleDown != (control.Behavior{Period: defaultPeriod}) {
		t.Errorf("scale-down must default to immediate: %+v", got.ScaleDown)
	}

	s.Spec.PoolSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "pool", Operator: "Bogus"}}}
	if _, err := ToControl(s, target, control.PodCounts{}, control.History{}, nil); err == nil || !strings.Contains(err.Error(), "spec.poolSelector") {
		t.Errorf("a bad pool selector must be an error naming the field, got %v", err)
	}
}

func int32p(v int32) *int32 { return &v }
