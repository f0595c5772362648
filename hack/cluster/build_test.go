package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestPatchedSourcePatchesACopyAndLeavesTheModuleAlone(t *testing.T) {
	module, work := t.TempDir(), t.TempDir()
	src := filepath.Join(module, "pkg", "informer.go")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	orig := "a\nsetup()\nb\nsetup()\n"
	if err := os.WriteFile(src, []byte(orig), 0o444); err != nil { // read-only, as in the module cache
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(module, "go.mod"), []byte("module example.com/m\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	s := buildSpec{module: "example.com/m", version: "v1.0.0",
		patches: []sourcePatch{{file: "pkg/informer.go", old: "setup()\n", new: "keep()\nsetup()\n", count: 2}}}

	for range 2 { // a second build replaces the first's copy
		dir, err := s.patchedSource(module, filepath.Join(work, "src"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "pkg", "informer.go"))
		if err != nil {
			t.Fatal(err)
		}
		if want := "a\nkeep()\nsetup()\nb\nkeep()\nsetup()\n"; string(got) != want {
			t.Errorf("patched file %q, want %q", got, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
			t.Errorf("the copy lacks the module's other files: %v", err)
		}
	}
	if now, _ := os.ReadFile(src); string(now) != orig {
		t.Errorf("the module's file changed to %q", now)
	}
}

func TestPatchedSourceRefusesAPatchThatDoesNotFit(t *testing.T) {
	module := t.TempDir()
	if err := os.WriteFile(filepath.Join(module, "f.go"), []byte("setup()\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := buildSpec{module: "example.com/m", version: "v2.0.0",
		patches: []sourcePatch{{file: "f.go", old: "setup()\n", new: "x", count: 2}}}
	_, err := s.patchedSource(module, filepath.Join(t.TempDir(), "src"))
	if err == nil || !strings.Contains(err.Error(), "1 times, want 2") || !strings.Contains(err.Error(), "example.com/m@v2.0.0") {
		t.Fatalf("patchedSource = %v, want an error naming the module and the count", err)
	}
}

func TestPatchedSourceWithoutPatches(t *testing.T) {
	if dir, err := (buildSpec{}).patchedSource(t.TempDir(), filepath.Join(t.TempDir(), "src")); dir != "" || err != nil {
		t.Fatalf("patchedSource = %q, %v; want no copy", dir, err)
	}
}

// The kwok patch must fit the pinned kwok's source (go mod download: a
// no-op once any cluster build has fetched it).
func TestKwokRewatchPatchFitsThePinnedVersion(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := goModDownload(goBin, "sigs.k8s.io/kwok", kwokVersion)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kwokBuild().patchedSource(mod.Dir, filepath.Join(t.TempDir(), "src")); err != nil {
		t.Fatal(err)
	}
}
