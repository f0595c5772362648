package sim

import (
	corev1 "k8s.io/api/core/v1"

	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/opportunist/opportunist/internal/exporter"
	"github.com/opportunist/opportunist/internal/metricsapi"

	"github.com/opportunist/opportunist/internal/control"
)

func TestObjectValueReplicas(t *testing.T) {
	tol := tolerances{0.1, 0.1}
	tests := []struct {
		name          string
		st            scaleState
		usage, target int64
		want          int32
		wantErr       bool
	}{
		// The seed at its start: 184 cores - 38 paid - 15 workers = 131 remaining,
		// target 30: ratio 4.37, 4.37 x 15 = 65.5, rounded up.
		{name: "seed at min: ceil(131/30 x 15)", st: scaleState{spec: 15, ready: 15, pods: 15}, usage: 131000, target: 30000, want: 66},
		{name: "within the tolerance the count stays", st: scaleState{spec: 40, ready: 40, pods: 40}, usage: 32000, target: 30000, want: 40},
		{name: "just outside the tolerance", st: scaleState{spec: 40, ready: 40, pods: 40}, usage: 33300, target: 30000, want: 45}, // 1.11 x 40 = 44.4
		{name: "below the tolerance: scale down", st: scaleState{spec: 120, ready: 120, pods: 120}, usage: 26000, target: 30000, want: 104},
		{name: "only Ready pods multiply the ratio", st: scaleState{spec: 20, ready: 10, pods: 20}, usage: 60000, target: 30000, want: 20},
		{name: "all pods starting: ratio x 0", st: scaleState{spec: 20, ready: 0, pods: 20}, usage: 60000, target: 30000, want: 0},
		{name: "no pods at all: the metric is invalid", st: scaleState{spec: 20}, usage: 60000, target: 30000, wantErr: true},
		{name: "no pods, but within the tolerance: no pod count needed", st: scaleState{spec: 20}, usage: 30000, target: 30000, want: 20},
		{name: "a target at zero scales to ceil(ratio), no tolerance", st: scaleState{}, usage: 31000, target: 30000, want: 2},
		{name: "overcommitted: a negative proposal", st: scaleState{spec: 146, ready: 146, pods: 146}, usage: -3000, target: 30000, want: -14}, // ceil(-14.6)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := objectValueReplicas(tt.st, tt.usage, tt.target, tol)
			if (err != nil) != tt.wantErr || err == nil && got != tt.want {
				t.Errorf("objectValueReplicas(%+v, %d, %d) = %d, %v; want %d (error %v)", tt.st, tt.usage, tt.target, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestPerPodReplicas(t *testing.T) {
	tol := tolerances{0.1, 0.1}
	tests := []struct {
		name          string
		status        int32
		usage, perPod int64
		want          int32
	}{
		{name: "desired 56 of 116 pods: follow it", status: 116, usage: 56000, perPod: 1000, want: 56},
		{name: "desired 110 of 116 pods: 0.948 is within the tolerance, so 116 stay", status: 116, usage: 110000, perPod: 1000, want: 116},
		{name: "desired 104 of 116 pods: 0.897 is outside", status: 116, usage: 104000, perPod: 1000, want: 104},
		{name: "desired 127 of 116 pods: 1.095 is within", status: 116, usage: 127000, perPod: 1000, want: 116},
		{name: "no pods yet: ratio is infinite, follow it", status: 0, usage: 5000, perPod: 1000, want: 5},
		{name: "no pods and desired 0: stay at 0", status: 0, usage: 0, perPod: 1000, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := perPodReplicas(tt.status, tt.usage, tt.perPod, tol); got != tt.want {
				t.Errorf("perPodReplicas(%d, %d, %d) = %d, want %d", tt.status, tt.usage, tt.perPod, got, tt.want)
			}
		})
	}
}

func TestHPAProposalOverMetrics(t *testing.T) {
	object := autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
		Metric: autoscalingv2.MetricIdentifier{Name: cpuRemainingMetric},
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: resource.NewQuantity(30, resource.DecimalSI)},
	}}
	external := autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
		Metric: autoscalingv2.MetricIdentifier{Name: desiredMetric},
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewQuantity(1, resource.DecimalSI)},
	}}
	st := scaleState{spec: 100, status: 100, ready: 100, pods: 100}
	tests := []struct {
		name             string
		objectUp, extErr bool
		want             int32
	}{
		{name: "the highest proposal wins", objectUp: true, want: 200},
		{name: "both down: the higher of the two", want: 80},
		{name: "one invalid and the other up: scale on it", objectUp: true, extErr: true, want: 200},
		{name: "one invalid and the other down: no scaling", extErr: true, want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHPA(autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 500, Metrics: []autoscalingv2.MetricSpec{object, external}}, HPAController{Tolerance: 0.1})
			m := metricValues{
				object: func(string) (int64, error) {
					if tt.objectUp {
						return 60000, nil // ratio 2
					}
					return 15000, nil // ratio 0.5: 50
				},
				external: func(_ string, sel labels.Selector) (int64, error) {
					if tt.extErr {
						return 0, errNoPods
					}
					return 80000, nil
				},
			}
			if got := h.proposal(st, m); got != tt.want {
				t.Errorf("proposal %d, want %d", got, tt.want)
			}
		})
	}
}

