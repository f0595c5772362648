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
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/opportunist/opportunist/api/v1alpha1"
)

// The release the rendered manifests describe (make manifests).
const (
	releaseNamespace = "opportunist"
	releaseAccount   = "opportunist"
	// installTargetNS is where test/e2e/testdata/install-values.yaml grants
	// scale writes on the Deployment "worker", and nothing else.
	installTargetNS = "e2e-install"
)

// helmTemplate renders the chart as the release "opportunist" in namespace
// "opportunist", with helm run from its Go module (hack/tools) as make does:
// about a second once `make lint` has built it, a minute the very first time.
func helmTemplate(t *testing.T, args ...string) []manifestObject {
	t.Helper()
	cmd := exec.Command("go", append([]string{"tool", "-modfile=hack/tools/go.mod", "helm", "template", "opportunist", "charts/opportunist",
		"--namespace", releaseNamespace, "--include-crds"}, args...)...)
	cmd.Dir = repoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	t.Logf("helm template %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return decodeManifest(t, "helm template "+strings.Join(args, " "), out)
}

// deploymentArgs are the flags the rendered Deployment gives opportunist,
// with what a local process must change: its own listen address (given by
// startOpportunist), and the values of the flags in replace (a free port for
// the metrics APIs, certificate files on this machine).
func deploymentArgs(t *testing.T, d manifestObject, replace map[string]string) []string {
	t.Helper()
	var dep appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(d.obj.Object, &dep); err != nil {
		t.Fatalf("%s: %v", d, err)
	}
	args := dep.Spec.Template.Spec.Containers[0].Args
	if len(args) == 0 || args[0] != "run" {
		t.Fatalf("%s: container args %q do not start with run", d, args)
	}
	var out []string
	seen := map[string]bool{}
	for _, a := range args[1:] {
		flag, _, _ := strings.Cut(a, "=")
		if v, ok := replace[flag]; ok {
			a, seen[flag] = flag+"="+v, true
		}
		if flag != "--listen-address" {
			out = append(out, a)
		}
	}
	for flag := range replace {
		if !seen[flag] {
			t.Fatalf("%s: no %s among its args %q", d, flag, args)
		}
	}
	return out
}

// hpaControllerClient acts as kube-controller-manager's HPA controller
// (impersonated), whose bootstrap role may read the metrics APIs.
func hpaControllerClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

// hpaMetricValue reads the one value of a metrics API path with c.
func hpaMetricValue(t *testing.T, c kubernetes.Interface, path, labelSelector string) int64 {
	t.Helper()
	req := c.Discovery().RESTClient().Get().AbsPath(path)
	if labelSelector != "" {
		req = req.Param("labelSelector", labelSelector)
	}
	body, err := req.Do(context.Background()).Raw()
	if err != nil {
		t.Fatalf("GET %s as the HPA controller: %v", path, err)
	}
	var list metricValueList
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("GET %s: %d items, want 1: %s", path, len(list.Items), body)
	}
	return list.Items[0].Value.Value()
}

