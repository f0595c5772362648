package controller

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/forecast"
	"github.com/opportunist/opportunist/internal/predict"
)

// preYieldPrefix starts the reason of a scale-down ahead of a forecast peak.
const preYieldPrefix = "yielding "

// Lead time parts the controller cannot measure (yet).
const (
	// schedulerDelay is the scheduler's share of the time to schedule.
	schedulerDelay = time.Second
	// DefaultStartup is the paid pods' start-up when it is not measured.
	DefaultStartup = 30 * time.Second
)

// HistoryKey names a scaler's demand history: "<namespace>/<name>".
func HistoryKey(s *v1alpha1.OpportunisticScaler) string { return s.Namespace + "/" + s.Name }

// SeedHistory replaces the demand history of the scaler keyed key (a
// leader calls it with the persisted history at start, before its first
// round). Later rounds record onto it.
func (r *Reconciler) SeedHistory(key string, h *forecast.History) {
	r.historyMu.Lock()
	defer r.historyMu.Unlock()
	if r.recorders == nil {
		r.recorders = map[string]*predict.Recorder{}
	}
	r.recorders[key] = predict.NewRecorder(predict.Clone(h), r.historyNow())
	delete(r.predictors, key) // it forecasts from the new history
}

// HistorySnapshot returns a deep copy of every scaler's demand history,
// by HistoryKey, for saving.
func (r *Reconciler) HistorySnapshot() map[string]*forecast.History {
	r.historyMu.Lock()
	defer r.historyMu.Unlock()
	out := make(map[string]*forecast.History, len(r.recorders))
	for key, rec := range r.recorders {
		out[key] = predict.Clone(rec.History)
	}
	return out
}

func (r *Reconciler) historyNow() time.Time {
	if r.HistoryClock != nil {
		return r.HistoryClock()
	}
	return time.Now()
}

// scalerPrediction is what one round's forecast says about one scaler,
// for its status, Event and metrics.
type scalerPrediction struct {
	mode           v1alpha1.PredictionMode
	view           predict.View
	lead           time.Duration
	leadSource     string
	history        time.Duration
	observed       capacity.Resources
	margin         int32
	quantile       float64
	learned        []v1alpha1.LearnedHeadroom
	learnedByName  capacity.Resources
	predicting     bool // mode Preview or Auto
	applied        bool // the reserve went into the budget (Auto)
	reserveApplied capacity.Resources
	forecasts      []Forecast // published for the dashboard; nil in Off
}

