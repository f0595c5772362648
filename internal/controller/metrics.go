package controller

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/opportunist/opportunist/internal/control"
)

// Metrics are the per-scaler series the reconciler exports.
type Metrics struct {
	mu sync.Mutex
	// known are the scalers with series, so Forget can find the gone ones.
	known     map[string]bool
	desired   *prometheus.GaugeVec
	current   *prometheus.GaugeVec
	budget    *prometheus.GaugeVec
	fit       *prometheus.GaugeVec
	limitedBy *prometheus.GaugeVec
	problem   *prometheus.GaugeVec
	scales    *prometheus.CounterVec
	rounds    prometheus.Counter
	roundTime *prometheus.HistogramVec
	stale     *prometheus.GaugeVec
	slots     *prometheus.GaugeVec
	// forecast is the opportunist_forecast_* family (forecast.go).
	forecast forecastMetrics
}

// NewMetrics creates the reconciler's metrics and registers them.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		known:     map[string]bool{},
		desired:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opportunist_desired_replicas", Help: "Replicas the control law wants for each scaler's target."}, []string{"scaler"}),
		current:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opportunist_current_replicas", Help: "Replicas of each scaler's target when last read."}, []string{"scaler"}),
		budget:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opportunist_budget_replicas", Help: "Replicas the headroom allows each scaler in total, before bounds."}, []string{"scaler"}),
		fit:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opportunist_fit_replicas", Help: "Replicas that fit node by node for each scaler in total, before bounds."}, []string{"scaler"}),
		limitedBy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opportunist_limited_by", Help: "1 for the bound that set each scaler's desired replicas (budget, fit, max, min, pending_paid, stabilized, step_limit)."}, []string{"scaler", "limit"}),
		problem:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opportunist_scaler_problem", Help: "1 while a scaler cannot act, by reason (TargetNotFound, TargetForbidden, TargetUnavailable, ScaleFailed, DuplicateTarget, ...)."}, []string{"scaler", "reason"}),
		scales:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "opportunist_scale_writes_total", Help: "Writes to targets' /scale, by scaler, direction (up or down) and result (ok, conflict: retried on a fresh read, error)."}, []string{"scaler", "direction", "result"}),
		rounds:    prometheus.NewCounter(prometheus.CounterOpts{Name: "opportunist_decision_rounds_total", Help: "Rounds of the control law over all scalers."}),
		roundTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "opportunist_decision_round_seconds",
			Help:    "Wall time of a round's phases: read (the scalers, their targets and HPAs, from the caches), model (the pod counts and the cluster's rooms from the capacity model), decide (forecasts and the control law) and apply (each scaler's /scale and status writes, five scalers at once, yields first).",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30}}, []string{"phase"}),
		stale: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opportunist_stale_behaviour", Help: "1 while the capacity data has been stale for longer than --stale-after and the --on-stale behaviour (freeze or shrink-to-min) is applied, else 0."}, []string{"behaviour"}),
		slots: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opportunist_headroom_slots", Help: "Pods of each headroom slot's shape (spec.headroomSlots) kept free node by node: wanted (its count) and fit (how many fit now)."}, []string{"scaler", "shape", "state"}),
	}
	m.forecast = newForecastMetrics()
	reg.MustRegister(m.desired, m.current, m.budget, m.fit, m.limitedBy, m.problem, m.scales, m.rounds, m.roundTime, m.stale, m.slots)
	m.forecast.register(reg)
	for _, b := range StaleBehaviours {
		m.stale.WithLabelValues(string(b)).Set(0) // present from the start, for alerts
	}
	return m
}

// Decision records one scaler's decision.
func (m *Metrics) Decision(key string, current int32, d *control.Decision) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.known[key] = true
	m.problem.DeletePartialMatch(prometheus.Labels{"scaler": key})
	m.desired.WithLabelValues(key).Set(float64(d.Desired))
	m.current.WithLabelValues(key).Set(float64(current))
	m.budget.WithLabelValues(key).Set(float64(d.Budget))
	m.fit.WithLabelValues(key).Set(float64(d.Fit))
	m.limitedBy.DeletePartialMatch(prometheus.Labels{"scaler": key})
	m.limitedBy.WithLabelValues(key, snake(string(d.Limit))).Set(1)
	m.slots.DeletePartialMatch(prometheus.Labels{"scaler": key}) // slots renamed or removed
	for _, s := range d.Slots {
		m.slots.WithLabelValues(key, s.Name, "wanted").Set(float64(s.Wanted))
		m.slots.WithLabelValues(key, s.Name, "fit").Set(float64(s.Fit))
	}
}

// Problem records that a scaler cannot act.
func (m *Metrics) Problem(key, reason string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.known[key] = true
	m.problem.DeletePartialMatch(prometheus.Labels{"scaler": key})
	m.problem.WithLabelValues(key, reason).Set(1)
}

// The results of a write to /scale.
const (
	WriteOK       = "ok"
	WriteConflict = "conflict"
	WriteError    = "error"
)

// ScaleWrite counts one attempt to write a target's /scale from replicas to
// to replicas, by how it ended (err from the update).
func (m *Metrics) ScaleWrite(key string, from, to int32, err error) {
	if m == nil {
		return
	}
	dir := "up"
	if to < from {
		dir = "down"
	}
	m.scales.WithLabelValues(key, dir, writeResult(err)).Inc()
}

func writeResult(err error) string {
	switch {
	case err == nil:
		return WriteOK
	case apierrors.IsConflict(err):
		return WriteConflict
	}
	return WriteError
}

// Stale records whether behaviour is applied to stale data.
func (m *Metrics) Stale(behaviour StaleBehaviour, applied bool) {
	if m == nil {
		return
	}
	for _, b := range StaleBehaviours {
		v := 0.0
		if applied && b == behaviour {
			v = 1
		}
		m.stale.WithLabelValues(string(b)).Set(v)
	}
}

// Round counts one round.
func (m *Metrics) Round() {
	if m != nil {
		m.rounds.Inc()
	}
}

// RoundPhase records how long one phase of a round took (see roundTime).
func (m *Metrics) RoundPhase(phase string, d time.Duration) {
	if m != nil {
		m.roundTime.WithLabelValues(phase).Observe(d.Seconds())
	}
}

// Forget drops the series of scalers that no longer exist.
func (m *Metrics) Forget(live map[string]bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for key := range m.known {
		if live[key] {
			continue
		}
		for _, vec := range append([]*prometheus.GaugeVec{m.desired, m.current, m.budget, m.fit, m.limitedBy, m.problem, m.slots}, m.forecast.vecs()...) {
			vec.DeletePartialMatch(prometheus.Labels{"scaler": key})
		}
		m.scales.DeletePartialMatch(prometheus.Labels{"scaler": key})
		delete(m.known, key)
	}
}

// snake turns "PendingPaid" into "pending_paid".
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
