//go:build !nocluster

package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/scale"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/cluster"
	"github.com/opportunist/opportunist/internal/controller"
	"github.com/opportunist/opportunist/internal/history"
	"github.com/opportunist/opportunist/internal/reclaim"
)

// crdInstalled reports whether the API server serves OpportunisticScalers.
func crdInstalled(client kubernetes.Interface) (bool, error) {
	_, err := client.Discovery().ServerResourcesForGroupVersion(v1alpha1.GroupVersion.String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// startController builds the manager (leader election, scaler and HPA
// caches) and the reconciler, and runs it until ctx ends. Only the leader
// writes; every replica serves metrics, a standby its leader's decisions as
// the scalers' status shows them.
func (o *runOptions) startController(ctx context.Context, cfg *rest.Config, kube kubernetes.Interface, capacity *cluster.Cache, decisions *controller.DecisionStore, reg prometheus.Registerer, log *slog.Logger) (<-chan error, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		// The scaler cache's watches without --request-timeout, which bounds
		// a whole request and ended them every 10 s; its client's reads and
		// writes keep it.
		NewCache: func(c *rest.Config, opts cache.Options) (cache.Cache, error) {
			c = rest.CopyConfig(c)
			c.Timeout = 0
			// The manager's shared HTTP client carries the timeout too.
			hc, err := rest.HTTPClientFor(c)
			if err != nil {
				return nil, err
			}
			opts.HTTPClient = hc
			return cache.New(c, opts)
		},
		Logger:                        logr.FromSlogHandler(log.Handler()),
		Metrics:                       metricsserver.Options{BindAddress: "0"}, // served on --listen-address
		HealthProbeBindAddress:        "0",
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              "opportunist-controller",
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &o.LeaseDuration,
		RenewDeadline:                 &o.RenewDeadline,
		RetryPeriod:                   &o.RetryPeriod,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the controller manager: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	scales, err := scale.NewForConfig(cfg, mgr.GetRESTMapper(), dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(kube.Discovery()))
	if err != nil {
		return nil, err
	}
	// Target reads come from watches; writes go through the cache, so it
	// knows the count it wrote before the watch shows it. The watches' clients
	// have no --request-timeout: it would end each watch after that long.
	watchCfg := rest.CopyConfig(cfg)
	watchCfg.Timeout = 0
	watchDyn, err := dynamic.NewForConfig(watchCfg)
	if err != nil {
		return nil, err
	}
	watchKube, err := kubernetes.NewForConfig(watchCfg)
	if err != nil {
		return nil, err
	}
	targets := controller.NewTargetCache(controller.TargetClients{Dynamic: dyn, Kube: kube, WatchDynamic: watchDyn, WatchKube: watchKube},
		scales, mgr.GetRESTMapper(), mgr.GetClient(), log)
	if err := mgr.Add(targets); err != nil {
		return nil, fmt.Errorf("setting up the target cache: %w", err)
	}
	r := &controller.Reconciler{
		Client:    mgr.GetClient(),
		Targets:   &controller.TargetReader{Mapper: mgr.GetRESTMapper(), Scales: targets.WriteThrough(scales), Dynamic: dyn, Kube: kube, Cache: targets},
		Capacity:  capacity,
		Recorder:  mgr.GetEventRecorder("opportunist"),
		Log:       log,
		Clock:     clock.RealClock{},
		Resync:    o.RoundInterval,
		Metrics:   controller.NewMetrics(reg),
		Decisions: decisions,
		Stale:     o.stalePolicy(),
		Scoring:   o.scoring(),

		StatusInterval: o.StatusInterval,
		// Rounds start at most once per --min-round-interval.
		MinRoundInterval: o.MinRoundInterval,
	}
	r.HistoryClock, r.HistoryTimeScale = o.historyClock(time.Now()), o.HistoryTimeScale
	ns := o.HistoryNamespace
	if ns == "" {
		ns = o.LeaderElectionNamespace
	}
	store := &history.ConfigMapStore{Client: kube, Namespace: ns, Logf: func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...)) }}
	if keeper := o.historyKeeper(ctx, store, r, mgr.GetClient(), r.HistoryClock, controller.NewHistoryMetrics(reg), log); keeper != nil {
		r.HistoryLoaded = keeper.Loaded()
		if err := mgr.Add(keeper); err != nil {
			return nil, fmt.Errorf("setting up the demand history keeper: %w", err)
		}
	}
	changes := capacity.Changes()
	if o.Reclaim.Enabled {
		rc, usage, err := o.reclaimer(cfg, kube, capacity, reg, log)
		if err != nil {
			return nil, err
		}
		if err := mgr.Add(usage); err != nil {
			return nil, fmt.Errorf("setting up the usage reader: %w", err)
		}
		r.Reclaimer = rc
		changes = merge(ctx, changes, usage.Changes())
	}
	if err := r.SetupWithManager(mgr, changes); err != nil {
		return nil, fmt.Errorf("setting up the reconciler: %w", err)
	}
	mirror := &controller.StatusMirror{Reader: mgr.GetClient(), Store: decisions, Elected: mgr.Elected(), Interval: time.Second}
	if err := mgr.Add(mirror); err != nil {
		return nil, fmt.Errorf("setting up the standby status mirror: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return done, nil
}

// reclaimer wires usage-based reclaim: metrics.k8s.io read every
// --reclaim-usage-interval by the leader, node rooms published on nodes/status.
func (o *runOptions) reclaimer(cfg *rest.Config, kube kubernetes.Interface, c *cluster.Cache, reg prometheus.Registerer, log *slog.Logger) (*controller.Reclaimer, *controller.UsageHistory, error) {
	mc, err := metricsclient.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the metrics.k8s.io client: %w", err)
	}
	usage := &controller.UsageHistory{
		Reader: controller.MetricsAPIUsage{Client: mc.MetricsV1beta1()}, Clock: clock.RealClock{}, Log: log,
		Interval: o.Reclaim.UsageInterval, Window: o.Reclaim.Window, StaleAfter: o.Reclaim.StaleAfter,
	}
	res := reclaim.DefaultReservation
	res.Settle, res.Window = o.Reclaim.Settle, o.Reclaim.Window
	return &controller.Reclaimer{
		Usage: usage, Paid: c, Nodes: controller.NodeStatusPatcher{Kube: kube},
		Reservation: res, Rooms: reclaim.RoomHistory{Hold: o.Reclaim.Hold}, Metrics: controller.NewReclaimMetrics(reg), Log: log,
		Evict: controller.PodEvicter{Kube: kube},
	}, usage, nil
}

// merge forwards a signal of either channel, until ctx ends.
func merge(ctx context.Context, a, b <-chan struct{}) <-chan struct{} {
	out := make(chan struct{}, 1)
	signal := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-a:
				signal()
			case <-b:
				signal()
			}
		}
	}()
	return out
}
