package sim

import (
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
)

// Live plays a scenario one step at a time under one strategy, for a live
// view (opportunist demo). It runs the same loop as Run, so a Live played
// to the end sees the same cluster as Run's run of that strategy. It is not
// safe for concurrent use.
type Live struct {
	sc    *Scenario
	name  string
	w     *world
	strat strategy
	load  events
	next  int // first load event not yet applied

	previous  []int32 // replicas of each opportunistic workload before the last step
	decisions []LiveDecision
}

// liveDecisions bounds the decision feed a Live keeps.
const liveDecisions = 100

// LiveSnapshot is a Live's cluster at one instant. CPU is in milli-cores,
// memory in bytes.
type LiveSnapshot struct {
	Strategy string
	Now      time.Duration
	Finished bool
	CPU      LivePool
	Memory   LivePool
	// Workloads are the opportunistic workloads, in scenario order.
	Workloads []LiveWorkload
	// PendingPaid counts paid pods not bound; OldestPaidWait is how long the
	// oldest of them has waited; MaxPaidWait the longest wait so far.
	PendingPaid    int
	OldestPaidWait time.Duration
	MaxPaidWait    time.Duration
	// Nodes are copies of the scheduler's view of every node.
	Nodes []capacity.NodeRoom
	// Decisions are the recent changes of replica counts, newest first.
	Decisions []LiveDecision
}

// LivePool sums one resource over Ready nodes.
type LivePool struct {
	Allocatable   int64
	Paid          int64 // requests of bound paid pods
	Opportunistic int64 // requests of bound opportunistic pods
	Line          int64 // allocatable minus the headroom: the fill line
}

// LiveWorkload is one opportunistic workload's size and why.
type LiveWorkload struct {
	Name                     string
	Current, Desired         int32
	MinReplicas, MaxReplicas int32
	Limit                    string
	Reason                   string
	// PoolNodes and Stranded are the last decision's (opportunist strategies).
	PoolNodes int
	Stranded  int32
	// Slots are the last decision's headroom slots: how many of each fit.
	Slots []control.SlotFit
}

// LiveDecision is one change of a workload's replica count.
type LiveDecision struct {
	At       time.Duration
	Workload string
	From, To int32
	Limit    string
	Reason   string
}

// NewLive prepares a scenario under a strategy, at time zero. The instant
// law is refused: its pods are virtual and take no room, nothing to watch.
func NewLive(sc *Scenario, strategyName string, seed uint64) (*Live, error) {
	if strategyName == InstantLaw {
		return nil, fmt.Errorf("strategy %s cannot be played live: its pods are virtual", InstantLaw)
	}
	if sc.Reclaims() && strategyName != Opportunist {
		return nil, fmt.Errorf("strategy %q: scenario %s reclaims idle paid requests, which only opportunist does live", strategyName, sc.Name)
	}
	w := newWorld(sc, false)
	w.initReclaim(seed)
	strat, err := newStrategy(strategyName, sc, w)
	if err != nil {
		return nil, err
	}
	l := &Live{sc: sc, name: strategyName, w: w, strat: strat, load: loadEvents(sc, seed)}
	// As in simulate: the cluster at time zero has run for a while, its pods
	// are placed and Ready.
	l.applyLoad()
	w.reconcileSets()
	w.schedulePending()
	w.settle()
	w.schedulePending()
	l.previous = l.replicas()
	return l, nil
}

// Done reports whether the scenario has played to its end.
func (l *Live) Done() bool { return l.w.now >= l.sc.Duration }

// Now is the simulated time of the next step.
func (l *Live) Now() time.Duration { return l.w.now }

// StepDuration is the simulated time one Step advances.
func (l *Live) StepDuration() time.Duration { return l.sc.Step }

// Step plays one step, as simulate's loop does, and records the scale
// decisions it made. It does nothing once Done.
func (l *Live) Step() {
	if l.Done() {
		return
	}
	w := l.w
	l.applyLoad()
	w.fireTimers()
	w.publish()
	l.strat.act(w)
	w.reconcileSets()
	w.schedulePending()
	l.recordDecisions()
	w.now += l.sc.Step
}

// applyLoad applies the scenario's events due by now: simulate's apply.
func (l *Live) applyLoad() {
	w := l.w
	for ; l.next < len(l.load.list) && l.load.list[l.next].at <= w.now; l.next++ {
		e := l.load.list[l.next]
		if e.paid >= 0 {
			w.paid[e.paid].replicas = e.replicas
			continue
		}
		changed := 0
		for _, i := range w.groups[e.node.Group] {
			if changed < e.node.Count && w.nodes[i].spec.Ready == e.node.Down {
				w.setNode(i, !e.node.Down)
				changed++
			}
		}
	}
}

