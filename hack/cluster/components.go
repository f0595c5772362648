package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cluster is what a component needs to be started or probed.
type cluster struct {
	p    paths
	s    settings
	hpa  *hpaFlags         // the pid file's HPA flags, if any
	bins map[string]string // binary name -> path, filled by prepare
}

// port is one TCP port a component listens on, with the variable that moves
// it.
type port struct {
	num int
	env string
}

// component is one control-plane process.
type component struct {
	name     string // what `start`/`stop` take
	needs    string // the component it talks to, if any
	binary   string
	version  string
	build    func() (buildSpec, error)
	ports    func(s settings) []port
	args     func(c *cluster) []string
	env      func(c *cluster) []string
	health   func(c *cluster) error
	endpoint func(s settings) string
	// timeout bounds the wait for health after a start.
	timeout time.Duration
	// stopGrace is how long `stop`/`down` wait after SIGTERM before SIGKILL.
	stopGrace time.Duration
	// setup, when set, writes files the component reads at start.
	setup func(c *cluster) error
}

// components in start order; `down` stops them in reverse.
var components = []*component{
	{
		name: "etcd", binary: "etcd", version: etcdVersion,
		build: func() (buildSpec, error) { return etcdBuild(), nil },
		ports: func(s settings) []port {
			return []port{{s.EtcdPort, portEnv.etcd}, {s.EtcdPeerPort, portEnv.etcdPeer}}
		},
		args:     etcdArgs,
		health:   etcdHealth,
		endpoint: func(s settings) string { return fmt.Sprintf("http://127.0.0.1:%d", s.EtcdPort) },
		timeout:  60 * time.Second,
	},
	{
		name: "apiserver", needs: "etcd", binary: "kube-apiserver", version: k8sVersion,
		build:    k8sBuild,
		ports:    func(s settings) []port { return []port{{s.APIServerPort, portEnv.apiserver}} },
		args:     apiserverArgs,
		setup:    writeAuditPolicy,
		health:   apiserverHealth,
		endpoint: func(s settings) string { return apiserverURL(s) },
		// The first start bootstraps RBAC and priority levels into etcd.
		timeout: 120 * time.Second,
		// On SIGTERM it stops listening at once but then waits up to
		// --request-timeout (60s) for clients' open watches to end. It keeps
		// no state of its own, so waiting that out only slows tests down.
		stopGrace: 5 * time.Second,
	},
	{
		name: "controller-manager", needs: "apiserver", binary: "kube-controller-manager", version: k8sVersion,
		build: k8sBuild,
		ports: func(s settings) []port {
			return []port{{s.ControllerManagerPort, portEnv.controllerManager}}
		},
		args:     controllerManagerArgs,
		health:   func(c *cluster) error { return secureHealthz(c, c.s.ControllerManagerPort) },
		endpoint: func(s settings) string { return fmt.Sprintf("https://127.0.0.1:%d", s.ControllerManagerPort) },
		timeout:  60 * time.Second,
	},
	{
		name: "scheduler", needs: "apiserver", binary: "kube-scheduler", version: k8sVersion,
		build:    k8sBuild,
		ports:    func(s settings) []port { return []port{{s.SchedulerPort, portEnv.scheduler}} },
		args:     schedulerArgs,
		setup:    writeSchedulerConfig,
		health:   func(c *cluster) error { return secureHealthz(c, c.s.SchedulerPort) },
		endpoint: func(s settings) string { return fmt.Sprintf("https://127.0.0.1:%d", s.SchedulerPort) },
		timeout:  60 * time.Second,
	},
	{
		name: "kwok", needs: "apiserver", binary: "kwok", version: kwokVersion,
		build: func() (buildSpec, error) { return kwokBuild(), nil },
		ports: func(s settings) []port { return []port{{s.KwokPort, portEnv.kwok}} },
		args:  kwokArgs,
		// kwok also loads ~/.kwok/kwok.yaml when it exists; a private HOME
		// keeps a developer's own kwok config out of this cluster.
		env:      func(c *cluster) []string { return []string{"HOME=" + c.p.kwokHome()} },
		health:   kwokHealth,
		endpoint: func(s settings) string { return fmt.Sprintf("http://127.0.0.1:%d", s.KwokPort) },
		timeout:  60 * time.Second,
	},
}

