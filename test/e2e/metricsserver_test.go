//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
)

// metrics-server in the end-to-end suite: the real metrics-server, built by
// hack/cluster from its module at a pinned version and cached (`make
// metrics-server`), runs as a local process and scrapes kwok, which plays
// each node's kubelet resource-metrics endpoint: a pod uses what its
// annotation kwok.x-k8s.io/usage-cpu says (hack/cluster's kwok config), so a
// test moves a pod's usage with one patch. It contacts only 127.0.0.1: the
// API server, and kwok's server as every node's kubelet (kwok gives its
// nodes the InternalIP 127.0.0.1; it serves a node's metrics at
// /metrics/nodes/<node>/metrics/resource, which the node's annotation
// metrics.k8s.io/resource-metrics-path tells metrics-server). The aggregator
// reaches it through an ExternalName `localhost` Service, as it reaches
// opportunist's metrics API.

// usageCPUAnnotation is the pod annotation kwok takes a pod's CPU use from.
const usageCPUAnnotation = "kwok.x-k8s.io/usage-cpu"

// metricsNodeLabel marks the nodes metrics-server scrapes (its
// --node-selector): only the test's own, whose annotation says where kwok
// serves their metrics.
const metricsNodeLabel = "opportunist.e2e/metrics"

// metricsNodeShape makes a node that metrics-server scrapes.
func metricsNodeShape(name string, s NodeShape) NodeShape {
	s.Labels = mergeLabels(s.Labels, map[string]string{metricsNodeLabel: "kwok"})
	s.Annotations = mergeLabels(s.Annotations, map[string]string{
		"metrics.k8s.io/resource-metrics-path": "/metrics/nodes/" + name + "/metrics/resource"})
	return s
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

var metricsServerBuild struct {
	once sync.Once
	bin  string
	err  error
}

// metricsServerBinary returns metrics-server's path, building it first when
// hack/cluster's cache does not have it.
func metricsServerBinary(t *testing.T) string {
	t.Helper()
	metricsServerBuild.once.Do(func() {
		start := time.Now()
		cmd := exec.Command("go", "run", "./hack/cluster", "metrics-server")
		cmd.Dir = repoRoot
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			metricsServerBuild.err = fmt.Errorf("building metrics-server (go run ./hack/cluster metrics-server): %v\n%s", err, stderr.String())
			return
		}
		if stderr.Len() > 0 {
			t.Logf("%s(go run ./hack/cluster metrics-server took %s)", stderr.String(), time.Since(start).Round(time.Second))
		}
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "export METRICS_SERVER_BIN="); ok {
				metricsServerBuild.bin = filepath.Join(strings.Trim(v, "'"), "metrics-server")
			}
		}
		if metricsServerBuild.bin == "" {
			metricsServerBuild.err = fmt.Errorf("go run ./hack/cluster metrics-server printed no METRICS_SERVER_BIN:\n%s", out)
		}
	})
	if metricsServerBuild.err != nil {
		t.Fatal(metricsServerBuild.err)
	}
	return metricsServerBuild.bin
}

// kwokPort is the port of kwok's server in the running cluster (hack/cluster
// keeps its settings in the state dir's pid file).
func kwokPort(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(clusterDir, "pids.json"))
	if err != nil {
		t.Fatalf("reading the cluster's settings: %v", err)
	}
	var st struct {
		Settings struct {
			KwokPort int `json:"kwokPort"`
		} `json:"settings"`
	}
	if err := json.Unmarshal(data, &st); err != nil || st.Settings.KwokPort == 0 {
		t.Fatalf("no kwok port in %s (%v)", filepath.Join(clusterDir, "pids.json"), err)
	}
	return st.Settings.KwokPort
}