// hpaSync is one HPA sync: at second at, the target runs current and the
// metric proposes proposal (-1: the metric is invalid; -2: the metric must
// not be read); want is the new spec.replicas.
type hpaSync struct {
	at                      float64
	current, proposal, want int32
}

func policy(typ autoscalingv2.HPAScalingPolicyType, value, period int32) autoscalingv2.HPAScalingPolicy {
	return autoscalingv2.HPAScalingPolicy{Type: typ, Value: value, PeriodSeconds: period}
}

func testRules(window *int32, sel autoscalingv2.ScalingPolicySelect, ps ...autoscalingv2.HPAScalingPolicy) *autoscalingv2.HPAScalingRules {
	return &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: window, SelectPolicy: &sel, Policies: ps}
}

func seconds(s int32) *int32 { return &s }

func spec(minR, maxR int32, b *Behavior) autoscalingv2.HorizontalPodAutoscalerSpec {
	return autoscalingv2.HorizontalPodAutoscalerSpec{MinReplicas: &minR, MaxReplicas: maxR, Behavior: b}
}

func TestHPAReconcile(t *testing.T) {
	writeup := hpaPresets()[HPAWriteup].Controller
	stock := HPAController{Tolerance: 0.1, DownscaleStabilization: 5 * time.Minute}
	tests := []struct {
		name  string
		spec  autoscalingv2.HorizontalPodAutoscalerSpec
		flags HPAController
		syncs []hpaSync
	}{
		{
			// Worked by hand from horizontal.go: no behavior, so the highest
			// recommendation of the 30 s window, then at most max(2 x current, 4).
			name: "the write-up's HPA: no behavior, x2 per sync, a 30 s window that keeps a recommendation exactly 30 s old",
			spec: spec(15, 150, nil), flags: writeup,
			syncs: []hpaSync{
				{at: 0, current: 15, proposal: 66, want: 30},
				{at: 10, current: 30, proposal: 116, want: 60},
				{at: 20, current: 60, proposal: 172, want: 120},
				{at: 30, current: 120, proposal: 104, want: 150}, // 172 at 20 is in the window, x2 = 240 > max
				{at: 40, current: 150, proposal: 0, want: 150},
				{at: 50, current: 150, proposal: 0, want: 150},  // 172 at 20: exactly 30 s old, still in
				{at: 60, current: 150, proposal: 0, want: 104},  // 104 at 30 is the highest left
				{at: 70.1, current: 104, proposal: 0, want: 15}, // 104 at 30 is 40.1 s old; Min bounds 0
			},
		},
		{
			name: "syncs 10.02 s apart: the recommendation three syncs back is 30.06 s old and out",
			spec: spec(15, 150, nil), flags: writeup,
			syncs: []hpaSync{
				{at: 0, current: 15, proposal: 66, want: 30},
				{at: 10.02, current: 30, proposal: 116, want: 60},
				{at: 20.04, current: 60, proposal: 172, want: 120},
				{at: 30.06, current: 120, proposal: 104, want: 150},
				{at: 40.08, current: 150, proposal: 0, want: 150},
				{at: 50.10, current: 150, proposal: 0, want: 104}, // 172 at 20.04 is out
				{at: 60.12, current: 104, proposal: 146, want: 146},
				{at: 70.14, current: 146, proposal: 0, want: 146},
				{at: 80.16, current: 146, proposal: 0, want: 146},
				{at: 90.18, current: 146, proposal: 0, want: 15},
			},
		},
		{
			name: "with a default behavior: scale-down waits for the highest recommendation to leave the 300 s window",
			spec: spec(1, 100, DefaultBehavior()), flags: stock,
			syncs: []hpaSync{
				{at: 0, current: 10, proposal: 10, want: 10},
				{at: 15, current: 10, proposal: 4, want: 10},
				{at: 299, current: 10, proposal: 4, want: 10}, // the 10s recorded at 0 are still in
				{at: 300, current: 10, proposal: 4, want: 4},  // recorded at 0: not after 300-300
			},
		},
		{
			name: "with a default behavior: up by 100% or 4 pods per 15 s",
			spec: spec(15, 150, DefaultBehavior()), flags: stock,
			syncs: []hpaSync{
				{at: 0, current: 15, proposal: 66, want: 30},
				{at: 10, current: 30, proposal: 116, want: 30}, // the +15 at 0 is within 15 s: the period started at 15
				{at: 15, current: 30, proposal: 116, want: 60},
			},
		},
		{
			name: "scale-down by 100% per 15 s goes straight to the proposal, and Min bounds it",
			spec: spec(3, 100, DefaultBehavior()), flags: HPAController{Tolerance: 0.1},
			syncs: []hpaSync{{at: 0, current: 40, proposal: 1, want: 3}},
		},
		{
			name: "a Pods scale-down policy counts the replicas removed within its period",
			spec: spec(1, 100, defaultBehavior(&Behavior{
				ScaleDown: testRules(seconds(0), autoscalingv2.MaxChangePolicySelect, policy(autoscalingv2.PodsScalingPolicy, 2, 60)),
			})),
			flags: HPAController{Tolerance: 0.1},
			syncs: []hpaSync{
				{at: 0, current: 10, proposal: 1, want: 8},
				{at: 30, current: 8, proposal: 1, want: 8}, // the period started at 10
				{at: 59, current: 8, proposal: 1, want: 8},
				{at: 60, current: 8, proposal: 1, want: 6}, // the event at 0 is not after 60-60
				{at: 61, current: 6, proposal: 1, want: 6},
			},
		},
		{
			name: "selectPolicy Min takes the smaller change: 4 pods, not 100%",
			spec: spec(1, 100, defaultBehavior(&Behavior{
				ScaleUp: &autoscalingv2.HPAScalingRules{SelectPolicy: ptr(autoscalingv2.MinChangePolicySelect)},
			})),
			flags: stock,
			syncs: []hpaSync{{at: 0, current: 10, proposal: 50, want: 14}},
		},
		{
			name: "selectPolicy Disabled never scales up",
			spec: spec(1, 100, defaultBehavior(&Behavior{
				ScaleUp: &autoscalingv2.HPAScalingRules{SelectPolicy: ptr(autoscalingv2.DisabledPolicySelect)},
			})),
			flags: stock,
			syncs: []hpaSync{{at: 0, current: 10, proposal: 50, want: 10}},
		},
		{
			name: "a scale-up window holds growth to the lowest recommendation within it",
			spec: spec(1, 100, defaultBehavior(&Behavior{
				ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: seconds(60)},
			})),
			flags: stock,
			syncs: []hpaSync{
				{at: 0, current: 10, proposal: 10, want: 10},
				{at: 15, current: 10, proposal: 16, want: 10},
				{at: 59, current: 10, proposal: 16, want: 10},
				{at: 60, current: 10, proposal: 16, want: 16}, // the 10s recorded at 0 are not after 60-60
			},
		},
		{
			// normalizeDesiredReplicas: the highest recommendation of the window
			// wins even over a lower proposal, then max(2 x current, 4) limits it.
			name:  "without spec.behavior: a stale high recommendation even scales up",
			spec:  spec(1, 100, nil),
			flags: stock,
			syncs: []hpaSync{
				{at: 0, current: 1, proposal: 50, want: 4},
				{at: 15, current: 4, proposal: 50, want: 8},
				{at: 30, current: 8, proposal: 3, want: 16},
				{at: 45, current: 16, proposal: 3, want: 32},
			},
		},
		{
			name: "bounds: above Max goes to Max and below Min to Min, without the metric",
			spec: spec(15, 150, nil), flags: writeup,
			syncs: []hpaSync{
				{at: 0, current: 200, proposal: -2, want: 150},
				{at: 10, current: 5, proposal: -2, want: 15},
			},
		},
		{
			name: "a target scaled to zero by hand is left alone",
			spec: spec(0, 100, DefaultBehavior()), flags: stock,
			syncs: []hpaSync{{at: 0, current: 0, proposal: -2, want: 0}},
		},
		{
			name: "minReplicas 0: the HPA scales to zero, and back from it on the metric (HPAScaleToZero)",
			spec: spec(0, 100, defaultBehavior(&Behavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: seconds(0)}})), flags: stock,
			syncs: []hpaSync{
				{at: 0, current: 3, proposal: 0, want: 0},
				{at: 15, current: 0, proposal: 0, want: 0},
				{at: 30, current: 0, proposal: 2, want: 2},
			},
		},
		{
			name: "an invalid metric: no rescale",
			spec: spec(1, 100, nil), flags: stock,
			syncs: []hpaSync{{at: 0, current: 10, proposal: -1, want: 10}},
		},
		{
			name: "a negative proposal counts as zero, then Min",
			spec: spec(15, 150, DefaultBehavior()), flags: stock,
			syncs: []hpaSync{{at: 0, current: 146, proposal: -14, want: 146}, {at: 301, current: 146, proposal: -14, want: 15}},
		},
		{
			name: "Max bounds a scale-up",
			spec: spec(1, 12, DefaultBehavior()), flags: stock,
			syncs: []hpaSync{{at: 0, current: 10, proposal: 30, want: 12}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHPA(tt.spec, tt.flags)
			for _, s := range tt.syncs {
				at := time.Duration(s.at * float64(time.Second))
				got, scaled := h.reconcile(at, s.current, func() int32 {
					if s.proposal == -2 {
						t.Fatalf("at %gs the metric was read, want the bounds or the zero target to decide", s.at)
					}
					if s.proposal == -14 {
						return 0 // the controller's desiredReplicas starts at 0 and keeps it over a negative proposal
					}
					return s.proposal
				})
				if got != s.want || scaled != (s.want != s.current) {
					t.Fatalf("at %gs (current %d, proposal %d): %d (scaled %v), want %d", s.at, s.current, s.proposal, got, scaled, s.want)
				}
			}
		})
	}
}

