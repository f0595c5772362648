// Package controller is the OpportunisticScaler reconciler: every change of
// the cluster or of a scaler runs one round of the control law over all
// scalers (they share one pool), writes the /scale of targets whose desired
// count changed, and reports each decision in status, an Event and a log line.
//
// A round fails only when the scalers cannot be listed: whatever goes wrong
// with one scaler's target (reading it, writing its /scale) is that scaler's
// problem, reported on it, and the round goes on for the others.
package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/cluster"
	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/predict"
	"github.com/opportunist/opportunist/internal/scalerspec"
)

// Capacity is the live capacity model the reconciler reads.
type Capacity interface {
	// Stale returns since when the data cannot be trusted and why, or a
	// zero time and nil while it is current.
	Stale() (time.Time, error)
	Report() capacity.Report
	Rooms() []capacity.NodeRoom
	Pending() []capacity.PendingPod
	// Opportunistic lists the opportunistic pods bound per node (yield.go).
	Opportunistic() map[string][]capacity.BoundPod
	SetWorkloads([]capacity.Workload)
}

// Condition types and reasons of a scaler's status.
const (
	ConditionReady       = "Ready"
	ConditionConflicting = "Conflicting"

	ReasonDuplicateTarget = "DuplicateTarget"
	ReasonHPAScalesTarget = "HPAScalesTarget"
	// ReasonScaledObjectScalesTarget: a KEDA ScaledObject (through the HPA
	// KEDA made for it) scales the target too.
	ReasonScaledObjectScalesTarget = "ScaledObjectScalesTarget"
	ReasonCapacityStale            = "CapacityStale"
	ReasonInvalidSpec              = "InvalidSpec"
	ReasonActive                   = "Active"
	ReasonPaused                   = "Paused"
	ReasonDryRun                   = "DryRun"
	// ReasonScaleFailed: the decision was made but writing /scale failed.
	ReasonScaleFailed = "ScaleFailed"
	// ReasonSlotShapeNotFound: a spec.headroomSlots[].shapeFrom names a
	// workload that does not exist. (Other failures to read it keep the
	// target's reasons: TargetForbidden, NoPodTemplate, ...)
	ReasonSlotShapeNotFound = "SlotShapeNotFound"
	// ReasonPreYield: an Event of a scale-down ahead of a forecast peak
	// (spec.prediction.mode Auto).
	ReasonPreYield = "PreYield"
)

// RoundRequest is the one reconcile request: a round covers every scaler.
var RoundRequest = reconcile.Request{NamespacedName: types.NamespacedName{Name: "round"}}

// Reconciler runs rounds of the control law.
type Reconciler struct {
	Client   client.Client
	Targets  Targets
	Capacity Capacity
	Recorder events.EventRecorder
	Log      *slog.Logger
	Clock    clock.PassiveClock
	// Resync bounds the time between rounds when nothing changes, so
	// time-based stabilisation windows expire without an event.
	Resync  time.Duration
	Metrics *Metrics
	// Decisions, when set, receives each round's desired counts.
	Decisions *DecisionStore
	// Stale is what to do when the capacity data is stale; the zero value
	// is DefaultStalePolicy.
	Stale StalePolicy
	// StatusInterval is how often a scaler's status is rewritten when only
	// its live numbers changed (budget, fit, the reason's text); any other
	// change is written at once. Zero writes every change.
	StatusInterval time.Duration
	// MinRoundInterval is the least time between the starts of two rounds
	// (coalesce.go); 0 runs a round on every request.
	MinRoundInterval time.Duration
	// Scoring is how the cluster's scheduler picks among the nodes a pod
	// fits on ("" is its default, LeastAllocated): scalers with slots place
	// their new replicas as it would.
	Scoring capacity.Scoring
	// Reclaimer, when set, runs usage-based reclaim for the scalers with
	// spec.reclaim enabled (reclaim.go).
	Reclaimer *Reclaimer
	// HistoryClock is the demand history's clock (nil: time.Now); tests
	// compress time with it (--history-time-scale).
	HistoryClock func() time.Time
	// HistoryLoaded, when set, holds the first round until it is closed:
	// the leader's persisted histories are seeded first (history.go).
	HistoryLoaded <-chan struct{}
	// HistoryTimeScale is how much faster the history clock runs than the
	// real one (0 counts as 1): lead times are real, the forecast's window
	// is on the history clock.
	HistoryTimeScale float64

	// recorders hold each scaler's demand history, by HistoryKey; the
	// leader's saver reads them (HistorySnapshot) while rounds run.
	historyMu sync.Mutex
	recorders map[string]*predict.Recorder
	// predictors forecast for scalers with spec.prediction or an "auto"
	// headroom, on the recorders' histories.
	predictors map[string]*predict.Predictor
	spacing    roundSpacing

	history map[string]control.History
	// seenPaidPending holds the paid pods pending at the last round's start
	// (kept only with MinRoundInterval): a new one runs a round early.
	seenPaidPending map[string]bool
	// statusWritten is when each scaler's status was last written; a
	// round writes several scalers' at once (apply).
	statusMu      sync.Mutex
	statusWritten map[string]time.Time
	workloads     string // fingerprint of the last SetWorkloads
	// staleEvented is, per scaler, the start of the stale spell whose
	// behaviour was announced by an Event: one Event per spell, however
	// often its cause's wording changes.
	staleEvented map[string]time.Time
}

