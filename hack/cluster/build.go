package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// buildSpec describes a set of binaries built from one upstream module at a
// pinned version.
type buildSpec struct {
	key            string // cache key, e.g. "k8s-v1.37.2"
	module         string
	version        string
	replaceVersion string            // version for upstream's local replaces
	binaries       map[string]string // binary name -> package path
	ldflags        []string
	tags           string
	// patches fix upstream bugs in a copy of the module's source that the
	// build uses instead; the key names them, so a patched build is cached
	// apart from an unpatched one.
	patches []sourcePatch
}

// sourcePatch replaces old with new in one file of the module (a path
// relative to the module's root); old must occur exactly count times, so
// a patch that no longer fits its version fails the build rather than
// silently doing nothing.
type sourcePatch struct {
	file, old, new string
	count          int
}

func k8sBuild() (buildSpec, error) {
	staging, err := stagingVersion(k8sVersion)
	if err != nil {
		return buildSpec{}, err
	}
	// The version variables Kubernetes' own release build stamps in, so
	// /version and the components' logs report v1.37.2 rather than v0.0.0.
	minor := strings.Split(k8sVersion, ".")[1]
	var ld []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		ld = append(ld,
			"-X", pkg+".gitVersion="+k8sVersion,
			"-X", pkg+".gitMajor=1",
			"-X", pkg+".gitMinor="+minor,
			"-X", pkg+".gitTreeState=clean",
		)
	}
	return buildSpec{
		key:            "k8s-" + k8sVersion,
		module:         "k8s.io/kubernetes",
		version:        k8sVersion,
		replaceVersion: staging,
		binaries: map[string]string{
			"kube-apiserver":          "k8s.io/kubernetes/cmd/kube-apiserver",
			"kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
			"kube-scheduler":          "k8s.io/kubernetes/cmd/kube-scheduler",
		},
		ldflags: ld,
		// The tags of Kubernetes' release build (hack/lib/golang.sh).
		tags: "selinux,notest,grpcnotrace",
	}, nil
}

// kubectlBuild is kubectl at the control plane's version, so a walkthrough
// works on a machine without one. It has its own cache key: adding it to
// k8sBuild would make every cached control plane incomplete and rebuild it.
func kubectlBuild() (buildSpec, error) {
	s, err := k8sBuild()
	if err != nil {
		return buildSpec{}, err
	}
	s.key = "kubectl-" + k8sVersion
	s.binaries = map[string]string{"kubectl": "k8s.io/kubernetes/cmd/kubectl"}
	return s, nil
}

func etcdBuild() buildSpec {
	// etcd's server module is its main package; its go.mod replaces the
	// sibling modules (api, client, pkg) with ../ directories, which is why a
	// plain `go install go.etcd.io/etcd/server/v3@v3.6.16` refuses.
	return buildSpec{
		key:            "etcd-" + etcdVersion,
		module:         "go.etcd.io/etcd/server/v3",
		version:        etcdVersion,
		replaceVersion: etcdVersion,
		binaries:       map[string]string{"etcd": "go.etcd.io/etcd/server/v3"},
	}
}

func kwokBuild() buildSpec {
	return buildSpec{
		key:            "kwok-" + kwokVersion + "-rewatch",
		module:         "sigs.k8s.io/kwok",
		version:        kwokVersion,
		replaceVersion: kwokVersion,
		binaries:       map[string]string{"kwok": "sigs.k8s.io/kwok/cmd/kwok"},
		patches:        []sourcePatch{kwokRewatchPatch},
	}
}

// kwokRewatchPatch: kwok v0.8.0's informers set resourceVersion "0" on every
// request, their watches included, so each time the API server cuts kwok's
// pod watch (it does when kwok falls behind) kwok watches again from 0 and
// gets every pod in the cluster replayed. With 100,000 pods the replay took
// 13-17 s, longer than the API server holds events for a watcher that is
// behind, so it was cut again, and again, for as long as pods kept being
// written: 7,400 replayed pods a second to a watcher that never caught up
// (docs/scale.md). The patch keeps the resourceVersion the reflector resumes
// from; a first watch still starts at "0" as kwok meant.
var kwokRewatchPatch = sourcePatch{
	file: "pkg/utils/informer/informer.go",
	old: `		WatchFunc: func(opts metav1.ListOptions) (watch.Interface, error) {
			opt.setup(&opts)
`,
	new: `		WatchFunc: func(opts metav1.ListOptions) (watch.Interface, error) {
			resume := opts.ResourceVersion
			opt.setup(&opts)
			if resume != "" {
				opts.ResourceVersion = resume
			}
`,
	count: 2,
}

