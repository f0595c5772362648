//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/opportunist/opportunist/api/v1alpha1"
)

// TestTaintedNodeIsOutsideThePool: a worker that does not tolerate a GPU
// node's taint has the plain node only as its pool. Its budget is 16 cores
// - 4 of headroom = 12 replicas; counting the tainted node's 32 cores gave
// 44, and the fit (16) set the decision instead.
func TestTaintedNodeIsOutsideThePool(t *testing.T) {
	requireEmptyCluster(t)
	c := installCRD(t)
	ns := "e2e-pool"
	createNamespace(t, ns)
	createNode(t, "pool-cpu", NodeShape{CPU: "16", Memory: "64Gi"})
	createNode(t, "pool-gpu", NodeShape{CPU: "32", Memory: "64Gi", Extended: map[string]string{"nvidia.com/gpu": "4"},
		Taints: []corev1.Taint{{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}}})
	createDeployment(t, ns, "worker", DeploymentSpec{Replicas: 0, Requests: requests("cpu", "1")})
	createScaler(t, c, scalerFor(ns, "worker", "worker", 0, 100, map[corev1.ResourceName]v1alpha1.HeadroomValue{corev1.ResourceCPU: "4"}))
	startOpportunist(t, "--round-interval", "1s")
	waitForReplicas(t, 60*time.Second, ns, "worker", 12, 0)
	waitFor(t, 20*time.Second, "the status to count one pool node and name the budget", func(ctx context.Context) (bool, error) {
		var s v1alpha1.OpportunisticScaler
		if err := c.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: "worker"}, &s); err != nil {
			return false, err
		}
		if s.Status.PoolNodes != 1 || s.Status.LimitedBy != "Budget" || s.Status.BudgetReplicas != 12 {
			return false, fmt.Errorf("status: poolNodes %d, limitedBy %s, budget %d, reason %q", s.Status.PoolNodes, s.Status.LimitedBy, s.Status.BudgetReplicas, s.Status.Reason)
		}
		return true, nil
	})
}