// scalerRound is one scaler's state within a round.
type scalerRound struct {
	obj    *v1alpha1.OpportunisticScaler
	key    string
	target *scalerspec.Target
	// problem, when set, stops this scaler from acting (reason, message).
	problem, message string
	// quiet: the problem is reported in status and logs but not as an Event
	// (stale data within its grace period).
	quiet bool
	// warning and warningReason: another autoscaler writes the target too.
	warning, warningReason string
	input                  control.Scaler
	// prediction is this round's forecast (nil: prediction Off and no
	// learned headroom).
	prediction *scalerPrediction
	// scaledAt is when this round wrote the target, if it did.
	scaledAt time.Time
	// reclaim is the round's reclaim view, for a scaler with reclaim on;
	// reclaimOff: it asks for reclaim, which this controller does not run.
	reclaim    *reclaimRound
	reclaimOff bool
}

// Reconcile runs one round over all scalers.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	if err := r.waitHistory(ctx); err != nil {
		return reconcile.Result{}, err
	}
	r.spacing.min = r.MinRoundInterval
	if wait := r.spacing.wait(r.Clock.Now()); wait > 0 {
		if !r.newPaidPending() {
			return reconcile.Result{RequeueAfter: wait}, nil // coalesced into that round
		}
		if early := r.spacing.early(r.Clock.Now()); early > 0 {
			return reconcile.Result{RequeueAfter: min(early, wait)}, nil
		}
	}
	if r.MinRoundInterval > 0 {
		r.seenPaidPending = paidPendingKeys(r.Capacity.Pending())
	}
	r.Metrics.Round()
	began := r.Clock.Now()
	if r.history == nil {
		r.history = map[string]control.History{}
	}
	var list v1alpha1.OpportunisticScalerList
	if err := r.Client.List(ctx, &list); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing OpportunisticScalers: %w", err)
	}
	sort.Slice(list.Items, func(i, j int) bool {
		return list.Items[i].Namespace+"/"+list.Items[i].Name < list.Items[j].Namespace+"/"+list.Items[j].Name
	})
	rounds := make([]*scalerRound, len(list.Items))
	for i := range list.Items {
		s := &list.Items[i]
		rounds[i] = &scalerRound{obj: s, key: s.Namespace + "/" + s.Name}
	}
	if since, err := r.Capacity.Stale(); err != nil {
		return r.staleRound(ctx, rounds, since, err)
	}
	r.Metrics.Stale(r.policy().Behaviour, false)
	r.staleEvented = nil
	r.resolveTargets(ctx, rounds)
	r.markConflicts(ctx, rounds)
	r.updateWorkloads(rounds)
	read := r.Clock.Now()
	r.Metrics.RoundPhase("read", read.Sub(began))

	counts := control.PodCountsOf(r.Capacity.Report())
	now := r.Clock.Now()
	var inputs []control.Scaler
	for _, sr := range rounds {
		if sr.problem != "" {
			continue
		}
		history, known := r.history[sr.key]
		if !known {
			// New scaler, or new leader: the window starts now.
			history = control.SeedHistory(now, sr.target.Scale.Spec.Replicas)
		}
		in, err := scalerspec.ToControl(sr.obj, sr.target, counts[sr.key], history, func(namespace string, ref autoscalingv2.CrossVersionObjectReference) (capacity.Shape, error) {
			return r.Targets.Shape(ctx, namespace, ref)
		})
		if err != nil {
			sr.problem, sr.message = specProblem(err)
			continue
		}
		sr.input = in
		inputs = append(inputs, in)
	}
	cluster := control.ClusterOf(r.Capacity)
	cluster.Scoring = r.Scoring
	modelled := r.Clock.Now()
	r.Metrics.RoundPhase("model", modelled.Sub(read))
	r.predictRound(&cluster, rounds, inputs)
	reclaimed := r.reclaimRooms(ctx, now, rounds, inputs, &cluster)
	decisions := control.Decide(now, cluster, inputs)
	reclaimPressure(reclaimed, decisions)
	byKey := map[string]*control.Decision{}
	published := map[string]Published{}
	inputByKey := map[string]*control.Scaler{}
	roundOf := map[string]*scalerRound{}
	for _, sr := range rounds {
		roundOf[sr.key] = sr
	}
	for i := range inputs {
		inputByKey[inputs[i].Key] = &inputs[i]
	}
	for i := range decisions {
		d, in := &decisions[i], inputByKey[decisions[i].Key]
		byKey[d.Key] = d
		r.history[d.Key] = d.History
		if sr := roundOf[d.Key]; sr != nil {
			if why := sr.prediction.preYield(in.Current, d.Desired, d.Limit); why != "" {
				d.Reason = why + "; " + d.Reason // in status, the Event and the dashboard's decision feed
			}
		}
		published[d.Key] = Published{Current: in.Current, Desired: d.Desired, Min: in.Min, Max: in.Max, Limit: string(d.Limit), Reason: d.Reason, PoolNodes: d.PoolNodes, Slots: d.Slots}
		if sr := roundOf[d.Key]; sr != nil && sr.prediction != nil {
			p := published[d.Key]
			p.Forecasts = sr.prediction.forecasts
			published[d.Key] = p
		}
		if sr := roundOf[d.Key]; sr != nil && sr.reclaim != nil {
			p := published[d.Key]
			p.Reclaim = reclaimStatus(d.Key, sr.reclaim, 0)
			published[d.Key] = p
		}
	}
	r.Decisions.replace(published)
	decided := r.Clock.Now()
	r.Metrics.RoundPhase("decide", decided.Sub(modelled))
	r.apply(ctx, applyOrder(rounds, byKey), byKey)
	r.Metrics.RoundPhase("apply", r.Clock.Now().Sub(decided))
	r.forgetGone(rounds)
	return reconcile.Result{RequeueAfter: r.Resync}, nil
}

