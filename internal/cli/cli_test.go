//go:build !nocluster

package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/opportunist/opportunist/api/v1alpha1"
)

func TestRunOptionsValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*runOptions)
		want   []string
	}{
		{name: "defaults are valid", mutate: func(*runOptions) {}},
		{name: "listen address without port", mutate: func(o *runOptions) { o.ListenAddress = "localhost" }, want: []string{"--listen-address"}},
		{name: "every problem at once", mutate: func(o *runOptions) {
			o.ProbeInterval, o.ProbeTimeout, o.Resync, o.LogFormat, o.LogLevel, o.kube.Timeout = 0, -time.Second, -1, "xml", "loud", 0
		}, want: []string{"--request-timeout", "--probe-interval", "--probe-timeout", "--resync-period", "--log-format", "--log-level"}},
		{name: "stale handling", mutate: func(o *runOptions) { o.StaleAfter, o.OnStale = -time.Second, "shrink" },
			want: []string{"--stale-after must not be negative", `--on-stale must be freeze or shrink-to-min, got "shrink"`}},
		{name: "negative status interval", mutate: func(o *runOptions) { o.StatusInterval = -time.Second },
			want: []string{"--status-interval must not be negative, got -1s"}},
		{name: "status on every change is valid", mutate: func(o *runOptions) { o.StatusInterval = 0 }},
		{name: "negative min round interval", mutate: func(o *runOptions) { o.MinRoundInterval = -time.Second },
			want: []string{"--min-round-interval must not be negative, got -1s"}},
		{name: "zero min round interval is valid", mutate: func(o *runOptions) { o.MinRoundInterval = 0 }},
		{name: "packing scheduler", mutate: func(o *runOptions) { o.SchedulerScoring = "MostAllocated" }},
		{name: "unknown scheduler scoring", mutate: func(o *runOptions) { o.SchedulerScoring = "mostallocated" },
			want: []string{`--scheduler-scoring: unknown scheduler scoring "mostallocated": use LeastAllocated (the scheduler's default) or MostAllocated`}},
		{name: "shrink-to-min at once is valid", mutate: func(o *runOptions) { o.StaleAfter, o.OnStale = 0, "shrink-to-min" }},
		{name: "lease not longer than renew deadline", mutate: func(o *runOptions) { o.LeaseDuration = o.RenewDeadline }, want: []string{"--leader-election-lease-duration (10s) must be longer than --leader-election-renew-deadline (10s)"}},
		{name: "renew deadline within retry jitter", mutate: func(o *runOptions) { o.RetryPeriod = 9 * time.Second }, want: []string{"--leader-election-renew-deadline (10s) must be longer than 1.2 x --leader-election-retry-period (9s)"}},
		{name: "non-positive lease timings", mutate: func(o *runOptions) { o.RetryPeriod = 0 }, want: []string{"--leader-election-retry-period must be positive"}},
		{name: "lease timings ignored without leader election", mutate: func(o *runOptions) { o.LeaderElect, o.RetryPeriod = false, 0 }},
		{name: "KEDA scaler on a port", mutate: func(o *runOptions) { o.KEDAScalerAddress = ":9090" }},
		{name: "KEDA scaler address without port", mutate: func(o *runOptions) { o.KEDAScalerAddress = "localhost" }, want: []string{`--keda-scaler-address "localhost"`}},
		{name: "KEDA scaler half a key pair", mutate: func(o *runOptions) { o.KEDAScalerAddress, o.KEDAScalerTLS.CertFile = ":9090", "tls.crt" },
			want: []string{"give both --keda-scaler-tls-cert-file and --keda-scaler-tls-private-key-file, or neither"}},
		{name: "KEDA scaler TLS without the scaler", mutate: func(o *runOptions) { o.KEDAScalerTLS.ClientCAFile = "ca.crt" },
			want: []string{"need --keda-scaler-address"}},
		{name: "history backfill from Prometheus", mutate: func(o *runOptions) {
			o.HistoryPrometheusURL, o.HistoryPrometheusQuery = "http://127.0.0.1:9090", []string{"cpu=cpu_requests_total"}
		}},
		{name: "history flags all wrong", mutate: func(o *runOptions) {
			o.HistorySaveInterval, o.HistoryTimeScale, o.HistoryTimeOrigin, o.HistoryPrometheusURL = -time.Second, 0, "noon", "prometheus:9090"
		}, want: []string{"--history-save-interval must not be negative", "--history-time-scale must be positive", `--history-time-origin "noon"`, `--history-prometheus-url: "prometheus:9090" is not a Prometheus URL`}},
		{name: "history backfill without persistence", mutate: func(o *runOptions) { o.HistoryPrometheusURL, o.HistorySaveInterval = "http://127.0.0.1:9090", 0 },
			want: []string{"--history-prometheus-url fills the persisted history"}},
		{name: "history not persisted is valid", mutate: func(o *runOptions) { o.HistorySaveInterval = 0 }},
		{name: "history query without URL", mutate: func(o *runOptions) { o.HistoryPrometheusQuery = []string{"cpu=x"} },
			want: []string{"--history-prometheus-query needs --history-prometheus-url"}},
		{name: "history query not resource=promql", mutate: func(o *runOptions) {
			o.HistoryPrometheusURL, o.HistoryPrometheusQuery = "http://127.0.0.1:9090", []string{"sum(cpu_requests_total)"}
		}, want: []string{`--history-prometheus-query "sum(cpu_requests_total)": want resource=promql`}},
		{name: "missing kubeconfig file", mutate: func(o *runOptions) { o.kube.Kubeconfig = "/does/not/exist" }, want: []string{"--kubeconfig /does/not/exist: no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := defaultRunOptions()
			tt.mutate(o)
			errs := o.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to mention %q", i, errs[i], w)
				}
			}
		})
	}
}

