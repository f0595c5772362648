//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

// The write-up's demo, driven by traffic as the write-up meant it: the
// sample app runs as a local process (its pods are kwok fakes, which serve
// nothing) and counts the load generator's requests in
// http_requests_total; Prometheus scrapes it from a static 127.0.0.1
// target; KEDA's `prometheus` trigger on the summed rate, 0.5 a second per
// pod, scales the app's Deployment; the OpportunisticScaler fills the rest
// of the cluster with the worker. examples/seed-keda/README.md is this run
// for a reader.

const (
	// 8.25 requests a second asks ceil(8.25 / 0.5) = 17 pods, the write-up's
	// burst: 16.5 pods' worth, half-way between two counts, so the rate's
	// estimate (within about 1 % over 15 one-second scrapes) cannot tip it.
	burstRate = 8.25
	burstApp  = 17
	// 0.75 a second asks ceil(1.5) = 2, the app's minimum: traffic, but
	// little of it.
	quietRate = 0.75
	quietApp  = 2
	// The worker fills 184 cores less the app's 4 a pod less 30 of headroom.
	quietWorker = 184 - 4*quietApp - 30         // 146
	burstWorker = 184 - 4*burstApp - 30         // 86
	appHPA      = "keda-hpa-sample-metrics-app" // the HPA KEDA makes for the ScaledObject
)

// buildExample builds ./examples/<name> into the test's folder and returns
// that folder.
func buildExample(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(testDir(t), "bin")
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./examples/"+name)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building examples/%s: %v\n%s", name, err, out)
	}
	return dir
}

// stop interrupts the process and waits until it has exited.
func (p *kedaProcess) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not stop within 10s of SIGINT", p.name)
	}
}

// startLoad runs examples/load at rate against target until stopped.
func startLoad(t *testing.T, bin, target string, rate float64) *kedaProcess {
	t.Helper()
	return startKEDAProcess(t, bin, "load", nil, "--target", target, "--rate", fmt.Sprint(rate), "--report-interval", "5s")
}

// appHPAReading is what KEDA's HPA for the app last read and decided.
func appHPAReading(ctx context.Context) (perPod float64, desired int32, err error) {
	h, err := client.AutoscalingV2().HorizontalPodAutoscalers("demo").Get(ctx, appHPA, metav1.GetOptions{})
	if err != nil {
		return 0, 0, err
	}
	m := h.Status.CurrentMetrics
	if len(m) != 1 || m[0].External == nil || m[0].External.Current.AverageValue == nil {
		return 0, 0, fmt.Errorf("no External average value yet (current metrics %+v)", m)
	}
	return m[0].External.Current.AverageValue.AsApproximateFloat64(), h.Status.DesiredReplicas, nil
}

