//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/keda/externalscaler"
)

// installCRD applies config/crd and waits until the API serves it. A CRD
// left by an earlier run is replaced by this tree's, so a field added since
// is not pruned.
func installCRD(t *testing.T) crclient.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 100, 200 // tests poll
	applyCRD(t, apiextensionsclient.NewForConfigOrDie(cfg), filepath.Join(repoRoot, "config", "crd", "opportunist.io_opportunisticscalers.yaml"))
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	c, err := crclient.New(cfg, crclient.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// applyCRD creates or replaces the CRD in file and waits until the API
// serves it.
func applyCRD(t *testing.T, ext apiextensionsclient.Interface, file string) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	ctx := context.Background()
	_, err = ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, &crd, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			old, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			crd.ResourceVersion = old.ResourceVersion
			_, err = ext.ApiextensionsV1().CustomResourceDefinitions().Update(ctx, &crd, metav1.UpdateOptions{})
			return err
		})
	}
	if err != nil {
		t.Fatalf("creating the CRD %s: %v", crd.Name, err)
	}
	waitFor(t, 30*time.Second, "the CRD "+crd.Name+" to be established", func(ctx context.Context) (bool, error) {
		got, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

func int32p(v int32) *int32 { return &v }

// scalerFor returns a scaler of a Deployment with fast scale-up for tests.
func scalerFor(ns, name, deployment string, min, max int32, headroom map[corev1.ResourceName]v1alpha1.HeadroomValue) *v1alpha1.OpportunisticScaler {
	return &v1alpha1.OpportunisticScaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.OpportunisticScalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: deployment},
			MinReplicas:    int32p(min),
			MaxReplicas:    max,
			Headroom:       headroom,
			Behavior:       v1alpha1.Behavior{ScaleUp: &v1alpha1.ScalingRules{StabilizationWindowSeconds: int32p(3)}},
		},
	}
}

func createScaler(t *testing.T, c crclient.Client, s *v1alpha1.OpportunisticScaler) {
	t.Helper()
	if err := c.Create(context.Background(), s); err != nil {
		t.Fatalf("creating OpportunisticScaler %s/%s: %v", s.Namespace, s.Name, err)
	}
}

// replicaTrace records every value a Deployment's spec.replicas takes.
type replicaTrace struct {
	mu     sync.Mutex
	values []int32
	times  []time.Time
	stop   chan struct{}
	done   chan struct{}
}

func traceReplicas(t *testing.T, ns, name string) *replicaTrace {
	tr := &replicaTrace{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tr.stop:
				return
			case <-tick.C:
			}
			d, err := client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
			if err != nil || d.Spec.Replicas == nil {
				continue
			}
			tr.mu.Lock()
			if n := len(tr.values); n == 0 || tr.values[n-1] != *d.Spec.Replicas {
				tr.values, tr.times = append(tr.values, *d.Spec.Replicas), append(tr.times, time.Now())
			}
			tr.mu.Unlock()
		}
	}()
	t.Cleanup(func() { close(tr.stop); <-tr.done })
	return tr
}

// directionChanges counts the runs of increases and decreases: 15→60→116
// is one, 116→56→116 is two.
func (tr *replicaTrace) directionChanges() (int, []int32) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	changes, last := 0, 0
	for i := 1; i < len(tr.values); i++ {
		dir := 1
		if tr.values[i] < tr.values[i-1] {
			dir = -1
		}
		if dir != last {
			changes++
			last = dir
		}
	}
	return changes, append([]int32(nil), tr.values...)
}

func deploymentReplicas(ctx context.Context, ns, name string) (int32, error) {
	d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	return *d.Spec.Replicas, nil
}

