package sim

import (
	"math"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/api/v1alpha1"
)

// The usage model's mean is its average, bursts included, and its values
// stay within the request.
func TestUsageModelMean(t *testing.T) {
	u := &UsageModel{Average: 0.35, Noise: 0.05, Every: 15 * time.Second, BurstEvery: 30 * time.Minute, BurstFor: time.Minute, BurstTo: 1}
	var sum float64
	n, bursts := 0, 0
	for pod := range 50 {
		for at := time.Duration(0); at < 24*time.Hour; at += 15 * time.Second {
			f := u.fraction(1, podName("api", pod), at)
			if f < 0 || f > 1 {
				t.Fatalf("fraction %v outside [0, 1]", f)
			}
			if f == 1 {
				bursts++
			}
			sum += f
			n++
		}
	}
	if mean := sum / float64(n); math.Abs(mean-0.35) > 0.01 {
		t.Errorf("mean usage %.4f, want 0.35 ± 0.01", mean)
	}
	if share := float64(bursts) / float64(n); math.Abs(share-1.0/30) > 0.005 {
		t.Errorf("bursting %.4f of the time, want 1/30", share)
	}
}

// The targets of issue 15 on idle-requests, measured as docs/reclaim.md
// shows them: harvest at least twice the requests-only opportunist's, paid
// CPU contention at most 1 % of node-time, and no paid pod pending; and the
// churn the hold bought down (docs/reclaim.md, "Damping"): before it, 1,377
// /scale writes, 464 direction changes and 11 pods killed young.
func TestIdleRequestsTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("a 6 h scenario, twice: skipped with -short")
	}
	sc, err := Builtin("idle-requests")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(sc, Options{Seed: 1, Strategies: []string{Opportunist}})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	t.Logf("harvest %.1f core-h (requests alone %.1f: %.2fx), reclaimed %.1f core-h, contention %.0f node-s (%.4f%%), paid pending %.0f pod-s; %d writes, %d direction changes, %d killed young",
		r.HarvestCoreHours, r.RequestsOnlyCoreHours, r.HarvestOfRequestsOnly, r.ReclaimedCoreHours, r.PaidCPUContentionSeconds, 100*r.PaidCPUContentionOfNodeTime, r.PaidPendingPodSeconds,
		r.ScaleEvents, r.DirectionChanges, r.OpportunisticPodsKilledYoung)
	if r.ScaleEvents > 450 {
		t.Errorf("%d /scale writes in 6 h, want at most 450", r.ScaleEvents)
	}
	if r.DirectionChanges > 300 {
		t.Errorf("%d direction changes in 6 h, want at most 300", r.DirectionChanges)
	}
	if r.OpportunisticPodsKilledYoung > 8 {
		t.Errorf("%d pods killed within 5 minutes of starting, want at most 8", r.OpportunisticPodsKilledYoung)
	}
	if r.HarvestOfRequestsOnly < 2 {
		t.Errorf("harvest %.2fx the requests-only opportunist's, want at least 2x", r.HarvestOfRequestsOnly)
	}
	if r.PaidCPUContentionOfNodeTime > 0.01 {
		t.Errorf("paid CPU contention %.4f of node-time, want at most 0.01", r.PaidCPUContentionOfNodeTime)
	}
	if r.PaidPendingPodSeconds != 0 {
		t.Errorf("paid pods pending %.0f pod-s, want none: reclaiming pods request no cpu that paid pods need", r.PaidPendingPodSeconds)
	}
	if r.ReclaimedCoreHours <= 0 {
		t.Error("nothing reclaimed")
	}
}

// Contention is measured: with theta 1 and no margin, reclaimed pods crowd
// paid bursts on some node at some time.
func TestContentionIsMeasured(t *testing.T) {
	if testing.Short() {
		t.Skip("a 6 h scenario: skipped with -short")
	}
	sc, err := Builtin("idle-requests")
	if err != nil {
		t.Fatal(err)
	}
	o := &sc.Opportunistic[0]
	o.Scaler = *o.Scaler.DeepCopy()
	o.Scaler.Spec.Reclaim.Theta = "1"
	o.Scaler.Spec.Reclaim.Margin = map[corev1.ResourceName]v1alpha1.HeadroomValue{"cpu": "0"}
	rep, err := Run(sc, Options{Seed: 1, Strategies: []string{Opportunist}})
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[0]; r.PaidCPUContentionSeconds == 0 {
		t.Errorf("no contention with theta 1 and no margin (harvest %.2fx): the measure measures nothing", r.HarvestOfRequestsOnly)
	}
}

func TestReclaimScenarioErrors(t *testing.T) {
	base := `name: r
duration: 1h
nodeGroups: [{name: n, count: 1, allocatable: {cpu: "32", memory: 64Gi}}]
paid: [{name: api, requests: {cpu: "4"}, replicas: 4, usage: USAGE}]
opportunistic: [{name: w, requests: REQUESTS, maxReplicas: 10RECLAIM}]
`
	tests := []struct {
		name, usage, requests, reclaim, want string
	}{
		{"average above 1", "{average: 1.5}", `{opportunist.io/reclaimable-cpu: "1000", cpu: "0"}`, ", reclaim: {enabled: true}", "paid[0].usage.average: 1.5 is not a fraction"},
		{"bursts alone above the average", "{average: 0.1, burstEvery: 10m, burstFor: 5m}", `{opportunist.io/reclaimable-cpu: "1000", cpu: "0"}`, ", reclaim: {enabled: true}", "below what the bursts alone use"},
		{"burstEvery without burstFor", "{average: 0.3, burstEvery: 10m}", `{opportunist.io/reclaimable-cpu: "1000", cpu: "0"}`, ", reclaim: {enabled: true}", "set both burstEvery and burstFor"},
		{"extended resource without reclaim", "{average: 0.3}", `{opportunist.io/reclaimable-cpu: "1000", cpu: "0"}`, "", "reclaim is not enabled"},
		{"reclaim without the extended resource", "{average: 0.3}", `{cpu: "1"}`, ", reclaim: {enabled: true}", "do not request opportunist.io/reclaimable-cpu"},
		{"bad theta", "{average: 0.3}", `{opportunist.io/reclaimable-cpu: "1000", cpu: "0"}`, `, reclaim: {enabled: true, theta: "2"}`, "spec.reclaim.theta"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.NewReplacer("USAGE", tt.usage, "REQUESTS", tt.requests, "RECLAIM", tt.reclaim).Replace(base)
			_, err := ParseScenario("r.yaml", []byte(doc), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
