//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/dashboard"
)

const reclaimCPU = "opportunist.io/reclaimable-cpu"

// publishedRoom is a node's opportunist.io/reclaimable-cpu allocatable, -1
// when it has none.
func publishedRoom(ctx context.Context, node string) (int64, error) {
	n, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	q, ok := n.Status.Allocatable[reclaimCPU]
	if !ok {
		return -1, nil
	}
	return q.Value(), nil
}

// getJSON decodes the body of a GET of url into v.
func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// workerPodsOn counts the bound, not terminating pods of app in ns per node.
func workerPodsOn(ctx context.Context, ns, app string) (map[string]int, error) {
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, p := range pods.Items {
		if p.Spec.NodeName != "" && p.DeletionTimestamp == nil {
			out[p.Spec.NodeName]++
		}
	}
	return out, nil
}

// TestReclaimFromIdleRequests runs usage-based reclaim on the real control
// plane with the real metrics-server. Two 16-core nodes, each full of paid
// requests (two 8-core pods) that use 4 cores: the reclaiming worker of
// examples/reclaim (one core of opportunist.io/reclaimable-cpu a pod, no
// native cpu request) grows onto the idle requests, 4 pods a node (0.65 ×
// 16 − 2 × (2 + 10 % of 8) reserved − 0.5 margin = 4.3 cores). Paid usage
// on one node rises to 15 cores: the published room there falls to 0 and
// the worker's pods on that node go, the other node's stay. With
// minReplicas raised above what is left, paid usage on the other node rises
// too: the count cannot go lower, so its pods are evicted (then it falls
// back and they return). metrics-server stops: after --reclaim-stale-after
// nothing is reclaimed, every node publishes what requests leave (0) and
// the worker is back at 0.
func TestReclaimFromIdleRequests(t *testing.T) {
	requireEmptyCluster(t)
	c := installCRD(t)
	nodes := []string{"reclaim-a", "reclaim-b"}
	for _, n := range nodes {
		createNode(t, n, metricsNodeShape(n, NodeShape{CPU: "16", Memory: "64Gi"}))
	}
	ns := "e2e-reclaim-paid"
	createNamespace(t, ns)
	for _, n := range nodes {
		createDeployment(t, ns, "paid-"+n, DeploymentSpec{Replicas: 2, Requests: requests("cpu", "8", "memory", "1Gi"),
			NodeSelector: map[string]string{"kubernetes.io/hostname": n}})
	}
	setUsage := func(node, cpu string) {
		t.Helper()
		pods, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=paid-" + node})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			setPodUsage(t, ns, p.Name, cpu)
		}
	}
	for _, n := range nodes {
		waitForRunningPods(t, ns, "paid-"+n, 2)
		setUsage(n, "2")
	}

	// Made before metrics-server is registered, so that it deletes the
	// example's namespace after the APIService is gone: with an aggregated
	// API registered but down (phase 3), namespace deletion waits.
	a := newApplier(t, "e2e-reclaim")
	ms := startMetricsServer(t)
	mc := metricsClient(t)
	for _, n := range nodes {
		waitForPodUsage(t, mc, ns, "paid-"+n, 2000, 50, 90*time.Second)
	}

	// The example as a user applies it, with the class it names; then a
	// short scale-up window, as the other e2e scalers have.
	createPriorityClass(t, "opportunistic", -100, false)
	a.apply(t, readManifests(t, "examples/reclaim"))
	wns := "batch-reclaim"
	var s v1alpha1.OpportunisticScaler
	ctx := context.Background()
	if err := c.Get(ctx, crclient.ObjectKey{Namespace: wns, Name: "worker"}, &s); err != nil {
		t.Fatal(err)
	}
	patch := crclient.MergeFrom(s.DeepCopy())
	s.Spec.Behavior.ScaleUp = &v1alpha1.ScalingRules{StabilizationWindowSeconds: int32p(3)}
	if err := c.Patch(ctx, &s, patch); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	o := startOpportunist(t, "--round-interval", "1s", "--reclaim",
		// Fast enough for a test: metrics-server's samples (15 s) read every
		// 5 s, a reservation settling in 10 s (+10 s of decay), usage stale
		// 30 s after the last sample, room held 10 s before the worker grows onto it.
		"--reclaim-usage-interval", "5s", "--reclaim-settle", "10s", "--reclaim-stale-after", "30s", "--reclaim-hold", "10s")

	// Phase 1: the worker grows onto the idle requests, 4 a node.
	took := waitForReplicas(t, 120*time.Second, wns, "worker", 8, 0)
	waitFor(t, 60*time.Second, "4 worker pods bound on each node", func(ctx context.Context) (bool, error) {
		on, err := workerPodsOn(ctx, wns, "worker")
		if err != nil {
			return false, err
		}
		if on[nodes[0]] != 4 || on[nodes[1]] != 4 {
			return false, fmt.Errorf("%v", on)
		}
		return true, nil
	})
	t.Logf("phase 1: the worker grew to 8 (4 a node) on idle paid requests %s after opportunist started", took.Round(time.Millisecond))
	for _, n := range nodes {
		v, err := publishedRoom(ctx, n)
		if err != nil || v < 4000 || v > 4600 {
			t.Errorf("node %s publishes %s %d (%v), want 4300 ± 300 (0.65 × 16 − 2 × 2.8 reserved − 0.5)", n, reclaimCPU, v, err)
		}
	}
	if err := c.Get(ctx, crclient.ObjectKey{Namespace: wns, Name: "worker"}, &s); err != nil {
		t.Fatal(err)
	}
	if r := s.Status.Reclaim; r == nil || !r.UsageFresh || len(r.Nodes) != 2 || !strings.Contains(r.Nodes[0].Formula, "reclaimable") {
		t.Errorf("status.reclaim %+v, want usage fresh and both nodes with their formula", r)
	} else {
		t.Logf("status.reclaim.nodes[0]: %+v", r.Nodes[0])
	}
	got, err := o.scrape(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v := got[`opportunist_reclaimable{node="reclaim-a",resource="cpu"}`]; v < 4 || v > 4.6 {
		t.Errorf("opportunist_reclaimable{node=reclaim-a,resource=cpu} = %v, want about 4.3 cores", v)
	}
	// The live dashboard shows the same room under each node (it samples
	// the controller's last round every second).
	waitFor(t, 10*time.Second, "the dashboard to show reclaim-a's reclaimable room", func(ctx context.Context) (bool, error) {
		var st dashboard.State
		if err := getJSON(ctx, o.URL+"/dashboard/api/v1/state", &st); err != nil {
			return false, err
		}
		for _, n := range st.Views[0].Nodes {
			if n.Name != nodes[0] {
				continue
			}
			if r := n.Reclaim; r == nil || r.ReclaimableCores < 4 || r.ReclaimableCores > 4.6 || !strings.Contains(r.Formula, "reclaimable") {
				return false, fmt.Errorf("reclaim-a's reclaim on the dashboard: %+v, want about 4.3 cores with the formula", r)
			}
			t.Logf("dashboard: reclaim-a reclaimable %.3f cores, published %.3f, tooltip %q", n.Reclaim.ReclaimableCores, n.Reclaim.PublishedCores, n.Reclaim.Formula)
			return true, nil
		}
		return false, fmt.Errorf("no node %s on the dashboard", nodes[0])
	})

	// Phase 2: paid usage on reclaim-a rises to 15 cores: the worker's pods
	// there go, within metrics-server's interval (the rate is over its last
	// two scrapes) plus our read and a round; reclaim-b's stay.
	start = time.Now()
	setUsage(nodes[0], "7500m")
	waitFor(t, 60*time.Second, "the worker's pods on reclaim-a to go", func(ctx context.Context) (bool, error) {
		on, err := workerPodsOn(ctx, wns, "worker")
		if err != nil {
			return false, err
		}
		if on[nodes[0]] != 0 {
			return false, fmt.Errorf("%v", on)
		}
		return true, nil
	})
	shrunk := time.Since(start)
	if v, err := publishedRoom(ctx, nodes[0]); err != nil || v != 0 {
		t.Errorf("reclaim-a publishes %d (%v) after paid usage rose to 15 of 16 cores, want 0", v, err)
	}
	on, err := workerPodsOn(ctx, wns, "worker")
	if err != nil {
		t.Fatal(err)
	}
	if on[nodes[1]] != 4 {
		t.Errorf("the worker on reclaim-b has %d pods, want its 4 kept (%v)", on[nodes[1]], on)
	}
	t.Logf("phase 2: paid usage on reclaim-a 4 -> 15 cores: its 4 worker pods gone %s later (metrics-server interval 15 s, usage read every 5 s, rounds every 1 s)", shrunk.Round(time.Millisecond))
	if shrunk > 45*time.Second {
		t.Errorf("the worker took %s to leave reclaim-a, want within two metrics-server scrapes plus a read and a round (45 s)", shrunk)
	}
	waitForReplicas(t, 30*time.Second, wns, "worker", 4, 0)

	// Phase 2b: the count cannot go lower (minReplicas 6, above the 4 left):
	// paid usage on reclaim-b rises too, and its worker pods are evicted
	// through the Eviction API instead; the ReplicaSet recreates them, and
	// they stay pending, since no node publishes room for them.
	if err := c.Get(ctx, crclient.ObjectKey{Namespace: wns, Name: "worker"}, &s); err != nil {
		t.Fatal(err)
	}
	patch = crclient.MergeFrom(s.DeepCopy())
	s.Spec.MinReplicas = int32p(6)
	if err := c.Patch(ctx, &s, patch); err != nil {
		t.Fatal(err)
	}
	waitForReplicas(t, 30*time.Second, wns, "worker", 6, 0)
	start = time.Now()
	setUsage(nodes[1], "7500m")
	waitFor(t, 60*time.Second, "the worker's pods on reclaim-b to be evicted", func(ctx context.Context) (bool, error) {
		on, err := workerPodsOn(ctx, wns, "worker")
		if err != nil {
			return false, err
		}
		if on[nodes[1]] != 0 {
			return false, fmt.Errorf("%v", on)
		}
		return true, nil
	})
	t.Logf("phase 2b: paid usage on reclaim-b 4 -> 15 cores at minReplicas 6: its 4 worker pods evicted %s later", time.Since(start).Round(time.Millisecond))
	waitFor(t, 30*time.Second, "a ReclaimEvicted Event on the scaler", func(ctx context.Context) (bool, error) {
		evs, err := client.CoreV1().Events(wns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		n := 0
		for _, e := range evs.Items {
			if e.Reason == "ReclaimEvicted" && e.InvolvedObject.Name == "worker" {
				n++
			}
		}
		if n == 0 {
			return false, fmt.Errorf("none among %d Events", len(evs.Items))
		}
		return true, nil
	})
	if err := c.Get(ctx, crclient.ObjectKey{Namespace: wns, Name: "worker"}, &s); err != nil {
		t.Fatal(err)
	}
	if s.Status.DesiredReplicas < 6 {
		t.Errorf("desired %d, want at least minReplicas 6: eviction, not the count, moved the pods", s.Status.DesiredReplicas)
	}
	// Back to where phase 2 ended, so that phase 3 sees a node publishing
	// room fall to 0: minReplicas 0, reclaim-b's paid usage down again (its
	// reservations decay after --reclaim-settle) and 4 worker pods there.
	if err := c.Get(ctx, crclient.ObjectKey{Namespace: wns, Name: "worker"}, &s); err != nil {
		t.Fatal(err)
	}
	patch = crclient.MergeFrom(s.DeepCopy())
	s.Spec.MinReplicas = int32p(0)
	if err := c.Patch(ctx, &s, patch); err != nil {
		t.Fatal(err)
	}
	setUsage(nodes[1], "2")
	waitFor(t, 120*time.Second, "4 worker pods bound on reclaim-b again", func(ctx context.Context) (bool, error) {
		on, err := workerPodsOn(ctx, wns, "worker")
		if err != nil {
			return false, err
		}
		if on[nodes[0]] != 0 || on[nodes[1]] != 4 {
			return false, fmt.Errorf("%v", on)
		}
		return true, nil
	})

	// Phase 3: metrics-server stops: after --reclaim-stale-after (30 s)
	// nothing is reclaimed; both nodes publish what requests leave, 0.
	start = time.Now()
	ms.Stop()
	waitFor(t, 90*time.Second, "every node to publish 0 and the worker to be gone", func(ctx context.Context) (bool, error) {
		for _, n := range nodes {
			if v, err := publishedRoom(ctx, n); err != nil || v != 0 {
				return false, fmt.Errorf("%s publishes %d (%v)", n, v, err)
			}
		}
		on, err := workerPodsOn(ctx, wns, "worker")
		if err != nil {
			return false, err
		}
		if on[nodes[0]]+on[nodes[1]] != 0 {
			return false, fmt.Errorf("worker pods %v", on)
		}
		return true, nil
	})
	t.Logf("phase 3: metrics-server stopped: reclaim off and the worker at 0 %s later (stale after 30 s)", time.Since(start).Round(time.Millisecond))
	waitFor(t, 30*time.Second, "the scaler's Reclaim condition to say usage is stale", func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, crclient.ObjectKey{Namespace: wns, Name: "worker"}, &s); err != nil {
			return false, err
		}
		for _, cond := range s.Status.Conditions {
			if cond.Type == "Reclaim" {
				if cond.Status != metav1.ConditionFalse || cond.Reason != "UsageStale" {
					return false, fmt.Errorf("%s %s: %s", cond.Status, cond.Reason, cond.Message)
				}
				return true, nil
			}
		}
		return false, fmt.Errorf("no Reclaim condition in %+v", s.Status.Conditions)
	})
	if r := s.Status.Reclaim; r == nil || r.UsageFresh {
		t.Errorf("status.reclaim %+v, want usageFresh false", r)
	}
}