// TestInstall applies the rendered manifests to the real API server, runs the
// controller as a local process with nothing but the chart's ServiceAccount
// credentials and the Deployment's flags, and checks it does its whole job
// and is refused what its role does not grant.
func TestInstall(t *testing.T) {
	requireEmptyCluster(t)
	c := installCRD(t)
	chartCRD, err := os.ReadFile(filepath.Join(repoRoot, "charts", "opportunist", "crds", "opportunist.io_opportunisticscalers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	configCRD, err := os.ReadFile(filepath.Join(repoRoot, "config", "crd", "opportunist.io_opportunisticscalers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(chartCRD, configCRD) {
		t.Fatal("charts/opportunist/crds differs from config/crd: run make manifests")
	}
	createNamespace(t, installTargetNS) // the scale grant's Role lives there

	// (a) Every object of every rendering applies: the plain install, the one
	// with the metrics APIs, and the test's (the latter plus one scale grant).
	a := newApplier(t, "e2e-install")
	start := time.Now()
	plain := readManifest(t, "deploy/opportunist.yaml")
	withAPI := readManifest(t, "deploy/opportunist-metrics-api.yaml")
	install := readManifest(t, "test/e2e/testdata/install.yaml")
	// The test's rendering names every object of the other two, and the same
	// field manager applies it last: what is in force below is exactly it.
	names := map[string]bool{}
	for _, m := range install {
		names[m.key()] = true
	}
	for _, m := range append(plain, withAPI...) {
		if !names[m.key()] {
			t.Fatalf("%s is not in test/e2e/testdata/install.yaml: the test would run with more than that file grants", m)
		}
	}
	for _, objs := range [][]manifestObject{plain, withAPI, install} {
		a.apply(t, objs)
		t.Logf("server-side applied the %d objects of %s in %s", len(objs), objs[0].file, time.Since(start).Round(time.Millisecond))
		start = time.Now()
	}
	// The APIServices point at a Service with no pods here; an unavailable
	// aggregated API would disturb discovery for everyone, so they go now.
	for _, m := range find(install, "APIService") {
		a.remove(t, m)
	}
	// The Deployment is admitted down to its pods (priority class, account,
	// security context); then it goes, as the local process plays its part.
	deps := find(install, "Deployment")
	if len(deps) != 1 {
		t.Fatalf("test/e2e/testdata/install.yaml holds %d Deployments, want 1", len(deps))
	}
	// (Three renderings in a row roll it out three times: there may be more
	// than two pods, all Pending as no node exists yet.)
	waitFor(t, 30*time.Second, "the chart's Deployment to create its pods at the controller's priority", func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(releaseNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		if len(pods.Items) < 2 {
			return false, fmt.Errorf("%d pods", len(pods.Items))
		}
		for _, p := range pods.Items {
			if p.Spec.Priority == nil || *p.Spec.Priority != 100000000 || p.Spec.ServiceAccountName != releaseAccount {
				return false, fmt.Errorf("pod %s: priority %v, account %s", p.Name, ptrVal(p.Spec.Priority), p.Spec.ServiceAccountName)
			}
		}
		return true, nil
	})
	a.remove(t, deps[0])
	waitFor(t, 30*time.Second, "the chart's pods to be gone", func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(releaseNamespace).List(ctx, metav1.ListOptions{})
		return err == nil && len(pods.Items) == 0, err
	})

	// (b) The controller, with the ServiceAccount's token and the
	// Deployment's flags (leader election in the release namespace, the
	// metrics APIs on).
	saConfig, sa := serviceAccountKubeconfig(t, releaseNamespace, releaseAccount)
	createNode(t, "install-1", NodeShape{CPU: "8", Memory: "16Gi", Pods: 110})
	createNode(t, "install-2", NodeShape{CPU: "8", Memory: "16Gi", Pods: 110})
	createDeployment(t, installTargetNS, "paid", DeploymentSpec{Replicas: 2, Requests: requests("cpu", "1", "memory", "1Gi")})
	createDeployment(t, installTargetNS, "worker", DeploymentSpec{Replicas: 1, Requests: requests("cpu", "1", "memory", "64Mi"), PriorityClass: "opportunistic"})
	createDeployment(t, installTargetNS, "unscaled", DeploymentSpec{Replicas: 1, Requests: requests("cpu", "100m")})
	waitForRunningPods(t, installTargetNS, "paid", 2)
	waitForRunningPods(t, installTargetNS, "worker", 1)
	waitForRunningPods(t, installTargetNS, "unscaled", 1)

	port := freePort(t)
	args := deploymentArgs(t, deps[0], map[string]string{"--metrics-api-port": strconv.Itoa(port)})
	t.Logf("opportunist run %s (as ServiceAccount %s/%s)", strings.Join(args, " "), releaseNamespace, releaseAccount)
	o := startOpportunist(t, append([]string{"--kubeconfig", saConfig}, args...)...)

	// Capacity: 16 cores, 2 paid + 1 worker + 0.1 unscaled requested.
	const memKi = 2 * 16 * 1024 * 1024
	o.waitForMetrics(t, 10*time.Second, map[string]float64{
		"cpu_allocatable_total": 16000, "cpu_requests_total": 3100, "cpu_capacity_remaining": 12900,
		"mem_allocatable_total": memKi, "pod_allocatable_total": 220,
	})

	// A scaler of the granted worker: (16 - 4 headroom - 2.1 paid) / 1 core = 9.
	createScaler(t, c, scalerFor(installTargetNS, "worker", "worker", 1, 20, map[corev1.ResourceName]v1alpha1.HeadroomValue{"cpu": "4"}))
	took := waitForReplicas(t, 30*time.Second, installTargetNS, "worker", 9, 0)
	t.Logf("the worker was scaled from 1 to 9 in %s", took.Round(time.Millisecond))
	waitFor(t, 10*time.Second, "the scaler's status", func(ctx context.Context) (bool, error) {
		var s v1alpha1.OpportunisticScaler
		if err := c.Get(ctx, crclient.ObjectKey{Namespace: installTargetNS, Name: "worker"}, &s); err != nil {
			return false, err
		}
		if s.Status.DesiredReplicas != 9 || s.Status.LastScaleTime == nil {
			return false, fmt.Errorf("status %+v", s.Status)
		}
		return true, nil
	})
	waitFor(t, 10*time.Second, "a Scaled Event on the scaler", func(ctx context.Context) (bool, error) {
		evs, err := client.EventsV1().Events(installTargetNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Regarding.Kind == "OpportunisticScaler" && e.Regarding.Name == "worker" && e.Reason == "Scaled" {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d events, none Scaled on the scaler", len(evs.Items))
	})
	lease, err := client.CoordinationV1().Leases(releaseNamespace).Get(context.Background(), "opportunist-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the leader election Lease: %v", err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Fatalf("Lease %s/opportunist-controller has no holder", releaseNamespace)
	}

	// The metrics APIs, through the aggregator, asked as the HPA controller
	// asks (not as an admin, whom the delegated authorizer lets through
	// unchecked): our server trusts the aggregator through the front proxy's
	// CA (auth-reader binding) and authorizes the HPA with a
	// SubjectAccessReview (auth-delegator binding), on the account's grants.
	waitForRunningPods(t, installTargetNS, "worker", 9) // bound, so counted in the numbers below
	registerMetricsAPI(t, port)
	hpa := hpaControllerClient(t)
	if got := hpaMetricValue(t, hpa, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+installTargetNS+"/services/cluster-metrics/cpu_capacity_remaining", ""); got != 16000-2100-9000 {
		t.Errorf("cpu_capacity_remaining through the custom metrics API = %d, want %d", got, 16000-2100-9000)
	}
	if got := hpaMetricValue(t, hpa, "/apis/external.metrics.k8s.io/v1beta1/namespaces/"+installTargetNS+"/opportunist_desired_replicas", "scaler=worker"); got != 9 {
		t.Errorf("opportunist_desired_replicas through the external metrics API = %d, want 9", got)
	}

	// (c) Refused what the role does not grant.
	ctx := context.Background()
	if _, err := sa.CoreV1().Secrets(releaseNamespace).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing Secrets in %s as the ServiceAccount: %v, want Forbidden", releaseNamespace, err)
	}
	if _, err := sa.CoreV1().Secrets("kube-system").Get(ctx, "any", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("reading a Secret in kube-system as the ServiceAccount: %v, want Forbidden", err)
	}
	// The demand histories' ConfigMaps: the release namespace only.
	if _, err := sa.CoreV1().ConfigMaps(releaseNamespace).List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("listing ConfigMaps in %s (the demand histories) as the ServiceAccount: %v", releaseNamespace, err)
	}
	if _, err := sa.CoreV1().ConfigMaps(installTargetNS).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing ConfigMaps in %s as the ServiceAccount: %v, want Forbidden", installTargetNS, err)
	}
	sc, err := sa.AppsV1().Deployments(installTargetNS).GetScale(ctx, "unscaled", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading /scale of a Deployment (granted read-only everywhere): %v", err)
	}
	sc.Spec.Replicas = 5
	if _, err := sa.AppsV1().Deployments(installTargetNS).UpdateScale(ctx, "unscaled", sc, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("scaling Deployment %s/unscaled (no scaler, no grant) through /scale: %v, want Forbidden", installTargetNS, err)
	}
	patch := []byte(`{"spec":{"replicas":5}}`)
	if _, err := sa.AppsV1().Deployments(installTargetNS).Patch(ctx, "worker", types.MergePatchType, patch, metav1.PatchOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("patching Deployment %s/worker itself (only its /scale is granted): %v, want Forbidden", installTargetNS, err)
	}
	if got, err := deploymentReplicas(ctx, installTargetNS, "unscaled"); err != nil || got != 1 {
		t.Errorf("Deployment %s/unscaled has %d replicas (%v), want 1", installTargetNS, got, err)
	}
	checkReclaimGrants(t, sa)
}