func TestHPATolerancesFromBehavior(t *testing.T) {
	half := resource.MustParse("500m")
	h := newHPA(spec(1, 100, defaultBehavior(&Behavior{ScaleUp: &autoscalingv2.HPAScalingRules{Tolerance: &half}})), HPAController{Tolerance: 0.1})
	if h.tol.up != 0.5 || h.tol.down != 0.1 {
		t.Fatalf("tolerances %+v, want up 0.5 (from behavior), down 0.1 (the flag)", h.tol)
	}
	st := scaleState{spec: 10, ready: 10, pods: 10}
	if got, _ := objectValueReplicas(st, 42000, 30000, h.tol); got != 10 { // ratio 1.4 is within +50%
		t.Errorf("ratio 1.4 with up tolerance 0.5: %d, want 10", got)
	}
	if got, _ := objectValueReplicas(st, 25000, 30000, h.tol); got != 9 {
		t.Errorf("ratio 0.83 with down tolerance 0.1: %d, want 9", got)
	}
	if h := newHPA(spec(1, 100, nil), HPAController{Tolerance: 0.2}); h.tol != (tolerances{0.2, 0.2}) {
		t.Errorf("no behavior: tolerances %+v, want the flag's both ways", h.tol)
	}
}

func TestDefaultBehavior(t *testing.T) {
	if defaultBehavior(nil) != nil {
		t.Error("a nil behavior was defaulted: the API server leaves it nil")
	}
	b := DefaultBehavior()
	up, down := b.ScaleUp, b.ScaleDown
	if *up.StabilizationWindowSeconds != 0 || *up.SelectPolicy != autoscalingv2.MaxChangePolicySelect || len(up.Policies) != 2 ||
		up.Policies[0] != policy(autoscalingv2.PodsScalingPolicy, 4, 15) || up.Policies[1] != policy(autoscalingv2.PercentScalingPolicy, 100, 15) {
		t.Errorf("scaleUp %+v, want no window, Max of 4 pods and 100%% per 15 s", up)
	}
	if down.StabilizationWindowSeconds != nil || *down.SelectPolicy != autoscalingv2.MaxChangePolicySelect || len(down.Policies) != 1 ||
		down.Policies[0] != policy(autoscalingv2.PercentScalingPolicy, 100, 15) {
		t.Errorf("scaleDown %+v, want the controller's window and 100%% per 15 s", down)
	}
}

