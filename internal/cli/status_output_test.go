//go:build !nocluster

package cli

import (
	"strings"
	"testing"
)

func TestStatusAndVersionOutputs(t *testing.T) {
	for _, output := range []string{"", "table", "wide", "json", "yaml"} {
		o := statusOptions{kube: defaultKubeOptions()}
		o.Output = output
		if errs := o.Validate(); len(errs) != 0 {
			t.Errorf("status -o %q: %v", output, errs)
		}
	}
	if _, _, err := executeSplit(t, "version", "-o", "table"); err == nil || !strings.Contains(err.Error(), "--output must be json or yaml") {
		t.Errorf("version -o table: error %v, want it to name json and yaml", err)
	}
}

// TestStatusCompletion: status offers its -o values (the demo build's
// stand-in has no flags to complete).
func TestStatusCompletion(t *testing.T) {
	out, _, err := executeSplit(t, "__complete", "status", "--output", "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, ":") {
			got = append(got, l)
		}
	}
	if want := []string{"table", "wide", "json", "yaml"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("status --output completes %q, want %q", got, want)
	}
}
