// Command sample-metrics-app is the write-up's demo app: an HTTP server that
// answers every request with its name and how many requests it has served,
// and counts them in the Prometheus counter http_requests_total (the name,
// help and answer of the write-up's Node.js app). A metrics adapter
// (Prometheus + prometheus-adapter in the write-up) turns that counter into
// the per-pod rate `http_requests` its HPA scales on.
//
//	sample-metrics-app [--listen-address :8080] [--name NAME] [--shutdown-timeout 10s]
//
// GET /metrics serves the counter (plus Go and process metrics) and GET
// /healthz answers ok; neither is counted. (The write-up's app counted its
// own scrapes, which is why its HPA read 433m a pod with no traffic at all.)
// SIGTERM or SIGINT stops it gracefully: in-flight requests finish within
// --shutdown-timeout.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
)

type options struct {
	ListenAddress   string
	Name            string
	ShutdownTimeout time.Duration
}

func defaultOptions() options {
	// In a pod the hostname is the pod name, which is what the write-up's
	// answers showed ("Hello! My name is sample-metrics-app-85b4c48ff-pgmm5").
	name, _ := os.Hostname()
	if n := os.Getenv("POD_NAME"); n != "" {
		name = n
	}
	return options{ListenAddress: ":8080", Name: name, ShutdownTimeout: 10 * time.Second}
}

func (o *options) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ListenAddress, "listen-address", o.ListenAddress, "address serving /, /metrics and /healthz")
	fs.StringVar(&o.Name, "name", o.Name, "name the app answers with (default: $POD_NAME, else the hostname)")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.ShutdownTimeout, "how long in-flight requests may take to finish after SIGTERM")
}

// validate returns every problem at once.
func (o options) validate() []error {
	var errs []error
	if _, _, err := net.SplitHostPort(o.ListenAddress); err != nil {
		errs = append(errs, fmt.Errorf("--listen-address %q is not host:port", o.ListenAddress))
	}
	if o.Name == "" {
		errs = append(errs, errors.New("--name is empty (and neither $POD_NAME nor the hostname gave one)"))
	}
	if o.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--shutdown-timeout %s must be positive", o.ShutdownTimeout))
	}
	return errs
}

// app answers on / and counts what it answers.
type app struct {
	name     string
	served   atomic.Int64
	requests prometheus.Counter
}

func newApp(name string, reg prometheus.Registerer) *app {
	a := &app{
		name: name,
		requests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "The amount of requests served by the server in total",
		}),
	}
	reg.MustRegister(a.requests)
	return a
}

func (a *app) hello(w http.ResponseWriter, _ *http.Request) {
	n := a.served.Add(1)
	a.requests.Inc()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "Hello! My name is %s. I have served %d requests so far.\n", a.name, n)
}

// handler routes /metrics and /healthz; every other request is load.
func handler(a *app, gather prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", a.hello)
	mux.Handle("GET /metrics", promhttp.HandlerFor(gather, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	return mux
}

// serve runs the server on ln until ctx ends, then shuts it down gracefully.
func serve(ctx context.Context, ln net.Listener, h http.Handler, timeout time.Duration, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	return nil
}

func run(ctx context.Context, args []string) error {
	o := defaultOptions()
	fs := pflag.NewFlagSet("sample-metrics-app", pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // a bad flag is one line, not the usage
	o.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Printf("usage: sample-metrics-app [flags]\n%s", fs.FlagUsages())
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
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := newApp(o.Name, reg)
	ln, err := net.Listen("tcp", o.ListenAddress)
	if err != nil {
		return err
	}
	log.Info("serving", "address", ln.Addr().String(), "name", o.Name)
	return serve(ctx, ln, handler(a, reg), o.ShutdownTimeout, log)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sample-metrics-app:", oneLine(err))
		os.Exit(1)
	}
}

// oneLine joins the lines of errors.Join into one: bad input gets one line.
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