// checkReclaimGrants: reclaim.enabled grants exactly patch on nodes/status
// (used: a merge patch of the extended resource, done here with the
// account's token), create on pods/eviction (not delete on pods) and list
// on metrics.k8s.io pods and nodes, nothing more of any; and a rendering
// without it grants none of them.
func checkReclaimGrants(t *testing.T, sa kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	patch := []byte(`{"status":{"capacity":{"opportunist.io/reclaimable-cpu":"0"},"allocatable":{"opportunist.io/reclaimable-cpu":"0"}}}`)
	if _, err := sa.CoreV1().Nodes().Patch(ctx, "install-1", types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Errorf("patching nodes/status as the ServiceAccount (reclaim.enabled grants it): %v", err)
	}
	if _, err := sa.CoreV1().Nodes().Patch(ctx, "install-1", types.MergePatchType, []byte(`{"metadata":{"labels":{"e2e":"x"}}}`), metav1.PatchOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("patching a node itself as the ServiceAccount: %v, want Forbidden (only nodes/status)", err)
	}
	user := "system:serviceaccount:" + releaseNamespace + ":" + releaseAccount
	for _, c := range []struct {
		group, resource, sub, verb string
		want                       bool
	}{
		{"", "nodes", "status", "patch", true},
		{"metrics.k8s.io", "pods", "", "list", true},
		{"metrics.k8s.io", "nodes", "", "list", true},
		{"", "pods", "eviction", "create", true},
		{"", "pods", "", "delete", false},
		{"", "pods", "eviction", "get", false},
		{"", "nodes", "status", "update", false},
		{"", "nodes", "", "delete", false},
		{"metrics.k8s.io", "pods", "", "get", false},
		{"metrics.k8s.io", "pods", "", "watch", false},
	} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Group: c.group, Resource: c.resource, Subresource: c.sub, Verb: c.verb}}}
		got, err := client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Allowed != c.want {
			t.Errorf("%s %s.%s/%s as %s: allowed %t, want %t", c.verb, c.resource, c.group, c.sub, user, got.Status.Allowed, c.want)
		}
	}
	for _, m := range find(helmTemplate(t), "ClusterRole") {
		text, _ := json.Marshal(m.obj.Object["rules"])
		if strings.Contains(string(text), "nodes/status") || strings.Contains(string(text), "pods/eviction") || strings.Contains(string(text), "metrics.k8s.io") {
			t.Errorf("the default rendering's %s grants reclaim's permissions: %s", m, text)
		}
	}
}