// applyWorkers is how many scalers' writes a round has in flight at once.
// Each scaler's writes (its pods' marks, its /scale, its status) are API
// calls one after another, ~1.4 s a scaler on a busy 5,000-node API server:
// one scaler at a time, a yield waited for every scaler before it. Five, as
// the HPA controller's --concurrent-horizontal-pod-autoscaler-syncs.
const applyWorkers = 5

// apply reports every scaler's decision, applyWorkers at a time.
func (r *Reconciler) apply(ctx context.Context, ordered []*scalerRound, decisions map[string]*control.Decision) {
	inParallel(ordered, applyWorkers, func(sr *scalerRound) { r.report(ctx, sr, decisions[sr.key]) })
}

// inParallel calls do for each item, at most workers at once, starting them
// in order, and returns when all are done.
func inParallel[T any](items []T, workers int, do func(T)) {
	next := make(chan T)
	var wg sync.WaitGroup
	for range min(workers, len(items)) {
		wg.Go(func() {
			for it := range next {
				do(it)
			}
		})
	}
	for _, it := range items {
		next <- it
	}
	close(next)
	wg.Wait()
}

// applyOrder is the order the round starts writing its decisions in: the
// scale-downs that let pending paid pods in first, then the other
// scale-downs (room for the paid pods the scheduler has placed), then the
// rest, each group in key order.
func applyOrder(rounds []*scalerRound, decisions map[string]*control.Decision) []*scalerRound {
	rank := func(sr *scalerRound) int {
		d := decisions[sr.key]
		switch {
		case d == nil || sr.problem != "" || sr.target == nil || d.Desired >= sr.target.Scale.Spec.Replicas:
			return 2
		case d.Limit == control.LimitPendingPaid:
			return 0
		default:
			return 1
		}
	}
	out := slices.Clone(rounds)
	slices.SortStableFunc(out, func(a, b *scalerRound) int { return cmp.Compare(rank(a), rank(b)) })
	return out
}

