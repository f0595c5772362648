package controller

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opportunist/opportunist/internal/capacity"
)

// forecastMetrics are opportunist_forecast_*, per scaler, in base units
// with {resource, unit} labels as the pool's metrics (cores, bytes).
type forecastMetrics struct {
	peak, reserve, headroom, backtest *prometheus.GaugeVec
	lead                              *prometheus.GaugeVec
}

func newForecastMetrics() forecastMetrics {
	labels := []string{"scaler", "resource", "unit"}
	return forecastMetrics{
		peak:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opportunist_forecast_peak", Help: "Highest forecast paid demand of each scaler's pool within the lead time (band and margin included), by resource, in base units; absent while the budget is reactive."}, labels),
		reserve:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opportunist_forecast_reserve", Help: "Room kept for the forecast peak on top of the headroom, by resource, in base units: applied with spec.prediction.mode Auto, what Auto would apply in Preview."}, labels),
		headroom: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opportunist_forecast_learned_headroom", Help: "Headroom learned from the demand history for each \"auto\" spec.headroom entry, by resource, in base units."}, labels),
		backtest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opportunist_forecast_backtest_error_ratio", Help: "Backtest error of the forecaster in use on the last period (under-forecasts weigh 4x), relative to the demand, by resource."}, []string{"scaler", "resource", "forecaster"}),
		lead:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opportunist_forecast_lead_time_seconds", Help: "How long before a forecast peak each scaler starts handing room back."}, []string{"scaler"}),
	}
}

func (f *forecastMetrics) register(reg prometheus.Registerer) {
	reg.MustRegister(f.peak, f.reserve, f.headroom, f.backtest, f.lead)
}

func (f *forecastMetrics) vecs() []*prometheus.GaugeVec {
	return []*prometheus.GaugeVec{f.peak, f.reserve, f.headroom, f.backtest, f.lead}
}

// Forecast records one scaler's prediction (nil: none, its series go).
func (m *Metrics) Forecast(key string, sp *scalerPrediction) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.known[key] = true
	for _, vec := range m.forecast.vecs() {
		vec.DeletePartialMatch(prometheus.Labels{"scaler": key})
	}
	if sp == nil {
		return
	}
	set := func(vec *prometheus.GaugeVec, r capacity.Resources) {
		for name, v := range r {
			res, unit, scale := baseUnit(name)
			vec.WithLabelValues(key, res, unit).Set(float64(v) * scale)
		}
	}
	set(m.forecast.headroom, sp.learnedByName)
	if !sp.predicting {
		return
	}
	m.forecast.lead.WithLabelValues(key).Set(sp.lead.Seconds())
	set(m.forecast.peak, sp.view.Peak)
	set(m.forecast.reserve, sp.view.Reserve)
	for name, model := range sp.view.Models {
		if !model.Reactive() {
			m.forecast.backtest.WithLabelValues(key, string(name), string(model.Method)).Set(model.Error)
		}
	}
}

// baseUnit is a resource's base unit and the factor from canonical units
// (as the exporter's pool metrics).
func baseUnit(name corev1.ResourceName) (resource, unit string, scale float64) {
	switch {
	case name == corev1.ResourceCPU:
		return string(name), "core", 1.0 / 1000
	case capacity.InBytes(name):
		return string(name), "byte", 1
	}
	return string(name), "integer", 1
}
