//go:build e2e && record

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// TestCompareKEDA is `make compare-keda` (hack/compare-keda.sh), not CI: the
// same paid burst on the seed run under three pipelines, one after the
// other, each recorded as it happens (every change of the worker's
// spec.replicas and of the pods, from watches) with the CPU time and peak
// memory of the pipeline's own processes. hack/comparekeda turns the
// recordings into the table and the plot of docs/keda.md. A measurement:
// it asserts only that each pipeline ran (the worker left its minimum).
//
// The pipelines, as their e2e tests run them:
//   - writeup: opportunist's /metrics -> Prometheus -> KEDA's `prometheus`
//     trigger on cpu_capacity_remaining, Value 30000, on a controller-manager
//     with the write-up's flags (TestKEDAPrometheusTriggerWriteup);
//   - direct: the OpportunisticScaler writing /scale (TestSeedRunWithPriorities);
//   - keda-external: KEDA's `external` trigger on opportunist, the scaler in
//     dryRun, KEDA's HPA writing (TestKEDAExternalTrigger).
func TestCompareKEDA(t *testing.T) {
	for _, p := range []comparePipeline{
		{name: "writeup", processes: []string{"opportunist", "prometheus", "keda", "keda-adapter"}, setup: compareWriteup},
		{name: "direct", processes: []string{"opportunist"}, setup: compareDirect},
		{name: "keda-external", processes: []string{"opportunist", "keda", "keda-adapter"}, setup: compareKEDAExternal},
	} {
		t.Run(p.name, func(t *testing.T) { runComparison(t, p) })
	}
}

// The burst, on the clock from the moment the pipeline starts acting on the
// worker: the sample app 2 -> 17 (60 more paid cores: the ideal worker count
// falls from 116 to 56) -> 2.
const (
	compareBurstAt  = 30 * time.Second
	compareBurstEnd = 75 * time.Second
	compareLength   = 120 * time.Second
	compareHeadroom = 30000 // milli-cores, every pipeline's target free room
)

type comparePipeline struct {
	name string
	// processes are the names (comm) of the pipeline's own processes,
	// children of the test binary once setup and act have run.
	processes []string
	// setup prepares the seed run and the pipeline's processes in ns and
	// returns act, which makes the pipeline start acting on the worker.
	setup func(t *testing.T, ns string) (act func(), hpaSync string)
}

func compareWriteup(t *testing.T, ns string) (func(), string) {
	prometheusBinary(t)
	hackCluster(t, "hpa", "--sync-period", "10s", "--downscale-stabilization", "30s")
	t.Cleanup(func() { hackCluster(t, "hpa", "--reset") })
	hpaSeed(t, ns, false)
	o := startOpportunist(t, "--round-interval", "1s")
	target := strings.TrimPrefix(o.URL, "http://")
	query := fmt.Sprintf(`cpu_capacity_remaining{job="opportunist",instance=%q}`, target)
	prom := startPrometheus(t, target, query)
	startKEDA(t)
	return func() {
		createScaledObjectWith(t, ns, 15, 150, nil, map[string]any{
			"type": "prometheus", "metricType": "Value",
			"metadata": map[string]any{"serverAddress": prom, "query": query, "threshold": strconv.Itoa(compareHeadroom)},
		})
	}, "10s (write-up), 30s downscale stabilisation"
}

func compareDirect(t *testing.T, ns string) (func(), string) {
	seedRun(t, ns, true)
	return func() { startOpportunist(t, "--round-interval", "1s") }, "-"
}

func compareKEDAExternal(t *testing.T, ns string) (func(), string) {
	hpaSeed(t, ns, true)
	scalerAddress := freeAddress(t)
	startOpportunist(t, "--round-interval", "1s", "--keda-scaler-address", scalerAddress)
	startKEDA(t)
	return func() {
		createScaledObject(t, ns, 15, 150, map[string]any{"type": "external", "metricType": "AverageValue",
			"metadata": map[string]any{"scalerAddress": scalerAddress, "scaler": "worker"}})
	}, hpaSyncPeriod()
}

// hpaSyncPeriod is the local cluster's HPA sync period: hack/cluster's
// OPPORTUNIST_HPA_SYNC_PERIOD, 2s when unset.
func hpaSyncPeriod() string {
	if v := os.Getenv("OPPORTUNIST_HPA_SYNC_PERIOD"); v != "" {
		return v
	}
	return "2s"
}