func TestCommandErrorsAreOneLine(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"status", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"status", "-o", "xml"}, `--output must be table, wide, json or yaml, got "xml"`},
		{[]string{"run", "extra"}, "takes no arguments"},
		{[]string{"run", "--scheduler-scoring=Spread"}, `--scheduler-scoring: unknown scheduler scoring "Spread": use LeastAllocated (the scheduler's default) or MostAllocated`},
		{[]string{"status", "--kubeconfig", filepath.Join(t.TempDir(), "missing")}, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			root := NewRoot("opportunist")
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs(tt.args)
			err := root.Execute()
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error = %v, want one line mentioning %q", err, tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("printed usage or noise on a user error:\n%s", out.String())
			}
		})
	}
}

func testNode(name, cpu, mem string, unschedulable bool) *corev1.Node {
	alloc := corev1.ResourceList{"cpu": resource.MustParse(cpu), "memory": resource.MustParse(mem), "pods": resource.MustParse("110")}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{Unschedulable: unschedulable},
		Status: corev1.NodeStatus{Capacity: alloc, Allocatable: alloc,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
}

func testPod(name, node, cpu, mem string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{"cpu": resource.MustParse(cpu), "memory": resource.MustParse(mem)}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func gatedPod(p *corev1.Pod) *corev1.Pod {
	p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "kueue.x-k8s.io/admission"}}
	return p
}

func workerPod(p *corev1.Pod) *corev1.Pod {
	p.Labels = map[string]string{"app": "worker"}
	return p
}

