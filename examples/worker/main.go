// Command worker is the examples' opportunistic workload, in place of the
// write-up's miner: CPU-bound, useful-looking, and preemptible. Each thread
// searches for "shares" — nonces whose SHA-256 of seed/thread/nonce starts
// with --difficulty zero bits — in batches bounded both in hashes
// (--batch-size) and in time (--max-batch-time), so SIGTERM is honoured
// within one batch: far inside a pod's termination grace period.
//
//	worker [--threads 1] [--difficulty 20] [--batch-size 200000] [--max-batch-time 100ms]
//	       [--report-interval 10s] [--listen-address :8080] [--seed NAME]
//
// It reports its throughput every --report-interval as one log line and on
// /metrics: worker_hashes_total, worker_shares_total, worker_batches_total
// (counters) and worker_hash_rate (hashes per second over the last
// interval). /healthz answers ok. Give it one CPU per thread in its
// resource requests; it uses no memory to speak of.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
)

type options struct {
	ListenAddress  string
	Seed           string
	Threads        int
	Difficulty     int
	BatchSize      int
	MaxBatchTime   time.Duration
	ReportInterval time.Duration
}

func defaultOptions() options {
	seed, _ := os.Hostname() // the pod name: replicas search different nonces
	if n := os.Getenv("POD_NAME"); n != "" {
		seed = n
	}
	return options{
		ListenAddress:  ":8080",
		Seed:           seed,
		Threads:        1,
		Difficulty:     20,
		BatchSize:      200_000,
		MaxBatchTime:   100 * time.Millisecond,
		ReportInterval: 10 * time.Second,
	}
}

func (o *options) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ListenAddress, "listen-address", o.ListenAddress, "address serving /metrics and /healthz")
	fs.StringVar(&o.Seed, "seed", o.Seed, "what the hashes start with (default: $POD_NAME, else the hostname)")
	fs.IntVar(&o.Threads, "threads", o.Threads, "hashing threads; request one CPU per thread")
	fs.IntVar(&o.Difficulty, "difficulty", o.Difficulty, "leading zero bits a hash needs to count as a share (0-64)")
	fs.IntVar(&o.BatchSize, "batch-size", o.BatchSize, "most hashes per batch")
	fs.DurationVar(&o.MaxBatchTime, "max-batch-time", o.MaxBatchTime, "most time per batch: how long SIGTERM may wait (at most 10s)")
	fs.DurationVar(&o.ReportInterval, "report-interval", o.ReportInterval, "how often throughput is logged and worker_hash_rate updated")
}

// maxBatchTime keeps a batch well inside any sensible termination grace
// period, so the worker always yields before it is killed.
const maxBatchTime = 10 * time.Second

// validate returns every problem at once.
func (o options) validate() []error {
	var errs []error
	if _, _, err := net.SplitHostPort(o.ListenAddress); err != nil {
		errs = append(errs, fmt.Errorf("--listen-address %q is not host:port", o.ListenAddress))
	}
	if o.Seed == "" {
		errs = append(errs, errors.New("--seed is empty (and neither $POD_NAME nor the hostname gave one)"))
	}
	if o.Threads < 1 || o.Threads > 1024 {
		errs = append(errs, fmt.Errorf("--threads %d must be between 1 and 1024", o.Threads))
	}
	if o.Difficulty < 0 || o.Difficulty > 64 {
		errs = append(errs, fmt.Errorf("--difficulty %d must be between 0 and 64 bits", o.Difficulty))
	}
	if o.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("--batch-size %d must be at least 1", o.BatchSize))
	}
	if o.MaxBatchTime <= 0 || o.MaxBatchTime > maxBatchTime {
		errs = append(errs, fmt.Errorf("--max-batch-time %s must be positive and at most %s", o.MaxBatchTime, maxBatchTime))
	}
	if o.ReportInterval <= 0 {
		errs = append(errs, fmt.Errorf("--report-interval %s must be positive", o.ReportInterval))
	}
	return errs
}

