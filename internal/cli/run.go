//go:build !nocluster

package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/credentials"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/cluster"
	"github.com/opportunist/opportunist/internal/controller"
	"github.com/opportunist/opportunist/internal/dashboard"
	"github.com/opportunist/opportunist/internal/exporter"
	"github.com/opportunist/opportunist/internal/keda"
	"github.com/opportunist/opportunist/internal/metricsapi"
	"github.com/opportunist/opportunist/internal/reclaim"
	"github.com/opportunist/opportunist/internal/version"
)

type runOptions struct {
	kube          kubeOptions
	ListenAddress string
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	Resync        time.Duration
	LogFormat     string
	LogLevel      string
	// Controller runs the OpportunisticScaler controller when its CRD is installed.
	Controller              bool
	LeaderElect             bool
	LeaderElectionNamespace string
	LeaseDuration           time.Duration // leader election timings, as client-go names them
	RenewDeadline           time.Duration
	RetryPeriod             time.Duration
	RoundInterval           time.Duration
	// StatusInterval: how often a scaler's status is rewritten when only its
	// live numbers (budget, fit, the reason's text) changed.
	StatusInterval time.Duration
	// MinRoundInterval spaces the starts of rounds, coalescing bursts of events.
	MinRoundInterval time.Duration
	// StaleAfter and OnStale: how long capacity data may be stale before
	// OnStale (freeze or shrink-to-min) applies.
	StaleAfter time.Duration
	OnStale    string
	// SchedulerScoring is the cluster's NodeResourcesFit scoring strategy
	// (capacity.Scoring): where scalers with slots expect new replicas.
	SchedulerScoring string
	// MetricsAPI serves custom.metrics.k8s.io and external.metrics.k8s.io.
	MetricsAPI     metricsapi.ServerOptions
	MetricsService string
	// KEDAScalerAddress serves KEDA's external scaler gRPC protocol ("": off).
	KEDAScalerAddress string
	KEDAScalerTLS     keda.TLSOptions
	// History* persist and backfill the demand history (history.go).
	HistoryNamespace       string
	HistorySaveInterval    time.Duration
	HistoryPrometheusURL   string
	HistoryPrometheusQuery []string
	HistoryTimeScale       float64
	HistoryTimeOrigin      string
	// Reclaim runs usage-based reclaim (docs/reclaim.md) for the scalers
	// with spec.reclaim enabled.
	Reclaim reclaimOptions
	// Profiling serves net/http/pprof under /debug/pprof/ on ListenAddress.
	Profiling bool
}

// reclaimOptions are the live reclaim's flags.
type reclaimOptions struct {
	Enabled       bool
	UsageInterval time.Duration
	StaleAfter    time.Duration
	Settle        time.Duration
	Window        time.Duration
	Hold          time.Duration
}

func defaultRunOptions() *runOptions {
	return &runOptions{
		kube:             defaultKubeOptions(),
		ListenAddress:    ":8080",
		ProbeInterval:    time.Second,
		ProbeTimeout:     cluster.DefaultProbeTimeout,
		LogFormat:        "text",
		LogLevel:         "info",
		Controller:       true,
		LeaderElect:      true,
		LeaseDuration:    15 * time.Second,
		RenewDeadline:    10 * time.Second,
		RetryPeriod:      2 * time.Second,
		RoundInterval:    5 * time.Second,
		StatusInterval:   30 * time.Second,
		StaleAfter:       controller.DefaultStalePolicy().After,
		OnStale:          string(controller.DefaultStalePolicy().Behaviour),
		SchedulerScoring: string(capacity.LeastAllocated),
		MetricsAPI:       metricsapi.ServerOptions{BindAddress: "0.0.0.0"},
		MetricsService:   "cluster-metrics",
		// A burst of events within a second is one round.
		MinRoundInterval: time.Second,
		Reclaim: reclaimOptions{
			UsageInterval: 15 * time.Second, // metrics-server's resolution
			StaleAfter:    reclaim.DefaultMaxAge,
			Settle:        reclaim.DefaultReservation.Settle,
			Window:        reclaim.DefaultReservation.Window,
			Hold:          reclaim.DefaultHold,
		},
		HistorySaveInterval: 5 * time.Minute,
		HistoryTimeScale:    1,
	}
}

