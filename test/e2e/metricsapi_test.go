//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/opportunist/opportunist/api/v1alpha1"
)

var apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// registerMetricsAPI points the aggregator's custom and external metrics
// APIServices at an opportunist serving them on port, and waits until they
// are Available. They are removed when the test ends.
func registerMetricsAPI(t *testing.T, port int) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	raw, err := os.ReadFile(filepath.Join(repoRoot, "test", "e2e", "testdata", "metrics-apiservices.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var apiservices []string
	for _, doc := range strings.Split(strings.ReplaceAll(string(raw), "PORT", strconv.Itoa(port)), "\n---\n") {
		var obj unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			t.Fatalf("testdata/metrics-apiservices.yaml: %v", err)
		}
		var res dynamic.ResourceInterface
		switch obj.GetKind() {
		case "Namespace":
			res = dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"})
		case "Service":
			res = dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "services"}).Namespace(obj.GetNamespace())
		case "APIService":
			res = dyn.Resource(apiServiceGVR)
			apiservices = append(apiservices, obj.GetName())
		}
		if obj.GetKind() != "Namespace" { // replace what an earlier run left, with this run's port
			if err := res.Delete(ctx, obj.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Fatalf("deleting the old %s %s: %v", obj.GetKind(), obj.GetName(), err)
			}
		}
		if _, err := res.Create(ctx, &obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	t.Cleanup(func() {
		for _, name := range apiservices {
			_ = dyn.Resource(apiServiceGVR).Delete(ctx, name, metav1.DeleteOptions{})
		}
		_ = client.CoreV1().Namespaces().Delete(ctx, "opportunist-system", metav1.DeleteOptions{})
	})
	for _, name := range apiservices {
		waitForAPIServiceAvailable(t, dyn, name)
	}
}

func freePort(t *testing.T) int {
	_, port, _ := strings.Cut(freeAddress(t), ":")
	n, _ := strconv.Atoi(port)
	return n
}

// getRaw is `kubectl get --raw path` decoded into out.
func getRaw(ctx context.Context, path string, out any) error {
	req := client.Discovery().RESTClient().Get()
	if p, query, found := strings.Cut(path, "?"); found {
		values, err := url.ParseQuery(query)
		if err != nil {
			return err
		}
		req = req.AbsPath(p)
		for k, vs := range values {
			for _, v := range vs {
				req = req.Param(k, v)
			}
		}
	} else {
		req = req.AbsPath(path)
	}
	body, err := req.Do(ctx).Raw()
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return json.Unmarshal(body, out)
}

type metricValueList struct {
	Items []struct {
		DescribedObject struct{ Kind, Name string } `json:"describedObject"`
		MetricLabels    map[string]string           `json:"metricLabels"`
		Value           resource.Quantity           `json:"value"`
	} `json:"items"`
}

func metricValue(t *testing.T, path string) int64 {
	t.Helper()
	var list metricValueList
	if err := getRaw(context.Background(), path, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("GET %s: %d items, want 1: %+v", path, len(list.Items), list)
	}
	return list.Items[0].Value.Value()
}