// TestKEDAAppScalesOnTraffic runs the write-up's demo from its manifests
// (examples/seed, examples/seed-cluster, examples/seed-keda) with the app's
// replicas set by its traffic: load rises -> the app scales out to
// ceil(rate / 0.5) -> the worker yields the room and the paid pods run ->
// load falls -> the app scales in -> the worker refills.
//
// The HPA settings, each on purpose: the controller-manager syncs HPAs every
// 2 s (set here, the local cluster's default; a stock one syncs every 15 s);
// KEDA's HPA scales up at once with tolerance 0, so it lands on
// ceil(rate / 0.5) rather than anywhere within 10 % of it; it scales down
// after 10 s at the lower count (the write-up's was 30 s, the default 300 s).
// The worker's OpportunisticScaler grows after 10 s of steady room
// (examples/seed/worker.yaml) and shrinks at once.
func TestKEDAAppScalesOnTraffic(t *testing.T) {
	const ns = "demo"
	requireEmptyCluster(t)
	prometheusBinary(t) // fail before restarting anything when it is missing
	installCRD(t)
	hackCluster(t, "hpa", "--sync-period", "2s")
	t.Cleanup(func() { hackCluster(t, "hpa", "--reset") })
	// KEDA first: its clean-up runs last, after the applier's has deleted the
	// ScaledObject, whose finalizer KEDA must remove.
	start := time.Now()
	startKEDA(t)
	t.Logf("KEDA up (CRDs, operator, metrics server Available) in %s", time.Since(start).Round(time.Millisecond))
	appBin, loadBin := buildExample(t, "sample-metrics-app"), buildExample(t, "load")

	// The walkthrough's cluster and demo, as its steps 2 and 3 apply them.
	a := newApplier(t, "e2e-keda-app")
	var seed []manifestObject
	for _, f := range []string{"examples/seed-cluster/nodes.yaml", "examples/seed/namespace.yaml", "examples/seed/sample-metrics-app.yaml", "examples/seed/worker.yaml"} {
		seed = append(seed, readManifest(t, f)...)
	}
	a.apply(t, clusterScopedFirst(seed))
	waitForRunningPods(t, ns, "sample-metrics-app", quietApp) // raised to its minimum by the seed's HPA
	// KEDA's HPA replaces the seed's, which has no adapter here: two HPAs on
	// one Deployment would both stop (AmbiguousSelector).
	a.remove(t, find(seed, "HorizontalPodAutoscaler")[0])

	// The app itself, on loopback, and Prometheus scraping it with the
	// example's configuration, its target moved to the app's address.
	appAddr := freeAddress(t)
	app := startKEDAProcess(t, appBin, "sample-metrics-app", nil, "--listen-address", appAddr, "--name", "sample-metrics-app")
	waitFor(t, 10*time.Second, "the sample app's /healthz", func(ctx context.Context) (bool, error) {
		if err := app.exited(); err != nil {
			return false, err
		}
		code, _, err := httpGet(ctx, "http://"+appAddr+"/healthz")
		return code == http.StatusOK, err
	})
	so := readManifest(t, "examples/seed-keda/sample-metrics-app-scaledobject.yaml")[0]
	triggers, _, _ := unstructured.NestedSlice(so.obj.Object, "spec", "triggers")
	meta, _ := triggers[0].(map[string]any)["metadata"].(map[string]any)
	query, _ := meta["query"].(string)
	raw, err := os.ReadFile(filepath.Join(repoRoot, "examples/seed-keda/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	const exampleTarget = "127.0.0.1:8081"
	if !strings.Contains(string(raw), exampleTarget) || query == "" {
		t.Fatalf("examples/seed-keda: prometheus.yml has no target %s, or the ScaledObject no query (%q)", exampleTarget, query)
	}
	prom := startPrometheusConfig(t, strings.ReplaceAll(string(raw), exampleTarget, appAddr), query)
	load := startLoad(t, loadBin, "http://"+appAddr+"/", quietRate)

	// opportunist fills the cluster: the walkthrough's step 5.
	startOpportunist(t, "--round-interval", "1s")
	took := waitForReplicas(t, 60*time.Second, ns, "worker", quietWorker, 0)
	t.Logf("the worker filled the cluster to %d in %s", quietWorker, took.Round(time.Millisecond))

	// The ScaledObject, on this test's Prometheus.
	meta["serverAddress"] = prom
	if err := unstructured.SetNestedSlice(so.obj.Object, triggers, "spec", "triggers"); err != nil {
		t.Fatal(err)
	}
	a.apply(t, []manifestObject{so})
	res, err := a.resource(so)
	if err != nil {
		t.Fatal(err)
	}
	waitForScaledObjectReady(t, res, so.obj.GetName())
	hpa, err := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(context.Background(), appHPA, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("KEDA's HPA for the ScaledObject: %v", err)
	}
	if m := hpa.Spec.Metrics; len(m) != 1 || m[0].Type != autoscalingv2.ExternalMetricSourceType ||
		m[0].External.Target.Type != autoscalingv2.AverageValueMetricType || m[0].External.Target.AverageValue.MilliValue() != 500 {
		t.Fatalf("KEDA's HPA: metrics %+v; want one External metric with an AverageValue target of 500m", m)
	}
	waitFor(t, 30*time.Second, "KEDA's HPA to read the quiet rate at the app's minimum", func(ctx context.Context) (bool, error) {
		perPod, desired, err := appHPAReading(ctx)
		if err != nil {
			return false, err
		}
		if perPod <= 0 || desired != quietApp {
			return false, fmt.Errorf("%.3f a pod, desired %d", perPod, desired)
		}
		t.Logf("quiet load %g req/s: KEDA's HPA reads %.3f a pod, desired %d", quietRate, perPod, desired)
		return true, nil
	})
	apps := traceReplicas(t, ns, "sample-metrics-app")
	workers := traceReplicas(t, ns, "worker")

	// Load up: the write-up's burst, from traffic.
	load.stop(t)
	t.Logf("quiet load: %s", tail(load.logPath, 1))
	rise := time.Now()
	load = startLoad(t, loadBin, "http://"+appAddr+"/", burstRate)
	took = waitForReplicas(t, 90*time.Second, ns, "sample-metrics-app", burstApp, 0)
	rate, ok, err := promQuery(context.Background(), prom, query)
	if err != nil || !ok {
		t.Fatalf("Prometheus's rate of the app's requests: %v (a sample: %v)", err, ok)
	}
	perPod, desired, err := appHPAReading(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("load %g req/s: the app at %d after %s (Prometheus reads %.3f req/s; KEDA's HPA %.3f a pod, desired %d)",
		burstRate, burstApp, took.Round(time.Millisecond), rate, perPod, desired)
	if math.Abs(rate-burstRate) > 0.05*burstRate || int32(math.Ceil(rate/0.5)) != burstApp {
		t.Errorf("Prometheus reads %.3f req/s for a load of %g: want within 5 %% and ceil(rate / 0.5) = %d", rate, burstRate, burstApp)
	}
	waitForRunningPods(t, ns, "sample-metrics-app", burstApp)
	paidRunning := time.Since(rise)
	took = waitForReplicas(t, 30*time.Second, ns, "worker", burstWorker, 0)
	waitForRunningPods(t, ns, "worker", burstWorker)
	t.Logf("the worker yielded: all %d paid pods running %s after the load rose; the worker at %d (184 - %d paid - 30 headroom) %s after that",
		burstApp, paidRunning.Round(time.Millisecond), burstWorker, 4*burstApp, took.Round(time.Millisecond))

	// Load down.
	load.stop(t)
	t.Logf("burst load: %s", tail(load.logPath, 1))
	fall := time.Now()
	load = startLoad(t, loadBin, "http://"+appAddr+"/", quietRate)
	took = waitForReplicas(t, 90*time.Second, ns, "sample-metrics-app", quietApp, 0)
	t.Logf("load %g req/s: the app back at %d after %s (15 s of rate window, 10 s of scale-down stabilisation)", quietRate, quietApp, took.Round(time.Millisecond))
	waitForReplicas(t, 60*time.Second, ns, "worker", quietWorker, 0)
	waitForRunningPods(t, ns, "worker", quietWorker)
	t.Logf("the worker refilled to %d, %s after the load fell", quietWorker, time.Since(fall).Round(time.Millisecond))

	// The order, and nothing beyond the load's own counts.
	_, appSeen := apps.directionChanges()
	_, workerSeen := workers.directionChanges()
	t.Logf("sample-metrics-app replicas seen: %v; worker replicas seen: %v", appSeen, workerSeen)
	if !inOrder(appSeen, quietApp, burstApp, quietApp) || slices.Max(appSeen) != burstApp || reversals(appSeen) != 1 {
		t.Errorf("sample-metrics-app replicas %v: want up from %d to %d (through whatever the climbing rate asked) and back down, no higher, one reversal", appSeen, quietApp, burstApp)
	}
	if !inOrder(workerSeen, quietWorker, burstWorker, quietWorker) || slices.Min(workerSeen) != burstWorker || reversals(workerSeen) != 1 {
		t.Errorf("worker replicas %v: want %d, down to %d (no lower) and back, one reversal", workerSeen, quietWorker, burstWorker)
	}
}

// TestKEDASeedFullWalkthrough runs examples/seed-keda/README.md's commands
// as written, as TestSeedWalkthrough runs the walkthrough's: KEDA, the app,
// Prometheus and the load generator as the reader starts them, on fixed
// loopback ports. The README's `kubectl wait`s fail the script when a count
// is not reached; the traces check the order.
func TestKEDASeedFullWalkthrough(t *testing.T) {
	requireEmptyCluster(t)
	prometheusBinary(t)
	const readme = "examples/seed-keda/README.md"
	script, blocks := walkthroughScript(t, readme)
	if blocks < 7 {
		t.Fatalf("%s has %d sh blocks; the full variant has at least 7 steps", readme, blocks)
	}
	dir := testDir(t)
	scriptPath := filepath.Join(dir, "walkthrough.sh")
	if err := os.WriteFile(scriptPath, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	demoDir := filepath.Join(dir, "demo")
	if err := os.RemoveAll(demoDir); err != nil { // an earlier run's pid files and Prometheus data
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanUpWalkthrough(t, demoDir) })
	t.Cleanup(func() { cleanUpKEDAWalkthrough(t, demoDir) }) // first: KEDA must release the ScaledObject
	dumpOnFailure(t, nil)
	apps := traceReplicas(t, "demo", "sample-metrics-app")
	workers := traceReplicas(t, "demo", "worker")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", scriptPath)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "DEMO_LISTEN="+freeAddress(t), "DEMO_DIR="+demoDir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	logPath := filepath.Join(dir, "walkthrough.log")
	_ = os.WriteFile(logPath, []byte(out.String()), 0o644)
	if err != nil {
		t.Fatalf("the walkthrough failed after %s (%v); full output in %s, logs in %s; last lines:\n%s",
			took.Round(time.Millisecond), err, logPath, demoDir, lastLines(out.String(), 40))
	}
	t.Logf("%s: %d sh blocks ran in %s (output: %s); %s", readme, blocks, took.Round(time.Millisecond), logPath, blockTimes(out.String(), took))

	_, a := apps.directionChanges()
	_, w := workers.directionChanges()
	t.Logf("sample-metrics-app replicas seen: %v; worker replicas seen: %v", a, w)
	if !inOrder(a, quietApp, burstApp, quietApp) {
		t.Errorf("sample-metrics-app replicas %v: want %d, %d (load up), %d (load down)", a, quietApp, burstApp, quietApp)
	}
	if !inOrder(w, quietWorker, burstWorker, quietWorker) {
		t.Errorf("worker replicas %v: want %d, %d, %d", w, quietWorker, burstWorker, quietWorker)
	}
	// Step 4's `kubectl get hpa`: a rate per pod against 500m (rising to
	// 375m, 0.75 req/s over 2 pods, as the window fills); not <unknown>, not 0.
	if m := regexp.MustCompile(`\s([1-9]\d*)m/500m \(avg\)\s+2\s+30\s+2\s`).FindStringSubmatch(out.String()); m == nil {
		t.Errorf("the walkthrough's output shows no KEDA HPA target of a rate/500m at 2 replicas (see %s)", logPath)
	}
}

// cleanUpKEDAWalkthrough undoes what a failed full variant left before
// cleanUpWalkthrough's part: the ScaledObject while KEDA still runs (its
// finalizer), then the processes the README started.
func cleanUpKEDAWalkthrough(t *testing.T, demoDir string) {
	ctx := context.Background()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Error(err)
		return
	}
	res := dynamic.NewForConfigOrDie(cfg).Resource(scaledObjectGVR).Namespace("demo")
	if err := res.Delete(ctx, "sample-metrics-app", metav1.DeleteOptions{}); err == nil {
		gone := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := res.Get(ctx, "sample-metrics-app", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if gone != nil { // KEDA is gone: drop its finalizer, or the namespace stays
			_, _ = res.Patch(ctx, "sample-metrics-app", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		}
	}
	for _, p := range []string{"load", "app", "prometheus", "keda-adapter", "keda"} {
		raw, err := os.ReadFile(filepath.Join(demoDir, p+".pid"))
		if err != nil {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(string(raw), &pid); err == nil && pid > 0 {
			if proc, err := os.FindProcess(pid); err == nil && proc.Signal(os.Interrupt) == nil {
				t.Logf("stopped the walkthrough's %s (pid %d), which it had left running", p, pid)
			}
		}
	}
	if err := client.CoreV1().Namespaces().Delete(ctx, kedaNamespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting namespace %s: %v", kedaNamespace, err)
	}
}
