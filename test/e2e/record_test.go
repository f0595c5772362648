//go:build e2e && record

// Recordings that assert nothing are not tests CI runs: they build only with
// the record tag, which `make record` (hack/record.sh) sets.

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestHPAObjectMetricSeed runs the write-up's HPA (Object metric
// cpu_capacity_remaining on Service cluster-metrics, Value 30000, min 15, max
// 150, its 30 s up and down delays as stabilisation windows) through our
// custom metrics API, over a paid burst. It records how the HPA behaves: a
// measurement, not an assertion (TestCalibrationHPA is the test of the
// write-up's HPA), so it is built only with the record tag: `make record`.
func TestHPAObjectMetricSeed(t *testing.T) {
	ns := "e2e-hpa-seed"
	hpaSetup(t, ns, false)
	window := int32(30)
	createHPA(t, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "worker"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "worker"},
			MinReplicas:    int32p(15),
			MaxReplicas:    150,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
				DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: "v1", Kind: "Service", Name: "cluster-metrics"},
				Metric:          autoscalingv2.MetricIdentifier{Name: "cpu_capacity_remaining"},
				Target:          autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: resource.NewQuantity(30000, resource.DecimalSI)},
			}}},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleUp:   &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &window},
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &window},
			},
		},
	})
	waitFor(t, 30*time.Second, "the HPA controller to read cpu_capacity_remaining", func(ctx context.Context) (bool, error) {
		h, err := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, m := range h.Status.CurrentMetrics {
			if m.Object != nil && m.Object.Current.Value != nil {
				t.Logf("HPA status shows cpu_capacity_remaining = %s", m.Object.Current.Value)
				return true, nil
			}
		}
		return false, fmt.Errorf("conditions %+v", h.Status.Conditions)
	})
	samples := recordBurst(t, ns, recordedBurst)
	changes, distance := summarize(samples)
	t.Logf("seed HPA over %s of paid burst: %d direction changes of the worker count (the load changed direction twice), mean distance from the ideal count %.1f replicas", recordedBurst.length, changes, distance)
}