// MetricsServer is a running metrics-server registered as
// v1beta1.metrics.k8s.io.
type MetricsServer struct {
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

const metricsAPIService = "v1beta1.metrics.k8s.io"

// startMetricsServer runs metrics-server (15 s resolution, as its manifests
// set it) and registers it, waiting until the aggregator finds it
// Available. It stops, and the APIService goes, when the test ends.
func startMetricsServer(t *testing.T) *MetricsServer {
	t.Helper()
	bin := metricsServerBinary(t)
	port := freePort(t)
	logPath := filepath.Join(testDir(t), "metrics-server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(testDir(t), "metrics-server-certs")
	cmd := exec.Command(bin,
		"--secure-port", strconv.Itoa(port), "--bind-address", "127.0.0.1",
		// Its own self-signed serving certificate: the APIService skips
		// verification, as metrics-server's own manifests do.
		"--cert-dir", certs,
		"--kubeconfig", kubeconfig, "--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig,
		"--metric-resolution=15s",
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-port", strconv.Itoa(kwokPort(t)),
		// kwok's server speaks plain HTTP on loopback.
		"--deprecated-kubelet-completely-insecure",
		"--node-selector", metricsNodeLabel+"=kwok",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting metrics-server: %v", err)
	}
	ms := &MetricsServer{LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(ms.done) }()
	t.Cleanup(func() {
		ms.Stop()
		if t.Failed() {
			t.Logf("== metrics-server log (%s), last 30 lines\n%s", logPath, tail(logPath, 30))
		}
	})

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "metrics-server"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(port), Protocol: corev1.ProtocolTCP}}},
	}
	if _, err := client.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Service kube-system/metrics-server: %v (a previous test left one?)", err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Services(svc.Namespace).Delete(context.Background(), svc.Name, metav1.DeleteOptions{})
	})
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": metricsAPIService},
		"spec": map[string]any{
			"group": "metrics.k8s.io", "version": "v1beta1",
			"service":               map[string]any{"namespace": svc.Namespace, "name": svc.Name, "port": int64(port)},
			"insecureSkipTLSVerify": true, "groupPriorityMinimum": int64(100), "versionPriority": int64(100),
		},
	}}
	if _, err := dyn.Resource(apiServiceGVR).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("registering metrics-server as %s: %v (a previous test left one?)", metricsAPIService, err)
	}
	t.Cleanup(func() {
		if err := dyn.Resource(apiServiceGVR).Delete(context.Background(), metricsAPIService, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting APIService %s: %v", metricsAPIService, err)
		}
	})
	waitFor(t, 60*time.Second, "metrics-server to be Available as "+metricsAPIService, func(ctx context.Context) (bool, error) {
		if err := ms.exited(); err != nil {
			return false, err
		}
		return apiServiceAvailable(ctx, dyn, metricsAPIService)
	})
	return ms
}

func (ms *MetricsServer) exited() error {
	select {
	case <-ms.done:
		return fmt.Errorf("metrics-server exited: %s", tail(ms.LogPath, 5))
	default:
		return nil
	}
}

// Stop ends metrics-server (the APIService stays registered, now
// unavailable, as when metrics-server dies in a cluster).
func (ms *MetricsServer) Stop() {
	select {
	case <-ms.done:
		return
	default:
	}
	_ = ms.cmd.Process.Signal(os.Interrupt)
	select {
	case <-ms.done:
	case <-time.After(10 * time.Second):
		_ = ms.cmd.Process.Kill()
		<-ms.done
	}
}

// metricsClient is a client of metrics.k8s.io.
func metricsClient(t *testing.T) metricsclient.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return metricsclient.NewForConfigOrDie(cfg)
}

// setPodUsage sets the CPU use kwok reports for a pod.
func setPodUsage(t *testing.T, ns, name, cpu string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, usageCPUAnnotation, cpu)
	if _, err := client.CoreV1().Pods(ns).Patch(context.Background(), name, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("setting the usage of pod %s/%s to %s: %v", ns, name, cpu, err)
	}
}

