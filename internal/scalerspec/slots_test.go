package scalerspec

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
)

func shapeFrom(name, namespace string) *v1alpha1.SlotShapeSource {
	return &v1alpha1.SlotShapeSource{APIVersion: "apps/v1", Kind: "Deployment", Name: name, Namespace: namespace}
}

func TestToControlSlots(t *testing.T) {
	target := &Target{Scale: &autoscalingv1.Scale{}, Shape: capacity.Shape{Requests: capacity.Resources{"cpu": 1000, "pods": 1}}}
	web := capacity.Shape{Requests: capacity.Resources{"cpu": 4000, "pods": 1}, NodeSelector: map[string]string{"tier": "web"}}
	// shapes knows batch/web and shop/web (with another shape), nothing else.
	var read []string
	shapes := func(namespace string, ref autoscalingv2.CrossVersionObjectReference) (capacity.Shape, error) {
		read = append(read, namespace+"/"+ref.Kind+"/"+ref.Name)
		switch namespace + "/" + ref.Name {
		case "batch/web":
			return web, nil
		case "shop/web":
			return capacity.Shape{Requests: capacity.Resources{"cpu": 2000, "pods": 1}}, nil
		}
		return capacity.Shape{}, fmt.Errorf("%s %s/%s not found: %w", ref.Kind, namespace, ref.Name, ErrTargetMissing)
	}
	tests := []struct {
		name  string
		slots []v1alpha1.HeadroomSlot
		want  []control.Slot
		read  []string
		err   string
		is    error
	}{
		{name: "none"},
		{name: "shapeFrom in the scaler's namespace, named after it",
			slots: []v1alpha1.HeadroomSlot{{ShapeFrom: shapeFrom("web", ""), Count: intstr.FromInt32(4)}},
			want:  []control.Slot{{Name: "web", Shape: web, Count: 4}}, read: []string{"batch/Deployment/web"}},
		{name: "shapeFrom in another namespace, named",
			slots: []v1alpha1.HeadroomSlot{{Name: "shop-web", ShapeFrom: shapeFrom("web", "shop"), Count: intstr.FromInt32(2)}},
			want:  []control.Slot{{Name: "shop-web", Shape: capacity.Shape{Requests: capacity.Resources{"cpu": 2000, "pods": 1}}, Count: 2}}, read: []string{"shop/Deployment/web"}},
		{name: "requests are one pod in canonical units",
			slots: []v1alpha1.HeadroomSlot{{ShapeFrom: shapeFrom("web", ""), Count: intstr.FromInt32(4)}, {Requests: corev1.ResourceList{"cpu": resource.MustParse("4"), "memory": resource.MustParse("8Gi"), "pods": resource.MustParse("3")}, Count: intstr.FromInt32(2)}},
			want: []control.Slot{{Name: "web", Shape: web, Count: 4},
				{Name: "slot-1", Shape: capacity.Shape{Requests: capacity.Resources{"cpu": 4000, "memory": 8 << 30, "pods": 1}}, Count: 2}},
			read: []string{"batch/Deployment/web"}},
		{name: "missing shapeFrom", slots: []v1alpha1.HeadroomSlot{{ShapeFrom: shapeFrom("gone", ""), Count: intstr.FromInt32(1)}},
			err: "spec.headroomSlots[0].shapeFrom: Deployment batch/gone not found: TargetNotFound", is: ErrTargetMissing, read: []string{"batch/Deployment/gone"}},
		{name: "one name twice",
			slots: []v1alpha1.HeadroomSlot{{Requests: corev1.ResourceList{"cpu": resource.MustParse("1")}, Count: intstr.FromInt32(1)}, {Name: "slot-0", Requests: corev1.ResourceList{"cpu": resource.MustParse("2")}, Count: intstr.FromInt32(1)}},
			err:   `spec.headroomSlots[1]: the name "slot-0" is taken by spec.headroomSlots[0]; give each slot its own name`},
		{name: "both shapeFrom and requests",
			slots: []v1alpha1.HeadroomSlot{{ShapeFrom: shapeFrom("web", ""), Requests: corev1.ResourceList{"cpu": resource.MustParse("1")}, Count: intstr.FromInt32(1)}},
			err:   "spec.headroomSlots[0]: set exactly one of shapeFrom or requests"},
		{name: "negative requests", slots: []v1alpha1.HeadroomSlot{{Requests: corev1.ResourceList{"cpu": resource.MustParse("-1")}, Count: intstr.FromInt32(1)}},
			err: "spec.headroomSlots[0].requests: cpu -1 is negative"},
		{name: "count auto is learned, 1 until then",
			slots: []v1alpha1.HeadroomSlot{{ShapeFrom: shapeFrom("web", ""), Count: intstr.FromString("auto")}},
			want:  []control.Slot{{Name: "web", Shape: web, Count: 1, Auto: true}}, read: []string{"batch/Deployment/web"}},
		{name: "count 0", slots: []v1alpha1.HeadroomSlot{{Requests: corev1.ResourceList{"cpu": resource.MustParse("1")}}},
			err: `spec.headroomSlots[0].count: 0 is not between 1 and 10000 (or "auto")`},
		{name: "count above the most", slots: []v1alpha1.HeadroomSlot{{Requests: corev1.ResourceList{"cpu": resource.MustParse("1")}, Count: intstr.FromInt32(10001)}},
			err: `spec.headroomSlots[0].count: 10001 is not between 1 and 10000 (or "auto")`},
		{name: "count a string but auto", slots: []v1alpha1.HeadroomSlot{{Requests: corev1.ResourceList{"cpu": resource.MustParse("1")}, Count: intstr.FromString("4")}},
			err: `spec.headroomSlots[0].count: "4" is neither a number of pods nor "auto"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read = nil
			s := &v1alpha1.OpportunisticScaler{ObjectMeta: metav1.ObjectMeta{Namespace: "batch", Name: "worker"},
				Spec: v1alpha1.OpportunisticScalerSpec{MaxReplicas: 10, HeadroomSlots: tt.slots}}
			got, err := ToControl(s, target, control.PodCounts{}, control.History{}, shapes)
			if !reflect.DeepEqual(read, tt.read) {
				t.Errorf("read shapes %v, want %v", read, tt.read)
			}
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("error %v does not wrap %v", err, tt.is)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Slots, tt.want) {
				t.Errorf("slots %+v, want %+v", got.Slots, tt.want)
			}
		})
	}
}