// waitForReplicas waits until spec.replicas is within ±tolerance of want and
// stays there for a second; it returns how long it took to get there.
func waitForReplicas(t *testing.T, timeout time.Duration, ns, name string, want, tolerance int32) time.Duration {
	t.Helper()
	start := time.Now()
	var since time.Time
	var got int32
	waitFor(t, timeout, fmt.Sprintf("%s/%s to settle at %d±%d replicas", ns, name, want, tolerance), func(ctx context.Context) (bool, error) {
		var err error
		if got, err = deploymentReplicas(ctx, ns, name); err != nil {
			return false, err
		}
		if got < want-tolerance || got > want+tolerance {
			since = time.Time{}
			return false, fmt.Errorf("at %d", got)
		}
		if since.IsZero() {
			since = time.Now()
		}
		return time.Since(since) >= time.Second, nil
	})
	return since.Sub(start)
}

// seedRun sets up the write-up's run: six nodes, 184 cores; 30 cores of other
// paid pods; the sample app at 2 x 4 cores; a 1-core worker, min 15, max 150,
// headroom 30 cores. With priorities, paid pods run above the worker, which
// runs below them and never preempts.
func seedRun(t *testing.T, ns string, priorities bool) crclient.Client {
	requireEmptyCluster(t)
	c := installCRD(t)
	seedCluster(t)
	createNamespace(t, ns)
	paidClass, workerClass := "", ""
	if priorities {
		createPriorityClass(t, "e2e-paid", 1000, true)
		createPriorityClass(t, "e2e-opportunistic", -10, false)
		paidClass, workerClass = "e2e-paid", "e2e-opportunistic"
	}
	createDeployment(t, ns, "other-services", DeploymentSpec{Replicas: 15, Requests: requests("cpu", "2", "memory", "1Gi"), PriorityClass: paidClass})
	createDeployment(t, ns, "sample-metrics-app", DeploymentSpec{Replicas: 2, Requests: requests("cpu", "4", "memory", "1Gi"), PriorityClass: paidClass})
	waitForRunningPods(t, ns, "other-services", 15)
	waitForRunningPods(t, ns, "sample-metrics-app", 2)
	createDeployment(t, ns, "worker", DeploymentSpec{Replicas: 15, Requests: requests("cpu", "1", "memory", "64Mi"), PriorityClass: workerClass})
	createScaler(t, c, scalerFor(ns, "worker", "worker", 15, 150, map[corev1.ResourceName]v1alpha1.HeadroomValue{"cpu": "30"}))
	return c
}

// TestSeedRunWithPriorities is the write-up's experiment, with our controller
// instead of the HPA: it settles, yields and refills without oscillating.
func TestSeedRunWithPriorities(t *testing.T) {
	ns := "e2e-seedrun"
	seedRun(t, ns, true)
	trace := traceReplicas(t, ns, "worker")
	o := startOpportunist(t, "--round-interval", "1s")

	took := waitForReplicas(t, 60*time.Second, ns, "worker", 116, 1)
	t.Logf("phase 1: the worker settled at 116 (184 - 38 paid - 30 headroom) in %s", took.Round(time.Millisecond))
	o.waitForMetrics(t, 10*time.Second, map[string]float64{"cpu_capacity_remaining": 30000})

	start := time.Now()
	scaleDeployment(t, ns, "sample-metrics-app", 17)
	waitForRunningPods(t, ns, "sample-metrics-app", 17)
	paidRunning := time.Since(start)
	settled := waitForReplicas(t, 10*time.Second, ns, "worker", 56, 1)
	t.Logf("phase 2: sample app 2 -> 17: all 17 running after %s; worker at 56 after %s", paidRunning.Round(time.Millisecond), (paidRunning + settled).Round(time.Millisecond))
	if paidRunning > 10*time.Second {
		t.Errorf("paid pods took %s to run, want <= 10s", paidRunning)
	}
	o.waitForMetrics(t, 10*time.Second, map[string]float64{"cpu_capacity_remaining": 30000})

	scaleDeployment(t, ns, "sample-metrics-app", 2)
	took = waitForReplicas(t, 30*time.Second, ns, "worker", 116, 1)
	t.Logf("phase 3: sample app back to 2: worker back at 116 after %s", took.Round(time.Millisecond))
	o.waitForMetrics(t, 10*time.Second, map[string]float64{"cpu_capacity_remaining": 30000})

	changes, values := trace.directionChanges()
	t.Logf("worker replica counts seen: %v (%d direction changes)", values, changes)
	if changes != 3 {
		t.Errorf("worker changed direction %d times over three phases, want 3 (up, down, up): %v", changes, values)
	}
}