func (o *runOptions) AddFlags(fs *pflag.FlagSet) {
	o.kube.AddFlags(fs)
	fs.StringVar(&o.ListenAddress, "listen-address", o.ListenAddress, "address serving /metrics, /healthz, /readyz and the dashboard on /dashboard/ (use 127.0.0.1:PORT to keep it on loopback)")
	fs.DurationVar(&o.ProbeInterval, "probe-interval", o.ProbeInterval, "how often the API server's /readyz is probed; /readyz of opportunist fails while it does not answer")
	fs.DurationVar(&o.ProbeTimeout, "probe-timeout", o.ProbeTimeout, "how long the API server may take to answer a probe before it counts as not answering (a slow answer is an answer; one that is down refuses at once)")
	fs.DurationVar(&o.Resync, "resync-period", o.Resync, "informer resync period (0 disables resyncs; the model is updated by events)")
	fs.StringVar(&o.LogFormat, "log-format", o.LogFormat, "log format: text or json")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "log level: debug, info, warn or error")
	fs.BoolVar(&o.Controller, "controller", o.Controller, "run the OpportunisticScaler controller (skipped with a warning when its CRD is not installed)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "elect one leader among replicas; only the leader writes")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", o.LeaderElectionNamespace, "namespace of the leader election Lease (default: the pod's namespace in a cluster, else default)")
	fs.DurationVar(&o.LeaseDuration, "leader-election-lease-duration", o.LeaseDuration, "how long a standby waits after the leader's last renewal before taking over")
	fs.DurationVar(&o.RenewDeadline, "leader-election-renew-deadline", o.RenewDeadline, "how long the leader keeps trying to renew before it gives up leading (and exits)")
	fs.DurationVar(&o.RetryPeriod, "leader-election-retry-period", o.RetryPeriod, "how often candidates try to acquire or renew the lease")
	fs.DurationVar(&o.RoundInterval, "round-interval", o.RoundInterval, "longest time between two rounds of the control law when nothing changes")
	fs.DurationVar(&o.StatusInterval, "status-interval", o.StatusInterval, "how often a scaler's status is rewritten when only its live numbers changed (budget, fit, the reason's text); any other change is written at once (0: every change)")
	fs.DurationVar(&o.MinRoundInterval, "min-round-interval", o.MinRoundInterval, "least time between the starts of two rounds: the events of a burst within it are served by one round at its end, except that a paid pod newly pending runs its round after a tenth of it (0: a round per event)")
	fs.DurationVar(&o.StaleAfter, "stale-after", o.StaleAfter, "how long the capacity data may be stale (a watch failing, the API server not answering) before --on-stale applies; until then the controller holds every target")
	fs.StringVar(&o.OnStale, "on-stale", o.OnStale, "what the controller does once the data has been stale for --stale-after: freeze (hold every target) or shrink-to-min (scale every target down to its minReplicas)")
	fs.StringVar(&o.SchedulerScoring, "scheduler-scoring", o.SchedulerScoring, "how the cluster's kube-scheduler scores nodes (its NodeResourcesFit strategy): LeastAllocated (its default, spreads pods) or MostAllocated (packs); scalers with spec.headroomSlots place their new replicas as it would")
	fs.IntVar(&o.MetricsAPI.SecurePort, "metrics-api-port", o.MetricsAPI.SecurePort, "HTTPS port serving custom.metrics.k8s.io and external.metrics.k8s.io to the API server's aggregator (0: off)")
	fs.StringVar(&o.MetricsAPI.BindAddress, "metrics-api-bind-address", o.MetricsAPI.BindAddress, "IP address the metrics APIs listen on")
	fs.StringVar(&o.MetricsAPI.CertFile, "metrics-api-tls-cert-file", o.MetricsAPI.CertFile, "serving certificate of the metrics APIs (default: self-signed, generated)")
	fs.StringVar(&o.MetricsAPI.KeyFile, "metrics-api-tls-private-key-file", o.MetricsAPI.KeyFile, "private key of --metrics-api-tls-cert-file")
	fs.StringVar(&o.MetricsAPI.CertDir, "metrics-api-cert-dir", o.MetricsAPI.CertDir, "where the self-signed certificate is written (default: a temporary directory)")
	fs.StringVar(&o.KEDAScalerAddress, "keda-scaler-address", o.KEDAScalerAddress, "address serving KEDA's external scaler gRPC protocol, e.g. :9090 (a ScaledObject's external trigger names the scaler: scaler: <name>; docs/keda.md); empty: off")
	fs.StringVar(&o.KEDAScalerTLS.CertFile, "keda-scaler-tls-cert-file", o.KEDAScalerTLS.CertFile, "serving certificate of the KEDA scaler (for the trigger's enableTLS and caCert); empty: plaintext")
	fs.StringVar(&o.KEDAScalerTLS.KeyFile, "keda-scaler-tls-private-key-file", o.KEDAScalerTLS.KeyFile, "private key of --keda-scaler-tls-cert-file")
	fs.StringVar(&o.KEDAScalerTLS.ClientCAFile, "keda-scaler-client-ca-file", o.KEDAScalerTLS.ClientCAFile, "CA bundle whose client certificates the KEDA scaler requires (the trigger's tlsClientCert and tlsClientKey); empty: no client certificate asked")
	fs.BoolVar(&o.Reclaim.Enabled, "reclaim", o.Reclaim.Enabled, "run usage-based reclaim for the scalers with spec.reclaim enabled: read usage from metrics.k8s.io (metrics-server) and publish each pool node's room as the extended resource opportunist.io/reclaimable-cpu (needs RBAC to patch nodes/status and read metrics.k8s.io; docs/reclaim.md)")
	fs.DurationVar(&o.Reclaim.UsageInterval, "reclaim-usage-interval", o.Reclaim.UsageInterval, "how often usage is read from metrics.k8s.io (metrics-server's resolution is 15s)")
	fs.DurationVar(&o.Reclaim.StaleAfter, "reclaim-stale-after", o.Reclaim.StaleAfter, "usage older than this (or none read yet) reclaims nothing: each node's room falls to what requests allow")
	fs.DurationVar(&o.Reclaim.Settle, "reclaim-settle", o.Reclaim.Settle, "how long a paid pod's reservation stays at its request before it decays (over as long again) towards its recent usage")
	fs.DurationVar(&o.Reclaim.Window, "reclaim-window", o.Reclaim.Window, "how much of each paid pod's usage history its reservation's quantile covers")
	fs.DurationVar(&o.Reclaim.Hold, "reclaim-hold", o.Reclaim.Hold, "how long a node's reclaimable room must have lasted before reclaiming pods grow onto it (each node publishes the lowest of this window, never below what its reclaiming pods hold while they fit; 0: no hold); a fall below what they hold is yielded at once")
	o.addHistoryFlags(fs)
	fs.BoolVar(&o.Profiling, "profiling", o.Profiling, "serve Go's profiles (net/http/pprof) under /debug/pprof/ on --listen-address, e.g. /debug/pprof/heap?gc=1 (off by default: a CPU profile costs CPU while it runs, and the port has no authentication)")
	fs.StringVar(&o.MetricsService, "metrics-service", o.MetricsService, "Service name on which the cluster-wide metrics are served as Object metrics (the write-up's HPA names cluster-metrics)")
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
	if o.ProbeTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--probe-timeout must be positive, got %s", o.ProbeTimeout))
	}
	if o.MetricsAPI.SecurePort < 0 || o.MetricsAPI.SecurePort > 65535 {
		errs = append(errs, fmt.Errorf("--metrics-api-port must be 0 (off) or a port, got %d", o.MetricsAPI.SecurePort))
	}
	if net.ParseIP(o.MetricsAPI.BindAddress) == nil {
		errs = append(errs, fmt.Errorf("--metrics-api-bind-address %q is not an IP address", o.MetricsAPI.BindAddress))
	}
	if (o.MetricsAPI.CertFile == "") != (o.MetricsAPI.KeyFile == "") {
		errs = append(errs, errors.New("--metrics-api-tls-cert-file and --metrics-api-tls-private-key-file go together"))
	}
	if o.KEDAScalerAddress != "" {
		if _, _, err := net.SplitHostPort(o.KEDAScalerAddress); err != nil {
			errs = append(errs, fmt.Errorf("--keda-scaler-address %q: %s (e.g. :9090)", o.KEDAScalerAddress, oneLine(err)))
		}
		if _, err := o.KEDAScalerTLS.ServerCredentials(); err != nil {
			errs = append(errs, err)
		}
	} else if o.KEDAScalerTLS != (keda.TLSOptions{}) {
		errs = append(errs, errors.New("the --keda-scaler-tls-* and --keda-scaler-client-ca-file flags need --keda-scaler-address"))
	}
	errs = append(errs, o.validateHistory()...)
	if o.MetricsService == "" {
		errs = append(errs, errors.New("--metrics-service must not be empty"))
	}
	if o.RoundInterval <= 0 {
		errs = append(errs, fmt.Errorf("--round-interval must be positive, got %s", o.RoundInterval))
	}
	if o.StatusInterval < 0 {
		errs = append(errs, fmt.Errorf("--status-interval must not be negative, got %s", o.StatusInterval))
	}
	if o.MinRoundInterval < 0 {
		errs = append(errs, fmt.Errorf("--min-round-interval must not be negative, got %s", o.MinRoundInterval))
	}
	if o.StaleAfter < 0 {
		errs = append(errs, fmt.Errorf("--stale-after must not be negative, got %s", o.StaleAfter))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"reclaim-usage-interval", o.Reclaim.UsageInterval}, {"reclaim-stale-after", o.Reclaim.StaleAfter}, {"reclaim-window", o.Reclaim.Window}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be positive, got %s", d.flag, d.v))
		}
	}
	if o.Reclaim.Settle < 0 {
		errs = append(errs, fmt.Errorf("--reclaim-settle must not be negative, got %s", o.Reclaim.Settle))
	}
	if o.Reclaim.Hold < 0 {
		errs = append(errs, fmt.Errorf("--reclaim-hold must not be negative, got %s", o.Reclaim.Hold))
	}
	if err := (controller.StalePolicy{Behaviour: controller.StaleBehaviour(o.OnStale)}).Valid(); err != nil {
		errs = append(errs, fmt.Errorf("--%s", err))
	}
	if _, err := capacity.ParseScoring(o.SchedulerScoring); err != nil {
		errs = append(errs, fmt.Errorf("--scheduler-scoring: %w", err))
	}
	if o.LeaderElect {
		errs = append(errs, o.validateLease()...)
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

// scoring is --scheduler-scoring, checked by Validate.
func (o *runOptions) scoring() capacity.Scoring {
	s, _ := capacity.ParseScoring(o.SchedulerScoring)
	return s
}

func (o *runOptions) stalePolicy() controller.StalePolicy {
	return controller.StalePolicy{After: o.StaleAfter, Behaviour: controller.StaleBehaviour(o.OnStale)}
}

// validateLease checks the lease timings as client-go's leader election
// would, but with the flags' names.
func (o *runOptions) validateLease() []error {
	var errs []error
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"lease-duration", o.LeaseDuration}, {"renew-deadline", o.RenewDeadline}, {"retry-period", o.RetryPeriod}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("--leader-election-%s must be positive, got %s", d.flag, d.v))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if o.LeaseDuration <= o.RenewDeadline {
		errs = append(errs, fmt.Errorf("--leader-election-lease-duration (%s) must be longer than --leader-election-renew-deadline (%s)", o.LeaseDuration, o.RenewDeadline))
	}
	if float64(o.RenewDeadline) <= leaderelection.JitterFactor*float64(o.RetryPeriod) {
		errs = append(errs, fmt.Errorf("--leader-election-renew-deadline (%s) must be longer than %.1f x --leader-election-retry-period (%s)", o.RenewDeadline, leaderelection.JitterFactor, o.RetryPeriod))
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
	// controller-runtime's informers log through its own global logger; unset,
	// it prints a warning with a stack trace instead.
	ctrllog.SetLogger(logr.FromSlogHandler(h))
	return slog.New(h)
}

