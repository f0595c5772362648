package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestLeadingZeroBits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first []byte
		want  int
	}{
		{"first bit set", []byte{0x80}, 0},
		{"0x01", []byte{0x01}, 7},
		{"one zero byte then 0x10", []byte{0x00, 0x10}, 11},
		{"all zero", nil, 256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sum [sha256.Size]byte
			copy(sum[:], tc.first)
			if tc.first != nil && len(tc.first) < sha256.Size {
				sum[sha256.Size-1] = 0xff // a set bit later must not matter
			}
			if got := leadingZeroBits(sum); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func never() bool { return false }

func TestMineBatchFindsOnlyRealShares(t *testing.T) {
	prefix := []byte("worker-0/0/")
	b := mineBatch(prefix, 1000, 20_000, 8, never)
	if b.Hashes != 20_000 || b.Next != 21_000 {
		t.Fatalf("hashes %d next %d, want 20000 and 21000", b.Hashes, b.Next)
	}
	// About 1 in 256 hashes has 8 leading zero bits: expect ~78.
	if len(b.Shares) < 40 || len(b.Shares) > 130 {
		t.Errorf("%d shares in 20000 hashes at difficulty 8, want about 78", len(b.Shares))
	}
	for _, nonce := range b.Shares {
		buf := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), nonce)
		sum := sha256.Sum256(buf)
		if sum[0] != 0 {
			t.Errorf("nonce %d: hash %x does not start with a zero byte", nonce, sum[:4])
		}
		if nonce < 1000 || nonce >= 21_000 {
			t.Errorf("nonce %d outside the batch", nonce)
		}
	}
	// The same input gives the same shares: batches are reproducible work.
	again := mineBatch(prefix, 1000, 20_000, 8, never)
	if len(again.Shares) != len(b.Shares) || again.Shares[0] != b.Shares[0] {
		t.Error("two runs of the same batch differ")
	}
	if all := mineBatch(prefix, 0, 100, 0, never); len(all.Shares) != 100 {
		t.Errorf("difficulty 0: %d shares of 100 hashes, want all", len(all.Shares))
	}
}

func TestMineBatchStopsWhenExpired(t *testing.T) {
	calls := 0
	b := mineBatch([]byte("x"), 0, 1_000_000, 64, func() bool { calls++; return calls >= 3 })
	if b.Hashes != 3*checkEvery {
		t.Errorf("hashed %d, want %d: the clock is checked every %d hashes", b.Hashes, 3*checkEvery, checkEvery)
	}
}

func TestValidate(t *testing.T) {
	good := defaultOptions()
	good.Seed = "w"
	if errs := good.validate(); len(errs) != 0 {
		t.Fatalf("defaults rejected: %v", errs)
	}
	bad := options{ListenAddress: "x", Threads: 0, Difficulty: 65, BatchSize: 0, MaxBatchTime: time.Minute, ReportInterval: 0}
	want := []string{"--listen-address", "--seed", "--threads", "--difficulty", "--batch-size", "--max-batch-time", "--report-interval"}
	errs := bad.validate()
	if len(errs) != len(want) {
		t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(want))
	}
	for i, e := range errs {
		if !strings.HasPrefix(e.Error(), want[i]) {
			t.Errorf("error %d = %q, want it to name %s", i, e, want[i])
		}
	}
}

// TestWorkStopsWithinABatch: cancelling stops every thread within about one
// --max-batch-time, even with batches far too big to finish.
func TestWorkStopsWithinABatch(t *testing.T) {
	o := options{Seed: "t", Threads: 2, Difficulty: 64, BatchSize: 1 << 40, MaxBatchTime: 50 * time.Millisecond}
	m, tot := newMetrics(prometheus.NewRegistry()), &totals{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { work(ctx, o, m, tot); close(done) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	start := time.Now()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("work did not stop 2s after cancel")
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("stopping took %s, want about one batch (50ms)", took)
	}
	hashes, _, batches := tot.get()
	if hashes == 0 || batches < 2 {
		t.Errorf("hashes %d batches %d after 200ms of two threads", hashes, batches)
	}
	if got := testutil.ToFloat64(m.hashes); got != float64(hashes) {
		t.Errorf("worker_hashes_total = %v, totals say %d", got, hashes)
	}
}

// syncBuffer is a log sink safe for the reporter goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestReportSetsRateAndLogs(t *testing.T) {
	m, tot := newMetrics(prometheus.NewRegistry()), &totals{}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		report(ctx, 20*time.Millisecond, m, tot, slog.New(slog.NewTextHandler(&logs, nil)))
		close(done)
	}()
	tot.add(batch{Hashes: 5000, Shares: []uint64{1}})
	deadline := time.Now().Add(2 * time.Second)
	for testutil.ToFloat64(m.rate) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if testutil.ToFloat64(m.rate) <= 0 {
		t.Error("worker_hash_rate never went above 0")
	}
	if !strings.Contains(logs.String(), "msg=throughput") || !strings.Contains(logs.String(), "hashes=5000 shares=1") {
		t.Errorf("no throughput line with the totals in:\n%s", logs.String())
	}
}

func TestMetricsEndpoint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	m.hashes.Add(42)
	srv := httptest.NewServer(handler(reg))
	defer srv.Close()
	for path, want := range map[string]string{"/metrics": "worker_hashes_total 42\n", "/healthz": "ok\n"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d, want %q in\n%s", path, resp.StatusCode, want, body)
		}
	}
}

// TestRunUntilSignal runs the whole command and stops it as SIGTERM would.
func TestRunUntilSignal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() {
		ran <- run(ctx, []string{"--listen-address", addr, "--seed", "t", "--report-interval", "50ms", "--max-batch-time", "20ms"}, &logs)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "msg=throughput") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("/metrics while running: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "worker_hash_rate") {
		t.Errorf("/metrics has no worker_hash_rate:\n%s", body)
	}
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("run did not return 3s after the signal")
	}
	if !strings.Contains(logs.String(), "msg=stopped") {
		t.Errorf("no stopped line in:\n%s", logs.String())
	}
	if err := run(context.Background(), []string{"--threads", "0", "--difficulty", "99"}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "--threads") || !strings.Contains(err.Error(), "--difficulty") {
		t.Errorf("bad flags: got %v, want both named", err)
	}
}
