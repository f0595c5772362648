//go:build e2e

// Package e2e runs the real opportunist binary against a real control plane
// (kube-apiserver, kube-controller-manager, kube-scheduler, etcd) with fake
// kwok nodes, started by hack/cluster. `make e2e` brings it up when needed.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

var (
	repoRoot    string
	clusterDir  string // hack/cluster's state dir: pki/, logs/audit.log
	kubeconfig  string
	client      kubernetes.Interface
	binary      string // the opportunist binary under test
	artifactDir string
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard()) // the controller-runtime client used by tests logs nothing useful
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func setup() error {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	clusterDir = os.Getenv("OPPORTUNIST_CLUSTER_DIR")
	if clusterDir == "" {
		clusterDir = filepath.Join(os.TempDir(), "opportunist-cluster")
	}
	kubeconfig = os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		kubeconfig = filepath.Join(clusterDir, "kubeconfig")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("no control plane (%v): run `make e2e`, or `go run ./hack/cluster up` and set KUBECONFIG", err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	if client, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Raw(); err != nil {
		return fmt.Errorf("control plane at %s not ready (%v): run `make e2e` or `go run ./hack/cluster up`", cfg.Host, err)
	}
	artifactDir = os.Getenv("E2E_ARTIFACTS")
	if artifactDir == "" {
		artifactDir = filepath.Join(repoRoot, "_output", "e2e")
	}
	if err := os.MkdirAll(artifactDir, 0o755); err != nil {
		return err
	}
	// OPPORTUNIST_E2E_BINARY runs another build (e.g. main's, for a
	// before/after measurement) instead of this tree's.
	if binary = os.Getenv("OPPORTUNIST_E2E_BINARY"); binary != "" {
		return nil
	}
	binary = filepath.Join(artifactDir, "opportunist")
	build := exec.Command("go", "build", "-o", binary, "./cmd/opportunist")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building opportunist: %v\n%s", err, out)
	}
	return nil
}

// testDir is the test's own artifact folder (logs, dumps, screenshots).
func testDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(artifactDir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitFor polls cond until it holds or timeout passes, then fails naming what.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := waitForOrTimeout(timeout, what, cond); err != nil {
		t.Fatal(err)
	}
}

// waitForOrTimeout is waitFor for a caller that goes on after a timeout:
// it returns the timeout, naming what it waited for and the last error.
func waitForOrTimeout(timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) error {
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			if ctx.Err() == nil { // not the deadline cutting the last poll short: that says nothing
				last = err
			}
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		return fmt.Errorf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
	}
	return nil
}

// NodeShape describes a fake node.
type NodeShape struct {
	CPU, Memory string
	Pods        int
	// Extended resources, e.g. {"nvidia.com/gpu": "4"}.
	Extended      map[string]string
	Labels        map[string]string
	Annotations   map[string]string
	Taints        []corev1.Taint
	Unschedulable bool
	// NotReady nodes are not managed by kwok; their Ready condition is False.
	NotReady bool
}

const kwokAnnotation = "kwok.x-k8s.io/node"

