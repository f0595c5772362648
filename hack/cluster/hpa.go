package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// hpaFlags are HPA controller flags of the kube-controller-manager that a
// test sets for itself (`hpa --sync-period 10s --downscale-stabilization
// 30s`) and restores after (`hpa --reset`). They live in the pid file, so
// a later `start controller-manager` keeps them, and die with the cluster:
// the next `up` starts with the defaults.
type hpaFlags struct {
	SyncPeriod             string `json:"syncPeriod,omitempty"`
	DownscaleStabilization string `json:"downscaleStabilization,omitempty"`
}

// parseHPAFlags reads the arguments of `hpa`: nil flags for --reset.
func parseHPAFlags(args []string) (*hpaFlags, error) {
	fs := flag.NewFlagSet("hpa", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sync := fs.Duration("sync-period", 0, "")
	down := fs.Duration("downscale-stabilization", -1, "")
	reset := fs.Bool("reset", false, "")
	const usage = "usage: hpa [--sync-period DURATION] [--downscale-stabilization DURATION] | hpa --reset"
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%v; %s", err, usage)
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments %q; %s", strings.Join(fs.Args(), " "), usage)
	case *reset && (*sync != 0 || *down >= 0):
		return nil, errors.New("--reset restores the defaults and takes no other flag; " + usage)
	case *reset:
		return nil, nil
	case *sync == 0 && *down < 0:
		return nil, errors.New("nothing to set; " + usage)
	case *sync < 0:
		return nil, fmt.Errorf("--sync-period %s is not positive", *sync)
	}
	f := &hpaFlags{}
	if *sync > 0 {
		f.SyncPeriod = sync.String()
	}
	if *down >= 0 {
		f.DownscaleStabilization = down.String()
	}
	return f, nil
}

// hpaArgs are the controller-manager's HPA flags: the cluster's sync period
// (OPPORTUNIST_HPA_SYNC_PERIOD), unless an `hpa` command overrode it.
func hpaArgs(s settings, f *hpaFlags) []string {
	sync := s.HPASyncPeriod
	if f != nil && f.SyncPeriod != "" {
		sync = f.SyncPeriod
	}
	args := []string{"--horizontal-pod-autoscaler-sync-period=" + sync}
	if f != nil && f.DownscaleStabilization != "" {
		args = append(args, "--horizontal-pod-autoscaler-downscale-stabilization="+f.DownscaleStabilization)
	}
	return args
}

// cmdHPA records the HPA flags (nil: the defaults) and restarts the
// controller-manager with them, waiting until it is healthy.
func cmdHPA(p paths, args []string) error {
	f, err := parseHPAFlags(args)
	if err != nil {
		return err
	}
	c, st, err := openCluster(p)
	if err != nil {
		return err
	}
	if !st.anyAlive() {
		return errors.New("the cluster is not running: `up` first")
	}
	comp, err := findComponent("controller-manager")
	if err != nil {
		return err
	}
	st.HPA, c.hpa = f, f
	if r, ok := st.Procs[comp.name]; ok && r.alive() {
		if err := stopProcess(r, comp.grace()); err != nil {
			return err
		}
		fmt.Printf("stopped %s (pid %d)\n", comp.name, r.PID)
	}
	delete(st.Procs, comp.name)
	if err := st.save(p); err != nil {
		return err
	}
	// The process reads as gone (its main thread a zombie) a moment before
	// its other threads have closed its listening socket.
	for _, pt := range comp.ports(c.s) {
		for deadline := time.Now().Add(5 * time.Second); portFree(pt.num) != nil && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
	}
	one := []*component{comp}
	if err := checkPorts(c, one); err != nil {
		return err
	}
	if err := prepare(c, one); err != nil {
		return err
	}
	begin := time.Now()
	if err := startComponent(c, st, comp); err != nil {
		return err
	}
	fmt.Printf("controller-manager runs with %s (restarted in %s)\n", strings.Join(hpaArgs(c.s, f), " "), time.Since(begin).Round(100*time.Millisecond))
	return nil
}
