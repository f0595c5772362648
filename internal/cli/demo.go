package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/dashboard"
	"github.com/opportunist/opportunist/internal/sim"
)

type demoOptions struct {
	Scenario     string
	ScenarioFile string
	Strategy     string
	Compare      string
	Speed        float64
	Seed         uint64
	Listen       string
}

func defaultDemoOptions() *demoOptions {
	return &demoOptions{Strategy: sim.Opportunist, Compare: sim.HPAWriteup, Speed: 10, Seed: 1, Listen: "127.0.0.1:8090"}
}

func (o *demoOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Scenario, "scenario", o.Scenario, "built-in scenario: "+strings.Join(sim.BuiltinNames(), ", ")+" (default "+defaultDemoScenario+")")
	fs.StringVar(&o.ScenarioFile, "scenario-file", o.ScenarioFile, "scenario file (YAML, see docs/simulate.md), instead of --scenario")
	fs.StringVar(&o.Strategy, "strategy", o.Strategy, "strategy shown first: "+strings.Join(liveStrategies(), ", "))
	fs.StringVar(&o.Compare, "compare", o.Compare, "second strategy played on the same load, shown beside the first (none for no comparison)")
	fs.Float64Var(&o.Speed, "speed", o.Speed, "simulated seconds per wall-clock second (1 is real time)")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the scenario's random noise and bursts")
	fs.StringVar(&o.Listen, "listen", o.Listen, "address to serve the dashboard on")
}

// defaultDemoScenario plays when neither --scenario nor --scenario-file is given.
const defaultDemoScenario = "seed-burst"

// noCompare is the --compare value that plays one strategy only ("" too).
const noCompare = "none"

// liveStrategies are the strategies a demo can play: the instant law's pods are virtual.
func liveStrategies() []string {
	return slices.DeleteFunc(sim.Strategies(), func(s string) bool { return s == sim.InstantLaw })
}

// Validate returns every problem with the flags at once.
func (o *demoOptions) Validate() []error {
	var errs []error
	switch {
	case o.Scenario != "" && o.ScenarioFile != "":
		errs = append(errs, fmt.Errorf("--scenario and --scenario-file are exclusive: pass one of them"))
	case o.Scenario != "" && !slices.Contains(sim.BuiltinNames(), o.Scenario):
		errs = append(errs, fmt.Errorf("--scenario %q is not built in (built in: %s)", o.Scenario, strings.Join(sim.BuiltinNames(), ", ")))
	}
	if !slices.Contains(liveStrategies(), o.Strategy) {
		errs = append(errs, fmt.Errorf("--strategy %q is not one of %s", o.Strategy, strings.Join(liveStrategies(), ", ")))
	}
	switch {
	case o.Compare == "" || o.Compare == noCompare:
	case o.Compare == o.Strategy:
		errs = append(errs, fmt.Errorf("--compare %q is the --strategy already shown", o.Compare))
	case !slices.Contains(liveStrategies(), o.Compare):
		errs = append(errs, fmt.Errorf("--compare %q is not one of %s, or %s", o.Compare, strings.Join(liveStrategies(), ", "), noCompare))
	}
	if !(o.Speed > 0 && o.Speed <= 100000) {
		errs = append(errs, fmt.Errorf("--speed must be above 0 and at most 100000, got %v", o.Speed))
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q is not host:port: %v", o.Listen, err))
	}
	return errs
}

