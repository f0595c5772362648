package scalerspec

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/reclaim"
)

func TestReclaimConfig(t *testing.T) {
	cpu, mem := corev1.ResourceCPU, corev1.ResourceMemory
	tests := []struct {
		name    string
		in      *v1alpha1.Reclaim
		want    *reclaim.RoomConfig
		wantErr string
	}{
		{"absent is off", nil, nil, ""},
		{"disabled is off", &v1alpha1.Reclaim{Theta: "0.5"}, nil, ""},
		{"defaults", &v1alpha1.Reclaim{Enabled: true}, &reclaim.RoomConfig{Theta: 0.75,
			Resources: []corev1.ResourceName{cpu}, Margin: map[corev1.ResourceName]reclaim.Margin{cpu: {Quantity: 500}}}, ""},
		{"memory when asked, margins given", &v1alpha1.Reclaim{Enabled: true, Resources: []corev1.ResourceName{cpu, mem}, Theta: ".6",
			Margin: map[corev1.ResourceName]v1alpha1.HeadroomValue{cpu: "1", mem: "2Gi"}},
			&reclaim.RoomConfig{Theta: 0.6, Resources: []corev1.ResourceName{cpu, mem},
				Margin: map[corev1.ResourceName]reclaim.Margin{cpu: {Quantity: 1000}, mem: {Quantity: 2 << 30}}}, ""},
		{"theta above 1", &v1alpha1.Reclaim{Enabled: true, Theta: "1.5"}, nil, `spec.reclaim.theta: "1.5" is not a decimal above 0 and at most 1`},
		{"pods", &v1alpha1.Reclaim{Enabled: true, Resources: []corev1.ResourceName{"pods"}}, nil, `spec.reclaim.resources[0]: "pods" cannot be reclaimed`},
		{"margin of a resource not reclaimed", &v1alpha1.Reclaim{Enabled: true, Margin: map[corev1.ResourceName]v1alpha1.HeadroomValue{mem: "5%"}}, nil, "spec.reclaim.margin[memory]: memory is not reclaimed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReclaimConfig(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
