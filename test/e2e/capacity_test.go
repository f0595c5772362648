//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const ki = 1024

// requireEmptyCluster fails when nodes from elsewhere would skew cluster-wide sums.
func requireEmptyCluster(t *testing.T) {
	t.Helper()
	nodes, err := client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) > 0 {
		var names []string
		for _, n := range nodes.Items {
			names = append(names, n.Name)
		}
		t.Fatalf("the cluster already has nodes %v; cluster-wide sums would be wrong (a previous run left them: kubectl delete nodes --all)", names)
	}
}

// seedCluster creates the write-up's six nodes: 184 cores (4 x 32, 2 x 28), 660 pod slots.
func seedCluster(t *testing.T) {
	for i := 1; i <= 6; i++ {
		cpu := "32"
		if i > 4 {
			cpu = "28"
		}
		createNode(t, fmt.Sprintf("seed-%d", i), NodeShape{CPU: cpu, Memory: "80Gi", Pods: 110})
	}
}

// seedGauges is what the ten seed metrics must read with paid pods of 4 cores
// and 1Gi each on the seed cluster.
func seedGauges(paidPods int) map[string]float64 {
	const memKi = 6 * 80 * 1024 * 1024
	cpu, mem := float64(paidPods*4000), float64(paidPods*1024*1024)
	return map[string]float64{
		"cpu_capacity_total": 184000, "cpu_allocatable_total": 184000, "cpu_requests_total": cpu, "cpu_capacity_remaining": 184000 - cpu,
		"mem_capacity_total": memKi, "mem_allocatable_total": memKi, "mem_requests_total": mem, "mem_capacity_remaining": memKi - mem,
		"pod_capacity_total": 660, "pod_allocatable_total": 660,
	}
}

func TestSeedGauges(t *testing.T) {
	requireEmptyCluster(t)
	seedCluster(t)
	createNamespace(t, "e2e-seed")
	createDeployment(t, "e2e-seed", "sample-metrics-app", DeploymentSpec{Replicas: 2, Requests: requests("cpu", "4", "memory", "1Gi")})
	waitForRunningPods(t, "e2e-seed", "sample-metrics-app", 2)

	o := startOpportunist(t)
	o.waitForMetrics(t, 10*time.Second, seedGauges(2))
	checkStatus(t, seedGauges(2))

	// The bound: new sums within 2 s of scaling a paid Deployment
	// (controller-manager, scheduler and our watch all in the path).
	scaleDeployment(t, "e2e-seed", "sample-metrics-app", 5)
	took := o.waitForMetrics(t, 2*time.Second, seedGauges(5))
	t.Logf("gauges followed a scale-up from 2 to 5 paid pods in %s", took.Round(time.Millisecond))

	scaleDeployment(t, "e2e-seed", "sample-metrics-app", 1)
	took = o.waitForMetrics(t, 2*time.Second, seedGauges(1))
	t.Logf("gauges followed a scale-down from 5 to 1 paid pod in %s", took.Round(time.Millisecond))
	checkStatus(t, seedGauges(1))
}

