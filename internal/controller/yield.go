package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
)

// YieldDeletionCost is the pod-deletion-cost set on the pods a decision
// yields. When a ReplicaSet shrinks it deletes, in order (k8s.io/kubernetes
// pkg/controller/controller_utils.go ActivePodsWithRanks.Less): unassigned
// pods, then pods by phase (Pending, Unknown, Running), then not-Ready
// ones, and only then the lowest pod-deletion-cost. So a lowered count
// removes exactly the marked pods as long as the workload has no unbound,
// not-Running or not-Ready pods: control.Decide counts unbound ones out of
// what stays; a not-Ready pod would still go first (and free its room
// elsewhere). Any lower cost a user set also goes first. The mark stays on a
// pod whose removal was not needed in the end: it only makes that pod the
// first to go at the next scale-down.
const YieldDeletionCost = "-1000"

// markYield sets the deletion cost on the pods a decision yields, before
// its /scale is lowered, so that the ReplicaSet removes those pods and the
// room comes free where the pending paid pods fit. A failed mark does not
// stop the scale-down: paid work comes first, and the next round yields
// again if the room freed elsewhere. It is reported as an Event and a log line.
func (r *Reconciler) markYield(ctx context.Context, sr *scalerRound, d *control.Decision) {
	if len(d.Yield) == 0 {
		return
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{capacity.DeletionCostAnnotation: YieldDeletionCost}}})
	var failed []string
	for _, key := range d.Yield {
		ns, name, _ := strings.Cut(key, "/")
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if err := r.Client.Patch(ctx, pod, client.RawPatch(types.MergePatchType, patch), client.FieldOwner("opportunist")); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", key, err))
		}
	}
	if len(failed) > 0 {
		msg := fmt.Sprintf("could not mark %d of %d pods to go first (%s); lowering the count anyway", len(failed), len(d.Yield), strings.Join(failed, "; "))
		r.Log.Warn("yield mark failed", "scaler", sr.key, "message", msg)
		r.Recorder.Eventf(sr.obj, nil, corev1.EventTypeWarning, "YieldMarkFailed", "Yield", "%s", msg)
		return
	}
	r.Log.Info("marked pods to go first", "scaler", sr.key, "pods", d.Yield, "deletionCost", YieldDeletionCost)
}