// TestMetricsAPI reads both metrics APIs through the real aggregator.
func TestMetricsAPI(t *testing.T) {
	requireEmptyCluster(t)
	c := installCRD(t)
	seedCluster(t)
	ns := "e2e-metricsapi"
	createNamespace(t, ns)
	createDeployment(t, ns, "sample-metrics-app", DeploymentSpec{Replicas: 2, Requests: requests("cpu", "4", "memory", "1Gi")})
	waitForRunningPods(t, ns, "sample-metrics-app", 2)
	createDeployment(t, ns, "worker", DeploymentSpec{Replicas: 15, Requests: requests("cpu", "1", "memory", "64Mi")})
	dry := scalerFor(ns, "worker", "worker", 15, 150, map[corev1.ResourceName]v1alpha1.HeadroomValue{"cpu": "30"})
	dry.Spec.DryRun = true
	createScaler(t, c, dry)
	waitForRunningPods(t, ns, "worker", 15)
	port := freePort(t)
	startOpportunist(t, "--round-interval", "1s", "--metrics-api-port", strconv.Itoa(port))
	registerMetricsAPI(t, port)

	// 184 cores - 8 paid - 15 worker cores.
	for _, version := range []string{"v1beta1", "v1beta2"} {
		base := "/apis/custom.metrics.k8s.io/" + version
		if got := metricValue(t, base+"/namespaces/"+ns+"/services/cluster-metrics/cpu_capacity_remaining"); got != 161000 {
			t.Errorf("%s: cpu_capacity_remaining on Service cluster-metrics = %d, want 161000", version, got)
		}
		if got := metricValue(t, base+"/namespaces/"+ns+"/metrics/cpu_allocatable_total"); got != 184000 {
			t.Errorf("%s: cpu_allocatable_total on the Namespace = %d, want 184000", version, got)
		}
		if got := metricValue(t, base+"/nodes/seed-5/cpu_allocatable_total"); got != 28000 {
			t.Errorf("%s: cpu_allocatable_total of node seed-5 = %d, want 28000", version, got)
		}
		var resources struct {
			Resources []struct{ Name string } `json:"resources"`
		}
		if err := getRaw(context.Background(), base, &resources); err != nil {
			t.Fatal(err)
		}
		listed := map[string]bool{}
		for _, r := range resources.Resources {
			listed[r.Name] = true
		}
		for _, name := range []string{"services/cpu_capacity_remaining", "services/mem_capacity_total", "namespaces/cpu_requests_total", "nodes/cpu_capacity_remaining"} {
			if !listed[name] {
				t.Errorf("%s discovery lacks %s", version, name)
			}
		}
	}
	if got := metricValue(t, "/apis/external.metrics.k8s.io/v1beta1/namespaces/"+ns+"/cpu_capacity_remaining"); got != 161000 {
		t.Errorf("external cpu_capacity_remaining = %d, want 161000", got)
	}
	if got := metricValue(t, "/apis/external.metrics.k8s.io/v1beta1/namespaces/"+ns+"/opportunist_pool_remaining?labelSelector=resource%3Dcpu"); got != 161 {
		t.Errorf("external opportunist_pool_remaining{resource=cpu} = %d cores, want 161", got)
	}
	if got := metricValue(t, "/apis/external.metrics.k8s.io/v1beta1/namespaces/"+ns+"/opportunist_pool_remaining?labelSelector=resource%3Dcpu%2Ckubernetes.io%2Fhostname%3Dseed-6"); got > 28 {
		t.Errorf("external opportunist_pool_remaining of the pool {seed-6} = %d cores, more than the node has", got)
	}
	// The dry-run scaler's answer: 184 - 8 paid - 30 headroom = 146 replicas.
	waitFor(t, 20*time.Second, "opportunist_desired_replicas to carry the scaler's answer", func(ctx context.Context) (bool, error) {
		var list metricValueList
		if err := getRaw(ctx, "/apis/external.metrics.k8s.io/v1beta1/namespaces/"+ns+"/opportunist_desired_replicas?labelSelector=scaler%3Dworker", &list); err != nil {
			return false, err
		}
		var s v1alpha1.OpportunisticScaler
		if err := c.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: "worker"}, &s); err != nil {
			return false, err
		}
		if len(list.Items) != 1 || list.Items[0].Value.Value() != 146 || s.Status.DesiredReplicas != 146 {
			return false, fmt.Errorf("external %+v, status desired %d", list.Items, s.Status.DesiredReplicas)
		}
		return true, nil
	})

	// Nobody is let in without credentials.
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 5 * time.Second}
	resp, err := insecure.Get(fmt.Sprintf("https://127.0.0.1:%d/apis/custom.metrics.k8s.io/v1beta2/namespaces/%s/services/cluster-metrics/cpu_capacity_remaining", port, ns))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		t.Errorf("an anonymous request got %d, want 401 or 403", resp.StatusCode)
	}
}

