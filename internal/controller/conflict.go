package controller

import (
	"fmt"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/opportunist/opportunist/api/v1alpha1"
)

// conflictingAutoscaler names another autoscaler that writes the scaler's
// target too, as a Conflicting condition's reason and message ("" when
// none). A dry-run scaler writes nothing, so an HPA or KEDA reading its
// answer (docs/hpa.md §2, docs/keda.md) is the intended set-up, not a
// fight. A KEDA ScaledObject is seen through the HPA KEDA makes for it
// (owned by the ScaledObject, labelled managed-by keda-operator), which
// needs neither KEDA's CRDs nor a watch on them.
func conflictingAutoscaler(s *v1alpha1.OpportunisticScaler, hpas []autoscalingv2.HorizontalPodAutoscaler) (reason, message string) {
	if s.Spec.DryRun {
		return "", ""
	}
	ref := s.Spec.ScaleTargetRef
	for i := range hpas {
		h := &hpas[i]
		if h.Spec.ScaleTargetRef.Kind != ref.Kind || h.Spec.ScaleTargetRef.Name != ref.Name {
			continue
		}
		if so := scaledObjectOf(h); so != "" {
			return ReasonScaledObjectScalesTarget, fmt.Sprintf("KEDA ScaledObject %s (through HorizontalPodAutoscaler %s) also scales %s %s; the two will fight: set dryRun: true here and point the ScaledObject's trigger at this scaler (docs/keda.md)", so, h.Name, ref.Kind, ref.Name)
		}
		return ReasonHPAScalesTarget, fmt.Sprintf("HorizontalPodAutoscaler %s also scales %s %s; the two will fight: delete it, or set dryRun: true here and have it read opportunist_desired_replicas (docs/hpa.md)", h.Name, ref.Kind, ref.Name)
	}
	return "", ""
}

// scaledObjectOf returns the KEDA ScaledObject an HPA was made for, or "".
func scaledObjectOf(h *autoscalingv2.HorizontalPodAutoscaler) string {
	for _, o := range h.OwnerReferences {
		if o.Kind == "ScaledObject" && strings.HasPrefix(o.APIVersion, "keda.sh/") {
			return o.Name
		}
	}
	if h.Labels["app.kubernetes.io/managed-by"] == "keda-operator" {
		if so := h.Labels["app.kubernetes.io/part-of"]; so != "" {
			return so
		}
	}
	return ""
}