// workerReplicas plays a strategy on a scenario and returns the first
// workload's spec.replicas each time it changes, with the time.
func workerReplicas(t *testing.T, sc *Scenario, name string, until time.Duration) ([]int32, []time.Duration) {
	t.Helper()
	l, err := NewLive(sc, name, 1)
	if err != nil {
		t.Fatal(err)
	}
	counts, at := []int32{l.w.opp[0].replicas}, []time.Duration{0}
	for !l.Done() && l.Now() < until {
		l.Step()
		if r := l.w.opp[0].replicas; r != counts[len(counts)-1] {
			counts, at = append(counts, r), append(at, l.Now())
		}
	}
	return counts, at
}

// TestHPAWriteupCycle is the evidence: on a real v1.37.2 control
// plane the write-up's HPA (no behavior, sync 10 s, downscale
// stabilisation 30 s) cycled 15→30→60→120→150→104→146→15 every ~100 s on
// the seed cluster before the burst. The controller's syncs are never
// exactly 10 s apart (it requeues an HPA 10 s after processing it); on an
// exact 10 s grid a recommendation exactly 30 s old would still count, and
// the cycle would hold 150 one sync longer: 120 s.
func TestHPAWriteupCycle(t *testing.T) {
	for _, tt := range []struct {
		name       string
		processing time.Duration
		minP, maxP time.Duration
	}{
		{name: "the controller's timing", processing: defaultProcessingTime, minP: 98 * time.Second, maxP: 103 * time.Second},
		{name: "an exact 10 s grid", processing: 0, minP: 118 * time.Second, maxP: 122 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := Builtin("seed-burst")
			if err != nil {
				t.Fatal(err)
			}
			cfg := hpaPresets()[HPAWriteup]
			cfg.Controller.ProcessingTime = tt.processing
			sc.HPA = map[string]HPAConfig{HPAWriteup: cfg}
			counts, at := workerReplicas(t, sc, HPAWriteup, 9*time.Minute) // the burst starts at 10 min
			cycle := []int32{15, 30, 60, 120, 150, 104, 146}
			var starts []time.Duration
			for i := 0; i+len(cycle) <= len(counts); i += len(cycle) {
				for j, want := range cycle {
					if counts[i+j] != want {
						t.Fatalf("change %d: %d, want %d of the cycle %v; all: %v at %v", i+j, counts[i+j], want, cycle, counts, at)
					}
				}
				starts = append(starts, at[i])
			}
			if len(starts) < 4 {
				t.Fatalf("%d cycles in 9 min, want at least 4: %v at %v", len(starts), counts, at)
			}
			for i := 2; i < len(starts); i++ { // the first starts at 0, from the cluster as it was
				if period := starts[i] - starts[i-1]; period < tt.minP || period > tt.maxP {
					t.Errorf("cycle %d lasted %v, want %v to %v: starts %v", i, period, tt.minP, tt.maxP, starts)
				}
			}
			t.Logf("cycle starts %v", starts)
		})
	}
}