// addProfiling serves net/http/pprof under /debug/pprof/ when --profiling
// is set. Registered on our mux, not http.DefaultServeMux (which the pprof
// package fills on import and nothing here serves).
func (o *runOptions) addProfiling(mux *http.ServeMux) {
	if !o.Profiling {
		return
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index) // heap, allocs, goroutine... by name
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// maybeStartController starts the controller when asked and possible; the
// returned channel (nil when not started) reports its end.
// maybeServeMetricsAPI serves the metrics APIs when --metrics-api-port is
// set; the returned channel (nil when off) reports its end.
func (o *runOptions) maybeServeMetricsAPI(ctx context.Context, c *cluster.Cache, decisions *controller.DecisionStore, controllerRuns bool, log *slog.Logger) <-chan error {
	if o.MetricsAPI.SecurePort == 0 {
		return nil
	}
	p := &metricsapi.Provider{Capacity: c, Service: o.MetricsService, Clock: clock.RealClock{}}
	if controllerRuns {
		p.Decisions = decisions
	}
	opts := o.MetricsAPI
	done := make(chan error, 1)
	go func() {
		// Delegated authentication reads a kubeconfig file; it must be the
		// cluster and user this process uses (--context included).
		var cleanup func()
		var err error
		opts.Kubeconfig, cleanup, err = o.kube.delegationKubeconfig()
		defer cleanup()
		if err == nil {
			err = metricsapi.Run(ctx, opts, p)
		}
		if err != nil {
			log.Error("metrics API stopped", "err", err)
		}
		done <- err
	}()
	log.Info("serving custom.metrics.k8s.io and external.metrics.k8s.io", "port", opts.SecurePort)
	return done
}

// listenKEDAScaler binds --keda-scaler-address (nil when off) and loads its
// certificates, before anything starts, so either failing is a clear error
// up front.
func (o *runOptions) listenKEDAScaler() (net.Listener, credentials.TransportCredentials, error) {
	if o.KEDAScalerAddress == "" {
		return nil, nil, nil
	}
	creds, err := o.KEDAScalerTLS.ServerCredentials()
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", o.KEDAScalerAddress)
	if err != nil {
		return nil, nil, listenError("--keda-scaler-address", o.KEDAScalerAddress, err)
	}
	return ln, creds, nil
}

// serveKEDAScaler serves KEDA's external scaler protocol on ln; the returned
// channel (nil when off) reports its end.
func serveKEDAScaler(ctx context.Context, ln net.Listener, creds credentials.TransportCredentials, c *cluster.Cache, decisions *controller.DecisionStore, log *slog.Logger) <-chan error {
	if ln == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- keda.Serve(ctx, ln, &keda.Scaler{Decisions: decisions, Ready: c.Ready}, creds) }()
	log.Info("serving KEDA's external scaler protocol", "address", ln.Addr().String(), "tls", creds != nil)
	return done
}