func (l *Live) replicas() []int32 {
	out := make([]int32, len(l.w.opp))
	for i, rs := range l.w.opp {
		out[i] = rs.replicas
	}
	return out
}

func (l *Live) recordDecisions() {
	now := l.replicas()
	for i, rs := range l.w.opp {
		if now[i] == l.previous[i] {
			continue
		}
		limit, reason := l.why(i)
		l.decisions = append(l.decisions, LiveDecision{At: l.w.now, Workload: rs.name, From: l.previous[i], To: now[i], Limit: limit, Reason: reason})
	}
	if extra := len(l.decisions) - liveDecisions; extra > 0 {
		l.decisions = append(l.decisions[:0], l.decisions[extra:]...)
	}
	l.previous = now
}

// why names what set workload i's size, and says it in a sentence.
func (l *Live) why(i int) (limit, reason string) {
	switch s := l.strat.(type) {
	case *opportunist:
		if d := decisionFor(s.decisions, l.w.opp[i].name); d != nil {
			return string(d.Limit), d.Reason
		}
	case *hpaStrategy:
		reason := s.why(i)
		if s.ctl == nil {
			return "HPA", reason
		}
		if d := decisionFor(s.ctl.decisions, l.w.opp[i].name); d != nil {
			reason += fmt.Sprintf("; the controller wants %d: %s", d.Desired, d.Reason)
		}
		return "HPA", reason
	}
	return "", ""
}

// lastDecision is workload i's last decision by a strategy that runs the
// control law (nil for the others, and before the first round).
func (l *Live) lastDecision(i int) *control.Decision {
	var ds []control.Decision
	switch s := l.strat.(type) {
	case *opportunist:
		ds = s.decisions
	case *hpaStrategy:
		if s.ctl != nil {
			ds = s.ctl.decisions
		}
	}
	return decisionFor(ds, l.w.opp[i].name)
}

func decisionFor(ds []control.Decision, name string) *control.Decision {
	for i := range ds {
		if ds[i].Key == namespace+"/"+name {
			return &ds[i]
		}
	}
	return nil
}

// Snapshot returns the cluster now.
func (l *Live) Snapshot() LiveSnapshot {
	w := l.w
	s := LiveSnapshot{Strategy: l.name, Now: w.now, Finished: l.Done(), MaxPaidWait: w.maxPaidWait}
	s.CPU = l.pool(corev1.ResourceCPU)
	s.Memory = l.pool(corev1.ResourceMemory)
	for _, p := range w.pending {
		if p.rs.paid {
			s.PendingPaid++
			s.OldestPaidWait = max(s.OldestPaidWait, w.now-p.created)
		}
	}
	s.MaxPaidWait = max(s.MaxPaidWait, s.OldestPaidWait)
	for i, rs := range w.opp {
		o := &l.sc.Opportunistic[i]
		wl := LiveWorkload{Name: rs.name, Current: rs.replicas, Desired: rs.replicas, MinReplicas: o.MinReplicas, MaxReplicas: o.MaxReplicas}
		wl.Limit, wl.Reason = l.why(i)
		if d := l.lastDecision(i); d != nil {
			wl.PoolNodes, wl.Stranded, wl.Slots = d.PoolNodes, d.Stranded, d.Slots
		}
		if op, ok := l.strat.(*opportunist); ok && len(op.desired) > i {
			wl.Desired = op.desired[i]
		}
		if h, ok := l.strat.(*hpaStrategy); ok && h.ctl != nil {
			wl.Desired = h.ctl.desired[i]
		}
		s.Workloads = append(s.Workloads, wl)
	}
	for _, r := range w.rooms {
		r.Allocatable = maps.Clone(r.Allocatable)
		r.Requested = maps.Clone(r.Requested)
		r.OpportunisticRequested = maps.Clone(r.OpportunisticRequested)
		r.Labels, r.Taints = nil, nil // not shown, and shared with the world
		s.Nodes = append(s.Nodes, r)
	}
	for i := len(l.decisions) - 1; i >= 0; i-- {
		s.Decisions = append(s.Decisions, l.decisions[i])
	}
	return s
}

// pool sums one resource over Ready nodes; the line keeps the largest
// headroom any workload asks for.
func (l *Live) pool(name corev1.ResourceName) LivePool {
	var p LivePool
	for i := range l.w.rooms {
		r := &l.w.rooms[i]
		if r.State != capacity.NodeReady {
			continue
		}
		p.Allocatable += r.Allocatable[name]
		p.Opportunistic += r.OpportunisticRequested[name]
		p.Paid += r.Requested[name] - r.OpportunisticRequested[name]
	}
	p.Line = p.Allocatable - l.w.keptFree(name, p.Allocatable)
	return p
}
