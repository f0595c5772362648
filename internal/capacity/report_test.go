package capacity

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestEffectiveRequests(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		want Resources
	}{
		{
			name: "app containers only",
			pod:  kubePod("p", "n", list("cpu", "500m", "memory", "1Gi")),
			want: Resources{"cpu": 500, "memory": 1 << 30, "pods": 1},
		},
		{
			name: "init container larger than app containers wins",
			pod:  kubePod("p", "n", list("cpu", "500m"), initContainer(list("cpu", "2", "memory", "64Mi"), false)),
			want: Resources{"cpu": 2000, "memory": 64 << 20, "pods": 1},
		},
		{
			name: "restartable sidecar init container adds to app containers",
			pod:  kubePod("p", "n", list("cpu", "500m"), initContainer(list("cpu", "250m"), true)),
			want: Resources{"cpu": 750, "pods": 1},
		},
		{
			name: "pod overhead is added",
			pod:  kubePod("p", "n", list("cpu", "1", "memory", "100Mi"), overhead(list("cpu", "250m", "memory", "20Mi"))),
			want: Resources{"cpu": 1250, "memory": 120 << 20, "pods": 1},
		},
		{
			name: "no requests still take a pod slot",
			pod:  kubePod("p", "n", nil),
			want: Resources{"pods": 1},
		},
		{
			name: "extended resources and ephemeral storage",
			pod:  kubePod("p", "n", list("nvidia.com/gpu", "2", "ephemeral-storage", "1Gi")),
			want: Resources{"nvidia.com/gpu": 2, "ephemeral-storage": 1 << 30, "pods": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FromPod(tt.pod).Requests
			if !reflect.DeepEqual(nonZero(got), tt.want) {
				t.Errorf("requests = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	big := list("cpu", "32", "memory", "128Gi", "pods", "110")
	tests := []struct {
		name      string
		nodes     []*corev1.Node
		pods      []*corev1.Pod
		workloads []Workload
		// want holds the expected rows of the usable pool, by resource.
		want        map[corev1.ResourceName]ResourceSummary
		wantStates  map[string]int
		wantPending Demand
		wantUsage   []WorkloadUsage
	}{
		{
			name:  "paid pods on one node",
			nodes: []*corev1.Node{kubeNode("a", big, withCapacity(list("cpu", "33", "memory", "130Gi", "pods", "110")))},
			pods:  []*corev1.Pod{kubePod("p1", "a", list("cpu", "4", "memory", "8Gi")), kubePod("p2", "a", list("cpu", "500m"))},
			want: map[corev1.ResourceName]ResourceSummary{
				"cpu":    {Name: "cpu", Capacity: 33000, Allocatable: 32000, Requests: 4500, PaidRequests: 4500, Remaining: 27500},
				"memory": {Name: "memory", Capacity: 130 << 30, Allocatable: 128 << 30, Requests: 8 << 30, PaidRequests: 8 << 30, Remaining: 120 << 30},
				"pods":   {Name: "pods", Capacity: 110, Allocatable: 110, Requests: 2, PaidRequests: 2, Remaining: 108},
			},
			wantStates: map[string]int{"ready": 1},
		},
		{
			name:  "terminal pods hold no room",
			nodes: []*corev1.Node{kubeNode("a", big)},
			pods: []*corev1.Pod{
				kubePod("done", "a", list("cpu", "4"), phase(corev1.PodSucceeded)),
				kubePod("failed", "a", list("cpu", "4"), phase(corev1.PodFailed)),
				kubePod("running", "a", list("cpu", "1")),
			},
			want: map[corev1.ResourceName]ResourceSummary{
				"cpu": {Name: "cpu", Capacity: 32000, Allocatable: 32000, Requests: 1000, PaidRequests: 1000, Remaining: 31000},
			},
			wantStates: map[string]int{"ready": 1},
		},
		{
			name:  "unbound pods are demand, not usage",
			nodes: []*corev1.Node{kubeNode("a", big)},
			pods: []*corev1.Pod{
				kubePod("pending", "", list("cpu", "8"), phase(corev1.PodPending)),
				kubePod("pending-done", "", list("cpu", "8"), phase(corev1.PodFailed)),
			},
			want: map[corev1.ResourceName]ResourceSummary{
				"cpu": {Name: "cpu", Capacity: 32000, Allocatable: 32000, Remaining: 32000},
			},
			wantStates:  map[string]int{"ready": 1},
			wantPending: Demand{Pods: 1, Requests: Resources{"cpu": 8000, "pods": 1}},
		},
		{
			name: "cordoned and NotReady nodes and their pods stay out of the pool",
			nodes: []*corev1.Node{
				kubeNode("ready", big),
				kubeNode("cordoned", big, cordoned()),
				kubeNode("down", big, notReady()),
				kubeNode("down-and-cordoned", big, notReady(), cordoned()),
			},
			pods: []*corev1.Pod{
				kubePod("r", "ready", list("cpu", "1")),
				kubePod("c", "cordoned", list("cpu", "2")),
				kubePod("d", "down", list("cpu", "3")),
			},
			want: map[corev1.ResourceName]ResourceSummary{
				"cpu": {Name: "cpu", Capacity: 32000, Allocatable: 32000, Requests: 1000, PaidRequests: 1000, Remaining: 31000},
			},
			wantStates: map[string]int{"ready": 1, "cordoned": 1, "not_ready": 2},
		},
		{
			name:  "pods bound to an unknown node are accounted as missing",
			nodes: []*corev1.Node{kubeNode("a", big)},
			pods:  []*corev1.Pod{kubePod("ghost", "gone", list("cpu", "1"))},
			want: map[corev1.ResourceName]ResourceSummary{
				"cpu": {Name: "cpu", Capacity: 32000, Allocatable: 32000, Remaining: 32000},
			},
			wantStates: map[string]int{"ready": 1},
		},
		{
			name:  "opportunistic pods are split from paid ones",
			nodes: []*corev1.Node{kubeNode("a", big)},
			pods: []*corev1.Pod{
				kubePod("paid", "a", list("cpu", "10")),
				kubePod("w1", "a", list("cpu", "1"), app("worker")),
				kubePod("w2", "a", list("cpu", "1"), app("worker")),
				kubePod("w3", "", list("cpu", "1"), app("worker"), phase(corev1.PodPending)),
			},
			workloads: []Workload{workload("worker")},
			want: map[corev1.ResourceName]ResourceSummary{
				"cpu": {Name: "cpu", Capacity: 32000, Allocatable: 32000, Requests: 12000, PaidRequests: 10000, OpportunisticRequests: 2000, Remaining: 20000},
			},
			wantStates: map[string]int{"ready": 1},
			wantUsage:  []WorkloadUsage{{Key: "default/worker", Pods: 2, Pending: 1, Requests: Resources{"cpu": 2000, "pods": 2}}},
		},
		{
			name:  "extended resources are reported",
			nodes: []*corev1.Node{kubeNode("gpu", list("cpu", "8", "nvidia.com/gpu", "4", "ephemeral-storage", "100Gi"))},
			pods:  []*corev1.Pod{kubePod("train", "gpu", list("cpu", "1", "nvidia.com/gpu", "3"))},
			want: map[corev1.ResourceName]ResourceSummary{
				"nvidia.com/gpu":    {Name: "nvidia.com/gpu", Capacity: 4, Allocatable: 4, Requests: 3, PaidRequests: 3, Remaining: 1},
				"ephemeral-storage": {Name: "ephemeral-storage", Capacity: 100 << 30, Allocatable: 100 << 30, Remaining: 100 << 30},
			},
			wantStates: map[string]int{"ready": 1},
		},
		{
			name:  "a node with zero allocatable adds nothing",
			nodes: []*corev1.Node{kubeNode("a", big), kubeNode("empty", list("cpu", "0", "memory", "0", "pods", "0"))},
			want: map[corev1.ResourceName]ResourceSummary{
				"cpu":  {Name: "cpu", Capacity: 32000, Allocatable: 32000, Remaining: 32000},
				"pods": {Name: "pods", Capacity: 110, Allocatable: 110, Remaining: 110},
			},
			wantStates: map[string]int{"ready": 2},
		},
		{
			name:  "pods with no requests count one pod slot only",
			nodes: []*corev1.Node{kubeNode("a", big)},
			pods:  []*corev1.Pod{kubePod("besteffort", "a", nil)},
			want: map[corev1.ResourceName]ResourceSummary{
				"cpu":  {Name: "cpu", Capacity: 32000, Allocatable: 32000, Remaining: 32000},
				"pods": {Name: "pods", Capacity: 110, Allocatable: 110, Requests: 1, PaidRequests: 1, Remaining: 109},
			},
			wantStates: map[string]int{"ready": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Summarize(nodes(tt.nodes...), pods(tt.pods...), tt.workloads)
			for name, want := range tt.want {
				got, _ := rep.Resource(name)
				if got != want {
					t.Errorf("%s:\n got  %+v\n want %+v", name, got, want)
				}
			}
			for _, st := range rep.States {
				if st.Nodes != tt.wantStates[st.State] {
					t.Errorf("state %s: %d nodes, want %d", st.State, st.Nodes, tt.wantStates[st.State])
				}
			}
			if tt.wantPending.Requests == nil {
				tt.wantPending.Requests = Resources{}
			}
			if !reflect.DeepEqual(rep.PendingPaid, tt.wantPending) {
				t.Errorf("pending paid = %+v, want %+v", rep.PendingPaid, tt.wantPending)
			}
			if !reflect.DeepEqual(rep.Workloads, tt.wantUsage) {
				t.Errorf("workloads = %+v, want %+v", rep.Workloads, tt.wantUsage)
			}
		})
	}
}

func TestSummarizeStatesKeepUnusableRoom(t *testing.T) {
	rep := Summarize(
		nodes(kubeNode("c", list("cpu", "4"), cordoned()), kubeNode("d", list("cpu", "2"), notReady())),
		pods(kubePod("on-cordoned", "c", list("cpu", "1")), kubePod("orphan", "gone", list("cpu", "3"))),
		nil)
	want := map[string]StateSummary{
		"ready":     {State: "ready", Capacity: Resources{}, Allocatable: Resources{}, Requests: Resources{}},
		"cordoned":  {State: "cordoned", Nodes: 1, Capacity: Resources{"cpu": 4000}, Allocatable: Resources{"cpu": 4000}, Requests: Resources{"cpu": 1000, "pods": 1}},
		"not_ready": {State: "not_ready", Nodes: 1, Capacity: Resources{"cpu": 2000}, Allocatable: Resources{"cpu": 2000}, Requests: Resources{}},
		"missing":   {State: "missing", Capacity: Resources{}, Allocatable: Resources{}, Requests: Resources{"cpu": 3000, "pods": 1}},
	}
	for _, st := range rep.States {
		if !reflect.DeepEqual(st, want[st.State]) {
			t.Errorf("state %s:\n got  %+v\n want %+v", st.State, st, want[st.State])
		}
	}
}

// TestHugeQuantitiesDoNotWrapAround: a Quantity holds values that do not fit
// in int64 once scaled (found by fuzzing parseHeadroom); they clamp.
func TestHugeQuantitiesDoNotWrapAround(t *testing.T) {
	for _, tt := range []struct {
		name corev1.ResourceName
		q    string
		want int64
	}{
		{"cpu", "8Ei", MaxAmount},
		{"cpu", "9227000000000000", MaxAmount},
		{"cpu", "9223372036854775807k", MaxAmount},
		{"memory", "9223372036854775807k", MaxAmount},
		{"cpu", "-8Ei", -MaxAmount},
		{"cpu", "1500m", 1500},
		{"memory", "64Gi", 64 << 30},
		{"memory", "32Ti", MaxAmount},
		{"memory", "33Ti", MaxAmount},
		{"cpu", "35184372088", 35184372088000},
	} {
		if got := FromResourceList(list(string(tt.name), tt.q))[tt.name]; got != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.name, tt.q, got, tt.want)
		}
	}
}