// compareRun is run.json: what hack/comparekeda needs besides the samples.
type compareRun struct {
	Pipeline         string         `json:"pipeline"`
	Date             string         `json:"date"`
	BurstAtSeconds   float64        `json:"burstAtSeconds"`
	BurstEndSeconds  float64        `json:"burstEndSeconds"`
	LengthSeconds    float64        `json:"lengthSeconds"`
	AllocatableMilli int64          `json:"allocatableMilli"`
	HeadroomMilli    int64          `json:"headroomMilli"`
	HPASync          string         `json:"hpaSync"`
	LoadAvgStart     string         `json:"loadAvgStart"`
	LoadAvgEnd       string         `json:"loadAvgEnd"`
	Processes        []processUsage `json:"processes"`
}

func runComparison(t *testing.T, p comparePipeline) {
	ns := "e2e-compare-" + p.name
	act, hpaSync := p.setup(t, ns)
	rec := recordCluster(t, ns)
	run := compareRun{Pipeline: p.name, Date: time.Now().UTC().Format(time.RFC3339), HPASync: hpaSync,
		BurstAtSeconds: compareBurstAt.Seconds(), BurstEndSeconds: compareBurstEnd.Seconds(), LengthSeconds: compareLength.Seconds(),
		AllocatableMilli: rec.allocatable, HeadroomMilli: compareHeadroom, LoadAvgStart: loadAvg()}
	before := childProcesses(t, p.processes)

	start := rec.start()
	act()
	time.Sleep(time.Until(start.Add(compareBurstAt)))
	scaleDeployment(t, ns, "sample-metrics-app", 17)
	time.Sleep(time.Until(start.Add(compareBurstEnd)))
	scaleDeployment(t, ns, "sample-metrics-app", 2)
	time.Sleep(time.Until(start.Add(compareLength)))

	// Read before the pipeline's cleanups stop its processes.
	after := childProcesses(t, p.processes)
	if len(after) != len(p.processes) {
		t.Errorf("found processes %+v, want one each of %v", after, p.processes)
	}
	for _, u := range after {
		u.CPUSecondsWindow = u.CPUSecondsTotal
		for _, b := range before {
			if b.PID == u.PID {
				u.CPUSecondsWindow -= b.CPUSecondsTotal
			}
		}
		run.Processes = append(run.Processes, u)
	}
	run.LoadAvgEnd = loadAvg()
	samples := rec.stop()

	var csv strings.Builder
	csv.WriteString(clusterSampleHeader + "\n")
	values := []int32{}
	for _, s := range samples {
		csv.WriteString(s.csv() + "\n")
		if n := len(values); n == 0 || values[n-1] != s.WorkerReplicas {
			values = append(values, s.WorkerReplicas)
		}
	}
	dir := testDir(t)
	if err := os.WriteFile(filepath.Join(dir, "samples.csv"), []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	js, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run.json"), append(js, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: worker counts %v; processes %+v; load %s -> %s; written to %s", p.name, values, run.Processes, run.LoadAvgStart, run.LoadAvgEnd, dir)
	if len(values) < 2 {
		t.Errorf("the worker never left %v in %s: the pipeline did not act", values, compareLength)
	}
}

// clusterSample is the namespace's state after one watched change.
type clusterSample struct {
	At               time.Duration // since the pipeline started acting
	WorkerReplicas   int32         // the worker Deployment's spec.replicas
	WorkerBoundMilli int64         // CPU requests of the worker's pods bound to a node
	PaidBoundMilli   int64
	PaidPendingMilli int64
	PaidPendingPods  int
	SampleRunning    int   // the sample app's pods Running
	FreeMilli        int64 // allocatable - requests of every bound pod
}

const clusterSampleHeader = "time_s,worker_replicas,worker_bound_milli,paid_bound_milli,paid_pending_milli,paid_pending_pods,sample_app_running,free_milli"

func (s clusterSample) csv() string {
	return fmt.Sprintf("%.3f,%d,%d,%d,%d,%d,%d,%d", s.At.Seconds(), s.WorkerReplicas, s.WorkerBoundMilli,
		s.PaidBoundMilli, s.PaidPendingMilli, s.PaidPendingPods, s.SampleRunning, s.FreeMilli)
}

// clusterRecorder keeps a sample each time a watched pod or Deployment of
// its namespace changes the state it tracks: times are exact to the watch,
// not to a polling period.
type clusterRecorder struct {
	mu          sync.Mutex
	ns          string
	allocatable int64
	t0          time.Time
	started     bool
	samples     []clusterSample
	pods        cache.Indexer
	deployments cache.Indexer
	stopCh      chan struct{}
}