// specProblem is the problem of a scaler whose spec does not convert: a
// slot's shapeFrom that cannot be read keeps its Targets reason (a missing
// one is SlotShapeNotFound), anything else is InvalidSpec. The message
// names the field.
func specProblem(err error) (reason, message string) {
	var te *targetError
	switch {
	case errors.Is(err, scalerspec.ErrTargetMissing):
		return ReasonSlotShapeNotFound, err.Error()
	case errors.As(err, &te):
		return te.reason.Error(), err.Error()
	}
	return ReasonInvalidSpec, err.Error()
}

func (r *Reconciler) policy() StalePolicy {
	if r.Stale.Behaviour == "" {
		return DefaultStalePolicy()
	}
	return r.Stale
}

// staleRound runs a round on stale data: hold within the grace period, then
// apply the configured behaviour. The control law does not run: its inputs
// cannot be trusted.
func (r *Reconciler) staleRound(ctx context.Context, rounds []*scalerRound, since time.Time, cause error) (reconcile.Result, error) {
	p, now := r.policy(), r.Clock.Now()
	// Never synced (e.g. a long first list, or one refused from the start):
	// the data never was good, so it did not go stale; the round holds
	// however long that takes, whatever --on-stale says.
	neverSynced := errors.Is(cause, cluster.ErrNotSynced)
	applied := !neverSynced && p.Applies(since, now)
	r.Metrics.Stale(p.Behaviour, applied)
	if applied && p.Behaviour == StaleShrinkToMin {
		// Shrinking needs each target's count and owner. Only the watches
		// may be failing: reads and writes of /scale can still work.
		r.resolveTargets(ctx, rounds)
		r.markConflicts(ctx, rounds)
	}
	for _, sr := range rounds {
		if sr.problem == "" {
			var current, min int32
			if sr.target != nil {
				current = sr.target.Scale.Spec.Replicas
			}
			if sr.obj.Spec.MinReplicas != nil {
				min = *sr.obj.Spec.MinReplicas
			}
			out := DecideStale(p, since, now, cause.Error(), sr.target != nil, current, min)
			if neverSynced {
				out = StaleOutcome{Message: "holding the current count until the capacity data is complete for the first time: " + cause.Error()}
			}
			sr.problem, sr.message, sr.quiet = ReasonCapacityStale, out.Message, true
			if out.Applied && !r.staleEvented[sr.key].Equal(since) {
				if r.staleEvented == nil {
					r.staleEvented = map[string]time.Time{}
				}
				r.staleEvented[sr.key] = since
				r.Recorder.Eventf(sr.obj, nil, corev1.EventTypeWarning, ReasonCapacityStale, "Reconcile", "%s", out.Message)
			}
			if out.Write && !sr.obj.Spec.Paused && !sr.obj.Spec.DryRun {
				if err := r.scale(ctx, sr, out.Desired); err != nil {
					sr.problem, sr.message = ReasonScaleFailed, fmt.Sprintf("%s; scaling down to minReplicas failed: %v", out.Message, err)
				} else {
					r.Log.Warn("scaled on stale data", "scaler", sr.key, "target", sr.obj.Spec.ScaleTargetRef.Kind+"/"+sr.obj.Spec.ScaleTargetRef.Name,
						"from", current, "to", out.Desired, "behaviour", string(p.Behaviour), "staleSince", since.UTC().Format(time.RFC3339), "cause", cause.Error())
					r.Recorder.Eventf(sr.obj, nil, corev1.EventTypeWarning, "Scaled", "Scale", "scaled from %d to %d: %s on capacity data stale since %s", current, out.Desired, p.Behaviour, since.UTC().Format(time.RFC3339))
				}
			}
		}
		r.report(ctx, sr, nil)
	}
	// Rounds keep coming while stale, so the behaviour applies on time.
	return reconcile.Result{RequeueAfter: time.Second}, nil
}

