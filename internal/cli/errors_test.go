//go:build !nocluster

package cli

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeconfigFor writes a kubeconfig whose one context points at server.
func kubeconfigFor(t *testing.T, server string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: server}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestUserErrorsSayWhatToDo: each mistake a new user makes gets one line
// naming what is wrong and what to do, not the library's words for it.
func TestUserErrorsSayWhatToDo(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A server that never answers: the request times out.
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	// A plain web server: answers, but 404 on /readyz.
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	// A server that refuses anonymous requests, as one given bad credentials does.
	locked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
	}))
	defer locked.Close()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	// A port nothing listens on: the connection is refused.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + closed.Addr().String()
	closed.Close()

	tests := []struct {
		name    string
		env     string // KUBECONFIG, when set
		args    []string
		want    string
		notWant string
	}{
		{name: "empty kubeconfig passed", args: []string{"status", "--kubeconfig", empty},
			want: "--kubeconfig " + empty + " holds no cluster: pass a kubeconfig with a cluster, user and context in it", notWant: "no Kubernetes configuration found"},
		{name: "empty KUBECONFIG", env: empty, args: []string{"status"},
			want: "KUBECONFIG=" + empty + " holds no cluster: point it at a kubeconfig", notWant: "no Kubernetes configuration found"},
		{name: "speed not a number", args: []string{"demo", "--speed", "abc"},
			want: `--speed "abc" is not a number (e.g. 10 or 2.5) (see 'opportunist demo --help')`, notWant: "strconv"},
		{name: "speed out of range", args: []string{"demo", "--speed", "1e999"}, want: `--speed "1e999" is out of range`, notWant: "strconv"},
		{name: "seed not a whole number", args: []string{"demo", "--seed", "1.5"}, want: `--seed "1.5" is not a whole number, 0 or more`, notWant: "strconv"},
		{name: "port not a whole number", args: []string{"run", "--metrics-api-port=x"}, want: `--metrics-api-port "x" is not a whole number`, notWant: "strconv"},
		{name: "duration", args: []string{"run", "--round-interval=abc"}, want: `--round-interval "abc" is not a duration (e.g. 30s, 5m, 1h30m)`, notWant: "time: invalid"},
		{name: "timeout", args: []string{"status", "--kubeconfig", kubeconfigFor(t, hang.URL), "--request-timeout", "200ms"},
			want: "the Kubernetes API server at " + hang.URL + " did not answer within 200ms: check that it is running and reachable from here, or raise --request-timeout", notWant: "deadline"},
		{name: "not an API server", args: []string{"status", "--kubeconfig", kubeconfigFor(t, web.URL)},
			want: "the server at " + web.URL + " answered but is not a Kubernetes API server (no /readyz): check the server address in your kubeconfig", notWant: "could not find the requested resource"},
		{name: "bad credentials", args: []string{"status", "--kubeconfig", kubeconfigFor(t, locked.URL)},
			want: "the Kubernetes API server at " + locked.URL + " refused the kubeconfig's credentials (401 Unauthorized): check the user of your kubeconfig's context", notWant: "cannot reach"},
		{name: "nothing listening", args: []string{"status", "--kubeconfig", kubeconfigFor(t, refused)},
			want: "cannot reach the Kubernetes API server at " + refused + ": connect: connection refused: check that it is running and that your kubeconfig (or --context) names the right server"},
		{name: "busy port", args: []string{"demo", "--listen", busy.Addr().String()},
			want: busy.Addr().String() + " is already in use (another opportunist running?): stop it, or pass --listen with a free address such as 127.0.0.1:0"},
		{name: "scenario and scenario file", args: []string{"demo", "--scenario", "diurnal", "--scenario-file", empty},
			want: "--scenario and --scenario-file are exclusive: pass one of them"},
		{name: "compare names none", args: []string{"demo", "--compare", "nothing"},
			want: `--compare "nothing" is not one of opportunist, hpa-writeup, hpa-example, hpa-averagevalue, or none`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tt.env)
			if tt.env == "" {
				// No ~/.kube/config of the machine running the tests either.
				t.Setenv("HOME", t.TempDir())
			}
			root := NewRoot("opportunist")
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs(tt.args)
			err := root.Execute()
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error = %v, want one line containing %q", err, tt.want)
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("error %q still says %q", err, tt.notWant)
			}
			if out.Len() != 0 {
				t.Errorf("printed usage or noise on a user error:\n%s", out.String())
			}
		})
	}
}

// TestDemoCompareNone: --compare none plays one strategy, as "" does.
func TestDemoCompareNone(t *testing.T) {
	for _, compare := range []string{"none", ""} {
		o := defaultDemoOptions()
		o.Compare = compare
		if errs := o.Validate(); len(errs) != 0 {
			t.Errorf("--compare %q: %v", compare, errs)
		}
		if got := o.strategies(); len(got) != 1 || got[0] != o.Strategy {
			t.Errorf("--compare %q plays %v, want only %s", compare, got, o.Strategy)
		}
	}
}

// TestDemoDefaultScenario: without --scenario or --scenario-file the demo
// plays seed-burst; either flag alone replaces it.
func TestDemoDefaultScenario(t *testing.T) {
	o := defaultDemoOptions()
	sc, err := o.scenario()
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != defaultDemoScenario {
		t.Errorf("default scenario %q, want %q", sc.Name, defaultDemoScenario)
	}
	o.Scenario = "diurnal"
	if sc, err = o.scenario(); err != nil || sc.Name != "diurnal" {
		t.Errorf("--scenario diurnal played %v (%v)", sc, err)
	}
}

// TestVersionFlag: `opportunist --version` prints what `opportunist version` prints.
func TestVersionFlag(t *testing.T) {
	run := func(args ...string) string {
		root := NewRoot("opportunist")
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out.String()
	}
	flag, cmd := run("--version"), run("version")
	if flag != cmd || !strings.HasPrefix(flag, "opportunist ") || strings.Count(flag, "\n") != 1 {
		t.Errorf("--version printed %q, version printed %q: want the same one line", flag, cmd)
	}
}