// createNode creates a fake node, deleted when the test ends, and waits until
// it has the requested readiness.
func createNode(t *testing.T, name string, s NodeShape) *corev1.Node {
	t.Helper()
	if s.Pods == 0 {
		s.Pods = 110
	}
	alloc := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(s.CPU),
		corev1.ResourceMemory: resource.MustParse(s.Memory),
		corev1.ResourcePods:   *resource.NewQuantity(int64(s.Pods), resource.DecimalSI),
	}
	for k, v := range s.Extended {
		alloc[corev1.ResourceName(k)] = resource.MustParse(v)
	}
	labels := map[string]string{"type": "kwok", "kubernetes.io/hostname": name, "opportunist.e2e/test": "true"}
	for k, v := range s.Labels {
		labels[k] = v
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: map[string]string{}},
		Spec:       corev1.NodeSpec{Taints: s.Taints, Unschedulable: s.Unschedulable},
		Status:     corev1.NodeStatus{Capacity: alloc, Allocatable: alloc},
	}
	for k, v := range s.Annotations {
		n.Annotations[k] = v
	}
	if !s.NotReady {
		n.Annotations[kwokAnnotation] = "fake"
	}
	ctx := context.Background()
	created, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node %s: %v", name, err)
	}
	t.Cleanup(func() { deleteNode(t, name) })
	if s.NotReady {
		// The node controller touches new nodes too: retry on conflict with a fresh copy.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			n.Status = corev1.NodeStatus{Capacity: alloc, Allocatable: alloc, Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "E2ENotReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
			}}}
			_, err = client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("marking node %s NotReady: %v", name, err)
		}
	}
	waitFor(t, 30*time.Second, "node "+name+" to report its readiness", func(ctx context.Context) (bool, error) {
		got, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return nodeReady(got) == !s.NotReady && got.Status.Allocatable.Cpu().Equal(alloc[corev1.ResourceCPU]), nil
	})
	return created
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func deleteNode(t *testing.T, name string) {
	ctx := context.Background()
	err := client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting node %s: %v", name, err)
	}
}

// patchNode applies a strategic merge patch to a node.
func patchNode(t *testing.T, name, patch string) {
	t.Helper()
	if _, err := client.CoreV1().Nodes().Patch(context.Background(), name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("patching node %s with %s: %v", name, patch, err)
	}
}

// createNamespace makes a namespace for the test, deleted (and waited for)
// when the test ends so no pod of it holds room in the next test.
func createNamespace(t *testing.T, name string) { createNamespaceThen(t, name, true) }

// createNamespaceThen makes a namespace deleted when the test ends, and
// waited for when waitGone.
func createNamespaceThen(t *testing.T, name string, waitGone bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", name, err)
			return
		}
		if !waitGone {
			return
		}
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Errorf("namespace %s still present 60s after deletion", name)
		}
	})
}

// createPriorityClass makes a cluster-wide PriorityClass, deleted at the end.
func createPriorityClass(t *testing.T, name string, value int32, preempt bool) {
	t.Helper()
	policy := corev1.PreemptLowerPriority
	if !preempt {
		policy = corev1.PreemptNever
	}
	pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value, PreemptionPolicy: &policy}
	if _, err := client.SchedulingV1().PriorityClasses().Create(context.Background(), pc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating PriorityClass %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = client.SchedulingV1().PriorityClasses().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// DeploymentSpec describes a test workload whose pods land on kwok nodes.
type DeploymentSpec struct {
	Replicas      int32
	Requests      corev1.ResourceList
	PriorityClass string
	NodeSelector  map[string]string
	Tolerations   []corev1.Toleration
	Labels        map[string]string
}

// requests builds a resource list from name/quantity pairs.
func requests(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func createDeployment(t *testing.T, ns, name string, s DeploymentSpec) *appsv1.Deployment {
	t.Helper()
	labels := map[string]string{"app": name}
	for k, v := range s.Labels {
		labels[k] = v
	}
	zero := int64(0)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &s.Replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:                    []corev1.Container{{Name: "main", Image: "fake", Resources: corev1.ResourceRequirements{Requests: s.Requests}}},
					PriorityClassName:             s.PriorityClass,
					NodeSelector:                  mergeSelector(s.NodeSelector),
					Tolerations:                   s.Tolerations,
					TerminationGracePeriodSeconds: &zero,
				},
			},
		},
	}
	out, err := client.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating deployment %s/%s: %v", ns, name, err)
	}
	return out
}

// mergeSelector keeps test pods on kwok nodes.
func mergeSelector(sel map[string]string) map[string]string {
	out := map[string]string{"type": "kwok"}
	for k, v := range sel {
		out[k] = v
	}
	return out
}

