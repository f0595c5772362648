package sim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
)

func TestBuiltinScenarios(t *testing.T) {
	names := BuiltinNames()
	want := []string{"daily-checkpoint", "daily-office", "diurnal", "fragmented", "idle-requests", "random-bursts", "seed-burst", "spiky", "tainted-pool", "web-headroom", "web-headroom-priority", "web-slots", "web-slots-priority"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("built-in scenarios %v, want %v", names, want)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			sc, err := Builtin(name)
			if err != nil {
				t.Fatal(err)
			}
			if sc.Name != name || sc.Description == "" || sc.Duration <= 0 || sc.Step != time.Second && sc.Duration < 7*24*time.Hour || sc.Step > 5*time.Second { // weeks-long ones step 5 s
				t.Errorf("scenario %q: description %q, duration %s, step %s", sc.Name, sc.Description, sc.Duration, sc.Step)
			}
		})
	}
	if _, err := Builtin("nope"); err == nil || !strings.Contains(err.Error(), "built in: daily-checkpoint, daily-office, diurnal, fragmented, idle-requests, random-bursts, seed-burst, spiky, tainted-pool, web-headroom, web-headroom-priority, web-slots, web-slots-priority") {
		t.Errorf("unknown built-in: %v, want the list of built-ins", err)
	}
}

func TestSeedBurstIsTheWriteUpsCluster(t *testing.T) {
	sc, err := Builtin("seed-burst")
	if err != nil {
		t.Fatal(err)
	}
	var cores int64
	for _, g := range sc.NodeGroups {
		cores += int64(g.Count) * g.Allocatable[corev1.ResourceCPU]
	}
	if cores != 184000 {
		t.Errorf("allocatable %dm, want the write-up's 184 cores", cores)
	}
	app := sc.paidByName("sample-metrics-app")
	if app == nil || app.Shape.Requests[corev1.ResourceCPU] != 4000 || app.Load.Replicas != 2 ||
		len(app.Load.Steps) != 2 || app.Load.Steps[0].Replicas != 17 || app.Load.Steps[1].Replicas != 2 {
		t.Fatalf("sample app %+v, want 4-core pods going 2 -> 17 -> 2", app)
	}
	w := sc.Opportunistic[0]
	in, err := sc.scaler(0, 0, control.PodCounts{}, 0, control.History{})
	if err != nil {
		t.Fatal(err)
	}
	if w.MinReplicas != 15 || w.MaxReplicas != 150 || in.Min != 15 || in.Max != 150 || in.Headroom[corev1.ResourceCPU] != (control.Headroom{Quantity: 30000}) ||
		w.Shape.Requests[corev1.ResourceCPU] != 1000 || w.Shape.Requests[corev1.ResourcePods] != 1 {
		t.Errorf("worker %+v, want 1 core, min 15, max 150, 30 cores of headroom", w)
	}
	if in.ScaleUp != (control.Behavior{StabilizationWindow: 30 * time.Second, Period: 15 * time.Second}) ||
		in.ScaleDown != (control.Behavior{Period: 15 * time.Second}) {
		t.Errorf("behavior up %+v down %+v, want the controller's defaults", in.ScaleUp, in.ScaleDown)
	}
	if c := sc.HPA[HPAWriteup].Controller; sc.PriorityClasses || c.SyncPeriod != 10*time.Second || c.DownscaleStabilization != 30*time.Second {
		t.Errorf("priorities %v, HPA %+v, want none and the write-up's 10 s sync and 30 s downscale stabilisation", sc.PriorityClasses, c)
	}
}

// minimal is a valid scenario that the bad cases below break one field at a time.
const minimal = `name: small
duration: 1h
nodeGroups:
- name: n
  count: 2
  allocatable: {cpu: "8", memory: 16Gi}
paid:
- name: web
  requests: {cpu: "2"}
  replicas: 1
opportunistic:
- name: worker
  requests: {cpu: "1"}
  maxReplicas: 10
  headroom: {cpu: "2"}
`

