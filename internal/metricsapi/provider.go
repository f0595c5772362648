// Package metricsapi serves opportunist's numbers through the Kubernetes
// custom and external metrics APIs (custom.metrics.k8s.io,
// external.metrics.k8s.io), so a stock HPA can read them with no Prometheus
// in the path: the write-up's Object metric on Service cluster-metrics, and
// the controller's desired replica count as an External metric an HPA can
// follow exactly (AverageValue 1).
package metricsapi

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	"k8s.io/metrics/pkg/apis/external_metrics"
	"k8s.io/utils/clock"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/exporter"
)

// Capacity is the live capacity model. While Ready returns an error the
// numbers are stale and every request gets an error, never old numbers.
type Capacity interface {
	Ready() error
	Report() capacity.Report
	Rooms() []capacity.NodeRoom
}

// Decisions yields the controller's last desired count per scaler key
// ("namespace/name"); false when there is none (no such scaler, not Ready,
// or no round yet). A standby replica answers from the leader's status.
type Decisions interface {
	Desired(key string) (int32, bool)
	Keys() []string
}

// DesiredReplicasMetric is the external metric carrying the controller's answer.
const DesiredReplicasMetric = "opportunist_desired_replicas"

// ScalerLabel selects the scaler, by name, in the HPA's namespace.
const ScalerLabel = "scaler"

// PoolRemainingMetric is the external metric of free room in a pool of
// nodes, in base units (cores, bytes): its selector names the resource
// (resource=cpu, the default) and, with every other requirement, the nodes
// of the pool by their labels (e.g. pool=spot).
const PoolRemainingMetric = "opportunist_pool_remaining"

// ResourceLabel selects the resource of PoolRemainingMetric.
const ResourceLabel = "resource"

var (
	servicesGR   = schema.GroupResource{Resource: "services"}
	namespacesGR = schema.GroupResource{Resource: "namespaces"}
	nodesGR      = schema.GroupResource{Resource: "nodes"}
)

// nodeMetrics are the seed metrics that also make sense for one node.
var nodeMetrics = map[string]bool{
	"cpu_allocatable_total": true, "mem_allocatable_total": true, "pod_allocatable_total": true,
	"cpu_requests_total": true, "mem_requests_total": true,
	"cpu_capacity_remaining": true, "mem_capacity_remaining": true,
}

// Provider implements provider.MetricsProvider.
type Provider struct {
	Capacity  Capacity
	Decisions Decisions // nil when the controller does not run
	// Service is the Service the seed's HPA names ("cluster-metrics"); the
	// cluster-wide metrics are served as Object metrics on it, in any namespace.
	Service string
	Clock   clock.PassiveClock
}

var _ provider.MetricsProvider = (*Provider)(nil)

func (p *Provider) now() metav1.Time { return metav1.NewTime(p.Clock.Now()) }

// fresh returns an error the API server answers with while numbers are stale.
func (p *Provider) fresh() error {
	if err := p.Capacity.Ready(); err != nil {
		return apierrors.NewServiceUnavailable("opportunist: capacity data is stale, refusing to serve old numbers: " + err.Error())
	}
	return nil
}

// ListAllMetrics implements provider.CustomMetricsProvider.
func (p *Provider) ListAllMetrics() []provider.CustomMetricInfo {
	var out []provider.CustomMetricInfo
	for _, name := range exporter.SeedMetricNames() {
		out = append(out,
			provider.CustomMetricInfo{GroupResource: servicesGR, Namespaced: true, Metric: name},
			provider.CustomMetricInfo{GroupResource: namespacesGR, Namespaced: false, Metric: name})
		if nodeMetrics[name] {
			out = append(out, provider.CustomMetricInfo{GroupResource: nodesGR, Namespaced: false, Metric: name})
		}
	}
	return out
}