// TestHPAWriteupPhases plays seed-burst with the write-up's HPA created at
// each tenth of its ~100 s cycle: where in the cycle the burst lands decides
// what follows. Whatever the phase, it cycles before the burst and eats into
// the headroom. -v prints the range docs/hpa.md quotes.
func TestHPAWriteupPhases(t *testing.T) {
	for off := time.Duration(0); off < 100*time.Second; off += 10 * time.Second {
		sc, err := Builtin("seed-burst")
		if err != nil {
			t.Fatal(err)
		}
		cfg := hpaPresets()[HPAWriteup]
		cfg.Controller.FirstSync = off
		sc.HPA = map[string]HPAConfig{HPAWriteup: cfg}
		rep, err := Run(sc, Options{Seed: 1, Strategies: []string{HPAWriteup}})
		if err != nil {
			t.Fatal(err)
		}
		r := rep.Results[0]
		t.Logf("created at %3.0fs: harvest %.1f core-h, overshoot %.2f core-h, paid pending %.0f pod-s, %d direction changes",
			off.Seconds(), r.HarvestCoreHours, r.OvershootCoreHours, r.PaidPendingPodSeconds, r.DirectionChanges)
		if r.OvershootCoreHours < 1 || r.DirectionChanges < 20 {
			t.Errorf("created at %v: %+v, want it to cycle (>= 20 direction changes) and overshoot (>= 1 core-h)", off, r)
		}
	}
}

