package sim

// A model of the Kubernetes HorizontalPodAutoscaler controller, rule by rule.
// References are to kubernetes/kubernetes:
//   - pkg/controller/podautoscaler/replica_calculator.go (the replica calculator),
//   - pkg/controller/podautoscaler/horizontal.go (reconcileAutoscaler and the
//     normalisation of the proposal: stabilisation, rate limits, bounds),
//   - pkg/apis/autoscaling/v2/defaults.go (the API server's defaults of
//     spec.behavior),
//   - and, for the seed's --horizontal-pod-autoscaler-upscale-delay and
//     -downscale-delay, horizontal.go as of Kubernetes 1.8 (shouldScale: the
//     "forbidden windows", removed in 1.12).
// Only what the two metrics we simulate need is modelled: an Object metric
// with a Value target (the seed's cpu_capacity_remaining) and an External
// metric with an AverageValue target (opportunist_desired_replicas).

import (
	"fmt"
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Behavior is an HPA's spec.behavior, as the API server stores it.
type Behavior = autoscalingv2.HorizontalPodAutoscalerBehavior

// tolerances are the usage-ratio tolerances (Tolerances in replica_calculator.go).
type tolerances struct{ down, up float64 }

// within reports whether a usage ratio is close enough to 1 that the
// replica count stays (Tolerances.isWithin): 1-down <= ratio <= 1+up.
func (t tolerances) within(ratio float64) bool {
	return 1-t.down <= ratio && ratio <= 1+t.up
}

// objectValueReplicas is the proposal for an Object metric with a Value
// target (GetObjectMetricReplicas, then getUsageRatioReplicaCount):
// ratio = usage / target; within the tolerance the count stays; otherwise
// ceil(ratio x ready pods). Pods not Ready are left out of the product
// (readyReplicas is the target's /scale status.readyReplicas). A target at
// zero replicas scales to ceil(ratio), without tolerance. Missing-metric
// handling belongs to per-pod metrics and does not apply to this one.
func objectValueReplicas(spec, ready int32, usage, target int64, tol tolerances) int32 {
	ratio := float64(usage) / float64(target)
	if spec == 0 {
		return int32(math.Ceil(ratio))
	}
	if tol.within(ratio) {
		return spec
	}
	f := ratio * float64(ready)
	if f > math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(math.Ceil(f))
}

// externalAverageValueReplicas is the proposal for an External metric with
// an AverageValue target (GetExternalPerPodMetricReplicas): with status
// replicas (pods that exist, Ready or not), ratio = usage / (target x
// replicas); outside the tolerance the count becomes ceil(usage / target).
func externalAverageValueReplicas(statusReplicas int32, usage, targetPerPod int64, tol tolerances) int32 {
	ratio := float64(usage) / (float64(targetPerPod) * float64(statusReplicas))
	if tol.within(ratio) {
		return statusReplicas
	}
	f := math.Ceil(float64(usage) / float64(targetPerPod))
	if f > math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(f)
}

// hpa is one HorizontalPodAutoscaler as its controller sees it: the spec's
// bounds and behaviour, the controller's flags, and the state the controller
// keeps per HPA (recommendations and scale events) and in status
// (lastScaleTime). Time is the simulation's clock.
type hpa struct {
	min, max int32
	set      HPASettings
	tol      tolerances

	recs                 []timedRecommendation // nil until the first sync
	upEvents, downEvents []scaleEvent
	lastScale            time.Duration
	scaledOnce           bool
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

func newHPA(set HPASettings, minReplicas, maxReplicas int32) *hpa {
	h := &hpa{min: minReplicas, max: maxReplicas, set: set, tol: tolerances{set.Tolerance, set.Tolerance}}
	if b := set.Behavior; b != nil { // configurable tolerances (spec.behavior.*.tolerance)
		if b.ScaleDown != nil && b.ScaleDown.Tolerance != nil {
			h.tol.down = b.ScaleDown.Tolerance.AsApproximateFloat64()
		}
		if b.ScaleUp != nil && b.ScaleUp.Tolerance != nil {
			h.tol.up = b.ScaleUp.Tolerance.AsApproximateFloat64()
		}
	}
	if h.min < 1 {
		h.min = 1 // minReplicas defaults to 1; 0 needs the HPAScaleToZero gate, not modelled
	}
	return h
}

// reconcile is one sync of the HPA (reconcileAutoscaler): it returns the
// target's new spec.replicas and whether it was rescaled. propose computes
// the metric's proposal; it is called only when the controller would.
func (h *hpa) reconcile(now time.Duration, current int32, propose func() int32) (int32, bool) {
	if h.recs == nil { // recordInitialRecommendation
		h.recs = []timedRecommendation{{current, now}}
	}
	var desired int32
	switch {
	case current == 0:
		return 0, false // "scaling is disabled since the replica count of the target is zero"
	case current > h.max:
		desired = h.max
	case current < h.min:
		desired = h.min
	default:
		desired = max(propose(), 0) // desiredReplicas starts at 0: a negative proposal is 0
		if h.set.Behavior == nil {
			desired = h.normalize(now, current, desired)
		} else {
			desired = h.normalizeWithBehaviors(now, current, desired)
		}
		// In 1.8 only a metric-based change waited out the forbidden windows.
		if desired != current && !h.outsideForbiddenWindows(now, current, desired) {
			return current, false
		}
	}
	if desired == current {
		return current, false
	}
	h.storeScaleEvent(now, current, desired)
	h.lastScale, h.scaledOnce = now, true
	return desired, true
}

// outsideForbiddenWindows is Kubernetes 1.8's shouldScale: after a scale,
// no scale down within the downscale delay, no scale up within the upscale
// delay (both counted from the last scale, whichever its direction).
func (h *hpa) outsideForbiddenWindows(now time.Duration, current, desired int32) bool {
	if !h.scaledOnce {
		return true
	}
	if desired < current {
		return h.lastScale+h.set.DownscaleDelay < now
	}
	return h.lastScale+h.set.UpscaleDelay < now
}

// normalize is the path without spec.behavior (normalizeDesiredReplicas):
// the highest recommendation of the downscale stabilisation window, then
// the bounds and a scale-up limit of max(2 x current, 4) per sync.
func (h *hpa) normalize(now time.Duration, current, proposal int32) int32 {
	stabilized := h.stabilizeRecommendation(now, proposal)
	upLimit := int32(math.Max(2*float64(current), 4)) // calculateScaleUpLimit
	maxAllowed := min(h.max, upLimit)
	switch {
	case stabilized < h.min:
		return h.min
	case stabilized > maxAllowed:
		return maxAllowed
	}
	return stabilized
}

// stabilizeRecommendation returns the highest recommendation within the
// downscale stabilisation window and records this one, reusing the slot of
// one that fell out of the window.
func (h *hpa) stabilizeRecommendation(now time.Duration, proposal int32) int32 {
	highest := proposal
	old := -1
	cutoff := now - h.set.DownscaleStabilization
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
	b := h.set.Behavior
	upWindow := time.Duration(*b.ScaleUp.StabilizationWindowSeconds) * time.Second
	downWindow := h.set.DownscaleStabilization // maybeInitScaleDownStabilizationWindow
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
		if allowed := min(h.max, limit); stabilized > allowed {
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
	b := h.set.Behavior
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

// ---- settings ----

// seedHPA is the write-up's HPA controller: a 10 s sync, 30 s up and down
// delays, the default tolerance; spec.behavior as autoscaling/v2 defaults it
// and the default 5 min downscale stabilisation.
var seedHPA = HPASettings{
	SyncPeriod:             10 * time.Second,
	Tolerance:              0.1,
	UpscaleDelay:           30 * time.Second,
	DownscaleDelay:         30 * time.Second,
	DownscaleStabilization: 5 * time.Minute,
	Behavior:               DefaultBehavior(),
}

// averageValueHPA is the HPA that docs/hpa.md tells users to deploy on
// opportunist_desired_replicas, run by a stock controller (15 s sync): as
// opportunist already stabilises, no windows and no rate limit to speak of
// (1000% per second both ways). A scenario's hpa.averageValue.behavior: {}
// gives the stock behaviour instead (5 min scale-down window).
var averageValueHPA = HPASettings{
	SyncPeriod:             15 * time.Second,
	Tolerance:              0.1,
	DownscaleStabilization: 5 * time.Minute,
	Behavior: defaultBehavior(&Behavior{
		ScaleUp:   rules(0, autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: 1000, PeriodSeconds: 1}),
		ScaleDown: rules(0, autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: 1000, PeriodSeconds: 1}),
	}),
}

// rules is scaling rules with a window (seconds) and policies, other fields defaulted.
func rules(window int32, policies ...autoscalingv2.HPAScalingPolicy) *autoscalingv2.HPAScalingRules {
	return &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &window, Policies: policies}
}

// DefaultBehavior is spec.behavior as the API server defaults an empty one
// (defaults.go): scale up with no window, by 100% or 4 pods per 15 s,
// whichever is more; scale down by 100% per 15 s after the controller's
// downscale stabilisation window (left nil here, as the API server does).
func DefaultBehavior() *Behavior {
	return defaultBehavior(nil)
}

// defaultBehavior fills the unset fields of b with the API server's defaults.
func defaultBehavior(b *Behavior) *Behavior {
	out := &Behavior{}
	if b != nil {
		out.ScaleUp, out.ScaleDown = b.ScaleUp, b.ScaleDown
	}
	maxPolicy := autoscalingv2.MaxChangePolicySelect
	zero := int32(0)
	out.ScaleUp = fillRules(out.ScaleUp, autoscalingv2.HPAScalingRules{
		StabilizationWindowSeconds: &zero,
		SelectPolicy:               &maxPolicy,
		Policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		},
	})
	out.ScaleDown = fillRules(out.ScaleDown, autoscalingv2.HPAScalingRules{
		SelectPolicy: &maxPolicy,
		Policies:     []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}},
	})
	return out
}