// patchedSource copies the module's source into dir and applies the
// spec's patches to the copy (the module cache stays as downloaded: go
// refuses an -overlay of files in it); the build replaces the module with
// the copy. It returns "" when the spec has no patches.
func (s buildSpec) patchedSource(moduleDir, dir string) (string, error) {
	if len(s.patches) == 0 {
		return "", nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.CopyFS(dir, os.DirFS(moduleDir)); err != nil {
		return "", fmt.Errorf("copying %s@%s to patch it: %v", s.module, s.version, err)
	}
	for _, p := range s.patches {
		file := filepath.Join(dir, filepath.FromSlash(p.file))
		text, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("patching %s@%s: %v", s.module, s.version, err)
		}
		if n := strings.Count(string(text), p.old); n != p.count {
			return "", fmt.Errorf("patching %s@%s: %s has the text to patch %d times, want %d: the patch does not fit this version", s.module, s.version, p.file, n, p.count)
		}
		// The module cache's files are read-only, and CopyFS keeps modes.
		if err := os.WriteFile(file+".patched", []byte(strings.ReplaceAll(string(text), p.old, p.new)), 0o644); err != nil {
			return "", err
		}
		if err := os.Rename(file+".patched", file); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// kedaBuild is KEDA's operator and its metrics server (the adapter serving
// external.metrics.k8s.io), stamped with the version as KEDA's Makefile does.
func kedaBuild() buildSpec {
	const pkg = "github.com/kedacore/keda/v2"
	return buildSpec{
		key:     "keda-" + kedaVersion,
		module:  pkg,
		version: kedaVersion,
		binaries: map[string]string{
			"keda":         pkg + "/cmd/operator",
			"keda-adapter": pkg + "/cmd/adapter",
		},
		ldflags: []string{"-X", pkg + "/version.Version=" + strings.TrimPrefix(kedaVersion, "v")},
	}
}

// metricsServerBuild is metrics-server, stamped as its Makefile does (it
// reports its version through client-go's version package).
func metricsServerBuild() buildSpec {
	const pkg = "k8s.io/client-go/pkg/version"
	return buildSpec{
		key:      "metrics-server-" + metricsServerVersion,
		module:   "sigs.k8s.io/metrics-server",
		version:  metricsServerVersion,
		binaries: map[string]string{"metrics-server": "sigs.k8s.io/metrics-server/cmd/metrics-server"},
		ldflags:  []string{"-X", pkg + ".gitVersion=" + metricsServerVersion},
	}
}

func (s buildSpec) binDir(cache string) string { return filepath.Join(cache, "bin", s.key) }

func (s buildSpec) names() []string { return slices.Sorted(maps.Keys(s.binaries)) }

// complete reports whether dir holds every binary of the spec. Builds land
// in dir by one rename of a finished temp dir, so a half build never passes.
func (s buildSpec) complete(dir string) bool {
	for name := range s.binaries {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// ensureBuilt returns the directory holding the spec's binaries, building
// them first if the cache does not have them; progress goes to progress.
func ensureBuilt(cache string, s buildSpec, progress io.Writer) (string, error) {
	dir := s.binDir(cache)
	if s.complete(dir) {
		return dir, nil
	}
	// Clusters with different state dirs share the cache: one build at a
	// time per key, and whoever waited finds it done.
	if err := os.MkdirAll(filepath.Join(cache, "build"), 0o755); err != nil {
		return "", err
	}
	lock, err := flock(filepath.Join(cache, "build", s.key+".lock"), "another build of "+s.key)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if s.complete(dir) {
		return dir, nil
	}
	fmt.Fprintf(progress, "building %s %s (first time, several minutes)...\n", strings.Join(s.names(), ", "), s.version)
	start := time.Now()
	if err := build(cache, s, dir, progress); err != nil {
		return "", err
	}
	fmt.Fprintf(progress, "built %s %s in %s into %s\n", strings.Join(s.names(), ", "), s.version, time.Since(start).Round(time.Second), dir)
	return dir, nil
}

func build(cache string, s buildSpec, dir string, progress io.Writer) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return errors.New("the go command is not in PATH; it is needed to build the cluster binaries")
	}
	mod, err := goModDownload(goBin, s.module, s.version)
	if err != nil {
		return err
	}
	text, err := os.ReadFile(mod.GoMod)
	if err != nil {
		return err
	}
	info, err := parseGoMod(string(text))
	if err != nil {
		return fmt.Errorf("%s@%s: %v", s.module, s.version, err)
	}

	// The build module lives in the cache, never in the repository, and is
	// kept between builds so its go.sum does not have to be recomputed.
	work := filepath.Join(cache, "build", s.key)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	gomod := buildGoMod("opportunist.local/build/"+s.key, s.module, s.version, s.replaceVersion, info)
	patched, err := s.patchedSource(mod.Dir, filepath.Join(work, "src"))
	if err != nil {
		return err
	}
	if patched != "" {
		gomod += fmt.Sprintf("\nreplace %s => ./src\n", s.module)
	}
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}

	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-"+s.key+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed into place

	logPath := filepath.Join(work, "build.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	// One go build per binary, because `-o dir/` names a binary after the
	// last element of its package path (etcd's would be "v3"). The shared
	// packages compile once and come from the build cache after that.
	for _, name := range s.names() {
		fmt.Fprintf(progress, "  go build %s@%s -> %s\n", s.binaries[name], s.version, name)
		args := []string{"build", "-mod=mod", "-trimpath",
			"-ldflags=" + strings.Join(append([]string{"-s", "-w"}, s.ldflags...), " "),
			"-o", filepath.Join(tmp, name)}
		if s.tags != "" {
			args = append(args, "-tags="+s.tags)
		}
		args = append(args, s.binaries[name])
		cmd := exec.Command(goBin, args...)
		cmd.Dir = work
		cmd.Stdout, cmd.Stderr = logFile, logFile
		// GOWORK=off: a go.work above the cache must not pull other modules
		// in. CGO_ENABLED=0: static binaries, as Kubernetes ships them.
		cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
		fmt.Fprintf(logFile, "$ cd %s && go %s\n", work, strings.Join(args, " "))
		if err := cmd.Run(); err != nil {
			return &detailedError{
				msg:    fmt.Sprintf("building %s (%s@%s) failed (%v); log: %s (last 20 lines below)", name, s.module, s.version, err, logPath),
				detail: tailFile(logPath, 20),
			}
		}
	}
	if !s.complete(tmp) {
		return fmt.Errorf("building %s@%s produced no binaries; log: %s", s.module, s.version, logPath)
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp made it 0700
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// A leftover incomplete dir (say, a binary deleted by hand) is in
		// the way: replace it.
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		return os.Rename(tmp, dir)
	}
	return nil
}

type downloadedModule struct {
	Dir   string
	GoMod string
	Error string
}

// goModDownload fetches module@version into the module cache (a no-op when
// it is there) and returns where its source and go.mod are.
func goModDownload(goBin, module, version string) (downloadedModule, error) {
	cmd := exec.Command(goBin, "mod", "download", "-json", module+"@"+version)
	// Run outside any module so the repository's go.mod is not consulted.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GO111MODULE=on")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var m downloadedModule
	if err := json.Unmarshal(out, &m); err != nil || m.Error != "" || runErr != nil {
		msg := strings.TrimSpace(m.Error)
		if msg == "" {
			msg = strings.TrimSpace(stderr.String())
		}
		if msg == "" && runErr != nil {
			msg = runErr.Error()
		}
		return downloadedModule{}, fmt.Errorf("go mod download %s@%s: %s", module, version, firstLine(msg))
	}
	return m, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
