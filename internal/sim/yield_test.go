package sim

import (
	"testing"
	"time"
)

// Issue 13's yield cases without PriorityClasses (nothing preempts): the
// opportunist strategy must make room for a paid pod by yielding the right
// pods, where a sum-of-cores budget and the ReplicaSet's own choice of
// victims leave it waiting for the rest of the run.
func TestTargetedYield(t *testing.T) {
	tests := []struct {
		name, yaml string
	}{
		{
			// 10 nodes of 8 cores, a 3-core paid pod and a 4-core worker pod
			// on each: the budget allows every worker (80 - 30 - 5 >= 40),
			// so only a targeted yield lets the 5-core pod in.
			name: "measured case",
			yaml: `duration: 10m
step: 1s
nodeGroups:
- {name: n, count: 10, allocatable: {cpu: "8", memory: 32Gi}}
paid:
- {name: svc, requests: {cpu: "3"}, replicas: 10}
- name: big
  requests: {cpu: "5"}
  replicas: 0
  steps: [{at: 1m, replicas: 1}]
opportunistic:
- {name: worker, requests: {cpu: "4"}, terminationGracePeriod: 2s, replicas: 10, maxReplicas: 20}
`,
		},
		{
			// 3 nodes of 8 cores, a 4-core paid pod and two 2-core worker
			// pods on each. A 4-core paid pod lowers the budget by two
			// replicas; the ReplicaSet alone would take one worker pod from
			// each of two nodes (its newest), freeing 2 cores on each, and
			// the paid pod would fit nowhere. The deletion cost sends both
			// from one node.
			name: "fragmentation",
			yaml: `duration: 10m
step: 1s
nodeGroups:
- {name: n, count: 3, allocatable: {cpu: "8", memory: 32Gi}}
paid:
- {name: web, requests: {cpu: "4"}, replicas: 3}
- name: big
  requests: {cpu: "4"}
  replicas: 0
  steps: [{at: 1m, replicas: 1}]
opportunistic:
- {name: worker, requests: {cpu: "2"}, terminationGracePeriod: 2s, replicas: 6, maxReplicas: 20}
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := ParseScenario("yield.yaml", []byte(tc.yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Run(sc, Options{Seed: 1, Strategies: []string{Opportunist}})
			if err != nil {
				t.Fatal(err)
			}
			r := rep.Results[0]
			t.Logf("paid pod waited %s at most (%.0f pod-seconds in all), %d scale writes, harvest %.3f of the instant law",
				r.MaxPaidWait, r.PaidPendingPodSeconds, r.ScaleEvents, r.HarvestRatio)
			// The worker's grace period, one step to see the pending pod and
			// one to see its marks.
			if want := 2*time.Second + 2*sc.Step; r.MaxPaidWait > want {
				t.Errorf("the paid pod waited %s, want <= %s", r.MaxPaidWait, want)
			}
			if r.ScaleEvents != 1 {
				t.Errorf("%d scale writes, want 1 (the yield)", r.ScaleEvents)
			}
		})
	}
}
