//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/sim"
)

// The calibration plays one scenario twice: on the local control plane
// (the real scheduler, ReplicaSet and HPA controllers, kwok nodes, the
// opportunist binary) and in the simulator, from the same scenario file in
// testdata, and asserts that the trajectories agree. Both write the per-step
// trace (`opportunist simulate --trace-out`): real.csv and sim.csv in the
// test's artifact folder, which `make record` copies to docs/data and draws
// into docs/img/calibration.png.

// simHPA is the simulator's model of the write-up's HPA.
const simHPA = sim.HPAWriteup

// hpaWriteupName labels the real HPA's rows: the write-up's HPA run as the
// write-up's controller flags configure it.
const hpaWriteupName = "hpa-writeup"

// calibrationScenario loads a scenario of testdata and checks that the e2e
// can play its paid load: fixed replica counts at fixed times.
func calibrationScenario(t *testing.T, file string) *sim.Scenario {
	t.Helper()
	sc, err := sim.LoadScenario(filepath.Join(repoRoot, "test", "e2e", "testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sc.Paid {
		if p.Load.Noise != nil || p.Load.Bursts != nil || p.Load.RepeatEvery != 0 {
			t.Fatalf("%s: paid workload %s has noise, bursts or repeats: the e2e plays only steps", file, p.Name)
		}
	}
	return sc
}

// simulateSteps runs the scenario in the simulator under one strategy and
// returns its per-step trace, also written to sim.csv.
func simulateSteps(t *testing.T, sc *sim.Scenario, strategy string) []sim.StepRow {
	t.Helper()
	rep, err := sim.Run(sc, sim.Options{Seed: 1, Strategies: []string{strategy}, StepTrace: true})
	if err != nil {
		t.Fatal(err)
	}
	writeSteps(t, "sim.csv", rep.Steps)
	return rep.Steps
}

func writeSteps(t *testing.T, name string, rows []sim.StepRow) {
	t.Helper()
	var buf bytes.Buffer
	if err := sim.WriteStepTrace(&buf, rows); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(testDir(t), name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("per-step trace written to %s", path)
}

// stepRecorder samples the cluster once a second in the columns of the
// simulator's per-step trace, for the opportunistic workloads of one
// namespace; every other pod counts as paid.
type stepRecorder struct {
	strategy  string
	ns        string
	workloads []string
	// desired reads what the strategy last asked for a workload.
	desired func(ctx context.Context, workload string) (int32, error)
}

// record plays the scenario's paid load (each paid workload's Deployment
// in ns, scaled at its steps' times) for its duration, sampling at every
// whole second from now, and writes real.csv.
func (r *stepRecorder) record(t *testing.T, sc *sim.Scenario) []sim.StepRow {
	t.Helper()
	type change struct {
		at       time.Duration
		name     string
		replicas int32
	}
	var program []change
	for _, p := range sc.Paid {
		for _, s := range p.Load.Steps {
			program = append(program, change{s.At, p.Name, s.Replicas})
		}
	}
	slices.SortStableFunc(program, func(a, b change) int { return int(a.at - b.at) })
	var rows []sim.StepRow
	start := time.Now()
	for tick := time.Duration(0); tick < sc.Duration; tick += sc.Step {
		time.Sleep(time.Until(start.Add(tick))) // pacing: one sample per step of wall time
		for len(program) > 0 && program[0].at <= tick {
			scaleDeployment(t, r.ns, program[0].name, program[0].replicas)
			program = program[1:]
		}
		sample, err := r.sample(context.Background(), tick)
		if err != nil {
			t.Fatalf("sampling at %s: %v", tick, err)
		}
		rows = append(rows, sample...)
	}
	writeSteps(t, "real.csv", rows)
	return rows
}

// sample is one row per workload: its Deployment's spec.replicas, its pods
// bound and not terminating, the strategy's desired count, the paid pods
// not bound and the free CPU (Ready nodes' allocatable minus the requests of
// the pods bound to them), as the simulator counts them.
func (r *stepRecorder) sample(ctx context.Context, at time.Duration) ([]sim.StepRow, error) {
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	ready := map[string]bool{}
	var free int64
	for _, n := range nodes.Items {
		if nodeReady(&n) {
			ready[n.Name] = true
			free += n.Status.Allocatable.Cpu().MilliValue()
		}
	}
	bound := map[string]int32{}
	paidPending := 0
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		opportunistic := p.Namespace == r.ns && slices.Contains(r.workloads, p.Labels["app"])
		switch {
		case p.Spec.NodeName == "" && !opportunistic && p.DeletionTimestamp == nil:
			paidPending++
		case p.Spec.NodeName != "" && ready[p.Spec.NodeName]:
			for _, c := range p.Spec.Containers {
				free -= c.Resources.Requests.Cpu().MilliValue()
			}
			if opportunistic && p.DeletionTimestamp == nil {
				bound[p.Labels["app"]]++
			}
		}
	}
	var rows []sim.StepRow
	for _, w := range r.workloads {
		current, err := deploymentReplicas(ctx, r.ns, w)
		if err != nil {
			return nil, err
		}
		desired, err := r.desired(ctx, w)
		if err != nil {
			return nil, err
		}
		rows = append(rows, sim.StepRow{Strategy: r.strategy, At: at, Workload: w, Desired: desired, Current: current,
			Bound: bound[w], PaidPending: paidPending, FreeCPU: free})
	}
	return rows, nil
}

// trajectory is a workload's current count at every step from 0 to the
// scenario's duration (the simulator's rows are sparse: a count holds until
// the next row), with the count before the first step (the scenario's
// initial replicas) first.
func trajectory(sc *sim.Scenario, rows []sim.StepRow, workload string) []int32 {
	var initial int32
	for _, o := range sc.Opportunistic {
		if o.Name == workload {
			initial = o.Replicas
		}
	}
	n := int(sc.Duration / sc.Step)
	out := make([]int32, n+1)
	out[0] = initial
	filled := 0
	for _, r := range rows {
		if r.Workload != workload {
			continue
		}
		i := int(r.At/sc.Step) + 1
		for j := filled + 1; j < i && j <= n; j++ {
			out[j] = out[j-1]
		}
		if i <= n {
			out[i] = r.Current
			filled = i
		}
	}
	for j := filled + 1; j <= n; j++ {
		out[j] = out[j-1]
	}
	return out
}

// reversals counts the moves of a count that go the other way from the
// move before (as the simulator's direction changes): 15→116→56→116 is two.
func reversals(xs []int32) int {
	n, last := 0, 0
	for i := 1; i < len(xs); i++ {
		dir := 0
		switch {
		case xs[i] > xs[i-1]:
			dir = 1
		case xs[i] < xs[i-1]:
			dir = -1
		}
		if dir != 0 {
			if last != 0 && dir != last {
				n++
			}
			last = dir
		}
	}
	return n
}

// risesFrom returns the steps (indexes of xs) at which the count leaves
// floor upwards: the starts of the HPA's cycles.
func risesFrom(xs []int32, floor int32) []int {
	var out []int
	for i := 1; i < len(xs); i++ {
		if xs[i-1] <= floor && xs[i] > floor {
			out = append(out, i)
		}
	}
	return out
}

// meanPeriod is the mean interval between successive rises, in steps.
func meanPeriod(rises []int) float64 {
	if len(rises) < 2 {
		return 0
	}
	return float64(rises[len(rises)-1]-rises[0]) / float64(len(rises)-1)
}

// TestCalibrationOpportunist: the opportunist controller on the local
// control plane and in the simulator, over the same paid burst, settle at
// the same counts (±1) at the end of each phase and change direction as
// many times.
func TestCalibrationOpportunist(t *testing.T) {
	sc := calibrationScenario(t, "calibration-opportunist.yaml")
	simRows := simulateSteps(t, sc, sim.Opportunist)

	ns := "e2e-calibration"
	c := seedRun(t, ns, true)
	rec := &stepRecorder{strategy: sim.Opportunist, ns: ns, workloads: []string{"worker"},
		desired: func(ctx context.Context, name string) (int32, error) {
			var s v1alpha1.OpportunisticScaler
			err := c.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: name}, &s)
			return s.Status.DesiredReplicas, err
		}}
	startOpportunist(t, "--round-interval", sc.RoundInterval.String())
	realRows := rec.record(t, sc)

	real, simulated := trajectory(sc, realRows, "worker"), trajectory(sc, simRows, "worker")
	// The end of each phase: the step before each change of the paid load, and the last.
	var ends []time.Duration
	for _, p := range sc.Paid {
		for _, s := range p.Load.Steps {
			ends = append(ends, s.At-sc.Step)
		}
	}
	ends = append(ends, sc.Duration-sc.Step)
	slices.Sort(ends)
	for _, end := range ends {
		i := int(end/sc.Step) + 1
		r, s := real[i], simulated[i]
		t.Logf("at %s: real %d, simulated %d workers", end, r, s)
		if r < s-1 || r > s+1 {
			t.Errorf("at %s (end of a phase) the real worker count is %d, the simulated %d: want them within 1", end, r, s)
		}
	}
	rr, sr := reversals(real), reversals(simulated)
	t.Logf("direction changes: real %d, simulated %d", rr, sr)
	if rr != sr {
		t.Errorf("the real worker count changed direction %d times, the simulated %d times: want the same", rr, sr)
	}
}

