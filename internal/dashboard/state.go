// Package dashboard serves opportunist's live web page and its JSON API.
// Every asset is embedded: the page needs no network. The data comes from a
// Source: the simulator (opportunist demo) or a live cluster (opportunist run).
package dashboard

import "time"

// Source gives the dashboard its data. Implementations must be safe for
// concurrent use: every request calls them.
type Source interface {
	// State is the current snapshot.
	State() State
	// History is the capacity chart's time series, oldest first.
	History() History
}

// State is the snapshot served by GET /api/v1/state and the stream.
type State struct {
	// Time is the snapshot's instant (simulated time for the demo).
	Time time.Time `json:"time"`
	// Origin says where the data comes from, e.g. "cluster" or
	// "simulator: seed-burst at 10x".
	Origin string `json:"origin"`
	// Finished is true once a simulated scenario has played to its end.
	Finished bool `json:"finished"`
	// Scenario says what a simulated cluster plays; absent on a live cluster.
	Scenario *Scenario `json:"scenario,omitempty"`
	// Views holds one entry per strategy shown; a live cluster has one.
	Views []View `json:"views"`
}

// Scenario explains the demo's simulated cluster to someone who has never
// read the write-up.
type Scenario struct {
	Name string `json:"name"`
	// Description is the scenario's own sentence (its file's description).
	Description string `json:"description"`
	// Setting says in words what the cluster is and what runs on it:
	// nodes and cores, the paid workloads, the opportunistic ones and the
	// room they keep free.
	Setting string `json:"setting"`
	// DurationSeconds is the simulated time the scenario lasts: the width
	// of the charts' time axis.
	DurationSeconds float64 `json:"durationSeconds"`
	// LoadChanges counts the instants at which the paid load or the nodes
	// changed: the yardstick for a summary's directionChanges.
	LoadChanges int `json:"loadChanges"`
}

// View is one strategy's (or the live cluster's) state.
type View struct {
	Name string `json:"name"`
	// Description says in plain words what the strategy is ("" when unknown).
	Description string `json:"description,omitempty"`
	// Summary is what opportunist simulate reports for this strategy over
	// the whole scenario (the demo computes it up front); absent on a live
	// cluster.
	Summary     *Summary    `json:"summary,omitempty"`
	Resources   []Resource  `json:"resources"`
	Workloads   []Workload  `json:"workloads"`
	PendingPaid PendingPaid `json:"pendingPaid"`
	Nodes       []Node      `json:"nodes"`
	// Decisions is the recent feed of scale decisions, newest first.
	Decisions []Decision `json:"decisions"`
	// Forecasts holds, for each workload whose scaler predicts (spec.prediction
	// Preview or Auto), its pool's paid demand per forecast resource: the
	// recent history and the forecast with its band. Absent in the demo.
	Forecasts []Forecast `json:"forecasts,omitempty"`
}

// Forecast is one workload's forecast of its pool's paid demand of one
// resource, in Unit (cores for cpu, GiB for memory), on the controller's
// history clock (one step a minute).
type Forecast struct {
	Workload string `json:"workload"`
	Resource string `json:"resource"`
	Unit     string `json:"unit"`
	// Forecaster is the method in use (None: reactive, Reason says why).
	Forecaster  string  `json:"forecaster"`
	Reason      string  `json:"reason,omitempty"`
	StepSeconds float64 `json:"stepSeconds"`
	// Observed is the highest paid demand of each step from ObservedStart,
	// oldest first; null is a gap (opportunist was not running).
	ObservedStart time.Time  `json:"observedStart"`
	Observed      []*float64 `json:"observed"`
	// Forecast is the forecast of each step from ForecastStart (now) to
	// the end of the plan the budget acts on; Forecast + Band is the upper
	// edge of the band. Empty while reactive.
	ForecastStart *time.Time `json:"forecastStart,omitempty"`
	Forecast      []float64  `json:"forecast"`
	Band          float64    `json:"band"`
	// Peak is the highest forecast within the lead time (band and margin
	// included), at PeakTime; absent while reactive.
	Peak     float64    `json:"peak,omitempty"`
	PeakTime *time.Time `json:"peakTime,omitempty"`
}

// Summary is one strategy's outcome over a whole simulated scenario: the
// numbers of sim.Result, under the same names, computed once by the
// simulator (never recomputed by the page). Core-hours count CPU requests.
type Summary struct {
	// HarvestCoreHours is what the opportunistic pods held.
	HarvestCoreHours float64 `json:"harvestCoreHours"`
	// InstantLawCoreHours is the instant law's harvest on the same load,
	// HarvestOfInstantLaw harvest over it (0-1).
	InstantLawCoreHours float64 `json:"instantLawCoreHours"`
	HarvestOfInstantLaw float64 `json:"harvestOfInstantLaw"`
	// BoundCoreHours is the most the room could hold, HarvestOfBound
	// harvest over it (0-1).
	BoundCoreHours float64 `json:"boundCoreHours"`
	HarvestOfBound float64 `json:"harvestOfBound"`
	// OvershootCoreHours is harvest that ate into the headroom kept free
	// for paid work.
	OvershootCoreHours float64 `json:"overshootCoreHours"`
	// PaidPendingPodSeconds adds up the time paid pods waited for room;
	// LongestPaidWaitSeconds is the longest one paid pod waited.
	PaidPendingPodSeconds  float64 `json:"paidPendingPodSeconds"`
	LongestPaidWaitSeconds float64 `json:"longestPaidWaitSeconds"`
	// ScaleEvents counts writes of the replica counts; DirectionChanges
	// those that reversed the previous one's direction (up after down or
	// down after up).
	ScaleEvents      int `json:"scaleEvents"`
	DirectionChanges int `json:"directionChanges"`
	// UnschedulablePodHours counts opportunistic pods that existed but fit
	// on no node.
	UnschedulablePodHours float64 `json:"unschedulablePodHours"`
}