// burst is a paid load: the sample app's replica counts over time.
type burst struct {
	program []struct {
		at       time.Duration
		replicas int32
	}
	length time.Duration
}

// recordedBurst is the paid load of the HPA recordings (make record): the
// sample app at 2, then 17 from 60 s, back to 2 from 180 s, until 300 s.
var recordedBurst = burst{program: []struct {
	at       time.Duration
	replicas int32
}{{0, 2}, {60 * time.Second, 17}, {180 * time.Second, 2}}, length: 300 * time.Second}

// shortBurst is the same load in CI: 2, 17 from 15 s, 2 from 35 s, until 50 s.
var shortBurst = burst{program: []struct {
	at       time.Duration
	replicas int32
}{{0, 2}, {15 * time.Second, 17}, {35 * time.Second, 2}}, length: 50 * time.Second}

// recording reports whether the long recordings run: `make record` sets
// OPPORTUNIST_E2E_RECORD; CI does not.
func recording() bool { return os.Getenv("OPPORTUNIST_E2E_RECORD") != "" }

// idealWorkers is what fits under 30 cores of headroom: 184 - 30 other paid
// cores - 4 per sample app replica - 30.
func idealWorkers(sample int32) int32 { return 184 - 30 - 4*sample - 30 }

// recordBurst plays b and samples the worker's spec.replicas each second
// into a CSV in the test's folder; it returns the samples.
func recordBurst(t *testing.T, ns string, b burst) []burstSample {
	t.Helper()
	var samples []burstSample
	start := time.Now()
	step := 0
	for tick := time.Duration(0); tick <= b.length; tick += time.Second {
		time.Sleep(time.Until(start.Add(tick)))
		for step < len(b.program) && b.program[step].at <= tick {
			scaleDeployment(t, ns, "sample-metrics-app", b.program[step].replicas)
			step++
		}
		sample := b.program[step-1].replicas
		workers, err := deploymentReplicas(context.Background(), ns, "worker")
		if err != nil {
			t.Fatal(err)
		}
		samples = append(samples, burstSample{T: tick, Sample: sample, Ideal: idealWorkers(sample), Workers: workers})
	}
	var csv strings.Builder
	csv.WriteString("time_s,sample_app_replicas,ideal_worker_replicas,worker_replicas\n")
	for _, s := range samples {
		fmt.Fprintf(&csv, "%d,%d,%d,%d\n", int(s.T.Seconds()), s.Sample, s.Ideal, s.Workers)
	}
	path := filepath.Join(testDir(t), "replicas.csv")
	if err := os.WriteFile(path, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("replica counts over time written to %s", path)
	return samples
}

type burstSample struct {
	T                      time.Duration
	Sample, Ideal, Workers int32
}

// summarize counts direction changes of the worker count and its mean
// distance from the ideal.
func summarize(samples []burstSample) (changes int, meanDistance float64) {
	last := 0
	var prev int32 = -1
	for _, s := range samples {
		if prev >= 0 && s.Workers != prev {
			dir := 1
			if s.Workers < prev {
				dir = -1
			}
			if dir != last {
				changes++
				last = dir
			}
		}
		prev = s.Workers
		d := s.Workers - s.Ideal
		if d < 0 {
			d = -d
		}
		meanDistance += float64(d)
	}
	return changes, meanDistance / float64(len(samples))
}

// hpaSetup is the seed run's cluster and paid load, and the worker with no
// OpportunisticScaler writing to it (scaler, when set, only in dryRun), and
// opportunist serving the metrics APIs to the aggregator.
func hpaSetup(t *testing.T, ns string, dryRunScaler bool) crclient.Client {
	c := hpaSeed(t, ns, dryRunScaler)
	port := freePort(t)
	startOpportunist(t, "--round-interval", "1s", "--metrics-api-port", strconv.Itoa(port))
	registerMetricsAPI(t, port)
	return c
}

// hpaSeed is hpaSetup without opportunist: the seed run's cluster, paid
// load and worker (at 15), and the scaler in dryRun when asked.
func hpaSeed(t *testing.T, ns string, dryRunScaler bool) crclient.Client {
	requireEmptyCluster(t)
	c := installCRD(t)
	seedCluster(t)
	createNamespace(t, ns)
	createPriorityClass(t, "e2e-paid", 1000, true)
	createPriorityClass(t, "e2e-opportunistic", -10, false)
	createDeployment(t, ns, "other-services", DeploymentSpec{Replicas: 15, Requests: requests("cpu", "2", "memory", "1Gi"), PriorityClass: "e2e-paid"})
	createDeployment(t, ns, "sample-metrics-app", DeploymentSpec{Replicas: 2, Requests: requests("cpu", "4", "memory", "1Gi"), PriorityClass: "e2e-paid"})
	createDeployment(t, ns, "worker", DeploymentSpec{Replicas: 15, Requests: requests("cpu", "1", "memory", "64Mi"), PriorityClass: "e2e-opportunistic"})
	waitForRunningPods(t, ns, "other-services", 15)
	waitForRunningPods(t, ns, "sample-metrics-app", 2)
	if dryRunScaler {
		s := scalerFor(ns, "worker", "worker", 15, 150, map[corev1.ResourceName]v1alpha1.HeadroomValue{"cpu": "30"})
		s.Spec.DryRun = true
		s.Spec.Behavior.ScaleUp.StabilizationWindowSeconds = int32p(0) // the HPA stabilises; the answer must be current
		createScaler(t, c, s)
	}
	return c
}

func createHPA(t *testing.T, hpa *autoscalingv2.HorizontalPodAutoscaler) {
	t.Helper()
	if _, err := client.AutoscalingV2().HorizontalPodAutoscalers(hpa.Namespace).Create(context.Background(), hpa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating HPA %s: %v", hpa.Name, err)
	}
}

// TestHPAExternalDesiredReplicas: an HPA following the External metric
// opportunist_desired_replicas with AverageValue 1 (the controller in dryRun
// computes, only the HPA writes) reaches the ideal count within two HPA sync
// periods of each change, and does not oscillate. CI plays a 50 s burst;
// `make record` the 5-minute one that docs/hpa.md shows.
func TestHPAExternalDesiredReplicas(t *testing.T) {
	ns := "e2e-hpa-external"
	hpaSetup(t, ns, true)
	zero, one := int32(0), int32(1)
	fast := &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &zero, Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 1000, PeriodSeconds: one}}}
	createHPA(t, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "worker"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "worker"},
			MinReplicas:    int32p(15),
			MaxReplicas:    150,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: "opportunist_desired_replicas", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"scaler": "worker"}}},
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewQuantity(1, resource.DecimalSI)},
			}}},
			// The controller already stabilises: the HPA only follows.
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: fast, ScaleDown: fast},
		},
	})
	waitForReplicas(t, 60*time.Second, ns, "worker", idealWorkers(2), 1)
	b := shortBurst
	if recording() {
		b = recordedBurst
	}
	samples := recordBurst(t, ns, b)
	changes, distance := summarize(samples)
	t.Logf("external-metric HPA over %s: %d direction changes, mean distance from the ideal count %.1f replicas", b.length, changes, distance)
	if changes > 2 {
		t.Errorf("the worker count changed direction %d times for a load that changed direction twice", changes)
	}
	// Within two HPA sync periods (2 s each here) plus one sample of each
	// change, the count is ideal ±1, and it stays there until the next change.
	const settle = 2*2*time.Second + time.Second
	for _, s := range samples {
		sinceChange := s.T
		for _, p := range b.program {
			if p.at <= s.T {
				sinceChange = s.T - p.at
			}
		}
		if sinceChange > settle && (s.Workers < s.Ideal-1 || s.Workers > s.Ideal+1) {
			t.Errorf("at %s (%s after the last change) the worker count is %d, want %d±1", s.T, sinceChange, s.Workers, s.Ideal)
		}
	}
}

