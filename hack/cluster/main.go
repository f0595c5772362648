// Command cluster runs a real Kubernetes control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler) plus kwok on
// 127.0.0.1 for end-to-end tests, from binaries it builds from the Go module
// proxy at pinned versions.
//
//	go run ./hack/cluster up                  build if needed, start, wait until healthy
//	go run ./hack/cluster down [--purge]      stop what up started (--purge: delete the state dir)
//	go run ./hack/cluster env                 print export lines for a shell
//	go run ./hack/cluster status              print each component's pid and health
//	go run ./hack/cluster stop|start|restart COMPONENT
//	go run ./hack/cluster hpa --sync-period 10s --downscale-stabilization 30s
//	                                          restart the controller-manager with these HPA flags
//	go run ./hack/cluster hpa --reset         ... with the defaults again
//	eval "$(go run ./hack/cluster keda)"      build KEDA's operator and metrics server if
//	                                          needed; export KEDA_BIN and KEDA_CRDS
//	eval "$(go run ./hack/cluster metrics-server)"
//	                                          build metrics-server if needed; export METRICS_SERVER_BIN
//
// See README.md in this directory for caches, ports and variables.
package main

import (
	"fmt"
	"os"
	"strings"
)

const usage = `usage: go run ./hack/cluster COMMAND

commands:
  up                  build binaries if needed, start the cluster, wait until healthy
  down [--purge]      stop the cluster; --purge also deletes the state dir
  env                 print export lines: KUBECONFIG, and PATH with the built kubectl first
  status              print each component with pid and health (exit 1 unless all healthy)
  stop COMPONENT      stop one component
  start COMPONENT     start one component and wait until it is healthy
  restart COMPONENT   stop, then start one component
  hpa [--sync-period D] [--downscale-stabilization D]
                      restart the controller-manager with these HPA controller flags
                      (kept until --reset or down)
  hpa --reset         restart the controller-manager with the default HPA flags
  keda                build KEDA's operator (keda) and metrics server (keda-adapter)
                      if not cached (progress on stderr); print export lines:
                      KEDA_BIN (their directory), KEDA_CRDS (KEDA's CRDs)
  metrics-server      build metrics-server if not cached (progress on stderr); print
                      an export line: METRICS_SERVER_BIN (its directory)

components: etcd, apiserver, controller-manager, scheduler, kwok
`

// detailedError is an error whose one-line message is followed by more
// context, such as the tail of a log file.
type detailedError struct {
	msg    string
	detail string
}

func (e *detailedError) Error() string { return e.msg }

func main() {
	err := run(os.Args[1:])
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "hack/cluster: "+err.Error())
	if d, ok := err.(*detailedError); ok && d.detail != "" {
		for _, line := range strings.Split(d.detail, "\n") {
			fmt.Fprintln(os.Stderr, "    "+line)
		}
	}
	os.Exit(1)
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("missing command")
	}
	p, err := pathsFromEnv()
	if err != nil {
		return err
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "up":
		return noArgs(cmd, rest, func() error { return cmdUp(p) })
	case "down":
		switch {
		case len(rest) == 0:
			return cmdDown(p, false)
		case len(rest) == 1 && (rest[0] == "--purge" || rest[0] == "-purge"):
			return cmdDown(p, true)
		}
		return fmt.Errorf("usage: down [--purge]")
	case "env":
		return noArgs(cmd, rest, func() error { return cmdEnv(p) })
	case "status":
		return noArgs(cmd, rest, func() error { return cmdStatus(p) })
	case "start", "stop", "restart":
		if len(rest) != 1 {
			return fmt.Errorf("usage: %s COMPONENT (etcd, apiserver, controller-manager, scheduler, kwok)", cmd)
		}
		comp, err := findComponent(rest[0])
		if err != nil {
			return err
		}
		switch cmd {
		case "start":
			return cmdStart(p, comp)
		case "stop":
			return cmdStop(p, comp)
		}
		if err := cmdStop(p, comp); err != nil {
			return err
		}
		return cmdStart(p, comp)
	case "hpa":
		return cmdHPA(p, rest)
	case "keda":
		return noArgs(cmd, rest, func() error { return cmdKEDA(p) })
	case "metrics-server":
		return noArgs(cmd, rest, func() error { return cmdMetricsServer(p) })
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func noArgs(cmd string, rest []string, f func() error) error {
	if len(rest) > 0 {
		return fmt.Errorf("%s takes no arguments, got %q", cmd, strings.Join(rest, " "))
	}
	return f()
}