// fillRules is copyHPAScalingRules: the set fields of from over the defaults.
func fillRules(from *autoscalingv2.HPAScalingRules, def autoscalingv2.HPAScalingRules) *autoscalingv2.HPAScalingRules {
	if from == nil {
		return &def
	}
	if from.SelectPolicy != nil {
		def.SelectPolicy = from.SelectPolicy
	}
	if from.StabilizationWindowSeconds != nil {
		def.StabilizationWindowSeconds = from.StabilizationWindowSeconds
	}
	if from.Policies != nil {
		def.Policies = from.Policies
	}
	if from.Tolerance != nil {
		def.Tolerance = from.Tolerance
	}
	return &def
}

type behaviorFile struct {
	ScaleUp   *hpaRulesFile `yaml:"scaleUp"`
	ScaleDown *hpaRulesFile `yaml:"scaleDown"`
}

// hpaRulesFile is autoscaling/v2 HPAScalingRules.
type hpaRulesFile struct {
	pos
	StabilizationWindowSeconds *int32          `yaml:"stabilizationWindowSeconds"`
	SelectPolicy               *string         `yaml:"selectPolicy"`
	Policies                   []hpaPolicyFile `yaml:"policies"`
	Tolerance                  *quantity       `yaml:"tolerance"`
}

