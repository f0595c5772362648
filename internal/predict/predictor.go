package predict

import (
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/forecast"
)

// Config tunes a Predictor. The zero value of each field takes its default.
type Config struct {
	// RechooseEvery reruns the period test and the backtest (AWS refreshes
	// its forecast every 6 h; the shape of a week moves slowly). Default 24 h.
	RechooseEvery time.Duration
	// ReplanEvery refreshes the forecast with the chosen forecaster. Default 1 h.
	ReplanEvery time.Duration
	// YoungLife is how long a pod must run to be worth starting: the
	// reserve looks this far past the lead time, so that room about to be
	// needed is not refilled with pods that would be stopped young.
	// Default 5 min.
	YoungLife time.Duration
	// Quantile of the backtest's errors is added to the forecast (the
	// band), and is the deadband below which a forecast rise is its own
	// noise. Default 0.9.
	Quantile float64
	// MarginPercent is added on top of the peak.
	MarginPercent float64
}

// Defaults of Config.
const (
	DefaultRechooseEvery = 24 * time.Hour
	DefaultReplanEvery   = time.Hour
	DefaultYoungLife     = 5 * time.Minute
	DefaultQuantile      = 0.9
)

func (c Config) withDefaults() Config {
	if c.RechooseEvery <= 0 {
		c.RechooseEvery = DefaultRechooseEvery
	}
	if c.ReplanEvery <= 0 {
		c.ReplanEvery = DefaultReplanEvery
	}
	if c.YoungLife <= 0 {
		c.YoungLife = DefaultYoungLife
	}
	if c.Quantile <= 0 || c.Quantile >= 1 {
		c.Quantile = DefaultQuantile
	}
	return c
}

// Predictor is one pool's predictive budget over time: it records the
// paid demand (Observe), and at each round (Next) returns the reserve the
// budget adds to the headroom. The controller keeps one per scaler; the
// simulator one per run. Both call it the same way, so they forecast alike.
type Predictor struct {
	cfg       Config
	Recorder  *Recorder
	Resources []corev1.ResourceName

	models   map[corev1.ResourceName]forecast.Model
	modelAt  time.Time
	hasModel bool
	plans    map[corev1.ResourceName][]float64 // forecast per step from planFrom
	planFrom time.Time
	planAt   time.Time
	hasPlan  bool

	prediction control.Prediction
	reserved   map[corev1.ResourceName]control.Reserved // carried from round to round
	view       View
}

// New is a predictor of the given resources' paid demand, recording into
// rec.
func New(cfg Config, rec *Recorder, resources ...corev1.ResourceName) *Predictor {
	return &Predictor{cfg: cfg.withDefaults(), Recorder: rec, Resources: resources}
}

// Config returns the predictor's settings, defaults filled in.
func (p *Predictor) Config() Config { return p.cfg }

// SetMargin changes the margin on top of the peak (spec.prediction).
func (p *Predictor) SetMargin(percent float64) { p.cfg.MarginPercent = percent }

// Observe records the paid demand seen now.
func (p *Predictor) Observe(now time.Time, demand capacity.Resources) {
	p.Recorder.Observe(now, demand)
}

// Window is how far ahead the reserve looks for a lead time of lead: the
// lead time and the young life of a pod.
func (p *Predictor) Window(lead time.Duration) time.Duration { return lead + p.cfg.YoungLife }

// Next returns the reserve to count now (control.Predictive's argument),
// for a lead time of lead and the paid demand observed now: the forecast
// is refreshed when due, and the reserve only falls as control's
// NextReserve lets it (never refilled on a forecast alone).
func (p *Predictor) Next(now time.Time, lead time.Duration, observed capacity.Resources) capacity.Resources {
	window := p.Window(lead)
	p.forecast(now, lead, window, observed)
	reserve, next := p.prediction.NextReserve(now, window, p.reserved)
	p.reserved = next
	p.view.Reserve = reserve
	return reserve
}

