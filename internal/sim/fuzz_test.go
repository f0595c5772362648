package sim

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
)

// checkFileError: an error is one line, and every problem in it names its file.
func checkFileError(t *testing.T, err error, files ...string) {
	t.Helper()
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("error is not one line: %q", msg)
	}
	var list FileErrors
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("error %q is not a FileErrors", msg)
	}
	for _, e := range list {
		ok := false
		for _, f := range files {
			ok = ok || e.File == f
		}
		if !ok || !strings.HasPrefix(e.Error(), e.File+":") {
			t.Fatalf("error %q does not name the file (%v)", e.Error(), files)
		}
	}
}

// FuzzTrace: ParseTrace never panics; errors are one line naming the file;
// a trace it accepts has rows with times in [0, maxSteps] s, counts of 0 or
// more, named workloads, no two rows of a workload at one time, sorted.
func FuzzTrace(f *testing.F) {
	for _, s := range []string{
		"", "time_s,name,replicas\n", "\ufefftime_s, name ,replicas\n600,web,5\n0,web,2\n0.5,api,1\n\n",
		"time_s,name,replicas\n0,web,1\n0,web,2\n", "time_s,name,replicas\n-1,web,1\nx,,y\n1,web\n",
		"time_s,name,replicas\n1e300,web,1\nNaN,web,1\nInf,web,1\n1e-10,web,1\n0,web,1\n",
		"time_s,name,replicas\n\"0\",\"a,b\",\"3\"\n", "a,\"b\nc", "name,time_s,replicas\n",
		"time_s,name,replicas\r\n31622400,web,2147483647\r\n31622401,web,2147483648\r\n",
		"\"", "\"0", // found by fuzzing: an unterminated quote panicked
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		tr, err := ParseTrace("t.csv", []byte(data))
		if err != nil {
			if tr != nil {
				t.Fatalf("a trace and an error: %v", err)
			}
			checkFileError(t, err, "t.csv")
			return
		}
		if tr.File != "t.csv" {
			t.Fatalf("trace file %q", tr.File)
		}
		if len(tr.order) != len(tr.rows) {
			t.Fatalf("order %v for %d workloads", tr.order, len(tr.rows))
		}
		for _, name := range tr.order {
			rows := tr.rows[name]
			if name == "" || len(rows) == 0 {
				t.Fatalf("workload %q with %d rows", name, len(rows))
			}
			for i, r := range rows {
				if r.at < 0 || r.at > maxSteps*time.Second || r.replicas < 0 || r.line < 1 {
					t.Fatalf("%s row %d: %+v out of range", name, i, r)
				}
				if i > 0 && r.at <= rows[i-1].at {
					t.Fatalf("%s rows not strictly increasing in time: %+v", name, rows)
				}
			}
		}
	})
}

// fuzzReadFile serves one valid trace, ok.csv, beside the scenario.
func fuzzReadFile(path string) ([]byte, error) {
	if filepath.Base(path) == "ok.csv" {
		return []byte("time_s,name,replicas\n0,web,2\n60,web,4\n"), nil
	}
	return nil, fs.ErrNotExist
}

