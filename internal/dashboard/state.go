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
	// Views holds one entry per strategy shown; a live cluster has one.
	Views []View `json:"views"`
}

// View is one strategy's (or the live cluster's) state.
type View struct {
	Name        string      `json:"name"`
	Resources   []Resource  `json:"resources"`
	Workloads   []Workload  `json:"workloads"`
	PendingPaid PendingPaid `json:"pendingPaid"`
	Nodes       []Node      `json:"nodes"`
	// Decisions is the recent feed of scale decisions, newest first.
	Decisions []Decision `json:"decisions"`
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
}

// NodeResource is one resource of a node.
type NodeResource struct {
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

// Sample is the pool at one instant: one Resource per resource name.
type Sample struct {
	Time      time.Time  `json:"time"`
	Resources []Resource `json:"resources"`
}
