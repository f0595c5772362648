package v1alpha1

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// OpportunisticScaler keeps a scalable workload (anything with a /scale
// subresource) filled into the room its cluster has to spare, and shrinks it
// at once when paid work needs the room.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=osc;oscaler,categories=opportunist
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.scaleTargetRef.name`
// +kubebuilder:printcolumn:name="Min",type=integer,JSONPath=`.spec.minReplicas`
// +kubebuilder:printcolumn:name="Max",type=integer,JSONPath=`.spec.maxReplicas`
// +kubebuilder:printcolumn:name="Current",type=integer,JSONPath=`.status.currentReplicas`
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.status.desiredReplicas`
// +kubebuilder:printcolumn:name="Limited-By",type=string,JSONPath=`.status.limitedBy`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type OpportunisticScaler struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   OpportunisticScalerSpec   `json:"spec"`
	Status OpportunisticScalerStatus `json:"status,omitempty"`
}

// OpportunisticScalerSpec says what to scale, within which bounds, and how
// much room to leave for paid work.
//
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must not exceed maxReplicas"
type OpportunisticScalerSpec struct {
	// ScaleTargetRef names the workload to scale: a Deployment, StatefulSet,
	// ReplicaSet or any resource with a /scale subresource, in this namespace.
	ScaleTargetRef autoscalingv2.CrossVersionObjectReference `json:"scaleTargetRef"`

	// MinReplicas is kept even when there is no room (default 0).
	// +kubebuilder:validation:Minimum=0
	// +optional
	MinReplicas *int32 `json:"minReplicas,omitempty"`

	// MaxReplicas bounds the workload.
	// +kubebuilder:validation:Minimum=1
	MaxReplicas int32 `json:"maxReplicas"`

	// Headroom is the room left free for paid work, per resource: a quantity
	// ("30" cores, "64Gi"), a percent of the pool's allocatable ("15%"), or
	// "auto": learned from the pool's demand history (the 0.99-quantile of
	// the paid demand's rise within one lead time; status.prediction says
	// the number and where it came from). Resources not listed fall back to TargetUtilizationPercent, else to no
	// headroom (fill to allocatable).
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	Headroom map[corev1.ResourceName]HeadroomValue `json:"headroom,omitempty"`

	// HeadroomSlots keep room for paid pods of given shapes free node by
	// node: the scaler grows only while Count pods of every slot's shape
	// still fit on the pool's free room once its new replicas are placed as
	// the scheduler would place them, and yields the fewest replicas that
	// restore the slots when they no longer fit. With Headroom, both hold.
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:XValidation:rule="self.all(x, !has(x.name) && !has(x.shapeFrom) || self.exists_one(y, (has(y.name) ? y.name : (has(y.shapeFrom) ? y.shapeFrom.name : '')) == (has(x.name) ? x.name : x.shapeFrom.name)))",message="slot names must be unique (a slot without a name is named after its shapeFrom.name): give each slot its own name"
	// +listType=atomic
	// +optional
	HeadroomSlots []HeadroomSlot `json:"headroomSlots,omitempty"`

	// TargetUtilizationPercent fills the pool up to this share of its
	// allocatable room, for every resource without an explicit headroom.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	TargetUtilizationPercent *int32 `json:"targetUtilizationPercent,omitempty"`

	// PoolSelector restricts the pool to the nodes it matches (default: all
	// nodes). The pool is the Ready, schedulable nodes that match it and
	// that one replica of the target may run on: its node selector, required
	// node affinity and tolerations (untolerated NoSchedule or NoExecute
	// taints exclude a node). Budget, percent headroom, pending paid demand
	// and fit are all computed on the pool only.
	// +optional
	PoolSelector *metav1.LabelSelector `json:"poolSelector,omitempty"`

	// Priority orders scalers sharing one pool: higher priorities take room first.
	// +optional
	Priority int32 `json:"priority,omitempty"`

	// Weight shares room among scalers of the same priority, proportionally.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +kubebuilder:default=1
	// +optional
	Weight int32 `json:"weight,omitempty"`

	// Behavior tunes how fast the workload grows and shrinks.
	// +optional
	Behavior Behavior `json:"behavior,omitempty"`

	// Reclaim lets the workload also use room that paid pods request but
	// leave idle, measured from metrics.k8s.io (docs/reclaim.md). Its pods
	// must request the extended resource opportunist.io/reclaimable-cpu (in
	// milli-cores) plus a tiny native cpu request, with a cpu limit.
	// +optional
	Reclaim *Reclaim `json:"reclaim,omitempty"`

	// Paused stops all writes to the target; status still reports.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// DryRun computes and reports the desired count without writing it.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`

	// Prediction forecasts the pool's paid demand from its own history and
	// hands room back before a forecast peak arrives (default mode Off).
	// +optional
	Prediction *Prediction `json:"prediction,omitempty"`
}