// TestStatusGolden renders status in every output format over a fake cluster
// and compares with golden files.
func TestStatusGolden(t *testing.T) {
	client := fake.NewClientset(
		testNode("kontron-1", "32", "80Gi", false), testNode("kontron-2", "28", "80Gi", false), testNode("spare", "16", "32Gi", true),
		testPod("app-1", "kontron-1", "4", "8Gi"), testPod("app-2", "kontron-2", "1500m", "512Mi"),
		testPod("waiting", "", "4", "1Gi"), testPod("on-spare", "spare", "2", "1Gi"),
		gatedPod(testPod("queued", "", "20", "1Gi")),
		workerPod(testPod("worker-1", "kontron-1", "1", "64Mi")), workerPod(testPod("worker-2", "spare", "1", "64Mi")),
	)
	scaler := v1alpha1.OpportunisticScaler{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "worker"},
		Status: v1alpha1.OpportunisticScalerStatus{Selector: "app=worker", PoolNodes: 2, CurrentReplicas: 2, DesiredReplicas: 2, LimitedBy: "Slots", StrandedReplicas: 1,
			Slots: []v1alpha1.SlotStatus{
				{Name: "web", Wanted: 4, Fit: 3, Nodes: []v1alpha1.NodeSlotStatus{{Node: "kontron-1", Slots: 2}, {Node: "kontron-2", Slots: 1}}},
				{Name: "big", Wanted: 30, Fit: 25, Nodes: []v1alpha1.NodeSlotStatus{{Node: "kontron-1", Slots: 1}}, MoreNodes: 24},
				{Name: "gpu", Wanted: 1, Fit: 0},
			}}}
	peakAt := metav1.NewTime(time.Date(2026, 12, 1, 8, 58, 0, 0, time.UTC))
	plain := v1alpha1.OpportunisticScaler{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "batch"},
		Status: v1alpha1.OpportunisticScalerStatus{PoolNodes: 2, CurrentReplicas: 0, DesiredReplicas: 0, LimitedBy: "Budget",
			Prediction: &v1alpha1.PredictionStatus{Mode: v1alpha1.PredictionPreview, Forecaster: "seasonal-naive", BacktestError: "7.5%", Period: "24h0m0s",
				Reason:  "seasonal-naive over a 24h0m0s period, backtest error 7.5 % (seasonal-naive 7.5 %, low-pass-fft 16.4 %, holt-winters 9.0 %, none 129.9 %)",
				History: "336h0m0s", LeadTime: &metav1.Duration{Duration: 96 * time.Second},
				LeadTimeSource: "termination grace 1m0s (the pod template's) + scheduling 6s (a round of 5s and the scheduler) + start-up 30s (a default: none of its pods has become Ready while watched)",
				Peak:           corev1.ResourceList{"cpu": resource.MustParse("112")}, PeakTime: &peakAt,
				Reserve: corev1.ResourceList{"cpu": resource.MustParse("24")},
				LearnedHeadroom: []v1alpha1.LearnedHeadroom{{Resource: "cpu", Quantity: resource.MustParse("18"),
					Source: "the 0.99-quantile of the paid demand's rise within the lead time 1m36s (at this hour of the 24h0m0s period), 840 samples"}},
				// Two hours of a quiet night rising into the morning, then the forecast's peak at 08:58.
				Outlook: &v1alpha1.PredictionOutlook{Step: metav1.Duration{Duration: 5 * time.Minute}, Start: metav1.NewTime(time.Date(2026, 12, 1, 6, 55, 0, 0, time.UTC)),
					ObservedMilliCores: []int64{30000, 30000, 31000, 30500, 30000, 32000, 31000, 30000, 33000, 34000, 36000, 38000,
						40000, 44000, 48000, 52000, 56000, 60000, 64000, 68000, 72000, 76000, 80000, 84000},
					ForecastMilliCores: []int64{92000, 100000, 108000, 108000, 104000, 100000, 100000, 96000, 96000, 92000, 92000, 90000, 90000},
					BandMilliCores:     4000}},
			Conditions: []metav1.Condition{{Type: "Conflicting", Status: metav1.ConditionTrue, Reason: "ScaledObjectScalesTarget",
				Message: "KEDA ScaledObject batch (through HorizontalPodAutoscaler keda-hpa-batch) also scales Deployment batch; the two will fight: set dryRun: true here and point the ScaledObject's trigger at this scaler (docs/keda.md)"}}}}
	reclaiming := v1alpha1.OpportunisticScaler{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "reclaimer"},
		Status: v1alpha1.OpportunisticScalerStatus{PoolNodes: 2, CurrentReplicas: 4, DesiredReplicas: 4, LimitedBy: "Reclaim",
			Reclaim: &v1alpha1.ReclaimStatus{UsageFresh: true, Nodes: []v1alpha1.NodeReclaimStatus{
				{Node: "kontron-1", Reclaimable: 4300, Published: 4300, Formula: "cpu: 0.65 × 16 alloc − 0 system − 5.6 reserved by 2 paid pods − 0.5 margin = 4.3 reclaimable; requests leave 0 free; publish 4.3 (opportunist.io/reclaimable-cpu 4300)"},
				{Node: "kontron-2", Reclaimable: 0, Published: 500, Formula: "cpu: 0.65 × 16 alloc − 0.2 system − 16 reserved by 2 paid pods − 0.5 margin = 0 reclaimable; requests leave 0.5 free; publish 0.5 (opportunist.io/reclaimable-cpu 500)"},
			}}}}
	st, err := collectStatus(context.Background(), client, []v1alpha1.OpportunisticScaler{scaler, plain, reclaiming})
	if err != nil {
		t.Fatal(err)
	}
	for _, output := range []string{"", "wide", "json", "yaml"} {
		t.Run("output="+output, func(t *testing.T) {
			var buf bytes.Buffer
			if err := printStatus(&buf, st, output); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "status"+map[string]string{"": ".txt", "wide": "-wide.txt", "json": ".json", "yaml": ".yaml"}[output])
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("output differs from %s:\n%s", golden, buf.String())
			}
		})
	}
}

// TestStatusWithoutSlots: the table of scalers without headroom slots has
// no SLOTS column and no slot section.
func TestStatusWithoutSlots(t *testing.T) {
	st := clusterStatus{Scalers: []scalerStatus{{Name: "default/worker", PoolNodes: 2, Current: 1, Desired: 1, LimitedBy: "Budget"}}}
	for _, output := range []string{"", "wide"} {
		var buf bytes.Buffer
		if err := printStatus(&buf, st, output); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), "SLOT") {
			t.Errorf("output %q shows slots none of the scalers keeps:\n%s", output, buf.String())
		}
	}
}
