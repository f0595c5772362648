package sim

import (
	"fmt"
	"time"
)

// Limits of a scenario: a typo (replicas: 2000000000) costs an error naming
// the field, not the machine's memory. Nodes and pods are twice Kubernetes'
// scalability envelope (5,000 nodes, 150,000 pods); each simulated pod costs
// about a kilobyte per strategy, and the strategies run side by side.
const (
	maxNodes = 10000
	maxPods  = 300000
	// maxLoadChanges bounds the paid load's timeline (steps over every
	// repetition, noise draws, bursts): it is built whole before the run.
	maxLoadChanges = 2000000
)

const envelope = "twice Kubernetes' scalability envelope of 5000 nodes and 150000 pods"

// checkLimits reports a scenario that is larger than the simulator runs:
// more nodes or pods in total than the limits, or a paid load that changes
// too often.
func checkLimits(c *errs, f *scenarioFile, s *Scenario) {
	nodes, biggest := 0, -1
	for i := range f.NodeGroups {
		g := &f.NodeGroups[i]
		if g.Count < 0 {
			continue
		}
		nodes += min(g.Count, maxNodes+1)
		if biggest < 0 || g.Count > f.NodeGroups[biggest].Count {
			biggest = i
		}
	}
	if nodes > maxNodes {
		g := &f.NodeGroups[biggest]
		c.field(g.pos, "count", "%d nodes in all node groups, more than the simulator's limit of %d (%s): lower the counts", nodes, maxNodes, envelope)
	}

	// Pods: every paid workload at its peak (one burst, the noise at its
	// top) and every opportunistic one at its largest count. Run checks
	// the exact peak, bursts that overlap included, once they are drawn.
	type peak struct {
		pods  int64
		pos   pos
		field string
	}
	var peaks []peak
	var total int64
	for i := range f.Paid {
		p := &f.Paid[i]
		pk := peak{pods: int64(p.Replicas), pos: p.pos, field: "replicas"}
		for j := range p.Steps {
			if st := &p.Steps[j]; st.Replicas != nil && int64(*st.Replicas) > pk.pods {
				pk = peak{pods: int64(*st.Replicas), pos: st.pos, field: "replicas"}
			}
		}
		if n := p.Noise; n != nil && n.Replicas > 0 {
			pk.pods += int64(n.Replicas)
		}
		if b := p.Bursts; b != nil && b.Replicas > 0 {
			pk.pods += int64(b.Replicas)
		}
		peaks = append(peaks, pk)
		total += max(pk.pods, 0)
	}
	for i := range f.Opportunistic {
		o := &f.Opportunistic[i]
		pk := peak{pods: int64(o.MaxReplicas), pos: o.pos, field: "maxReplicas"}
		if o.Replicas != nil && int64(*o.Replicas) > pk.pods {
			pk = peak{pods: int64(*o.Replicas), pos: o.pos, field: "replicas"}
		}
		peaks = append(peaks, pk)
		total += max(pk.pods, 0)
	}
	if total > maxPods {
		var top peak
		for _, pk := range peaks {
			if pk.pods > top.pods {
				top = pk
			}
		}
		c.field(top.pos, top.field, "%d replicas make %d pods in total with the other workloads at their peaks, more than the simulator's limit of %d (%s): lower it", top.pods, total, maxPods, envelope)
	}

	if s.Duration <= 0 || s.Step <= 0 {
		return
	}
	var changes int64
	type source struct {
		n     int64
		pos   pos
		field string
		every time.Duration
	}
	var worst source
	for i := range f.Paid {
		p := &f.Paid[i]
		count := func(every time.Duration) int64 {
			if every <= 0 {
				return 0
			}
			return int64(s.Duration/every) + 1
		}
		srcs := []source{{n: count(p.RepeatEvery.Duration) * int64(len(p.Steps)+1), pos: p.pos, field: "repeatEvery", every: p.RepeatEvery.Duration}}
		if n := p.Noise; n != nil {
			srcs = append(srcs, source{n: count(n.Every.Duration), pos: n.pos, field: "every", every: n.Every.Duration})
		}
		if b := p.Bursts; b != nil {
			srcs = append(srcs, source{n: 2 * count(b.MeanInterval.Duration), pos: b.pos, field: "meanInterval", every: b.MeanInterval.Duration})
		}
		for _, src := range srcs {
			changes += src.n
			if src.n > worst.n {
				worst = src
			}
		}
	}
	if changes > maxLoadChanges {
		c.field(worst.pos, worst.field, "%s over the scenario's %s: the paid load changes about %d times in all (%d from this field), more than the simulator's limit of %d: make it longer",
			worst.every, s.Duration, changes, worst.n, maxLoadChanges)
	}
}

// checkPeak is Run's check of the pods the scenario asks for at once, on
// the drawn load (overlapping bursts and traces included).
func checkPeak(sc *Scenario, load events) error {
	var opp int64
	for i := range sc.Opportunistic {
		opp += int64(max(sc.Opportunistic[i].MaxReplicas, sc.Opportunistic[i].Replicas))
	}
	current := make([]int64, len(sc.Paid))
	var paid int64
	for _, e := range load.list {
		if e.paid < 0 {
			continue
		}
		paid += int64(e.replicas) - current[e.paid]
		current[e.paid] = int64(e.replicas)
		if paid+opp > maxPods {
			return fmt.Errorf("scenario %s: at %s the paid workloads want %d pods and the opportunistic ones up to %d: more than the simulator's limit of %d pods in total (%s); lower the load",
				sc.Name, e.at, paid, opp, maxPods, envelope)
		}
	}
	return nil
}

// peak is the most pods the load asks for at once with one burst.
func (l *Load) peak() int64 {
	v := int64(l.Replicas)
	for _, s := range l.Steps {
		v = max(v, int64(s.Replicas))
	}
	if !l.Traced {
		if l.Noise != nil {
			v += int64(l.Noise.Replicas)
		}
		if l.Bursts != nil {
			v += int64(l.Bursts.Replicas)
		}
	}
	return v
}
