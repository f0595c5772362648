//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
)

// TestExamplesApply server-side applies every manifest of examples/seed
// (its hpa/ variant too), examples/seed-cluster and examples/slots to the
// real API server (a server-side apply fails on a field the schema does not
// declare, so a misspelt headroomSlots is caught), then checks the Role
// grants opportunist's ServiceAccount exactly the worker's scale.
func TestExamplesApply(t *testing.T) {
	requireEmptyCluster(t)
	installCRD(t)
	// Before the apply, so it is deleted after the APIServices (t.Cleanup is LIFO).
	ensureChartServiceAccount(t)
	objs := clusterScopedFirst(readManifests(t, "examples/seed", "examples/seed-cluster", "examples/slots"))
	if len(objs) < 25 {
		t.Fatalf("found only %d objects in examples/seed, examples/seed-cluster and examples/slots; are the manifests there?", len(objs))
	}
	ctx := context.Background()
	start := time.Now()
	newApplier(t, "e2e-examples").apply(t, objs)
	t.Logf("server-side applied %d objects in %s", len(objs), time.Since(start).Round(time.Millisecond))

	scaleAsServiceAccount(t)

	// The Role of rbac.yaml in detail, through the API server's own authorizer.
	sa := "system:serviceaccount:opportunist:opportunist"
	for _, tc := range []struct {
		verb, resource, sub, name string
		want                      bool
	}{
		{"update", "deployments", "scale", "worker", true},
		{"get", "deployments", "scale", "worker", true},
		{"get", "deployments", "", "worker", true},
		{"update", "deployments", "scale", "sample-metrics-app", false},
		{"update", "deployments", "", "worker", false}, // the scale, not the spec
		{"patch", "deployments", "scale", "worker", false},
		{"get", "secrets", "", "", false},
	} {
		group := "apps"
		if tc.resource == "secrets" {
			group = ""
		}
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   sa,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:opportunist", "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: "demo", Verb: tc.verb, Group: group, Resource: tc.resource, Subresource: tc.sub, Name: tc.name,
			},
		}}
		got, err := client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("SubjectAccessReview: %v", err)
		}
		if got.Status.Allowed != tc.want {
			t.Errorf("%s may %s %s/%s %q in demo: %v, want %v (%s)", sa, tc.verb, tc.resource, tc.sub, tc.name, got.Status.Allowed, tc.want, got.Status.Reason)
		}
	}
}

// ensureChartServiceAccount makes the ServiceAccount the chart would,
// opportunist/opportunist, unless it exists.
func ensureChartServiceAccount(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Get(ctx, "opportunist", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		createNamespace(t, "opportunist")
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "opportunist", Name: "opportunist"}}
	if _, err := client.CoreV1().ServiceAccounts("opportunist").Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating ServiceAccount opportunist/opportunist: %v", err)
	}
}

// scaleAsServiceAccount acts as the chart's ServiceAccount with a token of
// its own: it may resize the worker and nothing else of the demo.
func scaleAsServiceAccount(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	_, as := serviceAccountKubeconfig(t, "opportunist", "opportunist")

	// The deployment controller writes the worker's status right after the
	// apply, so a read-modify-write of its scale can conflict: retry as
	// any client of /scale would.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		scale, err := as.AppsV1().Deployments("demo").GetScale(ctx, "worker", metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading the worker's scale: %w", err)
		}
		scale.Spec.Replicas = 3
		_, err = as.AppsV1().Deployments("demo").UpdateScale(ctx, "worker", scale, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Errorf("as opportunist/opportunist, scaling the worker: %v", err)
	}
	other := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "sample-metrics-app"}, Spec: autoscalingv1.ScaleSpec{Replicas: 5}}
	if _, err := as.AppsV1().Deployments("demo").UpdateScale(ctx, "sample-metrics-app", other, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("as opportunist/opportunist, scaling the paid app: got %v, want Forbidden", err)
	}
	if _, err := as.CoreV1().Secrets("demo").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("as opportunist/opportunist, listing Secrets: got %v, want Forbidden", err)
	}
}

