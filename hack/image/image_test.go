package main

import (
	"archive/tar"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestImage builds the image for this machine's architecture, reads it back
// from both outputs (the OCI layout and the docker tarball) and checks what
// the chart relies on: a non-root user, the entrypoint, a static binary and
// nothing else to run — no shell.
func TestImage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Fatalf("the image test runs the linux binary it builds; this is %s", runtime.GOOS)
	}
	if testing.Short() {
		// The static build (CGO_ENABLED=0, -trimpath) shares no build cache
		// with the other tests: cold, it compiles every package again, which
		// took over 10 minutes on a loaded two-core machine. make unit runs it.
		t.Skip("builds the whole binary a second time (CGO_ENABLED=0, -trimpath): runs without -short, in make unit")
	}
	out := t.TempDir()
	opts, err := parseFlags([]string{"-version", "v0.0.0-test", "-revision", "abc123", "-platforms", "linux/" + runtime.GOARCH,
		"-out", out, "-source", "../..", "-created", "1700000000", "-ca-certs", ""})
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	if err := build(opts, &log); err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}

	fromLayout := imageFromLayout(t, filepath.Join(out, "oci"))
	fromTarball, err := tarball.ImageFromPath(filepath.Join(out, "opportunist-v0.0.0-test-linux-"+runtime.GOARCH+".tar"), nil)
	if err != nil {
		t.Fatalf("reading the docker tarball: %v", err)
	}
	// The tarball's manifest is docker's, so compare what it describes: the
	// config and the layers.
	c1, _ := fromLayout.ConfigName()
	c2, _ := fromTarball.ConfigName()
	if c1 != c2 {
		t.Errorf("OCI layout has config %s, docker tarball %s: want one image", c1, c2)
	}

	cfg, err := fromLayout.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("User = %q, want 65532:65532 (non-root)", cfg.Config.User)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/opportunist"}) {
		t.Errorf("Entrypoint = %q, want [/opportunist]", cfg.Config.Entrypoint)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("platform = %s/%s, want linux/%s", cfg.OS, cfg.Architecture, runtime.GOARCH)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  "v0.0.0-test",
		"org.opencontainers.image.revision": "abc123",
		"org.opencontainers.image.created":  "2023-11-14T22:13:20Z",
		"org.opencontainers.image.source":   "https://github.com/opportunist/opportunist",
	} {
		if got := cfg.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}

	files := extract(t, fromLayout)
	var executables []string
	for name, f := range files {
		if f.Typeflag == tar.TypeReg && f.Mode&0o111 != 0 {
			executables = append(executables, name)
		}
		if base := path.Base(name); slices.Contains([]string{"sh", "bash", "ash", "dash", "busybox"}, base) {
			t.Errorf("image holds %s: want no shell", name)
		}
	}
	if !slices.Equal(executables, []string{"opportunist"}) {
		t.Errorf("executables in the image: %q, want only [opportunist]", executables)
	}
	bin, ok := files["opportunist"]
	if !ok {
		t.Fatal("no /opportunist in the image")
	}
	if bin.Uid != 0 || bin.Mode&0o022 != 0 {
		t.Errorf("/opportunist is uid %d mode %o: want root-owned and not writable by the user it runs as", bin.Uid, bin.Mode)
	}
	if passwd := string(files["etc/passwd"].data); !strings.Contains(passwd, "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user 65532:\n%s", passwd)
	}
	if tmp, ok := files["tmp"]; !ok || tmp.Typeflag != tar.TypeDir || tmp.Mode&0o1777 != 0o1777 {
		t.Errorf("/tmp missing or not a 1777 directory: %+v", tmp.Header)
	}

	exe := filepath.Join(t.TempDir(), "opportunist")
	if err := os.WriteFile(exe, bin.data, 0o755); err != nil {
		t.Fatal(err)
	}
	assertStatic(t, exe)

	got, err := exec.Command(exe, "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("running the image's binary: %v", err)
	}
	var info struct{ Version, Platform string }
	if err := json.Unmarshal(got, &info); err != nil {
		t.Fatalf("version -o json: %v: %s", err, got)
	}
	if info.Version != "v0.0.0-test" || info.Platform != "linux/"+runtime.GOARCH {
		t.Errorf("version -o json = %s, want version v0.0.0-test on linux/%s", got, runtime.GOARCH)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"platform not linux", []string{"-platforms", "darwin/arm64"}, `-platforms: "darwin/arm64" is not linux/<arch>`},
		{"no arch", []string{"-platforms", "linux"}, `-platforms: "linux" is not linux/<arch>`},
		{"bad created", []string{"-created", "yesterday"}, `-created: "yesterday" is not a Unix time in seconds`},
		{"bad repository", []string{"-repository", "UPPER/case"}, `-repository "UPPER/case"`},
		{"argument", []string{"extra"}, `unexpected arguments: ["extra"]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseFlags(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestTagOf(t *testing.T) {
	for in, want := range map[string]string{
		"v0.1.0":            "v0.1.0",
		"2d0c1e8-dirty":     "2d0c1e8-dirty",
		"v0.1.0+build/meta": "v0.1.0-build-meta",
		"":                  "v",
		"-x":                "v-x",
	} {
		if got := tagOf(in); got != want {
			t.Errorf("tagOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func imageFromLayout(t *testing.T, dir string) v1.Image {
	t.Helper()
	root, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("reading the OCI layout: %v", err)
	}
	rm, err := root.IndexManifest()
	if err != nil || len(rm.Manifests) != 1 {
		t.Fatalf("OCI layout index.json: %v, %d entries, want one", err, len(rm.Manifests))
	}
	if ref := rm.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; ref != "v0.0.0-test" {
		t.Errorf("ref.name = %q, want v0.0.0-test", ref)
	}
	idx, err := root.ImageIndex(rm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("image index: %v, %d manifests, want one", err, len(im.Manifests))
	}
	if p := im.Manifests[0].Platform; p == nil || p.OS != "linux" || p.Architecture != runtime.GOARCH {
		t.Errorf("index platform = %+v, want linux/%s", p, runtime.GOARCH)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type entry struct {
	*tar.Header
	data []byte
}

// extract flattens the image's layers into name → entry (clean names
// without a leading /).
func extract(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("reading the image's filesystem: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(path.Clean(h.Name), "/")] = entry{h, data}
	}
}

// assertStatic fails unless the ELF file asks for no dynamic loader and no
// shared library: it must run on an empty base with no libc.
func assertStatic(t *testing.T, exe string) {
	t.Helper()
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatalf("the image's binary is not ELF: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the image's binary has a PT_INTERP program header: dynamically linked")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("the image's binary needs shared libraries %q: want a static binary", libs)
	}
}
