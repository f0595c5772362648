// Package exporter serves the capacity report as Prometheus metrics: the
// seed's ten gauges, names and units unchanged, and opportunist_* families in
// base units with labels.
package exporter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

// Source yields the current capacity report. While Stale returns an error
// the numbers cannot be trusted (e.g. the API server is lost, a watch is
// refused) and no capacity metric is served: a scraper sees the gap instead
// of old numbers.
type Source interface {
	Report() capacity.Report
	// Stale returns since when the numbers cannot be trusted and why, or a
	// zero time and nil while they are current.
	Stale() (time.Time, error)
}

// seedGauge is one of the write-up's metrics: a resource of the usable pool in
// the write-up's unit. The names end in _total although they are gauges; they
// are kept byte for byte because HPAs and dashboards query them.
type seedGauge struct {
	Name     string
	help     string
	resource corev1.ResourceName
	value    func(capacity.ResourceSummary) int64
	divisor  float64
}

var (
	capacityOf    = func(s capacity.ResourceSummary) int64 { return s.Capacity }
	allocatableOf = func(s capacity.ResourceSummary) int64 { return s.Allocatable }
	requestsOf    = func(s capacity.ResourceSummary) int64 { return s.Requests }
	remainingOf   = func(s capacity.ResourceSummary) int64 { return s.Remaining }
)

// The write-up's units: CPU in milli-cores (our canonical unit), memory in KiB.
const milli, kibibyte = 1, 1024

var seedGauges = []seedGauge{
	{"cpu_capacity_total", "CPU Total Capacity (milli)", corev1.ResourceCPU, capacityOf, milli},
	{"mem_capacity_total", "Memory Total Capacity (Ki)", corev1.ResourceMemory, capacityOf, kibibyte},
	{"pod_capacity_total", "Pod Total Capacity", corev1.ResourcePods, capacityOf, 1},
	{"cpu_allocatable_total", "CPU Total Allocatable (milli)", corev1.ResourceCPU, allocatableOf, milli},
	{"mem_allocatable_total", "Memory Total Allocatable (Ki)", corev1.ResourceMemory, allocatableOf, kibibyte},
	{"pod_allocatable_total", "Pod Total Allocatable", corev1.ResourcePods, allocatableOf, 1},
	{"cpu_requests_total", "CPU Requests Total (milli)", corev1.ResourceCPU, requestsOf, milli},
	{"mem_requests_total", "Memory Requests Total (Ki)", corev1.ResourceMemory, requestsOf, kibibyte},
	{"cpu_capacity_remaining", "CPU Remaining Capacity (milli)", corev1.ResourceCPU, remainingOf, milli},
	{"mem_capacity_remaining", "Memory Remaining Capacity (Ki)", corev1.ResourceMemory, remainingOf, kibibyte},
}

// SeedMetricNames lists the write-up's metric names, in its order.
func SeedMetricNames() []string {
	names := make([]string, len(seedGauges))
	for i, g := range seedGauges {
		names[i] = g.Name
	}
	return names
}

// SeedValue returns the value of one seed metric for a report, in the seed's
// unit, and false when the name is not one of the seed's.
func SeedValue(rep capacity.Report, name string) (float64, bool) {
	for _, g := range seedGauges {
		if g.Name == name {
			s, _ := rep.Resource(g.resource)
			return float64(g.value(s)) / g.divisor, true
		}
	}
	return 0, false
}

var (
	resourceLabels = []string{"resource", "unit"}

	descPoolCapacity    = prometheus.NewDesc("opportunist_pool_capacity", "Capacity of the usable pool (Ready, schedulable nodes), by resource, in base units.", resourceLabels, nil)
	descPoolAllocatable = prometheus.NewDesc("opportunist_pool_allocatable", "Allocatable room of the usable pool, by resource, in base units.", resourceLabels, nil)
	descPoolRequests    = prometheus.NewDesc("opportunist_pool_requests", "Effective requests of pods bound to usable nodes, by resource and class (paid or opportunistic), in base units.", append([]string{"class"}, resourceLabels...), nil)
	descPoolRemaining   = prometheus.NewDesc("opportunist_pool_remaining", "Allocatable minus requests in the usable pool, by resource, in base units; negative when overcommitted.", resourceLabels, nil)
	descNodes           = prometheus.NewDesc("opportunist_nodes", "Nodes by state: ready (usable), not_ready, cordoned.", []string{"state"}, nil)
	descStateAlloc      = prometheus.NewDesc("opportunist_node_state_allocatable", "Allocatable room of the nodes in each state, by resource, in base units.", append([]string{"state"}, resourceLabels...), nil)
	descStateRequests   = prometheus.NewDesc("opportunist_node_state_requests", "Requests of pods bound to nodes in each state (missing: bound to a node that is not known), by resource, in base units.", append([]string{"state"}, resourceLabels...), nil)
	descPendingPods     = prometheus.NewDesc("opportunist_pending_paid_pods", "Paid pods not bound to a node yet: demand waiting for room.", nil, nil)
	descGatedPods       = prometheus.NewDesc("opportunist_gated_paid_pods", "Paid pods not bound and held by scheduling gates: waiting for their gates, not for room, so not demand.", nil, nil)
	descPendingReq      = prometheus.NewDesc("opportunist_pending_paid_requests", "Effective requests of paid pods not bound to a node yet, by resource, in base units.", resourceLabels, nil)
	descWorkloadPods    = prometheus.NewDesc("opportunist_workload_pods", "Pods of each opportunistic workload, by phase of placement (bound or pending; stranded: the bound ones on NotReady, cordoned or missing nodes).", []string{"workload", "placement"}, nil)
	descWorkloadReq     = prometheus.NewDesc("opportunist_workload_requests", "Effective requests of each opportunistic workload's bound pods, by resource, in base units.", append([]string{"workload"}, resourceLabels...), nil)
	descUp              = prometheus.NewDesc("opportunist_capacity_data_ready", "1 when the capacity numbers are current (informers synced, API server reachable), else 0 and no capacity metric is served.", nil, nil)
	descStaleSeconds    = prometheus.NewDesc("opportunist_capacity_stale_seconds", "How long the capacity numbers have been stale (a watch failing, the API server not answering); 0 while current.", nil, nil)
)