// GetMetricByName implements provider.CustomMetricsProvider.
func (p *Provider) GetMetricByName(_ context.Context, name types.NamespacedName, info provider.CustomMetricInfo, _ labels.Selector) (*custom_metrics.MetricValue, error) {
	if err := p.fresh(); err != nil {
		return nil, err
	}
	switch info.GroupResource {
	case servicesGR:
		if name.Name != p.Service {
			return nil, provider.NewMetricNotFoundForError(info.GroupResource, info.Metric, name.Name)
		}
		return p.clusterValue(info.Metric, custom_metrics.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: name.Namespace, Name: name.Name})
	case namespacesGR:
		return p.clusterValue(info.Metric, custom_metrics.ObjectReference{Kind: "Namespace", APIVersion: "v1", Name: name.Name})
	case nodesGR:
		for _, room := range p.Capacity.Rooms() {
			if room.Name == name.Name {
				return p.nodeValue(info.Metric, &room)
			}
		}
	}
	return nil, provider.NewMetricNotFoundForError(info.GroupResource, info.Metric, name.Name)
}

// GetMetricBySelector implements provider.CustomMetricsProvider: nodes by
// label selector; the Service by name only.
func (p *Provider) GetMetricBySelector(ctx context.Context, namespace string, selector labels.Selector, info provider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValueList, error) {
	if err := p.fresh(); err != nil {
		return nil, err
	}
	list := &custom_metrics.MetricValueList{}
	switch info.GroupResource {
	case nodesGR:
		for _, room := range p.Capacity.Rooms() {
			if selector.Matches(labels.Set(room.Labels)) {
				v, err := p.nodeValue(info.Metric, &room)
				if err != nil {
					return nil, err
				}
				list.Items = append(list.Items, *v)
			}
		}
	case servicesGR:
		v, err := p.GetMetricByName(ctx, types.NamespacedName{Namespace: namespace, Name: p.Service}, info, metricSelector)
		if err != nil {
			return nil, err
		}
		list.Items = append(list.Items, *v)
	default:
		return nil, provider.NewMetricNotFoundError(info.GroupResource, info.Metric)
	}
	return list, nil
}

func (p *Provider) clusterValue(metric string, obj custom_metrics.ObjectReference) (*custom_metrics.MetricValue, error) {
	v, ok := exporter.SeedValue(p.Capacity.Report(), metric)
	if !ok {
		return nil, provider.NewMetricNotFoundForError(schema.GroupResource{Resource: obj.Kind}, metric, obj.Name)
	}
	return &custom_metrics.MetricValue{
		DescribedObject: obj,
		Metric:          custom_metrics.MetricIdentifier{Name: metric},
		Timestamp:       p.now(),
		Value:           *resource.NewQuantity(int64(v), resource.DecimalSI),
	}, nil
}

// nodeValue is a seed metric for one node, in the seed's units.
func (p *Provider) nodeValue(metric string, room *capacity.NodeRoom) (*custom_metrics.MetricValue, error) {
	if !nodeMetrics[metric] {
		return nil, provider.NewMetricNotFoundForError(nodesGR, metric, room.Name)
	}
	res := map[byte]corev1.ResourceName{'c': corev1.ResourceCPU, 'm': corev1.ResourceMemory, 'p': corev1.ResourcePods}[metric[0]]
	var v int64
	switch metric[4:] {
	case "allocatable_total":
		v = room.Allocatable[res]
	case "requests_total":
		v = room.Requested[res]
	case "capacity_remaining":
		v = room.Free(res)
	}
	if res == corev1.ResourceMemory {
		v /= 1024 // the seed's memory unit is KiB
	}
	return &custom_metrics.MetricValue{
		DescribedObject: custom_metrics.ObjectReference{Kind: "Node", APIVersion: "v1", Name: room.Name},
		Metric:          custom_metrics.MetricIdentifier{Name: metric},
		Timestamp:       p.now(),
		Value:           *resource.NewQuantity(v, resource.DecimalSI),
	}, nil
}

// ListAllExternalMetrics implements provider.ExternalMetricsProvider.
func (p *Provider) ListAllExternalMetrics() []provider.ExternalMetricInfo {
	out := []provider.ExternalMetricInfo{{Metric: DesiredReplicasMetric}, {Metric: PoolRemainingMetric}}
	for _, name := range exporter.SeedMetricNames() {
		out = append(out, provider.ExternalMetricInfo{Metric: name})
	}
	return out
}

