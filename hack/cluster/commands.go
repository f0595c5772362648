package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// resolveSettings picks the running cluster's settings if any of its
// processes is alive (so `stop`/`start`/`status` talk to the cluster that
// exists), and the environment's otherwise.
func resolveSettings(st *runState) (settings, error) {
	env, err := settingsFromEnv()
	if err != nil {
		return settings{}, err
	}
	if !st.anyAlive() {
		return env, nil
	}
	return st.Settings, nil
}

// noteIgnoredEnv tells the user when the environment asks for settings the
// running cluster does not have.
func noteIgnoredEnv(s settings) {
	if env, err := settingsFromEnv(); err == nil && env != s {
		fmt.Fprintln(os.Stderr, "note: the running cluster keeps the ports/settings it was started with; `down` and `up` to apply the environment's")
	}
}

// openCluster takes the lock and loads the pid file and settings.
func openCluster(p paths) (*cluster, *runState, error) {
	if err := lockState(p); err != nil {
		return nil, nil, err
	}
	st, err := loadRunState(p)
	if err != nil {
		return nil, nil, err
	}
	s, err := resolveSettings(st)
	if err != nil {
		return nil, nil, err
	}
	st.Settings = s
	if !st.anyAlive() {
		st.HPA = nil // a new cluster starts with the default flags
	}
	return &cluster{p: p, s: s, hpa: st.HPA, bins: map[string]string{}}, st, nil
}

// cmdUp brings every component up. If the pid file lists processes that
// have died, only those are started again, in dependency order; healthy
// ones are left alone. Restarting everything would throw away nothing (etcd
// data persists) but would cost seconds and break watches of tests that
// are already connected, for no gain: each component only depends on
// addresses that do not change while the cluster keeps its settings.
func cmdUp(p paths) error {
	begin := time.Now()
	c, st, err := openCluster(p)
	if err != nil {
		return err
	}
	var missing []*component
	for _, comp := range components {
		if r, ok := st.Procs[comp.name]; ok && r.alive() {
			continue
		}
		delete(st.Procs, comp.name)
		missing = append(missing, comp)
	}
	noteIgnoredEnv(c.s)
	if len(missing) == 0 {
		for _, comp := range components {
			if err := waitHealthy(c, comp, st.Procs[comp.name]); err != nil {
				return err
			}
		}
		fmt.Printf("cluster already up: %s (KUBECONFIG=%s)\n", apiserverURL(c.s), p.kubeconfig())
		return ensureKubectl(p)
	}
	if len(missing) < len(components) {
		fmt.Printf("some components are not running, starting them again: %s\n", componentNames(missing))
	}
	// Ports first: a clash should not cost a five-minute build.
	if err := checkPorts(c, missing); err != nil {
		return err
	}
	if err := prepare(c, missing); err != nil {
		return err
	}
	for _, comp := range components {
		if slices.Contains(missing, comp) {
			err = startComponent(c, st, comp)
		} else {
			// Dependents start only once what they talk to is healthy.
			err = waitHealthy(c, comp, st.Procs[comp.name])
		}
		if err != nil {
			return err
		}
	}
	fmt.Printf("cluster up in %s: %s\n", time.Since(begin).Round(100*time.Millisecond), apiserverURL(c.s))
	fmt.Printf("export KUBECONFIG=%s\n", shellQuote(p.kubeconfig()))
	return ensureKubectl(p)
}

// ensureKubectl builds kubectl at the cluster's version the first time, after
// the cluster is up, so `env` can put it first on PATH: a walkthrough then
// never depends on (or differs with) a kubectl the machine may not have.
func ensureKubectl(p paths) error {
	spec, err := kubectlBuild()
	if err != nil {
		return err
	}
	_, err = ensureBuilt(p.cache, spec, os.Stdout)
	return err
}

func cmdStart(p paths, comp *component) error {
	c, st, err := openCluster(p)
	if err != nil {
		return err
	}
	noteIgnoredEnv(c.s)
	if r, ok := st.Procs[comp.name]; ok && r.alive() {
		if err := waitHealthy(c, comp, r); err != nil {
			return err
		}
		fmt.Printf("%s is already running (pid %d)\n", comp.name, r.PID)
		return nil
	}
	delete(st.Procs, comp.name)
	if r, ok := st.Procs[comp.needs]; comp.needs != "" && (!ok || !r.alive()) {
		fmt.Fprintf(os.Stderr, "note: %s is not running and %s needs it; it will not become healthy until %s is started\n", comp.needs, comp.name, comp.needs)
	}
	one := []*component{comp}
	if err := checkPorts(c, one); err != nil {
		return err
	}
	if err := prepare(c, one); err != nil {
		return err
	}
	return startComponent(c, st, comp)
}

