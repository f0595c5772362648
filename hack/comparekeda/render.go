package main

import (
	"fmt"
	"math"
	"strings"
)

// render is the generated part of docs/keda.md: when and how the runs were
// made, the table, the processes, the plot.
func render(recs []recording) string {
	var b strings.Builder
	first := recs[0]
	fmt.Fprintf(&b, "Recorded %s (UTC) by `make compare-keda`; the paid app 2 → 17 at %.0f s, → 2 at %.0f s, watched until %.0f s from the moment each pipeline starts acting on the worker (15 replicas then). Load average (1, 5, 15 min) of the 2-core machine at each pipeline's start → end: ",
		strings.Replace(first.Date[:min(len(first.Date), 16)], "T", " ", 1), first.BurstAtSeconds, first.BurstEndSeconds, first.LengthSeconds)
	var loads []string
	for _, r := range recs {
		loads = append(loads, fmt.Sprintf("%s %s → %s", r.Pipeline, r.LoadAvgStart, r.LoadAvgEnd))
	}
	b.WriteString(strings.Join(loads, "; ") + ".\n\n")

	b.WriteString("| pipeline | first worker write after 2 → 17 | all 17 paid pods Running | first worker write after 17 → 2 | reversals (the load's: 2) | cluster full | overshoot into the headroom | harvest | CPU s of its processes (incl. start-up) | peak RSS of its processes |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range recs {
		res := analyse(r)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %.1f s | %.0f core-s | %.0f core-s | %.1f (%.1f) | %s |\n",
			r.Title, write(res.BurstWrite, res.BurstWriteTo), seconds(res.PaidRunning), write(res.EndWrite, res.EndWriteTo),
			res.Reversals, res.FullSeconds, res.OvershootCoreSeconds, res.HarvestCoreSeconds,
			res.CPUSeconds, res.CPUSecondsTotal, mib(res.PeakRSSBytes))
	}
	b.WriteString("\n| pipeline | process | CPU s in the window (incl. start-up) | peak RSS (VmHWM) |\n| --- | --- | --- | --- |\n")
	for _, r := range recs {
		for _, p := range r.Processes {
			fmt.Fprintf(&b, "| %s | `%s` | %.1f (%.1f) | %s |\n", r.Pipeline, p.Name, p.CPUSecondsWindow, p.CPUSecondsTotal, mib(p.PeakRSSBytes))
		}
	}
	b.WriteString("\nThe worker's counts, each change once:\n\n")
	for _, r := range recs {
		sync := "no HPA"
		if r.HPASync != "-" {
			sync = "HPA sync " + r.HPASync
		}
		fmt.Fprintf(&b, "- %s (%s): `%s`\n", r.Pipeline, sync, counts(distinct(r.Samples, r.LengthSeconds)))
	}
	b.WriteString("\n![the worker's replicas over time under the three pipelines](img/compare-keda.png)\n\n")
	return b.String()
}

func write(at float64, to int32) string {
	if math.IsNaN(at) {
		return "none"
	}
	return fmt.Sprintf("%.1f s (→ %d)", at, to)
}

func seconds(s float64) string {
	if math.IsNaN(s) {
		return "not during the burst"
	}
	return fmt.Sprintf("%.1f s", s)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func counts(xs []int32) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprint(x))
	}
	return strings.Join(s, " ")
}
