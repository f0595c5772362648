package v1alpha1

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	// ("30" cores, "64Gi") or a percent of the pool's allocatable ("15%").
	// Resources not listed fall back to TargetUtilizationPercent, else to no
	// headroom (fill to allocatable).
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	Headroom map[corev1.ResourceName]HeadroomValue `json:"headroom,omitempty"`

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

	// Paused stops all writes to the target; status still reports.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// DryRun computes and reports the desired count without writing it.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
}

// HeadroomValue is a non-negative quantity ("30", "500m", "64Gi") or a
// percent of allocatable from 0% to 100% ("15%", "12.5%").
//
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:XValidation:rule="isQuantity(self) || self.matches('^[0-9]+([.][0-9]+)?%$')",message="must be a quantity (\"30\", \"64Gi\") or a percent (\"15%\")"
// +kubebuilder:validation:XValidation:rule="!isQuantity(self) || !quantity(self).isLessThan(quantity('0'))",message="must not be negative"
// +kubebuilder:validation:XValidation:rule="!self.endsWith('%') || double(self.substring(0, size(self) - 1)) <= 100.0",message="a percent must be at most 100%"
type HeadroomValue string

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
	// Min, PendingPaid, Stabilized or StepLimit.
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
	// Reason explains the decision with its numbers.
	// +optional
	Reason string `json:"reason,omitempty"`
	// LastScaleTime is when the target was last scaled by this scaler.
	// +optional
	LastScaleTime *metav1.Time `json:"lastScaleTime,omitempty"`
	// Selector is the target's pod selector, as its /scale reports it.
	// +optional
	Selector string `json:"selector,omitempty"`
	// Conditions: Ready (the scaler works), Scaling (the last round wrote).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// OpportunisticScalerList is a list of scalers.
//
// +kubebuilder:object:root=true
type OpportunisticScalerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OpportunisticScaler `json:"items"`
}

func init() {
	SchemeBuilder.Register(&OpportunisticScaler{}, &OpportunisticScalerList{})
}