// scaleRetry bounds the retries of a conflicting /scale update: a few, a
// few milliseconds apart (client-go's retry.DefaultRetry).
var scaleRetry = retry.DefaultRetry

// scale writes a target's /scale to replicas and counts each attempt. An
// update that conflicts (the target changed since the round read it, often
// only its status) is retried on a fresh read of /scale. A failure is
// announced in an Event and returned, for the caller to put in status.
func (r *Reconciler) scale(ctx context.Context, sr *scalerRound, replicas int32) error {
	from := sr.target.Scale.Spec.Replicas
	sc, attempts := sr.target.Scale, 0
	err := retry.RetryOnConflict(scaleRetry, func() error {
		if attempts > 0 {
			fresh, err := r.Targets.GetScale(ctx, sr.obj.Namespace, sr.target.GroupResource, sr.obj.Spec.ScaleTargetRef.Name)
			if err != nil {
				return fmt.Errorf("reading /scale again after a conflict: %w", err)
			}
			sc = fresh
		}
		attempts++
		next := sc.DeepCopy()
		next.Spec.Replicas = replicas
		_, err := r.Targets.UpdateScale(ctx, sr.obj.Namespace, sr.target.GroupResource, next)
		r.Metrics.ScaleWrite(sr.key, from, replicas, err)
		return err
	})
	if err != nil {
		if apierrors.IsConflict(err) {
			err = fmt.Errorf("the target kept changing, %d updates conflicted: %w", attempts, err)
		}
		r.Recorder.Eventf(sr.obj, nil, corev1.EventTypeWarning, ReasonScaleFailed, "Scale", "scaling from %d to %d failed: %v", from, replicas, err)
		r.Log.Warn("scale failed", "scaler", sr.key, "from", from, "to", replicas, "err", err)
		return err
	}
	sr.target.Scale = sc.DeepCopy()
	sr.target.Scale.Spec.Replicas = replicas
	sr.scaledAt = r.Clock.Now()
	return nil
}

// resolveTargets reads every scaler's target. Whatever fails is that
// scaler's problem: one bad target never stops the others.
func (r *Reconciler) resolveTargets(ctx context.Context, rounds []*scalerRound) {
	for _, sr := range rounds {
		t, err := r.Targets.Read(ctx, sr.obj.Namespace, sr.obj.Spec.ScaleTargetRef)
		var te *targetError
		switch {
		case errors.As(err, &te):
			sr.problem, sr.message = te.reason.Error(), te.msg
		case err != nil: // outside the Targets contract; still the scaler's alone
			sr.problem, sr.message = scalerspec.ErrTargetUnavailable.Error(), err.Error()
		default:
			sr.target = t
		}
	}
}

// markConflicts stops every scaler sharing a target with another (the oldest
// keeps acting, so adding a second scaler never disturbs the first), and
// warns when an HPA scales the same target.
func (r *Reconciler) markConflicts(ctx context.Context, rounds []*scalerRound) {
	owners := map[string]*scalerRound{}
	for _, sr := range sortedByAge(rounds) {
		if sr.target == nil {
			continue
		}
		id := sr.obj.Namespace + "/" + sr.target.GroupResource.String() + "/" + sr.obj.Spec.ScaleTargetRef.Name
		if first, taken := owners[id]; taken {
			sr.problem, sr.message = ReasonDuplicateTarget, fmt.Sprintf("OpportunisticScaler %s already scales %s; only one scaler may own a target", first.key, sr.obj.Spec.ScaleTargetRef.Name)
			continue
		}
		owners[id] = sr
	}
	hpas := map[string][]autoscalingv2.HorizontalPodAutoscaler{}
	for _, sr := range rounds {
		if sr.problem != "" {
			continue
		}
		ns := sr.obj.Namespace
		if _, read := hpas[ns]; !read {
			var list autoscalingv2.HorizontalPodAutoscalerList
			if err := r.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
				r.Log.Warn("cannot list HorizontalPodAutoscalers to check for conflicts", "namespace", ns, "err", err)
			}
			hpas[ns] = list.Items
		}
		sr.warningReason, sr.warning = conflictingAutoscaler(sr.obj, hpas[ns])
	}
}

func sortedByAge(rounds []*scalerRound) []*scalerRound {
	out := append([]*scalerRound(nil), rounds...)
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].obj.CreationTimestamp.Before(&out[j].obj.CreationTimestamp)
	})
	return out
}