// PredictionMode says what the forecast of paid demand does.
// +kubebuilder:validation:Enum=Off;Preview;Auto
type PredictionMode string

// Prediction modes.
const (
	// PredictionOff: the budget reacts to the paid demand it sees (no forecast).
	PredictionOff PredictionMode = "Off"
	// PredictionPreview forecasts and reports in status what Auto would do,
	// and changes nothing.
	PredictionPreview PredictionMode = "Preview"
	// PredictionAuto keeps room free for the highest forecast paid demand
	// within the lead time; it never refills room on a forecast alone.
	PredictionAuto PredictionMode = "Auto"
)

// Prediction tunes the forecast of paid demand.
type Prediction struct {
	// Mode is Off (default), Preview or Auto. Quote "Off" in YAML (as for
	// a VerticalPodAutoscaler's updateMode): bare, YAML reads it as false.
	// +kubebuilder:default=Off
	// +optional
	Mode PredictionMode `json:"mode,omitempty"`

	// Quantile of the forecast's backtest errors added to the forecast, as
	// a decimal between 0 and 1 ("0.9", the default): the forecast peak is
	// short of the paid demand that rarely.
	// +kubebuilder:validation:MaxLength=8
	// +kubebuilder:validation:XValidation:rule="self.matches('^0?[.][0-9]+$') && double(self) > 0.0",message="must be a decimal between 0 and 1, e.g. \"0.9\""
	// +optional
	Quantile string `json:"quantile,omitempty"`

	// MarginPercent is added on top of the forecast peak (default 0).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	MarginPercent int32 `json:"marginPercent,omitempty"`

	// LeadTime is how long before a peak the room starts to be handed back
	// (default: measured from the workload's pods: their termination grace,
	// plus a round and the scheduler, plus the start-up of its recent pods).
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('6h')",message="must be a duration between 0s and 6h, e.g. \"90s\""
	// +optional
	LeadTime *metav1.Duration `json:"leadTime,omitempty"`
}

// HeadroomValue is a non-negative quantity ("30", "500m", "64Gi"), a
// percent of allocatable from 0% to 100% ("15%", "12.5%"), or "auto"
// (learned from the demand history).
//
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:XValidation:rule="self == 'auto' || isQuantity(self) || self.matches('^[0-9]+([.][0-9]+)?%$')",message="must be a quantity (\"30\", \"64Gi\"), a percent (\"15%\") or \"auto\" (learned from the demand history)"
// +kubebuilder:validation:XValidation:rule="!isQuantity(self) || !quantity(self).isLessThan(quantity('0'))",message="must not be negative"
// +kubebuilder:validation:XValidation:rule="!self.endsWith('%') || double(self.substring(0, size(self) - 1)) <= 100.0",message="a percent must be at most 100%"
type HeadroomValue string

// HeadroomSlot is room for Count paid pods of one shape, read from a paid
// workload (shapeFrom) or given as requests.
//
// +kubebuilder:validation:XValidation:rule="has(self.shapeFrom) != has(self.requests)",message="set exactly one of shapeFrom (read the shape of a paid workload's pods) or requests (give it)"
type HeadroomSlot struct {
	// Name labels the slot in status, reasons and metrics (default:
	// shapeFrom.name, else "slot-<index>").
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit"
	// +optional
	Name string `json:"name,omitempty"`

	// ShapeFrom reads the shape from a paid workload's pod template
	// (spec.template; a CronJob's spec.jobTemplate.spec.template): its
	// effective requests, node selector, required node affinity and
	// tolerations. The slot follows the template as it changes.
	// +optional
	ShapeFrom *SlotShapeSource `json:"shapeFrom,omitempty"`

	// Requests give the shape as one pod's requests ("cpu: 4", "memory:
	// 8Gi"), schedulable on any node of the pool. A slot is always one pod.
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, type(self[k]) == string ? !self[k].startsWith('-') : self[k] >= 0)",message="requests must not be negative"
	// +optional
	Requests corev1.ResourceList `json:"requests,omitempty"`

	// Count is how many pods of the shape must fit, node by node: a number
	// from 1 to 10000, or "auto": learned from the pool's history of paid
	// pods of the shape (the 0.99-quantile of how many more of them came
	// within one lead time; status.prediction.learnedHeadroom says the
	// number and where it came from, as resource "slots/<name>").
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == string ? self == 'auto' : (self >= 1 && self <= 10000)",message="must be a number of pods from 1 to 10000, or \"auto\" (learned from the pool's history of paid pods of the shape)"
	Count intstr.IntOrString `json:"count"`
}

