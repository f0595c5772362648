package sim

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/forecast"
	"github.com/opportunist/opportunist/internal/predict"
)

// OpportunistPredictive is the opportunist strategy with the predictive
// budget of spec.prediction.mode Auto (issue 14): the same rounds of
// control.Decide, each scaler first passed through control.Predictive
// with the reserve of a predict.Predictor (the controller's own) fed the
// pool's paid CPU demand from the run's own past only (no peeking). Until
// the history holds two periods, and whenever no period is found, it is
// the reactive opportunist.
const OpportunistPredictive = "opportunist-predictive"

// predictive is the opportunist with a forecast.
type predictive struct {
	*opportunist
	predictor *predict.Predictor
	lead      time.Duration
	reserve   capacity.Resources // what the budget counts now
	lastCPU   int64              // the reserve of the last round, milli-cores
}

func newPredictive(sc *Scenario, w *world) *predictive {
	history := forecast.NewHistory(epoch, forecast.DefaultStep, predict.Keep)
	p := &predictive{opportunist: newOpportunist(sc, w, false),
		predictor: predict.New(predict.Config{}, predict.NewRecorder(history, epoch), corev1.ResourceCPU)}
	var grace, startup time.Duration
	for _, o := range sc.Opportunistic {
		grace = max(grace, o.Grace)
	}
	for _, pw := range sc.Paid {
		startup = max(startup, pw.Startup)
	}
	p.lead = control.LeadTime(grace, sc.RoundInterval+sc.Step, startup)
	p.opportunist.adjust = func(scalers []control.Scaler) {
		alloc := capacity.Resources{corev1.ResourceCPU: w.poolCPU}
		for i := range scalers {
			scalers[i] = control.Predictive(scalers[i], alloc, p.reserve)
		}
	}
	return p
}

func (p *predictive) act(w *world) {
	now, paid := epoch.Add(w.now), capacity.Resources{corev1.ResourceCPU: paidHolding(w)}
	p.predictor.Observe(now, paid)
	p.reserve = p.predictor.Next(now, p.lead, paid)
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
