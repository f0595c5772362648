//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/opportunist/opportunist/api/v1alpha1"
)

// TestInvalidScalersRejected: the real API server refuses bad scalers with
// the CRD's own messages, as a user of kubectl apply sees them (strict field
// validation, as kubectl sends), and stores nothing.
func TestInvalidScalersRejected(t *testing.T) {
	installCRD(t)
	ns := "e2e-badinput"
	createNamespace(t, ns)
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	scalers := dynamic.NewForConfigOrDie(cfg).Resource(v1alpha1.GroupVersion.WithResource("opportunisticscalers")).Namespace(ns)
	const target = "scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: worker}\n"
	const web = "{apiVersion: apps/v1, kind: Deployment, name: web}"
	tests := []struct {
		name, spec string
		want       []string // every piece must be in the message
	}{
		{"min above max", target + "minReplicas: 5\nmaxReplicas: 2",
			[]string{"spec: Invalid value", "minReplicas must not exceed maxReplicas"}},
		{"negative headroom", target + "maxReplicas: 5\nheadroom: {cpu: \"-2\"}",
			[]string{"spec.headroom[cpu]: Invalid value", "must not be negative"}},
		{"percent above 100", target + "maxReplicas: 5\nheadroom: {memory: \"150%\"}",
			[]string{"spec.headroom[memory]: Invalid value", "a percent must be at most 100%"}},
		{"not a quantity", target + "maxReplicas: 5\nheadroom: {cpu: lots}",
			[]string{"spec.headroom[cpu]: Invalid value", `must be a quantity ("30", "64Gi"), a percent ("15%") or "auto" (learned from the demand history)`}},
		{"unknown prediction mode", target + "maxReplicas: 5\nprediction: {mode: Manual}",
			[]string{"spec.prediction.mode: Unsupported value: \"Manual\"", `supported values: "Off", "Preview", "Auto"`}},
		{"prediction quantile above 1", target + "maxReplicas: 5\nprediction: {mode: Auto, quantile: \"1.5\"}",
			[]string{"spec.prediction.quantile: Invalid value", `must be a decimal between 0 and 1, e.g. "0.9"`}},
		{"negative lead time", target + "maxReplicas: 5\nprediction: {mode: Auto, leadTime: -1m}",
			[]string{"spec.prediction.leadTime: Invalid value", `must be a duration between 0s and 6h, e.g. "90s"`}},
		{"missing target name", "scaleTargetRef: {apiVersion: apps/v1, kind: Deployment}\nmaxReplicas: 5",
			[]string{"spec.scaleTargetRef.name: Required value"}},
		{"missing maxReplicas", target + "minReplicas: 1",
			[]string{"spec.maxReplicas: Required value"}},
		{"maxReplicas 0", target + "maxReplicas: 0",
			[]string{"spec.maxReplicas: Invalid value: 0", "should be greater than or equal to 1"}},
		{"negative minReplicas", target + "minReplicas: -1\nmaxReplicas: 5",
			[]string{"spec.minReplicas: Invalid value: -1", "should be greater than or equal to 0"}},
		{"utilisation above 100", target + "maxReplicas: 5\ntargetUtilizationPercent: 120",
			[]string{"spec.targetUtilizationPercent: Invalid value: 120", "should be less than or equal to 100"}},
		{"weight 0", target + "maxReplicas: 5\nweight: 0",
			[]string{"spec.weight: Invalid value: 0", "should be greater than or equal to 1"}},
		{"wrong type", target + "maxReplicas: five",
			[]string{"spec.maxReplicas: Invalid value: \"string\"", "must be of type integer"}},
		{"misspelled field", target + "maxReplicas: 5\nminReplica: 1",
			[]string{`unknown field "spec.minReplica"`}},
		{"slot with shapeFrom and requests", target + "maxReplicas: 5\nheadroomSlots: [{shapeFrom: " + web + ", requests: {cpu: \"4\"}, count: 4}]",
			[]string{"spec.headroomSlots[0]: Invalid value", "set exactly one of shapeFrom (read the shape of a paid workload's pods) or requests (give it)"}},
		{"slot with neither shapeFrom nor requests", target + "maxReplicas: 5\nheadroomSlots: [{count: 4}]",
			[]string{"spec.headroomSlots[0]: Invalid value", "set exactly one of shapeFrom"}},
		{"slot count 0", target + "maxReplicas: 5\nheadroomSlots: [{shapeFrom: " + web + ", count: 0}]",
			[]string{"spec.headroomSlots[0].count: Invalid value", `must be a number of pods from 1 to 10000, or "auto"`}},
		{"slot count above 10000", target + "maxReplicas: 5\nheadroomSlots: [{requests: {cpu: 1}, count: 10001}]",
			[]string{"spec.headroomSlots[0].count: Invalid value", `must be a number of pods from 1 to 10000, or "auto"`}},
		{"slot count neither a number nor auto", target + "maxReplicas: 5\nheadroomSlots: [{requests: {cpu: 1}, count: many}]",
			[]string{"spec.headroomSlots[0].count: Invalid value", `must be a number of pods from 1 to 10000, or "auto"`}},
		{"negative slot requests", target + "maxReplicas: 5\nheadroomSlots: [{requests: {cpu: \"-4\", memory: 8Gi}, count: 1}]",
			[]string{"spec.headroomSlots[0].requests: Invalid value", "requests must not be negative"}},
		{"empty slot requests", target + "maxReplicas: 5\nheadroomSlots: [{requests: {}, count: 1}]",
			[]string{"spec.headroomSlots[0].requests", "should have at least 1 properties"}},
		{"slot name not a DNS label", target + "maxReplicas: 5\nheadroomSlots: [{name: Web_1, requests: {cpu: 1}, count: 1}]",
			[]string{"spec.headroomSlots[0].name: Invalid value", "must be a DNS label"}},
		{"slot names twice by default", target + "maxReplicas: 5\nheadroomSlots: [{shapeFrom: " + web + ", count: 1}, {shapeFrom: {apiVersion: apps/v1, kind: StatefulSet, name: web}, count: 1}]",
			[]string{"spec.headroomSlots: Invalid value", "slot names must be unique (a slot without a name is named after its shapeFrom.name): give each slot its own name"}},
		{"shapeFrom without name", target + "maxReplicas: 5\nheadroomSlots: [{shapeFrom: {apiVersion: apps/v1, kind: Deployment}, count: 1}]",
			[]string{"spec.headroomSlots[0].shapeFrom.name: Required value"}},
		{"reclaim theta above 1", target + "maxReplicas: 5\nreclaim: {enabled: true, theta: \"1.5\"}",
			[]string{"spec.reclaim.theta: Invalid value", `theta must be a decimal above 0 and at most 1, e.g. "0.75"`}},
		{"reclaim theta 0", target + "maxReplicas: 5\nreclaim: {enabled: true, theta: \"0.0\"}",
			[]string{"spec.reclaim.theta: Invalid value", "theta must be a decimal above 0"}},
		{"reclaim of pods", target + "maxReplicas: 5\nreclaim: {enabled: true, resources: [pods]}",
			[]string{"spec.reclaim.resources[0]: Unsupported value: \"pods\"", `supported values: "cpu", "memory"`}},
		{"reclaim cpu twice", target + "maxReplicas: 5\nreclaim: {enabled: true, resources: [cpu, cpu]}",
			[]string{"spec.reclaim.resources: Invalid value", "resources must not repeat"}},
		{"reclaim margin of memory not reclaimed", target + "maxReplicas: 5\nreclaim: {enabled: true, margin: {memory: 1Gi}}",
			[]string{"spec.reclaim: Invalid value", "margin may name only the reclaimed resources"}},
		{"nine slots", target + "maxReplicas: 5\nheadroomSlots: [" + strings.Repeat("{requests: {cpu: 1}, count: 1}, ", 8) + "{requests: {cpu: 1}, count: 1}]",
			[]string{"spec.headroomSlots: Too many: 9: must have at most 8 items"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := strings.ReplaceAll(tt.name, " ", "-")
			var spec map[string]any
			if err := yaml.Unmarshal([]byte(tt.spec), &spec); err != nil {
				t.Fatal(err)
			}
			obj := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": v1alpha1.GroupVersion.String(), "kind": "OpportunisticScaler",
				"metadata": map[string]any{"name": name}, "spec": spec,
			}}
			_, err := scalers.Create(context.Background(), obj, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
			if err == nil {
				t.Fatalf("the API server accepted spec:\n%s", tt.spec)
			}
			if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
				t.Errorf("error %v is neither Invalid nor BadRequest", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q lacks %q", err, w)
				}
			}
			if _, err := scalers.Get(context.Background(), name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the rejected scaler was stored (get: %v)", err)
			}
		})
	}
	// The rules let good slots through: both forms, with a headroom, the
	// same shapeFrom twice under two names, and integer requests.
	t.Run("good slots are accepted", func(t *testing.T) {
		var spec map[string]any
		good := target + "maxReplicas: 5\nheadroom: {cpu: \"10\"}\nheadroomSlots:\n" +
			"- {shapeFrom: {apiVersion: apps/v1, kind: Deployment, name: web, namespace: shop}, count: 4}\n" +
			"- {name: web-spare, shapeFrom: " + web + ", count: 1}\n" +
			"- {requests: {cpu: 4, memory: 8Gi}, count: 2}\n- {requests: {nvidia.com/gpu: \"1\"}, count: 1}\n- {requests: {cpu: 2}, count: auto}"
		if err := yaml.Unmarshal([]byte(good), &spec); err != nil {
			t.Fatal(err)
		}
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": "OpportunisticScaler",
			"metadata": map[string]any{"name": "good-slots"}, "spec": spec,
		}}
		if _, err := scalers.Create(context.Background(), obj, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}); err != nil {
			t.Fatalf("the API server refused good slots: %v\n%s", err, good)
		}
		if err := scalers.Delete(context.Background(), "good-slots", metav1.DeleteOptions{}); err != nil {
			t.Error(err)
		}
	})
}

