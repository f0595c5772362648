package sim

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/forecast"
)

// OpportunistPredictive is the opportunist strategy with the predictive
// budget of spec.prediction.mode Auto (issue 14): the same rounds of
// control.Decide, each scaler first passed through control.Predictive
// with a forecast of the pool's paid CPU demand made by internal/forecast
// from the run's own past only (no peeking). Until the history holds two
// periods, and whenever no period is found, it is the reactive opportunist.
const OpportunistPredictive = "opportunist-predictive"

// Prediction settings of the simulated controller.
const (
	// predictionStep samples the paid demand: the highest of each minute.
	predictionStep = forecast.DefaultStep
	// predictionKeep is how much history is kept (the issue: at least 14 days).
	predictionKeep = 14 * 24 * time.Hour
	// rechooseEvery reruns the period test and the backtest (AWS refreshes
	// its forecast every 6 h; the shape of a week moves slowly).
	rechooseEvery = 24 * time.Hour
	// replanEvery refreshes the forecast itself with the chosen forecaster.
	replanEvery = time.Hour
	// youngLife is how long a pod must run to be worth starting: the reserve
	// looks this far past the lead time, so that room about to be needed is
	// not refilled with pods that would be stopped young.
	youngLife = 5 * time.Minute
	// predictionQuantile of the backtest's errors is added to the forecast,
	// and is the deadband below which a forecast rise is its own noise.
	predictionQuantile = 0.9
	// predictionMarginPercent is added on top of the peak.
	predictionMarginPercent = 0
)

// predictive is the opportunist with a forecast.
type predictive struct {
	*opportunist
	history *forecast.History
	// minuteMax is the highest paid demand (milli-cores) seen in the minute
	// that ends at sampleEnd.
	minuteMax int64
	sampleEnd time.Duration
	started   bool

	model    forecast.Model
	modelAt  time.Duration
	hasModel bool
	plan     []float64     // forecast per minute from planFrom
	planFrom time.Duration // simulation time of plan[0]
	planAt   time.Duration

	window     time.Duration // lead time + youngLife
	prediction control.Prediction
	reserved   map[corev1.ResourceName]control.Reserved // carried from step to step
	reserve    capacity.Resources                       // what the budget counts now
	lastCPU    int64                                    // the reserve of the last round, milli-cores
}

func newPredictive(sc *Scenario, w *world) *predictive {
	p := &predictive{opportunist: newOpportunist(sc, w, false),
		history: forecast.NewHistory(epoch, predictionStep, predictionKeep)}
	var grace, startup time.Duration
	for _, o := range sc.Opportunistic {
		grace = max(grace, o.Grace)
	}
	for _, pw := range sc.Paid {
		startup = max(startup, pw.Startup)
	}
	p.window = control.LeadTime(grace, sc.RoundInterval+sc.Step, startup) + youngLife
	p.opportunist.adjust = func(scalers []control.Scaler) {
		alloc := capacity.Resources{corev1.ResourceCPU: w.poolCPU}
		for i := range scalers {
			scalers[i] = control.Predictive(scalers[i], alloc, p.reserve)
		}
	}
	return p
}

func (p *predictive) act(w *world) {
	p.sample(w)
	p.forecast(w)
	p.reserve, p.reserved = p.prediction.NextReserve(epoch.Add(w.now), p.window, p.reserved)
	if cpu := p.reserve[corev1.ResourceCPU]; cpu != p.lastCPU {
		// The budget moved with time alone: run a round now, as the
		// controller does when its forecast changes the answer.
		p.lastCPU = cpu
		o := p.opportunist
		if o.ran && o.settled && !o.resyncAlways {
			o.replaySkippedResyncs(w.now)
		}
		o.round(w)
		return
	}
	p.opportunist.act(w)
}

// sample records the paid demand of the opportunistic pool, the highest
// of each minute, once the minute is over.
func (p *predictive) sample(w *world) {
	if !p.started {
		p.started, p.sampleEnd = true, predictionStep
	}
	for w.now >= p.sampleEnd {
		at := epoch.Add(p.sampleEnd - predictionStep)
		_ = p.history.Record(at, map[corev1.ResourceName]float64{corev1.ResourceCPU: float64(p.minuteMax)}) // on the grid, in order
		p.sampleEnd += predictionStep
		p.minuteMax = 0
	}
	p.minuteMax = max(p.minuteMax, paidHolding(w))
}

// forecast refreshes the model and the plan when due, and sets the
// prediction for this instant: the forecast over the next window.
func (p *predictive) forecast(w *world) {
	series := p.history.Series(corev1.ResourceCPU)
	elapsed := series.End().Sub(epoch) // the history's end, in simulation time
	// The model is chosen again every rechooseEvery once two days are held
	// (the shortest period twice); the plan, the forecast itself, every
	// replanEvery, as far as the next plan's window reaches.
	if !p.hasModel || w.now-p.modelAt >= rechooseEvery {
		if len(series.Values) >= 2*int(forecast.Candidates[0]/predictionStep) {
			p.model = forecast.Choose(series, forecast.Config{Horizon: replanEvery + p.window, Every: replanEvery,
				Quantile: predictionQuantile, Seed: 1})
			p.hasModel, p.modelAt, p.plan = true, w.now, nil
		}
	}
	if !p.hasModel || p.model.Reactive() {
		p.prediction = control.Prediction{}
		return
	}
	if p.plan == nil || w.now-p.planAt >= replanEvery {
		h := int((replanEvery + p.window + predictionStep) / predictionStep)
		plan, err := p.model.Forecast(series, h)
		if err != nil {
			p.prediction = control.Prediction{}
			return
		}
		p.plan, p.planFrom, p.planAt = plan, elapsed, w.now
	}
	from := int((w.now - p.planFrom) / predictionStep)
	to := int((w.now + p.window - p.planFrom + predictionStep - 1) / predictionStep)
	from, to = max(from, 0), min(to, len(p.plan)-1)
	p.prediction = control.Prediction{
		Observed:      capacity.Resources{corev1.ResourceCPU: paidHolding(w)},
		Forecast:      map[corev1.ResourceName][]float64{corev1.ResourceCPU: p.plan[from : to+1]},
		Band:          map[corev1.ResourceName]float64{corev1.ResourceCPU: max(p.model.Band, 0)},
		MarginPercent: predictionMarginPercent,
		Deadband:      map[corev1.ResourceName]int64{corev1.ResourceCPU: int64(max(p.model.Band, 0))},
		Lead:          min(int((w.now+p.window-youngLife-p.planFrom+predictionStep-1)/predictionStep), to) - from + 1,
	}
}

// paidHolding is the paid CPU that holds room or waits for it, as the
// budget counts paid pods: bound ones (terminating too, until they are
// gone) and pending ones. The history records it and the reserve is
// measured from it, so that a paid pod's grace period is not counted twice.
func paidHolding(w *world) int64 {
	cpu := w.boundPaidCPU
	for _, p := range w.pending {
		if p.rs.paid {
			cpu += p.rs.cpu
		}
	}
	return cpu
}
