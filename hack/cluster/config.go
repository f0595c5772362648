package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Pinned versions. Changing one changes the cache key, so the next `up`
// builds the new version next to the old one.
const (
	k8sVersion  = "v1.37.2"
	etcdVersion = "v3.6.16"
	kwokVersion = "v0.8.0"
	// KEDA is not part of the cluster: `keda` builds it for the e2e tests
	// that run it beside opportunist (test/e2e/keda_test.go).
	kedaVersion = "v2.21.0"
	// metrics-server is not part of the cluster either: `metrics-server`
	// builds it for the reclaim tests (test/e2e/reclaim_test.go).
	metricsServerVersion = "v0.8.0"
)

// Fixed cluster addressing. The API server certificate carries the first
// service IP, so these are not configurable.
const (
	serviceCIDR          = "10.0.0.0/24"
	podCIDR              = "10.244.0.0/16" // pod IPs kwok hands out
	kubernetesSvcIP      = "10.0.0.1"
	serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
	// kwok manages only nodes carrying this annotation, so tests can mix
	// kwok nodes with nodes they fake themselves.
	kwokNodeSelector = "kwok.x-k8s.io/node=fake"
)

// settings are what a developer may override through the environment. A
// running cluster keeps the settings it was started with (they are saved in
// the pid file), so `start`/`stop`/`status` agree with the `up` that made it.
type settings struct {
	EtcdPort              int    `json:"etcdPort"`
	EtcdPeerPort          int    `json:"etcdPeerPort"`
	APIServerPort         int    `json:"apiserverPort"`
	ControllerManagerPort int    `json:"controllerManagerPort"`
	SchedulerPort         int    `json:"schedulerPort"`
	KwokPort              int    `json:"kwokPort"`
	HPASyncPeriod         string `json:"hpaSyncPeriod"`
	// KubeAPIQPS, when set, is the client QPS of the controller-manager and
	// the scheduler (burst twice that); 0 keeps their defaults (20 and 50).
	KubeAPIQPS int `json:"kubeAPIQPS,omitempty"`
	// The rest are for big clusters (hack/e2e-scale.sh sets them); 0 keeps
	// each component's default.
	// EtcdQuotaBytes is etcd's --quota-backend-bytes (default 2 GiB).
	EtcdQuotaBytes int64 `json:"etcdQuotaBytes,omitempty"`
	// MaxRequestsInflight is the API server's --max-requests-inflight
	// (default 400); --max-mutating-requests-inflight gets half (default 200).
	MaxRequestsInflight int `json:"maxRequestsInflight,omitempty"`
	// KwokParallelism is how many pod and node stages and node leases kwok
	// works on at once (its default is 4 of each).
	KwokParallelism int `json:"kwokParallelism,omitempty"`
	// KwokNodeLeaseSeconds is the duration kwok sets on each node's Lease
	// (default 40; it renews at a quarter of it), and the controller-manager's
	// --node-monitor-grace-period to match: 5,000 leases renewed every 10 s
	// are 500 writes a second, which on 2 cores left leases lapsing and
	// nodes marked NotReady in the first 5,000-node run (docs/scale.md).
	KwokNodeLeaseSeconds int `json:"kwokNodeLeaseSeconds,omitempty"`
	// SchedulerNodesToScorePercent is the scheduler's
	// percentageOfNodesToScore (0: its adaptive default, 10 % at 5,000
	// nodes): how many feasible nodes it looks for, and scores, per pod.
	// Kubernetes' scheduler performance tuning guide lowers it for large
	// clusters; on 2 cores it bounds how fast 20,000 worker pods bind.
	SchedulerNodesToScorePercent int `json:"schedulerNodesToScorePercent,omitempty"`
	// SchedulerNoDefaultSpreading turns off the scheduler's system-default
	// pod topology spreading (a soft spread by zone and by node of every
	// pod a ReplicaSet or the like owns): for each pod it places, its
	// PreScore counts every pod on every node, 79 % of the scheduler's CPU
	// while the scale test's workers filled 2,000 nodes (docs/scale.md).
	SchedulerNoDefaultSpreading bool `json:"schedulerNoDefaultSpreading,omitempty"`
}

// portEnv names the environment variable of each port setting, for both
// reading and the advice printed when a port is taken.
var portEnv = struct {
	etcd, etcdPeer, apiserver, controllerManager, scheduler, kwok string
}{
	etcd:              "OPPORTUNIST_ETCD_PORT",
	etcdPeer:          "OPPORTUNIST_ETCD_PEER_PORT",
	apiserver:         "OPPORTUNIST_APISERVER_PORT",
	controllerManager: "OPPORTUNIST_CONTROLLER_MANAGER_PORT",
	scheduler:         "OPPORTUNIST_SCHEDULER_PORT",
	kwok:              "OPPORTUNIST_KWOK_PORT",
}

const hpaSyncEnv = "OPPORTUNIST_HPA_SYNC_PERIOD"

// kubeAPIQPSEnv raises the controller-manager's and scheduler's client rate
// limits, which bound how fast ReplicaSets create pods and pods get bound:
// the scale test needs tens of thousands of pods in minutes.
const kubeAPIQPSEnv = "OPPORTUNIST_KUBE_API_QPS"

// Settings for a cluster of thousands of nodes and 100,000s of pods (the
// scale test), off by default.
const (
	etcdQuotaEnv    = "OPPORTUNIST_ETCD_QUOTA_BACKEND_BYTES"
	maxInflightEnv  = "OPPORTUNIST_APISERVER_MAX_REQUESTS_INFLIGHT"
	kwokParallelEnv = "OPPORTUNIST_KWOK_PARALLELISM"
	kwokLeaseEnv    = "OPPORTUNIST_KWOK_NODE_LEASE_SECONDS"
	nodesToScoreEnv = "OPPORTUNIST_SCHEDULER_PERCENTAGE_OF_NODES_TO_SCORE"
	spreadingEnv    = "OPPORTUNIST_SCHEDULER_DEFAULT_SPREADING"
)

