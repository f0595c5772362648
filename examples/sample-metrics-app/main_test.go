package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestHelloCountsRequests(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newApp("sample-metrics-app-1", reg)
	srv := httptest.NewServer(handler(a, reg))
	defer srv.Close()

	for i, path := range []string{"/", "/orders", "/?q=1"} { // any path is load, as in the write-up
		code, body := get(t, srv.URL+path)
		want := fmt.Sprintf("Hello! My name is sample-metrics-app-1. I have served %d requests so far.\n", i+1)
		if code != http.StatusOK || body != want {
			t.Fatalf("request %d: got %d %q, want 200 %q", i, code, body, want)
		}
	}
	// Probes and scrapes are not load.
	if code, body := get(t, srv.URL+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: got %d %q", code, body)
	}
	code, body := get(t, srv.URL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	if !strings.Contains(body, "# TYPE http_requests_total counter\nhttp_requests_total 3\n") {
		t.Errorf("/metrics does not hold http_requests_total 3:\n%s", body)
	}
	if got := testutil.ToFloat64(a.requests); got != 3 {
		t.Errorf("counter = %v, want 3", got)
	}
}

func TestMetricsText(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newApp("x", reg)
	a.requests.Add(7)
	want := `# HELP http_requests_total The amount of requests served by the server in total
# TYPE http_requests_total counter
http_requests_total 7
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "http_requests_total"); err != nil {
		t.Error(err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts options
		want []string
	}{
		{"defaults", options{ListenAddress: ":8080", Name: "a", ShutdownTimeout: time.Second}, nil},
		{"all bad", options{ListenAddress: "8080", ShutdownTimeout: -time.Second}, []string{
			`--listen-address "8080" is not host:port`, "--name is empty", "--shutdown-timeout -1s must be positive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.opts.validate()
			if len(errs) != len(tc.want) {
				t.Fatalf("got %v, want %d errors %v", errs, len(tc.want), tc.want)
			}
			for i, e := range errs {
				if !strings.HasPrefix(e.Error(), tc.want[i]) {
					t.Errorf("error %d = %q, want it to start with %q", i, e, tc.want[i])
				}
			}
		})
	}
}

func TestRunRejectsBadFlagsInOneLine(t *testing.T) {
	err := run(context.Background(), []string{"--listen-address", "nope", "--shutdown-timeout", "0s"})
	if err == nil {
		t.Fatal("run accepted bad flags")
	}
	msg := oneLine(err)
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "--listen-address") || !strings.Contains(msg, "--shutdown-timeout") {
		t.Errorf("want one line naming both flags, got %q", msg)
	}
	if err := run(context.Background(), []string{"extra"}); err == nil || !strings.Contains(err.Error(), "unexpected arguments") {
		t.Errorf("positional argument: got %v", err)
	}
}

// TestGracefulShutdown: a request in flight when the context ends still gets
// its answer, and serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serve(ctx, ln, mux, 5*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil))) }()

	answer := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			answer <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answer <- string(b)
	}()
	<-started
	cancel()
	// Shutdown closes the listener first: new connections are refused while
	// the request in flight is still being served.
	refused := false
	for deadline := time.Now().Add(5 * time.Second); !refused && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			refused = true
		} else {
			conn.Close()
		}
	}
	if !refused {
		t.Error("the listener still accepts connections 5s after shutdown began")
	}
	close(release)
	if got := <-answer; got != "done" {
		t.Errorf("in-flight request got %q, want done", got)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}
