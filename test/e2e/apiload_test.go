//go:build e2e && scale

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opportunist/opportunist/api/v1alpha1"
)

// apiLoadConfig is the size of an API-load run, from the environment.
type apiLoadConfig struct {
	Nodes   int           `json:"nodes"`   // APILOAD_NODES
	Scalers []int         `json:"scalers"` // APILOAD_SCALERS: the phases, e.g. 1,10,100
	Steady  time.Duration `json:"-"`       // APILOAD_STEADY: each phase's measured window
	Rate    float64       `json:"paidPodsPerSecond"`
	Life    time.Duration `json:"-"` // how long each churned paid pod lives
}

func apiLoadConfigFromEnv(t *testing.T) apiLoadConfig {
	t.Helper()
	c := apiLoadConfig{Nodes: 50, Scalers: []int{1, 10, 100}, Steady: 60 * time.Second, Rate: 2, Life: 10 * time.Second}
	if s := os.Getenv("APILOAD_NODES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			t.Fatalf("APILOAD_NODES=%q: want a whole number of at least 2", s)
		}
		c.Nodes = n
	}
	if s := os.Getenv("APILOAD_SCALERS"); s != "" {
		c.Scalers = nil
		last := 0
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= last {
				t.Fatalf("APILOAD_SCALERS=%q: want increasing whole numbers, e.g. 1,10,100", s)
			}
			c.Scalers, last = append(c.Scalers, n), n
		}
	}
	if s := os.Getenv("APILOAD_STEADY"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 10*time.Second {
			t.Fatalf("APILOAD_STEADY=%q: want a duration of at least 10s", s)
		}
		c.Steady = d
	}
	if s := os.Getenv("APILOAD_RATE"); s != "" {
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || r <= 0 || r > 50 {
			t.Fatalf("APILOAD_RATE=%q: want paid pods a second, above 0 and at most 50", s)
		}
		c.Rate = r
	}
	return c
}

// apiLoadPhase is what one phase measured.
type apiLoadPhase struct {
	Scalers int     `json:"scalers"`
	Seconds float64 `json:"seconds"`
	requestCount
	Rounds     float64 `json:"decisionRounds"`
	PaidPodOps int64   `json:"paidPodCreatesAndDeletes"`
}

// requestCount is what a user sent in a window, from the audit log.
type requestCount struct {
	// Requests are the user's requests received in the window, by
	// "verb resource[/subresource]" (or "verb /path" for non-resource URLs).
	Requests        map[string]int `json:"requests"`
	Total           int            `json:"total"`
	PerMinute       float64        `json:"requestsPerMinute"`
	WritesPerMinute float64        `json:"writesPerMinute"` // create, update, patch, delete
}

// countRequests counts the requests user sent in [from, to) (call it at
// least auditTimeSlack after to) and their rates a minute.
func countRequests(t *testing.T, user string, from, to time.Time) requestCount {
	t.Helper()
	r := requestCount{Requests: auditedRequests(t, user, from, to)}
	writes := 0
	for k, v := range r.Requests {
		r.Total += v
		switch strings.Fields(k)[0] {
		case "create", "update", "patch", "delete":
			writes += v
		}
	}
	secs := to.Sub(from).Seconds()
	r.PerMinute = float64(r.Total) * 60 / secs
	r.WritesPerMinute = float64(writes) * 60 / secs
	return r
}