// GetExternalMetric implements provider.ExternalMetricsProvider. The desired
// replicas are per scaler of the request's namespace, selected with
// scaler=<name>; the seed metrics are cluster-wide.
func (p *Provider) GetExternalMetric(_ context.Context, namespace string, selector labels.Selector, info provider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	if err := p.fresh(); err != nil {
		return nil, err
	}
	gr := schema.GroupResource{Group: "external.metrics.k8s.io", Resource: info.Metric}
	if info.Metric == PoolRemainingMetric {
		return p.poolRemaining(selector)
	}
	if info.Metric != DesiredReplicasMetric {
		v, ok := exporter.SeedValue(p.Capacity.Report(), info.Metric)
		if !ok {
			return nil, provider.NewMetricNotFoundError(gr, info.Metric)
		}
		return &external_metrics.ExternalMetricValueList{Items: []external_metrics.ExternalMetricValue{{
			MetricName: info.Metric, MetricLabels: map[string]string{}, Timestamp: p.now(), Value: *resource.NewQuantity(int64(v), resource.DecimalSI),
		}}}, nil
	}
	if p.Decisions == nil {
		return nil, apierrors.NewServiceUnavailable("opportunist: the controller does not run in this process, so there is no desired replica count")
	}
	list := &external_metrics.ExternalMetricValueList{}
	for _, name := range scalersIn(p.Decisions.Keys(), namespace) {
		set := labels.Set{ScalerLabel: name}
		if !selector.Matches(set) {
			continue
		}
		desired, ok := p.Decisions.Desired(namespace + "/" + name)
		if !ok {
			continue
		}
		list.Items = append(list.Items, external_metrics.ExternalMetricValue{
			MetricName: DesiredReplicasMetric, MetricLabels: set, Timestamp: p.now(), Value: *resource.NewQuantity(int64(desired), resource.DecimalSI),
		})
	}
	if len(list.Items) == 0 {
		if name, selected := selectedScaler(selector); selected {
			return nil, apierrors.NewNotFound(gr, fmt.Sprintf("%s/%s (no decision for that OpportunisticScaler: missing, or not Ready — see its status)", namespace, name))
		}
	}
	return list, nil
}

// poolRemaining sums allocatable minus requests of one resource over the
// Ready nodes the selector's node-label requirements match.
func (p *Provider) poolRemaining(selector labels.Selector) (*external_metrics.ExternalMetricValueList, error) {
	res := corev1.ResourceCPU
	nodes := labels.NewSelector()
	reqs, _ := selector.Requirements()
	for _, r := range reqs {
		if r.Key() != ResourceLabel {
			nodes = nodes.Add(r)
			continue
		}
		if (r.Operator() != selection.Equals && r.Operator() != selection.DoubleEquals && r.Operator() != selection.In) || r.Values().Len() != 1 {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("%s: select one resource with %s=NAME", PoolRemainingMetric, ResourceLabel))
		}
		res = corev1.ResourceName(r.Values().UnsortedList()[0])
	}
	var free int64
	for _, room := range p.Capacity.Rooms() {
		if room.State == capacity.NodeReady && nodes.Matches(labels.Set(room.Labels)) {
			free += room.Free(res)
		}
	}
	value := resource.NewQuantity(free, resource.DecimalSI)
	if res == corev1.ResourceCPU {
		value = resource.NewMilliQuantity(free, resource.DecimalSI)
	}
	metricLabels := map[string]string{ResourceLabel: string(res)}
	return &external_metrics.ExternalMetricValueList{Items: []external_metrics.ExternalMetricValue{{
		MetricName: PoolRemainingMetric, MetricLabels: metricLabels, Timestamp: p.now(), Value: *value,
	}}}, nil
}

func scalersIn(keys []string, namespace string) []string {
	var out []string
	prefix := namespace + "/"
	for _, k := range keys {
		if len(k) > len(prefix) && k[:len(prefix)] == prefix {
			out = append(out, k[len(prefix):])
		}
	}
	sort.Strings(out)
	return out
}

// selectedScaler returns the scaler name an equality selector asks for.
func selectedScaler(selector labels.Selector) (string, bool) {
	reqs, _ := selector.Requirements()
	for _, r := range reqs {
		if r.Key() == ScalerLabel && (r.Operator() == selection.Equals || r.Operator() == selection.DoubleEquals || r.Operator() == selection.In) && r.Values().Len() == 1 {
			return r.Values().UnsortedList()[0], true
		}
	}
	return "", false
}