func scaleDeployment(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error { // status updates race with us
		scale, err := client.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		scale.Spec.Replicas = replicas
		_, err = client.AppsV1().Deployments(ns).UpdateScale(ctx, name, scale, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("scaling %s/%s to %d: %v", ns, name, replicas, err)
	}
}

// waitForPods waits until the pods matching app in ns are exactly want bound
// pods, all Running.
func waitForRunningPods(t *testing.T, ns, app string, want int) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d running pods of %s/%s", want, ns, app), func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return false, err
		}
		running := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				return false, nil
			}
			if p.Spec.NodeName != "" && p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == want && len(pods.Items) == want, nil
	})
}

// Opportunist is a running opportunist process.
type Opportunist struct {
	URL     string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

// startOpportunist runs `opportunist run` with args, waits until /readyz is
// ok, and stops it when the test ends.
func startOpportunist(t *testing.T, args ...string) *Opportunist {
	t.Helper()
	return startOpportunistAs(t, identity{}, "opportunist", args...)
}

// startOpportunistAs is startOpportunist as another user (the admin when
// id is zero), logging to <name>.log, for tests that run several.
func startOpportunistAs(t *testing.T, id identity, name string, args ...string) *Opportunist {
	t.Helper()
	o := launchOpportunist(t, id, name, args...)
	o.waitStarted(t, 30*time.Second)
	return o
}

// launchOpportunist starts `opportunist run` as startOpportunistAs does,
// without waiting for /readyz (waitStarted does), for tests that time it.
func launchOpportunist(t *testing.T, id identity, name string, args ...string) *Opportunist {
	t.Helper()
	kc := kubeconfig
	if id.Kubeconfig != "" {
		kc = id.Kubeconfig
	}
	addr := freeAddress(t)
	logPath := filepath.Join(testDir(t), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, append([]string{"run", "--kubeconfig", kc, "--listen-address", addr}, args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Die with the test binary, even if it is killed by a timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting opportunist: %v", err)
	}
	o := &Opportunist{URL: "http://" + addr, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(o.done) }()
	t.Cleanup(o.stop)
	dumpOnFailure(t, o)
	return o
}

// waitStarted waits until /readyz is ok, failing at once if the process exits.
func (o *Opportunist) waitStarted(t *testing.T, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "opportunist /readyz", func(ctx context.Context) (bool, error) {
		select {
		case <-o.done:
			return false, fmt.Errorf("opportunist exited: %s", tail(o.LogPath, 5))
		default:
		}
		code, _, err := httpGet(ctx, o.URL+"/readyz")
		return code == http.StatusOK, err
	})
}

func (o *Opportunist) stop() {
	select {
	case <-o.done:
		return
	default:
	}
	_ = o.cmd.Process.Signal(os.Interrupt)
	select {
	case <-o.done:
	case <-time.After(10 * time.Second):
		_ = o.cmd.Process.Kill()
		<-o.done
	}
}

func freeAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpGet(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// scrape reads /metrics into series → value; a series is its name, then its
// labels sorted by name: `opportunist_nodes{state="ready"}`.
func (o *Opportunist) scrape(ctx context.Context) (map[string]float64, error) {
	code, body, err := httpGet(ctx, o.URL+"/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/metrics answered %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil && len(m.GetLabel()) == 0 {
				out[name+"_count"], out[name+"_sum"] = float64(h.GetSampleCount()), h.GetSampleSum()
			}
			if m.GetGauge() == nil {
				continue
			}
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out, nil
}

// rounds reads opportunist_decision_rounds_total: how many rounds of the
// control law have started.
func (o *Opportunist) rounds(ctx context.Context) (float64, error) {
	_, body, err := httpGet(ctx, o.URL+"/metrics")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "opportunist_decision_rounds_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no opportunist_decision_rounds_total on /metrics")
}

// waitFirstRound waits, at most timeout, until o has run a decision round:
// it leads.
func (o *Opportunist) waitFirstRound(t *testing.T, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "the opportunist's first decision round", func(ctx context.Context) (bool, error) {
		r, err := o.rounds(ctx)
		return err == nil && r > 0, err
	})
}