// Resource is one resource of the usable pool, in display units (cores for
// cpu, GiB for memory).
type Resource struct {
	Name          string  `json:"name"`
	Unit          string  `json:"unit"`
	Allocatable   float64 `json:"allocatable"`
	Paid          float64 `json:"paid"`
	Opportunistic float64 `json:"opportunistic"`
	// Line is the fill line: allocatable minus the headroom kept free.
	Line float64 `json:"line"`
}

// Workload is one opportunistic workload and why it has its size.
type Workload struct {
	Name    string `json:"name"`
	Current int32  `json:"current"`
	Desired int32  `json:"desired"`
	Min     int32  `json:"min"`
	Max     int32  `json:"max"`
	// LimitedBy names what set Desired (Budget, Fit, Max, Min, PendingPaid, ...).
	LimitedBy string `json:"limitedBy"`
	Reason    string `json:"reason"`
	// PoolNodes counts the nodes of its pool (Ready, schedulable, matching
	// its pool selector, eligible for one replica); 0 before a decision.
	PoolNodes int `json:"poolNodes"`
	// Stranded counts its pods on NotReady, cordoned or missing nodes.
	Stranded int32 `json:"stranded"`
	// Slots says, for a workload keeping headroom slots, how many paid pods
	// of each slot's shape fit now; absent without slots.
	Slots []SlotFit `json:"slots,omitempty"`
}

// SlotFit is one headroom slot: Fit of Wanted paid pods of its shape fit,
// node by node (Nodes: where).
type SlotFit struct {
	Name   string      `json:"name"`
	Wanted int32       `json:"wanted"`
	Fit    int32       `json:"fit"`
	Nodes  []NodeSlots `json:"nodes,omitempty"`
}

// NodeSlots is how many pods of one slot fit on one node.
type NodeSlots struct {
	Node  string `json:"node"`
	Slots int32  `json:"slots"`
}

// PendingPaid is the paid demand not yet bound to a node.
type PendingPaid struct {
	Pods int `json:"pods"`
	// OldestWaitSeconds is how long the oldest pending paid pod has waited:
	// the time to yield still running.
	OldestWaitSeconds float64 `json:"oldestWaitSeconds"`
	// MaxWaitSeconds is the longest any paid pod waited so far, when known.
	MaxWaitSeconds float64 `json:"maxWaitSeconds"`
	// Gated counts the unbound paid pods held by scheduling gates: they wait
	// for their gates, not for room, and are not in Pods.
	Gated int `json:"gated"`
}

// Node is one node's room, in the Resource units.
type Node struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// CPU and Memory as {allocatable, paid, opportunistic}; free is the rest.
	CPU    NodeResource `json:"cpu"`
	Memory NodeResource `json:"memory"`
	Pods   int          `json:"pods"`
	// Reclaim is the node's reclaimable CPU as the reclaimer last computed
	// it; absent when no reclaiming scaler's pool holds the node.
	Reclaim *NodeReclaim `json:"reclaim,omitempty"`
}

// NodeReclaim is a node's reclaimable room: the idle part of paid requests
// that reclaiming pods may use, and what is published for them.
type NodeReclaim struct {
	// Workload is the reclaiming scaler whose round computed it.
	Workload string `json:"workload"`
	// ReclaimableCores is theta × allocatable − system − reservations of
	// paid pods − margin, at least 0 (0 while usage is stale).
	ReclaimableCores float64 `json:"reclaimableCores"`
	// PublishedCores is the node's opportunist.io/reclaimable-cpu: the
	// larger of the reclaimable room and what requests leave free.
	PublishedCores float64 `json:"publishedCores"`
	// Formula is the arithmetic behind both, with its numbers.
	Formula string `json:"formula"`
	// UsageFresh is false while usage from metrics.k8s.io is stale or
	// missing; Message then says why.
	UsageFresh bool   `json:"usageFresh"`
	Message    string `json:"message,omitempty"`
}

// NodeResource is one resource of a node, in Unit (cores or GiB).
type NodeResource struct {
	Unit          string  `json:"unit"`
	Allocatable   float64 `json:"allocatable"`
	Paid          float64 `json:"paid"`
	Opportunistic float64 `json:"opportunistic"`
	Free          float64 `json:"free"`
}

// Decision is one change of a workload's replica count.
type Decision struct {
	Time      time.Time `json:"time"`
	Workload  string    `json:"workload"`
	From      int32     `json:"from"`
	To        int32     `json:"to"`
	LimitedBy string    `json:"limitedBy"`
	Reason    string    `json:"reason"`
}

// History is served by GET /api/v1/history.
type History struct {
	Views []Series `json:"views"`
}

// Series is one view's samples, oldest first.
type Series struct {
	Name   string   `json:"name"`
	Points []Sample `json:"points"`
}

// Sample is the pool at one instant: one Resource per resource name, and
// how many paid pods were waiting for room (in a thinned history, the most
// at once until the next sample, so that a short wait is not lost).
type Sample struct {
	Time            time.Time  `json:"time"`
	Resources       []Resource `json:"resources"`
	PendingPaidPods int        `json:"pendingPaidPods"`
}
