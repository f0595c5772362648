package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkSimulateDiurnalWeek simulates a week of the diurnal scenario on
// the write-up's cluster at a one-second step (604,800 steps): every
// strategy in parallel as `opportunist simulate` runs them, and each alone.
func BenchmarkSimulateDiurnalWeek(b *testing.B) {
	sc, err := Builtin("diurnal")
	if err != nil {
		b.Fatal(err)
	}
	sc.Duration = 7 * 24 * time.Hour
	b.Run("strategies=all", func(b *testing.B) {
		for b.Loop() {
			if _, err := Run(sc, Options{Seed: 1}); err != nil {
				b.Fatal(err)
			}
		}
	})
	load := loadEvents(sc, 1)
	for _, name := range Strategies() {
		b.Run("strategy="+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if out := simulate(sc, name, load, false); out.err != nil {
					b.Fatal(out.err)
				}
			}
		})
	}
}

// BenchmarkSimulate runs 10 simulated minutes at a one-second step on a
// cluster at the Kubernetes scalability envelope (5,000 nodes, 150,000
// paid pods; scaleScenario), for the opportunist and the instant law in
// parallel, as `opportunist simulate --strategies opportunist` runs them.
// The smaller sizes show how the cost grows. With burst=preempting the web
// tier's burst (a sixth of the paid pods, 1.6 times the headroom) makes
// paid pods preempt thousands of the worker's pods.
func BenchmarkSimulate(b *testing.B) {
	for _, nodes := range []int{100, 500, 1000, 5000} {
		for _, burst := range []int{25, 6} {
			sc, err := ParseScenario("scale.yaml", []byte(scaleScenario(nodes, burst)), nil)
			if err != nil {
				b.Fatal(err)
			}
			name := fmt.Sprintf("nodes=%d/pods=%d", nodes, nodes*30)
			if burst == 6 {
				name += "/burst=preempting"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Run(sc, Options{Seed: 1, Strategies: []string{Opportunist}}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// scaleScenario is a cluster of nodes 32-core nodes in three zones holding
// 30 paid pods a node in three workloads of different shapes, with a burst
// of the web tier (1/burst of the paid pods, from 2 to 6 minutes) and noise
// on the batch tier, and a 2-core opportunistic worker keeping 5 % of the
// CPU free. PriorityClasses are on: paid pods preempt the worker.
func scaleScenario(nodes, burst int) string {
	var s strings.Builder
	fmt.Fprintf(&s, `name: scale
duration: 10m
step: 1s
priorityClasses: true
nodeGroups:
`)
	for z := range 3 {
		fmt.Fprintf(&s, `- name: zone-%d
  count: %d
  allocatable: {cpu: "32", memory: 128Gi, pods: "110"}
  labels: {topology.kubernetes.io/zone: zone-%d}
`, z, nodes/3+min(1, nodes%3/(z+1)), z)
	}
	pods := nodes * 30
	fmt.Fprintf(&s, `paid:
- name: web
  requests: {cpu: 500m, memory: 1Gi}
  priority: 1000
  startup: 5s
  replicas: %d
  steps:
  - {at: 2m, replicas: %d}
  - {at: 6m, replicas: %d}
- name: api
  requests: {cpu: 250m, memory: 512Mi}
  priority: 1000
  replicas: %d
- name: batch
  requests: {cpu: "1", memory: 2Gi}
  priority: 500
  replicas: %d
  noise: {every: 1m, replicas: %d}
opportunistic:
- name: worker
  requests: {cpu: "2", memory: 4Gi}
  priority: -10
  startup: 10s
  terminationGracePeriod: 5s
  minReplicas: 0
  maxReplicas: %d
  headroom: {cpu: "5%%"}
`, pods*2/5, pods*2/5+pods/burst, pods*2/5, pods/3, pods-pods*2/5-pods/3, pods/100, nodes*16)
	return s.String()
}