// predictRound records each acting scaler's observed paid demand on the
// history clock (the pool's bound, terminating and pending paid pods),
// then, for scalers with spec.prediction or an "auto" headroom, runs the
// shared predictor: Auto passes the scaler through control.Predictive,
// Preview only reports, Off costs nothing beyond the recording.
func (r *Reconciler) predictRound(cluster *control.Cluster, rounds []*scalerRound, inputs []control.Scaler) {
	now := r.historyNow()
	r.historyMu.Lock()
	defer r.historyMu.Unlock()
	if r.recorders == nil {
		r.recorders = map[string]*predict.Recorder{}
	}
	var paidBound map[string][]capacity.BoundPod // read on first need
	byKey := map[string]*scalerRound{}
	for _, sr := range rounds {
		byKey[sr.key] = sr
	}
	for i := range inputs {
		in := &inputs[i]
		sr := byKey[in.Key]
		rec, ok := r.recorders[in.Key]
		if !ok {
			rec = predict.NewRecorder(nil, now)
			r.recorders[in.Key] = rec
		}
		alloc, paid := control.PoolDemand(cluster, in)
		observed := shapeResources(paid, in)
		slots := autoSlots(in)
		var slotPods []int
		recorded := observed
		if len(slots) > 0 {
			// An "auto" slot's history is how many paid pods of its shape
			// the pool held, a series of the same history ("slots/<name>").
			if src, ok := r.Capacity.(paidBoundSource); ok && paidBound == nil {
				paidBound = src.Paid() // O(pods): once a round
			}
			slotPods = control.SlotPods(cluster, in, paidBound)
			recorded = observed.Clone()
			for _, j := range slots {
				recorded[SlotResource(in.Slots[j].Name)] = int64(slotPods[j])
			}
		}
		rec.Observe(now, recorded)

		spec := sr.obj.Spec.Prediction
		mode := v1alpha1.PredictionOff
		if spec != nil && spec.Mode != "" {
			mode = spec.Mode
		}
		auto := autoHeadroom(in)
		if mode == v1alpha1.PredictionOff && len(auto) == 0 && len(slots) == 0 {
			delete(r.predictors, in.Key)
			continue
		}
		sp := &scalerPrediction{mode: mode, observed: observed, predicting: mode != v1alpha1.PredictionOff}
		sr.prediction = sp
		sp.history = time.Duration(rec.History.Len()-totalGaps(rec.History)) * rec.History.Step
		sp.lead, sp.leadSource = r.leadTime(sr)
		// The history runs on its own clock: the lead time in its time.
		histLead := time.Duration(float64(sp.lead) * r.historyScale())
		cfg := predict.Config{}
		if spec != nil {
			cfg.Quantile, _ = strconv.ParseFloat(spec.Quantile, 64) // validated by the API server; 0 takes the default
			cfg.MarginPercent = float64(spec.MarginPercent)
			sp.margin = spec.MarginPercent
		}
		p := r.predictors[in.Key]
		if p == nil || p.Recorder != rec || p.Config().Quantile != withDefaultQuantile(cfg.Quantile) {
			p = predict.New(cfg, rec, forecastResources(in)...)
			if r.predictors == nil {
				r.predictors = map[string]*predict.Predictor{}
			}
			r.predictors[in.Key] = p
		}
		p.SetMargin(cfg.MarginPercent)
		sp.quantile = p.Config().Quantile
		reserve := p.Next(now, histLead, observed)
		sp.view = p.View()
		if sp.predicting {
			sp.forecasts = publishedForecasts(p, rec.History, now, sp.view)
		}
		for _, name := range auto {
			period := forecast.Period{}
			if m, ok := sp.view.Models[name]; ok {
				period = m.Period
			}
			h := predict.LearnHeadroom(rec.History.Series(name), period, now, histLead, predict.HeadroomQuantile, alloc[name],
				func(v int64) string { q := quantity(name, v); return q.String() })
			in.Headroom[name] = control.Headroom{Auto: true, Quantity: h.Quantity}
			sp.learned = append(sp.learned, v1alpha1.LearnedHeadroom{Resource: name, Quantity: quantity(name, h.Quantity), Source: h.Source})
			if sp.learnedByName == nil {
				sp.learnedByName = capacity.Resources{}
			}
			sp.learnedByName[name] = h.Quantity
		}
		for _, j := range slots {
			slot := &in.Slots[j]
			name := SlotResource(slot.Name)
			count, source := predict.LearnSlots(rec.History.Series(name), anyPeriod(sp.view), now, histLead, predict.HeadroomQuantile, slotPods[j])
			slot.Count = count
			sp.learned = append(sp.learned, v1alpha1.LearnedHeadroom{Resource: name, Quantity: *resource.NewQuantity(int64(count), resource.DecimalSI), Source: source})
		}
		// A learned headroom was learned from the same rises the forecast
		// sees coming: the larger of the two counts, not their sum.
		if len(sp.learnedByName) > 0 && len(reserve) > 0 {
			adjusted := capacity.Resources{}
			for name, v := range reserve {
				if v -= sp.learnedByName[name]; v > 0 {
					adjusted[name] = v
				}
			}
			reserve, sp.view.Reserve = adjusted, adjusted
		}
		if mode == v1alpha1.PredictionAuto && len(reserve) > 0 {
			*in = control.Predictive(*in, alloc, reserve)
			sp.applied, sp.reserveApplied = true, reserve
		}
		sr.input = *in
	}
}

