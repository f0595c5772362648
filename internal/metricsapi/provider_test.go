package metricsapi

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/opportunist/opportunist/internal/capacity"
)

type fakeCapacity struct {
	ledger *capacity.Ledger
	err    error
}

func (f *fakeCapacity) Ready() error               { return f.err }
func (f *fakeCapacity) Report() capacity.Report    { return f.ledger.Report() }
func (f *fakeCapacity) Rooms() []capacity.NodeRoom { return f.ledger.Rooms() }

type fakeDecisions map[string]int32

func (f fakeDecisions) Desired(key string) (int32, bool) { v, ok := f[key]; return v, ok }
func (f fakeDecisions) Keys() []string {
	var out []string
	for k := range f {
		out = append(out, k)
	}
	return out
}

func newProvider(t *testing.T) (*Provider, *fakeCapacity) {
	t.Helper()
	l := capacity.NewLedger(nil)
	for i, cpu := range []string{"32", "28"} {
		alloc := corev1.ResourceList{"cpu": resource.MustParse(cpu), "memory": resource.MustParse("8Gi"), "pods": resource.MustParse("110")}
		l.UpsertNode(capacity.FromNode(&corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: []string{"a", "b"}[i], Labels: map[string]string{"zone": []string{"x", "y"}[i]}},
			Status:     corev1.NodeStatus{Capacity: alloc, Allocatable: alloc, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
		}))
	}
	l.UpsertPod(capacity.FromPod(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "paid"},
		Spec:       corev1.PodSpec{NodeName: "a", Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": resource.MustParse("4"), "memory": resource.MustParse("1Gi")}}}}},
	}))
	fc := &fakeCapacity{ledger: l}
	return &Provider{Capacity: fc, Decisions: fakeDecisions{"batch/worker": 116, "other/worker": 3}, Service: "cluster-metrics", Clock: clocktesting.NewFakePassiveClock(time.Unix(0, 0))}, fc
}

func TestCustomMetrics(t *testing.T) {
	p, _ := newProvider(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		object types.NamespacedName
		info   provider.CustomMetricInfo
		want   int64
		err    bool
	}{
		{"seed HPA: remaining cpu on Service cluster-metrics", types.NamespacedName{Namespace: "batch", Name: "cluster-metrics"}, provider.CustomMetricInfo{GroupResource: servicesGR, Namespaced: true, Metric: "cpu_capacity_remaining"}, 56000, false},
		{"memory in KiB", types.NamespacedName{Namespace: "batch", Name: "cluster-metrics"}, provider.CustomMetricInfo{GroupResource: servicesGR, Namespaced: true, Metric: "mem_requests_total"}, 1024 * 1024, false},
		{"another Service is not ours", types.NamespacedName{Namespace: "batch", Name: "other"}, provider.CustomMetricInfo{GroupResource: servicesGR, Namespaced: true, Metric: "cpu_capacity_remaining"}, 0, true},
		{"on a Namespace", types.NamespacedName{Name: "batch"}, provider.CustomMetricInfo{GroupResource: namespacesGR, Metric: "cpu_allocatable_total"}, 60000, false},
		{"per Node", types.NamespacedName{Name: "a"}, provider.CustomMetricInfo{GroupResource: nodesGR, Metric: "cpu_capacity_remaining"}, 28000, false},
		{"capacity is not a per-node metric", types.NamespacedName{Name: "a"}, provider.CustomMetricInfo{GroupResource: nodesGR, Metric: "cpu_capacity_total"}, 0, true},
		{"unknown node", types.NamespacedName{Name: "zz"}, provider.CustomMetricInfo{GroupResource: nodesGR, Metric: "cpu_capacity_remaining"}, 0, true},
		{"unknown metric", types.NamespacedName{Namespace: "batch", Name: "cluster-metrics"}, provider.CustomMetricInfo{GroupResource: servicesGR, Namespaced: true, Metric: "bogus"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := p.GetMetricByName(ctx, tt.object, tt.info, labels.Everything())
			if tt.err {
				if !apierrors.IsNotFound(err) {
					t.Fatalf("want a NotFound error, got %v, %+v", err, v)
				}
				return
			}
			if err != nil || v.Value.Value() != tt.want {
				t.Fatalf("got %+v, %v; want %d", v, err, tt.want)
			}
		})
	}
	list, err := p.GetMetricBySelector(ctx, "", labels.SelectorFromSet(labels.Set{"zone": "y"}), provider.CustomMetricInfo{GroupResource: nodesGR, Metric: "cpu_capacity_remaining"}, labels.Everything())
	if err != nil || len(list.Items) != 1 || list.Items[0].DescribedObject.Name != "b" || list.Items[0].Value.Value() != 28000 {
		t.Fatalf("nodes by selector: %+v, %v", list, err)
	}
}