// checkStatus runs `opportunist status -o json` and the table form, and
// checks they print the numbers the gauges hold.
func checkStatus(t *testing.T, gauges map[string]float64) {
	t.Helper()
	out, err := exec.Command(binary, "status", "--kubeconfig", kubeconfig, "-o", "json").Output()
	if err != nil {
		t.Fatalf("opportunist status -o json: %v", err)
	}
	var st struct {
		Report struct {
			Resources []struct {
				Name, Unit                                 string
				Capacity, Allocatable, Requests, Remaining int64
			}
		}
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status -o json is not JSON: %v\n%s", err, out)
	}
	got := map[string]float64{}
	for _, r := range st.Report.Resources {
		// The amounts are in the unit the gauges use, and the JSON says which.
		if want := map[string]string{"cpu": "milliCores", "memory": "bytes", "pods": "count"}[r.Name]; want != "" && r.Unit != want {
			t.Errorf("status -o json: %s has unit %q, want %q", r.Name, r.Unit, want)
		}
		switch r.Name {
		case "cpu":
			got["cpu_capacity_total"], got["cpu_allocatable_total"], got["cpu_requests_total"], got["cpu_capacity_remaining"] =
				float64(r.Capacity), float64(r.Allocatable), float64(r.Requests), float64(r.Remaining)
		case "memory":
			got["mem_capacity_total"], got["mem_allocatable_total"], got["mem_requests_total"], got["mem_capacity_remaining"] =
				float64(r.Capacity/ki), float64(r.Allocatable/ki), float64(r.Requests/ki), float64(r.Remaining/ki)
		case "pods":
			got["pod_capacity_total"], got["pod_allocatable_total"] = float64(r.Capacity), float64(r.Allocatable)
		}
	}
	for name, want := range gauges {
		if got[name] != want {
			t.Errorf("status -o json: %s = %v, want %v", name, got[name], want)
		}
	}
	table, err := exec.Command(binary, "status", "--kubeconfig", kubeconfig).Output()
	if err != nil {
		t.Fatalf("opportunist status: %v", err)
	}
	cpuRow := fmt.Sprintf("cpu %s %s %s", milli(gauges["cpu_capacity_total"]), milli(gauges["cpu_allocatable_total"]), milli(gauges["cpu_requests_total"]))
	if !strings.Contains(strings.Join(strings.Fields(string(table)), " "), cpuRow) {
		t.Errorf("status table lacks the row %q:\n%s", cpuRow, table)
	}
}

// milli renders milli-cores as status prints them: "184", "8", "1500m".
func milli(v float64) string {
	if int64(v)%1000 == 0 {
		return fmt.Sprint(int64(v) / 1000)
	}
	return fmt.Sprintf("%dm", int64(v))
}

// TestAccountingRules checks the foundation's rules on a real cluster: only
// Ready, schedulable nodes contribute room; tainted nodes are still room;
// pods on cordoned or NotReady nodes leave the pool; terminal pods hold nothing.
func TestAccountingRules(t *testing.T) {
	requireEmptyCluster(t)
	ns := "e2e-rules"
	createNamespace(t, ns)
	createNode(t, "rules-ready", NodeShape{CPU: "16", Memory: "32Gi"})
	createNode(t, "rules-tainted", NodeShape{CPU: "12", Memory: "32Gi", Taints: []corev1.Taint{{Key: "dedicated", Value: "batch", Effect: corev1.TaintEffectNoSchedule}}})
	createNode(t, "rules-cordoned", NodeShape{CPU: "8", Memory: "32Gi"})
	createNode(t, "rules-notready", NodeShape{CPU: "4", Memory: "32Gi", NotReady: true})

	// A tolerating paid pod on the tainted node: tainted room is still room.
	createDeployment(t, ns, "tolerant", DeploymentSpec{Replicas: 1, Requests: requests("cpu", "2"),
		NodeSelector: map[string]string{"kubernetes.io/hostname": "rules-tainted"},
		Tolerations:  []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "batch", Effect: corev1.TaintEffectNoSchedule}}})
	// A pod that lands on a node which is then cordoned.
	createDeployment(t, ns, "on-cordoned", DeploymentSpec{Replicas: 1, Requests: requests("cpu", "1"), NodeSelector: map[string]string{"kubernetes.io/hostname": "rules-cordoned"}})
	waitForRunningPods(t, ns, "tolerant", 1)
	waitForRunningPods(t, ns, "on-cordoned", 1)

	o := startOpportunist(t)
	o.waitForMetrics(t, 10*time.Second, map[string]float64{
		"cpu_allocatable_total": 36000, "cpu_requests_total": 3000, "cpu_capacity_remaining": 33000,
		`opportunist_nodes{state="ready"}`: 3, `opportunist_nodes{state="not_ready"}`: 1, `opportunist_nodes{state="cordoned"}`: 0,
		`opportunist_node_state_allocatable{resource="cpu",state="not_ready",unit="core"}`: 4,
	})

	patchNode(t, "rules-cordoned", `{"spec":{"unschedulable":true}}`)
	o.waitForMetrics(t, 5*time.Second, map[string]float64{
		"cpu_allocatable_total": 28000, "cpu_requests_total": 2000, "cpu_capacity_remaining": 26000,
		`opportunist_nodes{state="ready"}`: 2, `opportunist_nodes{state="cordoned"}`: 1,
		`opportunist_node_state_requests{resource="cpu",state="cordoned",unit="core"}`: 1,
	})

	// A Job's pod runs to completion (kwok's pod-complete stage); once
	// Succeeded it holds no room.
	runJob(t, ns, "batch", requests("cpu", "3"), "rules-ready")
	o.waitForMetrics(t, 5*time.Second, map[string]float64{"cpu_requests_total": 2000, "cpu_capacity_remaining": 26000})

	// Pending paid pods are demand: 100 cores fit nowhere.
	createDeployment(t, ns, "too-big", DeploymentSpec{Replicas: 1, Requests: requests("cpu", "100")})
	o.waitForMetrics(t, 5*time.Second, map[string]float64{
		"opportunist_pending_paid_pods": 1, `opportunist_pending_paid_requests{resource="cpu",unit="core"}`: 100, "cpu_requests_total": 2000,
	})
}

