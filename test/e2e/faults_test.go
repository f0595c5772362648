//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/opportunist/opportunist/api/v1alpha1"
)

// The fault tests break something mid-run: the API server, etcd, the
// opportunist process, its leader, a node. After each, the worker converges
// to the count the cluster's shape gives, and the API server's audit log
// shows that opportunist wrote only the scaler's target, only within
// [min, max], and from one process at a time. Every opportunist runs as its
// own user (a client certificate), so the log tells them apart.

// The shape every fault test starts from: 8-core nodes, two 2-core paid pods
// pinned to the first node (it never fails), and a 1-core worker scaled
// between 2 and 40 with 4 cores of headroom.
const (
	faultNodeCores     = 8
	faultPaidCores     = 2
	faultHeadroomCores = 4
	faultMin, faultMax = 2, 40
)

// faultWant is the worker count for a shape: the Ready nodes' cores, minus
// the paid pods' and the headroom, in 1-core replicas, within [min, max].
func faultWant(readyNodes, paidPods int) int32 {
	n := faultNodeCores*readyNodes - faultPaidCores*paidPods - faultHeadroomCores
	return int32(min(max(n, faultMin), faultMax))
}

type faultRun struct {
	ns    string
	c     crclient.Client
	nodes []string
	// since is before anything under test ran: audit events from then on count.
	since time.Time
}

// setupFaults builds the fault shape with n nodes, the worker at its min.
// tune, when set, changes the scaler before it is created.
func setupFaults(t *testing.T, ns string, n int, tune func(*v1alpha1.OpportunisticScaler)) *faultRun {
	t.Helper()
	requireEmptyCluster(t)
	f := &faultRun{ns: ns, since: time.Now()}
	f.c = installCRD(t)
	createNamespace(t, ns)
	for range n {
		f.addNode(t)
	}
	createDeployment(t, ns, "paid", DeploymentSpec{Replicas: 2, Requests: requests("cpu", fmt.Sprint(faultPaidCores)),
		NodeSelector: map[string]string{"kubernetes.io/hostname": f.nodes[0]}})
	waitForRunningPods(t, ns, "paid", 2)
	createDeployment(t, ns, "worker", DeploymentSpec{Replicas: faultMin, Requests: requests("cpu", "1")})
	s := scalerFor(ns, "worker", "worker", faultMin, faultMax, map[corev1.ResourceName]v1alpha1.HeadroomValue{"cpu": v1alpha1.HeadroomValue(fmt.Sprint(faultHeadroomCores))})
	if tune != nil {
		tune(s)
	}
	createScaler(t, f.c, s)
	t.Logf("%d nodes, paid pods running, worker and scaler created in %s", n, time.Since(f.since).Round(time.Millisecond))
	return f
}

func (f *faultRun) addNode(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", f.ns, len(f.nodes)+1)
	createNode(t, name, NodeShape{CPU: fmt.Sprint(faultNodeCores), Memory: "32Gi"})
	f.nodes = append(f.nodes, name)
	return name
}

// leaseArgs elect a leader through a Lease in the test's namespace, with
// short timings so a takeover after a kill takes seconds (the defaults,
// 15s/10s/2s, would take 15).
func leaseArgs(ns string) []string {
	return []string{"--leader-elect", "--leader-election-namespace", ns,
		"--leader-election-lease-duration", "8s", "--leader-election-renew-deadline", "6s", "--leader-election-retry-period", "1s"}
}

// kill ends the process with SIGKILL, as the OOM killer or a lost node
// would: no lease released, nothing flushed. It returns when it is gone.
func (o *Opportunist) kill(t *testing.T) time.Time {
	t.Helper()
	if err := o.cmd.Process.Kill(); err != nil {
		t.Fatalf("killing opportunist: %v", err)
	}
	killed := time.Now()
	<-o.done
	return killed
}

func (o *Opportunist) waitReadyz(t *testing.T, timeout time.Duration, want int) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("opportunist /readyz to answer %d", want), func(ctx context.Context) (bool, error) {
		code, body, err := httpGet(ctx, o.URL+"/readyz")
		if err != nil {
			return false, err
		}
		if code != want {
			return false, fmt.Errorf("%d: %s", code, body)
		}
		return true, nil
	})
}

// apiServerReady waits until the API server answers /readyz again.
func apiServerReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "the API server to be ready", func(ctx context.Context) (bool, error) {
		_, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Raw()
		return err == nil, err
	})
}

