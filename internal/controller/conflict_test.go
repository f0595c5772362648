package controller

import (
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opportunist/opportunist/api/v1alpha1"
)

func TestConflictingAutoscaler(t *testing.T) {
	target := autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "worker"}
	scaler := func(dryRun bool) *v1alpha1.OpportunisticScaler {
		return &v1alpha1.OpportunisticScaler{Spec: v1alpha1.OpportunisticScalerSpec{ScaleTargetRef: target, DryRun: dryRun}}
	}
	hpa := func(name string, ref autoscalingv2.CrossVersionObjectReference, meta metav1.ObjectMeta) autoscalingv2.HorizontalPodAutoscaler {
		meta.Name = name
		return autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta, Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: ref}}
	}
	other := autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	kedaOwned := metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject", Name: "worker-so"}}}
	kedaLabelled := metav1.ObjectMeta{Labels: map[string]string{"app.kubernetes.io/managed-by": "keda-operator", "app.kubernetes.io/part-of": "worker-so"}}
	tests := []struct {
		name       string
		scaler     *v1alpha1.OpportunisticScaler
		hpas       []autoscalingv2.HorizontalPodAutoscaler
		wantReason string
		wantSays   []string
	}{
		{name: "no HPA", scaler: scaler(false)},
		{name: "an HPA on another workload", scaler: scaler(false), hpas: []autoscalingv2.HorizontalPodAutoscaler{hpa("web", other, metav1.ObjectMeta{})}},
		{name: "an HPA on the target", scaler: scaler(false), hpas: []autoscalingv2.HorizontalPodAutoscaler{hpa("worker", target, metav1.ObjectMeta{})},
			wantReason: ReasonHPAScalesTarget, wantSays: []string{"HorizontalPodAutoscaler worker also scales Deployment worker", "dryRun: true"}},
		{name: "KEDA's HPA, owned by its ScaledObject", scaler: scaler(false), hpas: []autoscalingv2.HorizontalPodAutoscaler{hpa("keda-hpa-worker-so", target, kedaOwned)},
			wantReason: ReasonScaledObjectScalesTarget, wantSays: []string{"KEDA ScaledObject worker-so", "HorizontalPodAutoscaler keda-hpa-worker-so", "docs/keda.md"}},
		{name: "KEDA's HPA, by its labels", scaler: scaler(false), hpas: []autoscalingv2.HorizontalPodAutoscaler{hpa("keda-hpa-worker-so", target, kedaLabelled)},
			wantReason: ReasonScaledObjectScalesTarget, wantSays: []string{"KEDA ScaledObject worker-so"}},
		{name: "a dry-run scaler feeding an HPA", scaler: scaler(true), hpas: []autoscalingv2.HorizontalPodAutoscaler{hpa("worker", target, metav1.ObjectMeta{})}},
		{name: "a dry-run scaler feeding KEDA", scaler: scaler(true), hpas: []autoscalingv2.HorizontalPodAutoscaler{hpa("keda-hpa-worker-so", target, kedaOwned)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, msg := conflictingAutoscaler(tt.scaler, tt.hpas)
			if reason != tt.wantReason {
				t.Errorf("reason %q, want %q (message %q)", reason, tt.wantReason, msg)
			}
			if tt.wantReason == "" && msg != "" {
				t.Errorf("message %q without a conflict", msg)
			}
			for _, want := range tt.wantSays {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not say %q", msg, want)
				}
			}
		})
	}
}
