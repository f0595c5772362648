package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// NodeStatus publishes an extended resource on a node's status: the only
// write reclaim needs beyond what the controller does without it (RBAC
// nodes/status patch).
type NodeStatus interface {
	// SetExtended sets capacity and allocatable of resource on node to
	// value (an integer count); an error leaves the node as it was.
	SetExtended(ctx context.Context, node string, resource corev1.ResourceName, value int64) error
}

// NodeStatusPatcher writes through the nodes/status subresource with a
// JSON merge patch of the one resource, so nothing else of the status (the
// kubelet's, kwok's) is touched or raced.
type NodeStatusPatcher struct {
	Kube kubernetes.Interface
}

// SetExtended implements NodeStatus. Capacity and allocatable both: a
// kubelet derives allocatable from capacity for resources it does not
// manage, but the scheduler reads allocatable, and only that must not wait.
func (p NodeStatusPatcher) SetExtended(ctx context.Context, node string, resource corev1.ResourceName, value int64) error {
	v := strconv.FormatInt(value, 10)
	patch, err := json.Marshal(map[string]any{"status": map[string]any{
		"capacity":    map[string]string{string(resource): v},
		"allocatable": map[string]string{string(resource): v},
	}})
	if err != nil {
		return err
	}
	if _, err := p.Kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "opportunist"}, "status"); err != nil {
		return fmt.Errorf("publishing %s=%s on node %s: %w", resource, v, node, err)
	}
	return nil
}