// updateWorkloads tells the capacity model which pods are opportunistic:
// those selected by the /scale selector of each valid scaler's target.
func (r *Reconciler) updateWorkloads(rounds []*scalerRound) {
	var ws []capacity.Workload
	fingerprint := ""
	for _, sr := range rounds {
		if sr.problem != "" || sr.target.Scale.Status.Selector == "" {
			continue
		}
		sel, err := labels.Parse(sr.target.Scale.Status.Selector)
		if err != nil {
			sr.problem, sr.message = ReasonInvalidSpec, fmt.Sprintf("target's /scale selector %q: %v", sr.target.Scale.Status.Selector, err)
			continue
		}
		ws = append(ws, capacity.Workload{Key: sr.key, Namespace: sr.obj.Namespace, Selector: sel})
		fingerprint += sr.key + "=" + sel.String() + ";"
	}
	if fingerprint != r.workloads {
		r.Capacity.SetWorkloads(ws)
		r.workloads = fingerprint
	}
}

// forgetGone drops the history of scalers that no longer exist.
func (r *Reconciler) forgetGone(rounds []*scalerRound) {
	live := map[string]bool{}
	for _, sr := range rounds {
		live[sr.key] = true
	}
	for key := range r.history {
		if !live[key] {
			delete(r.history, key)
		}
	}
	r.historyMu.Lock()
	for key := range r.recorders {
		if !live[key] {
			delete(r.recorders, key)
			delete(r.predictors, key)
		}
	}
	r.historyMu.Unlock()
	for key := range r.statusWritten {
		if !live[key] {
			delete(r.statusWritten, key)
		}
	}
	r.Metrics.Forget(live)
}

// report acts on one scaler's decision (or problem): writes /scale when it
// should, then status, Event, log line and metrics. Whatever fails is put on
// the scaler, never returned: the round goes on for the others.
func (r *Reconciler) report(ctx context.Context, sr *scalerRound, d *control.Decision) {
	s := sr.obj
	status := s.Status.DeepCopy()
	status.ObservedGeneration = s.Generation
	if sr.target != nil {
		status.CurrentReplicas = sr.target.Scale.Spec.Replicas
		status.Selector = sr.target.Scale.Status.Selector
	}
	if !sr.scaledAt.IsZero() {
		status.LastScaleTime = &metav1.Time{Time: sr.scaledAt}
	}
	setCondition(status, ConditionConflicting, sr.warning != "", sr.warningReason, sr.warning, s.Generation)
	setReclaimCondition(status, sr)
	if sr.reclaim != nil {
		status.Reclaim = reclaimStatus(sr.key, sr.reclaim, v1alpha1.MaxReclaimNodes)
	} else if s.Spec.Reclaim == nil || !s.Spec.Reclaim.Enabled {
		status.Reclaim = nil
		meta.RemoveStatusCondition(&status.Conditions, ConditionReclaim)
	}
	if sr.problem != "" || d == nil {
		if sr.problem == "" {
			sr.problem, sr.message = ReasonInvalidSpec, "no decision was made for this scaler"
		}
		r.reportProblem(sr, status)
		r.writeStatus(ctx, sr, status)
		return
	}

	current := sr.target.Scale.Spec.Replicas
	status.DesiredReplicas, status.LimitedBy, status.Reason = d.Desired, string(d.Limit), d.Reason
	status.BudgetReplicas, status.FitReplicas = d.Budget, d.Fit
	status.PoolNodes, status.StrandedReplicas = int32(d.PoolNodes), d.Stranded
	status.Slots = slotStatus(d.Slots)
	status.Prediction = sr.prediction.status()
	mode := ReasonActive
	switch {
	case s.Spec.Paused:
		mode = ReasonPaused
	case s.Spec.DryRun:
		mode = ReasonDryRun
	}
	r.Metrics.Decision(sr.key, current, d)
	r.Metrics.Forecast(sr.key, sr.prediction)
	logArgs := []any{"scaler", sr.key, "target", sr.obj.Spec.ScaleTargetRef.Kind + "/" + sr.obj.Spec.ScaleTargetRef.Name,
		"from", current, "to", d.Desired, "limitedBy", string(d.Limit), "budgetReplicas", d.Budget, "fitReplicas", d.Fit, "mode", mode, "reason", d.Reason}
	switch {
	case d.Desired == current:
	case mode != ReasonActive:
		r.Log.Info("decision not applied", logArgs...)
	default:
		r.markYield(ctx, sr, d) // the pods to go, before the count goes down
		if err := r.scale(ctx, sr, d.Desired); err != nil {
			r.evictPressured(ctx, sr, sr.pressureEvictions(true))
			// The Event is scale's; the status keeps the decision and says
			// why it is not applied.
			sr.problem, sr.message, sr.quiet = ReasonScaleFailed, fmt.Sprintf("scaling from %d to %d failed: %v", current, d.Desired, err), true
			r.reportProblem(sr, status)
			r.writeStatus(ctx, sr, status)
			return
		}
		r.Log.Info("scaled", logArgs...)
		reason := "Scaled"
		if strings.HasPrefix(d.Reason, preYieldPrefix) {
			reason = ReasonPreYield // d.Reason says which peak
		}
		r.Recorder.Eventf(s, nil, corev1.EventTypeNormal, reason, "Scale", "scaled from %d to %d (limited by %s): %s", current, d.Desired, d.Limit, d.Reason)
		status.CurrentReplicas, status.LastScaleTime = d.Desired, &metav1.Time{Time: sr.scaledAt}
	}
	if mode == ReasonActive {
		r.evictPressured(ctx, sr, sr.pressureEvictions(false)) // after the count: the pods it cannot remove
	}
	setCondition(status, ConditionReady, true, mode, fmt.Sprintf("%s: %s", mode, d.Reason), s.Generation)
	r.writeStatus(ctx, sr, status)
}

