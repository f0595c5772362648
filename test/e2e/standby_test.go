//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

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
	standbyPort := freePort(t)
	startOpportunist(t, append(args, "--metrics-api-port", strconv.Itoa(standbyPort))...)
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