// defaultStopGrace is how long a component gets to exit on SIGTERM before
// SIGKILL, unless it sets its own.
const defaultStopGrace = 20 * time.Second

func (comp *component) grace() time.Duration {
	if comp.stopGrace > 0 {
		return comp.stopGrace
	}
	return defaultStopGrace
}

// findComponent resolves a name given on the command line; the binary name
// (kube-apiserver) works too.
func findComponent(name string) (*component, error) {
	var names []string
	for _, c := range components {
		if name == c.name || name == c.binary {
			return c, nil
		}
		names = append(names, c.name)
	}
	return nil, fmt.Errorf("unknown component %q (want one of %s)", name, strings.Join(names, ", "))
}

func apiserverURL(s settings) string { return fmt.Sprintf("https://127.0.0.1:%d", s.APIServerPort) }

func etcdArgs(c *cluster) []string {
	client := fmt.Sprintf("http://127.0.0.1:%d", c.s.EtcdPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", c.s.EtcdPeerPort)
	args := []string{
		"--name=opportunist",
		"--data-dir=" + c.p.etcdData(),
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=opportunist=" + peer,
		// A throw-away test cluster does not need its writes on disk before
		// they are acknowledged, and fsync is the slow part on CI disks.
		// Data still survives a stop of etcd, just not a power cut.
		"--unsafe-no-fsync",
		"--log-level=warn",
	}
	if c.s.EtcdQuotaBytes > 0 {
		args = append(args, "--quota-backend-bytes="+strconv.FormatInt(c.s.EtcdQuotaBytes, 10))
	}
	return args
}

func apiserverArgs(c *cluster) []string {
	pki := c.p.pki
	args := []string{
		"--advertise-address=127.0.0.1",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.s.APIServerPort),
		"--etcd-servers=" + fmt.Sprintf("http://127.0.0.1:%d", c.s.EtcdPort),
		// The endpoint reconciler refuses a loopback advertise address; with
		// none, the default/kubernetes Service simply has no endpoints.
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range=" + serviceCIDR,
		"--tls-cert-file=" + pki("apiserver.crt"),
		"--tls-private-key-file=" + pki("apiserver.key"),
		"--client-ca-file=" + pki("ca.crt"),
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		"--service-account-issuer=" + serviceAccountIssuer,
		"--service-account-key-file=" + pki("sa.pub"),
		"--service-account-signing-key-file=" + pki("sa.key"),
		// API aggregation (metrics.k8s.io). --enable-aggregator-routing is
		// deliberately not set: the aggregator then dials the APIService's
		// Service by its name, so an ExternalName Service pointing at
		// localhost reaches a metrics server running as a local process.
		"--requestheader-client-ca-file=" + pki("front-proxy-ca.crt"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + pki("front-proxy-client.crt"),
		"--proxy-client-key-file=" + pki("front-proxy-client.key"),
		"--audit-policy-file=" + c.p.auditPolicy(),
		"--audit-log-path=" + c.p.log("audit"),
		"--audit-log-format=json",
	}
	if n := c.s.MaxRequestsInflight; n > 0 {
		// With priority and fairness (on by default) the two are summed
		// into the server's total concurrency, shared by its priority levels.
		args = append(args, "--max-requests-inflight="+strconv.Itoa(n), "--max-mutating-requests-inflight="+strconv.Itoa(n/2))
	}
	return args
}

// auditPolicy logs, with their request bodies, the writes that can change a
// workload's replica count, every request of the users in the group
// auditedGroup (without bodies), and the pod creates in namespace
// scale-yield (without bodies), and nothing else, so the log stays small.
// Tests read it to check who scaled what, and to which count, how many
// requests a client sends (test/e2e/apiload_test.go), and when the scale
// test's paid pods were created (test/e2e/scale_test.go).
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Request
  verbs: [update, patch]
  resources:
  - group: apps
    resources: [deployments, deployments/scale, statefulsets, statefulsets/scale, replicasets, replicasets/scale]
- level: Metadata
  userGroups: ["` + auditedGroup + `"]
- level: Metadata
  verbs: [create]
  namespaces: [scale-yield]
  resources:
  - group: ""
    resources: [pods]
- level: None
`

// auditedGroup: every request of its users is in the audit log.
const auditedGroup = "opportunist-e2e:audited"

func writeAuditPolicy(c *cluster) error {
	return writeFileAtomic(c.p.auditPolicy(), []byte(auditPolicy), 0o644)
}

// delegatedAuthArgs let a component check requests to its secure port
// against the API server, so the admin certificate works on /metrics too.
func delegatedAuthArgs(kubeconfig string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--leader-elect=false",
	}
}

func controllerManagerArgs(c *cluster) []string {
	pki := c.p.pki
	return append(append(delegatedAuthArgs(c.p.componentKubeconfig("controller-manager")),
		"--secure-port="+strconv.Itoa(c.s.ControllerManagerPort),
		"--tls-cert-file="+pki("controller-manager-serving.crt"),
		"--tls-private-key-file="+pki("controller-manager-serving.key"),
		// No kubelets and no CIDR allocation or volumes to attach: those
		// controllers would only log errors about kwok nodes.
		"--controllers=*,-node-ipam-controller,-persistentvolume-binder-controller,-persistentvolume-attach-detach-controller",
		"--use-service-account-credentials=true",
		"--root-ca-file="+pki("ca.crt"),
		"--service-account-private-key-file="+pki("sa.key"),
		"--cluster-signing-cert-file="+pki("ca.crt"),
		"--cluster-signing-key-file="+pki("ca.key"),
	), append(append(hpaArgs(c.s, c.hpa), kubeAPIQPSArgs(c.s)...), nodeMonitorArgs(c.s)...)...)
}

// nodeMonitorArgs give the node lifecycle controller as long as kwok's node
// leases last (OPPORTUNIST_KWOK_NODE_LEASE_SECONDS) before it marks a node
// NotReady, as its default 40 s matches kwok's default 40 s leases.
func nodeMonitorArgs(s settings) []string {
	if s.KwokNodeLeaseSeconds == 0 {
		return nil
	}
	return []string{"--node-monitor-grace-period=" + strconv.Itoa(s.KwokNodeLeaseSeconds) + "s"}
}

func schedulerArgs(c *cluster) []string {
	pki := c.p.pki
	args := append(delegatedAuthArgs(c.p.componentKubeconfig("scheduler")),
		"--secure-port="+strconv.Itoa(c.s.SchedulerPort),
		"--tls-cert-file="+pki("scheduler-serving.crt"),
		"--tls-private-key-file="+pki("scheduler-serving.key"),
	)
	if schedulerNeedsConfig(c.s) {
		// With --config the scheduler ignores --kubeconfig and the QPS
		// flags: the file carries them.
		return append(args, "--config="+c.p.schedulerConfig())
	}
	return append(args, kubeAPIQPSArgs(c.s)...)
}

// schedulerNeedsConfig: percentageOfNodesToScore and the plugins' args have
// no flags; without those settings the scheduler runs on flags alone.
func schedulerNeedsConfig(s settings) bool {
	return s.SchedulerNodesToScorePercent > 0 || s.SchedulerNoDefaultSpreading
}

// writeSchedulerConfig writes the KubeSchedulerConfiguration the scheduler
// settings need.
func writeSchedulerConfig(c *cluster) error {
	if !schedulerNeedsConfig(c.s) {
		return nil
	}
	return writeFileAtomic(c.p.schedulerConfig(), []byte(schedulerConfig(c)), 0o644)
}

func schedulerConfig(c *cluster) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n")
	if c.s.SchedulerNodesToScorePercent > 0 {
		fmt.Fprintf(&b, "percentageOfNodesToScore: %d\n", c.s.SchedulerNodesToScorePercent)
	}
	if c.s.SchedulerNoDefaultSpreading {
		// defaultingType List with no defaultConstraints: a pod spreads
		// only by the constraints it has itself.
		fmt.Fprintf(&b, "profiles:\n- schedulerName: default-scheduler\n  pluginConfig:\n  - name: PodTopologySpread\n    args:\n      defaultingType: List\n      defaultConstraints: []\n")
	}
	fmt.Fprintf(&b, "leaderElection:\n  leaderElect: false\n")
	fmt.Fprintf(&b, "clientConnection:\n  kubeconfig: %q\n", c.p.componentKubeconfig("scheduler"))
	if c.s.KubeAPIQPS > 0 {
		fmt.Fprintf(&b, "  qps: %d\n  burst: %d\n", c.s.KubeAPIQPS, 2*c.s.KubeAPIQPS)
	}
	return b.String()
}

// kubeAPIQPSArgs raise a component's client rate limit when
// OPPORTUNIST_KUBE_API_QPS asks for it.
func kubeAPIQPSArgs(s settings) []string {
	if s.KubeAPIQPS == 0 {
		return nil
	}
	return []string{"--kube-api-qps=" + strconv.Itoa(s.KubeAPIQPS), "--kube-api-burst=" + strconv.Itoa(2*s.KubeAPIQPS)}
}

func kwokArgs(c *cluster) []string {
	lease := 40
	if c.s.KwokNodeLeaseSeconds > 0 {
		lease = c.s.KwokNodeLeaseSeconds // OPPORTUNIST_KWOK_NODE_LEASE_SECONDS, for big clusters
	}
	return []string{
		"--kubeconfig=" + c.p.kubeconfig(),
		"--config=" + c.p.kwokConfig(),
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + kwokNodeSelector,
		"--node-ip=127.0.0.1",
		"--server-address=" + fmt.Sprintf("127.0.0.1:%d", c.s.KwokPort),
		// The flag's default is 0, which turns node leases off: the
		// node-lifecycle-controller then marks kwok nodes Unknown every
		// 50s and node-initialize flips them back. 40s is kubelet's value.
		"--node-lease-duration-seconds=" + strconv.Itoa(lease),
		// kwok's default pod CIDR, 10.0.0.0/24, is our service range.
		"--cidr=" + podCIDR,
	}
}

// kwokConfigFiles are the upstream files (relative to the kwok module's
// kustomize/) that make kwok act like a fast kubelet: nodes become Ready and
// keep a lease, pods become Ready, finish and go away; and like a kubelet's
// resource-metrics endpoint, which metrics-server scrapes (the reclaim
// tests): each pod's CPU and memory use is the quantity in its annotation
// kwok.x-k8s.io/usage-cpu / usage-memory (1m and 1Mi without), served for a
// node at /metrics/nodes/<node>/metrics/resource on kwok's server. The metrics
// cost nothing until scraped (kwok's pod cache is filled lazily).
var kwokConfigFiles = []string{
	"stage/node/fast/node-initialize.yaml",
	"stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
	"stage/pod/fast/pod-ready.yaml",
	"stage/pod/fast/pod-complete.yaml",
	"stage/pod/fast/pod-delete.yaml",
	"metrics/resource/metrics-resource.yaml",
	"metrics/usage/usage-from-annotation.yaml",
}

func kustomizeDir(kwokModuleDir string) string {
	return filepath.Join(kwokModuleDir, "kustomize")
}