func newDemoCommand() *cobra.Command {
	o := defaultDemoOptions()
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Watch opportunistic scaling live in the browser, on a simulated cluster",
		Long: `Play a simulated scenario in real time or faster and serve a dashboard that
explains it: what the scenario and each strategy are, the strategy and a second
one (--compare) side by side on the same paid load with the numbers
opportunist simulate reports for each (harvest, overshoot, longest paid wait,
direction changes), the cluster's CPU filling and emptying, each opportunistic
workload's size and what limits it, paid pods waiting, the scale decisions and
the free room per node. Needs no cluster, no kubeconfig and no network. When
the scenario ends the page holds its end state until you stop the command.`,
		Example: `  opportunist demo
  opportunist demo --scenario diurnal --speed 60
  opportunist demo --scenario-file my-cluster.yaml --compare hpa-averagevalue`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(o.Validate()); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return o.run(ctx, cmd.OutOrStdout())
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func (o *demoOptions) scenario() (*sim.Scenario, error) {
	switch {
	case o.ScenarioFile != "":
		return sim.LoadScenario(o.ScenarioFile)
	case o.Scenario == "":
		return sim.Builtin(defaultDemoScenario)
	}
	return sim.Builtin(o.Scenario)
}

func (o *demoOptions) strategies() []string {
	if o.Compare == "" || o.Compare == noCompare {
		return []string{o.Strategy}
	}
	return []string{o.Strategy, o.Compare}
}

// run serves the dashboard and plays the scenario until ctx ends.
func (o *demoOptions) run(ctx context.Context, out io.Writer) error {
	src, err := o.newSource()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return listenError("--listen", o.Listen, err)
	}
	srv := &http.Server{Handler: dashboard.NewHandler(src, dashboard.WithContext(ctx)), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "opportunist demo: playing %s at %vx; open http://%s/ (Ctrl-C to stop)\n", src.scenario.Name, o.Speed, ln.Addr())
	go src.play(ctx, o.Speed)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("demo: serving: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("demo: shutting down: %w", err)
	}
	return nil
}

func (o *demoOptions) newSource() (*demoSource, error) {
	sc, err := o.scenario()
	if err != nil {
		return nil, err
	}
	src := &demoSource{scenario: sc, origin: fmt.Sprintf("simulator: %s at %vx", sc.Name, o.Speed)}
	// The page shows simulate's numbers beside each strategy: the same run,
	// computed once here (a Live played to the end sees the same cluster).
	rep, err := sim.Run(sc, sim.Options{Seed: o.Seed, Strategies: o.strategies()})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	src.explained = explainScenario(sc, rep)
	for i := range rep.Results {
		src.summaries = append(src.summaries, summaryOf(rep.Results[i]))
	}
	for _, name := range o.strategies() {
		l, err := sim.NewLive(sc, name, o.Seed)
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		src.lives = append(src.lives, l)
		src.history = append(src.history, &sampler{name: name})
	}
	src.capture()
	return src, nil
}

// demoEpoch is the wall-clock instant shown for simulated time zero.
var demoEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// demoSource plays every strategy in lockstep and serves what it sees.
type demoSource struct {
	scenario *sim.Scenario
	origin   string
	// explained and summaries (by strategy, as lives) are fixed for the
	// run: what the scenario is, and what simulate reports for it.
	explained *dashboard.Scenario
	summaries []*dashboard.Summary

	mu      sync.Mutex
	lives   []*sim.Live
	state   dashboard.State
	history []*sampler
}

// play advances one simulated step every step/speed of wall time, then
// holds the end state.
func (s *demoSource) play(ctx context.Context, speed float64) {
	interval := time.Duration(float64(s.scenario.Step) / speed)
	// Below a millisecond a ticker cannot keep up: play several steps a tick.
	stepsPerTick := 1
	for interval < time.Millisecond {
		interval *= 2
		stepsPerTick *= 2
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if s.advance(stepsPerTick) {
			return
		}
	}
}

// advance plays n steps of every strategy and reports whether the scenario is over.
func (s *demoSource) advance(n int) (done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		for _, l := range s.lives {
			l.Step()
		}
	}
	// One capture a tick: at high speeds, snapshots of every step would cost
	// more than the steps.
	s.capture()
	return s.lives[0].Done()
}

// capture records the current state and a history sample; s.mu is held.
func (s *demoSource) capture() {
	st := dashboard.State{Origin: s.origin, Scenario: s.explained}
	for i, l := range s.lives {
		snap := l.Snapshot()
		st.Time, st.Finished = demoEpoch.Add(snap.Now), snap.Finished
		v := viewOf(snap)
		v.Description = sim.PlainWords(v.Name)
		v.Summary = s.summaries[i]
		st.Views = append(st.Views, v)
		s.history[i].add(dashboard.Sample{Time: st.Time, Resources: v.Resources, PendingPaidPods: v.PendingPaid.Pods})
	}
	s.state = st
}

func (s *demoSource) State() dashboard.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *demoSource) History() dashboard.History {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := dashboard.History{}
	for _, sm := range s.history {
		h.Views = append(h.Views, dashboard.Series{Name: sm.name, Points: slices.Clone(sm.points)})
	}
	return h
}

// maxSamples bounds a history: past it, every other sample is dropped and
// the sampling stride doubles, so a long scenario still fits a chart.
const maxSamples = 600