// TestInstallChartCertificates installs the chart with a CI values file whose
// metrics APIs use the certificate Helm generates, and shows the aggregator
// verifies it: the APIServices carry only a caBundle (no
// insecureSkipTLSVerify), and become Available with opportunist serving the
// Secret's certificate under the Service's name.
func TestInstallChartCertificates(t *testing.T) {
	requireEmptyCluster(t)
	installCRD(t)
	createNode(t, "certs-1", NodeShape{CPU: "4", Memory: "8Gi"})
	// The CI values grant scale writes in these namespaces.
	createNamespace(t, "batch")
	createNamespace(t, "ci")
	port := freePort(t)
	// The local aggregator reaches a local process through an ExternalName
	// Service "localhost" on the APIService's port: that port is ours.
	objs := helmTemplate(t, "-f", "charts/opportunist/ci/metrics-api-chart-certs-values.yaml",
		"--set", "createNamespace=true", "--set", "metricsApi.servicePort="+strconv.Itoa(port))
	a := newApplier(t, "e2e-install")
	a.apply(t, objs)

	apis := find(objs, "APIService")
	if len(apis) != 3 {
		t.Fatalf("%d APIServices rendered, want 3", len(apis))
	}
	for _, m := range apis {
		if skip, _, _ := unstructured.NestedBool(m.obj.Object, "spec", "insecureSkipTLSVerify"); skip {
			t.Fatalf("%s skips TLS verification", m)
		}
		if ca, _, _ := unstructured.NestedString(m.obj.Object, "spec", "caBundle"); ca == "" {
			t.Fatalf("%s has no caBundle", m)
		}
	}
	deps, svcs, secrets := find(objs, "Deployment"), find(objs, "Service"), find(objs, "Secret")
	if len(deps) != 1 || len(svcs) != 1 || len(secrets) != 1 {
		t.Fatalf("rendered %d Deployments, %d Services, %d Secrets; want 1 of each", len(deps), len(svcs), len(secrets))
	}
	a.remove(t, deps[0]) // the local process plays its part
	a.remove(t, svcs[0])
	ext := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: svcs[0].obj.GetName(), Namespace: releaseNamespace},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(port), Protocol: corev1.ProtocolTCP}}},
	}
	waitFor(t, 30*time.Second, "the chart's Service to be replaced by an ExternalName one", func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Services(releaseNamespace).Create(ctx, ext, metav1.CreateOptions{})
		return err == nil, err
	})

	// The serving certificate and key, from the Secret the chart made, where
	// the pod would have them mounted.
	var secret corev1.Secret
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(secrets[0].obj.Object, &secret); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{"tls.crt", "tls.key"} {
		if len(secret.Data[f]) == 0 {
			t.Fatalf("%s has no %s", secrets[0], f)
		}
		if err := os.WriteFile(filepath.Join(dir, f), secret.Data[f], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	saConfig, _ := serviceAccountKubeconfig(t, releaseNamespace, releaseAccount)
	args := deploymentArgs(t, deps[0], map[string]string{
		"--metrics-api-port":                 strconv.Itoa(port),
		"--metrics-api-tls-cert-file":        filepath.Join(dir, "tls.crt"),
		"--metrics-api-tls-private-key-file": filepath.Join(dir, "tls.key"),
	})
	startOpportunist(t, append([]string{"--kubeconfig", saConfig}, args...)...)

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 100, 200 // polled every 50 ms
	dyn := dynamic.NewForConfigOrDie(cfg)
	start := time.Now()
	for _, m := range apis {
		waitForAPIServiceAvailable(t, dyn, m.obj.GetName()) // over verified TLS: caBundle only
	}
	t.Logf("the 3 APIServices were Available %s after opportunist was ready", time.Since(start).Round(time.Millisecond))
	// Available is the availability controller's verdict; the aggregator's
	// proxy learns of the APIService on its own watch, a moment apart (a
	// 503 was seen once right after another test's APIServices of the same
	// names were deleted).
	hpa := hpaControllerClient(t)
	path := "/apis/custom.metrics.k8s.io/v1beta1/namespaces/batch/services/cluster-metrics/cpu_allocatable_total"
	waitFor(t, 10*time.Second, "cpu_allocatable_total through the custom metrics API to read 4000", func(ctx context.Context) (bool, error) {
		body, err := hpa.Discovery().RESTClient().Get().AbsPath(path).Do(ctx).Raw()
		if err != nil {
			return false, err
		}
		var list metricValueList
		if err := json.Unmarshal(body, &list); err != nil {
			return false, err
		}
		if len(list.Items) != 1 || list.Items[0].Value.Value() != 4000 {
			return false, fmt.Errorf("got %s", body)
		}
		return true, nil
	})
}

// TestChartKeepsAnAPIServiceItDoesNotHold: where KEDA (or prometheus-adapter)
// serves external.metrics.k8s.io, installing the chart with the metrics APIs
// must fail with one message naming the APIService, the Service holding it
// and what to do, not replace it; with metricsApi.externalMetrics=false it
// renders only the custom metrics APIs; an APIService the release itself
// holds (an upgrade) is not a conflict.
func TestChartKeepsAnAPIServiceItDoesNotHold(t *testing.T) {
	const name = "v1beta1.external.metrics.k8s.io"
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	apis := dynamic.NewForConfigOrDie(cfg).Resource(apiServiceGVR)
	ctx := context.Background()
	if _, err := apis.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("APIService %s already exists (err %v); a previous test left it", name, err)
	}
	held := func(namespace, service string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
			"metadata": map[string]any{"name": name},
			"spec": map[string]any{
				"group": "external.metrics.k8s.io", "version": "v1beta1",
				"service":               map[string]any{"namespace": namespace, "name": service, "port": int64(443)},
				"insecureSkipTLSVerify": true, "groupPriorityMinimum": int64(100), "versionPriority": int64(100),
			},
		}}
	}
	if _, err := apis.Create(ctx, held("keda", "keda-operator-metrics-apiserver"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := apis.Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting APIService %s: %v", name, err)
		}
	})

	// helm looks at the cluster under install and upgrade; template does with
	// --dry-run=server, which is what this runs (nothing is applied).
	render := func(args ...string) (string, error) {
		cmd := exec.Command("go", append([]string{"tool", "-modfile=hack/tools/go.mod", "helm", "template", "opportunist", "charts/opportunist",
			"--namespace", releaseNamespace, "--dry-run=server", "--kubeconfig", kubeconfig,
			"--set", "metricsApi.enabled=true", "--set", "metricsApi.certificates=self-signed"}, args...)...)
		cmd.Dir = repoRoot
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return stderr.String(), err
		}
		return string(out), nil
	}
	msg, err := render()
	if err == nil {
		t.Fatalf("the chart rendered over KEDA's %s:\n%s", name, lastLines(msg, 20))
	}
	// One line says it all (helm template adds a hint about --debug below).
	line, _, _ := strings.Cut(strings.TrimSpace(msg), "\n")
	for _, want := range []string{name, "keda/keda-operator-metrics-apiserver", "metricsApi.externalMetrics=false"} {
		if !strings.Contains(line, want) {
			t.Errorf("the refusal's first line does not say %q:\n%s", want, msg)
		}
	}
	t.Logf("refused: %s", line)

	out, err := render("--set", "metricsApi.externalMetrics=false")
	if err != nil {
		t.Fatalf("with metricsApi.externalMetrics=false: %v\n%s", err, out)
	}
	objs := decodeManifest(t, "helm template --set metricsApi.externalMetrics=false", []byte(out))
	var names []string
	for _, a := range find(objs, "APIService") {
		names = append(names, a.obj.GetName())
	}
	if want := []string{"v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"}; strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("with metricsApi.externalMetrics=false the chart registers %v, want %v", names, want)
	}

	// The release's own APIService (an upgrade) is not a conflict.
	current, err := apis.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	own := held(releaseNamespace, "opportunist")
	own.SetResourceVersion(current.GetResourceVersion())
	if _, err := apis.Update(ctx, own, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := render(); err != nil {
		t.Fatalf("over the release's own %s: %v\n%s", name, err, out)
	} else if n := len(find(decodeManifest(t, "helm template", []byte(out)), "APIService")); n != 3 {
		t.Errorf("over the release's own %s the chart registers %d APIServices, want 3", name, n)
	}
}
