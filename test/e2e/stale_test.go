//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/opportunist/opportunist/api/v1alpha1"
)

// runRules is what `opportunist run` needs with --leader-elect=false, for
// Deployment targets: the capacity model's nodes and pods, scalers and their
// status, HPAs (conflict checks), targets and their /scale, PriorityClasses,
// Events. podRule is kept apart so a test can take it away.
var (
	podRule  = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}
	runRules = []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"opportunisticscalers"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"opportunisticscalers/status"}, Verbs: []string{"get", "update", "patch"}},
		{APIGroups: []string{"autoscaling"}, Resources: []string{"horizontalpodautoscalers"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale"}, Verbs: []string{"get", "update", "patch"}},
		{APIGroups: []string{"scheduling.k8s.io"}, Resources: []string{"priorityclasses"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "update", "patch"}},
	}
)

// serviceAccount creates a ServiceAccount in ns and returns a token for it
// minted through the TokenRequest API.
func serviceAccount(t *testing.T, ns, name string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ServiceAccount %s/%s: %v", ns, name, err)
	}
	expiry := int64(3600)
	tr, err := client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("minting a token for %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}

// grantRun gives ServiceAccount ns/sa a ClusterRole with rules, the rights a
// metrics API server needs to delegate authentication and authorization,
// and removes them when the test ends. It returns the ClusterRole's name.
func grantRun(t *testing.T, ns, sa string, rules []rbacv1.PolicyRule) string {
	t.Helper()
	ctx := context.Background()
	rbac := client.RbacV1()
	name := "e2e-" + ns + "-" + sa
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa}}
	if _, err := rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ClusterRole %s: %v", name, err)
	}
	for _, b := range []struct{ name, role string }{{name, name}, {name + "-auth-delegator", "system:auth-delegator"}} {
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: b.name}, Subjects: subject, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.role}}
		if _, err := rbac.ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating ClusterRoleBinding %s: %v", b.name, err)
		}
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name}, Subjects: subject,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "extension-apiserver-authentication-reader"}}
	if _, err := rbac.RoleBindings("kube-system").Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating RoleBinding kube-system/%s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = rbac.ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = rbac.ClusterRoleBindings().Delete(ctx, name+"-auth-delegator", metav1.DeleteOptions{})
		_ = rbac.RoleBindings("kube-system").Delete(ctx, name, metav1.DeleteOptions{})
		_ = rbac.ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
	})
	return name
}

// setRules replaces a ClusterRole's rules and waits until the API server's
// authorizer agrees on whether ns/sa may watch pods.
func setRules(t *testing.T, role, ns, sa string, rules []rbacv1.PolicyRule, podsAllowed bool) {
	t.Helper()
	ctx := context.Background()
	cr, err := client.RbacV1().ClusterRoles().Get(ctx, role, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cr.Rules = rules
	if _, err := client.RbacV1().ClusterRoles().Update(ctx, cr, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating ClusterRole %s: %v", role, err)
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("the authorizer to say pods watch allowed=%v for %s/%s", podsAllowed, ns, sa), func(ctx context.Context) (bool, error) {
		sar, err := client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               "system:serviceaccount:" + ns + ":" + sa,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "watch", Resource: "pods"},
		}}, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		return sar.Status.Allowed == podsAllowed, nil
	})
}

// tokenKubeconfig writes a kubeconfig that reaches the test cluster's API
// server at server (e.g. through a proxy) with a bearer token.
func tokenKubeconfig(t *testing.T, server, token string) string {
	t.Helper()
	admin, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cluster := admin.Clusters[admin.Contexts[admin.CurrentContext].Cluster]
	ca := cluster.CertificateAuthorityData
	if len(ca) == 0 {
		if ca, err = os.ReadFile(cluster.CertificateAuthority); err != nil {
			t.Fatal(err)
		}
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["token"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "token"}
	cfg.CurrentContext = "e2e"
	path := filepath.Join(testDir(t), "token.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// apiServerURL is the test cluster's API server address.
func apiServerURL(t *testing.T) string {
	t.Helper()
	admin, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return admin.Clusters[admin.Contexts[admin.CurrentContext].Cluster].Server
}

// cutProxy forwards TCP to the API server and can cut every open
// connection at once, as a network blip or an API server instance going
// away does: open watches end, and clients reconnect through it.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, conns: map[net.Conn]bool{}}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns[in], p.conns[out] = true, true
			p.mu.Unlock()
			go pipe(in, out)
			go pipe(out, in)
		}
	}()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// cut closes every open connection; new ones are accepted.
func (p *cutProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns) / 2
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
	return n
}

func (p *cutProxy) URL() string { return "https://" + p.ln.Addr().String() }

// staleRun is a cluster with one 6-core node, a 1-core worker its scaler
// fills (min 1, max 20), and an opportunist running as a ServiceAccount
// through a cutProxy.
type staleRun struct {
	ns, sa, role string
	c            crclient.Client
	o            *Opportunist
	proxy        *cutProxy
	metricsPort  int
}

