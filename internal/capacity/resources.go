// Package capacity is the exact, pure model of what a cluster holds: node by node
// allocatable room, effective pod requests, what remains, and how many more
// replicas of a pod shape really fit. It does no I/O; callers feed it trimmed
// nodes and pods (see FromNode and FromPod) and read reports.
package capacity

import (
	"math"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Resources maps a resource name to an amount in its canonical integer unit:
// milli-cores for cpu, bytes for memory, storage and hugepages, a count for pods
// and extended resources (GPUs and the like).
type Resources map[corev1.ResourceName]int64

// FromResourceList converts a Kubernetes resource list into canonical units.
func FromResourceList(list corev1.ResourceList) Resources {
	out := make(Resources, len(list))
	for name, q := range list {
		scale := resource.Scale(0)
		if name == corev1.ResourceCPU {
			scale = resource.Milli
		}
		out[name] = canonical(q, scale)
	}
	return out
}

// MaxAmount bounds every canonical amount, so that sums over a whole
// cluster (150,000 pods or nodes) cannot overflow int64: 2^45, i.e. 35
// billion cores (in milli-cores) or 32 TiB of memory per object.
const MaxAmount = int64(1) << 45

// canonical returns q in units of 10^scale, clamped to ±MaxAmount: a
// Quantity holds values (like "8Ei" cpu) that wrap around in int64.
func canonical(q resource.Quantity, scale resource.Scale) int64 {
	approx := q.AsApproximateFloat64() * math.Pow10(-int(scale))
	switch {
	case approx > float64(MaxAmount):
		return MaxAmount
	case approx < -float64(MaxAmount):
		return -MaxAmount
	}
	return q.ScaledValue(scale) // exact within the bound
}

// InBytes reports whether a resource's canonical unit is the byte (memory,
// storage, hugepages); cpu is in milli-cores and everything else is a count.
func InBytes(name corev1.ResourceName) bool {
	return name == corev1.ResourceMemory || name == corev1.ResourceEphemeralStorage || name == corev1.ResourceStorage ||
		strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix)
}

// Add adds other into r, creating entries as needed.
func (r Resources) Add(other Resources) {
	for name, v := range other {
		r[name] += v
	}
}

// Sub subtracts other from r. Entries that reach zero are kept, so a resource
// that a node offers stays visible after its last consumer leaves.
func (r Resources) Sub(other Resources) {
	for name, v := range other {
		r[name] -= v
	}
}

// Clone returns an independent copy of r.
func (r Resources) Clone() Resources {
	out := make(Resources, len(r))
	for name, v := range r {
		out[name] = v
	}
	return out
}

// Names returns the resource names of r in report order.
func (r Resources) Names() []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(r))
	for name := range r {
		names = append(names, name)
	}
	SortNames(names)
	return names
}

// SortNames orders resource names as operators read them: cpu, memory, pods,
// ephemeral-storage, then every other (extended) resource alphabetically.
func SortNames(names []corev1.ResourceName) {
	sort.Slice(names, func(i, j int) bool {
		ri, rj := rank(names[i]), rank(names[j])
		if ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
}

// rank orders the common resources first, in commonNames' order.
func rank(name corev1.ResourceName) int {
	if i := commonIndex(name); i >= 0 {
		return i
	}
	return numCommon
}
