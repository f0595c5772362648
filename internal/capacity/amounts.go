package capacity

import corev1 "k8s.io/api/core/v1"

// amounts is Resources in the form the Ledger sums pod after pod: the
// resources nearly every pod requests in an array, any other (extended
// resources, hugepages) in a map, so adding a pod's requests to a node's,
// its state's and its workload's sums costs no hashing. It converts to and
// from Resources exactly: an entry that a Resources would hold at zero (a
// resource once added, never removed) is remembered in has.
type amounts struct {
	common [numCommon]int64
	has    uint8     // bit i: common[i] is an entry
	other  Resources // nil until a resource outside commonNames is added
}

// amount is one entry of a Resources.
type amount struct {
	name  corev1.ResourceName
	value int64
}

// commonNames are the resources kept in amounts' array, by index.
var commonNames = [...]corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods, corev1.ResourceEphemeralStorage}

const numCommon = len(commonNames)

// commonIndex is name's index in commonNames, or -1.
func commonIndex(name corev1.ResourceName) int {
	switch name {
	case corev1.ResourceCPU:
		return 0
	case corev1.ResourceMemory:
		return 1
	case corev1.ResourcePods:
		return 2
	case corev1.ResourceEphemeralStorage:
		return 3
	}
	return -1
}

// amountsOf converts r.
func amountsOf(r Resources) amounts {
	var a amounts
	for name, v := range r {
		if i := commonIndex(name); i >= 0 {
			a.common[i], a.has = v, a.has|1<<i
			continue
		}
		if a.other == nil {
			a.other = Resources{}
		}
		a.other[name] = v
	}
	return a
}

// add adds b into a (sign 1) or subtracts it (sign -1), creating entries
// as Resources.Add and Resources.Sub do.
func (a *amounts) add(b *amounts, sign int64) {
	a.has |= b.has
	for i := range a.common {
		a.common[i] += sign * b.common[i]
	}
	if len(b.other) > 0 {
		if a.other == nil {
			a.other = Resources{}
		}
		for name, v := range b.other {
			a.other[name] += sign * v
		}
	}
}

// same reports whether a and b hold the same entries.
func (a *amounts) same(b *amounts) bool {
	if a.has != b.has || a.common != b.common || len(a.other) != len(b.other) {
		return false
	}
	for name, v := range a.other {
		if w, ok := b.other[name]; !ok || w != v {
			return false
		}
	}
	return true
}

// get is the amount of one resource (0 without an entry).
func (a *amounts) get(name corev1.ResourceName) int64 {
	if i := commonIndex(name); i >= 0 {
		return a.common[i]
	}
	return a.other[name]
}

// each calls f for every entry.
func (a *amounts) each(f func(name corev1.ResourceName, v int64)) {
	for i, name := range commonNames {
		if a.has&(1<<i) != 0 {
			f(name, a.common[i])
		}
	}
	for name, v := range a.other {
		f(name, v)
	}
}

// resources returns a as a new Resources; with nonZero, without the
// entries at zero.
func (a *amounts) resources(nonZero bool) Resources {
	out := make(Resources, numCommon+len(a.other))
	a.each(func(name corev1.ResourceName, v int64) {
		if v != 0 || !nonZero {
			out[name] = v
		}
	})
	return out
}
