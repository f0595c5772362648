package main

import (
	"maps"
	"slices"
	"testing"
)

// kubectl must not join the control plane's cache key: a cached control
// plane without it would count as incomplete and be rebuilt (minutes).
func TestKubectlBuildHasItsOwnKey(t *testing.T) {
	k8s, err := k8sBuild()
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kubectlBuild()
	if err != nil {
		t.Fatal(err)
	}
	if kc.key == k8s.key || kc.key != "kubectl-"+k8sVersion {
		t.Errorf("kubectl key %q, control plane key %q: want kubectl-%s, distinct", kc.key, k8s.key, k8sVersion)
	}
	if _, ok := k8s.binaries["kubectl"]; ok {
		t.Error("the control plane build lists kubectl")
	}
	if got := slices.Sorted(maps.Keys(kc.binaries)); !slices.Equal(got, []string{"kubectl"}) || kc.binaries["kubectl"] != "k8s.io/kubernetes/cmd/kubectl" {
		t.Errorf("kubectl build binaries = %v", kc.binaries)
	}
	// Same module, version and stamping as the API server it talks to.
	if kc.module != k8s.module || kc.version != k8s.version || !slices.Equal(kc.ldflags, k8s.ldflags) || kc.tags != k8s.tags {
		t.Error("kubectl is not built like the control plane")
	}
}