// recordedExampleScenario is the cluster of the end-to-end recordings the
// real v1.37.2 HPA controller made on the local control plane (sync period
// 2 s), at 191ffdb: six kwok nodes (184 cores), 30 cores of other paid pods,
// the sample app at 2 x 4 cores, 17 from 60 s to 180 s, a 1-core worker, min
// 15, max 150, 30 cores of headroom; kwok starts and deletes pods at once.
// The first recording (TestHPAObjectMetricSeed, into
// docs/data/hpa-seed-object-metric.csv) ran the example HPA
// (examples/seed/hpa/worker-hpa.yaml) and starts once the HPA has read its
// metric, a second or two after its creation, which the model puts at 0.
const recordedExampleScenario = `name: e2e-hpa-example
duration: 300s
nodeGroups:
- {name: big, count: 4, allocatable: {cpu: "32", memory: 80Gi, pods: "110"}}
- {name: small, count: 2, allocatable: {cpu: "28", memory: 80Gi, pods: "110"}}
paid:
- {name: other, requests: {cpu: "2", memory: 1Gi}, replicas: 15, startup: 1s}
- name: sample-metrics-app
  requests: {cpu: "4", memory: 1Gi}
  startup: 1s
  terminationGracePeriod: 0s
  replicas: 2
  steps: [{at: 60s, replicas: 17}, {at: 180s, replicas: 2}]
opportunistic:
- {name: worker, requests: {cpu: "1"}, startup: 1s, terminationGracePeriod: 0s, minReplicas: 15, maxReplicas: 150, headroom: {cpu: "30"}}
hpa:
  hpa-example: {syncPeriod: 2s}
`

