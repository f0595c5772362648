//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/opportunist/opportunist/api/v1alpha1"
)

// TestTargetedYield is issue 13's measured case, without PriorityClasses
// (nothing preempts): 10 nodes of 8 cores, each with a 3-core paid pod and a
// 4-core worker pod, 1 core free on each. A 5-core paid pod arrives. The
// budget still allows every worker (80 - 30 - 5 = 45 cores >= 40), so only
// a targeted yield lets it in: one worker pod must go, on one node, and the
// paid pod must run within 5 s.
func TestTargetedYield(t *testing.T) {
	requireEmptyCluster(t)
	c := installCRD(t)
	ns := "e2e-yield"
	createNamespace(t, ns)
	pool := map[string]string{"opportunist.e2e/pool": "yield"}
	var nodes []string
	for i := range 10 {
		name := fmt.Sprintf("yield-%d", i)
		createNode(t, name, NodeShape{CPU: "8", Memory: "32Gi", Labels: pool})
		nodes = append(nodes, name)
	}
	ctx := context.Background()
	for _, node := range nodes { // one paid pod per node, placed by hand
		createYieldPod(t, ns, "paid-"+node, "3", node, nil)
	}
	waitForRunningPods(t, ns, "paid", 10)
	createDeployment(t, ns, "worker", DeploymentSpec{Replicas: 10, Requests: requests("cpu", "4"), NodeSelector: pool})
	waitForRunningPods(t, ns, "worker", 10)
	s := scalerFor(ns, "worker", "worker", 0, 20, nil)
	s.Spec.PoolSelector = &metav1.LabelSelector{MatchLabels: pool}
	createScaler(t, c, s)
	// Run with the chart's ClusterRole (the marks need its patch on pods),
	// plus the /scale write the chart grants per listed target.
	token := serviceAccount(t, ns, "opportunist")
	grantRun(t, ns, "opportunist", append(chartClusterRoleRules(t),
		rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale"}, ResourceNames: []string{"worker"}, Verbs: []string{"update"}}))
	o := startOpportunist(t, "--kubeconfig", tokenKubeconfig(t, apiServerURL(t), token), "--leader-elect=false", "--round-interval", "1s")
	waitFor(t, 20*time.Second, "the worker to settle at 10, limited by fit", func(ctx context.Context) (bool, error) {
		var got v1alpha1.OpportunisticScaler
		if err := c.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: "worker"}, &got); err != nil {
			return false, err
		}
		if got.Status.DesiredReplicas != 10 || got.Status.LimitedBy != "Fit" {
			return false, fmt.Errorf("status %+v", got.Status)
		}
		return true, nil
	})
	before := workerPods(t, ns)

	// Count every worker pod deleted or created from now on.
	w, err := client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "app=worker", ResourceVersion: before.resourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var deleted, added []string
	cost := map[string]string{} // pod -> its pod-deletion-cost when it was deleted
	drain := func() {
		for {
			select {
			case ev := <-w.ResultChan():
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				switch {
				case ev.Type == watch.Added:
					added = append(added, p.Name)
				case ev.Type == watch.Deleted || ev.Type == watch.Modified && p.DeletionTimestamp != nil:
					if !slices.Contains(deleted, p.Name) {
						deleted = append(deleted, p.Name)
						cost[p.Name] = p.Annotations["controller.kubernetes.io/pod-deletion-cost"]
					}
				}
			default:
				return
			}
		}
	}

	start := time.Now()
	createYieldPod(t, ns, "big", "5", "", pool)
	var node string
	waitFor(t, 30*time.Second, "the 5-core paid pod to run", func(ctx context.Context) (bool, error) {
		drain()
		p, err := client.CoreV1().Pods(ns).Get(ctx, "big", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node = p.Spec.NodeName
		return node != "" && p.Status.Phase == corev1.PodRunning, nil
	})
	took := time.Since(start)
	t.Logf("the 5-core paid pod ran on %s %s after it was created (want <= 5s)", node, took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("the paid pod took %s to run, want <= 5s", took.Round(time.Millisecond))
	}

	// Let a few more rounds run: no other worker pod may go, none may come.
	rounds := yieldRounds(t, o)
	waitFor(t, 20*time.Second, "3 more decision rounds", func(ctx context.Context) (bool, error) {
		return yieldRounds(t, o) >= rounds+3, nil
	})
	waitForRunningPods(t, ns, "worker", 9)
	drain()
	if len(deleted) != 1 || len(added) != 0 {
		t.Fatalf("worker pods deleted %v and created %v, want exactly one deleted and none created", deleted, added)
	}
	if want := before.byNode[node]; deleted[0] != want {
		t.Errorf("the worker pod deleted is %s, want %s (the one on %s, where the paid pod runs)", deleted[0], want, node)
	}
	if cost[deleted[0]] != "-1000" {
		t.Errorf("the worker pod deleted had pod-deletion-cost %q, want \"-1000\" (marked by opportunist)", cost[deleted[0]])
	}
	if got, err := deploymentReplicas(ctx, ns, "worker"); err != nil || got != 9 {
		t.Errorf("worker at %d replicas (err %v), want 9", got, err)
	}
	t.Logf("worker pods deleted: %v (on %s); created: none", deleted, node)
}

// createYieldPod creates a bare paid pod of app=paid (or the pod's own name
// for an unbound one): bound to node by hand, or left to the scheduler
// within selector when node is "".
func createYieldPod(t *testing.T, ns, name, cpu, node string, selector map[string]string) {
	t.Helper()
	zero := int64(0)
	app := "paid"
	if node == "" {
		app = name
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			NodeSelector:                  mergeSelector(selector),
			Containers:                    []corev1.Container{{Name: "main", Image: "fake", Resources: corev1.ResourceRequirements{Requests: requests("cpu", cpu)}}},
			TerminationGracePeriodSeconds: &zero,
		},
	}
	if _, err := client.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod %s/%s: %v", ns, name, err)
	}
}

type workerSnapshot struct {
	resourceVersion string
	byNode          map[string]string // node -> worker pod name
}

func workerPods(t *testing.T, ns string) workerSnapshot {
	t.Helper()
	pods, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=worker"})
	if err != nil {
		t.Fatal(err)
	}
	out := workerSnapshot{resourceVersion: pods.ResourceVersion, byNode: map[string]string{}}
	for _, p := range pods.Items {
		out.byNode[p.Spec.NodeName] = p.Name
	}
	return out
}

// chartClusterRoleRules are the rules of the ClusterRole the chart renders
// into deploy/opportunist.yaml.
func chartClusterRoleRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	path := filepath.Join(repoRoot, "deploy", "opportunist.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range decodeManifest(t, path, raw) {
		if m.obj.GetKind() != "ClusterRole" {
			continue
		}
		var cr rbacv1.ClusterRole
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m.obj.Object, &cr); err != nil {
			t.Fatal(err)
		}
		return cr.Rules
	}
	t.Fatalf("%s has no ClusterRole", path)
	return nil
}

// yieldRounds reads opportunist_decision_rounds_total.
func yieldRounds(t *testing.T, o *Opportunist) float64 {
	t.Helper()
	_, body, err := httpGet(context.Background(), o.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "opportunist_decision_rounds_total ") {
			v, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return v
		}
	}
	return 0
}