func startStaleRun(t *testing.T, ns string, args ...string) *staleRun {
	t.Helper()
	requireEmptyCluster(t)
	r := &staleRun{ns: ns, sa: "opportunist", c: installCRD(t)}
	createNamespace(t, ns)
	createNode(t, ns+"-1", NodeShape{CPU: "6", Memory: "16Gi"})
	createDeployment(t, ns, "worker", DeploymentSpec{Replicas: 1, Requests: requests("cpu", "1")})
	createScaler(t, r.c, scalerFor(ns, "worker", "worker", 1, 20, nil))
	token := serviceAccount(t, ns, r.sa)
	r.role = grantRun(t, ns, r.sa, append([]rbacv1.PolicyRule{podRule}, runRules...))
	setRules(t, r.role, ns, r.sa, append([]rbacv1.PolicyRule{podRule}, runRules...), true)
	r.proxy = startCutProxy(t, strings.TrimPrefix(apiServerURL(t), "https://"))
	r.metricsPort = freePort(t)
	r.o = startOpportunist(t, append([]string{"--kubeconfig", tokenKubeconfig(t, r.proxy.URL(), token), "--leader-elect=false",
		"--round-interval", "1s", "--metrics-api-port", strconv.Itoa(r.metricsPort)}, args...)...)
	waitForReplicas(t, 30*time.Second, ns, "worker", 6, 0)
	return r
}

// breakPodWatch takes list and watch of pods away from the ServiceAccount
// and cuts its connections: its pod watch ends and every re-list is
// Forbidden, while writes (scale, status, events) still work.
func (r *staleRun) breakPodWatch(t *testing.T) time.Time {
	t.Helper()
	setRules(t, r.role, r.ns, r.sa, runRules, false)
	broken := time.Now()
	t.Logf("pods list/watch revoked; cut %d connections", r.proxy.cut())
	return broken
}

func (r *staleRun) restorePodWatch(t *testing.T) {
	t.Helper()
	setRules(t, r.role, r.ns, r.sa, append([]rbacv1.PolicyRule{podRule}, runRules...), true)
}

// readyCondition returns the scaler's Ready condition.
func (r *staleRun) readyCondition(ctx context.Context) (metav1.Condition, error) {
	var s v1alpha1.OpportunisticScaler
	if err := r.c.Get(ctx, crclient.ObjectKey{Namespace: r.ns, Name: "worker"}, &s); err != nil {
		return metav1.Condition{}, err
	}
	for _, c := range s.Status.Conditions {
		if c.Type == "Ready" {
			return c, nil
		}
	}
	return metav1.Condition{}, errors.New("no Ready condition")
}

