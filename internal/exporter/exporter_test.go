package exporter

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/opportunist/opportunist/internal/capacity"
)

var update = flag.Bool("update", false, "rewrite golden files")

type fixedSource struct {
	report capacity.Report
	since  time.Time
	err    error
}

func (f fixedSource) Report() capacity.Report   { return f.report }
func (f fixedSource) Stale() (time.Time, error) { return f.since, f.err }

// seedCluster is the write-up's cluster: six nodes, 184 cores (4 x 32, 2 x 28),
// 660 pod slots, with paid load, an opportunistic worker, a cordoned node, a
// GPU and a pending paid pod.
func seedCluster() capacity.Report {
	mk := func(name, cpu, mem string, extra ...string) capacity.Node {
		alloc := corev1.ResourceList{"cpu": resource.MustParse(cpu), "memory": resource.MustParse(mem), "pods": resource.MustParse("110")}
		for i := 0; i < len(extra); i += 2 {
			alloc[corev1.ResourceName(extra[i])] = resource.MustParse(extra[i+1])
		}
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{
			Capacity: alloc, Allocatable: alloc,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		}}
		return capacity.FromNode(n)
	}
	ns := []capacity.Node{
		mk("kontron-1", "32", "80Gi"), mk("kontron-2", "32", "80Gi"), mk("kontron-3", "32", "80Gi"),
		mk("kontron-4", "32", "80Gi", "nvidia.com/gpu", "2"), mk("kontron-5", "28", "80Gi"), mk("kontron-6", "28", "80Gi"),
	}
	spare := mk("spare", "16", "32Gi")
	spare.Unschedulable = true
	ns = append(ns, spare)
	pod := func(name, node, cpu, mem, app string) capacity.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{"cpu": resource.MustParse(cpu), "memory": resource.MustParse(mem)},
			}}}},
		}
		return capacity.FromPod(p)
	}
	var ps []capacity.Pod
	for i := range 6 {
		node := fmt.Sprintf("kontron-%d", i+1)
		ps = append(ps, pod("paid-"+node, node, "5", "10Gi", "sample-metrics-app"))
		ps = append(ps, pod("worker-"+node, node, "1", "512Mi", "worker"))
	}
	ps = append(ps, pod("paid-pending", "", "4", "1Gi", "sample-metrics-app"))
	ps = append(ps, pod("on-spare", "spare", "2", "1Gi", "sample-metrics-app"))
	worker := capacity.Workload{Key: "default/worker", Namespace: "default", Selector: labels.SelectorFromSet(labels.Set{"app": "worker"})}
	return capacity.Summarize(ns, ps, []capacity.Workload{worker})
}

func scrape(t *testing.T, src Source) []byte {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(src))
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var buf bytes.Buffer
	for _, mf := range families {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	got := scrape(t, fixedSource{report: seedCluster()})
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/exporter -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("exposition differs from %s (rerun with -update if intended):\n%s", golden, got)
	}
	for _, name := range SeedMetricNames() {
		if !bytes.Contains(want, []byte("# TYPE "+name+" gauge\n")) {
			t.Errorf("golden file lacks the seed gauge %s", name)
		}
	}
}

func TestSeedValues(t *testing.T) {
	rep := seedCluster()
	want := map[string]float64{
		"cpu_capacity_total":     184000,
		"cpu_allocatable_total":  184000,
		"cpu_requests_total":     36000, // 6 x (5 paid + 1 worker); the cordoned node is not in the pool
		"cpu_capacity_remaining": 148000,
		"mem_capacity_total":     6 * 80 * 1024 * 1024,
		"mem_requests_total":     6 * (10*1024*1024 + 512*1024),
		"pod_capacity_total":     660,
		"pod_allocatable_total":  660,
	}
	for name, w := range want {
		if got, ok := SeedValue(rep, name); !ok || got != w {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
}

func TestNotReadyServesNoCapacity(t *testing.T) {
	out := scrape(t, fixedSource{report: seedCluster(), err: errors.New("API server unreachable")})
	since := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	c := NewCollector(fixedSource{since: since, err: errors.New("x")})
	c.now = func() time.Time { return since.Add(42500 * time.Millisecond) }
	if err := testutil.CollectAndCompare(c, strings.NewReader(
		"# HELP opportunist_capacity_data_ready "+helpOf(descUp)+"\n# TYPE opportunist_capacity_data_ready gauge\nopportunist_capacity_data_ready 0\n"+
			"# HELP opportunist_capacity_stale_seconds "+helpOf(descStaleSeconds)+"\n# TYPE opportunist_capacity_stale_seconds gauge\nopportunist_capacity_stale_seconds 42.5\n")); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("cpu_capacity_remaining")) {
		t.Fatal("stale capacity served while the source is not ready")
	}
}

func helpOf(d *prometheus.Desc) string {
	s := d.String() // Desc{fqName: "...", help: "...", ...}
	start := strings.Index(s, `help: "`) + len(`help: "`)
	end := strings.Index(s[start:], `", `)
	return s[start : start+end]
}

// TestPromtoolLint runs `promtool check metrics` on the golden exposition. The
// only findings allowed are the seed's own names ending in _total on gauges,
// which are kept for compatibility with the write-up's HPA and dashboards.
func TestPromtoolLint(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (apt-get install prometheus); .ci/run does")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(scrape(t, fixedSource{report: seedCluster()}))
	out, _ := cmd.CombinedOutput() // exit status 3 on lint findings; judged by the findings below
	allowed := map[string]bool{}
	for _, name := range SeedMetricNames() {
		if strings.HasSuffix(name, "_total") {
			allowed[name+` non-counter metrics should not have "_total" suffix`] = true
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" && !allowed[line] {
			t.Errorf("promtool: %s", line)
		}
	}
}