// Collector renders a capacity report at scrape time, so every scrape is one
// consistent report.
type Collector struct {
	source Source
	now    func() time.Time
}

// NewCollector returns a collector reading source.
func NewCollector(source Source) *Collector { return &Collector{source: source, now: time.Now} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, g := range seedGauges {
		ch <- g.desc()
	}
	for _, d := range []*prometheus.Desc{descPoolCapacity, descPoolAllocatable, descPoolRequests, descPoolRemaining, descNodes,
		descStateAlloc, descStateRequests, descPendingPods, descGatedPods, descPendingReq, descWorkloadPods, descWorkloadReq, descUp, descStaleSeconds} {
		ch <- d
	}
}

func (g seedGauge) desc() *prometheus.Desc { return seedDescs[g.Name] }

var seedDescs = func() map[string]*prometheus.Desc {
	m := make(map[string]*prometheus.Desc, len(seedGauges))
	for _, g := range seedGauges {
		m[g.Name] = prometheus.NewDesc(g.Name, g.help, nil, nil)
	}
	return m
}()

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if since, err := c.source.Stale(); err != nil {
		ch <- gauge(descUp, 0)
		ch <- gauge(descStaleSeconds, max(c.now().Sub(since).Seconds(), 0))
		return
	}
	ch <- gauge(descUp, 1)
	ch <- gauge(descStaleSeconds, 0)
	rep := c.source.Report()
	for _, g := range seedGauges {
		v, _ := SeedValue(rep, g.Name)
		ch <- gauge(g.desc(), v)
	}
	for _, r := range rep.Resources {
		name, unit, scale := baseUnit(r.Name)
		ch <- gauge(descPoolCapacity, float64(r.Capacity)*scale, name, unit)
		ch <- gauge(descPoolAllocatable, float64(r.Allocatable)*scale, name, unit)
		ch <- gauge(descPoolRequests, float64(r.PaidRequests)*scale, "paid", name, unit)
		ch <- gauge(descPoolRequests, float64(r.OpportunisticRequests)*scale, "opportunistic", name, unit)
		ch <- gauge(descPoolRemaining, float64(r.Remaining)*scale, name, unit)
	}
	for _, st := range rep.States {
		if st.State != capacity.NodeMissing.String() {
			ch <- gauge(descNodes, float64(st.Nodes), st.State)
		}
		emitResources(ch, descStateAlloc, st.Allocatable, st.State)
		emitResources(ch, descStateRequests, st.Requests, st.State)
	}
	ch <- gauge(descPendingPods, float64(rep.PendingPaid.Pods))
	ch <- gauge(descGatedPods, float64(rep.GatedPaid.Pods))
	emitResources(ch, descPendingReq, rep.PendingPaid.Requests)
	for _, w := range rep.Workloads {
		ch <- gauge(descWorkloadPods, float64(w.Pods), w.Key, "bound")
		ch <- gauge(descWorkloadPods, float64(w.Pending), w.Key, "pending")
		ch <- gauge(descWorkloadPods, float64(w.Stranded), w.Key, "stranded")
		emitResources(ch, descWorkloadReq, w.Requests, w.Key)
	}
}

// emitResources sends one sample per resource, labels first then resource and unit.
func emitResources(ch chan<- prometheus.Metric, d *prometheus.Desc, rs capacity.Resources, labels ...string) {
	for _, res := range rs.Names() {
		name, unit, scale := baseUnit(res)
		ch <- gauge(d, float64(rs[res])*scale, append(labels, name, unit)...)
	}
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// baseUnit converts a canonical amount to Prometheus base units, as
// kube-state-metrics labels them: cpu in cores, memory and storage in bytes.
func baseUnit(name corev1.ResourceName) (resource, unit string, scale float64) {
	switch {
	case name == corev1.ResourceCPU:
		return string(name), "core", 1.0 / 1000
	case capacity.InBytes(name):
		return string(name), "byte", 1
	}
	return string(name), "integer", 1 // pods and extended resources are counts
}

// NewPaidPodWaitObserver registers opportunist_paid_pod_wait_seconds and
// returns the function that records one paid pod's wait: from first seen
// unbound to bound. With opportunistic workloads yielding at once, this is
// the scheduler's latency; its tail is the time to yield.
func NewPaidPodWaitObserver(reg prometheus.Registerer) func(waited time.Duration) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "opportunist_paid_pod_wait_seconds",
		Help:    "Time paid pods waited from being seen unbound to being bound to a node (the time to yield when room had to be given back).",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300},
	})
	reg.MustRegister(h)
	return func(waited time.Duration) { h.Observe(waited.Seconds()) }
}