// TestCalibrationHPA: the write-up's HPA (Object metric
// cpu_capacity_remaining, Value 30000m, no behavior) run by the
// controller-manager with the write-up's flags (10 s sync, 30 s downscale
// stabilisation) on the local control plane, and the simulator's model of
// it, under the same constant paid load: both cycle through the same
// counts (±1: its settling points, where it rests between syncs), with
// direction changes within 25 % of each other and cycle periods within 15 %.
func TestCalibrationHPA(t *testing.T) {
	sc := calibrationScenario(t, "calibration-hpa.yaml")
	simRows := simulateSteps(t, sc, simHPA)

	// The controller-manager runs with the simulated HPA's flags.
	flags := sim.HPAConfigOf(sc, simHPA).Controller
	hackCluster(t, "hpa", "--sync-period", flags.SyncPeriod.String(), "--downscale-stabilization", flags.DownscaleStabilization.String())
	t.Cleanup(func() { hackCluster(t, "hpa", "--reset") })
	ns := "e2e-calibration-hpa"
	hpaSetup(t, ns, false)
	var worker sim.OpportunisticWorkload
	for _, o := range sc.Opportunistic {
		if o.Name == "worker" {
			worker = o
		}
	}
	if h := worker.Scaler.Spec.Headroom[corev1.ResourceCPU]; h != "30" {
		t.Fatalf("calibration-hpa.yaml: the worker's CPU headroom is %q, want the 30 cores the HPA targets", h)
	}
	const target = 30000 // milli-cores: the worker's CPU headroom
	rec := &stepRecorder{strategy: hpaWriteupName, ns: ns, workloads: []string{"worker"},
		desired: func(ctx context.Context, name string) (int32, error) {
			h, err := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return 0, err
			}
			return h.Status.DesiredReplicas, nil
		}}
	minReplicas := worker.MinReplicas
	createHPA(t, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "worker"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "worker"},
			MinReplicas:    &minReplicas,
			MaxReplicas:    worker.MaxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
				DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: "v1", Kind: "Service", Name: "cluster-metrics"},
				Metric:          autoscalingv2.MetricIdentifier{Name: "cpu_capacity_remaining"},
				// cpu_capacity_remaining is served in milli-cores: the target is 30000.
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: resource.NewQuantity(target, resource.DecimalSI)},
			}}},
		},
	})
	realRows := rec.record(t, sc)

	real, simulated := trajectory(sc, realRows, "worker"), trajectory(sc, simRows, "worker")
	rr, sr := reversals(real), reversals(simulated)
	realRises, simRises := risesFrom(real, minReplicas), risesFrom(simulated, minReplicas)
	rp, sp := meanPeriod(realRises)*sc.Step.Seconds(), meanPeriod(simRises)*sc.Step.Seconds()
	t.Logf("real: %d direction changes, cycles start at steps %v (period %.0fs); simulated: %d, %v (%.0fs)", rr, realRises, rp, sr, simRises, sp)
	realCounts, simCounts := plateaus(real), plateaus(simulated)
	t.Logf("real counts: %v", realCounts)
	t.Logf("simulated counts: %v", simCounts)
	for i := range min(len(realCounts), len(simCounts)) {
		if r, s := realCounts[i], simCounts[i]; r < s-1 || r > s+1 {
			t.Errorf("the real HPA's count #%d is %d, the simulated %d: want them within 1 (real %v, simulated %v)", i+1, r, s, realCounts, simCounts)
			break
		}
	}
	if sr == 0 || math.Abs(float64(rr-sr)) > 0.25*float64(sr) {
		t.Errorf("the real HPA changed direction %d times, the simulated %d: want within 25%%", rr, sr)
	}
	if sp == 0 || rp == 0 {
		t.Fatalf("no full cycle: real period %.0fs, simulated %.0fs (a cycle starts when the count leaves %d)", rp, sp, minReplicas)
	}
	if rp < sp*0.85 || rp > sp*1.15 {
		t.Errorf("the real HPA's cycle lasts %.0fs, the simulated %.0fs: want within 15%%", rp, sp)
	}
}

// plateaus lists a trajectory's counts without repeats: 15 30 60 120.
func plateaus(xs []int32) []int32 {
	var out []int32
	for i, x := range xs {
		if i == 0 || x != xs[i-1] {
			out = append(out, x)
		}
	}
	return out
}