// SlotShapeSource names a workload whose pod template gives a slot's shape:
// a Deployment, StatefulSet, ReplicaSet, Job, CronJob or any kind with a pod
// template at spec.template that opportunist may read.
type SlotShapeSource struct {
	// APIVersion of the workload, e.g. apps/v1.
	// +kubebuilder:validation:MinLength=1
	APIVersion string `json:"apiVersion"`
	// Kind of the workload, e.g. Deployment.
	// +kubebuilder:validation:MinLength=1
	Kind string `json:"kind"`
	// Name of the workload.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace of the workload (default: the scaler's).
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// Reclaim is usage-based reclaim of requested but idle room. Each node's
// reclaimable room is theta × allocatable − system usage − Σ reservations
// of paid pods − margin (at least 0); a paid pod's reservation starts at its
// request and decays towards a high percentile of its recent usage.
//
// +kubebuilder:validation:XValidation:rule="!has(self.margin) || self.margin.all(k, k in (has(self.resources) ? self.resources : ['cpu']))",message="margin may name only the reclaimed resources (spec.reclaim.resources, default [cpu])"
type Reclaim struct {
	// Enabled turns reclaim on.
	Enabled bool `json:"enabled"`

	// Resources to reclaim: cpu (the default) and, only when asked,
	// memory. Memory is not compressible: a paid pod that needs its idle
	// memory back can only get it by killing a reclaiming pod.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=2
	// +kubebuilder:validation:items:Enum=cpu;memory
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y == x))",message="resources must not repeat: list cpu and memory at most once each"
	// +listType=atomic
	// +optional
	Resources []corev1.ResourceName `json:"resources,omitempty"`

	// Theta is the share of a node's allocatable that paid reservations
	// and reclaimed pods may fill together, a decimal in (0, 1] (default
	// "0.75").
	// +kubebuilder:validation:MaxLength=8
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0?[.][0-9]+|1([.]0+)?)$') && double(self.startsWith('.') ? '0' + self : self) > 0.0",message="theta must be a decimal above 0 and at most 1, e.g. \"0.75\""
	// +optional
	Theta string `json:"theta,omitempty"`

	// Margin is kept free on each node, per reclaimed resource: a quantity
	// ("500m", "2Gi") or a percent of the node's allocatable ("5%")
	// (default: cpu 500m, memory 5%).
	// +kubebuilder:validation:MaxProperties=2
	// +optional
	Margin map[corev1.ResourceName]HeadroomValue `json:"margin,omitempty"`
}

// Behavior tunes scaling in each direction.
type Behavior struct {
	// ScaleUp defaults to a 30 s stabilisation window and no step limit.
	// +optional
	ScaleUp *ScalingRules `json:"scaleUp,omitempty"`
	// ScaleDown defaults to immediate and unlimited: room is given back at once.
	// +optional
	ScaleDown *ScalingRules `json:"scaleDown,omitempty"`
}

// ScalingRules stabilise and limit changes in one direction.
type ScalingRules struct {
	// StabilizationWindowSeconds: a change in this direction must have been
	// recommended for this long (the most conservative recommendation in the
	// window is used).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	// +optional
	StabilizationWindowSeconds *int32 `json:"stabilizationWindowSeconds,omitempty"`
	// MaxStep limits each change to this many replicas per PeriodSeconds (0: unlimited).
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxStep int32 `json:"maxStep,omitempty"`
	// PeriodSeconds is the period of MaxStep (default 15).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1800
	// +optional
	PeriodSeconds *int32 `json:"periodSeconds,omitempty"`
}

