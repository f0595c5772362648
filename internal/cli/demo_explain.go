package cli

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/dashboard"
	"github.com/opportunist/opportunist/internal/sim"
)

// explainScenario is what the demo's page says about the scenario: its own
// description, the setting in words and the yardsticks of its numbers.
func explainScenario(sc *sim.Scenario, rep *sim.Report) *dashboard.Scenario {
	return &dashboard.Scenario{Name: sc.Name, Description: sc.Description, Setting: scenarioSetting(sc),
		DurationSeconds: sc.Duration.Seconds(), LoadChanges: rep.LoadChanges}
}

// scenarioSetting says what the simulated cluster is and what runs on it,
// e.g. "6 nodes, 184 cores and 480 GiB of memory in all. Paid work:
// other-services, 15 pods of 2 cores; ... Opportunistic work: worker, pods
// of 1 core, 15 to 150 of them, keeping 30 cores free for paid work."
func scenarioSetting(sc *sim.Scenario) string {
	nodes := 0
	var cpu, mem int64
	for _, g := range sc.NodeGroups {
		nodes += g.Count
		cpu += int64(g.Count) * g.Allocatable[corev1.ResourceCPU]
		mem += int64(g.Count) * g.Allocatable[corev1.ResourceMemory]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s and %s GiB of memory in all.", count(nodes, "node"), cores(cpu), decimal(float64(mem)/bytesPerGiB))
	var paid []string
	for _, p := range sc.Paid {
		s := fmt.Sprintf("%s, %s of %s", p.Name, count(int(p.Load.Replicas), "pod"), cores(p.Shape.Requests[corev1.ResourceCPU]))
		if p.Load.Traced || len(p.Load.Steps) > 0 || p.Load.Noise != nil || p.Load.Bursts != nil {
			s += " at first, changing over time"
		}
		paid = append(paid, s)
	}
	if len(paid) > 0 {
		fmt.Fprintf(&b, " Paid work: %s.", strings.Join(paid, "; "))
	}
	var opp []string
	for _, o := range sc.Opportunistic {
		s := fmt.Sprintf("%s, pods of %s, %d to %d of them", o.Name, cores(o.Shape.Requests[corev1.ResourceCPU]), o.MinReplicas, o.MaxReplicas)
		if kept := keptFree(o); kept != "" {
			s += ", keeping " + kept + " free for paid work"
		}
		opp = append(opp, s)
	}
	if len(opp) > 0 {
		fmt.Fprintf(&b, " Opportunistic work, scaled by the strategies below: %s.", strings.Join(opp, "; "))
	}
	return b.String()
}

// keptFree says what room a workload's scaler keeps free, in words: "30
// cores", "15% of the cores", "room for 4 pods of web on the nodes".
func keptFree(o sim.OpportunisticWorkload) string {
	spec := o.Scaler.Spec
	var parts []string
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		v, ok := spec.Headroom[name]
		if !ok {
			continue
		}
		what := map[corev1.ResourceName]string{corev1.ResourceCPU: "cores", corev1.ResourceMemory: "memory"}[name]
		if pct, isPercent := strings.CutSuffix(string(v), "%"); isPercent {
			parts = append(parts, pct+"% of the "+what)
			continue
		}
		if name == corev1.ResourceCPU {
			parts = append(parts, string(v)+" cores")
		} else {
			parts = append(parts, string(v)+" of memory")
		}
	}
	if p := spec.TargetUtilizationPercent; p != nil && len(parts) == 0 {
		parts = append(parts, strconv.Itoa(100-int(*p))+"% of the room")
	}
	for _, s := range spec.HeadroomSlots {
		name := s.Name
		if name == "" && s.ShapeFrom != nil {
			name = s.ShapeFrom.Name
		}
		parts = append(parts, fmt.Sprintf("room for %s %s pods", s.Count.String(), name))
	}
	return strings.Join(parts, " and ")
}

// count prints "1 pod", "15 pods".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// cores prints milli-cores as "1 core", "30 cores", "0.5 cores".
func cores(milli int64) string {
	if milli == milliPerCore {
		return "1 core"
	}
	return decimal(float64(milli)/milliPerCore) + " cores"
}

// decimal prints a number with at most one decimal, without a trailing ".0".
func decimal(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// summaryOf is a simulate result in the dashboard's words: the same
// numbers, not recomputed.
func summaryOf(r sim.Result) *dashboard.Summary {
	return &dashboard.Summary{
		HarvestCoreHours:       r.HarvestCoreHours,
		InstantLawCoreHours:    r.InstantLawCoreHours,
		HarvestOfInstantLaw:    r.HarvestRatio,
		BoundCoreHours:         r.BoundCoreHours,
		HarvestOfBound:         r.HarvestOfBound,
		OvershootCoreHours:     r.OvershootCoreHours,
		PaidPendingPodSeconds:  r.PaidPendingPodSeconds,
		LongestPaidWaitSeconds: r.LongestPaidWaitSeconds,
		ScaleEvents:            r.ScaleEvents,
		DirectionChanges:       r.DirectionChanges,
		UnschedulablePodHours:  r.UnboundOpportunisticPodHours,
	}
}