type hpaPolicyFile struct {
	pos
	Type          string `yaml:"type"`
	Value         int32  `yaml:"value"`
	PeriodSeconds int32  `yaml:"periodSeconds"`
}

func convertHPA(c *errs, f *hpaFile, path string, def HPASettings) HPASettings {
	out := def
	out.SyncPeriod = f.SyncPeriod.or(def.SyncPeriod)
	out.UpscaleDelay = f.UpscaleDelay.or(def.UpscaleDelay)
	out.DownscaleDelay = f.DownscaleDelay.or(def.DownscaleDelay)
	out.DownscaleStabilization = f.DownscaleStabilization.or(def.DownscaleStabilization)
	if f.Tolerance != nil {
		out.Tolerance = *f.Tolerance
		if out.Tolerance < 0 {
			c.fieldAt(f.pos, path, "tolerance", "must not be negative")
		}
	}
	if out.SyncPeriod <= 0 {
		c.fieldAt(f.pos, path, "syncPeriod", "must be positive")
	}
	switch {
	case f.BehaviorUnset && f.Behavior != nil:
		c.fieldAt(f.pos, path, "behaviorUnset", "cannot be set together with behavior")
	case f.BehaviorUnset:
		out.Behavior = nil
	case f.Behavior != nil:
		b := &Behavior{
			ScaleUp:   convertRules(c, f.Behavior.ScaleUp, path+".behavior.scaleUp"),
			ScaleDown: convertRules(c, f.Behavior.ScaleDown, path+".behavior.scaleDown"),
		}
		out.Behavior = defaultBehavior(b)
	}
	return out
}

func convertRules(c *errs, r *hpaRulesFile, path string) *autoscalingv2.HPAScalingRules {
	if r == nil {
		return nil
	}
	out := &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: r.StabilizationWindowSeconds}
	if w := r.StabilizationWindowSeconds; w != nil && (*w < 0 || *w > 3600) {
		c.fieldAt(r.pos, path, "stabilizationWindowSeconds", "%d is not between 0 and 3600", *w)
	}
	if p := r.SelectPolicy; p != nil {
		sp := autoscalingv2.ScalingPolicySelect(*p)
		switch sp {
		case autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect, autoscalingv2.DisabledPolicySelect:
		default:
			c.fieldAt(r.pos, path, "selectPolicy", "%q must be Max, Min or Disabled", *p)
		}
		out.SelectPolicy = &sp
	}
	if r.Policies != nil {
		if len(r.Policies) == 0 {
			c.fieldAt(r.pos, path, "policies", "must hold at least one policy when set")
		}
		out.Policies = []autoscalingv2.HPAScalingPolicy{}
		for i, p := range r.Policies {
			field := fmt.Sprintf("%s.policies[%d]", path, i)
			t := autoscalingv2.HPAScalingPolicyType(p.Type)
			if t != autoscalingv2.PodsScalingPolicy && t != autoscalingv2.PercentScalingPolicy {
				c.fieldAt(p.pos, field, "type", "%q must be Pods or Percent", p.Type)
			}
			if p.Value <= 0 {
				c.fieldAt(p.pos, field, "value", "must be positive")
			}
			if p.PeriodSeconds < 1 || p.PeriodSeconds > 1800 {
				c.fieldAt(p.pos, field, "periodSeconds", "%d is not between 1 and 1800", p.PeriodSeconds)
			}
			out.Policies = append(out.Policies, autoscalingv2.HPAScalingPolicy{Type: t, Value: p.Value, PeriodSeconds: p.PeriodSeconds})
		}
	}
	if r.Tolerance != nil {
		q := r.Tolerance.Quantity
		out.Tolerance = resource.NewMilliQuantity(q.MilliValue(), resource.DecimalSI)
	}
	return out
}
