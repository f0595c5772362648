package sim

import (
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestObjectValueReplicas(t *testing.T) {
	tol := tolerances{0.1, 0.1}
	tests := []struct {
		name          string
		spec, ready   int32
		usage, target int64
		want          int32
	}{
		// The seed at its start: 184 cores - 38 paid - 15 workers = 131 remaining,
		// target 30: ratio 4.37, 4.37 x 15 = 65.5, rounded up.
		{name: "seed at min: ceil(131/30 x 15)", spec: 15, ready: 15, usage: 131000, target: 30000, want: 66},
		{name: "within the tolerance the count stays", spec: 40, ready: 40, usage: 32000, target: 30000, want: 40},
		{name: "just outside the tolerance", spec: 40, ready: 40, usage: 33300, target: 30000, want: 45}, // 1.11 x 40 = 44.4
		{name: "below the tolerance: scale down", spec: 120, ready: 120, usage: 26000, target: 30000, want: 104},
		{name: "only Ready pods multiply the ratio", spec: 20, ready: 10, usage: 60000, target: 30000, want: 20},
		{name: "all pods starting: ratio x 0", spec: 20, ready: 0, usage: 60000, target: 30000, want: 0},
		{name: "a target at zero scales to ceil(ratio), no tolerance", spec: 0, ready: 0, usage: 31000, target: 30000, want: 2},
		{name: "overcommitted: a negative proposal", spec: 146, ready: 146, usage: -3000, target: 30000, want: -14}, // ceil(-14.6)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := objectValueReplicas(tt.spec, tt.ready, tt.usage, tt.target, tol); got != tt.want {
				t.Errorf("objectValueReplicas(%d, %d, %d, %d) = %d, want %d", tt.spec, tt.ready, tt.usage, tt.target, got, tt.want)
			}
		})
	}
}

func TestExternalAverageValueReplicas(t *testing.T) {
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
			if got := externalAverageValueReplicas(tt.status, tt.usage, tt.perPod, tol); got != tt.want {
				t.Errorf("externalAverageValueReplicas(%d, %d, %d) = %d, want %d", tt.status, tt.usage, tt.perPod, got, tt.want)
			}
		})
	}
}

// hpaSync is one HPA sync: at second at, the target runs current and the
// metric proposes proposal; want is the new spec.replicas.
type hpaSync struct {
	at                      int
	current, proposal, want int32
}

func policy(typ autoscalingv2.HPAScalingPolicyType, value, period int32) autoscalingv2.HPAScalingPolicy {
	return autoscalingv2.HPAScalingPolicy{Type: typ, Value: value, PeriodSeconds: period}
}

func testRules(window *int32, sel autoscalingv2.ScalingPolicySelect, ps ...autoscalingv2.HPAScalingPolicy) *autoscalingv2.HPAScalingRules {
	return &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: window, SelectPolicy: &sel, Policies: ps}
}

func seconds(s int32) *int32 { return &s }

