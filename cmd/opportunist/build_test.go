package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// demoTags are the build tags of make demo's bin/opportunist-demo: the
// Makefile's DEMO_TAGS.
const demoTags = "nocluster"

// notInDemo are the import paths (and their subpackages) the demo's build
// must leave out: the aggregated API server, the controller and the
// Kubernetes client made the first build compile ~1,500 packages.
var notInDemo = []string{
	"k8s.io/apiserver",
	"sigs.k8s.io/custom-metrics-apiserver",
	"sigs.k8s.io/controller-runtime",
	"k8s.io/client-go",
	"github.com/opportunist/opportunist/internal/controller",
	"github.com/opportunist/opportunist/internal/cluster",
	"github.com/opportunist/opportunist/internal/metricsapi",
	"github.com/opportunist/opportunist/internal/exporter",
}

// maxDemoPackages bounds the demo build's package count (371 when this was
// written; the README quotes it): a new import that adds hundreds of
// packages fails here rather than slowing everyone's first build unseen.
const maxDemoPackages = 450

func goTool(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH: cannot list the demo build's packages")
	}
	return goBin
}

// TestDemoBuildLeavesOutClusterLibraries: what make demo builds links none
// of the cluster libraries, so a first build takes about a minute, not
// several (README, Quick start).
func TestDemoBuildLeavesOutClusterLibraries(t *testing.T) {
	out, err := exec.Command(goTool(t), "list", "-deps", "-tags", demoTags, ".").Output()
	if err != nil {
		t.Fatalf("go list -deps -tags %s: %v", demoTags, err)
	}
	pkgs := strings.Fields(string(out))
	for _, p := range pkgs {
		for _, bad := range notInDemo {
			if p == bad || strings.HasPrefix(p, bad+"/") {
				t.Errorf("the demo build (-tags %s) imports %s: find the import with `go list -deps -f '{{.ImportPath}}: {{.Imports}}' -tags %s ./cmd/opportunist | grep %s` and move it behind the tag or into a package without client libraries",
					demoTags, p, demoTags, bad)
			}
		}
	}
	if len(pkgs) > maxDemoPackages {
		t.Errorf("the demo build (-tags %s) compiles %d packages, more than %d: check what a new import pulls in; if it is worth it, raise maxDemoPackages and re-measure the README's first-build numbers",
			demoTags, len(pkgs), maxDemoPackages)
	}
}

// TestDemoBinary builds what make demo builds and runs it: the demo's
// commands are there, the cluster commands say where to find them.
func TestDemoBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "opportunist-demo")
	if out, err := exec.Command(goTool(t), "build", "-tags", demoTags, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags %s: %v\n%s", demoTags, err, out)
	}
	for _, args := range [][]string{{"version"}, {"demo", "--help"}, {"simulate", "--help"}} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Errorf("opportunist-demo %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, args := range [][]string{{"run"}, {"status", "--kubeconfig", os.DevNull, "-o", "json"}, {"run", "--help"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "is not in this build") || !strings.Contains(string(out), "make build") {
			t.Errorf("opportunist-demo %s: %v, output %q; want an error saying it is not in this build and to run make build", strings.Join(args, " "), err, out)
		}
	}
}