// testOutage stops a control-plane component for a few rounds and starts it
// again. While it is down opportunist reports not ready and writes nothing.
// As soon as it is ready again a node is added: it converges, with no dip on
// the way (as from acting on half-relisted caches).
func testOutage(t *testing.T, ns, component string) {
	f := setupFaults(t, ns, 3, nil)
	a := newIdentity(t, "opportunist-a")
	// One process, no election: a leader that cannot renew its lease for
	// longer than the renew deadline exits to be restarted, which
	// TestFaultKilledDuringScaleUp covers. Here it must ride the outage out.
	o := startOpportunistAs(t, a, "opportunist-a", "--round-interval", "1s", "--leader-elect=false")
	took := waitForReplicas(t, 60*time.Second, ns, "worker", faultWant(3, 2), 0)
	t.Logf("worker at %d after %s", faultWant(3, 2), took.Round(time.Millisecond))

	stopped := time.Now()
	hackCluster(t, "stop", component)
	t.Cleanup(func() { // before the other clean-ups, which need the API server
		if t.Failed() {
			cmd := exec.Command("go", "run", "./hack/cluster", "up")
			cmd.Dir = repoRoot
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("bringing the cluster back up: %v\n%s", err, out)
			}
		}
	})
	o.waitReadyz(t, 20*time.Second, http.StatusServiceUnavailable)
	// A whole round with the component down. Without etcd it takes about
	// --request-timeout (10s): its status write waits for the API server.
	// One, not more: past the node-monitor grace period (40s) the nodes'
	// leases would expire and a node go NotReady, a different fault.
	o.waitRounds(t, 1, 60*time.Second)
	hackCluster(t, "start", component)
	apiServerReady(t, 60*time.Second)
	o.waitReadyz(t, 30*time.Second, http.StatusOK)
	restarted := time.Now()
	t.Logf("%s down and back in %s; opportunist ready again", component, restarted.Sub(stopped).Round(time.Millisecond))

	// A change at once: opportunist says it is ready, so its numbers must follow.
	f.addNode(t)
	o.waitForMetrics(t, 60*time.Second, map[string]float64{"cpu_allocatable_total": 4 * faultNodeCores * 1000})
	seen := time.Since(restarted)
	// The controller-manager's informers back off too: until it lifts the new
	// node's not-ready taint, opportunist rightly sees no room there (Fit).
	waitForReplicas(t, 90*time.Second, ns, "worker", faultWant(4, 2), 0)
	t.Logf("node added as soon as opportunist was ready: in its /metrics after %s, worker at %d after %s", seen.Round(time.Millisecond), faultWant(4, 2), time.Since(restarted).Round(time.Millisecond))
	if seen > 5*time.Second {
		// Not a failure yet (issue 9, item 2, stale data, is on it): /readyz
		// follows the API server probe, while client-go's reflectors are
		// still in their back-off (up to 30s) after the outage.
		t.Logf("note: opportunist was ready %s before its informers saw the change", seen.Round(time.Millisecond))
	}
	// Leave a working cluster to the next test: pods created, scheduled, run.
	waitForRunningPods(t, ns, "worker", int(faultWant(4, 2)))
	o.stop()

	writes := checkWrites(t, f.c, f.since, a.User)[a.User]
	if during := writesBetween(writes, stopped, restarted); len(during) > 0 {
		t.Errorf("opportunist wrote during the %s outage: %v", component, during)
	}
	// After it: from the count before the outage straight up to the new one,
	// no dip (as from acting on half-relisted caches).
	after := replicasWritten(writesBetween(writes, restarted, time.Now()))
	prev := faultWant(3, 2)
	for _, r := range after {
		if r < prev || r > faultWant(4, 2) {
			t.Errorf("after the %s outage the worker was written %v: want counts rising from %d to %d", component, after, faultWant(3, 2), faultWant(4, 2))
			break
		}
		prev = r
	}
	if len(after) == 0 || after[len(after)-1] != faultWant(4, 2) {
		t.Errorf("after the outage the counts written are %v, want the last to be %d", after, faultWant(4, 2))
	}
	hackCluster(t, "status") // the next test needs every component healthy
}

// TestFaultAPIServerRestart: the API server stopped mid-run and started again.
func TestFaultAPIServerRestart(t *testing.T) { testOutage(t, "e2e-fault-apiserver", "apiserver") }

// TestFaultEtcdRestart: etcd stopped mid-run and started again; the API
// server stays up but cannot serve.
func TestFaultEtcdRestart(t *testing.T) { testOutage(t, "e2e-fault-etcd", "etcd") }

