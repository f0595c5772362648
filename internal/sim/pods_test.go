package sim

import (
	"fmt"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

// TestPodModel: a workload's requests are the scheduler's effective
// requests of its template (init containers, sidecars, overhead), on paid
// and opportunistic workloads alike.
func TestPodModel(t *testing.T) {
	tests := []struct {
		name, pod string
		cpu, mem  int64 // milli-cores, bytes
	}{
		{name: "requests shorthand", pod: `requests: {cpu: "2", memory: 1Gi}`, cpu: 2000, mem: 1 << 30},
		// The case: an 8-core init container and a 1-core app hold 8 cores.
		{name: "init container", pod: `initContainers: [{resources: {requests: {cpu: "8"}}}]
  containers: [{name: app, resources: {requests: {cpu: "1"}}}]`, cpu: 8000},
		{name: "several containers", pod: `containers:
  - {name: app, resources: {requests: {cpu: "1", memory: 1Gi}}}
  - {name: proxy, resources: {requests: {cpu: 500m, memory: 1Gi}}}`, cpu: 1500, mem: 2 << 30},
		// A sidecar runs beside the app: 1 + 0.5; an init container after
		// it runs beside the sidecar only: 2 + 0.5 is the peak.
		{name: "sidecar", pod: `initContainers: [{name: log, restartPolicy: Always, resources: {requests: {cpu: 500m}}}]
  requests: {cpu: "1"}`, cpu: 1500},
		{name: "init after a sidecar", pod: `initContainers:
  - {name: log, restartPolicy: Always, resources: {requests: {cpu: 500m}}}
  - {name: migrate, resources: {requests: {cpu: "2"}}}
  requests: {cpu: "1"}`, cpu: 2500},
		{name: "overhead", pod: `requests: {cpu: "1"}
  overhead: {cpu: 250m, memory: 64Mi}`, cpu: 1250, mem: 64 << 20},
		{name: "limits default requests", pod: `containers: [{resources: {limits: {cpu: "3", memory: 2Gi}, requests: {cpu: "1"}}}]`, cpu: 1000, mem: 2 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := fmt.Sprintf(`duration: 1h
nodeGroups: [{name: n, count: 1, allocatable: {cpu: "16", memory: 64Gi}}]
paid:
- name: web
  replicas: 1
  %s
opportunistic:
- name: worker
  maxReplicas: 4
  %s
`, tt.pod, tt.pod)
			sc, err := ParseScenario("pods.yaml", []byte(yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			want := capacity.Resources{corev1.ResourceCPU: tt.cpu, corev1.ResourcePods: 1}
			if tt.mem > 0 {
				want[corev1.ResourceMemory] = tt.mem
			}
			for _, got := range []capacity.Resources{sc.Paid[0].Shape.Requests, sc.Opportunistic[0].Shape.Requests} {
				if !reflect.DeepEqual(nonZero(got), want) {
					t.Errorf("requests %v, want %v", got, want)
				}
			}
		})
	}
}

// TestPaidAffinity: a paid workload's required node affinity keeps its
// pods on the nodes it names; preferred terms are read and checked.
func TestPaidAffinity(t *testing.T) {
	w := testWorld(t, `duration: 1h
nodeGroups:
- {name: a, count: 2, allocatable: {cpu: "8"}, labels: {disk: hdd}}
- {name: b, count: 2, allocatable: {cpu: "8"}, labels: {disk: ssd}}
paid:
- name: db
  requests: {cpu: "2"}
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions: [{key: disk, operator: In, values: [ssd]}]
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 10
        preference: {matchExpressions: [{key: disk, operator: NotIn, values: [hdd]}]}
opportunistic:
- {name: worker, requests: {cpu: "1"}, maxReplicas: 4}
`)
	w.set("db").replicas = 6
	advance(w, 1)
	if got, want := placement(w), "a-1: \na-2: \nb-1: db db db db\nb-2: db db"; got != want && got != "a-1: \na-2: \nb-1: db db db\nb-2: db db db" {
		t.Errorf("placement:\n%s\nwant every db pod on the ssd nodes, like\n%s", got, want)
	}
	w.set("db").replicas = 9
	advance(w, 1)
	if w.pendingPaid != 1 {
		t.Errorf("%d paid pods pending, want the 9th: it may not go to the hdd nodes", w.pendingPaid)
	}
	if p := w.ledger.Pending(); len(p) != 1 || p[0].Scheduling == nil || p[0].Scheduling.Affinity == nil {
		t.Errorf("the ledger's pending pod %+v, want its affinity (the control law reads it)", p)
	}
}

// TestPriorityClassList: workloads name PriorityClasses; the class gives
// the priority and whether the pods preempt.
func TestPriorityClassList(t *testing.T) {
	const scenario = `duration: 1h
priorityClasses:
- {name: paid, value: 1000}
- {name: polite, value: 1000, preemptionPolicy: Never}
- {name: spare, value: -10, preemptionPolicy: Never}
- {name: everyone, value: 5, globalDefault: true}
nodeGroups: [{name: a, count: 3, allocatable: {cpu: "8", memory: 32Gi}}]
paid:
- {name: web, requests: {cpu: "4"}, priorityClassName: %s, startup: 2s}
- {name: misc, requests: {cpu: "1"}}
opportunistic:
- {name: worker, requests: {cpu: "1"}, priorityClassName: spare, terminationGracePeriod: 5s, maxReplicas: 100}
`
	sc, err := ParseScenario("p.yaml", []byte(fmt.Sprintf(scenario, "paid")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sc.PriorityClasses {
		t.Error("a list of priorityClasses does not turn priorities on")
	}
	for _, c := range []struct {
		p        Pods
		priority int32
		preempts bool
	}{{sc.Paid[0].Pods, 1000, true}, {sc.Paid[1].Pods, 5, true}, {sc.Opportunistic[0].Pods, -10, false}} {
		if c.p.Priority != c.priority || c.p.Preempts != c.preempts {
			t.Errorf("priority %d preempts %v, want %d and %v", c.p.Priority, c.p.Preempts, c.priority, c.preempts)
		}
	}
	for _, tt := range []struct {
		class    string
		preempts bool
	}{{"paid", true}, {"polite", false}} {
		t.Run(tt.class, func(t *testing.T) {
			w := testWorld(t, fmt.Sprintf(scenario, tt.class))
			w.set("worker").replicas = 24
			advance(w, 6)
			w.set("web").replicas = 1
			advance(w, 1)
			web := w.set("web").active[0]
			if got := web.nominated >= 0; got != tt.preempts {
				t.Errorf("class %s: the web pod preempted: %v, want %v", tt.class, got, tt.preempts)
			}
			if p := w.ledger.Pending(); len(p) != 1 || p[0].Scheduling.NeverPreempts == tt.preempts {
				t.Errorf("the ledger's pending pod %+v, want NeverPreempts %v", p, !tt.preempts)
			}
		})
	}
}

func TestPodModelErrors(t *testing.T) {
	base := `duration: 1h
nodeGroups: [{name: n, count: 1, allocatable: {cpu: "16"}}]
paid:
- name: web
  replicas: 1
  %s
opportunistic:
- {name: worker, requests: {cpu: "1"}, maxReplicas: 4}
`
	tests := []struct {
		name, pod string
		want      []string
	}{
		{
			name: "requests and containers",
			pod:  `requests: {cpu: "1"}` + "\n  containers: [{resources: {requests: {cpu: \"1\"}}}]",
			want: []string{"bad.yaml:7: paid[0].containers: set requests (the shorthand for one container) or containers, not both"},
		},
		{
			name: "no containers",
			pod:  "containers: []",
			want: []string{
				"bad.yaml:6: paid[0].containers: must list at least one container",
				"bad.yaml:6: paid[0].containers: must request some resource (like cpu: 1): room is counted in replicas of the requests",
			},
		},
		{
			name: "restart policies",
			pod: `containers: [{name: app, restartPolicy: Always, resources: {requests: {cpu: "1"}}}]
  initContainers:
  - {name: app, restartPolicy: OnFailure}
  - {name: Init}`,
			want: []string{
				"bad.yaml:6: paid[0].containers[0].restartPolicy: only init containers take a restartPolicy (Always: a sidecar that runs beside the containers)",
				`bad.yaml:8: paid[0].initContainers[0].name: "app" is used by another container of the pod: give each its own name`,
				`bad.yaml:8: paid[0].initContainers[0].restartPolicy: "OnFailure" must be Always (a sidecar) or absent (an init container that runs to completion first)`,
				`bad.yaml:9: paid[0].initContainers[1].name: "Init" must be a DNS label (lower case letters, digits and '-')`,
			},
		},
		{
			name: "container fields",
			pod:  `containers: [{image: nginx, resources: {requests: {cpu: "1"}}}]`,
			want: []string{"bad.yaml:6: paid[0].containers[0].image: unknown field (known: name, resources, restartPolicy)"},
		},
		{
			name: "affinity",
			pod: `requests: {cpu: "1"}
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: disk, operator: Like, values: [ssd]}
          - {key: cores, operator: Gt, values: [many]}
          matchFields: [{key: metadata.name, operator: In, values: [a, b]}]
      preferredDuringSchedulingIgnoredDuringExecution:
      - {weight: 0, preference: {matchExpressions: [{key: disk, operator: Exists, values: [x]}]}}`,
			want: []string{
				`bad.yaml:12: paid[0].affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator: Unsupported value: "Like": supported values: "In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"`,
				`bad.yaml:13: paid[0].affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].values[0]: Invalid value: "many": for 'Gt', 'Lt' operators, the value must be an integer`,
				`bad.yaml:14: paid[0].affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].values: Invalid value: ["a","b"]: must have one element`,
				"bad.yaml:16: paid[0].affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: 0 is not between 1 and 100",
				`bad.yaml:16: paid[0].affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference.matchExpressions[0].values: Invalid value: ["x"]: values set must be empty for exists and does not exist`,
			},
		},
		{
			name: "selector and tolerations",
			pod:  `requests: {cpu: "1"}` + "\n  nodeSelector: {\"bad key!\": x}\n  tolerations: [{value: gpu}, {key: \"-x\", operator: Exists}, {operator: Exists}]",
			want: []string{
				`bad.yaml:7: paid[0].nodeSelector.bad key!: not a valid label key: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
				"bad.yaml:8: paid[0].tolerations[0].key: must be set, unless operator is Exists (which then tolerates every taint)",
				"bad.yaml:8: paid[0].tolerations[1].key: not a valid taint key: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
			},
		},
		{
			name: "pod affinity",
			pod:  `requests: {cpu: "1"}` + "\n  affinity: {podAffinity: {}}",
			want: []string{"bad.yaml:7: paid[0].affinity.podAffinity: unknown field (known: nodeAffinity)"},
		},
		{
			name: "no terms",
			pod:  `requests: {cpu: "1"}` + "\n  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: []}}}",
			want: []string{"bad.yaml:7: paid[0].affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: must list at least one term (a node matching any term is eligible)"},
		},
		{
			name: "a class without a list",
			pod:  `requests: {cpu: "1"}` + "\n  priorityClassName: high",
			want: []string{`bad.yaml:7: paid[0].priorityClassName: "high" names a PriorityClass, but the scenario lists none: give priorityClasses as a list (like [{name: high, value: 1000}]), or set priority: instead`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseScenario("bad.yaml", []byte(fmt.Sprintf(base, tt.pod)), nil)
			checkErrors(t, err, tt.want...)
		})
	}
}

func TestPriorityClassErrors(t *testing.T) {
	tests := []struct {
		name, classes, paid string
		want                []string
	}{
		{
			name:    "classes",
			classes: "\n- {name: high, value: 2000000000, preemptionPolicy: Always, globalDefault: true}\n- {name: high, globalDefault: true}\n- {name: system-x, value: 1}",
			paid:    "priorityClassName: low",
			want: []string{
				"bad.yaml:2: priorityClasses[0].value: 2000000000 is above 1000000000, the highest a user-defined PriorityClass may have",
				`bad.yaml:2: priorityClasses[0].preemptionPolicy: "Always" must be PreemptLowerPriority (the default) or Never`,
				`bad.yaml:3: priorityClasses[1].name: "high" is used twice`,
				"bad.yaml:3: priorityClasses[1].value: must be set (the pods' priority: higher is scheduled first and may preempt lower)",
				`bad.yaml:3: priorityClasses[1].globalDefault: "high" and "high" are both the global default: at most one class may be`,
				`bad.yaml:4: priorityClasses[2].name: "system-x": names starting with system- are the cluster's own classes: choose another`,
				`bad.yaml:9: paid[0].priorityClassName: no PriorityClass is named "low" (priorityClasses: high, high, system-x)`,
			},
		},
		{
			name:    "priority with a list",
			classes: " [{name: high, value: 1000}]",
			paid:    "priority: 1000",
			want:    []string{"bad.yaml:6: paid[0].priority: with a list of priorityClasses, name one with priorityClassName (the API server sets the priority from it)"},
		},
		{
			name:    "neither a boolean nor a list",
			classes: " {high: 1000}",
			paid:    "priority: 1000",
			want:    []string{"bad.yaml:1: priorityClasses: want true, false or a list of PriorityClasses (name, value, preemptionPolicy, globalDefault), got a mapping"},
		},
		{
			name:    "not a boolean",
			classes: " yes please",
			paid:    "priority: 1000",
			want:    []string{`bad.yaml:1: priorityClasses: "yes please" is not true or false`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := "priorityClasses:" + tt.classes + `
duration: 1h
nodeGroups: [{name: n, count: 1, allocatable: {cpu: "16"}}]
paid:
- name: web
  ` + tt.paid + `
  requests: {cpu: "1"}
opportunistic:
- {name: worker, requests: {cpu: "1"}, maxReplicas: 4}
`
			_, err := ParseScenario("bad.yaml", []byte(yaml), nil)
			checkErrors(t, err, tt.want...)
		})
	}
}

// TestInitContainersHoldTheirRoom: the case, paid pods with an
// 8-core init container and a 1-core app, runs exactly as 8-core pods.
func TestInitContainersHoldTheirRoom(t *testing.T) {
	const scenario = `duration: 20m
nodeGroups: [{name: n, count: 4, allocatable: {cpu: "32"}}]
paid:
- name: web
  replicas: 2
  steps: [{at: 5m, replicas: 9}, {at: 15m, replicas: 3}]
  %s
opportunistic:
- {name: worker, requests: {cpu: "1"}, maxReplicas: 150, headroom: {cpu: "8"}}
`
	var reports []*Report
	for _, pod := range []string{
		`initContainers: [{name: setup, resources: {requests: {cpu: "8"}}}]
  containers: [{name: app, resources: {requests: {cpu: "1"}}}]`,
		`requests: {cpu: "8"}`,
	} {
		sc, err := ParseScenario("init.yaml", []byte(fmt.Sprintf(scenario, pod)), nil)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Run(sc, Options{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		reports = append(reports, rep)
	}
	if !reflect.DeepEqual(reports[0].Results, reports[1].Results) {
		t.Errorf("with an init container:\n%+v\nwith 8-core pods:\n%+v", reports[0].Results, reports[1].Results)
	}
}