// settingsFromEnv reads the overridable settings, falling back to ports
// chosen away from the usual defaults (2379, 6443, 10257, ...) so a
// developer's own cluster does not collide with this one.
func settingsFromEnv() (settings, error) {
	var s settings
	var err error
	ports := []struct {
		dst *int
		env string
		def int
	}{
		{&s.EtcdPort, portEnv.etcd, 23791},
		{&s.EtcdPeerPort, portEnv.etcdPeer, 23792},
		{&s.APIServerPort, portEnv.apiserver, 26443},
		{&s.ControllerManagerPort, portEnv.controllerManager, 26257},
		{&s.SchedulerPort, portEnv.scheduler, 26259},
		{&s.KwokPort, portEnv.kwok, 26080},
	}
	for _, p := range ports {
		if *p.dst, err = envPort(p.env, p.def); err != nil {
			return settings{}, err
		}
	}
	s.HPASyncPeriod = "2s"
	if v := os.Getenv(hpaSyncEnv); v != "" {
		if _, err := time.ParseDuration(v); err != nil {
			return settings{}, fmt.Errorf("%s=%q is not a duration (e.g. 15s)", hpaSyncEnv, v)
		}
		s.HPASyncPeriod = v
	}
	if v := os.Getenv(kubeAPIQPSEnv); v != "" {
		q, err := strconv.Atoi(v)
		if err != nil || q < 1 {
			return settings{}, fmt.Errorf("%s=%q is not a positive number of queries per second", kubeAPIQPSEnv, v)
		}
		s.KubeAPIQPS = q
	}
	if v := os.Getenv(etcdQuotaEnv); v != "" {
		q, err := strconv.ParseInt(v, 10, 64)
		// Below etcd's default (2 GiB) would only make a full cluster sooner.
		if err != nil || q < 1<<30 {
			return settings{}, fmt.Errorf("%s=%q: want a number of bytes of at least 1073741824 (1 GiB), e.g. 8589934592 (8 GiB)", etcdQuotaEnv, v)
		}
		s.EtcdQuotaBytes = q
	}
	switch v := os.Getenv(spreadingEnv); v {
	case "", "on":
	case "off":
		s.SchedulerNoDefaultSpreading = true
	default:
		return settings{}, fmt.Errorf("%s=%q: want on (the scheduler's default) or off", spreadingEnv, v)
	}
	for _, e := range []struct {
		env      string
		dst      *int
		min, max int // max 0: none
	}{{maxInflightEnv, &s.MaxRequestsInflight, 2, 0}, {kwokParallelEnv, &s.KwokParallelism, 1, 0}, {kwokLeaseEnv, &s.KwokNodeLeaseSeconds, 10, 0}, {nodesToScoreEnv, &s.SchedulerNodesToScorePercent, 1, 100}} {
		v := os.Getenv(e.env)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < e.min {
			return settings{}, fmt.Errorf("%s=%q: want a whole number of at least %d", e.env, v, e.min)
		}
		if e.max > 0 && n > e.max {
			return settings{}, fmt.Errorf("%s=%q: want a whole number from %d to %d", e.env, v, e.min, e.max)
		}
		*e.dst = n
	}
	return s, nil
}

func envPort(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	p, err := strconv.Atoi(v)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%s=%q is not a port number", name, v)
	}
	return p, nil
}

// paths locates the binary cache (shared by all clusters of this user) and
// the state dir (certificates, etcd data, logs, pid file of one cluster).
type paths struct {
	cache string
	state string
}

func pathsFromEnv() (paths, error) {
	cache := os.Getenv("OPPORTUNIST_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return paths{}, fmt.Errorf("cannot find a cache dir: set OPPORTUNIST_CACHE (%v)", err)
			}
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "opportunist")
	}
	state := os.Getenv("OPPORTUNIST_CLUSTER_DIR")
	if state == "" {
		state = filepath.Join(os.TempDir(), "opportunist-cluster")
	}
	var err error
	if cache, err = filepath.Abs(cache); err != nil {
		return paths{}, err
	}
	if state, err = filepath.Abs(state); err != nil {
		return paths{}, err
	}
	return paths{cache: cache, state: state}, nil
}

func (p paths) pki(name string) string { return filepath.Join(p.state, "pki", name) }
func (p paths) log(comp string) string { return filepath.Join(p.state, "logs", comp+".log") }
func (p paths) pidFile() string        { return filepath.Join(p.state, "pids.json") }
func (p paths) lockFile() string       { return filepath.Join(p.state, ".lock") }
func (p paths) marker() string         { return filepath.Join(p.state, ".opportunist-cluster") }
func (p paths) kubeconfig() string     { return filepath.Join(p.state, "kubeconfig") }
func (p paths) etcdData() string       { return filepath.Join(p.state, "etcd") }
func (p paths) kwokConfig() string     { return filepath.Join(p.state, "kwok-stages.yaml") }
func (p paths) kwokHome() string       { return filepath.Join(p.state, "kwok-home") }
func (p paths) auditPolicy() string    { return filepath.Join(p.state, "audit-policy.yaml") }
func (p paths) schedulerConfig() string {
	return filepath.Join(p.state, "scheduler-config.yaml")
}

// componentKubeconfig is the kubeconfig a control-plane component uses for
// its own identity (e.g. system:kube-scheduler).
func (p paths) componentKubeconfig(comp string) string {
	return filepath.Join(p.state, comp+".kubeconfig")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
