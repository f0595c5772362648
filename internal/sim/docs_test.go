package sim

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

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
		len(sc.Opportunistic[0].Slots) != 2 || sc.SchedulerScoring != capacity.LeastAllocated {
		t.Errorf("the example parsed into %+v", sc)
	}
	sc.Duration = time.Hour
	if _, err := Run(sc, Options{Seed: 1, Strategies: []string{Opportunist}}); err != nil {
		t.Fatal(err)
	}
}
