package control

import (
	"cmp"
	"math/bits"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

// orderNodes sets the order in which the sharing grants each plan its nodes,
// and so the order in which placeNew puts its new replicas: p.eligible is
// rewritten in that order. plans must be in sharing order (priority, key).
//
// First fit in name order starves a scaler that can use fewer nodes: a
// scaler on every node takes the nodes of a smaller pool first and leaves
// its own nodes idle. So the order is:
//  1. nodes usable by fewer plans first: a plan takes the nodes no other
//     plan wants before the contended ones;
//  2. less free room first (on the reclaim copy, then on the actual one, in
//     the resources the plans request): small holes are filled before the
//     large ones that bigger shapes need;
//  3. the plans that can use the node, and those whose pool holds it (a
//     grant there is charged to them), so that two nodes are tied only if
//     every plan sees them alike;
//  4. the name, which then only orders nodes that are interchangeable: the
//     decisions never depend on what the nodes are called.
func (m *model) orderNodes(plans []*plan) {
	n, words := len(m.actual), (len(plans)+63)/64
	// Node i's plans, as bit sets: usableBy[i*words:(i+1)*words] the plans
	// that can use it, then inPoolOf[i*words:...] those whose pool holds it.
	usableBy, inPoolOf := make([]uint64, n*words), make([]uint64, n*words)
	contention := make([]int, n)
	for q, p := range plans {
		for _, i := range p.eligible {
			usableBy[i*words+q/64] |= 1 << (q % 64)
			contention[i]++
		}
		for _, i := range p.pool {
			inPoolOf[i*words+q/64] |= 1 << (q % 64)
		}
	}
	names := requestedNames(plans)
	free := make([]int64, n*2*len(names)) // node i's key: reclaim then actual free
	for i := range n {
		key := free[i*2*len(names) : (i+1)*2*len(names)]
		for k, name := range names {
			key[k] = m.reclaim[i].Free(name)
			key[len(names)+k] = m.actual[i].Free(name)
		}
	}
	order := make([]int, 0, n)
	for i := range n {
		if contention[i] > 0 { // a node no plan can use is never granted
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(contention[a], contention[b]); c != 0 {
			return c
		}
		w := 2 * len(names)
		if c := slices.Compare(free[a*w:(a+1)*w], free[b*w:(b+1)*w]); c != 0 {
			return c
		}
		if c := slices.Compare(usableBy[a*words:(a+1)*words], usableBy[b*words:(b+1)*words]); c != 0 {
			return c
		}
		if c := slices.Compare(inPoolOf[a*words:(a+1)*words], inPoolOf[b*words:(b+1)*words]); c != 0 {
			return c
		}
		return strings.Compare(m.actual[a].Name, m.actual[b].Name)
	})
	for _, p := range plans {
		p.eligible = p.eligible[:0]
	}
	for _, i := range order {
		for w, word := range usableBy[i*words : (i+1)*words] {
			for ; word != 0; word &= word - 1 {
				q := w*64 + bits.TrailingZeros64(word)
				plans[q].eligible = append(plans[q].eligible, i)
			}
		}
	}
}

// requestedNames is every resource some plan's shape requests, in report order.
func requestedNames(plans []*plan) []corev1.ResourceName {
	seen := capacity.Resources{}
	for _, p := range plans {
		for _, name := range p.names {
			seen[name] = 1
		}
	}
	return seen.Names()
}