// TestMetricsAPIAuth: the metrics APIs let in only whom RBAC allows, called
// directly and through the aggregator. A request without credentials is
// authenticated as system:anonymous (anonymous auth is on by default in the
// API server and in the delegating authenticator) and refused by RBAC (403);
// bad credentials are refused before that (401); a ServiceAccount without
// bindings gets 403; one bound to a role reading the metrics APIs gets 200.
func TestMetricsAPIAuth(t *testing.T) {
	requireEmptyCluster(t)
	ns := "e2e-metricsapi-auth"
	createNamespace(t, ns)
	createNode(t, "auth-1", NodeShape{CPU: "8", Memory: "16Gi"})
	port := freePort(t)
	startOpportunist(t, "--metrics-api-port", strconv.Itoa(port), "--controller=false")
	registerMetricsAPI(t, port)
	nobody := serviceAccount(t, ns, "nobody")
	reader := serviceAccount(t, ns, "reader")
	grantMetricsReader(t, ns, "reader")

	paths := []string{
		"/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/services/cluster-metrics/cpu_capacity_remaining",
		"/apis/external.metrics.k8s.io/v1beta1/namespaces/" + ns + "/cpu_capacity_remaining",
	}
	callers := []struct {
		name, token string
		code        int
		says        string // in the answer's body
	}{
		{"no credentials", "", http.StatusForbidden, `User \"system:anonymous\" cannot `},
		{"a bad token", "not-a-token", http.StatusUnauthorized, `"reason":"Unauthorized"`},
		{"a ServiceAccount without RBAC", nobody, http.StatusForbidden, `User \"system:serviceaccount:` + ns + `:nobody\" cannot `},
		{"a ServiceAccount allowed by RBAC", reader, http.StatusOK, `"value":"8`}, // 8 cores free: 8k (milli) or 8
	}
	for _, via := range []struct{ name, base string }{{"directly", fmt.Sprintf("https://127.0.0.1:%d", port)}, {"through the aggregator", apiServerURL(t)}} {
		for _, p := range paths {
			for _, who := range callers {
				code, body := getAs(t, via.base+p, who.token)
				if code != who.code || !strings.Contains(string(body), who.says) {
					t.Errorf("%s, %s: GET %s -> %d %s; want %d with %s", via.name, who.name, p, code, body, who.code, who.says)
				}
				if code != http.StatusOK && strings.Contains(string(body), `"value"`) {
					t.Errorf("%s, %s: a refused answer carries a value: %s", via.name, who.name, body)
				}
			}
		}
	}
}