// OpportunisticScalerStatus reports the last decision.
type OpportunisticScalerStatus struct {
	// ObservedGeneration is the spec generation the status reflects.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// CurrentReplicas is the target's replica count as last read.
	// +optional
	CurrentReplicas int32 `json:"currentReplicas"`
	// DesiredReplicas is what the control law computed.
	// +optional
	DesiredReplicas int32 `json:"desiredReplicas"`
	// LimitedBy names the bound that set DesiredReplicas: Budget, Fit, Max,
	// Min, PendingPaid, Reclaim, Slots, Stabilized or StepLimit.
	// +optional
	LimitedBy string `json:"limitedBy,omitempty"`
	// BudgetReplicas is how many replicas the headroom allows in total.
	// +optional
	BudgetReplicas int64 `json:"budgetReplicas"`
	// FitReplicas is how many replicas fit node by node in total.
	// +optional
	FitReplicas int64 `json:"fitReplicas"`
	// PoolNodes counts the nodes of the pool: Ready, schedulable, matching
	// poolSelector, and eligible for one replica of the target.
	// +optional
	PoolNodes int32 `json:"poolNodes"`
	// StrandedReplicas counts the target's pods bound to nodes that are
	// NotReady, cordoned or gone: they are no room in the fit, and the
	// replica count keeps covering them until they are gone.
	// +optional
	StrandedReplicas int32 `json:"strandedReplicas"`
	// Slots says, per spec.headroomSlots entry, how many of its pods fit
	// on the pool once the decision is applied, and on which nodes.
	// +listType=atomic
	// +optional
	Slots []SlotStatus `json:"slots,omitempty"`
	// Reclaim says, for a scaler with spec.reclaim enabled, whether usage
	// is fresh and each pool node's reclaimable room with its formula.
	// +optional
	Reclaim *ReclaimStatus `json:"reclaim,omitempty"`
	// Reason explains the decision with its numbers.
	// +optional
	Reason string `json:"reason,omitempty"`
	// LastScaleTime is when the target was last scaled by this scaler.
	// +optional
	LastScaleTime *metav1.Time `json:"lastScaleTime,omitempty"`
	// Selector is the target's pod selector, as its /scale reports it.
	// +optional
	Selector string `json:"selector,omitempty"`
	// Prediction reports the forecast of paid demand (spec.prediction) and
	// the learned headroom.
	// +optional
	Prediction *PredictionStatus `json:"prediction,omitempty"`
	// Conditions: Ready (the scaler works), Scaling (the last round wrote).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PredictionStatus is what the forecast of paid demand says and does.
type PredictionStatus struct {
	// Mode is spec.prediction.mode as applied.
	Mode PredictionMode `json:"mode"`
	// Forecaster in use: SeasonalNaive, LowPassFFT, HoltWinters, or None
	// (reactive).
	// +optional
	Forecaster string `json:"forecaster,omitempty"`
	// BacktestError is the forecaster's error on the last period
	// (asymmetric: under-forecasts weigh 4x), e.g. "12.5%".
	// +optional
	BacktestError string `json:"backtestError,omitempty"`
	// Period found in the history (e.g. "24h0m0s").
	// +optional
	Period string `json:"period,omitempty"`
	// Reason says why the budget is reactive, or how the forecaster was
	// chosen, with the numbers.
	// +optional
	Reason string `json:"reason,omitempty"`
	// History is how much demand history is held (e.g. "336h0m0s").
	// +optional
	History string `json:"history,omitempty"`
	// LeadTime is how long before a peak the room starts to be handed back.
	// +optional
	LeadTime *metav1.Duration `json:"leadTime,omitempty"`
	// LeadTimeSource says where LeadTime came from (spec, or the
	// workload's grace, scheduling and start-up with their numbers).
	// +optional
	LeadTimeSource string `json:"leadTimeSource,omitempty"`
	// Peak is the highest forecast paid demand within the lead time (band
	// and margin included), PeakTime when it is.
	// +optional
	Peak corev1.ResourceList `json:"peak,omitempty"`
	// +optional
	PeakTime *metav1.Time `json:"peakTime,omitempty"`
	// Reserve is the room kept for the forecast peak on top of the
	// headroom: applied in Auto, what Auto would apply in Preview.
	// +optional
	Reserve corev1.ResourceList `json:"reserve,omitempty"`
	// LearnedHeadroom is each "auto" headroom's value and where it came
	// from, and each "auto" slot's count (resource "slots/<slot name>").
	// +listType=atomic
	// +optional
	LearnedHeadroom []LearnedHeadroom `json:"learnedHeadroom,omitempty"`
	// Outlook is the pool's paid CPU demand around now, observed then
	// forecast, for opportunist status -o wide.
	// +optional
	Outlook *PredictionOutlook `json:"outlook,omitempty"`
}

// PredictionOutlook is a pool's paid CPU demand (requests of bound and
// pending paid pods) in steps of Step, the highest of each step: observed
// from Start to now (since the last gap in the history, at most two
// hours), then forecast from now to the end of the plan the budget acts
// on. The forecast's upper band adds BandMilliCores.
type PredictionOutlook struct {
	Step  metav1.Duration `json:"step"`
	Start metav1.Time     `json:"start"`
	// +listType=atomic
	// +optional
	ObservedMilliCores []int64 `json:"observedMilliCores,omitempty"`
	// +listType=atomic
	// +optional
	ForecastMilliCores []int64 `json:"forecastMilliCores,omitempty"`
	// +optional
	BandMilliCores int64 `json:"bandMilliCores,omitempty"`
}

// LearnedHeadroom is one resource's headroom, or one slot's count,
// learned from the history.
type LearnedHeadroom struct {
	// Resource is the headroom's resource, or "slots/<slot name>" for a
	// slot's count (Quantity is then a number of pods).
	Resource corev1.ResourceName `json:"resource"`
	Quantity resource.Quantity   `json:"quantity"`
	// Source says how it was learned, with its numbers.
	Source string `json:"source"`
}

// SlotStatus is how many pods of one slot's shape fit.
type SlotStatus struct {
	// Name of the slot (spec.headroomSlots[].name or its default).
	Name string `json:"name"`
	// Wanted is the slot's count.
	Wanted int32 `json:"wanted"`
	// Fit is how many of them fit now (at most Wanted), counted together
	// with the other slots so that no room counts twice.
	Fit int32 `json:"fit"`
	// Nodes are where they fit, in the order they were counted: at most
	// 20 entries, the rest counted in MoreNodes.
	// +listType=atomic
	// +optional
	Nodes []NodeSlotStatus `json:"nodes,omitempty"`
	// MoreNodes counts the nodes holding slots that Nodes leaves out.
	// +optional
	MoreNodes int32 `json:"moreNodes,omitempty"`
}

// ReclaimStatus is the reclaim side of a decision.
type ReclaimStatus struct {
	// UsageFresh is false while usage from metrics.k8s.io is stale or
	// missing: nothing is reclaimed then.
	UsageFresh bool `json:"usageFresh"`
	// Message says why usage is not fresh.
	// +optional
	Message string `json:"message,omitempty"`
	// Nodes are the pool's nodes (at most MaxReclaimNodes, by name).
	// +listType=atomic
	// +optional
	Nodes []NodeReclaimStatus `json:"nodes,omitempty"`
	// MoreNodes counts the pool's nodes left out of Nodes.
	// +optional
	MoreNodes int32 `json:"moreNodes,omitempty"`
}

// NodeReclaimStatus is one node's room for reclaiming pods, in
// milli-cores.
type NodeReclaimStatus struct {
	Node string `json:"node"`
	// Reclaimable is the idle part of paid requests that may be
	// reclaimed: theta × allocatable − system − reserved − margin.
	Reclaimable int64 `json:"reclaimableMilliCores"`
	// Published is the node's opportunist.io/reclaimable-cpu: the larger
	// of Reclaimable and what requests leave free.
	Published int64 `json:"publishedMilliCores"`
	// Formula is the arithmetic behind both, with its numbers.
	// +optional
	Formula string `json:"formula,omitempty"`
}

// MaxReclaimNodes caps ReclaimStatus.Nodes, so a status stays small on a
// large pool.
const MaxReclaimNodes = 20

// MaxSlotNodes caps SlotStatus.Nodes, so a status stays small on a large pool.
const MaxSlotNodes = 20

// NodeSlotStatus is how many pods of a slot's shape fit on one node.
type NodeSlotStatus struct {
	Node  string `json:"node"`
	Slots int32  `json:"slots"`
}

// OpportunisticScalerList is a list of scalers.
//
// +kubebuilder:object:root=true
type OpportunisticScalerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OpportunisticScaler `json:"items"`
}
