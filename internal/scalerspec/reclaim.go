package scalerspec

import (
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/reclaim"
)

// ReclaimConfig converts spec.reclaim into the reclaim package's settings,
// with its defaults (resources [cpu], theta reclaim.DefaultTheta, margins
// reclaim.DefaultMargin). It returns nil when reclaim is off. Its errors
// name the field; the CRD's validation makes them rare.
func ReclaimConfig(r *v1alpha1.Reclaim) (*reclaim.RoomConfig, error) {
	if r == nil || !r.Enabled {
		return nil, nil
	}
	cfg := reclaim.RoomConfig{Theta: reclaim.DefaultTheta, Margin: map[corev1.ResourceName]reclaim.Margin{}}
	cfg.Resources = slices.Clone(r.Resources)
	if len(cfg.Resources) == 0 {
		cfg.Resources = []corev1.ResourceName{corev1.ResourceCPU}
	}
	for i, name := range cfg.Resources {
		if _, ok := reclaim.Extended(name); !ok {
			return nil, fmt.Errorf("spec.reclaim.resources[%d]: %q cannot be reclaimed: list cpu and, if you must, memory", i, name)
		}
		if slices.Index(cfg.Resources, name) != i {
			return nil, fmt.Errorf("spec.reclaim.resources[%d]: %s is listed twice", i, name)
		}
		cfg.Margin[name] = reclaim.DefaultMargin(name)
	}
	if r.Theta != "" {
		theta, err := strconv.ParseFloat(r.Theta, 64)
		if err != nil || !(theta > 0 && theta <= 1) {
			return nil, fmt.Errorf("spec.reclaim.theta: %q is not a decimal above 0 and at most 1 (e.g. \"0.65\")", r.Theta)
		}
		cfg.Theta = theta
	}
	for name, v := range r.Margin {
		if !slices.Contains(cfg.Resources, name) {
			return nil, fmt.Errorf("spec.reclaim.margin[%s]: %s is not reclaimed (spec.reclaim.resources)", name, name)
		}
		h, err := parseHeadroom(name, string(v))
		if err != nil {
			return nil, fmt.Errorf("spec.reclaim.margin[%s]: %w", name, err)
		}
		cfg.Margin[name] = reclaim.Margin{Quantity: h.Quantity, Percent: h.Percent}
	}
	return &cfg, nil
}