// TestSeedRunWithoutPriorities: no PriorityClass, so no preemption. Paid pods
// wait until the controller yields; the test reports how long.
func TestSeedRunWithoutPriorities(t *testing.T) {
	ns := "e2e-seedrun-nopc"
	seedRun(t, ns, false)
	o := startOpportunist(t, "--round-interval", "1s")
	waitForReplicas(t, 60*time.Second, ns, "worker", 116, 1)
	before, err := o.scrape(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	scaleDeployment(t, ns, "sample-metrics-app", 17)
	waitForRunningPods(t, ns, "sample-metrics-app", 17)
	t.Logf("without priorities, 15 new paid pods all ran %s after the scale (time to yield)", time.Since(start).Round(time.Millisecond))
	waitForReplicas(t, 10*time.Second, ns, "worker", 56, 1)

	after, err := o.scrape(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const wait = "opportunist_paid_pod_wait_seconds"
	n, sum := after[wait+"_count"]-before[wait+"_count"], after[wait+"_sum"]-before[wait+"_sum"]
	if n < 15 {
		t.Fatalf("%s counted %v paid pods scheduled, want at least the 15 new ones", wait, n)
	}
	t.Logf("%s: %v paid pods waited %.3fs on average", wait, n, sum/n)
}

// TestFragmentedCluster: 30 free cores, 3 per node, hold no 4-core replica.
// The scaler must not create pods that cannot be scheduled.
func TestFragmentedCluster(t *testing.T) {
	requireEmptyCluster(t)
	c := installCRD(t)
	ns := "e2e-fragmented"
	createNamespace(t, ns)
	for i := range 10 {
		createNode(t, fmt.Sprintf("frag-%d", i), NodeShape{CPU: "3", Memory: "8Gi"})
	}
	createDeployment(t, ns, "big-worker", DeploymentSpec{Replicas: 0, Requests: requests("cpu", "4")})
	createScaler(t, c, scalerFor(ns, "big-worker", "big-worker", 0, 10, nil))
	startOpportunist(t, "--round-interval", "1s")
	waitFor(t, 20*time.Second, "the scaler to report fit as its limit", func(ctx context.Context) (bool, error) {
		var s v1alpha1.OpportunisticScaler
		if err := c.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: "big-worker"}, &s); err != nil {
			return false, err
		}
		if s.Status.LimitedBy != "Fit" || s.Status.DesiredReplicas != 0 {
			return false, fmt.Errorf("status %+v", s.Status)
		}
		return true, nil
	})
	if got, err := deploymentReplicas(context.Background(), ns, "big-worker"); err != nil || got != 0 {
		t.Fatalf("big-worker has %d replicas (err %v), want 0: no replica fits", got, err)
	}
}

// TestSharingByPriorityAndWeight: three scalers on 20 free cores. The
// high-priority one takes what it may (its max, 4); the two others share the
// remaining 16 cores 1:3.
func TestSharingByPriorityAndWeight(t *testing.T) {
	requireEmptyCluster(t)
	c := installCRD(t)
	ns := "e2e-sharing"
	createNamespace(t, ns)
	createNode(t, "share-1", NodeShape{CPU: "10", Memory: "16Gi"})
	createNode(t, "share-2", NodeShape{CPU: "10", Memory: "16Gi"})
	for _, name := range []string{"urgent", "small", "large"} {
		createDeployment(t, ns, name, DeploymentSpec{Replicas: 0, Requests: requests("cpu", "1")})
	}
	urgent := scalerFor(ns, "urgent", "urgent", 0, 4, nil)
	urgent.Spec.Priority = 10
	small := scalerFor(ns, "small", "small", 0, 100, nil)
	small.Spec.Weight = 1
	large := scalerFor(ns, "large", "large", 0, 100, nil)
	large.Spec.Weight = 3
	for _, s := range []*v1alpha1.OpportunisticScaler{urgent, small, large} {
		createScaler(t, c, s)
	}
	startOpportunist(t, "--round-interval", "1s")
	waitForReplicas(t, 30*time.Second, ns, "urgent", 4, 0)
	waitForReplicas(t, 30*time.Second, ns, "small", 4, 0)
	waitForReplicas(t, 30*time.Second, ns, "large", 12, 0)
}

