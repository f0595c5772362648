package controller

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
)

// PublishedFromStatus is what the leader last decided for each scaler, read
// back from the status it wrote. Only scalers whose Ready condition is true
// for their current generation count: a scaler the leader could not decide
// for has no desired count on the leader either.
func PublishedFromStatus(items []v1alpha1.OpportunisticScaler) map[string]Published {
	out := map[string]Published{}
	for i := range items {
		s := &items[i]
		ready := meta.FindStatusCondition(s.Status.Conditions, ConditionReady)
		if ready == nil || ready.Status != "True" || ready.ObservedGeneration != s.Generation || s.Status.ObservedGeneration != s.Generation {
			continue
		}
		var lowest int32
		if s.Spec.MinReplicas != nil {
			lowest = *s.Spec.MinReplicas
		}
		out[s.Namespace+"/"+s.Name] = Published{
			Current: s.Status.CurrentReplicas, Desired: s.Status.DesiredReplicas,
			Min: lowest, Max: s.Spec.MaxReplicas,
			Limit: s.Status.LimitedBy, Reason: s.Status.Reason,
			Slots: slotFits(s.Status.Slots), Reclaim: s.Status.Reclaim.DeepCopy(),
		}
	}
	return out
}

// slotFits reads status.slots back (its nodes as capped there).
func slotFits(st []v1alpha1.SlotStatus) []control.SlotFit {
	if len(st) == 0 {
		return nil
	}
	out := make([]control.SlotFit, len(st))
	for i, s := range st {
		out[i] = control.SlotFit{Name: s.Name, Wanted: s.Wanted, Fit: s.Fit}
		for _, n := range s.Nodes {
			out[i].Nodes = append(out[i].Nodes, control.NodeSlots{Node: n.Node, Slots: n.Slots})
		}
	}
	return out
}

// StatusMirror fills a standby replica's DecisionStore from the scalers'
// status, so the external metrics API and the dashboard answer the same on
// every replica behind one Service (the aggregator picks any endpoint). It
// runs on every replica and stops once this one is elected: from then on the
// reconciler's own rounds fill the store.
type StatusMirror struct {
	Reader   client.Reader
	Store    *DecisionStore
	Elected  <-chan struct{}
	Interval time.Duration
}

// NeedLeaderElection is false: the mirror is what a non-leader runs.
func (m *StatusMirror) NeedLeaderElection() bool { return false }

// Start mirrors until ctx ends or this replica is elected.
func (m *StatusMirror) Start(ctx context.Context) error {
	tick := time.NewTicker(m.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.Elected:
			return nil
		case <-tick.C:
		}
		var list v1alpha1.OpportunisticScalerList
		if err := m.Reader.List(ctx, &list); err != nil {
			continue // the cache reports its own errors; the next tick retries
		}
		m.Store.replaceFromStatus(PublishedFromStatus(list.Items))
	}
}

// WorkloadsFromStatus are the opportunistic workloads as the controller last
// wrote them in the scalers' status (the target's /scale selector), for
// readers that see no target themselves (`opportunist status`). Scalers
// without a usable selector are left out: their pods count as paid.
func WorkloadsFromStatus(items []v1alpha1.OpportunisticScaler) []capacity.Workload {
	var out []capacity.Workload
	for i := range items {
		s := &items[i]
		if s.Status.Selector == "" {
			continue
		}
		sel, err := labels.Parse(s.Status.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		out = append(out, capacity.Workload{Key: s.Namespace + "/" + s.Name, Namespace: s.Namespace, Selector: sel})
	}
	return out
}