// runJob runs a one-pod Job on node and waits until its pod has Succeeded.
func runJob(t *testing.T, ns, name string, req corev1.ResourceList, node string) {
	t.Helper()
	zero := int64(0)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{
				RestartPolicy:                 corev1.RestartPolicyNever,
				NodeSelector:                  map[string]string{"kubernetes.io/hostname": node},
				Containers:                    []corev1.Container{{Name: "main", Image: "fake", Resources: corev1.ResourceRequirements{Requests: req}}},
				TerminationGracePeriodSeconds: &zero,
			},
		}},
	}
	if _, err := client.BatchV1().Jobs(ns).Create(context.Background(), job, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating job %s: %v", name, err)
	}
	waitFor(t, 60*time.Second, "job "+name+"'s pod to succeed", func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil || len(pods.Items) != 1 {
			return false, err
		}
		return pods.Items[0].Status.Phase == corev1.PodSucceeded, nil
	})
}

// TestAPIServerRestart stops the API server under a running opportunist:
// /readyz turns unready and no stale capacity is served; after the restart it
// is ready again and follows new changes.
func TestAPIServerRestart(t *testing.T) {
	requireEmptyCluster(t)
	createNode(t, "restart-1", NodeShape{CPU: "8", Memory: "16Gi"})
	createNamespace(t, "e2e-restart")
	createDeployment(t, "e2e-restart", "paid", DeploymentSpec{Replicas: 1, Requests: requests("cpu", "1")})
	waitForRunningPods(t, "e2e-restart", "paid", 1)
	// No election, as in testOutage: a leader whose API server stays away
	// past the renew deadline (as a restart can on a loaded machine) exits by
	// design (TestFaultKilledDuringScaleUp); here it must ride the outage out.
	o := startOpportunist(t, "--probe-interval", "500ms", "--leader-elect=false")
	o.waitForMetrics(t, 10*time.Second, map[string]float64{"cpu_allocatable_total": 8000, "cpu_requests_total": 1000})

	restarted := false
	t.Cleanup(func() {
		if !restarted { // never leave the shared control plane without its API server
			hackCluster(t, "start", "apiserver")
		}
	})
	hackCluster(t, "stop", "apiserver")
	waitFor(t, 15*time.Second, "opportunist /readyz to fail while the API server is down", func(ctx context.Context) (bool, error) {
		code, _, err := httpGet(ctx, o.URL+"/readyz")
		return code == http.StatusServiceUnavailable, err
	})
	o.waitForMetrics(t, 5*time.Second, map[string]float64{"opportunist_capacity_data_ready": 0})
	got, err := o.scrape(context.Background())
	if err != nil {
		t.Fatalf("scraping while the API server is down: %v", err)
	}
	if v, served := got["cpu_capacity_remaining"]; served {
		t.Fatalf("stale cpu_capacity_remaining %v served while the API server is down", v)
	}

	hackCluster(t, "start", "apiserver")
	restarted = true
	waitFor(t, 60*time.Second, "opportunist /readyz to recover", func(ctx context.Context) (bool, error) {
		code, _, err := httpGet(ctx, o.URL+"/readyz")
		return code == http.StatusOK, err
	})
	scaleDeployment(t, "e2e-restart", "paid", 3)
	o.waitForMetrics(t, 30*time.Second, map[string]float64{"opportunist_capacity_data_ready": 1, "cpu_requests_total": 3000, "cpu_capacity_remaining": 5000})
}