func TestHPAReconcile(t *testing.T) {
	plain := HPASettings{Tolerance: 0.1, DownscaleStabilization: 5 * time.Minute, Behavior: DefaultBehavior()}
	tests := []struct {
		name     string
		set      HPASettings
		min, max int32
		syncs    []hpaSync
	}{
		{
			// Worked by hand from horizontal.go and the seed's flags. At 0 the
			// policies allow max(15+4, 15x2) = 30. At 10 the +15 made at 0 is
			// within the 15 s period, so the period started at 15: 30 again.
			// At 20 and 30 the 30 s upscale delay since the scale at 0 holds
			// (strictly after: 0+30 < 30 is false). At 40: 60. At 80: 120.
			name: "the seed's HPA ramps up: 100% per 15 s, held by the 30 s upscale delay",
			set:  seedHPA, min: 15, max: 150,
			syncs: []hpaSync{
				{at: 0, current: 15, proposal: 66, want: 30},
				{at: 10, current: 30, proposal: 116, want: 30},
				{at: 20, current: 30, proposal: 116, want: 30},
				{at: 30, current: 30, proposal: 116, want: 30},
				{at: 40, current: 30, proposal: 116, want: 60},
				{at: 50, current: 60, proposal: 172, want: 60},
				{at: 60, current: 60, proposal: 172, want: 60},
				{at: 70, current: 60, proposal: 172, want: 60},
				{at: 80, current: 60, proposal: 172, want: 120},
				// Down to 104 is held by the 5 min window: 172 was recommended at 50.
				{at: 90, current: 120, proposal: 104, want: 120},
				{at: 200, current: 120, proposal: 104, want: 120},
			},
		},
		{
			name: "scale-down waits for the highest recommendation to leave the 300 s window",
			set:  plain, min: 1, max: 100,
			syncs: []hpaSync{
				{at: 0, current: 10, proposal: 10, want: 10},
				{at: 15, current: 10, proposal: 4, want: 10},
				{at: 299, current: 10, proposal: 4, want: 10}, // the 10s recorded at 0 are still in
				{at: 300, current: 10, proposal: 4, want: 4},  // recorded at 0: not after 300-300
			},
		},
		{
			name: "scale-down by 100% per 15 s goes straight to the proposal, and Min bounds it",
			set:  HPASettings{Tolerance: 0.1, Behavior: DefaultBehavior()}, min: 3, max: 100,
			syncs: []hpaSync{
				{at: 0, current: 40, proposal: 1, want: 3},
			},
		},
		{
			name: "a Pods scale-down policy counts the replicas removed within its period",
			set: HPASettings{Tolerance: 0.1, Behavior: defaultBehavior(&Behavior{
				ScaleDown: testRules(seconds(0), autoscalingv2.MaxChangePolicySelect, policy(autoscalingv2.PodsScalingPolicy, 2, 60)),
			})},
			min: 1, max: 100,
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
			set: HPASettings{Tolerance: 0.1, Behavior: defaultBehavior(&Behavior{
				ScaleUp: &autoscalingv2.HPAScalingRules{SelectPolicy: ptr(autoscalingv2.MinChangePolicySelect)},
			})},
			min: 1, max: 100,
			syncs: []hpaSync{{at: 0, current: 10, proposal: 50, want: 14}},
		},
		{
			name: "selectPolicy Disabled never scales up",
			set: HPASettings{Tolerance: 0.1, Behavior: defaultBehavior(&Behavior{
				ScaleUp: &autoscalingv2.HPAScalingRules{SelectPolicy: ptr(autoscalingv2.DisabledPolicySelect)},
			})},
			min: 1, max: 100,
			syncs: []hpaSync{{at: 0, current: 10, proposal: 50, want: 10}},
		},
		{
			name: "a scale-up window holds growth to the lowest recommendation within it",
			set: HPASettings{Tolerance: 0.1, Behavior: defaultBehavior(&Behavior{
				ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: seconds(60)},
			})},
			min: 1, max: 100,
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
			name: "without spec.behavior: a 2x per sync limit, and a stale high recommendation even scales up",
			set:  HPASettings{Tolerance: 0.1, DownscaleStabilization: 5 * time.Minute}, min: 1, max: 100,
			syncs: []hpaSync{
				{at: 0, current: 1, proposal: 50, want: 4},
				{at: 15, current: 4, proposal: 50, want: 8},
				{at: 30, current: 8, proposal: 3, want: 16},
				{at: 45, current: 16, proposal: 3, want: 32},
			},
		},
		{
			name: "the downscale delay blocks a scale down right after a scale up",
			set: HPASettings{Tolerance: 0.1, DownscaleDelay: 30 * time.Second, Behavior: defaultBehavior(&Behavior{
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: seconds(0)},
			})},
			min: 1, max: 100,
			syncs: []hpaSync{
				{at: 0, current: 10, proposal: 14, want: 14},
				{at: 20, current: 14, proposal: 5, want: 14},
				{at: 30, current: 14, proposal: 5, want: 14},
				{at: 31, current: 14, proposal: 5, want: 5},
			},
		},
		{
			name: "bounds: above Max goes to Max and below Min to Min, without the metric",
			set:  seedHPA, min: 15, max: 150,
			syncs: []hpaSync{
				{at: 0, current: 200, proposal: -1, want: 150},
				{at: 10, current: 5, proposal: -1, want: 15}, // within the upscale delay: bounds are not metric scales
			},
		},
		{
			name: "a target at zero is left alone",
			set:  plain, min: 1, max: 100,
			syncs: []hpaSync{{at: 0, current: 0, proposal: -1, want: 0}},
		},
		{
			name: "a negative proposal counts as zero, then Min",
			set:  plain, min: 15, max: 150,
			syncs: []hpaSync{{at: 0, current: 146, proposal: -14, want: 146}, {at: 301, current: 146, proposal: -14, want: 15}},
		},
		{
			name: "Max bounds a scale-up",
			set:  plain, min: 1, max: 12,
			syncs: []hpaSync{{at: 0, current: 10, proposal: 30, want: 12}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHPA(tt.set, tt.min, tt.max)
			for _, s := range tt.syncs {
				got, scaled := h.reconcile(time.Duration(s.at)*time.Second, s.current, func() int32 {
					if s.proposal == -1 {
						t.Fatalf("at %ds the metric was read, want the bounds or the zero target to decide", s.at)
					}
					return s.proposal
				})
				if got != s.want || scaled != (s.want != s.current) {
					t.Fatalf("at %ds (current %d, proposal %d): %d (scaled %v), want %d", s.at, s.current, s.proposal, got, scaled, s.want)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestHPATolerancesFromBehavior(t *testing.T) {
	half := resource.MustParse("500m")
	set := HPASettings{Tolerance: 0.1, Behavior: defaultBehavior(&Behavior{
		ScaleUp: &autoscalingv2.HPAScalingRules{Tolerance: &half},
	})}
	h := newHPA(set, 1, 100)
	if h.tol.up != 0.5 || h.tol.down != 0.1 {
		t.Fatalf("tolerances %+v, want up 0.5 (from behavior), down 0.1 (the flag)", h.tol)
	}
	// ratio 1.4 is within +50%: no scale up.
	if got := objectValueReplicas(10, 10, 42000, 30000, h.tol); got != 10 {
		t.Errorf("ratio 1.4 with up tolerance 0.5: %d, want 10", got)
	}
	if got := objectValueReplicas(10, 10, 25000, 30000, h.tol); got != 9 {
		t.Errorf("ratio 0.83 with down tolerance 0.1: %d, want 9", got)
	}
}

func TestDefaultBehavior(t *testing.T) {
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