// FuzzScenario: ParseScenario never panics; errors are one line naming the
// scenario file (or its trace); a scenario it accepts is valid: positive
// duration, step and round interval, a bounded number of steps, node groups
// and opportunistic workloads with sane bounds, named uniquely.
func FuzzScenario(f *testing.F) {
	f.Add(minimal)
	f.Add(minimal + "trace: ok.csv\n")
	f.Add(minimal + "trace: missing.csv\n")
	f.Add(strings.Replace(minimal, "duration: 1h", "duration: 1h\nstep: 0.5", 1))
	f.Add(strings.Replace(minimal, `headroom: {cpu: "2"}`, `headroom: {cpu: "12.5%", memory: 8Ei}`, 1))
	f.Add(strings.Replace(minimal, "maxReplicas: 10", "maxReplicas: 10\n  minReplicas: 20\n  targetUtilizationPercent: .nan", 1))
	f.Add(minimal + "  headroomSlots: [{shapeFrom: web, count: 4}, {name: big, requests: {cpu: \"6\"}, count: 1}]\nschedulerScoring: MostAllocated\n")
	f.Add(minimal + "  headroomSlots: [{shapeFrom: web, requests: {}, count: 0}, {name: web, count: 10001}]\n")
	f.Add(minimal + "hpa:\n  hpa-writeup: {syncPeriod: 2s, processingTime: 1ms, object: {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, spec: {maxReplicas: 5, metrics: [{type: Object, object: {metric: {name: cpu_capacity_remaining}, target: {type: Value, value: \"2k\"}}}]}}}\n")
	f.Add(minimal + "hpa:\n  hpa-example: {object: {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, spec: {maxReplicas: 5, metrics: [{type: Pods}], behavior: {scaleUp: {policies: []}}}}}\n  seed: {}\n")
	f.Add("duration: 1e300\n")
	f.Add(strings.Replace(minimal, `  requests: {cpu: "2"}`, `  containers: [{name: app, resources: {requests: {cpu: "1"}, limits: {memory: 1Gi}}}]
  initContainers: [{restartPolicy: Always, resources: {requests: {cpu: 500m}}}, {resources: {requests: {cpu: "4"}}}]
  overhead: {cpu: 100m}
  priorityClassName: high
  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: a, operator: In, values: [b]}]}]},
    preferredDuringSchedulingIgnoredDuringExecution: [{weight: 5, preference: {matchFields: [{key: metadata.name, operator: NotIn, values: [n-1]}]}}]}}`, 1) +
		"priorityClasses: [{name: high, value: 1000}, {name: low, value: -5, preemptionPolicy: Never, globalDefault: true}]\n")
	f.Add(strings.Replace(minimal, "  replicas: 1\n", "  replicas: 2000000000\n", 1))
	f.Add("{")
	f.Add("")
	f.Add("a: b: c")
	if paths, _ := filepath.Glob("scenarios/*.yaml"); len(paths) > 0 {
		for _, p := range paths {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(string(data))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data string) {
		s, err := ParseScenario("dir/s.yaml", []byte(data), fuzzReadFile)
		if err != nil {
			if s != nil {
				t.Fatalf("a scenario and an error: %v", err)
			}
			var list FileErrors
			if errors.As(err, &list) {
				checkFileError(t, err, "dir/s.yaml", "dir/ok.csv")
			} else {
				t.Fatalf("error %q is not a FileErrors", err)
			}
			return
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("accepted an invalid scenario: "+format, args...)
		}
		if s.Duration <= 0 || s.Step <= 0 || s.RoundInterval <= 0 || s.Duration/s.Step > maxSteps {
			fail("duration %s step %s round interval %s", s.Duration, s.Step, s.RoundInterval)
		}
		if s.Name == "" {
			fail("no name")
		}
		if s.SchedulerScoring != capacity.LeastAllocated && s.SchedulerScoring != capacity.MostAllocated {
			fail("scheduler scoring %q", s.SchedulerScoring)
		}
		names := map[string]bool{}
		unique := func(name string) {
			if name == "" || names[name] {
				fail("name %q empty or used twice", name)
			}
			names[name] = true
		}
		if len(s.NodeGroups) == 0 || len(s.Opportunistic) == 0 {
			fail("%d node groups, %d opportunistic workloads", len(s.NodeGroups), len(s.Opportunistic))
		}
		groups := map[string]int{}
		for _, g := range s.NodeGroups {
			unique(g.Name)
			groups[g.Name] = g.Count
			if g.Count < 1 || g.Allocatable[corev1.ResourceCPU] <= 0 {
				fail("group %s: count %d allocatable %v", g.Name, g.Count, g.Allocatable)
			}
			for name, v := range g.Allocatable {
				if v < 0 {
					fail("group %s: negative allocatable %s %d", g.Name, name, v)
				}
			}
		}
		nodes, pods := 0, int64(0)
		for _, g := range s.NodeGroups {
			nodes += g.Count
		}
		for _, p := range s.Paid {
			pods += p.Load.peak()
		}
		for _, o := range s.Opportunistic {
			pods += int64(max(o.Replicas, o.MaxReplicas))
		}
		if nodes > maxNodes || pods > maxPods {
			fail("%d nodes, %d pods at the peak", nodes, pods)
		}
		checkPods := func(name string, p Pods) {
			some := false
			for r, v := range p.Shape.Requests {
				if v < 0 {
					fail("%s: negative request %s %d", name, r, v)
				}
				some = some || (r != corev1.ResourcePods && v > 0)
			}
			if !some || p.Startup < 0 || p.Grace < 0 {
				fail("%s: requests %v startup %s grace %s", name, p.Shape.Requests, p.Startup, p.Grace)
			}
		}
		for _, p := range s.Paid {
			unique(p.Name)
			checkPods(p.Name, p.Pods)
			if p.Load.Replicas < 0 {
				fail("paid %s: replicas %d", p.Name, p.Load.Replicas)
			}
			for i, st := range p.Load.Steps {
				if st.Replicas < 0 || st.At < 0 || (i > 0 && st.At <= p.Load.Steps[i-1].At) {
					fail("paid %s: steps %+v", p.Name, p.Load.Steps)
				}
			}
			if n := p.Load.Noise; n != nil && (n.Every <= 0 || n.Replicas < 1) {
				fail("paid %s: noise %+v", p.Name, *n)
			}
			if b := p.Load.Bursts; b != nil && (b.MeanInterval <= 0 || b.Duration <= 0 || b.Replicas < 1) {
				fail("paid %s: bursts %+v", p.Name, *b)
			}
		}
		for i, e := range s.NodeEvents {
			if c, ok := groups[e.Group]; !ok || e.Count < 1 || e.Count > c || e.At < 0 || (i > 0 && e.At < s.NodeEvents[i-1].At) {
				fail("node events %+v", s.NodeEvents)
			}
		}
		for _, o := range s.Opportunistic {
			unique(o.Name)
			checkPods(o.Name, o.Pods)
			// A scenario that loads converts as the controller converts.
			in, err := s.scaler(slices.IndexFunc(s.Opportunistic, func(x OpportunisticWorkload) bool { return x.Name == o.Name }), 0, control.PodCounts{}, 0, control.History{})
			if err != nil {
				fail("opportunistic %s: the controller's conversion fails: %v", o.Name, err)
			}
			if in.Min < 0 || in.Max < 1 || in.Min > in.Max || o.MinReplicas != in.Min || o.MaxReplicas != in.Max || o.Replicas < 0 || in.Weight < 1 || in.Weight > 1000 {
				fail("opportunistic %s: replicas %d min %d max %d weight %d", o.Name, o.Replicas, in.Min, in.Max, in.Weight)
			}
			if u := in.TargetUtilizationPercent; math.IsNaN(u) || u < 0 || u > 100 {
				fail("opportunistic %s: target utilization %v", o.Name, u)
			}
			for r, h := range in.Headroom {
				if h.Quantity < 0 || math.IsNaN(h.Percent) || h.Percent < 0 || h.Percent > 100 {
					fail("opportunistic %s: headroom %s %+v", o.Name, r, h)
				}
			}
			if len(in.Slots) > maxSlots {
				fail("opportunistic %s: %d slots", o.Name, len(in.Slots))
			}
			slotNames := map[string]bool{}
			for _, sl := range in.Slots {
				if sl.Name == "" || slotNames[sl.Name] || sl.Count < 1 || sl.Count > maxSlotCount {
					fail("opportunistic %s: slot %+v", o.Name, sl)
				}
				slotNames[sl.Name] = true
				checkPods(o.Name+" slot "+sl.Name, Pods{Shape: sl.Shape})
			}
			for _, b := range []struct {
				dir string
				w   time.Duration
				p   time.Duration
				m   int32
			}{{"up", in.ScaleUp.StabilizationWindow, in.ScaleUp.Period, in.ScaleUp.MaxStep}, {"down", in.ScaleDown.StabilizationWindow, in.ScaleDown.Period, in.ScaleDown.MaxStep}} {
				if b.w < 0 || b.p <= 0 || b.m < 0 {
					fail("opportunistic %s: scale-%s window %s period %s max step %d", o.Name, b.dir, b.w, b.p, b.m)
				}
			}
		}
	})
}
