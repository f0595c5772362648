//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

// KEDA in the end-to-end suite: its operator and its metrics server (the
// adapter, serving external.metrics.k8s.io) run as local processes next to
// opportunist, from binaries hack/cluster builds from KEDA's module at a
// pinned version and caches (`make keda` builds them ahead: several minutes
// the first time). KEDA's CRDs come from that module. Everything talks over
// loopback: KEDA reaches opportunist and its own metrics server on
// 127.0.0.1, and the aggregator reaches the adapter through an ExternalName
// `localhost` Service, as it reaches opportunist's metrics API.

const kedaNamespace = "keda"

var scaledObjectGVR = schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}

var kedaBuild struct {
	once      sync.Once
	bin, crds string
	err       error
}

// kedaPaths returns the directories of KEDA's binaries and CRDs, building
// the binaries first when hack/cluster's cache does not have them.
func kedaPaths(t *testing.T) (bin, crds string) {
	t.Helper()
	kedaBuild.once.Do(func() {
		start := time.Now()
		cmd := exec.Command("go", "run", "./hack/cluster", "keda")
		cmd.Dir = repoRoot
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			kedaBuild.err = fmt.Errorf("building KEDA (go run ./hack/cluster keda): %v\n%s", err, stderr.String())
			return
		}
		if stderr.Len() > 0 { // it built them: say how long that took
			t.Logf("%s(go run ./hack/cluster keda took %s)", stderr.String(), time.Since(start).Round(time.Second))
		}
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "export KEDA_BIN="); ok {
				kedaBuild.bin = strings.Trim(v, "'")
			}
			if v, ok := strings.CutPrefix(line, "export KEDA_CRDS="); ok {
				kedaBuild.crds = strings.Trim(v, "'")
			}
		}
		if kedaBuild.bin == "" || kedaBuild.crds == "" {
			kedaBuild.err = fmt.Errorf("go run ./hack/cluster keda printed no KEDA_BIN or KEDA_CRDS:\n%s", out)
		}
	})
	if kedaBuild.err != nil {
		t.Fatal(kedaBuild.err)
	}
	return kedaBuild.bin, kedaBuild.crds
}

// kedaProcess is a running KEDA binary.
type kedaProcess struct {
	name, logPath string
	cmd           *exec.Cmd
	done          chan struct{}
}

func startKEDAProcess(t *testing.T, bin, name string, env []string, args ...string) *kedaProcess {
	t.Helper()
	logPath := filepath.Join(testDir(t), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &kedaProcess{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("== %s log (%s), last 30 lines\n%s", name, logPath, tail(logPath, 30))
		}
	})
	return p
}

// exited fails the wait it is called in when the process has ended.
func (p *kedaProcess) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %s", p.name, tail(p.logPath, 5))
	default:
		return nil
	}
}