// TestFaultKilledDuringScaleUp: opportunist is SIGKILLed between two steps of
// a scale-up and restarted; it picks up from the count it left, keeps the
// step limit and converges.
func TestFaultKilledDuringScaleUp(t *testing.T) {
	const step = 4
	ns := "e2e-fault-kill"
	f := setupFaults(t, ns, 3, func(s *v1alpha1.OpportunisticScaler) {
		s.Spec.Behavior.ScaleUp.MaxStep = step
		s.Spec.Behavior.ScaleUp.PeriodSeconds = int32p(2)
	})
	want := faultWant(3, 2)
	// The restarted process runs as another user, so the audit log tells the two runs apart.
	a, b := newIdentity(t, "opportunist-a"), newIdentity(t, "opportunist-b")
	args := append([]string{"--round-interval", "1s"}, leaseArgs(ns)...)
	oa := startOpportunistAs(t, a, "opportunist-a", args...)

	var first int32
	waitFor(t, 60*time.Second, "the first step of the scale-up", func(ctx context.Context) (bool, error) {
		var err error
		first, err = deploymentReplicas(ctx, ns, "worker")
		return first > faultMin, err
	})
	killed := oa.kill(t)
	if first >= want {
		t.Fatalf("the worker was already at %d when opportunist was killed; the kill must land mid scale-up (want < %d)", first, want)
	}
	t.Logf("killed opportunist with the worker at %d on its way from %d to %d", first, faultMin, want)

	restarted := time.Now()
	ob := startOpportunistAs(t, b, "opportunist-b", args...)
	waitForReplicas(t, 90*time.Second, ns, "worker", want, 0)
	t.Logf("restarted opportunist (it waits for the dead one's lease to expire) brought the worker to %d; %s after the restart", want, time.Since(restarted).Round(time.Millisecond))
	ob.stop()

	writes := checkWrites(t, f.c, f.since, a.User, b.User)
	checkOneWriterAtATime(t, writes, a.User, b.User)
	if late := writesBetween(writes[a.User], killed.Add(auditTimeSlack), time.Now()); len(late) > 0 {
		t.Errorf("writes by the killed process after its death: %v", late)
	}
	prev := int32(faultMin)
	for _, w := range append(writes[a.User], writes[b.User]...) {
		if w.Replicas == nil { // reported by checkWrites
			continue
		}
		if r := *w.Replicas; r > prev+step {
			t.Errorf("a write grew the worker from %d to %d, more than the max step %d: %s", prev, r, step, w)
		}
		if w.Code/100 == 2 { // a refused write (a conflict) changed nothing
			prev = *w.Replicas
		}
	}
	if len(writes[b.User]) > 0 {
		t.Logf("takeover: the restarted process first wrote %s after the kill", writes[b.User][0].Time.Sub(killed).Round(time.Millisecond))
	}
}

// TestFaultLeaderKilled: two replicas elect a leader; only it writes. The
// leader is SIGKILLed; the standby takes over when the lease expires and
// converges. The audit log shows one writer at a time.
func TestFaultLeaderKilled(t *testing.T) {
	ns := "e2e-fault-leader"
	f := setupFaults(t, ns, 3, nil)
	a, b := newIdentity(t, "opportunist-a"), newIdentity(t, "opportunist-b")
	args := append([]string{"--round-interval", "1s"}, leaseArgs(ns)...)
	oa := startOpportunistAs(t, a, "opportunist-a", args...)
	waitForReplicas(t, 60*time.Second, ns, "worker", faultWant(3, 2), 0)

	// a leads (it scaled the worker); b starts as a standby, with its caches warm.
	standbyFrom := time.Now()
	ob := startOpportunistAs(t, b, "opportunist-b", args...)
	f.addNode(t)
	waitForReplicas(t, 60*time.Second, ns, "worker", faultWant(4, 2), 0)

	killed := oa.kill(t)
	scaleDeployment(t, ns, "paid", 0)
	took := waitForReplicas(t, 90*time.Second, ns, "worker", faultWant(4, 0), 0)
	t.Logf("leader killed; the standby brought the worker to %d %s later", faultWant(4, 0), took.Round(time.Millisecond))
	ob.stop()

	writes := checkWrites(t, f.c, f.since, a.User, b.User)
	checkOneWriterAtATime(t, writes, a.User, b.User)
	if early := writesBetween(writes[b.User], f.since, killed); len(early) > 0 {
		t.Errorf("the standby wrote while the leader was alive: %v", early)
	}
	if got := replicasWritten(writesBetween(writes[a.User], standbyFrom, killed)); len(got) == 0 || got[len(got)-1] != faultWant(4, 2) {
		t.Errorf("with the standby running, the leader wrote %v; want it to have brought the worker to %d", got, faultWant(4, 2))
	}
	if got := replicasWritten(writes[b.User]); len(got) == 0 || got[len(got)-1] != faultWant(4, 0) {
		t.Errorf("the new leader wrote %v; want it to have brought the worker to %d", got, faultWant(4, 0))
	} else {
		t.Logf("takeover: the standby first wrote %s after the leader was killed", writes[b.User][0].Time.Sub(killed).Round(time.Millisecond))
	}
}

