package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestNotInThisBuild: in make demo's build (the nocluster tag) run and
// status are stand-ins; whatever the flags, they say where the command is.
func TestNotInThisBuild(t *testing.T) {
	for _, args := range [][]string{{"elsewhere"}, {"elsewhere", "--kubeconfig", "x.yaml", "-o", "json"}, {"elsewhere", "--help"}} {
		root := NewRoot("opportunist")
		root.AddCommand(notInThisBuild("elsewhere"))
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		err := root.Execute()
		want := "opportunist elsewhere is not in this build: make demo builds bin/opportunist-demo"
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "run make build, then bin/opportunist elsewhere") {
			t.Errorf("%q: error %v, want it to start %q and end with how to get the command", args, err, want)
		}
	}
}