func recordCluster(t *testing.T, ns string) *clusterRecorder {
	t.Helper()
	nodes, err := client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := &clusterRecorder{ns: ns, stopCh: make(chan struct{})}
	for _, n := range nodes.Items {
		if nodeReady(&n) && !n.Spec.Unschedulable {
			r.allocatable += n.Status.Allocatable.Cpu().MilliValue()
		}
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	pods, deployments := factory.Core().V1().Pods().Informer(), factory.Apps().V1().Deployments().Informer()
	r.pods, r.deployments = pods.GetIndexer(), deployments.GetIndexer()
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { r.sample() },
		UpdateFunc: func(any, any) { r.sample() },
		DeleteFunc: func(any) { r.sample() },
	}
	for _, inf := range []cache.SharedIndexInformer{pods, deployments} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			t.Fatal(err)
		}
	}
	factory.Start(r.stopCh)
	for typ, ok := range factory.WaitForCacheSync(r.stopCh) {
		if !ok {
			t.Fatalf("watching %v in %s: cache never synced", typ, ns)
		}
	}
	t.Cleanup(func() { r.stop() })
	return r
}

// start sets time zero, with a first sample of the state then.
func (r *clusterRecorder) start() time.Time {
	r.mu.Lock()
	r.t0, r.started = time.Now(), true
	r.mu.Unlock()
	r.sample()
	return r.t0
}

func (r *clusterRecorder) stop() []clusterSample {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.stopCh:
	default:
		close(r.stopCh)
	}
	r.started = false
	return append([]clusterSample(nil), r.samples...)
}

func (r *clusterRecorder) sample() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return
	}
	s := clusterSample{At: time.Since(r.t0), FreeMilli: r.allocatable}
	if obj, ok, _ := r.deployments.GetByKey(r.ns + "/worker"); ok {
		if d := obj.(*appsv1.Deployment); d.Spec.Replicas != nil {
			s.WorkerReplicas = *d.Spec.Replicas
		}
	}
	for _, obj := range r.pods.List() {
		p := obj.(*corev1.Pod)
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		var cpu int64
		for _, c := range p.Spec.Containers {
			cpu += c.Resources.Requests.Cpu().MilliValue()
		}
		bound := p.Spec.NodeName != "" // terminating or not: it holds its room until gone
		worker := labels.Set(p.Labels).Get("app") == "worker"
		if bound {
			s.FreeMilli -= cpu
		}
		switch {
		case worker && bound:
			s.WorkerBoundMilli += cpu
		case worker:
		case bound:
			s.PaidBoundMilli += cpu
			if p.Labels["app"] == "sample-metrics-app" && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				s.SampleRunning++
			}
		case p.DeletionTimestamp == nil:
			s.PaidPendingMilli += cpu
			s.PaidPendingPods++
		}
	}
	if n := len(r.samples); n > 0 {
		last := r.samples[n-1]
		last.At = s.At
		if last == s {
			return
		}
	}
	r.samples = append(r.samples, s)
}

// processUsage is one process's CPU time and peak resident memory, read
// from /proc while it runs.
type processUsage struct {
	Name             string  `json:"name"`
	PID              int     `json:"pid"`
	CPUSecondsTotal  float64 `json:"cpuSecondsTotal"`  // since it started
	CPUSecondsWindow float64 `json:"cpuSecondsWindow"` // since the pipeline started acting
	PeakRSSBytes     int64   `json:"peakRSSBytes"`     // VmHWM
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports (getconf CLK_TCK).
const clockTicks = 100

// childProcesses reads the usage of the test binary's running children
// whose command name is in names: the pipeline's processes, which the
// helpers start with exec.Command.
func childProcesses(t *testing.T, names []string) []processUsage {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []processUsage
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ... utime stime: comm may hold spaces and
		// parentheses, so split after its last ')'.
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || end < open {
			continue
		}
		comm, fields := string(stat[open+1:end]), strings.Fields(string(stat[end+1:]))
		if len(fields) < 13 || !want[comm] {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid != os.Getpid() {
			continue
		}
		utime, _ := strconv.ParseInt(fields[11], 10, 64)
		stime, _ := strconv.ParseInt(fields[12], 10, 64)
		u := processUsage{Name: comm, PID: pid, CPUSecondsTotal: float64(utime+stime) / clockTicks}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				u.PeakRSSBytes = kb * 1024
			}
		}
		out = append(out, u)
	}
	return out
}

// loadAvg is /proc/loadavg's 1, 5 and 15 minute averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return err.Error()
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return string(b)
	}
	return strings.Join(f[:3], " ")
}