// leadingZeroBits counts the zero bits a digest starts with.
func leadingZeroBits(sum [sha256.Size]byte) int {
	n := 0
	for _, b := range sum {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// batch is the result of one bounded run of hashing.
type batch struct {
	Hashes int      // how many hashes were computed
	Shares []uint64 // the nonces that met the difficulty
	Next   uint64   // the nonce to start the next batch from
}

// checkEvery is how many hashes pass between two looks at the clock: often
// enough to stop within a millisecond, rarely enough to cost nothing.
const checkEvery = 1024

// mineBatch hashes prefix||nonce for nonces from start, at most n of them,
// stopping early once expired() says the batch's time is up.
func mineBatch(prefix []byte, start uint64, n, difficulty int, expired func() bool) batch {
	buf := make([]byte, len(prefix)+8)
	copy(buf, prefix)
	b := batch{Next: start}
	for b.Hashes < n {
		if b.Hashes%checkEvery == 0 && b.Hashes > 0 && expired() {
			break
		}
		binary.BigEndian.PutUint64(buf[len(prefix):], b.Next)
		if leadingZeroBits(sha256.Sum256(buf)) >= difficulty {
			b.Shares = append(b.Shares, b.Next)
		}
		b.Hashes++
		b.Next++
	}
	return b
}

type metrics struct {
	hashes, shares, batches prometheus.Counter
	rate                    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		hashes:  prometheus.NewCounter(prometheus.CounterOpts{Name: "worker_hashes_total", Help: "SHA-256 hashes computed"}),
		shares:  prometheus.NewCounter(prometheus.CounterOpts{Name: "worker_shares_total", Help: "Hashes that met the difficulty"}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "worker_batches_total", Help: "Batches of hashing completed"}),
		rate:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "worker_hash_rate", Help: "Hashes per second over the last report interval"}),
	}
	reg.MustRegister(m.hashes, m.shares, m.batches, m.rate)
	return m
}

// totals are what the threads did so far; the reporter turns them into rates.
type totals struct {
	mu                      sync.Mutex
	hashes, shares, batches int64
}

func (t *totals) add(b batch) {
	t.mu.Lock()
	t.hashes += int64(b.Hashes)
	t.shares += int64(len(b.Shares))
	t.batches++
	t.mu.Unlock()
}

func (t *totals) get() (hashes, shares, batches int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hashes, t.shares, t.batches
}

// work runs the hashing threads until ctx ends; each returns after its
// current batch, so work returns within about --max-batch-time.
func work(ctx context.Context, o options, m *metrics, t *totals) {
	var wg sync.WaitGroup
	for i := range o.Threads {
		wg.Go(func() {
			prefix := fmt.Appendf(nil, "%s/%d/", o.Seed, i)
			var next uint64
			for ctx.Err() == nil {
				deadline := time.Now().Add(o.MaxBatchTime)
				b := mineBatch(prefix, next, o.BatchSize, o.Difficulty, func() bool {
					return ctx.Err() != nil || time.Now().After(deadline)
				})
				next = b.Next
				t.add(b)
				m.hashes.Add(float64(b.Hashes))
				m.shares.Add(float64(len(b.Shares)))
				m.batches.Inc()
			}
		})
	}
	wg.Wait()
}

// report logs the throughput every interval until ctx ends.
func report(ctx context.Context, every time.Duration, m *metrics, t *totals, log *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	last, lastHashes := time.Now(), int64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			hashes, shares, batches := t.get()
			rate := float64(hashes-lastHashes) / now.Sub(last).Seconds()
			m.rate.Set(rate)
			log.Info("throughput", "hashes_per_second", int64(rate), "hashes", hashes, "shares", shares, "batches", batches)
			last, lastHashes = now, hashes
		}
	}
}

func handler(gather prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gather, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	return mux
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	o := defaultOptions()
	fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // a bad flag is one line, not the usage
	o.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Printf("usage: worker [flags]\n%s", fs.FlagUsages())
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if errs := o.validate(); len(errs) > 0 {
		return errors.Join(errs...)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, t := newMetrics(reg), &totals{}

	ln, err := net.Listen("tcp", o.ListenAddress)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler(reg), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("working", "threads", o.Threads, "difficulty", o.Difficulty, "batch_size", o.BatchSize, "max_batch_time", o.MaxBatchTime, "address", ln.Addr().String())

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	reported := make(chan struct{})
	go func() { report(wctx, o.ReportInterval, m, t, log); close(reported) }()
	worked := make(chan struct{})
	go func() { work(wctx, o, m, t); close(worked) }()

	var failed error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		failed = fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	}
	began := time.Now()
	stop()
	<-worked
	<-reported
	hashes, shares, batches := t.get()
	log.Info("stopped", "took", time.Since(began).Round(time.Millisecond), "hashes", hashes, "shares", shares, "batches", batches)
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx) // scrapes are short; a slow one is cut off
	return failed
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}