// shBlock is a fenced code block of a README.
type shBlock struct {
	line int    // where its fence opens, 1-based
	info string // the fence's info string: "sh", "sh teardown", "console", ...
	body string
}

// fencedBlocks returns every fenced block of a Markdown file, in order.
func fencedBlocks(text string) ([]shBlock, error) {
	var blocks []shBlock
	var cur *shBlock
	var body strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		fence := strings.HasPrefix(line, "```")
		switch {
		case fence && cur == nil:
			cur = &shBlock{line: n, info: strings.TrimSpace(strings.TrimPrefix(line, "```"))}
			body.Reset()
		case fence && strings.TrimSpace(line) == "```":
			cur.body = body.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line + "\n")
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("the block opened at line %d is never closed", cur.line)
	}
	return blocks, nil
}

// walkthroughScript is the README's `sh` blocks, in order, as one bash
// script (so variables and the current directory carry over, as in the
// reader's shell); every other block must be one the README shows but does
// not run, and is listed. A block with no info string fails: it would be
// skipped silently.
func walkthroughScript(t *testing.T, readme string) (script string, run int) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, readme))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := fencedBlocks(string(raw))
	if err != nil {
		t.Fatalf("%s: %v", readme, err)
	}
	var b strings.Builder
	b.WriteString("set -euo pipefail\n")
	for _, bl := range blocks {
		switch bl.info {
		case "sh":
			run++
			fmt.Fprintf(&b, "echo \"+++ %s:%d $EPOCHREALTIME\"\nset -x\n%s{ set +x; } 2>/dev/null\n", readme, bl.line, bl.body)
		case "sh teardown":
			t.Logf("not run: %s:%d (teardown of the control plane the other tests use): %s", readme, bl.line, strings.TrimSpace(bl.body))
		case "console", "text", "yaml":
			// Output and excerpts, shown, not run.
		default:
			t.Errorf("%s:%d: a fenced block with info string %q: mark it sh (run by this test), \"sh teardown\" (not run), or console/text/yaml (shown)", readme, bl.line, bl.info)
		}
	}
	return b.String(), run
}

