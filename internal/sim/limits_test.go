package sim

import (
	"errors"
	"strings"
	"testing"
)

// checkErrors: err is one line listing exactly want, in order.
func checkErrors(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	var fe FileErrors
	if !errors.As(err, &fe) {
		t.Fatalf("error %T %v, want FileErrors", err, err)
	}
	var got []string
	for _, e := range fe {
		got = append(got, e.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("the error is not one line: %q", err)
	}
}

func TestScenarioLimits(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{
			name: "two billion paid replicas",
			yaml: strings.Replace(minimal, "  replicas: 1\n", "  replicas: 2000000000\n", 1),
			want: []string{"bad.yaml:10: paid[0].replicas: 2000000000 replicas make 2000000010 pods in total with the other workloads at their peaks, more than the simulator's limit of 300000 (twice Kubernetes' scalability envelope of 5000 nodes and 150000 pods): lower it"},
		},
		{
			name: "a step, noise and a burst",
			yaml: strings.Replace(minimal, "  replicas: 1\n", "  replicas: 1\n  steps: [{at: 10m, replicas: 299980}]\n  noise: {every: 5m, replicas: 5}\n  bursts: {meanInterval: 10m, duration: 1m, replicas: 6}\n", 1),
			want: []string{"bad.yaml:11: paid[0].steps[0].replicas: 299991 replicas make 300001 pods in total with the other workloads at their peaks, more than the simulator's limit of 300000 (twice Kubernetes' scalability envelope of 5000 nodes and 150000 pods): lower it"},
		},
		{
			name: "opportunistic max",
			yaml: strings.Replace(minimal, "maxReplicas: 10", "maxReplicas: 2147483647", 1),
			want: []string{"bad.yaml:14: opportunistic[0].maxReplicas: 2147483647 replicas make 2147483648 pods in total with the other workloads at their peaks, more than the simulator's limit of 300000 (twice Kubernetes' scalability envelope of 5000 nodes and 150000 pods): lower it"},
		},
		{
			name: "nodes",
			yaml: strings.Replace(strings.Replace(minimal, "count: 2", "count: 9999", 1), "paid:\n", "- {name: m, count: 2, allocatable: {cpu: \"8\"}}\npaid:\n", 1),
			want: []string{"bad.yaml:5: nodeGroups[0].count: 10001 nodes in all node groups, more than the simulator's limit of 10000 (twice Kubernetes' scalability envelope of 5000 nodes and 150000 pods): lower the counts"},
		},
		{
			name: "steps",
			yaml: strings.Replace(minimal, "duration: 1h", "duration: 8784h\nstep: 500ms", 1),
			want: []string{"bad.yaml:3: step: 500ms over 8784h0m0s is 63244800 steps, more than the simulator's limit of 31622400 (a year at 1s): use a longer step or a shorter duration"},
		},
		{
			name: "amounts",
			yaml: strings.Replace(strings.Replace(minimal, `cpu: "8", memory: 16Gi`, `cpu: 8Ei, memory: 64Ti`, 1), `requests: {cpu: "2"}`, `requests: {cpu: "35184372089"}`, 1),
			want: []string{
				"bad.yaml:6: nodeGroups[0].allocatable.cpu: 8Ei is more than the simulator counts (below 35184372088 cores): lower it",
				"bad.yaml:6: nodeGroups[0].allocatable.memory: 64Ti is more than the simulator counts (below 32Ti): lower it",
				"bad.yaml:9: paid[0].requests.cpu: 35184372089 is more than the simulator counts (below 35184372088 cores): lower it",
			},
		},
		{
			name: "load changes",
			yaml: strings.Replace(strings.Replace(minimal, "duration: 1h", "duration: 8760h", 1), "  replicas: 1\n", "  replicas: 1\n  noise: {every: 10s, replicas: 1}\n", 1),
			want: []string{"bad.yaml:11: paid[0].noise.every: 10s over the scenario's 8760h0m0s: the paid load changes about 3153601 times in all (3153601 from this field), more than the simulator's limit of 2000000: make it longer"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseScenario("bad.yaml", []byte(tt.yaml), nil)
			checkErrors(t, err, tt.want...)
		})
	}
}

func TestTraceLimits(t *testing.T) {
	sc, err := ParseScenario("small.yaml", []byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := ParseTrace("t.csv", []byte("time_s,name,replicas\n0,web,2\n60,web,2000000000\n"))
	if err != nil {
		t.Fatal(err)
	}
	checkErrors(t, sc.ApplyTrace(tr), "t.csv:3: replicas: 2000000000 replicas make 2000000010 pods in total with the other workloads at their peaks, more than the simulator's limit of 300000 (twice Kubernetes' scalability envelope of 5000 nodes and 150000 pods): lower it")
}

func TestRunChecksOverlappingBursts(t *testing.T) {
	sc, err := ParseScenario("small.yaml", []byte(strings.Replace(minimal, "  replicas: 1\n", "  replicas: 1\n  bursts: {meanInterval: 1s, duration: 1h, replicas: 200000}\n", 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(sc, Options{Seed: 1, Strategies: []string{Opportunist}})
	if err == nil || !strings.Contains(err.Error(), "more than the simulator's limit of 300000 pods in total") {
		t.Errorf("error %v, want the pod limit", err)
	}
}