// TestAPILoad measures the requests opportunist sends to the API server in
// steady churn (paid pods created and deleted at a fixed rate) with a
// growing number of scalers, from the API server's audit log. docs/scale.md
// has the results; `make e2e-apiload` runs it.
func TestAPILoad(t *testing.T) {
	cfg := apiLoadConfigFromEnv(t)
	t.Logf("API load run: %d nodes, scalers %v, %s per phase, %.1f paid pods a second living %s; load average %s",
		cfg.Nodes, cfg.Scalers, cfg.Steady, cfg.Rate, cfg.Life, loadAverage())
	requireEmptyCluster(t)
	c := installCRD(t)
	for _, ns := range []string{"apiload-paid", "apiload-workers"} {
		scaleNamespace(t, ns)
	}
	createScaleNodes(t, fastClient(t), cfg.Nodes)

	id := newIdentity(t, "opportunist-apiload", auditedGroup)
	o := startOpportunistAs(t, id, "opportunist")
	churn := startPaidPodChurn(t, cfg.Rate, cfg.Life)

	var phases []apiLoadPhase
	made := 0
	for _, n := range cfg.Scalers {
		// Each scaler has its own worker, 2 small replicas at most: with
		// the cluster nearly empty every worker sits at its max, so the
		// steady state needs no /scale write and what remains is reading.
		for ; made < n; made++ {
			name := fmt.Sprintf("worker-%03d", made)
			createDeployment(t, "apiload-workers", name, DeploymentSpec{Replicas: 0, Requests: requests("cpu", "100m", "memory", "128Mi")})
			createScaler(t, c, scalerFor("apiload-workers", name, name, 0, 2, map[corev1.ResourceName]v1alpha1.HeadroomValue{"cpu": "10%"}))
		}
		waitForWorkersAtMax(t, n, 2)
		time.Sleep(15 * time.Second) // the last writes of the scale-up and its status settle
		from, rounds0, ops0 := time.Now(), counter(t, o, "opportunist_decision_rounds_total"), churn.ops.Load()
		time.Sleep(cfg.Steady)
		to := time.Now()
		p := apiLoadPhase{Scalers: n, Seconds: to.Sub(from).Seconds(),
			Rounds: counter(t, o, "opportunist_decision_rounds_total") - rounds0, PaidPodOps: churn.ops.Load() - ops0}
		time.Sleep(auditTimeSlack)
		p.requestCount = countRequests(t, id.User, from, to)
		t.Logf("%d scalers: %.0f requests a minute (%.0f of them writes), %.0f decision rounds and %d paid pod creates and deletes in %.0fs:\n%s",
			n, p.PerMinute, p.WritesPerMinute, p.Rounds, p.PaidPodOps, p.Seconds, requestTable(p.Requests, p.Seconds))
		phases = append(phases, p)
	}
	churn.stop()

	b, err := json.MarshalIndent(struct {
		Config apiLoadConfig  `json:"config"`
		Binary string         `json:"binary"`
		Phases []apiLoadPhase `json:"phases"`
	}{cfg, binary, phases}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(artifactDir, "apiload-results.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("results written to %s", path)
}

// waitForWorkersAtMax waits until the first n workers run max ready replicas.
func waitForWorkersAtMax(t *testing.T, n int, max int32) {
	t.Helper()
	waitFor(t, 5*time.Minute, fmt.Sprintf("%d workers at %d ready replicas", n, max), func(ctx context.Context) (bool, error) {
		l, err := client.AppsV1().Deployments("apiload-workers").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		ready := 0
		for _, d := range l.Items {
			if *d.Spec.Replicas == max && d.Status.ReadyReplicas == max {
				ready++
			}
		}
		if ready < n {
			return false, fmt.Errorf("%d of %d at max", ready, n)
		}
		return true, nil
	})
}

// paidPodChurn creates paid pods at rate a second on average (bound by the
// scheduler) and deletes each one about life later. The gaps are jittered
// (0.5 to 1.5 times the mean, a fixed seed): a strictly periodic churn
// beats with the rounds' own period, and rounds that always sample it at the
// same phase would see a cluster that never changes.
type paidPodChurn struct {
	ops    atomic.Int64 // creates and deletes done
	cancel context.CancelFunc
	done   chan struct{}
}

func startPaidPodChurn(t *testing.T, rate float64, life time.Duration) *paidPodChurn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := &paidPodChurn{cancel: cancel, done: make(chan struct{})}
	keep := int(rate * life.Seconds())
	zero := int64(0)
	go func() {
		defer close(ch.done)
		rng := rand.New(rand.NewPCG(1, 2))
		mean := float64(time.Second) / rate
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(mean * (0.5 + rng.Float64()))):
			}
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: "apiload-paid", Name: fmt.Sprintf("paid-%06d", i), Labels: map[string]string{"app": "paid-churn"}},
				Spec: corev1.PodSpec{
					Containers:                    []corev1.Container{{Name: "main", Image: "fake", Resources: corev1.ResourceRequirements{Requests: requests("cpu", "250m", "memory", "256Mi")}}},
					NodeSelector:                  mergeSelector(nil),
					TerminationGracePeriodSeconds: &zero,
				},
			}
			if _, err := client.CoreV1().Pods("apiload-paid").Create(ctx, pod, metav1.CreateOptions{}); err != nil && ctx.Err() == nil {
				t.Errorf("churn: creating %s: %v", pod.Name, err)
			}
			ch.ops.Add(1)
			if old := i - keep; old >= 0 {
				name := fmt.Sprintf("paid-%06d", old)
				if err := client.CoreV1().Pods("apiload-paid").Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
					t.Errorf("churn: deleting %s: %v", name, err)
				}
				ch.ops.Add(1)
			}
		}
	}()
	t.Cleanup(ch.stop)
	return ch
}

func (ch *paidPodChurn) stop() {
	ch.cancel()
	<-ch.done
}

// requestTable renders counts as requests a minute, largest first.
func requestTable(counts map[string]int, seconds float64) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %8.1f/min  %s\n", float64(counts[k])*60/seconds, k)
	}
	return b.String()
}
