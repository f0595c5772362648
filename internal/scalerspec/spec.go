// Package scalerspec converts an OpportunisticScaler and its scale target
// into the control law's input (control.Scaler): the one conversion, with its
// defaults and its headroom arithmetic, that the controller, the simulator and
// the demo share. It does no I/O and links no Kubernetes client, so the
// simulator and the demo binary (make demo) build without the controller's
// libraries.
package scalerspec

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
)

// Defaults of the behaviour: grow after 30 s of agreement, shrink at once.
const (
	defaultScaleUpWindow = 30 * time.Second
	defaultPeriod        = 15 * time.Second
)

// SlotShapes reads the shape of the pods a slot's shapeFrom names, in
// namespace. A workload that does not exist is an error wrapping
// ErrTargetMissing (the controller's Targets contract).
type SlotShapes func(namespace string, ref autoscalingv2.CrossVersionObjectReference) (capacity.Shape, error)

// ToControl converts a scaler and its target into the control law's input:
// the one conversion of an OpportunisticScaler, with its defaults and its
// headroom, that the controller, the simulator and the demo all use. pods
// counts the target's pods (control.PodCountsOf); shapes reads the shapes
// its headroomSlots take from paid workloads. Its errors name the field
// that is wrong; the API server's validation makes them rare (they guard
// against objects stored before validation existed), except a shapeFrom
// that cannot be read: that error wraps shapes' error, so errors.Is finds
// its Err* reason.
func ToControl(s *v1alpha1.OpportunisticScaler, t *Target, pods control.PodCounts, history control.History, shapes SlotShapes) (control.Scaler, error) {
	key := s.Namespace + "/" + s.Name
	var err error
	out := control.Scaler{
		Key:         key,
		Shape:       t.Shape,
		Current:     t.Scale.Spec.Replicas,
		Bound:       pods.Bound,
		Stranded:    pods.Stranded,
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
	if out.Reclaim, err = ReclaimConfig(s.Spec.Reclaim); err != nil {
		return control.Scaler{}, err
	}
	slots, err := headroomSlots(s, shapes)
	if err != nil {
		return control.Scaler{}, err
	}
	out.Slots = slots
	return out, nil
}

// SlotName is the name of spec.headroomSlots[index]: its name, else its
// shapeFrom's name, else "slot-<index>".
func SlotName(index int, slot *v1alpha1.HeadroomSlot) string {
	switch {
	case slot.Name != "":
		return slot.Name
	case slot.ShapeFrom != nil:
		return slot.ShapeFrom.Name
	}
	return fmt.Sprintf("slot-%d", index)
}

// headroomSlots converts spec.headroomSlots, reading each shapeFrom with shapes.
func headroomSlots(s *v1alpha1.OpportunisticScaler, shapes SlotShapes) ([]control.Slot, error) {
	var out []control.Slot
	named := map[string]int{}
	for i := range s.Spec.HeadroomSlots {
		hs := &s.Spec.HeadroomSlots[i]
		field := fmt.Sprintf("spec.headroomSlots[%d]", i)
		name := SlotName(i, hs)
		if j, taken := named[name]; taken {
			return nil, fmt.Errorf("%s: the name %q is taken by spec.headroomSlots[%d]; give each slot its own name", field, name, j)
		}
		named[name] = i
		count, auto, err := SlotCount(hs.Count)
		if err != nil {
			return nil, fmt.Errorf("%s.count: %w", field, err)
		}
		var shape capacity.Shape
		switch {
		case (hs.ShapeFrom != nil) == (len(hs.Requests) > 0):
			return nil, fmt.Errorf("%s: set exactly one of shapeFrom or requests", field)
		case hs.ShapeFrom != nil:
			ns := hs.ShapeFrom.Namespace
			if ns == "" {
				ns = s.Namespace
			}
			if shapes == nil {
				return nil, fmt.Errorf("%s.shapeFrom: no workload can be read here", field)
			}
			ref := autoscalingv2.CrossVersionObjectReference{APIVersion: hs.ShapeFrom.APIVersion, Kind: hs.ShapeFrom.Kind, Name: hs.ShapeFrom.Name}
			var err error
			if shape, err = shapes(ns, ref); err != nil {
				return nil, fmt.Errorf("%s.shapeFrom: %w", field, err)
			}
		default:
			var err error
			if shape, err = requestsShape(hs.Requests); err != nil {
				return nil, fmt.Errorf("%s.requests: %w", field, err)
			}
		}
		out = append(out, control.Slot{Name: name, Shape: shape, Count: count, Auto: auto})
	}
	return out, nil
}

// MaxSlotCount is the most pods one slot may keep room for.
const MaxSlotCount = 10000

// SlotCount reads spec.headroomSlots[].count: a number from 1 to
// MaxSlotCount, or "auto" (auto true, count 1: the least a learned count
// is, until the controller learns it).
func SlotCount(v intstr.IntOrString) (count int32, auto bool, err error) {
	if v.Type == intstr.String {
		if v.StrVal == "auto" {
			return 1, true, nil
		}
		return 0, false, fmt.Errorf("%q is neither a number of pods nor \"auto\"", v.StrVal)
	}
	if v.IntVal < 1 || v.IntVal > MaxSlotCount {
		return 0, false, fmt.Errorf("%d is not between 1 and %d (or \"auto\")", v.IntVal, MaxSlotCount)
	}
	return v.IntVal, false, nil
}

// requestsShape is the shape of one pod requesting list, on any node: its
// requests in canonical units and, as capacity.EffectiveRequests counts
// every pod, one pod slot.
func requestsShape(list corev1.ResourceList) (capacity.Shape, error) {
	for name, q := range list {
		if q.Sign() < 0 {
			return capacity.Shape{}, fmt.Errorf("%s %s is negative", name, q.String())
		}
	}
	r := capacity.FromResourceList(list)
	r[corev1.ResourcePods] = 1 // a slot is one pod, whatever requests says of pods
	return capacity.Shape{Requests: r}, nil
}

// parseHeadroom reads "30", "500m", "64Gi", "15%" or "auto" into canonical units.
func parseHeadroom(name corev1.ResourceName, v string) (control.Headroom, error) {
	if v == "auto" {
		return control.Headroom{Auto: true}, nil // learned by the controller (internal/predict)
	}
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
