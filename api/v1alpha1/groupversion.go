// Package v1alpha1 holds the OpportunisticScaler API.
// +kubebuilder:object:generate=true
// +groupName=opportunist.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of the OpportunisticScaler.
	GroupVersion = schema.GroupVersion{Group: "opportunist.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types with a scheme. It is apimachinery's
	// (controller-runtime's scheme.Builder does the same two calls), so the
	// types link no controller library: the simulator and the demo binary
	// use them.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this group-version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &OpportunisticScaler{}, &OpportunisticScalerList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