func cmdStop(p paths, comp *component) error {
	if !fileExists(p.pidFile()) {
		fmt.Printf("%s is not running\n", comp.name)
		return nil
	}
	_, st, err := openCluster(p)
	if err != nil {
		return err
	}
	r, ok := st.Procs[comp.name]
	if !ok || !r.alive() {
		delete(st.Procs, comp.name)
		fmt.Printf("%s is not running\n", comp.name)
		return st.save(p)
	}
	if err := stopProcess(r, comp.grace()); err != nil {
		return err
	}
	delete(st.Procs, comp.name)
	fmt.Printf("stopped %s (pid %d)\n", comp.name, r.PID)
	return st.save(p)
}

// cmdDown stops exactly the processes in the pid file, newest layer first,
// and keeps certificates and etcd data unless purge.
func cmdDown(p paths, purge bool) error {
	if _, err := os.Stat(p.state); errors.Is(err, os.ErrNotExist) {
		fmt.Printf("cluster is not running (no %s)\n", p.state)
		return nil
	}
	_, st, err := openCluster(p)
	if err != nil {
		return err
	}
	stopped := 0
	for i := len(components) - 1; i >= 0; i-- {
		name := components[i].name
		r, ok := st.Procs[name]
		if !ok {
			continue
		}
		if r.alive() {
			if err := stopProcess(r, components[i].grace()); err != nil {
				return err
			}
			fmt.Printf("stopped %s (pid %d)\n", name, r.PID)
			stopped++
		}
		delete(st.Procs, name)
		if err := st.save(p); err != nil {
			return err
		}
	}
	if len(st.Procs) > 0 {
		// Only names this version does not know; they are still ours.
		for name, r := range st.Procs {
			if err := stopProcess(r, defaultStopGrace); err != nil {
				return err
			}
			delete(st.Procs, name)
		}
		if err := st.save(p); err != nil {
			return err
		}
	}
	if stopped == 0 {
		fmt.Println("cluster was not running")
	}
	if !purge {
		return nil
	}
	// Refuse to delete a directory we did not create (a mistyped
	// OPPORTUNIST_CLUSTER_DIR=$HOME must not be wiped).
	if !fileExists(p.marker()) {
		return fmt.Errorf("not purging %s: it has no %s, so it is not a cluster state dir made by hack/cluster", p.state, filepath.Base(p.marker()))
	}
	if err := os.RemoveAll(p.state); err != nil {
		return err
	}
	fmt.Printf("deleted %s\n", p.state)
	return nil
}

func cmdEnv(p paths) error {
	fmt.Printf("export KUBECONFIG=%s\n", shellQuote(p.kubeconfig()))
	fmt.Printf("export OPPORTUNIST_CLUSTER_DIR=%s\n", shellQuote(p.state))
	spec, err := kubectlBuild()
	if err != nil {
		return err
	}
	// The kubectl that `up` built, ahead of any other: same version as the
	// API server. A second eval does not stack it twice.
	dir := spec.binDir(p.cache)
	if first, _, _ := strings.Cut(os.Getenv("PATH"), ":"); first != dir {
		fmt.Printf("export PATH=%s:\"$PATH\"\n", shellQuote(dir))
	}
	return nil
}

// cmdStatus prints a line per component and fails unless all are healthy,
// so scripts can use it as a probe.
func cmdStatus(p paths) error {
	st, err := loadRunState(p)
	if err != nil {
		return err
	}
	s, err := resolveSettings(st)
	if err != nil {
		return err
	}
	noteIgnoredEnv(s)
	c := &cluster{p: p, s: s}
	healthy := 0
	for _, comp := range components {
		r, ok := st.Procs[comp.name]
		pid, state := "-", "stopped"
		switch {
		case ok && r.alive():
			pid = fmt.Sprint(r.PID)
			if err := comp.health(c); err != nil {
				state = "unhealthy: " + err.Error()
			} else {
				state = "healthy"
				healthy++
			}
		case ok:
			pid = fmt.Sprint(r.PID)
			state = "dead (see " + p.log(comp.name) + ")"
		}
		fmt.Printf("%-19s %-8s %-8s %-26s %s\n", comp.name, comp.version, pid, comp.endpoint(s), state)
	}
	fmt.Printf("state dir: %s\n", p.state)
	if healthy != len(components) {
		return fmt.Errorf("%d of %d components healthy", healthy, len(components))
	}
	return nil
}

// checkPorts fails on the first port of comps that something else holds.
// Ports of our own running components are not checked: comps are the ones
// about to start.
func checkPorts(c *cluster, comps []*component) error {
	for _, comp := range comps {
		for _, pt := range comp.ports(c.s) {
			if err := portFree(pt.num); err != nil {
				return fmt.Errorf("port %d (%s) on 127.0.0.1 is already in use by a process hack/cluster did not start; stop that process or set %s to a free port",
					pt.num, comp.binary, pt.env)
			}
		}
	}
	return nil
}