// waitRounds waits, at most timeout, until n whole rounds ran from now on,
// so a test can then assert that they changed nothing, rather than sleeping.
// The count read now may include a round still running; the round after the
// n-th has started once the n-th is done (one round at a time).
func (o *Opportunist) waitRounds(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	start, err := o.rounds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	defer func() { t.Logf("%d more rounds took %s", n, time.Since(began).Round(10*time.Millisecond)) }()
	waitFor(t, timeout, fmt.Sprintf("%d more rounds", n), func(ctx context.Context) (bool, error) {
		got, err := o.rounds(ctx)
		if err != nil {
			return false, err
		}
		if got < start+float64(n)+1 {
			return false, fmt.Errorf("%v rounds started since, want %d", got-start, n+1)
		}
		return true, nil
	})
}

// waitForMetrics waits until every series in want has its value, and returns
// how long that took.
func (o *Opportunist) waitForMetrics(t *testing.T, timeout time.Duration, want map[string]float64) time.Duration {
	t.Helper()
	start := time.Now()
	var diff []string
	waitFor(t, timeout, "metrics to reach their expected values", func(ctx context.Context) (bool, error) {
		got, err := o.scrape(ctx)
		if err != nil {
			return false, err
		}
		diff = diff[:0]
		for name, w := range want {
			if g, ok := got[name]; !ok || g != w {
				diff = append(diff, fmt.Sprintf("%s = %v (present %v), want %v", name, g, ok, w))
			}
		}
		if len(diff) > 0 {
			sort.Strings(diff)
			return false, fmt.Errorf("%s", strings.Join(diff, "; "))
		}
		return true, nil
	})
	return time.Since(start)
}

// dumpOnFailure writes nodes, pods, events and the opportunist log to the
// test's artifact folder when it fails, and prints where.
func dumpOnFailure(t *testing.T, o *Opportunist) {
	var once sync.Once
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		once.Do(func() {
			dir := testDir(t)
			var b strings.Builder
			ctx := context.Background()
			if nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
				fmt.Fprintln(&b, "== nodes")
				for _, n := range nodes.Items {
					fmt.Fprintf(&b, "%s ready=%v unschedulable=%v taints=%v allocatable=%v\n", n.Name, nodeReady(&n), n.Spec.Unschedulable, n.Spec.Taints, n.Status.Allocatable)
				}
			} else {
				fmt.Fprintln(&b, "listing nodes:", err)
			}
			if pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err == nil {
				fmt.Fprintln(&b, "== pods")
				for _, p := range pods.Items {
					fmt.Fprintf(&b, "%s/%s node=%q phase=%s priority=%v requests=%v\n", p.Namespace, p.Name, p.Spec.NodeName, p.Status.Phase, ptrVal(p.Spec.Priority), p.Spec.Containers[0].Resources.Requests)
				}
			}
			if events, err := client.CoreV1().Events("").List(ctx, metav1.ListOptions{}); err == nil {
				fmt.Fprintln(&b, "== events")
				for _, e := range events.Items {
					fmt.Fprintf(&b, "%s %s/%s %s %s: %s\n", e.LastTimestamp.Format(time.RFC3339), e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Type, e.Reason, e.Message)
				}
			}
			if o != nil {
				fmt.Fprintf(&b, "== opportunist log (%s), last 40 lines\n%s\n", o.LogPath, tail(o.LogPath, 40))
			}
			path := filepath.Join(dir, "dump.txt")
			_ = os.WriteFile(path, []byte(b.String()), 0o644)
			t.Logf("cluster dump written to %s\n%s", path, b.String())
		})
	})
}

func ptrVal[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// hackCluster runs a hack/cluster command (e.g. "stop", "apiserver").
func hackCluster(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"run", "./hack/cluster"}, args...)...)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/cluster %v: %v\n%s", args, err, out)
	}
}