type sampler struct {
	name   string
	points []dashboard.Sample
	stride int
	seen   int
}

// A kept sample's PendingPaidPods is the most paid pods waiting at once
// until the next kept sample: a short wait survives the thinning.
func (s *sampler) add(p dashboard.Sample) {
	s.stride = max(s.stride, 1)
	if s.seen%s.stride == 0 {
		s.points = append(s.points, p)
	} else if last := len(s.points) - 1; last >= 0 {
		s.points[last].PendingPaidPods = max(s.points[last].PendingPaidPods, p.PendingPaidPods)
	}
	s.seen++
	if len(s.points) > maxSamples {
		kept := s.points[:0]
		for i, q := range s.points {
			if i%2 == 0 {
				kept = append(kept, q)
			} else {
				kept[len(kept)-1].PendingPaidPods = max(kept[len(kept)-1].PendingPaidPods, q.PendingPaidPods)
			}
		}
		s.points = kept
		s.stride *= 2
	}
}

const (
	milliPerCore = 1000
	bytesPerGiB  = 1 << 30
)

func viewOf(s sim.LiveSnapshot) dashboard.View {
	v := dashboard.View{
		Name: s.Strategy,
		Resources: []dashboard.Resource{
			resourceOf("cpu", "cores", s.CPU, milliPerCore),
			resourceOf("memory", "GiB", s.Memory, bytesPerGiB),
		},
		PendingPaid: dashboard.PendingPaid{Pods: s.PendingPaid, OldestWaitSeconds: s.OldestPaidWait.Seconds(), MaxWaitSeconds: s.MaxPaidWait.Seconds()},
		Workloads:   []dashboard.Workload{},
		Nodes:       []dashboard.Node{},
		Decisions:   []dashboard.Decision{},
	}
	for _, w := range s.Workloads {
		v.Workloads = append(v.Workloads, dashboard.Workload{Name: w.Name, Current: w.Current, Desired: w.Desired, Min: w.MinReplicas, Max: w.MaxReplicas,
			LimitedBy: w.Limit, Reason: w.Reason, PoolNodes: w.PoolNodes, Stranded: w.Stranded, Slots: slotsOf(w.Slots)})
	}
	for _, n := range s.Nodes {
		v.Nodes = append(v.Nodes, nodeOf(n))
	}
	for _, d := range s.Decisions {
		v.Decisions = append(v.Decisions, dashboard.Decision{Time: demoEpoch.Add(d.At), Workload: d.Workload, From: d.From, To: d.To, LimitedBy: d.Limit, Reason: d.Reason})
	}
	return v
}

// slotsOf is the control law's slot fits in the dashboard's terms; nil
// without slots.
func slotsOf(fits []control.SlotFit) []dashboard.SlotFit {
	var out []dashboard.SlotFit
	for _, f := range fits {
		s := dashboard.SlotFit{Name: f.Name, Wanted: f.Wanted, Fit: f.Fit}
		for _, n := range f.Nodes {
			s.Nodes = append(s.Nodes, dashboard.NodeSlots{Node: n.Node, Slots: n.Slots})
		}
		out = append(out, s)
	}
	return out
}

func resourceOf(name, unit string, p sim.LivePool, per float64) dashboard.Resource {
	return dashboard.Resource{Name: name, Unit: unit, Allocatable: float64(p.Allocatable) / per, Paid: float64(p.Paid) / per,
		Opportunistic: float64(p.Opportunistic) / per, Line: float64(p.Line) / per}
}

// nodeOf is one node's room in display units; shared with the live cluster's source.
func nodeOf(n capacity.NodeRoom) dashboard.Node {
	res := func(name corev1.ResourceName, unit string, per float64) dashboard.NodeResource {
		alloc, req, opp := n.Allocatable[name], n.Requested[name], n.OpportunisticRequested[name]
		return dashboard.NodeResource{Unit: unit, Allocatable: float64(alloc) / per, Paid: float64(req-opp) / per, Opportunistic: float64(opp) / per, Free: float64(alloc-req) / per}
	}
	return dashboard.Node{Name: n.Name, State: n.State.String(), CPU: res(corev1.ResourceCPU, "cores", milliPerCore), Memory: res(corev1.ResourceMemory, "GiB", bytesPerGiB), Pods: n.Pods}
}