// waitForStaleReport waits until status, an Event, the log and the metrics
// report that behaviour was applied to stale data.
func (r *staleRun) waitForStaleReport(t *testing.T, behaviour string) {
	t.Helper()
	applied := behaviour + " applied"
	waitFor(t, 30*time.Second, "the Ready condition to say "+applied, func(ctx context.Context) (bool, error) {
		c, err := r.readyCondition(ctx)
		if err != nil {
			return false, err
		}
		if c.Status != metav1.ConditionFalse || c.Reason != "CapacityStale" || !strings.Contains(c.Message, applied) ||
			!strings.Contains(c.Message, "stale since") || !strings.Contains(c.Message, "forbidden") {
			return false, fmt.Errorf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
		}
		t.Logf("condition: Ready=False %s: %s", c.Reason, c.Message)
		return true, nil
	})
	waitFor(t, 10*time.Second, "a CapacityStale Event saying "+applied, func(ctx context.Context) (bool, error) {
		evs, err := client.CoreV1().Events(r.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == "CapacityStale" && e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, applied) {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d events, none CapacityStale with %q", len(evs.Items), applied)
	})
	waitFor(t, 10*time.Second, "a log line saying "+applied, func(context.Context) (bool, error) {
		raw, err := os.ReadFile(r.o.LogPath)
		return err == nil && strings.Contains(string(raw), "reason=CapacityStale") && strings.Contains(string(raw), applied), err
	})
	waitFor(t, 10*time.Second, "the stale metrics", func(ctx context.Context) (bool, error) {
		m, err := r.o.scrape(ctx)
		if err != nil {
			return false, err
		}
		key := fmt.Sprintf("opportunist_stale_behaviour{behaviour=%q}", behaviour)
		if m[key] != 1 || m["opportunist_capacity_data_ready"] != 0 || m["opportunist_capacity_stale_seconds"] <= 0 {
			return false, fmt.Errorf("%s = %v, opportunist_capacity_data_ready = %v, opportunist_capacity_stale_seconds = %v",
				key, m[key], m["opportunist_capacity_data_ready"], m["opportunist_capacity_stale_seconds"])
		}
		if _, served := m["cpu_capacity_remaining"]; served {
			return false, errors.New("cpu_capacity_remaining still served on stale data")
		}
		return true, nil
	})
}

// waitForFresh waits until the data is current again and the scaler acts.
func (r *staleRun) waitForFresh(t *testing.T) {
	t.Helper()
	waitFor(t, 45*time.Second, "the capacity data to be fresh and the scaler Ready again", func(ctx context.Context) (bool, error) {
		m, err := r.o.scrape(ctx)
		if err != nil {
			return false, err
		}
		c, err := r.readyCondition(ctx)
		if err != nil {
			return false, err
		}
		if m["opportunist_capacity_data_ready"] != 1 || m["opportunist_capacity_stale_seconds"] != 0 || c.Status != metav1.ConditionTrue {
			return false, fmt.Errorf("data ready %v, stale %vs, Ready=%s %s", m["opportunist_capacity_data_ready"], m["opportunist_capacity_stale_seconds"], c.Status, c.Message)
		}
		for _, b := range []string{"freeze", "shrink-to-min"} {
			if v := m[fmt.Sprintf("opportunist_stale_behaviour{behaviour=%q}", b)]; v != 0 {
				return false, fmt.Errorf("opportunist_stale_behaviour{behaviour=%q} = %v after recovery", b, v)
			}
		}
		return true, nil
	})
}

// TestStaleShrinkToMin: the pod watch of opportunist's ServiceAccount is
// refused (Forbidden) while the API server still takes its writes. After
// --stale-after the worker goes to its min, and says so in status, an Event,
// the log and the metrics; with RBAC restored it fills the node again.
func TestStaleShrinkToMin(t *testing.T) {
	r := startStaleRun(t, "e2e-stale-shrink", "--on-stale", "shrink-to-min", "--stale-after", "3s")
	trace := traceReplicas(t, r.ns, "worker")
	r.breakPodWatch(t)
	took := waitForReplicas(t, 30*time.Second, r.ns, "worker", 1, 0)
	t.Logf("worker at its min 1 %s after the pod watch was refused (--stale-after 3s)", took.Round(100*time.Millisecond))
	if took < 3*time.Second {
		t.Errorf("shrank %s after the watch broke, before --stale-after 3s", took)
	}
	r.waitForStaleReport(t, "shrink-to-min")
	waitFor(t, 10*time.Second, `a log line "scaled on stale data"`, func(context.Context) (bool, error) {
		raw, err := os.ReadFile(r.o.LogPath)
		return err == nil && strings.Contains(string(raw), "scaled on stale data"), err
	})

	r.restorePodWatch(t)
	waitForReplicas(t, 60*time.Second, r.ns, "worker", 6, 0)
	r.waitForFresh(t)
	_, values := trace.directionChanges()
	t.Logf("worker replicas seen: %v", values)
	for _, v := range values {
		if v < 1 || v > 20 {
			t.Errorf("worker at %d, outside [min 1, max 20]: %v", v, values)
		}
	}
}

// TestStaleFreeze: the same refused pod watch with the default --on-stale
// (freeze): the count holds, the freeze is reported, the metrics APIs answer
// with an error rather than old numbers, and all recovers with RBAC.
func TestStaleFreeze(t *testing.T) {
	r := startStaleRun(t, "e2e-stale-freeze", "--stale-after", "2s")
	registerMetricsAPI(t, r.metricsPort)
	path := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + r.ns + "/services/cluster-metrics/cpu_capacity_remaining"
	if got := metricValue(t, path); got != 0 {
		t.Fatalf("cpu_capacity_remaining = %d before the break, want 0 (6 cores, 6 workers)", got)
	}
	trace := traceReplicas(t, r.ns, "worker")
	r.breakPodWatch(t)
	r.waitForStaleReport(t, "freeze")
	for _, p := range []string{path, "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + r.ns + "/cpu_capacity_remaining"} {
		var list metricValueList
		err := getRaw(context.Background(), p, &list)
		if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "stale") {
			t.Errorf("GET %s on stale data: %v (items %+v), want 503 naming stale data", p, err, list.Items)
		}
	}
	// Paid load arrives meanwhile: unseen, so nothing may move.
	createDeployment(t, r.ns, "paid", DeploymentSpec{Replicas: 1, Requests: requests("cpu", "2")})
	r.o.waitRounds(t, 3, 20*time.Second)
	if _, values := trace.directionChanges(); len(values) != 1 || values[0] != 6 {
		t.Errorf("worker replicas moved while frozen: %v, want [6]", values)
	}

	r.restorePodWatch(t)
	r.waitForFresh(t)
	// Fresh numbers include the paid pod (Pending for lack of room): the worker yields 2 cores.
	waitForReplicas(t, 30*time.Second, r.ns, "worker", 4, 0)
	if got := metricValue(t, path); got != 0 {
		t.Errorf("cpu_capacity_remaining = %d after recovery, want 0", got)
	}
}