// waitForPodUsage waits until metrics.k8s.io reports every pod of app in ns
// using cpu within tolerance (metrics-server's rate of a counter over its
// last two scrapes), and returns how long that took.
func waitForPodUsage(t *testing.T, mc metricsclient.Interface, ns, app string, wantMilli, toleranceMilli int64, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, timeout, fmt.Sprintf("metrics.k8s.io to report the pods of %s/%s using %dm cpu", ns, app, wantMilli), func(ctx context.Context) (bool, error) {
		list, err := mc.MetricsV1beta1().PodMetricses(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return false, err
		}
		if len(list.Items) == 0 {
			return false, fmt.Errorf("no pod metrics yet")
		}
		for _, pm := range list.Items {
			var milli int64
			for _, c := range pm.Containers {
				milli += c.Usage.Cpu().MilliValue()
			}
			if d := milli - wantMilli; d < -toleranceMilli || d > toleranceMilli {
				return false, fmt.Errorf("%s uses %dm", pm.Name, milli)
			}
		}
		return true, nil
	})
	return time.Since(start)
}

// TestMetricsServerKwokUsage: the real metrics-server, scraping kwok's
// emulated kubelets, serves the usage each pod's annotation sets through
// metrics.k8s.io, for pods and nodes, and follows a change of it. `kubectl
// top` reads the same API.
func TestMetricsServerKwokUsage(t *testing.T) {
	ns := "e2e-metrics-server"
	createNamespace(t, ns)
	name := "e2e-ms-node"
	createNode(t, name, metricsNodeShape(name, NodeShape{CPU: "16", Memory: "64Gi"}))
	createDeployment(t, ns, "paid", DeploymentSpec{Replicas: 2, Requests: requests("cpu", "4", "memory", "1Gi"),
		NodeSelector: map[string]string{"kubernetes.io/hostname": name}})
	waitForRunningPods(t, ns, "paid", 2)
	pods, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=paid"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		setPodUsage(t, ns, p.Name, "1500m")
	}
	start := time.Now()
	startMetricsServer(t)
	t.Logf("metrics-server Available in %s", time.Since(start).Round(time.Millisecond))
	mc := metricsClient(t)
	took := waitForPodUsage(t, mc, ns, "paid", 1500, 50, 90*time.Second)
	t.Logf("pods report 1500m %s after metrics-server was Available", took.Round(time.Millisecond))

	// The node reports its pods' sum.
	waitFor(t, 60*time.Second, "node metrics of "+name, func(ctx context.Context) (bool, error) {
		nm, err := mc.MetricsV1beta1().NodeMetricses().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if got := nm.Usage.Cpu().MilliValue(); got < 2900 || got > 3100 {
			return false, fmt.Errorf("node uses %dm, want 3000m", got)
		}
		return true, nil
	})

	// A change of the annotation shows within two scrapes (the rate is
	// over the last two).
	for _, p := range pods.Items {
		setPodUsage(t, ns, p.Name, "3")
	}
	// metrics-server's cpu is a rate over two scrapes of kwok's cumulative
	// usage, whose ends skew by each scrape's latency: a little off 3000m on
	// a busy machine (3004m in one CI run with three shards).
	const usageTolerance = 50
	took = waitForPodUsage(t, mc, ns, "paid", 3000, usageTolerance, 60*time.Second)
	t.Logf("a change of usage (1500m -> 3) showed in metrics.k8s.io after %s", took.Round(time.Millisecond))
	if took > 45*time.Second {
		t.Errorf("the usage change took %s to show, want within three 15 s scrapes", took)
	}

	// kubectl top reads the same API: hack/e2e.sh puts the cluster's
	// kubectl first on PATH.
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Logf("not checking kubectl top: no kubectl on PATH (make e2e puts the cluster's there)")
		return
	}
	out, err := exec.Command(kubectl, "--kubeconfig", kubeconfig, "top", "pods", "-n", ns, "--no-headers").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl top pods: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			t.Errorf("kubectl top pods: %q, want a pod and its cpu", line)
			continue
		}
		milli, err := strconv.ParseInt(strings.TrimSuffix(f[1], "m"), 10, 64)
		if err != nil || !strings.HasSuffix(f[1], "m") || milli < 3000-usageTolerance || milli > 3000+usageTolerance {
			t.Errorf("kubectl top pods: %q, want 3000m of cpu (±%dm)", line, usageTolerance)
		}
	}
	t.Logf("kubectl top pods -n %s:\n%s", ns, out)
}
