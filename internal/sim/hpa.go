package sim

// A model of the Kubernetes v1.37 HorizontalPodAutoscaler controller, rule
// by rule. References are to kubernetes/kubernetes v1.37.2:
//   - pkg/controller/podautoscaler/horizontal.go (processNextWorkItem's
//     requeue, reconcileAutoscaler, and the normalisation of the proposal:
//     stabilisation, rate limits, bounds),
//   - pkg/controller/podautoscaler/replica_calculator.go (the proposals of
//     Object and External metrics),
//   - pkg/apis/autoscaling/v2/defaults.go (the API server's defaults: only
//     a spec.behavior that is set gets its policies filled in).
// The metrics are those opportunist serves: the Object metric
// cpu_capacity_remaining and the External metric opportunist_desired_replicas,
// with Value or AverageValue targets (hpaspec.go checks a scenario's HPA
// against that).

import (
	"errors"
	"fmt"
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// tolerances are the usage-ratio tolerances (Tolerances in replica_calculator.go).
type tolerances struct{ down, up float64 }

// within reports whether a usage ratio is close enough to 1 that the
// replica count stays (Tolerances.isWithin): 1-down <= ratio <= 1+up.
func (t tolerances) within(ratio float64) bool {
	return 1-t.down <= ratio && ratio <= 1+t.up
}

// scaleState is what one sync reads of its target: the /scale subresource
// (spec.replicas, status.replicas = pods not terminating) and, from the
// controller's pod informer, the pods its selector matches.
type scaleState struct {
	spec, status int32
	// ready counts the pods Running and Ready (getReadyPodsCount); pods
	// counts every pod the selector matches, Ready or not.
	ready, pods int32
}

// errNoPods is getReadyPodsCount's error: the metric is invalid for this sync.
var errNoPods = errors.New("no pods returned by selector while calculating replica count")

// usageRatioReplicas is getUsageRatioReplicaCount: within the tolerance the
// count stays; otherwise ceil(ratio x Ready pods) — pods not Ready are left
// out of the product. A target at zero replicas scales to ceil(ratio),
// without tolerance.
func usageRatioReplicas(current int32, ratio float64, st scaleState, tol tolerances) (int32, error) {
	if current == 0 {
		return ceilInt32(ratio), nil
	}
	if tol.within(ratio) {
		return current, nil
	}
	if st.pods == 0 {
		return 0, errNoPods
	}
	return ceilInt32(ratio * float64(st.ready)), nil
}

// objectValueReplicas is GetObjectMetricReplicas: ratio = usage / target
// (the seed's cpu_capacity_remaining, with a Value target).
func objectValueReplicas(st scaleState, usage, target int64, tol tolerances) (int32, error) {
	return usageRatioReplicas(st.spec, float64(usage)/float64(target), st, tol)
}

// perPodReplicas is GetObjectPerPodMetricReplicas and
// GetExternalPerPodMetricReplicas (AverageValue targets): with status
// replicas (pods that exist, Ready or not), ratio = usage / (target x
// replicas); outside the tolerance the count becomes ceil(usage / target).
func perPodReplicas(statusReplicas int32, usage, targetPerPod int64, tol tolerances) int32 {
	ratio := float64(usage) / (float64(targetPerPod) * float64(statusReplicas))
	if tol.within(ratio) {
		return statusReplicas
	}
	return ceilInt32(float64(usage) / float64(targetPerPod))
}

func ceilInt32(f float64) int32 {
	switch c := math.Ceil(f); {
	case c > math.MaxInt32:
		return math.MaxInt32
	case c < math.MinInt32:
		return math.MinInt32
	case math.IsNaN(c):
		return 0
	default:
		return int32(c)
	}
}

// metricValues answers a sync's metric queries: the Object metric's value
// (milli-units, as the custom metrics API serves it) and the External
// metric's values summed over the series its selector matches. An error
// makes that metric invalid for the sync, as a failed query does.
type metricValues struct {
	object   func(name string) (int64, error)
	external func(name string, sel labels.Selector) (int64, error)
}

// proposal is computeReplicasForMetrics: the highest proposal of the valid
// metrics; -1 (no scaling this sync) when every metric is invalid, or some
// are and the rest would scale down.
func (h *hpa) proposal(st scaleState, m metricValues) int32 {
	var replicas int32
	invalid := 0
	for i := range h.spec.Metrics {
		p, err := h.metricProposal(i, st, m)
		if err != nil {
			invalid++
			continue
		}
		if replicas == 0 || p > replicas {
			replicas = p
		}
	}
	if invalid >= len(h.spec.Metrics) || invalid > 0 && replicas < st.spec {
		return -1
	}
	return replicas
}

// metricProposal is computeReplicasForMetric for the metric types
// opportunist serves.
func (h *hpa) metricProposal(i int, st scaleState, m metricValues) (int32, error) {
	ms := &h.spec.Metrics[i]
	switch ms.Type {
	case autoscalingv2.ObjectMetricSourceType:
		usage, err := m.object(ms.Object.Metric.Name)
		if err != nil {
			return 0, err
		}
		if t := ms.Object.Target; t.Type == autoscalingv2.ValueMetricType {
			return objectValueReplicas(st, usage, t.Value.MilliValue(), h.tol)
		}
		return perPodReplicas(st.status, usage, ms.Object.Target.AverageValue.MilliValue(), h.tol), nil
	case autoscalingv2.ExternalMetricSourceType:
		usage, err := m.external(ms.External.Metric.Name, h.selectors[i])
		if err != nil {
			return 0, err
		}
		if t := ms.External.Target; t.AverageValue != nil {
			return perPodReplicas(st.status, usage, t.AverageValue.MilliValue(), h.tol), nil
		}
		return usageRatioReplicas(st.spec, float64(usage)/float64(ms.External.Target.Value.MilliValue()), st, h.tol)
	}
	return 0, fmt.Errorf("metric type %s is not simulated", ms.Type) // hpaspec.go rejects it at load
}

// hpa is one HorizontalPodAutoscaler as its controller sees it: the spec as
// the API server stores it, the controller's flags, and the state the
// controller keeps per HPA (recommendations and scale events) and in status
// (the ScaledToZero condition). Times are the simulation's clock, at the
// instant of the sync (not rounded to the simulation's step).
type hpa struct {
	spec      autoscalingv2.HorizontalPodAutoscalerSpec
	min       int32
	flags     HPAController
	tol       tolerances
	selectors []labels.Selector // by metric: an External metric's selector, parsed once

	recs                 []timedRecommendation // nil until the first sync
	upEvents, downEvents []scaleEvent
	scaledToZero         bool // status condition ScaledToZero
}

type timedRecommendation struct {
	replicas int32
	at       time.Duration
}

type scaleEvent struct {
	change   int32 // replicas added or removed, non-negative
	at       time.Duration
	outdated bool
}

// newHPA takes a spec checked and defaulted by hpaSpecFor.
func newHPA(spec autoscalingv2.HorizontalPodAutoscalerSpec, flags HPAController) *hpa {
	h := &hpa{spec: spec, min: 1, flags: flags, tol: tolerances{flags.Tolerance, flags.Tolerance}}
	if spec.MinReplicas != nil {
		h.min = *spec.MinReplicas
	}
	if b := spec.Behavior; b != nil { // tolerancesForHpa (HPAConfigurableTolerance is GA in 1.37)
		if b.ScaleDown != nil && b.ScaleDown.Tolerance != nil {
			h.tol.down = b.ScaleDown.Tolerance.AsApproximateFloat64()
		}
		if b.ScaleUp != nil && b.ScaleUp.Tolerance != nil {
			h.tol.up = b.ScaleUp.Tolerance.AsApproximateFloat64()
		}
	}
	for _, m := range spec.Metrics {
		sel := labels.Everything()
		if m.Type == autoscalingv2.ExternalMetricSourceType && m.External.Metric.Selector != nil {
			var err error
			if sel, err = metav1.LabelSelectorAsSelector(m.External.Metric.Selector); err != nil {
				sel = labels.Nothing() // checked at load
			}
		}
		h.selectors = append(h.selectors, sel)
	}
	return h
}

// reconcile is one sync of the HPA (reconcileAutoscaler) at instant now: it
// returns the target's new spec.replicas and whether it was rescaled.
// propose computes the metrics' proposal (-1: no valid metric); it is called
// only when the controller would query the metrics.
func (h *hpa) reconcile(now time.Duration, current int32, propose func() int32) (int32, bool) {
	if h.recs == nil { // recordInitialRecommendation
		h.recs = []timedRecommendation{{current, now}}
	}
	var desired int32
	switch {
	case current == 0 && !h.scaledToZero:
		// shouldComputeMetricsForZeroReplicas: scaled to zero by hand.
		return 0, false // "scaling is disabled since the replica count of the target is zero"
	case current > h.spec.MaxReplicas:
		desired = h.spec.MaxReplicas
	case current < h.min && current != 0:
		desired = h.min
	default:
		p := propose()
		if p < 0 {
			return current, false // FailedComputeMetricsReplicas: no rescale this sync
		}
		desired = p // desiredReplicas starts at 0 and takes a higher proposal
		if h.spec.Behavior == nil {
			desired = h.normalize(now, current, desired)
		} else {
			desired = h.normalizeWithBehaviors(now, current, desired)
		}
		if current == 0 && h.min != 0 && desired < h.min { // back from zero with a raised min
			desired = h.min
		}
	}
	if desired == current {
		return current, false
	}
	h.storeScaleEvent(now, current, desired)
	// The ScaledToZero condition is set on every rescale (HPAScaleToZero, beta
	// and on in 1.37); every metric simulated is Object or External.
	h.scaledToZero = current > 0 && desired == 0 && h.min == 0
	return desired, true
}

// normalize is the path without spec.behavior (normalizeDesiredReplicas):
// the highest recommendation of the downscale stabilisation window, then
// the bounds and a scale-up limit of max(2 x current, 4) per sync.
func (h *hpa) normalize(now time.Duration, current, proposal int32) int32 {
	stabilized := h.stabilizeRecommendation(now, proposal)
	upLimit := int32(math.Max(2*float64(current), 4)) // calculateScaleUpLimit
	maxAllowed := min(h.spec.MaxReplicas, upLimit)
	switch {
	case stabilized < h.min:
		return h.min
	case stabilized > maxAllowed:
		return maxAllowed
	}
	return stabilized
}

// stabilizeRecommendation returns the highest recommendation not older than
// the downscale stabilisation window (one exactly as old still counts) and
// records this one, reusing the slot of one that fell out of the window.
func (h *hpa) stabilizeRecommendation(now time.Duration, proposal int32) int32 {
	highest := proposal
	old := -1
	cutoff := now - h.flags.DownscaleStabilization
	for i, r := range h.recs {
		if r.at < cutoff {
			old = i
		} else if r.replicas > highest {
			highest = r.replicas
		}
	}
	h.record(old, timedRecommendation{proposal, now})
	return highest
}

func (h *hpa) record(old int, r timedRecommendation) {
	if old >= 0 {
		h.recs[old] = r
	} else {
		h.recs = append(h.recs, r)
	}
}

// normalizeWithBehaviors is the path with spec.behavior
// (normalizeDesiredReplicasWithBehaviors): stabilise within both windows,
// then apply the rate policies and the bounds.
func (h *hpa) normalizeWithBehaviors(now time.Duration, current, proposal int32) int32 {
	b := h.spec.Behavior
	upWindow := time.Duration(*b.ScaleUp.StabilizationWindowSeconds) * time.Second
	downWindow := h.flags.DownscaleStabilization // maybeInitScaleDownStabilizationWindow
	if b.ScaleDown.StabilizationWindowSeconds != nil {
		downWindow = time.Duration(*b.ScaleDown.StabilizationWindowSeconds) * time.Second
	}
	// stabilizeRecommendationWithBehaviors: the count may rise only to the
	// lowest recommendation of the up window and fall only to the highest of
	// the down window.
	upRec, downRec := proposal, proposal
	upCutoff, downCutoff := now-upWindow, now-downWindow
	old := -1
	for i, r := range h.recs {
		if r.at > upCutoff {
			upRec = min(upRec, r.replicas)
		}
		if r.at > downCutoff {
			downRec = max(downRec, r.replicas)
		}
		if r.at < upCutoff && r.at < downCutoff {
			old = i
		}
	}
	stabilized := current
	if stabilized < upRec {
		stabilized = upRec
	}
	if stabilized > downRec {
		stabilized = downRec
	}
	h.record(old, timedRecommendation{proposal, now})

	// convertDesiredReplicasWithBehaviorRate
	switch {
	case stabilized > current:
		limit := max(scaleUpLimit(now, current, h.upEvents, h.downEvents, b.ScaleUp), current)
		if allowed := min(h.spec.MaxReplicas, limit); stabilized > allowed {
			return allowed
		}
	case stabilized < current:
		limit := min(scaleDownLimit(now, current, h.upEvents, h.downEvents, b.ScaleDown), current)
		if allowed := max(h.min, limit); stabilized < allowed {
			return allowed
		}
	}
	return stabilized
}

// replicasChangedWithin sums the changes of the events after now-period
// (getReplicasChangePerPeriod).
func replicasChangedWithin(now time.Duration, period int32, events []scaleEvent) int32 {
	cutoff := now - time.Duration(period)*time.Second
	var sum int32
	for _, e := range events {
		if e.at > cutoff {
			sum += e.change
		}
	}
	return sum
}

// scaleUpLimit is the highest count the policies allow now
// (calculateScaleUpLimitWithScalingRules): each policy counts from the
// replicas at the start of its period; Max selects the most permissive.
func scaleUpLimit(now time.Duration, current int32, up, down []scaleEvent, rules *autoscalingv2.HPAScalingRules) int32 {
	pick, result := maxInt32, int32(math.MinInt32)
	switch *rules.SelectPolicy {
	case autoscalingv2.DisabledPolicySelect:
		return current
	case autoscalingv2.MinChangePolicySelect:
		pick, result = minInt32, math.MaxInt32
	}
	for _, p := range rules.Policies {
		start := current - replicasChangedWithin(now, p.PeriodSeconds, up) + replicasChangedWithin(now, p.PeriodSeconds, down)
		var proposed int32
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			proposed = start + p.Value
		case autoscalingv2.PercentScalingPolicy:
			// rounded up, so that a small target can always grow
			proposed = int32(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		}
		result = pick(result, proposed)
	}
	return result
}

// scaleDownLimit is the lowest count the policies allow now
// (calculateScaleDownLimitWithBehaviors); Max selects the most permissive.
func scaleDownLimit(now time.Duration, current int32, up, down []scaleEvent, rules *autoscalingv2.HPAScalingRules) int32 {
	pick, result := minInt32, int32(math.MaxInt32)
	switch *rules.SelectPolicy {
	case autoscalingv2.DisabledPolicySelect:
		return current
	case autoscalingv2.MinChangePolicySelect:
		pick, result = maxInt32, math.MinInt32
	}
	for _, p := range rules.Policies {
		start := current - replicasChangedWithin(now, p.PeriodSeconds, up) + replicasChangedWithin(now, p.PeriodSeconds, down)
		var proposed int32
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			proposed = start - p.Value
		case autoscalingv2.PercentScalingPolicy:
			proposed = int32(float64(start) * (1 - float64(p.Value)/100)) // truncated
		}
		result = pick(result, proposed)
	}
	return result
}

func minInt32(a, b int32) int32 { return min(a, b) }
func maxInt32(a, b int32) int32 { return max(a, b) }

// storeScaleEvent records a rescale for the rate policies (only with
// spec.behavior), reusing the slot of an event older than the longest
// policy period (markScaleEventsOutdated).
func (h *hpa) storeScaleEvent(now time.Duration, prev, next int32) {
	b := h.spec.Behavior
	if b == nil {
		return
	}
	events, rules, change := &h.upEvents, b.ScaleUp, next-prev
	if next < prev {
		events, rules, change = &h.downEvents, b.ScaleDown, prev-next
	}
	var longest int32
	for _, p := range rules.Policies {
		longest = max(longest, p.PeriodSeconds)
	}
	cutoff := now - time.Duration(longest)*time.Second
	old := -1
	for i := range *events {
		if (*events)[i].at < cutoff {
			(*events)[i].outdated = true
		}
		if (*events)[i].outdated {
			old = i
		}
	}
	e := scaleEvent{change: change, at: now}
	if old >= 0 {
		(*events)[old] = e
	} else {
		*events = append(*events, e)
	}
}