// TestScalerProblems: scalers that cannot act get a Ready=False condition
// naming why and write nothing; an HPA on the same target is flagged.
func TestScalerProblems(t *testing.T) {
	requireEmptyCluster(t)
	c := installCRD(t)
	ns := "e2e-problems"
	createNamespace(t, ns)
	createNode(t, "problems-1", NodeShape{CPU: "16", Memory: "16Gi"})
	createDeployment(t, ns, "no-requests", DeploymentSpec{Replicas: 2})
	createDeployment(t, ns, "shared", DeploymentSpec{Replicas: 1, Requests: requests("cpu", "1")})
	createDeployment(t, ns, "with-hpa", DeploymentSpec{Replicas: 1, Requests: requests("cpu", "1")})
	createDeployment(t, ns, "slotted", DeploymentSpec{Replicas: 1, Requests: requests("cpu", "1")})
	if _, err := client.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "not-scalable"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "with-hpa"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "with-hpa"},
			MinReplicas:    int32p(1), MaxReplicas: 1,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: int32p(50)}}}},
		},
	}
	if _, err := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(context.Background(), hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The HPA KEDA makes for a ScaledObject, with KEDA's labels (KEDA itself
	// is not installed here).
	createDeployment(t, ns, "with-keda", DeploymentSpec{Replicas: 1, Requests: requests("cpu", "1")})
	kedaHPA := hpa.DeepCopy()
	kedaHPA.Name = "keda-hpa-with-keda"
	kedaHPA.Labels = map[string]string{"app.kubernetes.io/managed-by": "keda-operator", "app.kubernetes.io/part-of": "with-keda"}
	kedaHPA.Spec.ScaleTargetRef.Name = "with-keda"
	if _, err := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(context.Background(), kedaHPA, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	missing := scalerFor(ns, "missing", "does-not-exist", 0, 5, nil)
	noRequests := scalerFor(ns, "no-requests", "no-requests", 0, 5, nil)
	noScale := scalerFor(ns, "no-scale", "not-scalable", 0, 5, nil)
	noScale.Spec.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{APIVersion: "v1", Kind: "ConfigMap", Name: "not-scalable"}
	first := scalerFor(ns, "first", "shared", 0, 3, nil)
	second := scalerFor(ns, "second", "shared", 0, 5, nil)
	withHPA := scalerFor(ns, "with-hpa", "with-hpa", 0, 2, nil)
	withKEDA := scalerFor(ns, "with-keda", "with-keda", 0, 2, nil)
	// A slot's shape from a workload that does not exist: the scaler's
	// problem, naming the field.
	slotMissing := scalerFor(ns, "slot-missing", "slotted", 0, 5, nil)
	slotMissing.Spec.HeadroomSlots = []v1alpha1.HeadroomSlot{{ShapeFrom: &v1alpha1.SlotShapeSource{APIVersion: "apps/v1", Kind: "Deployment", Name: "no-such-web"}, Count: intstr.FromInt32(2)}}
	for _, s := range []*v1alpha1.OpportunisticScaler{missing, noRequests, noScale, first, withHPA, withKEDA, slotMissing} {
		createScaler(t, c, s)
	}
	time.Sleep(1100 * time.Millisecond) // creation timestamps have second resolution: "first" is older
	createScaler(t, c, second)
	startOpportunist(t, "--round-interval", "1s")

	condition := func(name, typ string) (metav1.Condition, error) {
		var s v1alpha1.OpportunisticScaler
		if err := c.Get(context.Background(), crclient.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
			return metav1.Condition{}, err
		}
		for _, cond := range s.Status.Conditions {
			if cond.Type == typ {
				return cond, nil
			}
		}
		return metav1.Condition{}, fmt.Errorf("no %s condition yet: %+v", typ, s.Status)
	}
	for name, reason := range map[string]string{"missing": "TargetNotFound", "no-requests": "NoResourceRequests", "no-scale": "NoScaleSubresource", "second": "DuplicateTarget", "slot-missing": "SlotShapeNotFound"} {
		waitFor(t, 20*time.Second, name+" to report "+reason, func(ctx context.Context) (bool, error) {
			cond, err := condition(name, "Ready")
			if err != nil {
				return false, err
			}
			if cond.Status != metav1.ConditionFalse || cond.Reason != reason {
				return false, fmt.Errorf("Ready=%s reason %s: %s", cond.Status, cond.Reason, cond.Message)
			}
			return true, nil
		})
	}
	waitFor(t, 20*time.Second, "with-hpa to be flagged as conflicting with its HPA", func(ctx context.Context) (bool, error) {
		cond, err := condition("with-hpa", "Conflicting")
		return err == nil && cond.Status == metav1.ConditionTrue && cond.Reason == "HPAScalesTarget", err
	})
	waitFor(t, 20*time.Second, "with-keda to be flagged as conflicting with KEDA's ScaledObject", func(ctx context.Context) (bool, error) {
		cond, err := condition("with-keda", "Conflicting")
		if err != nil || cond.Status != metav1.ConditionTrue || cond.Reason != "ScaledObjectScalesTarget" {
			return false, err
		}
		if !strings.Contains(cond.Message, "KEDA ScaledObject with-keda") {
			return false, fmt.Errorf("message %q does not name the ScaledObject", cond.Message)
		}
		return true, nil
	})
	if cond, err := condition("slot-missing", "Ready"); err != nil || !strings.Contains(cond.Message, "spec.headroomSlots[0].shapeFrom: Deployment e2e-problems/no-such-web not found") {
		t.Errorf("slot-missing: Ready message %q (%v), want it to name spec.headroomSlots[0].shapeFrom and the missing Deployment", cond.Message, err)
	}
	// "first" owns the shared target and fills it to its max; nothing else was written.
	waitForReplicas(t, 20*time.Second, ns, "shared", 3, 0)
	if got, _ := deploymentReplicas(context.Background(), ns, "no-requests"); got != 2 {
		t.Errorf("no-requests was scaled to %d; a scaler that cannot act must not write", got)
	}
	if got, _ := deploymentReplicas(context.Background(), ns, "slotted"); got != 1 {
		t.Errorf("slotted was scaled to %d; a scaler whose slot's shape is unknown must not write", got)
	}
}

// TestPausedAndDryRun: both compute and report, neither writes; unpausing
// applies the decision.
func TestPausedAndDryRun(t *testing.T) {
	requireEmptyCluster(t)
	c := installCRD(t)
	ns := "e2e-paused"
	createNamespace(t, ns)
	createNode(t, "paused-1", NodeShape{CPU: "16", Memory: "16Gi"})
	createDeployment(t, ns, "paused", DeploymentSpec{Replicas: 1, Requests: requests("cpu", "1")})
	createDeployment(t, ns, "dry", DeploymentSpec{Replicas: 1, Requests: requests("cpu", "1")})
	paused := scalerFor(ns, "paused", "paused", 0, 5, nil)
	paused.Spec.Paused = true
	dry := scalerFor(ns, "dry", "dry", 0, 5, nil)
	dry.Spec.DryRun = true
	createScaler(t, c, paused)
	createScaler(t, c, dry)
	kedaAddr := freeAddress(t)
	o := startOpportunist(t, "--round-interval", "1s", "--keda-scaler-address", kedaAddr)

	for name, reason := range map[string]string{"paused": "Paused", "dry": "DryRun"} {
		waitFor(t, 20*time.Second, name+" to report desired 5 in mode "+reason, func(ctx context.Context) (bool, error) {
			var s v1alpha1.OpportunisticScaler
			if err := c.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
				return false, err
			}
			for _, cond := range s.Status.Conditions {
				if cond.Type == "Ready" && cond.Reason == reason && s.Status.DesiredReplicas == 5 {
					return true, nil
				}
			}
			return false, fmt.Errorf("status %+v", s.Status)
		})
	}
	// A dry-run scaler is how KEDA's metrics-api trigger reads opportunist
	// (docs/keda.md): its decision as JSON on the listen address.
	code, body, err := httpGet(context.Background(), o.URL+"/api/v1/scalers/"+ns+"/dry")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /api/v1/scalers/%s/dry: %d %v: %s", ns, code, err, body)
	}
	var got struct {
		DesiredReplicas, CurrentReplicas int32
		Active                           bool
	}
	if err := json.Unmarshal(body, &got); err != nil || got.DesiredReplicas != 5 || got.CurrentReplicas != 1 || !got.Active {
		t.Errorf("GET /api/v1/scalers/%s/dry = %s (%v), want desiredReplicas 5, currentReplicas 1, active", ns, body, err)
	}
	if code, body, _ := httpGet(context.Background(), o.URL+"/api/v1/scalers/"+ns+"/missing"); code != http.StatusNotFound || !strings.Contains(string(body), "no decision for OpportunisticScaler "+ns+"/missing") {
		t.Errorf("GET an unknown scaler: %d %s, want 404 saying there is no decision", code, body)
	}
	// And as KEDA's external trigger reads it (scaler: dry), over gRPC.
	conn, err := grpc.NewClient(kedaAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	keda := externalscaler.NewExternalScalerClient(conn)
	ref := &externalscaler.ScaledObjectRef{Namespace: ns, Name: "dry-so", ScalerMetadata: map[string]string{"scaler": "dry"}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	spec, err := keda.GetMetricSpec(ctx, ref)
	if err != nil || len(spec.MetricSpecs) != 1 || spec.MetricSpecs[0].TargetSizeFloat != 1 {
		t.Fatalf("GetMetricSpec = %v, %v; want one metric with target 1", spec, err)
	}
	metrics, err := keda.GetMetrics(ctx, &externalscaler.GetMetricsRequest{ScaledObjectRef: ref, MetricName: "s0-" + spec.MetricSpecs[0].MetricName})
	if err != nil || len(metrics.MetricValues) != 1 || metrics.MetricValues[0].MetricValueFloat != 5 || metrics.MetricValues[0].MetricValue != 5 {
		t.Errorf("GetMetrics = %v, %v; want 5 (the dry-run scaler's desired replicas)", metrics, err)
	}
	if active, err := keda.IsActive(ctx, ref); err != nil || !active.Result {
		t.Errorf("IsActive = %v, %v; want true", active, err)
	}
	o.waitRounds(t, 2, 20*time.Second)
	for _, name := range []string{"paused", "dry"} {
		if got, err := deploymentReplicas(context.Background(), ns, name); err != nil || got != 1 {
			t.Errorf("%s scaled to %d (err %v); it must not be written", name, got, err)
		}
	}
	unpause := crclient.RawPatch(types.MergePatchType, []byte(`{"spec":{"paused":false}}`))
	if err := c.Patch(context.Background(), &v1alpha1.OpportunisticScaler{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "paused"}}, unpause); err != nil {
		t.Fatal(err)
	}
	waitForReplicas(t, 20*time.Second, ns, "paused", 5, 0)
}