// publishedForecasts is what the dashboard draws of a predicting scaler:
// per forecast resource, the last MaxForecastPoints steps of its history
// and the plan from the step of now on (copies: the predictor keeps its own).
func publishedForecasts(p *predict.Predictor, h *forecast.History, now time.Time, view predict.View) []Forecast {
	var out []Forecast
	for _, name := range p.Resources {
		series := h.Series(name)
		from := max(len(series.Values)-MaxForecastPoints, 0)
		f := Forecast{Resource: name, Step: h.Step, ObservedStart: series.Start.Add(time.Duration(from) * h.Step),
			Observed: slices.Clone(series.Values[from:]), Forecaster: string(forecast.None), Reason: view.Reason}
		if m, ok := view.Models[name]; ok {
			f.Forecaster = string(m.Method)
			if f.Reason == "" && m.Reactive() {
				f.Reason = m.Reason
			}
		}
		if plan, band, ok := p.Plan(name); ok {
			at := max(int(now.Sub(plan.Start)/plan.Step), 0)
			if at < len(plan.Values) {
				end := min(len(plan.Values), at+MaxForecastPoints)
				f.ForecastStart = plan.Start.Add(time.Duration(at) * plan.Step)
				f.Forecast, f.Band = slices.Clone(plan.Values[at:end]), band
			}
		}
		if v, ok := view.Peak[name]; ok && !view.PeaksAt[name].IsZero() {
			f.Peak, f.PeakAt = float64(v), view.PeaksAt[name]
		}
		out = append(out, f)
	}
	return out
}

func withDefaultQuantile(q float64) float64 {
	if q <= 0 || q >= 1 {
		return predict.DefaultQuantile
	}
	return q
}

func (r *Reconciler) historyScale() float64 {
	if r.HistoryTimeScale > 0 {
		return r.HistoryTimeScale
	}
	return 1
}

// leadTime is how long before a peak the scaler must start handing room
// back: spec.prediction.leadTime, else its pods' termination grace, plus
// a round and the scheduler, plus the start-up of its own pods (the median
// of the last ones that became Ready, creation to Ready; a default until
// one has).
func (r *Reconciler) leadTime(sr *scalerRound) (time.Duration, string) {
	if p := sr.obj.Spec.Prediction; p != nil && p.LeadTime != nil {
		return p.LeadTime.Duration, "spec.prediction.leadTime"
	}
	grace := sr.target.TerminationGrace
	scheduling := r.Resync + schedulerDelay
	startup, startupSource := DefaultStartup, "a default: none of its pods has become Ready while watched"
	if src, ok := r.Capacity.(startUpSource); ok {
		if ups := src.StartUps(sr.key); len(ups) > 0 {
			startup = medianDuration(ups)
			startupSource = fmt.Sprintf("the median of its last %d pods' creation to Ready", len(ups))
		}
	}
	lead := control.LeadTime(grace, scheduling, startup)
	return lead, fmt.Sprintf("termination grace %s (the pod template's) + scheduling %s (a round of %s and the scheduler) + start-up %s (%s)",
		grace, scheduling, r.Resync, startup, startupSource)
}

// startUpSource is the part of the live capacity model that measures how
// long the workload's pods take to become Ready (cluster.Cache); a
// Capacity without it leaves the start-up at its default.
type startUpSource interface {
	StartUps(workload string) []time.Duration
}

