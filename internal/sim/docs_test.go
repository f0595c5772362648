package sim

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

// TestDocsExamples keeps docs/simulate.md honest: its scenario and trace
// examples parse, and run.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/simulate.md")
	if err != nil {
		t.Fatal(err)
	}
	var scenario, trace string
	for _, m := range regexp.MustCompile("(?s)```(\\w+)\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		switch {
		case m[1] == "yaml" && strings.Contains(m[2], "nodeGroups:"):
			scenario = m[2]
		case m[1] == "csv":
			trace = m[2]
		}
	}
	if scenario == "" || trace == "" {
		t.Fatal("docs/simulate.md has no scenario or no trace example")
	}
	sc, err := ParseScenario("my-cluster.yaml", []byte(scenario), func(path string) ([]byte, error) {
		if path != "paid.csv" {
			return nil, fmt.Errorf("the example names trace %q, want paid.csv", path)
		}
		return []byte(trace), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.NodeGroups) != 2 || len(sc.Paid) != 2 || !sc.Paid[0].Load.Traced || sc.HPA[HPAWriteup].Controller.SyncPeriod != 10*time.Second ||
		len(sc.Opportunistic[0].Scaler.Spec.HeadroomSlots) != 2 || sc.SchedulerScoring != capacity.LeastAllocated {
		t.Errorf("the example parsed into %+v", sc)
	}
	// The pod model: an 8-core init container before a 4-core trainer with
	// a 250m sidecar, 100m of overhead; the classes' priorities.
	if train := sc.Paid[1]; train.Shape.Requests[corev1.ResourceCPU] != 8100 || train.Shape.Requests[corev1.ResourceMemory] != 16<<30 ||
		train.Priority != 1000 || !train.Preempts || sc.Opportunistic[0].Priority != -10 || sc.Opportunistic[0].Preempts ||
		sc.Paid[0].Shape.Affinity == nil || sc.PodEvictionTimeout != 5*time.Minute {
		t.Errorf("the example's pods: train %+v, transcoder %+v, web's affinity %v, eviction timeout %s", train.Pods, sc.Opportunistic[0].Pods, sc.Paid[0].Shape.Affinity, sc.PodEvictionTimeout)
	}
	sc.Duration = time.Hour
	if _, err := Run(sc, Options{Seed: 1, Strategies: []string{Opportunist}}); err != nil {
		t.Fatal(err)
	}
}
