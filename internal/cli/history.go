//go:build !nocluster

package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/controller"
	"github.com/opportunist/opportunist/internal/history"
)

func (o *runOptions) addHistoryFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.HistoryNamespace, "history-namespace", o.HistoryNamespace, "namespace of the ConfigMaps that keep each scaler's paid-demand history across restarts and failovers (default: --leader-election-namespace)")
	fs.DurationVar(&o.HistorySaveInterval, "history-save-interval", o.HistorySaveInterval, "how often the leader saves the demand histories (and once more at shutdown); 0: not persisted, a new leader starts without history")
	fs.StringVar(&o.HistoryPrometheusURL, "history-prometheus-url", o.HistoryPrometheusURL, "a Prometheus whose past 14 days fill the demand histories' gaps when a leader starts, e.g. http://prometheus.monitoring:9090 (default queries: opportunist's own paid-demand metrics; see --history-prometheus-query)")
	fs.StringArrayVar(&o.HistoryPrometheusQuery, "history-prometheus-query", o.HistoryPrometheusQuery, "resource=PromQL returning one series of paid demand in milli-cores (cpu) or bytes, e.g. 'cpu=cpu_requests_total' for the write-up's exporter; repeat per resource; replaces the default queries")
	fs.Float64Var(&o.HistoryTimeScale, "history-time-scale", o.HistoryTimeScale, "tests only: the demand history's clock runs this many times faster than the real one from the start")
	fs.StringVar(&o.HistoryTimeOrigin, "history-time-origin", o.HistoryTimeOrigin, "tests only: the instant (RFC 3339) from which --history-time-scale counts, the same for every replica so that a failover keeps the clock (default: this process's start)")
	_ = fs.MarkHidden("history-time-scale")
	_ = fs.MarkHidden("history-time-origin")
}

func (o *runOptions) validateHistory() []error {
	var errs []error
	if o.HistorySaveInterval < 0 {
		errs = append(errs, fmt.Errorf("--history-save-interval must not be negative, got %s", o.HistorySaveInterval))
	}
	if !(o.HistoryTimeScale > 0) {
		errs = append(errs, fmt.Errorf("--history-time-scale must be positive, got %v", o.HistoryTimeScale))
	}
	if _, err := o.timeOrigin(); err != nil {
		errs = append(errs, err)
	}
	if _, err := o.backfill(); err != nil {
		errs = append(errs, err)
	} else if o.HistoryPrometheusURL != "" && o.HistorySaveInterval == 0 {
		errs = append(errs, errors.New("--history-prometheus-url fills the persisted history: it needs --history-save-interval above 0"))
	}
	return errs
}

// backfill is the Prometheus backfill of --history-prometheus-url (nil
// when not set).
func (o *runOptions) backfill() (*history.Backfill, error) {
	queries, err := history.ParseQueries(o.HistoryPrometheusQuery)
	if err != nil {
		return nil, fmt.Errorf("--history-prometheus-query %w", err)
	}
	if o.HistoryPrometheusURL == "" {
		if len(o.HistoryPrometheusQuery) > 0 {
			return nil, errors.New("--history-prometheus-query needs --history-prometheus-url")
		}
		return nil, nil
	}
	b, err := history.NewBackfill(o.HistoryPrometheusURL, queries)
	if err != nil {
		return nil, fmt.Errorf("--history-prometheus-url: %w", err)
	}
	return b, nil
}

// timeOrigin is --history-time-origin (zero when not set).
func (o *runOptions) timeOrigin() (time.Time, error) {
	if o.HistoryTimeOrigin == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, o.HistoryTimeOrigin)
	if err != nil {
		return time.Time{}, fmt.Errorf("--history-time-origin %q: want an RFC 3339 time, e.g. 2026-12-02T12:00:00Z", o.HistoryTimeOrigin)
	}
	return t, nil
}

// historyClock is --history-time-scale's clock: from origin (default
// start), it runs scale times faster than the real one (nil at 1 without
// an origin: the reconciler's default, time.Now).
func (o *runOptions) historyClock(start time.Time) func() time.Time {
	origin, _ := o.timeOrigin() // checked by Validate
	if o.HistoryTimeScale == 1 && origin.IsZero() {
		return nil
	}
	if origin.IsZero() {
		origin = start
	}
	scale := o.HistoryTimeScale
	return func() time.Time {
		return origin.Add(time.Duration(float64(time.Since(origin)) * scale))
	}
}

// historyKeeper builds the leader's history keeper (nil when the history
// is not persisted).
func (o *runOptions) historyKeeper(ctx context.Context, store history.Store, holder controller.HistoryHolder, reader client.Reader, now func() time.Time, m *controller.HistoryMetrics, log *slog.Logger) *controller.HistoryKeeper {
	if o.HistorySaveInterval == 0 {
		return nil
	}
	k := &controller.HistoryKeeper{
		Store: store, Holder: holder, Interval: o.HistorySaveInterval,
		Log: log, Stopping: ctx.Done(), Now: now, Metrics: m,
		Scalers: func(ctx context.Context) ([]string, error) {
			var list v1alpha1.OpportunisticScalerList
			if err := reader.List(ctx, &list); err != nil {
				return nil, err
			}
			keys := make([]string, len(list.Items))
			for i := range list.Items {
				keys[i] = controller.HistoryKey(&list.Items[i])
			}
			return keys, nil
		},
	}
	if b, _ := o.backfill(); b != nil { // checked by Validate
		k.Backfill = b
	}
	return k
}
