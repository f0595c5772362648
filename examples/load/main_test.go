package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseSteps(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []step
		wantErr string
	}{
		{in: "0.75:30s,8.25:1m, 0:5s", want: []step{{0.75, 30 * time.Second}, {8.25, time.Minute}, {0, 5 * time.Second}}},
		{in: "8.25", wantErr: `step 1 "8.25" is not RATE:DURATION`},
		{in: "1:30s,x:1m", wantErr: `step 2: rate "x" is not a number`},
		{in: "-1:1m", wantErr: `rate "-1"`},
		{in: "1:0s", wantErr: `duration "0s" is not a positive duration`},
		{in: "1:soon", wantErr: `duration "soon"`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseSteps(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("step %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestPlanReportsEveryProblem(t *testing.T) {
	o := options{Target: "127.0.0.1:8080", Rate: -1, Duration: -time.Second, ReportInterval: 0, Timeout: 0, MaxInFlight: 0}
	_, err := o.plan(nil)
	if err == nil {
		t.Fatal("plan accepted bad options")
	}
	for _, want := range []string{"--target", "--rate -1", "--duration -1s", "--report-interval", "--timeout", "--max-in-flight"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	o = defaultOptions()
	o.Steps = "1:1s"
	if _, err := o.plan(map[string]bool{"rate": true}); err == nil || !strings.Contains(err.Error(), "--steps replaces --rate") {
		t.Errorf("--steps with --rate: got %v", err)
	}
	steps, err := defaultOptions().plan(nil)
	if err != nil || len(steps) != 1 || steps[0] != (step{Rate: 1}) {
		t.Errorf("defaults: got %v, %v; want one step of 1 req/s until stopped", steps, err)
	}
}

func TestDueAtIsAGrid(t *testing.T) {
	// 8.25 req/s: request 33 leaves at exactly 4 s, whatever came before.
	if got := dueAt(33, 8.25); got != 4*time.Second {
		t.Errorf("dueAt(33, 8.25) = %s, want 4s", got)
	}
	if got := dueAt(0, 3); got != 0 {
		t.Errorf("the first request waits %s, want 0", got)
	}
}

// TestRunSendsTheProfile: each step sends its rate times its duration, a
// pause sends nothing, and what was sent is what the server saw.
func TestRunSendsTheProfile(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { served.Add(1) }))
	defer srv.Close()
	o := defaultOptions()
	o.Target, o.ReportInterval = srv.URL+"/orders", 150*time.Millisecond
	steps := []step{{50, 200 * time.Millisecond}, {0, 100 * time.Millisecond}, {100, 100 * time.Millisecond}}
	var out bytes.Buffer
	start := time.Now()
	got := run(context.Background(), o, steps, &out)
	took := time.Since(start)
	if got.sent != 20 || got.ok != 20 || got.failed != 0 || got.skipped != 0 || served.Load() != 20 {
		t.Errorf("sent %+v, server saw %d; want 10 + 0 + 10 = 20 sent and answered", got, served.Load())
	}
	if took < 400*time.Millisecond || took > 2*time.Second {
		t.Errorf("the profile of 400ms took %s", took)
	}
	for _, want := range []string{"step 1/3: 50 req/s for 200ms to " + srv.URL + "/orders", "step 2/3: 0 req/s for 100ms", "step 3/3: 100 req/s for 100ms", "sent ", "done: sent 20"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not say %q:\n%s", want, out.String())
		}
	}
}

// TestRunCountsFailuresAndSkips: an error answer is failed (and named), and
// a request due while --max-in-flight are waiting is skipped, not queued.
func TestRunCountsFailuresAndSkips(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	defer close(release)

	o := defaultOptions()
	o.Target, o.ReportInterval = srv.URL+"/", 50*time.Millisecond
	var out bytes.Buffer
	got := run(context.Background(), o, []step{{100, 100 * time.Millisecond}}, &out)
	if got.sent != 10 || got.failed != 10 || got.ok != 0 {
		t.Errorf("against a 503: %+v, want 10 sent, 10 failed", got)
	}
	if !strings.Contains(out.String(), "last error: HTTP 503") {
		t.Errorf("the report does not name the failure:\n%s", out.String())
	}

	o.Target, o.MaxInFlight, o.Timeout = srv.URL+"/slow", 2, 300*time.Millisecond
	got = run(context.Background(), o, []step{{100, 100 * time.Millisecond}}, &bytes.Buffer{})
	if got.sent != 2 || got.skipped != 8 || got.failed != 2 {
		t.Errorf("with 2 in flight against a server that never answers: %+v, want 2 sent (timed out), 8 skipped", got)
	}
}

// TestRunStopsWithTheContext: an endless step ends when the context does.
func TestRunStopsWithTheContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	o := defaultOptions()
	o.Target = srv.URL
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	got := run(ctx, o, []step{{20, 0}}, &out)
	if got.sent < 2 || got.sent > 6 {
		t.Errorf("20 req/s stopped after 200ms sent %d, want about 4", got.sent)
	}
	if !strings.Contains(out.String(), "20 req/s until stopped") {
		t.Errorf("output: %s", out.String())
	}
}
