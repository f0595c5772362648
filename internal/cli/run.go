package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/cluster"
	"github.com/opportunist/opportunist/internal/exporter"
	"github.com/opportunist/opportunist/internal/version"
)

type runOptions struct {
	kube          kubeOptions
	ListenAddress string
	ProbeInterval time.Duration
	Resync        time.Duration
	LogFormat     string
	LogLevel      string
}

func defaultRunOptions() *runOptions {
	return &runOptions{
		kube:          defaultKubeOptions(),
		ListenAddress: ":8080",
		ProbeInterval: time.Second,
		LogFormat:     "text",
		LogLevel:      "info",
	}
}

func (o *runOptions) AddFlags(fs *pflag.FlagSet) {
	o.kube.AddFlags(fs)
	fs.StringVar(&o.ListenAddress, "listen-address", o.ListenAddress, "address serving /metrics, /healthz and /readyz (use 127.0.0.1:PORT to keep it on loopback)")
	fs.DurationVar(&o.ProbeInterval, "probe-interval", o.ProbeInterval, "how often the API server's /readyz is probed; /readyz of opportunist fails while it does not answer")
	fs.DurationVar(&o.Resync, "resync-period", o.Resync, "informer resync period (0 disables resyncs; the model is updated by events)")
	fs.StringVar(&o.LogFormat, "log-format", o.LogFormat, "log format: text or json")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "log level: debug, info, warn or error")
}

// Validate returns every problem with the flags at once.
func (o *runOptions) Validate() []error {
	errs := o.kube.Validate()
	if _, _, err := net.SplitHostPort(o.ListenAddress); err != nil {
		errs = append(errs, fmt.Errorf("--listen-address %q: %s", o.ListenAddress, oneLine(err)))
	}
	if o.ProbeInterval <= 0 {
		errs = append(errs, fmt.Errorf("--probe-interval must be positive, got %s", o.ProbeInterval))
	}
	if o.Resync < 0 {
		errs = append(errs, fmt.Errorf("--resync-period must not be negative, got %s", o.Resync))
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format must be text or json, got %q", o.LogFormat))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level must be debug, info, warn or error, got %q", o.LogLevel))
	}
	return errs
}

func newRunCommand() *cobra.Command {
	o := defaultRunOptions()
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Watch the cluster and serve its capacity on /metrics",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(o.Validate()); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return o.run(ctx)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func (o *runOptions) logger() *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(o.LogLevel)) // checked by Validate
	hopts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, hopts)
	if o.LogFormat == "json" {
		h = slog.NewJSONHandler(os.Stderr, hopts)
	}
	// client-go logs through klog; send it to the same structured stream.
	klog.SetLogger(logr.FromSlogHandler(h))
	return slog.New(h)
}

func (o *runOptions) run(ctx context.Context) error {
	log := o.logger()
	client, cfg, err := o.kube.client(ctx)
	if err != nil {
		return err
	}
	// Bind before starting anything, so a taken port is a clear error up front.
	ln, err := net.Listen("tcp", o.ListenAddress)
	if err != nil {
		return fmt.Errorf("--listen-address %s: %s", o.ListenAddress, reason(err))
	}
	c := cluster.New(client, cluster.Options{Resync: o.Resync, ProbeInterval: o.ProbeInterval})

	reg := prometheus.NewRegistry()
	reg.MustRegister(exporter.NewCollector(c), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := c.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	runDone := make(chan struct{})
	go func() { c.Run(ctx); close(runDone) }()
	log.Info("started", "version", version.Get().Version, "apiServer", cfg.Host, "listen", ln.Addr().String())
	go func() {
		if err := c.WaitForSync(ctx); err == nil {
			rep := c.Report()
			cpu, _ := rep.Resource("cpu")
			log.Info("informers synced", "readyNodes", rep.States[capacity.NodeReady].Nodes, "cpuAllocatableMilli", cpu.Allocatable, "cpuRequestsMilli", cpu.Requests)
		}
	}()

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("serving %s: %w", ln.Addr(), err)
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutting down the HTTP server: %w", err)
	}
	<-runDone
	return nil
}
