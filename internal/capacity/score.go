package capacity

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// Scoring is the kube-scheduler's NodeResourcesFit scoring strategy: where,
// among the nodes a pod fits on, it prefers to put it. The simulator's
// scheduler and the control law's prediction of where a scaler's new
// replicas land both score with it, so the two cannot drift apart.
type Scoring string

const (
	// LeastAllocated is the scheduler's default: the node with the largest
	// share of CPU and memory left free. It spreads a workload's pods over
	// every node, and so scatters the free room.
	LeastAllocated Scoring = "LeastAllocated"
	// MostAllocated packs: the node with the smallest share left free.
	MostAllocated Scoring = "MostAllocated"
)

// ParseScoring reads a scoring strategy's name; "" is LeastAllocated.
func ParseScoring(s string) (Scoring, error) {
	switch Scoring(s) {
	case "", LeastAllocated:
		return LeastAllocated, nil
	case MostAllocated:
		return MostAllocated, nil
	}
	return "", fmt.Errorf("unknown scheduler scoring %q: use %s (the scheduler's default) or %s", s, LeastAllocated, MostAllocated)
}

// Score rates a node for a pod of req, 0-100, higher preferred: the mean,
// over CPU and memory (the default resources, weight 1 each), of the share
// of allocatable left free once the pod is placed (LeastAllocated) or taken
// (MostAllocated), in integer arithmetic as the scheduler does. It reads
// requests as they are; the scheduler scores a container without requests
// as 100m CPU and 200 MiB, which opportunist's shapes never are (a shape
// must request something to be counted).
func (s Scoring) Score(r *NodeRoom, req Resources) int64 {
	var sum, n int64
	for _, name := range [...]corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		alloc := r.Allocatable[name]
		if alloc <= 0 {
			continue
		}
		used := min(max(r.Requested[name]+req[name], 0), alloc)
		if s == MostAllocated {
			sum += used * 100 / alloc
		} else {
			sum += (alloc - used) * 100 / alloc
		}
		n++
	}
	if n == 0 {
		return 0
	}
	return sum / n
}