// TestFaultNodeLost: one node goes NotReady, then another is deleted; each
// time the worker shrinks to what the remaining Ready nodes hold.
func TestFaultNodeLost(t *testing.T) {
	ns := "e2e-fault-nodes"
	f := setupFaults(t, ns, 4, nil)
	// Pods on a NotReady or deleted node have no kubelet to confirm their
	// deletion: remove them by force before the namespace is deleted.
	t.Cleanup(func() { forceDeletePods(t, ns, f.nodes[2], f.nodes[3]) })
	a := newIdentity(t, "opportunist-a")
	o := startOpportunistAs(t, a, "opportunist-a", "--round-interval", "1s", "--leader-elect=false") // one process
	waitForReplicas(t, 60*time.Second, ns, "worker", faultWant(4, 2), 0)

	lost := setNodeNotReady(t, f.nodes[3])
	waitForReplicas(t, 30*time.Second, ns, "worker", faultWant(3, 2), 0)
	deleted := time.Now()
	deleteNode(t, f.nodes[2])
	waitForReplicas(t, 30*time.Second, ns, "worker", faultWant(2, 2), 0)
	o.stop()

	writes := checkWrites(t, f.c, f.since, a.User)[a.User]
	for _, e := range []struct {
		what string
		at   time.Time
		want int32
	}{{"went NotReady", lost, faultWant(3, 2)}, {"was deleted", deleted, faultWant(2, 2)}} {
		for _, w := range writesBetween(writes, e.at, time.Now()) {
			if w.Replicas != nil && *w.Replicas == e.want {
				t.Logf("a node %s: the worker was scaled to %d %s later", e.what, e.want, w.Time.Sub(e.at).Round(time.Millisecond))
				break
			}
		}
	}
	// Losing a node only ever shrinks the worker.
	for _, phase := range []struct {
		from, to time.Time
		most     int32
	}{{lost, deleted, faultWant(3, 2)}, {deleted, time.Now(), faultWant(2, 2)}} {
		for _, w := range writesBetween(writes, phase.from, phase.to) {
			if w.Replicas != nil && *w.Replicas > phase.most {
				t.Errorf("wrote %d replicas after a node was lost, more than the %d the remaining nodes hold: %s", *w.Replicas, phase.most, w)
			}
		}
	}
}

// setNodeNotReady takes a node from kwok (which would report it Ready
// again) and marks it NotReady, as a node whose kubelet stopped reporting.
// It returns when the node went NotReady.
func setNodeNotReady(t *testing.T, name string) time.Time {
	t.Helper()
	patchNode(t, name, `{"metadata":{"annotations":{"`+kwokAnnotation+`":null}}}`)
	var since, marked time.Time
	waitFor(t, 30*time.Second, "node "+name+" to stay NotReady", func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if !nodeReady(n) {
			if since.IsZero() {
				since = time.Now()
			}
			return time.Since(since) >= time.Second, nil // kwok has let go of it
		}
		since = time.Time{}
		now := metav1.Now()
		conds := []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "E2ENotReady", LastHeartbeatTime: now, LastTransitionTime: now}}
		for _, c := range n.Status.Conditions {
			if c.Type != corev1.NodeReady {
				conds = append(conds, c)
			}
		}
		n.Status.Conditions = conds
		marked = time.Now()
		_, err = client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return false, err
	})
	return marked
}

// forceDeletePods deletes at once the namespace's pods bound to the nodes.
func forceDeletePods(t *testing.T, ns string, nodes ...string) {
	ctx := context.Background()
	for _, node := range nodes {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
		if err != nil {
			t.Errorf("listing pods on %s: %v", node, err)
			continue
		}
		for _, p := range pods.Items {
			err := client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
			if err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("force-deleting pod %s/%s: %v", ns, p.Name, err)
			}
		}
	}
}