// slotStatus is status.slots of a decision: at most MaxSlotNodes nodes per
// slot, the rest counted, so a large pool keeps the status small.
func slotStatus(fits []control.SlotFit) []v1alpha1.SlotStatus {
	if len(fits) == 0 {
		return nil
	}
	out := make([]v1alpha1.SlotStatus, len(fits))
	for i, f := range fits {
		out[i] = v1alpha1.SlotStatus{Name: f.Name, Wanted: f.Wanted, Fit: f.Fit}
		for j, n := range f.Nodes {
			if j == v1alpha1.MaxSlotNodes {
				out[i].MoreNodes = int32(len(f.Nodes) - j)
				break
			}
			out[i].Nodes = append(out[i].Nodes, v1alpha1.NodeSlotStatus{Node: n.Node, Slots: n.Slots})
		}
	}
	return out
}

// reportProblem sets Ready=False for the scaler's problem, announces it
// once (Event and log line when the condition changes) and sets its metric.
func (r *Reconciler) reportProblem(sr *scalerRound, status *v1alpha1.OpportunisticScalerStatus) {
	if setCondition(status, ConditionReady, false, sr.problem, sr.message, sr.obj.Generation) {
		if !sr.quiet {
			r.Recorder.Eventf(sr.obj, nil, corev1.EventTypeWarning, sr.problem, "Reconcile", "%s", sr.message)
		}
		r.Log.Warn("scaler cannot act", "scaler", sr.key, "reason", sr.problem, "message", sr.message)
	}
	r.Metrics.Problem(sr.key, sr.problem)
}

// setCondition sets a condition and reports whether it changed state.
func setCondition(status *v1alpha1.OpportunisticScalerStatus, typ string, on bool, reason, msg string, gen int64) bool {
	if typ == ConditionConflicting && !on {
		return meta.RemoveStatusCondition(&status.Conditions, typ)
	}
	st := metav1.ConditionFalse
	if on {
		st = metav1.ConditionTrue
	}
	if msg == "" {
		msg = reason
	}
	return meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg, ObservedGeneration: gen})
}

