package scalerspec

import (
	"errors"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/opportunist/opportunist/internal/capacity"
)

// Target problems: each becomes a status condition reason, and no write.
// The controller's target reader wraps them; the simulator wraps
// ErrTargetMissing for a slot's shapeFrom that names no paid workload.
var (
	ErrTargetMissing = errors.New("TargetNotFound")
	ErrNoScale       = errors.New("NoScaleSubresource")
	ErrNoTemplate    = errors.New("NoPodTemplate")
	ErrNoRequests    = errors.New("NoResourceRequests")
	// ErrTargetForbidden: opportunist may not read the target (or its
	// PriorityClass): a kind or name outside the granted RBAC.
	ErrTargetForbidden = errors.New("TargetForbidden")
	// ErrPriorityClassNotFound: the pod template names a PriorityClass that
	// does not exist, so its pods' priority is unknown (and they would be
	// refused at admission anyway).
	ErrPriorityClassNotFound = errors.New("PriorityClassNotFound")
	// ErrTargetUnavailable: reading the target failed for another reason
	// (a 5xx, a timeout, a refused connection); the next round tries again.
	ErrTargetUnavailable = errors.New("TargetUnavailable")
)

// Target is what a scaler needs of its scale target.
type Target struct {
	GroupResource schema.GroupResource
	// Scale is the target's /scale: replicas and pod selector.
	Scale *autoscalingv1.Scale
	// Shape is one replica's shape, from the target's pod template.
	Shape capacity.Shape
	// PodPriority is the priority its pods get from their PriorityClass.
	PodPriority int32
	// TerminationGrace is its pods' terminationGracePeriodSeconds (the
	// Kubernetes default, 30 s, when the template leaves it unset): how long
	// a yielded pod may still hold its room.
	TerminationGrace time.Duration
}