func medianDuration(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// autoHeadroom lists the resources whose headroom is learned ("auto").
func autoHeadroom(in *control.Scaler) []corev1.ResourceName {
	var out []corev1.ResourceName
	for name, h := range in.Headroom {
		if h.Auto {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// SlotResource names the series of an "auto" slot's pods in a demand
// history, and its entry in status.prediction.learnedHeadroom.
func SlotResource(slot string) corev1.ResourceName {
	return corev1.ResourceName("slots/" + slot)
}

// autoSlots lists the indexes of the slots whose count is learned ("auto").
func autoSlots(in *control.Scaler) []int {
	var out []int
	for j := range in.Slots {
		if in.Slots[j].Auto {
			out = append(out, j)
		}
	}
	return out
}

// anyPeriod is the period the forecast found in the paid demand (the
// first resource's, cpu before memory), if any: the hours of the day a
// slot's pods arrive follow the paid demand's.
func anyPeriod(v predict.View) forecast.Period {
	for _, name := range slices.Sorted(maps.Keys(v.Models)) {
		if p := v.Models[name].Period; p.Found() {
			return p
		}
	}
	return forecast.Period{}
}

// paidBoundSource is the part of the live capacity model that lists the
// paid pods bound to each node (cluster.Cache, capacity.Ledger): an
// "auto" slot's history counts them. Without it only pending pods count.
type paidBoundSource interface {
	Paid() map[string][]capacity.BoundPod
}

// forecastResources are the resources forecast: those a replica requests
// (its budget's), but its pod slot.
func forecastResources(in *control.Scaler) []corev1.ResourceName {
	var out []corev1.ResourceName
	for _, name := range in.Shape.Requests.Names() {
		if name != corev1.ResourcePods && in.Shape.Requests[name] > 0 {
			out = append(out, name)
		}
	}
	return out
}

// totalGaps counts the steps where no resource is known (a resource
// recorded later than the others is not a gap of the history).
func totalGaps(h *forecast.History) int {
	n := h.Len()
	for name := range h.Demand {
		n = min(n, h.Series(name).Gaps())
	}
	return n
}

// shapeResources keeps the resources a replica requests: the ones its
// budget counts, so the history holds nothing the forecast never reads.
func shapeResources(demand capacity.Resources, in *control.Scaler) capacity.Resources {
	out := capacity.Resources{}
	for name, v := range in.Shape.Requests {
		if v > 0 {
			out[name] = demand[name]
		}
	}
	return out
}

// quantity is a canonical amount as a Kubernetes quantity.
func quantity(name corev1.ResourceName, v int64) resource.Quantity {
	if name == corev1.ResourceCPU {
		return *resource.NewMilliQuantity(v, resource.DecimalSI)
	}
	if name == corev1.ResourceMemory || name == corev1.ResourceEphemeralStorage || strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix) {
		return *resource.NewQuantity(v, resource.BinarySI)
	}
	return *resource.NewQuantity(v, resource.DecimalSI)
}

func resourceList(r capacity.Resources) corev1.ResourceList {
	if len(r) == 0 {
		return nil
	}
	out := corev1.ResourceList{}
	for name, v := range r {
		out[name] = quantity(name, v)
	}
	return out
}

// predictionStatus is status.prediction of a round's prediction.
func (sp *scalerPrediction) status() *v1alpha1.PredictionStatus {
	if sp == nil {
		return nil
	}
	st := &v1alpha1.PredictionStatus{Mode: sp.mode, LearnedHeadroom: sp.learned,
		History: sp.history.Truncate(time.Minute).String()}
	if !sp.predicting {
		return st
	}
	st.LeadTime, st.LeadTimeSource = &metav1.Duration{Duration: sp.lead}, sp.leadSource
	st.Reason = sp.view.Reason
	st.Forecaster = string(forecast.None)
	for _, name := range slices.Sorted(maps.Keys(sp.view.Models)) {
		m := sp.view.Models[name]
		if m.Period.Found() {
			st.Period = m.Period.Length.String()
		}
		if !m.Reactive() || st.Forecaster == string(forecast.None) {
			st.Forecaster = string(m.Method)
			if !m.Reactive() {
				st.BacktestError = fmt.Sprintf("%.1f%%", 100*m.Error)
			}
			if st.Reason == "" {
				st.Reason = m.Reason
			}
		}
		if !m.Reactive() {
			break // the first resource forecast (cpu before memory) speaks
		}
	}
	st.Peak = resourceList(sp.view.Peak)
	if sp.view.PeakAt != nil {
		st.PeakTime = &metav1.Time{Time: sp.view.PeakAt.Truncate(time.Second)}
	}
	st.Reserve = resourceList(sp.view.Reserve)
	st.Outlook = outlookOf(sp.forecasts)
	return st
}

// The outlook in status: the highest of each five minutes, two hours back.
const (
	outlookStep    = 5 * time.Minute
	outlookHistory = 2 * time.Hour
)

// outlookOf is status.prediction.outlook of the published CPU forecast:
// its history since the last gap (at most outlookHistory) and its plan,
// each in outlookStep buckets holding the highest value; nil without one.
func outlookOf(forecasts []Forecast) *v1alpha1.PredictionOutlook {
	i := slices.IndexFunc(forecasts, func(f Forecast) bool { return f.Resource == corev1.ResourceCPU })
	if i < 0 || forecasts[i].Step <= 0 {
		return nil
	}
	f := forecasts[i]
	per := max(int(outlookStep/f.Step), 1)
	obs := f.Observed
	for j := len(obs) - 1; j >= 0; j-- {
		if math.IsNaN(obs[j]) {
			obs = obs[j+1:]
			break
		}
	}
	end := f.ObservedStart.Add(time.Duration(len(f.Observed)) * f.Step)
	if n := min(len(obs), int(outlookHistory/f.Step)); n >= per {
		obs = obs[len(obs)-n/per*per:] // whole buckets, ending now
	}
	out := &v1alpha1.PredictionOutlook{Step: metav1.Duration{Duration: time.Duration(per) * f.Step}, BandMilliCores: int64(math.Round(f.Band))}
	for j := 0; j < len(obs); j += per {
		out.ObservedMilliCores = append(out.ObservedMilliCores, int64(math.Round(slices.Max(obs[j:min(j+per, len(obs))]))))
	}
	for j := 0; j < len(f.Forecast); j += per {
		out.ForecastMilliCores = append(out.ForecastMilliCores, int64(math.Round(slices.Max(f.Forecast[j:min(j+per, len(f.Forecast))]))))
	}
	out.Start = metav1.Time{Time: end.Add(-time.Duration(len(out.ObservedMilliCores)) * out.Step.Duration)}
	return out
}

// preYield says why an Auto scale-down comes before the demand does, e.g.
// "yielding 24 replicas ahead of the 09:00 peak: forecast 112 cpu paid at
// 08:58 (now 88; q0.9 band, +10 % margin)"; "" when it does not.
func (sp *scalerPrediction) preYield(from, to int32, limit control.Limit) string {
	if sp == nil || !sp.applied || to >= from || sp.view.PeakAt == nil || limit != control.LimitBudget {
		return ""
	}
	names := slices.Sorted(maps.Keys(sp.reserveApplied))
	var parts []string
	for _, name := range names {
		parts = append(parts, fmt.Sprintf("%s paid (now %s)", humanAmount(name, sp.view.Peak[name]), humanAmount(name, sp.observed[name])))
	}
	return fmt.Sprintf(preYieldPrefix+"%d replicas ahead of the %s peak: forecast %s (q%g band, +%d %% margin)",
		from-to, sp.view.PeakAt.UTC().Format("15:04"), strings.Join(parts, ", "), sp.quantile, sp.margin)
}

// humanAmount is an amount as an operator says it: "112 cores", "64Gi memory".
func humanAmount(name corev1.ResourceName, v int64) string {
	q := quantity(name, v)
	if name == corev1.ResourceCPU {
		return strconv.FormatFloat(float64(v)/1000, 'f', -1, 64) + " cores"
	}
	return q.String() + " " + string(name)
}