func (o *runOptions) maybeStartController(ctx context.Context, cfg *rest.Config, client kubernetes.Interface, c *cluster.Cache, decisions *controller.DecisionStore, reg prometheus.Registerer, log *slog.Logger) (<-chan error, error) {
	if !o.Controller {
		return nil, nil
	}
	installed, err := crdInstalled(client)
	if err != nil {
		return nil, fmt.Errorf("checking for the OpportunisticScaler CRD: %s", oneLine(err))
	}
	if !installed {
		log.Warn("OpportunisticScaler CRD not installed: serving capacity only (install config/crd to scale workloads)")
		return nil, nil
	}
	if o.LeaderElectionNamespace == "" {
		o.LeaderElectionNamespace = podNamespace()
	}
	return o.startController(ctx, cfg, client, c, decisions, reg, log)
}

// podNamespace is the namespace of the pod we run in, else "default".
func podNamespace() string {
	if ns, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(ns) > 0 {
		return strings.TrimSpace(string(ns))
	}
	return "default"
}

func (o *runOptions) run(ctx context.Context) error {
	ctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	log := o.logger()
	client, cfg, err := o.kube.client(ctx)
	if err != nil {
		return err
	}
	// Bind before starting anything, so a taken port is a clear error up front.
	ln, err := net.Listen("tcp", o.ListenAddress)
	if err != nil {
		return listenError("--listen-address", o.ListenAddress, err)
	}
	kedaLn, kedaCreds, err := o.listenKEDAScaler()
	if err != nil {
		ln.Close()
		return err
	}
	// The pod and node informers over protobuf; everything else (custom
	// resources among it) over JSON.
	cacheClient, err := protobufClient(cfg)
	if err != nil {
		ln.Close()
		if kedaLn != nil {
			kedaLn.Close()
		}
		return err
	}
	reg := prometheus.NewRegistry()
	c := cluster.New(cacheClient, cluster.Options{Resync: o.Resync, ProbeInterval: o.ProbeInterval, ProbeTimeout: o.ProbeTimeout, PaidPodScheduled: exporter.NewPaidPodWaitObserver(reg)})

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
	decisions := controller.NewDecisionStore()
	dash := newClusterSource(c, decisions)
	go dash.run(ctx, time.Second)
	mux.Handle("GET /dashboard/", dashboard.NewHandler(dash, dashboard.WithPrefix("/dashboard"), dashboard.WithContext(ctx)))
	// One scaler's decision as JSON, for KEDA's metrics-api scaler (docs/keda.md).
	mux.Handle("/api/v1/scalers/", controller.NewScalerAPI(decisions, c.Ready))
	o.addProfiling(mux)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	runDone := make(chan struct{})
	go func() { c.Run(ctx); close(runDone) }()
	ctrlDone, err := o.maybeStartController(ctx, cfg, client, c, decisions, reg, log)
	if err != nil {
		return err
	}
	apiDone := o.maybeServeMetricsAPI(ctx, c, decisions, ctrlDone != nil, log)
	kedaDone := serveKEDAScaler(ctx, kedaLn, kedaCreds, c, decisions, log)
	log.Info("started", "version", version.Get().Version, "apiServer", cfg.Host, "listen", ln.Addr().String())
	go func() {
		if err := c.WaitForSync(ctx); err == nil {
			rep := c.Report()
			cpu, _ := rep.Resource("cpu")
			log.Info("informers synced", "readyNodes", rep.States[capacity.NodeReady].Nodes, "cpuAllocatableMilli", cpu.Allocatable, "cpuRequestsMilli", cpu.Requests)
		}
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("serving %s: %w", ln.Addr(), err)
	case err := <-apiDone:
		runErr, apiDone = err, nil
	case err := <-kedaDone:
		runErr, kedaDone = fmt.Errorf("serving the KEDA scaler: %w", err), nil
	case err := <-ctrlDone:
		// The manager ends on its own only when something is wrong, e.g. a
		// lost leader lease: exit, and let the supervisor restart us.
		runErr, ctrlDone = fmt.Errorf("controller stopped: %v", err), nil
	}
	log.Info("shutting down")
	stopAll()
	if ctrlDone != nil {
		// Wait for the manager to release the leader lease, so a standby
		// takes over at once rather than after the lease expires.
		select {
		case <-ctrlDone:
		case <-time.After(10 * time.Second):
			log.Warn("controller did not stop within 10s")
		}
	}
	if apiDone != nil {
		<-apiDone
	}
	if kedaDone != nil {
		<-kedaDone
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) && runErr == nil {
		runErr = fmt.Errorf("shutting down the HTTP server: %w", err)
	}
	<-runDone
	return runErr
}
