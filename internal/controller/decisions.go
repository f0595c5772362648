package controller

import (
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

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
	// Forecasts is, for a scaler with spec.prediction Preview or Auto, its
	// pool's paid demand per forecast resource: the recent history and the
	// forecast ahead (nil in Off).
	Forecasts []Forecast
	// Reclaim is the reclaimer's last word on the pool's nodes (every node,
	// not capped as in status); nil when the scaler does not reclaim.
	Reclaim *v1alpha1.ReclaimStatus
}

// MaxForecastPoints caps each series of a Forecast: four hours of history
// at the one-minute step, and a plan (an hour and the window) fits.
const MaxForecastPoints = 240

// Forecast is one resource's paid demand of a pool, in the canonical unit
// of capacity.Resources (millicores, bytes), on the history's clock: what
// was observed, then what the budget forecasts.
type Forecast struct {
	Resource corev1.ResourceName
	Step     time.Duration
	// Observed holds the highest paid demand of each step from
	// ObservedStart, oldest first; NaN is a gap (opportunist was not
	// running). At most MaxForecastPoints.
	ObservedStart time.Time
	Observed      []float64
	// Forecast holds the forecast of each step from ForecastStart (the
	// step of now) to the end of the plan; its upper band is Forecast +
	// Band. Empty while reactive (Reason says why).
	ForecastStart time.Time
	Forecast      []float64
	Band          float64
	// Peak is the highest forecast within the lead time (band and margin
	// included), PeakAt when this resource's forecast peaks; zero while
	// reactive.
	Peak   float64
	PeakAt time.Time
	// Forecaster is the method in use (None while reactive); Reason why
	// the budget is reactive, "" while it forecasts.
	Forecaster, Reason string
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