func TestParseScenario(t *testing.T) {
	sc, err := ParseScenario("small.yaml", []byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Step != time.Second || sc.RoundInterval != 5*time.Second || sc.NodeGroups[0].Allocatable[corev1.ResourcePods] != 110 ||
		sc.Paid[0].Startup != 5*time.Second || sc.Paid[0].Grace != 30*time.Second || sc.Opportunistic[0].Scaler.Spec.Weight != 1 {
		t.Errorf("defaults not applied: %+v", sc)
	}
	if w := sc.HPA[HPAWriteup]; w.Object != nil || w.Controller != (HPAController{SyncPeriod: 10 * time.Second, DownscaleStabilization: 30 * time.Second, Tolerance: 0.1, ProcessingTime: 10 * time.Millisecond}) {
		t.Errorf("hpa-writeup %+v, want the preset: no object, the write-up's flags", w)
	}
	if a := sc.HPA[HPAAverageValue]; a.Object != nil || a.Controller != stockController {
		t.Errorf("hpa-averagevalue %+v, want the preset: no object, a stock controller", a)
	}
}

func TestParseScenarioSlots(t *testing.T) {
	yaml := minimal + `  headroomSlots:
  - {shapeFrom: web, count: 4}
  - {name: big, requests: {cpu: "6", memory: 1Gi}, count: 2}
  - {requests: {cpu: "1"}, count: 1}
schedulerScoring: MostAllocated
`
	sc, err := ParseScenario("small.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc.SchedulerScoring != capacity.MostAllocated {
		t.Errorf("scoring %q, want MostAllocated", sc.SchedulerScoring)
	}
	in, err := sc.scaler(0, 0, control.PodCounts{}, 0, control.History{})
	if err != nil {
		t.Fatal(err)
	}
	slots := in.Slots // as the controller converts them
	if len(slots) != 3 {
		t.Fatalf("slots %+v, want 3", slots)
	}
	if s := slots[0]; s.Name != "web" || s.Count != 4 || !reflect.DeepEqual(s.Shape, sc.Paid[0].Shape) {
		t.Errorf("slot 0 %+v, want web x4 with the paid workload's shape %+v", s, sc.Paid[0].Shape)
	}
	want := capacity.Resources{corev1.ResourceCPU: 6000, corev1.ResourceMemory: 1 << 30, corev1.ResourcePods: 1}
	if s := slots[1]; s.Name != "big" || s.Count != 2 || !reflect.DeepEqual(s.Shape.Requests, want) {
		t.Errorf("slot 1 %+v, want big x2 of %v (with its pod slot)", s, want)
	}
	if s := slots[2]; s.Name != "slot-2" {
		t.Errorf("slot 2 is named %q, want slot-2", s.Name)
	}

	def, err := ParseScenario("small.yaml", []byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	if def.SchedulerScoring != capacity.LeastAllocated || def.Opportunistic[0].Scaler.Spec.HeadroomSlots != nil {
		t.Errorf("defaults: scoring %q, slots %+v; want LeastAllocated and none", def.SchedulerScoring, def.Opportunistic[0].Scaler.Spec.HeadroomSlots)
	}
}

func TestParseScenarioErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // every error, in order
	}{
		{
			name: "not YAML",
			yaml: "name: [unclosed\n",
			want: []string{"bad.yaml:1: not valid YAML: did not find expected ',' or ']'"},
		},
		{name: "empty", yaml: "", want: []string{"bad.yaml: the file is empty"}},
		{
			name: "unknown field",
			yaml: strings.Replace(minimal, "  replicas: 1\n", "  replica: 1\n", 1),
			want: []string{"bad.yaml:10: paid[0].replica: unknown field (known: name, requests, containers, initContainers, overhead, priority, priorityClassName, nodeSelector, tolerations, affinity, startup, terminationGracePeriod, replicas, steps, repeatEvery, noise, bursts, usage)"},
		},
		{
			name: "bad quantity",
			yaml: strings.Replace(minimal, `requests: {cpu: "2"}`, `requests: {cpu: "two"}`, 1),
			want: []string{`bad.yaml:9: paid[0].requests.cpu: "two" is not a quantity (like 4, 500m or 80Gi)`},
		},
		{
			name: "bad duration",
			yaml: strings.Replace(minimal, "duration: 1h", "duration: an hour", 1),
			want: []string{`bad.yaml:2: duration: "an hour" is not a duration (like 90s, 30m, 1h30m, or a number of seconds)`},
		},
		{
			name: "wrong type",
			yaml: strings.Replace(minimal, "count: 2", "count: [2]", 1),
			want: []string{"bad.yaml:5: nodeGroups[0].count: want a single value, got a list"},
		},
		{
			name: "duplicate key",
			yaml: strings.Replace(minimal, "  maxReplicas: 10\n", "  maxReplicas: 10\n  maxReplicas: 12\n", 1),
			want: []string{"bad.yaml:15: opportunistic[0].maxReplicas: duplicate key"},
		},
		{
			name: "min above max",
			yaml: strings.Replace(minimal, "  maxReplicas: 10\n", "  maxReplicas: 10\n  minReplicas: 11\n", 1),
			want: []string{"bad.yaml:15: opportunistic[0].minReplicas: 11 exceeds maxReplicas 10"},
		},
		{
			name: "steps out of order",
			yaml: strings.Replace(minimal, "  replicas: 1\n", "  replicas: 1\n  steps:\n  - {at: 10m, replicas: 3}\n  - {at: 5m, replicas: 2}\n", 1),
			want: []string{"bad.yaml:13: paid[0].steps[1].at: 5m0s is not after the previous step (10m0s): steps go forward in time"},
		},
		{
			name: "unknown node group",
			yaml: minimal + "nodeEvents:\n- {at: 10m, group: m, action: down}\n",
			want: []string{`bad.yaml:17: nodeEvents[0].group: no node group is named "m"`},
		},
		{
			name: "headroom",
			yaml: strings.Replace(minimal, `headroom: {cpu: "2"}`, `headroom: {cpu: "120%"}`, 1),
			want: []string{`bad.yaml:15: opportunistic[0].headroom.cpu: "120%" is not a percent between 0% and 100%`},
		},
		{
			name: "target utilisation",
			yaml: strings.Replace(minimal, "  maxReplicas: 10\n", "  maxReplicas: 10\n  targetUtilizationPercent: 87.5\n", 1),
			want: []string{`bad.yaml:15: opportunistic[0].targetUtilizationPercent: 87.5 is not a whole percent between 1 and 100`},
		},
		{
			name: "no requests",
			yaml: strings.Replace(minimal, `requests: {cpu: "1"}`, `requests: {}`, 1),
			want: []string{"bad.yaml:13: opportunistic[0].requests: must request some resource (like cpu: 1): room is counted in replicas of the requests"},
		},
		{
			name: "HPA behavior",
			yaml: minimal + "hpa:\n  hpa-example:\n    object:\n      apiVersion: autoscaling/v2\n      kind: HorizontalPodAutoscaler\n      spec:\n        maxReplicas: 10\n" +
				"        metrics: [{type: Object, object: {describedObject: {kind: Service, name: m}, metric: {name: cpu_capacity_remaining}, target: {type: Value, value: 2}}}]\n" +
				"        behavior:\n          scaleUp: {selectPolicy: Most, policies: [{type: Pods, value: 0, periodSeconds: 15}]}\n",
			want: []string{
				`bad.yaml:25: hpa.hpa-example.object.spec.behavior.scaleUp.selectPolicy: "Most" must be Max, Min or Disabled`,
				"bad.yaml:25: hpa.hpa-example.object.spec.behavior.scaleUp.policies[0].value: must be positive",
			},
		},
		{
			name: "HPA metric not simulated",
			yaml: minimal + "hpa:\n  hpa-writeup:\n    object:\n      apiVersion: autoscaling/v2\n      kind: HorizontalPodAutoscaler\n      spec:\n        maxReplicas: 10\n" +
				"        metrics:\n        - type: Resource\n          resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}\n",
			want: []string{
				`bad.yaml:24: hpa.hpa-writeup.object.spec.metrics[0].type: "Resource" is not simulated: the simulator models requests, not usage, and serves the metrics opportunist does (Object cpu_capacity_remaining, External opportunist_desired_replicas)`,
			},
		},
		{
			name: "HPA seed renamed",
			yaml: minimal + "hpa:\n  seed: {syncPeriod: 10s, behaviorUnset: true}\n",
			want: []string{
				"bad.yaml:17: hpa.seed: renamed: hpa-seed is now " + HPAWriteup + " (" + presetDescriptions[HPAWriteup] + "), and " + HPAExample + " (" + presetDescriptions[HPAExample] + "); write hpa.hpa-writeup or hpa.hpa-example",
			},
		},
		{
			name: "HPA unknown field",
			yaml: minimal + "hpa:\n  hpa-writeup: {syncperiod: 5s}\n",
			want: []string{
				"bad.yaml:17: hpa.hpa-writeup.syncperiod: unknown field (known: syncPeriod, downscaleStabilization, tolerance, processingTime, firstSync, object)",
			},
		},
		{
			name: "HPA 1.8 delays",
			yaml: minimal + "hpa:\n  hpa-writeup: {upscaleDelay: 30s}\n",
			want: []string{
				"bad.yaml:17: hpa.hpa-writeup.upscaleDelay: Kubernetes 1.12 removed the upscale and downscale delays (the model is v1.37's): use downscaleStabilization, or a behavior in the object",
			},
		},
		{
			name: "scheduler scoring",
			yaml: minimal + "schedulerScoring: Balanced\n",
			want: []string{`bad.yaml:16: schedulerScoring: "Balanced" is not LeastAllocated (the scheduler's default) or MostAllocated`},
		},
		{
			name: "headroom slots",
			yaml: minimal + `  headroomSlots:
  - {shapeFrom: api, count: 4}
  - {shapeFrom: web, requests: {cpu: "1"}, count: 1}
  - {name: web, count: 2}
  - {name: web, requests: {cpu: "1"}, count: 0}
  - {name: Big, requests: {cpu: "1"}, count: 10001}
  - {requests: {}, count: 1}
`,
			want: []string{
				`bad.yaml:17: opportunistic[0].headroomSlots[0].shapeFrom: no paid workload is named "api" (paid: web)`,
				"bad.yaml:18: opportunistic[0].headroomSlots[1].shapeFrom: set either shapeFrom (a paid workload) or requests, not both",
				`bad.yaml:19: opportunistic[0].headroomSlots[2].shapeFrom: set shapeFrom (the name of a paid workload) or requests (like {cpu: "4"})`,
				`bad.yaml:20: opportunistic[0].headroomSlots[3].name: "web" is used by another slot: give each slot its own name`,
				"bad.yaml:20: opportunistic[0].headroomSlots[3].count: 0 is not between 1 and 10000",
				`bad.yaml:21: opportunistic[0].headroomSlots[4].name: "Big" must be a DNS label (lower case letters, digits and '-')`,
				"bad.yaml:21: opportunistic[0].headroomSlots[4].count: 10001 is not between 1 and 10000",
				"bad.yaml:22: opportunistic[0].headroomSlots[5].requests: must request some resource (like cpu: 1): room is counted in replicas of the requests",
			},
		},
		{
			name: "headroom slot count auto",
			yaml: minimal + "  headroomSlots: [{shapeFrom: web, count: auto}]\n",
			want: []string{`bad.yaml:16: opportunistic[0].headroomSlots[0].count: "auto" slot count is learned by the controller from its history of paid pods, not simulated: give a number of pods (1 to 10000)`},
		},
		{
			name: "every problem at once",
			yaml: "duration: 0s\nstep: -1s\nnodeGroups: []\nopportunistic: []\nsurprise: 1\n",
			want: []string{
				`bad.yaml:2: step: "-1s" is negative`,
				"bad.yaml:5: surprise: unknown field (known: name, description, duration, step, priorityClasses, roundInterval, schedulerScoring, metricsInterval, trace, nodeGroups, paid, nodeEvents, opportunistic, hpa, podEvictionTimeout)",
			},
		},
		{
			name: "every problem at once, after decoding",
			yaml: "duration: 0s\nnodeGroups: []\nopportunistic: []\n",
			want: []string{
				"bad.yaml:1: duration: must be set and positive (like 30m or 24h)",
				"bad.yaml:2: nodeGroups: at least one node group is needed",
				"bad.yaml:3: opportunistic: at least one opportunistic workload is needed",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := ParseScenario("bad.yaml", []byte(tt.yaml), nil)
			if err == nil {
				t.Fatalf("no error, got scenario %+v", sc)
			}
			var fe FileErrors
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v, want FileErrors", err, err)
			}
			var got []string
			for _, e := range fe {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("the error is not one line: %q", err)
			}
		})
	}
}

func TestScenarioTraceFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("load.csv", "time_s,name,replicas\n0,web,2\n600,web,5\n")
	sc, err := LoadScenario(write("with-trace.yaml", minimal+"trace: load.csv\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l := sc.Paid[0].Load; !l.Traced || len(l.Steps) != 2 || l.Steps[1] != (Step{At: 10 * time.Minute, Replicas: 5}) {
		t.Errorf("load %+v, want the trace's two rows", l)
	}

	_, err = LoadScenario(write("missing-trace.yaml", minimal+"trace: nope.csv\n"))
	if err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "missing-trace.yaml")+":16: trace: cannot read the trace: ") {
		t.Errorf("missing trace: %v", err)
	}
	write("bad.csv", "time_s,name,replicas\n0,web,2\n10,api,1\n")
	_, err = LoadScenario(write("bad-trace.yaml", minimal+"trace: bad.csv\n"))
	if want := filepath.Join(dir, "bad.csv") + `:3: name: "api" is not a paid workload of scenario small (paid: web)`; err == nil || err.Error() != want {
		t.Errorf("trace naming an unknown workload: %v, want %s", err, want)
	}
	if _, err := LoadScenario(filepath.Join(dir, "absent.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent scenario file: %v", err)
	}
}

func TestDurationField(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{{"90", 90 * time.Second}, {"1.5", 1500 * time.Millisecond}, {"1h30m", 90 * time.Minute}, {"250ms", 250 * time.Millisecond}} {
		sc, err := ParseScenario("d.yaml", []byte(strings.Replace(minimal, "duration: 1h", "duration: "+tt.in, 1)), nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if sc.Duration != tt.want {
			t.Errorf("duration %q = %s, want %s", tt.in, sc.Duration, tt.want)
		}
	}
}

func ExampleFileErrors() {
	_, err := ParseScenario("cluster.yaml", []byte(strings.Replace(minimal, "count: 2", "count: two", 1)), nil)
	fmt.Println(err)
	// Output: cluster.yaml:5: nodeGroups[0].count: "two" is not a whole number
}