// writeKEDACerts writes the certificates of the operator's gRPC metrics
// service and its client, the adapter, into dir as KEDA reads them
// (ca.crt, tls.crt, tls.key): both sides use the one certificate, and each
// requires the other's to be signed by ca.crt. It is valid for localhost,
// the authority the adapter is told to expect.
func writeKEDACerts(t *testing.T, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e KEDA CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(2 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(2 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ca.crt":  {Type: "CERTIFICATE", Bytes: caDER},
		"tls.crt": {Type: "CERTIFICATE", Bytes: der},
		"tls.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// startKEDA installs KEDA's CRDs, runs its operator and metrics server and
// registers the metrics server as v1beta1.external.metrics.k8s.io, waiting
// until the aggregator finds it Available. All of it goes when the test
// ends (the CRDs stay, as opportunist's do).
func startKEDA(t *testing.T) {
	t.Helper()
	bin, crds := kedaPaths(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ext := apiextensionsclient.NewForConfigOrDie(cfg)
	files, err := filepath.Glob(filepath.Join(crds, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s (%v)", crds, err)
	}
	for _, f := range files {
		applyCRD(t, ext, f)
	}
	createNamespace(t, kedaNamespace)

	certs := filepath.Join(testDir(t), "keda-certs")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		t.Fatal(err)
	}
	writeKEDACerts(t, certs)
	// Where KEDA looks for CAs its scalers trust (default /custom/ca): none.
	caDir := filepath.Join(testDir(t), "keda-ca")
	if err := os.MkdirAll(caDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// KEDA reads its namespace and where it keeps cluster objects from the
	// environment a pod would give it; WATCH_NAMESPACE empty is all.
	env := []string{"KUBECONFIG=" + kubeconfig, "POD_NAMESPACE=" + kedaNamespace, "KEDA_CLUSTER_OBJECT_NAMESPACE=" + kedaNamespace, "WATCH_NAMESPACE="}
	probe, metricsService := freeAddress(t), freeAddress(t)
	operator := startKEDAProcess(t, bin, "keda", env,
		"--metrics-bind-address", freeAddress(t),
		"--health-probe-bind-address", probe,
		"--metrics-service-bind-address", metricsService,
		// The certificates are ours: no rotation, no patching of webhooks
		// or the APIService (which would point the aggregator at a CA of
		// KEDA's making).
		"--cert-dir", certs, "--enable-cert-rotation=false",
		"--enable-webhook-patching=false", "--enable-apiservice-patching=false",
		"--ca-dir", caDir,
		"--zap-log-level=info", "--zap-encoder=console")
	waitFor(t, 60*time.Second, "the KEDA operator's /readyz", func(ctx context.Context) (bool, error) {
		if err := operator.exited(); err != nil {
			return false, err
		}
		code, _, err := httpGet(ctx, "http://"+probe+"/readyz")
		return code == http.StatusOK, err
	})

	// The metrics server: delegated authentication and authorization
	// through the cluster's kubeconfig, as opportunist's metrics API does,
	// and the operator's gRPC service on loopback with the certificate's
	// name as authority.
	securePort := freePort(t)
	adapter := startKEDAProcess(t, bin, "keda-adapter", env,
		"--secure-port", strconv.Itoa(securePort), "--bind-address", "127.0.0.1",
		"--cert-dir", certs, "--tls-cert-file", filepath.Join(certs, "tls.crt"), "--tls-private-key-file", filepath.Join(certs, "tls.key"),
		"--lister-kubeconfig", kubeconfig, "--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig,
		"--metrics-service-address", metricsService, "--metrics-service-grpc-authority", "localhost",
		"--port", strconv.Itoa(freePort(t)),
		"--zap-log-level=info", "--zap-encoder=console")

	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: kedaNamespace, Name: "keda-metrics-apiserver"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(securePort), Protocol: corev1.ProtocolTCP}}},
	}
	if _, err := client.CoreV1().Services(kedaNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const apiservice = "v1beta1.external.metrics.k8s.io"
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": apiservice},
		"spec": map[string]any{
			"group": "external.metrics.k8s.io", "version": "v1beta1",
			"service":               map[string]any{"namespace": kedaNamespace, "name": svc.Name, "port": int64(securePort)},
			"insecureSkipTLSVerify": true, "groupPriorityMinimum": int64(100), "versionPriority": int64(100),
		},
	}}
	if _, err := dyn.Resource(apiServiceGVR).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("registering KEDA's metrics server as %s: %v (a previous test left one?)", apiservice, err)
	}
	t.Cleanup(func() {
		if err := dyn.Resource(apiServiceGVR).Delete(context.Background(), apiservice, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting APIService %s: %v", apiservice, err)
		}
	})
	waitFor(t, 60*time.Second, "KEDA's metrics server to be Available as "+apiservice, func(ctx context.Context) (bool, error) {
		if err := adapter.exited(); err != nil {
			return false, err
		}
		return apiServiceAvailable(ctx, dyn, apiservice)
	})
}