// TestSeedWalkthrough runs examples/seed/README.md as written, on this
// test's control plane, and checks what it promises: the worker fills to
// 146, yields to 86 when paid load grows, refills to 146; the app's HPA
// shows <unknown> without an adapter; the write-up's HPA reads 30k/30k
// from opportunist's metrics API.
func TestSeedWalkthrough(t *testing.T) {
	requireEmptyCluster(t)
	const readme = "examples/seed/README.md"
	script, blocks := walkthroughScript(t, readme)
	if blocks < 8 {
		t.Fatalf("%s has %d sh blocks; the walkthrough has at least 8 steps", readme, blocks)
	}
	dir := testDir(t)
	scriptPath := filepath.Join(dir, "walkthrough.sh")
	if err := os.WriteFile(scriptPath, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	demoDir := filepath.Join(dir, "demo")
	t.Cleanup(func() { cleanUpWalkthrough(t, demoDir) })
	dumpOnFailure(t, nil) // runs before the clean-up: nodes, pods, events as the failure left them
	workers := traceReplicas(t, "demo", "worker")
	paid := traceReplicas(t, "demo", "sample-metrics-app")

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", scriptPath)
	cmd.Dir = repoRoot
	// The test's cluster (OPPORTUNIST_* from the environment); a free port
	// for opportunist's /metrics; the metrics API stays on the README's 6443.
	cmd.Env = append(os.Environ(), "DEMO_LISTEN="+freeAddress(t), "DEMO_DIR="+demoDir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	logPath := filepath.Join(dir, "walkthrough.log")
	_ = os.WriteFile(logPath, out.Bytes(), 0o644)
	if err != nil {
		t.Fatalf("the walkthrough failed after %s (%v); full output in %s, opportunist's log in %s; last lines:\n%s",
			took.Round(time.Millisecond), err, logPath, filepath.Join(demoDir, "opportunist.log"), lastLines(out.String(), 40))
	}
	t.Logf("%s: %d sh blocks ran in %s (output: %s); %s", readme, blocks, took.Round(time.Millisecond), logPath, blockTimes(out.String(), took))

	// The README's `kubectl wait`s already failed the script if a count was
	// not reached; the traces check the order: fill, yield, refill.
	_, w := workers.directionChanges()
	_, p := paid.directionChanges()
	t.Logf("worker replicas seen: %v; sample-metrics-app replicas seen: %v", w, p)
	if !inOrder(w, 146, 86, 146) {
		t.Errorf("worker replicas %v: want 146, then 86 (paid load up), then 146 again", w)
	}
	if !inOrder(p, 2, 17, 2) {
		t.Errorf("sample-metrics-app replicas %v: want 2, 17, 2", p)
	}
	for _, promise := range []string{
		"<unknown>/500m", // the app's HPA has no adapter here
		"30k/30k",        // the write-up's HPA reads cpu_capacity_remaining from opportunist
		`"metric":{"name":"cpu_capacity_remaining"`,
		"cpu_capacity_remaining 30000",
		`opportunist_desired_replicas{scaler="demo/worker"} 146`,
	} {
		if !strings.Contains(out.String(), promise) {
			t.Errorf("the walkthrough's output does not show %q (see %s)", promise, logPath)
		}
	}
	if took > 90*time.Second {
		t.Errorf("the walkthrough took %s, want under 90s", took.Round(time.Millisecond))
	}
}

// blockTimes says how long each block took, from the markers the script
// prints as each one starts: "README.md:57 3.2s, ...".
func blockTimes(output string, total time.Duration) string {
	var names []string
	var starts []float64
	for _, line := range strings.Split(output, "\n") {
		rest, ok := strings.CutPrefix(line, "+++ ")
		if !ok {
			continue
		}
		name, at, _ := strings.Cut(rest, " ")
		var sec float64
		if _, err := fmt.Sscan(at, &sec); err != nil {
			continue
		}
		names, starts = append(names, filepath.Base(name)), append(starts, sec)
	}
	var parts []string
	for i := range names {
		end := starts[0] + total.Seconds()
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		parts = append(parts, fmt.Sprintf("%s %.1fs", names[i], end-starts[i]))
	}
	return strings.Join(parts, ", ")
}

// inOrder reports whether want appears in seq as a subsequence.
func inOrder(seq []int32, want ...int32) bool {
	i := 0
	for _, v := range seq {
		if i < len(want) && v == want[i] {
			i++
		}
	}
	return i == len(want)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cleanUpWalkthrough undoes what a failed walkthrough left, in the order its
// last step would: APIServices, opportunist, namespaces, nodes, class.
func cleanUpWalkthrough(t *testing.T, demoDir string) {
	ctx := context.Background()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Error(err)
		return
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	for _, name := range []string{"v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io"} {
		if err := dyn.Resource(apiServiceGVR).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting APIService %s: %v", name, err)
		}
	}
	if raw, err := os.ReadFile(filepath.Join(demoDir, "opportunist.pid")); err == nil {
		var pid int
		if _, err := fmt.Sscan(string(raw), &pid); err == nil && pid > 0 {
			if p, err := os.FindProcess(pid); err == nil && p.Signal(os.Interrupt) == nil {
				t.Logf("stopped the walkthrough's opportunist (pid %d), which it had left running", pid)
			}
		}
	}
	for _, ns := range []string{"demo", "opportunist-local"} {
		if err := client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", ns, err)
		}
	}
	// Nodes last: kwok finishes deleting pods only on nodes that exist.
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Namespaces().Get(ctx, "demo", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Error("namespace demo still present 60s after deletion")
	}
	for i := 1; i <= 6; i++ {
		deleteNode(t, fmt.Sprintf("kontron-%d", i))
	}
	if err := client.SchedulingV1().PriorityClasses().Delete(ctx, "opportunistic", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting PriorityClass opportunistic: %v", err)
	}
}