// recordedChange is a change of the worker's replicas in a recording.
type recordedChange struct {
	at       time.Duration
	replicas int32
}

// TestHPAMatchesRecordings: the models of the example HPA and of the HPA on
// opportunist_desired_replicas make the real controller's moves, each within
// 3 s of it. The second recording (TestHPAExternalDesiredReplicas, into
// docs/data/hpa-external-desired-replicas.csv) starts once the worker is at
// its ideal 116, with the OpportunisticScaler in dry run (no scale-up
// window, --round-interval 1s) and the HPA of docs/hpa.md §2.
func TestHPAMatchesRecordings(t *testing.T) {
	tests := []struct {
		strategy string
		edit     func(string) string
		want     []recordedChange
	}{
		{
			strategy: HPAExample,
			edit:     func(s string) string { return s },
			want:     []recordedChange{{0, 15}, {31 * time.Second, 30}, {47 * time.Second, 60}, {89 * time.Second, 52}, {119 * time.Second, 59}, {209 * time.Second, 118}},
		},
		{
			strategy: HPAAverageValue,
			edit: func(s string) string {
				s = strings.Replace(s, "hpa-example: {syncPeriod: 2s}", "hpa-averagevalue: {syncPeriod: 2s}", 1)
				s = strings.Replace(s, `headroom: {cpu: "30"}}`, `headroom: {cpu: "30"}, replicas: 116, behavior: {scaleUp: {stabilizationWindowSeconds: 0}}}`, 1)
				return strings.Replace(s, "duration: 300s", "duration: 300s\nroundInterval: 1s", 1)
			},
			want: []recordedChange{{0, 116}, {62 * time.Second, 56}, {182 * time.Second, 116}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.strategy, func(t *testing.T) {
			sc, err := ParseScenario("e2e.yaml", []byte(tt.edit(recordedExampleScenario)), nil)
			if err != nil {
				t.Fatal(err)
			}
			counts, at := workerReplicas(t, sc, tt.strategy, sc.Duration)
			if len(counts) != len(tt.want) {
				t.Fatalf("%v at %v, want %v", counts, at, tt.want)
			}
			for i, want := range tt.want {
				if d := at[i] - want.at; counts[i] != want.replicas || d < -3*time.Second || d > 3*time.Second {
					t.Errorf("change %d: %d at %v, recorded %d at %v", i, counts[i], at[i], want.replicas, want.at)
				}
			}
		})
	}
}

// TestHPAExampleIsTheShippedFile: hpa-example on the seed cluster is
// examples/seed/hpa/worker-hpa.yaml, read as the API server would store it.
func TestHPAExampleIsTheShippedFile(t *testing.T) {
	data, err := os.ReadFile("../../examples/seed/hpa/worker-hpa.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	c := &errs{file: "worker-hpa.yaml"}
	obj := decodeHPAObject(c, doc.Content[0], "object")
	if err := c.err(); err != nil {
		t.Fatal(err)
	}
	sc, err := Builtin("seed-burst")
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(sc, false)
	got, err := hpaSpecFor(HPAExample, hpaPresets()[HPAExample], &sc.Opportunistic[0], control.KeptFree(&w.scalers[0], corev1.ResourceCPU, w.allocCPU))
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(got, obj.Spec) {
		t.Errorf("hpa-example on seed-burst:\n%+v\nthe shipped file:\n%+v", got, obj.Spec)
	}
}

func TestScenarioHPAObject(t *testing.T) {
	yml := minimal + `hpa:
  hpa-writeup:
    syncPeriod: 2s
    object:
      apiVersion: autoscaling/v2
      kind: HorizontalPodAutoscaler
      metadata: {name: worker}
      spec:
        scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: worker}
        maxReplicas: 8
        metrics:
        - type: External
          external:
            metric: {name: opportunist_desired_replicas, selector: {matchLabels: {scaler: worker}}}
            target: {type: AverageValue, averageValue: "1"}
        behavior:
          scaleDown: {stabilizationWindowSeconds: 0}
`
	sc, err := ParseScenario("small.yaml", []byte(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sc.HPA[HPAWriteup]
	if cfg.Controller.SyncPeriod != 2*time.Second || cfg.Controller.DownscaleStabilization != 30*time.Second || cfg.Object == nil {
		t.Fatalf("hpa-writeup %+v, want sync 2s over the preset's other flags, and the object", cfg)
	}
	s := cfg.Object.Spec
	if *s.MinReplicas != 1 || s.Behavior.ScaleUp.Policies[0].Value != 4 || *s.Behavior.ScaleDown.StabilizationWindowSeconds != 0 {
		t.Errorf("spec %+v, want minReplicas and the behavior's unset fields defaulted as the API server does", s)
	}
	rep, err := Run(sc, Options{Seed: 1, Strategies: []string{HPAWriteup}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Results[0].ScaleEvents == 0 {
		t.Errorf("%+v: the HPA never scaled", rep.Results[0])
	}
}

func TestCheckStrategy(t *testing.T) {
	for _, name := range Strategies() {
		if err := CheckStrategy(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := CheckStrategy("hpa-seed"); err == nil || !strings.Contains(err.Error(), "was renamed: ask for hpa-writeup (the write-up's HPA") {
		t.Errorf("hpa-seed: %v, want it renamed", err)
	}
}

// TestMetricNamesAgree: the simulated HPAs read the metrics by the names
// opportunist serves them under.
func TestMetricNamesAgree(t *testing.T) {
	if desiredMetric != metricsapi.DesiredReplicasMetric || scalerLabel != metricsapi.ScalerLabel {
		t.Errorf("sim reads %s{%s=...}, metricsapi serves %s{%s=...}", desiredMetric, scalerLabel, metricsapi.DesiredReplicasMetric, metricsapi.ScalerLabel)
	}
	if !slices.Contains(exporter.SeedMetricNames(), cpuRemainingMetric) {
		t.Errorf("the exporter serves no %s: %v", cpuRemainingMetric, exporter.SeedMetricNames())
	}
}

// TestHPAPresetsStartFromOne: a workload whose scaler may go to 0 gets
// presets with minReplicas 1 (the HPA's default), so its HPA starts at 1
// and scales; at 0 the controller would leave it there. On fragmented the
// HPAs then show what the scenario is about: replicas that fit nowhere.
func TestHPAPresetsStartFromOne(t *testing.T) {
	sc, err := Builtin("fragmented")
	if err != nil {
		t.Fatal(err)
	}
	if sc.Opportunistic[0].MinReplicas != 0 {
		t.Fatalf("fragmented's worker has minReplicas %d, want 0 for this test", sc.Opportunistic[0].MinReplicas)
	}
	rep, err := Run(sc, Options{Seed: 1, Strategies: []string{HPAWriteup, HPAExample}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.HarvestCoreHours == 0 || r.ScaleEvents == 0 || r.UnboundOpportunisticPodHours == 0 {
			t.Errorf("%s on fragmented: harvest %.1f core-h, %d scale events, %.2f unschedulable pod-h; want an HPA that scales and overreaches", r.Strategy, r.HarvestCoreHours, r.ScaleEvents, r.UnboundOpportunisticPodHours)
		}
	}
}