// TestScalerProblemEvents complements TestScalerProblems (which checks the
// Ready condition): each scaler that cannot act also gets a Warning Event
// naming why and a problem metric, and its target is never written —
// checked on every value the targets' replicas took.
func TestScalerProblemEvents(t *testing.T) {
	requireEmptyCluster(t)
	c := installCRD(t)
	ns := "e2e-problem-events"
	createNamespace(t, ns)
	createNode(t, "events-1", NodeShape{CPU: "16", Memory: "16Gi"})
	createDeployment(t, ns, "no-requests", DeploymentSpec{Replicas: 2})
	createDeployment(t, ns, "shared", DeploymentSpec{Replicas: 1, Requests: requests("cpu", "1")})
	if _, err := client.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "not-scalable"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	noScale := scalerFor(ns, "no-scale", "not-scalable", 0, 5, nil)
	noScale.Spec.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{APIVersion: "v1", Kind: "ConfigMap", Name: "not-scalable"}
	for _, s := range []*v1alpha1.OpportunisticScaler{scalerFor(ns, "missing", "does-not-exist", 0, 5, nil), scalerFor(ns, "no-requests", "no-requests", 0, 5, nil), noScale, scalerFor(ns, "first", "shared", 0, 2, nil)} {
		createScaler(t, c, s)
	}
	time.Sleep(1100 * time.Millisecond) // creation timestamps have second resolution: "first" is older
	createScaler(t, c, scalerFor(ns, "second", "shared", 4, 5, nil))
	noRequestsTrace, sharedTrace := traceReplicas(t, ns, "no-requests"), traceReplicas(t, ns, "shared")
	o := startOpportunist(t, "--round-interval", "1s")

	want := map[string]struct{ reason, says string }{
		"missing":     {"TargetNotFound", "Deployment " + ns + "/does-not-exist not found"},
		"no-requests": {"NoResourceRequests", "requests no resources"},
		"no-scale":    {"NoScaleSubresource", "ConfigMap " + ns + "/not-scalable has no /scale subresource"},
		"second":      {"DuplicateTarget", "OpportunisticScaler " + ns + "/first already scales shared"},
	}
	waitFor(t, 30*time.Second, "a Warning Event for each scaler that cannot act", func(ctx context.Context) (bool, error) {
		evs, err := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		var missing []string
		for name, w := range want {
			found := false
			for _, e := range evs.Items {
				if e.InvolvedObject.Kind == "OpportunisticScaler" && e.InvolvedObject.Name == name && e.Type == corev1.EventTypeWarning &&
					e.Reason == w.reason && strings.Contains(e.Message, w.says) {
					found = true
				}
			}
			if !found {
				missing = append(missing, name+" "+w.reason)
			}
		}
		if len(missing) > 0 {
			return false, fmt.Errorf("no Event yet for %v", missing)
		}
		return true, nil
	})
	series := map[string]float64{}
	for name, w := range want {
		series[fmt.Sprintf("opportunist_scaler_problem{reason=%q,scaler=%q}", w.reason, ns+"/"+name)] = 1
	}
	o.waitForMetrics(t, 10*time.Second, series)
	// "first" owns shared and fills it to its max, 2; "second" (min 4) never wrote.
	waitForReplicas(t, 20*time.Second, ns, "shared", 2, 0)
	o.waitRounds(t, 2, 20*time.Second)
	if _, values := sharedTrace.directionChanges(); !equalInt32s(values, []int32{1, 2}) {
		t.Errorf("shared took the counts %v, want [1 2]: only its owner may write", values)
	}
	if _, values := noRequestsTrace.directionChanges(); !equalInt32s(values, []int32{2}) {
		t.Errorf("no-requests took the counts %v, want [2]: a scaler that cannot act must not write", values)
	}
}