// prepare makes everything comps need to start: binaries, certificates,
// kubeconfigs, the kwok config, directories.
func prepare(c *cluster, comps []*component) error {
	for _, dir := range []string{c.p.state, c.p.etcdData(), c.p.kwokHome(), filepath.Dir(c.p.log("x"))} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(c.p.etcdData(), 0o700); err != nil { // etcd warns otherwise
		return err
	}
	if err := os.WriteFile(c.p.marker(), []byte("state dir of hack/cluster; `go run ./hack/cluster down --purge` deletes it\n"), 0o644); err != nil {
		return err
	}
	built := map[string]string{} // cache key -> bin dir
	for _, comp := range comps {
		spec, err := comp.build()
		if err != nil {
			return err
		}
		dir, ok := built[spec.key]
		if !ok {
			if dir, err = ensureBuilt(c.p.cache, spec, os.Stdout); err != nil {
				return err
			}
			built[spec.key] = dir
		}
		c.bins[comp.binary] = filepath.Join(dir, comp.binary)
	}
	pk, err := ensurePKI(c.p)
	if err != nil {
		return err
	}
	if err := writeKubeconfigs(c.p, c.s, pk); err != nil {
		return err
	}
	for _, comp := range comps {
		if comp.setup != nil {
			if err := comp.setup(c); err != nil {
				return fmt.Errorf("preparing %s: %w", comp.name, err)
			}
		}
	}
	for _, comp := range comps {
		if comp.name == "kwok" {
			return writeKwokConfig(c.p, c.s)
		}
	}
	return nil
}

// writeKwokConfig concatenates upstream's Stage and metrics files, read from
// the module cache, and kwok's own options into the config kwok is started
// with.
func writeKwokConfig(p paths, s settings) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return errors.New("the go command is not in PATH; it is needed to find kwok's stage files")
	}
	mod, err := goModDownload(goBin, "sigs.k8s.io/kwok", kwokVersion)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	for _, f := range kwokConfigFiles {
		data, err := os.ReadFile(filepath.Join(kustomizeDir(mod.Dir), f))
		if err != nil {
			return fmt.Errorf("kwok config file: %v", err)
		}
		fmt.Fprintf(&b, "---\n# sigs.k8s.io/kwok@%s kustomize/%s\n", kwokVersion, f)
		b.Write(bytes.TrimRight(data, "\n"))
		b.WriteString("\n")
	}
	b.WriteString(kwokOptions(s))
	return writeFileAtomic(p.kwokConfig(), b.Bytes(), 0o644)
}

// statusByTestAnnotation marks a pod whose status a test writes itself, as
// its kubelet would. The scale test writes its 150,000 pre-bound pods'
// Running status with each pod's create, where kwok would patch each one
// again later, racing the test's write.
const statusByTestAnnotation = "e2e.opportunist.io/status-by-test"

// kwokOptions is the KwokConfiguration: kwok disregards the pods carrying
// statusByTestAnnotation at its watch, before it copies them and matches
// them against its Stages (a JSON round trip of each pod: in the fourth
// 5,000-node run, 40 % of kwok's CPU while the bulk pods went in, and most
// of its garbage), and works on more at once when settings ask for it.
// kwok v0.8.0 defaults only the configuration it makes itself when given
// none, so upstream's defaults are written out (a zero lease parallelism is
// an error; the command-line flags still override these).
func kwokOptions(s settings) string {
	parallelism := 4
	if s.KwokParallelism > 0 {
		parallelism = s.KwokParallelism // OPPORTUNIST_KWOK_PARALLELISM
	}
	var b strings.Builder
	fmt.Fprintf(&b, "---\napiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions:\n")
	fmt.Fprintf(&b, "  disregardStatusWithAnnotationSelector: %s\n", statusByTestAnnotation)
	for _, o := range []string{"podPlayStageParallelism", "nodePlayStageParallelism", "nodeLeaseParallelism"} {
		fmt.Fprintf(&b, "  %s: %d\n", o, parallelism)
	}
	b.WriteString("  podsOnNodeSyncParallelism: 1\n  enablePodsOnNodeSyncListPager: true\n  enableDebuggingHandlers: true\n  enableProfilingHandler: true\n")
	return b.String()
}

// startComponent starts comp, records it in the pid file at once (so a
// failed wait still leaves it for `down`), and waits until it is healthy.
func startComponent(c *cluster, st *runState, comp *component) error {
	fmt.Printf("starting %s %s on %s...\n", comp.binary, comp.version, comp.endpoint(c.s))
	begin := time.Now()
	var env []string
	if comp.env != nil {
		env = comp.env(c)
	}
	r, err := startProcess(c.bins[comp.binary], comp.args(c), env, c.p.log(comp.name))
	if err != nil {
		return err
	}
	st.Procs[comp.name] = r
	if err := st.save(c.p); err != nil {
		return err
	}
	if err := waitHealthy(c, comp, r); err != nil {
		return err
	}
	fmt.Printf("  %s healthy in %s (pid %d, log %s)\n", comp.name, time.Since(begin).Round(100*time.Millisecond), r.PID, c.p.log(comp.name))
	return nil
}

func componentNames(comps []*component) string {
	var n []string
	for _, c := range comps {
		n = append(n, c.name)
	}
	return strings.Join(n, ", ")
}