// forecast refreshes the models and the plans when due, and sets the
// prediction for this instant: the forecast over the next window.
func (p *Predictor) forecast(now time.Time, lead, window time.Duration, observed capacity.Resources) {
	h := p.Recorder.History
	step := h.Step
	// The models are chosen again every RechooseEvery once two days are
	// held (the shortest period twice); the plan, the forecast itself,
	// every ReplanEvery, as far as the next plan's window reaches.
	if !p.hasModel || now.Sub(p.modelAt) >= p.cfg.RechooseEvery {
		if h.Len() >= 2*int(forecast.Candidates[0]/step) {
			p.models = map[corev1.ResourceName]forecast.Model{}
			for _, name := range p.Resources {
				p.models[name] = forecast.Choose(h.Series(name), forecast.Config{Horizon: p.cfg.ReplanEvery + window, Every: p.cfg.ReplanEvery,
					Quantile: p.cfg.Quantile, Seed: 1})
			}
			p.hasModel, p.modelAt, p.hasPlan = true, now, false
		} else {
			p.view.Reason = fmt.Sprintf("reactive: %s of history, %s needed (two periods of a day)",
				roundDuration(time.Duration(h.Len())*step), roundDuration(2*forecast.Candidates[0]))
		}
	}
	p.view.Models = p.models
	p.prediction = control.Prediction{}
	p.view.Peak, p.view.PeakAt, p.view.PeaksAt = nil, nil, nil
	if !p.hasModel {
		return
	}
	if !p.hasPlan || now.Sub(p.planAt) >= p.cfg.ReplanEvery {
		n := int((p.cfg.ReplanEvery + window + step) / step)
		p.plans = map[corev1.ResourceName][]float64{}
		failed := false
		for _, name := range p.Resources {
			m := p.models[name]
			if m.Reactive() {
				continue
			}
			plan, err := m.Forecast(h.Series(name), n)
			if err != nil {
				failed = true // tried again next round
				continue
			}
			p.plans[name] = plan
		}
		p.planFrom, p.planAt, p.hasPlan = h.Start.Add(time.Duration(h.Len())*step), now, !failed
	}
	if len(p.plans) == 0 {
		p.view.Reason = p.reactiveReason()
		return
	}
	pred := control.Prediction{
		Observed:      capacity.Resources{},
		Forecast:      map[corev1.ResourceName][]float64{},
		Band:          map[corev1.ResourceName]float64{},
		MarginPercent: p.cfg.MarginPercent,
		Deadband:      map[corev1.ResourceName]int64{},
	}
	from := int(now.Sub(p.planFrom) / step)
	var peakAt time.Time
	peaksAt := map[corev1.ResourceName]time.Time{}
	for _, name := range slices.Sorted(maps.Keys(p.plans)) {
		plan := p.plans[name]
		to := int((now.Sub(p.planFrom) + window + step - 1) / step)
		f, t := max(from, 0), min(to, len(plan)-1)
		if f > t {
			continue // the plan is behind: the next replan catches up
		}
		band := max(p.models[name].Band, 0)
		pred.Observed[name] = observed[name]
		pred.Forecast[name] = plan[f : t+1]
		pred.Band[name] = band
		pred.Deadband[name] = int64(band)
		pred.Lead = min(int((now.Sub(p.planFrom)+window-p.cfg.YoungLife+step-1)/step), t) - f + 1
		if pred.Lead > 0 {
			at := p.planFrom.Add(time.Duration(f+argmax(plan[f:f+pred.Lead])) * step)
			if peakAt.IsZero() {
				peakAt = at
			}
			peaksAt[name] = at
		}
	}
	if len(pred.Forecast) == 0 {
		p.view.Reason = "reactive: the forecast does not reach this instant yet"
		return
	}
	p.prediction = pred
	p.view.Reason = ""
	p.view.Peak = pred.Peak()
	p.view.PeakAt = &peakAt
	p.view.PeaksAt = peaksAt
}

func (p *Predictor) reactiveReason() string {
	for _, name := range p.Resources {
		if m, ok := p.models[name]; ok && m.Reactive() {
			return m.Reason
		}
	}
	return "reactive: no forecast"
}

// Prediction is the prediction of the last Next (empty while reactive).
func (p *Predictor) Prediction() control.Prediction { return p.prediction }

// View is what the last Next saw, for status and explanations.
type View struct {
	// Models are the forecasters chosen per resource (nil before two days).
	Models map[corev1.ResourceName]forecast.Model
	// Reason says why the budget is reactive ("" while it forecasts).
	Reason string
	// Peak is the highest forecast paid demand within the lead time (band
	// and margin included); PeakAt when the first resource's peak is.
	Peak   capacity.Resources
	PeakAt *time.Time
	// PeaksAt is when each resource's forecast peaks within the lead time.
	PeaksAt map[corev1.ResourceName]time.Time
	// Reserve is what the budget adds to the headroom.
	Reserve capacity.Resources
}

// View returns what the last Next saw.
func (p *Predictor) View() View { return p.view }

func argmax(vs []float64) int {
	best := 0
	for i, v := range vs {
		if v > vs[best] {
			best = i
		}
	}
	return best
}

func roundDuration(d time.Duration) string {
	if d >= time.Hour {
		return d.Truncate(time.Minute).String()
	}
	return d.String()
}

// Plan is the forecast the budget acts on for one resource: one value per
// step from the last replan (Start), to be read from now on, and its band
// (the backtest's quantile of under-forecasts, added for the upper edge).
// ok is false while the resource is not forecast (reactive). The values
// are shared: the caller copies what it keeps.
func (p *Predictor) Plan(name corev1.ResourceName) (plan forecast.Series, band float64, ok bool) {
	vs, ok := p.plans[name]
	if !ok || len(p.prediction.Forecast) == 0 {
		return forecast.Series{}, 0, false
	}
	return forecast.Series{Start: p.planFrom, Step: p.Recorder.History.Step, Values: vs}, max(p.models[name].Band, 0), true
}