func equalInt32s(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBadCommandLines runs the real binary on malformed flags, scenario
// files and traces: it exits non-zero with exactly one line on stderr naming
// what is wrong, and no usage dump or stack trace. (internal/cli's tests
// cover many more cases in-process; this is what a user's shell sees.)
func TestBadCommandLines(t *testing.T) {
	dir := testDir(t)
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	unknownField := write("unknown-field.yaml", "name: x\nduration: 1h\nnodegroups:\n- {name: n, count: 1, allocatable: {cpu: \"4\"}}\n")
	wrongType := write("wrong-type.yaml", "name: x\nduration: 1h\nnodeGroups:\n- {name: n, count: two, allocatable: {cpu: \"4\"}}\n")
	badHeader := write("bad-header.csv", "when,who\n0,a\n")
	badTime := write("bad-time.csv", "time_s,name,replicas\nsoon,other-services,3\n")
	shortRow := write("short-row.csv", "time_s,name,replicas\n0,other-services\n")
	empty := write("empty.yaml", "")
	// A port in use, a server that never answers and a plain web server, all on loopback.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	locked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized) // as an API server given bad credentials
	}))
	defer locked.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + closed.Addr().String() // nothing listens there
	closed.Close()
	pointAt := func(name, server string) string {
		return write(name, "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \""+server+"\"}}]\n"+
			"users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n")
	}
	hangConfig, webConfig := pointAt("hang.yaml", hang.URL), pointAt("web.yaml", web.URL)
	lockedConfig, refusedConfig := pointAt("locked.yaml", locked.URL), pointAt("refused.yaml", refused)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--round-interval=abc"}, `--round-interval "abc" is not a duration (e.g. 30s, 5m, 1h30m) (see 'opportunist run --help')`},
		{[]string{"run", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"run", "--kubeconfig", kubeconfig, "--listen-address=nope"}, `--listen-address "nope": address nope: missing port in address`},
		{[]string{"run", "--kubeconfig", kubeconfig, "--listen-address=127.0.0.1:99999"}, "--listen-address 127.0.0.1:99999: listen tcp: address 99999: invalid port"},
		{[]string{"run", "--kubeconfig", kubeconfig, "--on-stale=sometimes"}, `--on-stale must be freeze or shrink-to-min, got "sometimes"`},
		{[]string{"run", "--kubeconfig", kubeconfig, "--status-interval=-1s"}, "--status-interval must not be negative, got -1s"},
		{[]string{"run", "--kubeconfig", kubeconfig, "--scheduler-scoring=Spread"}, `--scheduler-scoring: unknown scheduler scoring "Spread": use LeastAllocated (the scheduler's default) or MostAllocated`},
		{[]string{"run", "--stale-after=soon"}, `--stale-after "soon" is not a duration`},
		{[]string{"status", "--kubeconfig", empty}, "--kubeconfig " + empty + " holds no cluster: pass a kubeconfig with a cluster, user and context in it"},
		{[]string{"status", "--kubeconfig", hangConfig, "--request-timeout=500ms"}, "the Kubernetes API server at " + hang.URL + " did not answer within 500ms: check that it is running and reachable from here, or raise --request-timeout"},
		{[]string{"status", "--kubeconfig", webConfig}, "the server at " + web.URL + " answered but is not a Kubernetes API server (no /readyz): check the server address in your kubeconfig"},
		{[]string{"status", "--kubeconfig", lockedConfig}, "the Kubernetes API server at " + locked.URL + " refused the kubeconfig's credentials (401 Unauthorized): check the user of your kubeconfig's context"},
		{[]string{"status", "--kubeconfig", refusedConfig}, "cannot reach the Kubernetes API server at " + refused + ": connect: connection refused: check that it is running"},
		{[]string{"run", "--kubeconfig", kubeconfig, "--listen-address", busy.Addr().String()}, busy.Addr().String() + " is already in use (another opportunist running?): stop it, or pass --listen-address with a free address"},
		{[]string{"demo", "--listen", busy.Addr().String()}, busy.Addr().String() + " is already in use (another opportunist running?): stop it, or pass --listen with a free address"},
		{[]string{"demo", "--speed", "abc"}, `--speed "abc" is not a number (e.g. 10 or 2.5) (see 'opportunist demo --help')`},
		{[]string{"demo", "--scenario", "diurnal", "--scenario-file", empty}, "--scenario and --scenario-file are exclusive: pass one of them"},
		{[]string{"demo", "--compare", "nothing"}, `--compare "nothing" is not one of opportunist, hpa-writeup, hpa-example, hpa-averagevalue, or none`},
		{[]string{"simulate", "--scenario-file", unknownField}, unknownField + ":3: nodegroups: unknown field (known: name, description, duration,"},
		{[]string{"simulate", "--scenario-file", wrongType}, wrongType + `:4: nodeGroups[0].count: "two" is not a whole number`},
		{[]string{"simulate", "--scenario", "seed-burst", "--trace", badHeader}, badHeader + `:1: the header must be "time_s,name,replicas", got "when,who"`},
		{[]string{"simulate", "--scenario", "seed-burst", "--trace", badTime}, badTime + `:2: time_s: "soon" is not a time in seconds`},
		{[]string{"simulate", "--scenario", "seed-burst", "--trace", shortRow}, shortRow + ":2: want 3 fields (time_s,name,replicas), got 2"},
		{[]string{"simulate", "--scenario", "diurnal", "--scenario-file", empty}, "--scenario and --scenario-file are exclusive: pass one of them"},
		{[]string{"simulate", "--scenario", "nope"}, `--scenario "nope" is not built in (built in: `},
	}
	for _, tt := range tests {
		name := strings.NewReplacer(dir+"/", "", kubeconfig, "KUBECONFIG", busy.Addr().String(), "BUSY").Replace(strings.Join(tt.args, " "))
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, tt.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("exit: %v, want a non-zero exit code (stderr %q)", err, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") || !strings.Contains(lines[0], tt.want) {
				t.Errorf("stderr:\n%s\nwant exactly one line \"error: ...\" containing %q", stderr.String(), tt.want)
			}
			for _, noise := range []string{"goroutine", "panic", "Usage:", "Flags:", "strconv", "deadline exceeded", "could not find the requested resource"} {
				if strings.Contains(stderr.String()+stdout.String(), noise) {
					t.Errorf("output contains %q:\n%s%s", noise, stdout.String(), stderr.String())
				}
			}
		})
	}
}
