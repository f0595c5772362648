package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Evictor evicts a pod through the Eviction API: the way reclaim moves a
// reclaiming pod off a node under pressure when lowering the count cannot
// (the scaler is at its minReplicas, or its /scale write is refused).
type Evictor interface {
	// Evict asks the API server to evict the pod; a PodDisruptionBudget
	// that forbids it makes it fail (429), and nothing happens.
	Evict(ctx context.Context, namespace, name string) error
}

// PodEvicter creates policy/v1 Evictions (RBAC pods/eviction create), which
// honour PodDisruptionBudgets; the ReplicaSet then recreates the pod where
// the published room allows.
type PodEvicter struct {
	Kube kubernetes.Interface
}

// Evict implements Evictor.
func (e PodEvicter) Evict(ctx context.Context, namespace, name string) error {
	return e.Kube.PolicyV1().Evictions(namespace).Evict(ctx, &policyv1.Eviction{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}})
}

// pressureEvictions are the pods to evict for a scaler this round: those
// the lowered count does not remove, or, when the /scale write failed, all
// of its pods under pressure.
func (sr *scalerRound) pressureEvictions(scaleFailed bool) []string {
	rr := sr.reclaim
	if rr == nil {
		return nil
	}
	if scaleFailed {
		return rr.victims[sr.key]
	}
	return rr.evict[sr.key]
}

// evictPressured evicts the pods, one Event each on the scaler. A pod
// already gone is no failure; any other error (a PodDisruptionBudget's
// 429) is a Warning Event, and the next round tries again while the
// pressure lasts.
func (r *Reconciler) evictPressured(ctx context.Context, sr *scalerRound, pods []string) {
	if len(pods) == 0 || r.Reclaimer == nil || r.Reclaimer.Evict == nil {
		return
	}
	for _, key := range pods {
		ns, name, _ := strings.Cut(key, "/")
		err := r.Reclaimer.Evict.Evict(ctx, ns, name)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			msg := fmt.Sprintf("could not evict %s from its node under pressure: %v", key, err)
			r.Log.Warn("reclaim eviction failed", "scaler", sr.key, "pod", key, "err", err)
			r.Recorder.Eventf(sr.obj, nil, corev1.EventTypeWarning, ReasonReclaimEvictFailed, "Evict", "%s", msg)
		default:
			r.Log.Info("evicted reclaiming pod", "scaler", sr.key, "pod", key)
			r.Recorder.Eventf(sr.obj, nil, corev1.EventTypeNormal, ReasonReclaimEvicted, "Evict",
				"evicted %s: paid usage rose on its node and the count cannot go lower; the ReplicaSet recreates it where the published room allows", key)
		}
	}
}

const (
	// ReasonReclaimEvicted: an Event per pod evicted off a node under pressure.
	ReasonReclaimEvicted = "ReclaimEvicted"
	// ReasonReclaimEvictFailed: an eviction refused (a PodDisruptionBudget) or failed.
	ReasonReclaimEvictFailed = "ReclaimEvictFailed"
)
