package controller

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
)

// Defaults of the behaviour: grow after 30 s of agreement, shrink at once.
const (
	defaultScaleUpWindow = 30 * time.Second
	defaultPeriod        = 15 * time.Second
)

// toControl converts a scaler and its target into the control law's input.
// Its errors name the field that is wrong; the API server's validation makes
// them rare (they guard against objects stored before validation existed).
func toControl(s *v1alpha1.OpportunisticScaler, t *Target, bound int32, history control.History) (control.Scaler, error) {
	key := s.Namespace + "/" + s.Name
	out := control.Scaler{
		Key:         key,
		Shape:       t.Shape,
		Current:     t.Scale.Spec.Replicas,
		Bound:       bound,
		Max:         s.Spec.MaxReplicas,
		Priority:    s.Spec.Priority,
		Weight:      max(s.Spec.Weight, 1),
		PodPriority: t.PodPriority,
		Headroom:    map[corev1.ResourceName]control.Headroom{},
		ScaleUp:     behavior(s.Spec.Behavior.ScaleUp, defaultScaleUpWindow),
		ScaleDown:   behavior(s.Spec.Behavior.ScaleDown, 0),
		History:     history,
	}
	if s.Spec.MinReplicas != nil {
		out.Min = *s.Spec.MinReplicas
	}
	for name, v := range s.Spec.Headroom {
		h, err := parseHeadroom(name, string(v))
		if err != nil {
			return control.Scaler{}, fmt.Errorf("spec.headroom[%s]: %w", name, err)
		}
		out.Headroom[name] = h
	}
	if s.Spec.TargetUtilizationPercent != nil {
		out.TargetUtilizationPercent = float64(*s.Spec.TargetUtilizationPercent)
	}
	if s.Spec.PoolSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(s.Spec.PoolSelector)
		if err != nil {
			return control.Scaler{}, fmt.Errorf("spec.poolSelector: %w", err)
		}
		out.PoolSelector = sel
	} else {
		out.PoolSelector = labels.Everything()
	}
	return out, nil
}

// parseHeadroom reads "30", "500m", "64Gi" or "15%" into canonical units.
func parseHeadroom(name corev1.ResourceName, v string) (control.Headroom, error) {
	if pct, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(pct, 64)
		if err != nil || !(f >= 0 && f <= 100) { // written so that NaN fails too
			return control.Headroom{}, fmt.Errorf("%q is not a percent between 0%% and 100%%", v)
		}
		return control.Headroom{Percent: f}, nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return control.Headroom{}, fmt.Errorf("%q is neither a quantity nor a percent", v)
	}
	if q.Sign() < 0 {
		return control.Headroom{}, fmt.Errorf("%q is negative", v)
	}
	amount := capacity.FromResourceList(corev1.ResourceList{name: q})[name]
	return control.Headroom{Quantity: amount}, nil
}

func behavior(r *v1alpha1.ScalingRules, window time.Duration) control.Behavior {
	b := control.Behavior{StabilizationWindow: window, Period: defaultPeriod}
	if r == nil {
		return b
	}
	if r.StabilizationWindowSeconds != nil {
		b.StabilizationWindow = time.Duration(*r.StabilizationWindowSeconds) * time.Second
	}
	if r.PeriodSeconds != nil {
		b.Period = time.Duration(*r.PeriodSeconds) * time.Second
	}
	b.MaxStep = r.MaxStep
	return b
}