// createScaledObject makes a ScaledObject of the worker Deployment with one
// trigger, as docs/keda.md shows (the HPA only follows: no stabilisation, no
// tolerance, any step in one go), and waits until KEDA reports it Ready. It is deleted, and
// waited for, before KEDA stops: KEDA's finalizer would hold the namespace.
func createScaledObject(t *testing.T, ns string, min, max int64, trigger map[string]any) {
	t.Helper()
	follow := map[string]any{
		"stabilizationWindowSeconds": int64(0),
		// Without it the HPA ignores a change under 10% of the count: it
		// rests at 108 when opportunist asks 116.
		"tolerance": "0",
		"policies":  []any{map[string]any{"type": "Percent", "value": int64(1000), "periodSeconds": int64(1)}},
	}
	createScaledObjectWith(t, ns, min, max, map[string]any{"scaleUp": follow, "scaleDown": follow}, trigger)
}

// createScaledObjectWith is createScaledObject with the HPA's behavior
// given; nil leaves it unset, as the write-up's HPA had it.
func createScaledObjectWith(t *testing.T, ns string, min, max int64, behavior, trigger map[string]any) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	res := dynamic.NewForConfigOrDie(cfg).Resource(scaledObjectGVR).Namespace(ns)
	spec := map[string]any{
		"scaleTargetRef":  map[string]any{"name": "worker"},
		"pollingInterval": int64(1),
		"minReplicaCount": min,
		"maxReplicaCount": max,
		"triggers":        []any{trigger},
	}
	if behavior != nil {
		spec["advanced"] = map[string]any{"horizontalPodAutoscalerConfig": map[string]any{"behavior": behavior}}
	}
	so := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"namespace": ns, "name": "worker"},
		"spec":     spec,
	}}
	ctx := context.Background()
	if _, err := res.Create(ctx, so, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ScaledObject %s/worker: %v", ns, err)
	}
	t.Cleanup(func() {
		_ = res.Delete(ctx, "worker", metav1.DeleteOptions{})
		waitFor(t, 30*time.Second, "KEDA to release ScaledObject "+ns+"/worker", func(ctx context.Context) (bool, error) {
			_, err := res.Get(ctx, "worker", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	})
	waitForScaledObjectReady(t, res, "worker")
}

// waitForScaledObjectReady waits until KEDA reports the ScaledObject Ready,
// failing early with KEDA's reason when it says False.
func waitForScaledObjectReady(t *testing.T, res dynamic.ResourceInterface, name string) {
	t.Helper()
	waitFor(t, 60*time.Second, "ScaledObject "+name+" to be Ready", func(ctx context.Context) (bool, error) {
		got, err := res.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == "Ready" {
				if m["status"] == "True" {
					return true, nil
				}
				return false, fmt.Errorf("%v: %v", m["reason"], m["message"])
			}
		}
		return false, nil
	})
}

// kedaSeedRun is the seed run (TestSeedRunWithPriorities' load: 184 cores,
// the sample app 2 -> 17 -> 2) with the worker scaled by KEDA's HPA on a
// trigger reading the dry-run OpportunisticScaler: it follows 116 -> 56 ->
// 116 (±1) and changes direction only as the load does.
func kedaSeedRun(t *testing.T, ns string, trigger func(o *Opportunist, scalerAddress string) map[string]any) {
	hpaSeed(t, ns, true)
	scalerAddress := freeAddress(t)
	o := startOpportunist(t, "--round-interval", "1s", "--keda-scaler-address", scalerAddress)
	start := time.Now()
	startKEDA(t)
	t.Logf("KEDA up (CRDs, operator, metrics server Available) in %s", time.Since(start).Round(time.Millisecond))
	trace := traceReplicas(t, ns, "worker")
	created := time.Now()
	createScaledObject(t, ns, 15, 150, trigger(o, scalerAddress))
	ready := time.Since(created)
	t.Cleanup(func() { // registered after createScaledObject's: runs before the deletion
		if !t.Failed() {
			return
		}
		hpa, err := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(context.Background(), "keda-hpa-worker", metav1.GetOptions{})
		if err != nil {
			t.Logf("KEDA's HPA: %v", err)
			return
		}
		t.Logf("KEDA's HPA: desired %d, current metrics %+v, conditions %+v", hpa.Status.DesiredReplicas, hpa.Status.CurrentMetrics, hpa.Status.Conditions)
	})

	took := ready + waitForReplicas(t, 60*time.Second, ns, "worker", 116, 1)
	t.Logf("phase 1: the worker settled at 116 (184 - 38 paid - 30 headroom) %s after the ScaledObject's creation (Ready after %s)", took.Round(time.Millisecond), ready.Round(time.Millisecond))

	start = time.Now()
	scaleDeployment(t, ns, "sample-metrics-app", 17)
	waitForRunningPods(t, ns, "sample-metrics-app", 17)
	paidRunning := time.Since(start)
	settled := waitForReplicas(t, 20*time.Second, ns, "worker", 56, 1)
	t.Logf("phase 2: sample app 2 -> 17: all 17 running after %s; worker at 56 after %s", paidRunning.Round(time.Millisecond), (paidRunning + settled).Round(time.Millisecond))

	scaleDeployment(t, ns, "sample-metrics-app", 2)
	took = waitForReplicas(t, 30*time.Second, ns, "worker", 116, 1)
	t.Logf("phase 3: sample app back to 2: worker back at 116 after %s", took.Round(time.Millisecond))

	// The writer was KEDA's HPA (the scaler only computes, in dryRun), on
	// the trigger's one External metric.
	hpa, err := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(context.Background(), "keda-hpa-worker", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("KEDA's HPA for the ScaledObject: %v", err)
	}
	if m := hpa.Spec.Metrics; len(m) != 1 || m[0].Type != autoscalingv2.ExternalMetricSourceType || hpa.Status.DesiredReplicas < 115 || hpa.Status.DesiredReplicas > 117 {
		t.Errorf("KEDA's HPA: metrics %+v, desired %d; want one External metric and 116±1", m, hpa.Status.DesiredReplicas)
	}

	// As the calibration counts them: a move against the one before.
	// 15 -> 116 -> 56 -> 116 is two, the load's own.
	_, values := trace.directionChanges()
	t.Logf("worker replica counts seen: %v (%d reversals)", values, reversals(values))
	if r := reversals(values); r != 2 {
		t.Errorf("the worker count reversed %d times, want 2 (up, down, up as the load): %v", r, values)
	}
}

// TestKEDAExternalTrigger: KEDA's `external` trigger on opportunist's
// --keda-scaler-address (scaler: worker) scales the worker through KEDA's
// HPA along the seed run.
func TestKEDAExternalTrigger(t *testing.T) {
	kedaSeedRun(t, "e2e-keda-external", func(_ *Opportunist, scalerAddress string) map[string]any {
		return map[string]any{"type": "external", "metricType": "AverageValue",
			"metadata": map[string]any{"scalerAddress": scalerAddress, "scaler": "worker"}}
	})
}

// TestKEDAMetricsAPITrigger: the same with KEDA's `metrics-api` trigger on
// GET /api/v1/scalers/{namespace}/{name} (desiredReplicas, target 1).
func TestKEDAMetricsAPITrigger(t *testing.T) {
	ns := "e2e-keda-metrics-api"
	kedaSeedRun(t, ns, func(o *Opportunist, _ string) map[string]any {
		return map[string]any{"type": "metrics-api", "metricType": "AverageValue",
			"metadata": map[string]any{"url": o.URL + "/api/v1/scalers/" + ns + "/worker", "valueLocation": "desiredReplicas", "targetValue": "1"}}
	})
}