func TestExternalMetrics(t *testing.T) {
	p, _ := newProvider(t)
	ctx := context.Background()
	sel := func(s string) labels.Selector { l, _ := labels.Parse(s); return l }
	got, err := p.GetExternalMetric(ctx, "batch", sel("scaler=worker"), provider.ExternalMetricInfo{Metric: DesiredReplicasMetric})
	if err != nil || len(got.Items) != 1 || got.Items[0].Value.Value() != 116 || got.Items[0].MetricLabels[ScalerLabel] != "worker" {
		t.Fatalf("desired replicas of batch/worker: %+v, %v", got, err)
	}
	if _, err := p.GetExternalMetric(ctx, "batch", sel("scaler=missing"), provider.ExternalMetricInfo{Metric: DesiredReplicasMetric}); !apierrors.IsNotFound(err) {
		t.Fatalf("a scaler without a decision must be NotFound, got %v", err)
	}
	all, err := p.GetExternalMetric(ctx, "other", labels.Everything(), provider.ExternalMetricInfo{Metric: DesiredReplicasMetric})
	if err != nil || len(all.Items) != 1 || all.Items[0].Value.Value() != 3 {
		t.Fatalf("a namespace sees only its own scalers: %+v, %v", all, err)
	}
	seed, err := p.GetExternalMetric(ctx, "any", labels.Everything(), provider.ExternalMetricInfo{Metric: "cpu_capacity_remaining"})
	if err != nil || seed.Items[0].Value.Value() != 56000 {
		t.Fatalf("seed metric as external: %+v, %v", seed, err)
	}
	for _, tt := range []struct {
		selector string
		want     string
	}{
		{"", "56"}, // cpu by default, in cores: 60 - 4
		{"resource=cpu", "56"},
		{"resource=cpu,zone=y", "28"}, // the pool: nodes labelled zone=y
		{"resource=memory", "15Gi"},   // 16Gi - 1Gi, in bytes
		{"resource=cpu,zone=nowhere", "0"},
	} {
		got, err := p.GetExternalMetric(ctx, "any", sel(tt.selector), provider.ExternalMetricInfo{Metric: PoolRemainingMetric})
		if err != nil || len(got.Items) != 1 || got.Items[0].Value.Cmp(resource.MustParse(tt.want)) != 0 {
			t.Errorf("%s{%s}: %+v, %v; want %s", PoolRemainingMetric, tt.selector, got, err, tt.want)
		}
	}
	if _, err := p.GetExternalMetric(ctx, "any", sel("resource in (cpu,memory)"), provider.ExternalMetricInfo{Metric: PoolRemainingMetric}); !apierrors.IsBadRequest(err) {
		t.Errorf("two resources at once: want BadRequest, got %v", err)
	}
	p.Decisions = nil
	if _, err := p.GetExternalMetric(ctx, "batch", sel("scaler=worker"), provider.ExternalMetricInfo{Metric: DesiredReplicasMetric}); !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("without a controller: want ServiceUnavailable, got %v", err)
	}
}

func TestStaleDataIsAnError(t *testing.T) {
	p, fc := newProvider(t)
	fc.err = errors.New("API server unreachable since 03:00")
	ctx := context.Background()
	if _, err := p.GetMetricByName(ctx, types.NamespacedName{Namespace: "x", Name: "cluster-metrics"}, provider.CustomMetricInfo{GroupResource: servicesGR, Namespaced: true, Metric: "cpu_capacity_remaining"}, labels.Everything()); !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("custom metric on stale data: want ServiceUnavailable, got %v", err)
	}
	if _, err := p.GetExternalMetric(ctx, "batch", labels.Everything(), provider.ExternalMetricInfo{Metric: DesiredReplicasMetric}); !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("external metric on stale data: want ServiceUnavailable, got %v", err)
	}
}

func TestDiscoveryListsEverySeedMetric(t *testing.T) {
	p, _ := newProvider(t)
	seen := map[string]bool{}
	for _, m := range p.ListAllMetrics() {
		if m.GroupResource == servicesGR {
			seen[m.Metric] = true
		}
	}
	if len(seen) != 10 || !seen["cpu_capacity_remaining"] {
		t.Fatalf("services metrics listed: %v", seen)
	}
	ext := p.ListAllExternalMetrics()
	if ext[0].Metric != DesiredReplicasMetric {
		t.Fatalf("external metrics: %v", ext)
	}
}
