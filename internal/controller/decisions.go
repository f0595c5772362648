package controller

import (
	"sort"
	"sync"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/control"
)

// Published is one scaler's last decision as readers outside the
// reconciler see it.
type Published struct {
	Current, Desired, Min, Max int32
	Limit, Reason              string
	// PoolNodes counts the nodes of the scaler's pool.
	PoolNodes int
	// Slots says how many of each headroom slot fit, and where.
	Slots []control.SlotFit
	// Reclaim is the reclaimer's last word on the pool's nodes (every node,
	// not capped as in status); nil when the scaler does not reclaim.
	Reclaim *v1alpha1.ReclaimStatus
}

// DecisionStore holds the last decision of each scaler, for readers outside
// the reconciler (the external metrics API, the dashboard).
type DecisionStore struct {
	mu      sync.RWMutex
	desired map[string]Published
	// leading is set by the first round of the reconciler; from then on the
	// status mirror of a standby no longer writes here.
	leading bool
}

// NewDecisionStore returns an empty store.
func NewDecisionStore() *DecisionStore { return &DecisionStore{desired: map[string]Published{}} }

// Desired returns the last desired count of a scaler ("namespace/name").
func (s *DecisionStore) Desired(key string) (int32, bool) {
	p, ok := s.Get(key)
	return p.Desired, ok
}

// Get returns the last decision of a scaler.
func (s *DecisionStore) Get(key string) (Published, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.desired[key]
	return v, ok
}

// Keys returns the scalers with a decision, sorted.
func (s *DecisionStore) Keys() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := make([]string, 0, len(s.desired))
	for k := range s.desired {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// replace sets the decisions of a round; scalers without one are dropped.
func (s *DecisionStore) replace(desired map[string]Published) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.desired, s.leading = desired, true
}

// replaceFromStatus sets what a standby serves: the leader's decisions as
// its status shows them. A no-op once this replica's reconciler has run.
func (s *DecisionStore) replaceFromStatus(desired map[string]Published) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leading {
		s.desired = desired
	}
}
