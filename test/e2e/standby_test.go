//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/opportunist/opportunist/api/v1alpha1"
)

// TestStandbyServesLeaderDecisions: behind one Service the aggregator sends
// a metrics request to any replica, so a standby must answer the external
// opportunist_desired_replicas with the leader's decision, not NotFound.
func TestStandbyServesLeaderDecisions(t *testing.T) {
	requireEmptyCluster(t)
	c := installCRD(t)
	seedCluster(t)
	ns := "e2e-standby"
	createNamespace(t, ns)
	createDeployment(t, ns, "sample-metrics-app", DeploymentSpec{Replicas: 2, Requests: requests("cpu", "4", "memory", "1Gi")})
	createDeployment(t, ns, "worker", DeploymentSpec{Replicas: 0, Requests: requests("cpu", "1", "memory", "64Mi")})
	waitForRunningPods(t, ns, "sample-metrics-app", 2)
	createScaler(t, c, scalerFor(ns, "worker", "worker", 0, 150, map[corev1.ResourceName]v1alpha1.HeadroomValue{"cpu": "30"}))

	args := []string{"--round-interval", "1s", "--leader-elect", "--leader-election-namespace", ns}
	startOpportunist(t, args...)
	// 184 cores - 8 paid - 30 headroom = 146 workers, written by the leader.
	waitForReplicas(t, 60*time.Second, ns, "worker", 146, 0)
	// The standby's kubeconfig's current context is a dead server: it must
	// follow --context everywhere, including the metrics API's delegated
	// authentication and authorization.
	standbyPort := freePort(t)
	startOpportunist(t, append(args, "--metrics-api-port", strconv.Itoa(standbyPort),
		"--kubeconfig", kubeconfigWithDeadCurrentContext(t), "--context", "e2e")...)
	registerMetricsAPI(t, standbyPort)

	waitFor(t, 30*time.Second, "the standby's opportunist_desired_replicas to carry the leader's answer", func(ctx context.Context) (bool, error) {
		var list metricValueList
		if err := getRaw(ctx, "/apis/external.metrics.k8s.io/v1beta1/namespaces/"+ns+"/opportunist_desired_replicas?labelSelector=scaler%3Dworker", &list); err != nil {
			return false, err
		}
		if len(list.Items) != 1 || list.Items[0].Value.Value() != 146 {
			return false, fmt.Errorf("got %+v, want one item of 146", list.Items)
		}
		return true, nil
	})
}

// kubeconfigWithDeadCurrentContext is the test cluster's kubeconfig as
// context "e2e", with a current context pointing at a port nobody serves.
func kubeconfigWithDeadCurrentContext(t *testing.T) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cur := cfg.Contexts[cfg.CurrentContext]
	cfg.Contexts["e2e"] = cur.DeepCopy()
	dead := cfg.Clusters[cur.Cluster].DeepCopy()
	dead.Server = "https://127.0.0.1:1"
	cfg.Clusters["dead"] = dead
	deadCtx := cur.DeepCopy()
	deadCtx.Cluster = "dead"
	cfg.Contexts["dead"] = deadCtx
	cfg.CurrentContext = "dead"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
