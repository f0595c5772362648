package main

import (
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestParseGoMod(t *testing.T) {
	text := `// generated, do not edit
module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

godebug (
	x509negativeserial = 1 // comment
)

require (
	k8s.io/api v0.0.0
	github.com/foo/bar v1.2.3 // indirect
	k8s.io/apimachinery v0.0.0
)

require go.etcd.io/etcd/api/v3 v3.6.0

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/apimachinery => ./staging/src/k8s.io/apimachinery // trailing comment
	github.com/forked/lib v1.0.0 => github.com/me/lib v1.0.1
)

replace go.etcd.io/etcd/api/v3 v3.6.0 => ../api
replace go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY

exclude github.com/go-chi/chi/v5 v5.2.3
`
	got, err := parseGoMod(text)
	if err != nil {
		t.Fatal(err)
	}
	want := goModInfo{
		Go:      "1.26.0",
		Godebug: []string{"default=go1.26", "x509negativeserial=1"},
		// go.etcd.io/etcd is replaced but not required: a guard, not a dependency.
		LocalReplaces: []string{
			"go.etcd.io/etcd/api/v3",
			"k8s.io/api",
			"k8s.io/apimachinery",
		},
		// Main-module-only directives the build module must copy.
		VersionReplaces: []string{"github.com/forked/lib v1.0.0 => github.com/me/lib v1.0.1"},
		Excludes:        []string{"github.com/go-chi/chi/v5 v5.2.3"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseGoMod:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseGoModErrors(t *testing.T) {
	for name, text := range map[string]string{
		"no go directive": "module x\n",
		"bad replace":     "module x\ngo 1.26\nreplace a b\n",
	} {
		if _, err := parseGoMod(text); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestBuildGoMod(t *testing.T) {
	info := goModInfo{Go: "1.26.0", Godebug: []string{"default=go1.26"}, LocalReplaces: []string{"k8s.io/api", "k8s.io/client-go"},
		VersionReplaces: []string{"github.com/forked/lib v1.0.0 => github.com/me/lib v1.0.1"}, Excludes: []string{"github.com/bad/lib v1.0.0"}}
	got := buildGoMod("opportunist.local/build/k8s", "k8s.io/kubernetes", "v1.37.2", "v0.37.2", info)
	want := `module opportunist.local/build/k8s

go 1.26.0

godebug default=go1.26

require k8s.io/kubernetes v1.37.2

replace (
	k8s.io/api => k8s.io/api v0.37.2
	k8s.io/client-go => k8s.io/client-go v0.37.2
	github.com/forked/lib v1.0.0 => github.com/me/lib v1.0.1
)

exclude (
	github.com/bad/lib v1.0.0
)
`
	if got != want {
		t.Fatalf("buildGoMod:\n%s\nwant:\n%s", got, want)
	}
	// The result must itself parse, with no local replaces left and the
	// version replaces and excludes kept.
	back, err := parseGoMod(got)
	if err != nil || len(back.LocalReplaces) != 0 || !slices.Contains(back.VersionReplaces, info.VersionReplaces[0]) || !reflect.DeepEqual(back.Excludes, info.Excludes) {
		t.Fatalf("reparse: %+v, %v", back, err)
	}
}

// TestRealGoMods checks the parser against the go.mod files this tool
// actually reads, when they are in the module cache.
func TestRealGoMods(t *testing.T) {
	modcache := os.Getenv("GOMODCACHE")
	if modcache == "" {
		home, _ := os.UserHomeDir()
		modcache = home + "/go/pkg/mod"
	}
	for _, tc := range []struct {
		module, version string
		want            []string // must be among the local replaces
		prefix          string   // every local replace starts with it
		count           int      // expected number, 0 for "don't care"
	}{
		{"k8s.io/kubernetes", k8sVersion, []string{"k8s.io/api", "k8s.io/apiserver", "k8s.io/kube-aggregator"}, "k8s.io/", 0},
		{"go.etcd.io/etcd/server/v3", etcdVersion, []string{"go.etcd.io/etcd/api/v3", "go.etcd.io/etcd/client/v3"}, "go.etcd.io/etcd/", 4},
	} {
		data, err := os.ReadFile(modcache + "/cache/download/" + tc.module + "/@v/" + tc.version + ".mod")
		if err != nil {
			t.Logf("skipping %s@%s: not in the module cache", tc.module, tc.version)
			continue
		}
		info, err := parseGoMod(string(data))
		if err != nil {
			t.Fatalf("%s: %v", tc.module, err)
		}
		for _, p := range tc.want {
			if !slices.Contains(info.LocalReplaces, p) {
				t.Errorf("%s: %s not among the local replaces %v", tc.module, p, info.LocalReplaces)
			}
		}
		for _, r := range info.LocalReplaces {
			if !strings.HasPrefix(r, tc.prefix) {
				t.Errorf("%s: unexpected local replace %s", tc.module, r)
			}
		}
		if tc.count != 0 && len(info.LocalReplaces) != tc.count {
			t.Errorf("%s: %d local replaces %v, want %d", tc.module, len(info.LocalReplaces), info.LocalReplaces, tc.count)
		}
	}
}

// TestKEDAGoMod: KEDA's go.mod has no local replaces but a version replace
// and an exclude that its own build applies; the build module must too.
func TestKEDAGoMod(t *testing.T) {
	modcache := os.Getenv("GOMODCACHE")
	if modcache == "" {
		home, _ := os.UserHomeDir()
		modcache = home + "/go/pkg/mod"
	}
	s := kedaBuild()
	data, err := os.ReadFile(modcache + "/cache/download/" + s.module + "/@v/" + s.version + ".mod")
	if err != nil {
		t.Skipf("%s@%s not in the module cache", s.module, s.version)
	}
	info, err := parseGoMod(string(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.LocalReplaces) != 0 || len(info.VersionReplaces) == 0 || len(info.Excludes) == 0 {
		t.Errorf("KEDA %s: local replaces %v, version replaces %v, excludes %v; want none, some, some", s.version, info.LocalReplaces, info.VersionReplaces, info.Excludes)
	}
}

func TestStagingVersion(t *testing.T) {
	if v, err := stagingVersion("v1.37.2"); err != nil || v != "v0.37.2" {
		t.Fatalf("got %q, %v", v, err)
	}
	if _, err := stagingVersion("v0.37.2"); err == nil {
		t.Fatal("want an error for a non-v1 version")
	}
}

func TestParseProcStat(t *testing.T) {
	// The command name may contain spaces and parentheses.
	line := "4242 (kube (api) server) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 12 0 987654 1000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	state, start, err := parseProcStat([]byte(line))
	if err != nil || state != 'S' || start != 987654 {
		t.Fatalf("got %c %d %v", state, start, err)
	}
	if _, _, err := parseProcStat([]byte("garbage")); err == nil {
		t.Fatal("want an error")
	}
}

func TestOwnProcessIsAlive(t *testing.T) {
	_, start, err := procStat(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	exe := os.Args[0]
	if !(procRecord{PID: os.Getpid(), StartTicks: start, Exe: exe}).alive() {
		t.Fatal("own process not alive")
	}
	// A recycled pid: same number, other start time.
	if (procRecord{PID: os.Getpid(), StartTicks: start + 1, Exe: exe}).alive() {
		t.Fatal("start time mismatch must not count as alive")
	}
}

func TestPortFree(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if portFree(port) == nil {
		t.Fatalf("port %d is listened on but reported free", port)
	}
	l.Close()
	if err := portFree(port); err != nil {
		t.Fatalf("port %d reported busy after close: %v", port, err)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/opportunist-cluster/kubeconfig": "/tmp/opportunist-cluster/kubeconfig",
		"/tmp/with space":                     "'/tmp/with space'",
		"it's":                                `'it'\''s'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKubeAPIQPS(t *testing.T) {
	t.Setenv(kubeAPIQPSEnv, "")
	s, err := settingsFromEnv()
	if err != nil || s.KubeAPIQPS != 0 || kubeAPIQPSArgs(s) != nil {
		t.Fatalf("unset: settings %+v, err %v, args %v; want the components' defaults", s, err, kubeAPIQPSArgs(s))
	}
	t.Setenv(kubeAPIQPSEnv, "500")
	if s, err = settingsFromEnv(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(kubeAPIQPSArgs(s), " "); got != "--kube-api-qps=500 --kube-api-burst=1000" {
		t.Errorf("args %q", got)
	}
	for _, bad := range []string{"0", "-1", "fast"} {
		t.Setenv(kubeAPIQPSEnv, bad)
		if _, err := settingsFromEnv(); err == nil || !strings.Contains(err.Error(), kubeAPIQPSEnv) {
			t.Errorf("%s=%q: error %v, want one naming the variable", kubeAPIQPSEnv, bad, err)
		}
	}
}

// TestBigClusterSettings: the scale test's settings reach the components'
// command lines and kwok's config, and are off when unset.
func TestBigClusterSettings(t *testing.T) {
	for _, env := range []string{etcdQuotaEnv, maxInflightEnv, kwokParallelEnv, kwokLeaseEnv, nodesToScoreEnv, spreadingEnv, kubeAPIQPSEnv} {
		t.Setenv(env, "")
	}
	c := &cluster{p: paths{state: t.TempDir()}}
	var err error
	if c.s, err = settingsFromEnv(); err != nil {
		t.Fatal(err)
	}
	args := strings.Join(append(append(etcdArgs(c), apiserverArgs(c)...), controllerManagerArgs(c)...), " ")
	if kwok := strings.Join(kwokArgs(c), " "); !strings.Contains(kwok, "--node-lease-duration-seconds=40") {
		t.Errorf("unset, kwok's node leases are not kubelet's 40 s: %s", kwok)
	}
	if err := writeSchedulerConfig(c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.p.schedulerConfig()); !os.IsNotExist(err) {
		t.Errorf("unset, a scheduler config was written (%v)", err)
	}
	args += " " + strings.Join(schedulerArgs(c), " ")
	for _, flag := range []string{"--quota-backend-bytes", "--max-requests-inflight", "--max-mutating-requests-inflight", "--node-monitor-grace-period", "--config"} {
		if strings.Contains(args, flag) {
			t.Errorf("unset, yet the command lines carry %s: %s", flag, args)
		}
	}
	t.Setenv(etcdQuotaEnv, "8589934592")
	t.Setenv(maxInflightEnv, "1600")
	t.Setenv(kwokParallelEnv, "16")
	t.Setenv(kwokLeaseEnv, "200")
	t.Setenv(nodesToScoreEnv, "5")
	t.Setenv(spreadingEnv, "off")
	t.Setenv(kubeAPIQPSEnv, "500")
	if c.s, err = settingsFromEnv(); err != nil {
		t.Fatal(err)
	}
	// The scheduler takes percentageOfNodesToScore from a config file only,
	// and then ignores the QPS flags: the file carries both.
	if err := writeSchedulerConfig(c); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(c.p.schedulerConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"kind: KubeSchedulerConfiguration", "percentageOfNodesToScore: 5", "  qps: 500", "  burst: 1000", "  kubeconfig: " + strconv.Quote(c.p.componentKubeconfig("scheduler")),
		"  - name: PodTopologySpread", "      defaultingType: List", "      defaultConstraints: []"} {
		if !strings.Contains(string(conf), line+"\n") {
			t.Errorf("scheduler config lacks %q:\n%s", line, conf)
		}
	}
	// As YAML, the args sit in the default profile's PodTopologySpread entry.
	var parsed struct {
		Profiles []struct {
			SchedulerName string `json:"schedulerName"`
			PluginConfig  []struct {
				Name string `json:"name"`
				Args struct {
					DefaultingType     string `json:"defaultingType"`
					DefaultConstraints []any  `json:"defaultConstraints"`
				} `json:"args"`
			} `json:"pluginConfig"`
		} `json:"profiles"`
	}
	if err := yaml.Unmarshal(conf, &parsed); err != nil {
		t.Fatalf("scheduler config is not YAML: %v\n%s", err, conf)
	}
	if p := parsed.Profiles; len(p) != 1 || p[0].SchedulerName != "default-scheduler" || len(p[0].PluginConfig) != 1 ||
		p[0].PluginConfig[0].Name != "PodTopologySpread" || p[0].PluginConfig[0].Args.DefaultingType != "List" || p[0].PluginConfig[0].Args.DefaultConstraints == nil || len(p[0].PluginConfig[0].Args.DefaultConstraints) != 0 {
		t.Errorf("scheduler config's profiles %+v: want the default scheduler's PodTopologySpread with defaultingType List and no defaultConstraints\n%s", p, conf)
	}
	if sched := strings.Join(schedulerArgs(c), " "); !strings.Contains(sched, "--config="+c.p.schedulerConfig()) || strings.Contains(sched, "--kube-api-qps") {
		t.Errorf("scheduler args %s: want --config and no ignored QPS flags", sched)
	}
	args = strings.Join(append(append(append(etcdArgs(c), apiserverArgs(c)...), controllerManagerArgs(c)...), kwokArgs(c)...), " ")
	for _, flag := range []string{"--quota-backend-bytes=8589934592", "--max-requests-inflight=1600", "--max-mutating-requests-inflight=800", "--node-monitor-grace-period=200s", "--node-lease-duration-seconds=200"} {
		if !strings.Contains(args, flag) {
			t.Errorf("command lines lack %s: %s", flag, args)
		}
	}
	for env, bad := range map[string]string{etcdQuotaEnv: "1000", maxInflightEnv: "lots", kwokParallelEnv: "0", kwokLeaseEnv: "5", nodesToScoreEnv: "101", spreadingEnv: "no"} {
		t.Setenv(env, bad)
		if _, err := settingsFromEnv(); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%q: error %v, want one naming the variable", env, bad, err)
		}
		t.Setenv(env, "")
	}
}

// TestKwokOptions: kwok disregards the pods whose status a test writes, and
// takes the parallelism of the big-cluster settings or its own default, in
// one KwokConfiguration.
func TestKwokOptions(t *testing.T) {
	type conf struct {
		APIVersion string         `json:"apiVersion"`
		Kind       string         `json:"kind"`
		Options    map[string]any `json:"options"`
	}
	for _, n := range []int{0, 16} {
		var c conf
		out := kwokOptions(settings{KwokParallelism: n})
		if err := yaml.UnmarshalStrict([]byte(strings.TrimPrefix(out, "---\n")), &c); err != nil {
			t.Fatalf("parallelism %d: %v\n%s", n, err, out)
		}
		if c.APIVersion != "config.kwok.x-k8s.io/v1alpha1" || c.Kind != "KwokConfiguration" || c.Options["disregardStatusWithAnnotationSelector"] != statusByTestAnnotation {
			t.Errorf("parallelism %d: %+v, want a KwokConfiguration disregarding %s", n, c, statusByTestAnnotation)
		}
		for _, o := range []string{"podPlayStageParallelism", "nodePlayStageParallelism", "nodeLeaseParallelism"} {
			if want := float64(max(n, 4)); c.Options[o] != want {
				t.Errorf("parallelism %d: %s = %v, want %v (kwok's default when unset: it does not default a file's options)", n, o, c.Options[o], want)
			}
		}
	}
}