// getAs GETs url with a bearer token (none when empty), trusting any
// server certificate: what is under test is who gets in.
func getAs(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// grantMetricsReader lets ServiceAccount ns/sa read both metrics APIs.
func grantMetricsReader(t *testing.T, ns, sa string) {
	t.Helper()
	ctx := context.Background()
	name := "e2e-" + ns + "-" + sa
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"custom.metrics.k8s.io", "external.metrics.k8s.io"}, Resources: []string{"*"}, Verbs: []string{"get", "list"}}}}
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}}
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = client.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
	})
}

// waitForAPIServiceAvailable waits until the aggregator's availability
// controller reports the APIService Available, failing with its reason.
func waitForAPIServiceAvailable(t *testing.T, dyn dynamic.Interface, name string) {
	t.Helper()
	waitFor(t, 30*time.Second, "APIService "+name+" to be Available", func(ctx context.Context) (bool, error) {
		return apiServiceAvailable(ctx, dyn, name)
	})
}

// apiServiceAvailable reports whether the APIService's Available condition
// is True; when it is False, the error carries its reason and message.
func apiServiceAvailable(ctx context.Context, dyn dynamic.Interface, name string) (bool, error) {
	obj, err := dyn.Resource(apiServiceGVR).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Available" {
			if m["status"] == "True" {
				return true, nil
			}
			return false, fmt.Errorf("%v: %v", m["reason"], m["message"])
		}
	}
	return false, nil
}