// writeStatus writes a scaler's status when it changed: at once when
// something other than its live numbers did, else at most once per
// StatusInterval, so a busy cluster does not rewrite every scaler each
// round. A failed write is logged and retried next round.
func (r *Reconciler) writeStatus(ctx context.Context, sr *scalerRound, status *v1alpha1.OpportunisticScalerStatus) {
	s, now := sr.obj, r.Clock.Now()
	r.statusMu.Lock()
	last := r.statusWritten[sr.key]
	r.statusMu.Unlock()
	if !statusNeedsWrite(&s.Status, status, now.Sub(last), r.StatusInterval) {
		return
	}
	patch := client.MergeFrom(s.DeepCopy())
	s.Status = *status
	if err := r.Client.Status().Patch(ctx, s, patch); err != nil {
		if !apierrors.IsNotFound(err) {
			r.Log.Warn("cannot write status", "scaler", sr.key, "err", err)
		}
		return
	}
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	if r.statusWritten == nil {
		r.statusWritten = map[string]time.Time{}
	}
	r.statusWritten[sr.key] = now
}

// statusNeedsWrite: was is the status as stored, next as computed; since is
// the time since this process last wrote it.
func statusNeedsWrite(was, next *v1alpha1.OpportunisticScalerStatus, since, interval time.Duration) bool {
	if equalStatus(was, next) {
		return false
	}
	return since >= interval || !equalStatus(withoutLiveNumbers(was), withoutLiveNumbers(next))
}

// withoutLiveNumbers blanks what moves with every pod: the budget and fit
// counts, how many slots fit and where, and the reason that spells out the
// arithmetic (also in the Ready condition's message while the scaler is
// active). The desired and current counts, the bound, the slots wanted and
// every condition's state stay.
func withoutLiveNumbers(st *v1alpha1.OpportunisticScalerStatus) *v1alpha1.OpportunisticScalerStatus {
	out := st.DeepCopy()
	out.BudgetReplicas, out.FitReplicas, out.Reason = 0, 0, ""
	if p := out.Prediction; p != nil {
		// What moves with the demand and the clock; the mode, forecaster,
		// period and lead time stay.
		p.Reason, p.History, p.Peak, p.PeakTime, p.Reserve, p.BacktestError, p.Outlook = "", "", nil, nil, nil, "", nil
		for i := range p.LearnedHeadroom {
			p.LearnedHeadroom[i].Quantity, p.LearnedHeadroom[i].Source = resource.Quantity{}, ""
		}
	}
	if out.Reclaim != nil {
		out.Reclaim.Nodes, out.Reclaim.MoreNodes = nil, 0
	}
	for i := range out.Slots {
		out.Slots[i].Fit, out.Slots[i].Nodes, out.Slots[i].MoreNodes = 0, nil, 0
	}
	for i := range out.Conditions {
		if c := &out.Conditions[i]; c.Type == ConditionReady && c.Status == metav1.ConditionTrue {
			c.Message = ""
		}
	}
	return out
}

func equalStatus(a, b *v1alpha1.OpportunisticScalerStatus) bool {
	x, y := a.DeepCopy(), b.DeepCopy()
	for _, s := range []*v1alpha1.OpportunisticScalerStatus{x, y} {
		for i := range s.Conditions {
			s.Conditions[i].LastTransitionTime = metav1.Time{}
		}
	}
	return equality(x, y)
}

// SetupWithManager registers the reconciler: scalers, HPAs and every
// capacity change trigger a round; a resync bounds the time between rounds.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, changes <-chan struct{}) error {
	toRound := func(context.Context, client.Object) []reconcile.Request { return []reconcile.Request{RoundRequest} }
	return ctrl.NewControllerManagedBy(mgr).
		Named("opportunisticscaler").
		Watches(&v1alpha1.OpportunisticScaler{}, handlerFor(toRound)).
		Watches(&autoscalingv2.HorizontalPodAutoscaler{}, handlerFor(toRound)).
		WatchesRawSource(capacitySource(changes)).
		WithOptions(controllerOptions()).
		Complete(r)
}

// newPaidPending reports whether a paid pod is pending that the last round
// did not see: it may need a yield, so its round does not wait for the
// interval.
func (r *Reconciler) newPaidPending() bool {
	for _, pp := range r.Capacity.Pending() {
		if pp.Workload == "" && !pp.Gated && !pp.Terminating && !r.seenPaidPending[pp.Key()] {
			return true
		}
	}
	return false
}

// paidPendingKeys lists the pending paid pods that are demand (not gated,
// not terminating).
func paidPendingKeys(pending []capacity.PendingPod) map[string]bool {
	out := map[string]bool{}
	for _, pp := range pending {
		if pp.Workload == "" && !pp.Gated && !pp.Terminating {
			out[pp.Key()] = true
		}
	}
	return out
}
