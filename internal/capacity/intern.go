package capacity

import (
	"slices"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// Interner makes pods share what they have in common: the pods of one
// ReplicaSet have equal labels and requests, those of a namespace or a node
// the same string. Decoded from the API server, each pod holds its own
// copies (a label map and a requests map cost ~300 bytes each); interned,
// 150,000 pods hold a few thousand.
//
// The tables forget in generations, so that label sets and names that are
// gone (old ReplicaSets, deleted nodes) do not pile up: once the current
// generation holds limit entries it becomes the previous one, and an
// entry found there moves back; what neither holds is made anew. The
// shared maps are read only, as Pod's fields are. Safe for concurrent use.
type Interner struct {
	mu       sync.Mutex
	strings  generations[string]
	labels   generations[map[string]string]
	requests generations[Resources]
	buf      []byte // a key being built
}

// DefaultInternLimit bounds each table of an Interner's generation: more
// label sets than any cluster's ReplicaSets share, few enough (a few MB at
// worst) that pods with unique labels (StatefulSets' pod-name) cost little.
const DefaultInternLimit = 1 << 15

// NewInterner returns an interner whose generations hold up to limit
// entries per table (DefaultInternLimit when limit <= 0).
func NewInterner(limit int) *Interner {
	if limit <= 0 {
		limit = DefaultInternLimit
	}
	return &Interner{strings: newGenerations[string](limit), labels: newGenerations[map[string]string](limit),
		requests: newGenerations[Resources](limit)}
}

// generations is one table of an Interner.
type generations[V any] struct {
	cur, prev map[string]V
	limit     int
}

func newGenerations[V any](limit int) generations[V] {
	return generations[V]{cur: map[string]V{}, prev: map[string]V{}, limit: limit}
}

// get finds key in the current generation, else moves it from the
// previous one.
func (g *generations[V]) get(key []byte) (V, bool) {
	if v, ok := g.cur[string(key)]; ok { // string(key) in an index does not allocate
		return v, true
	}
	v, ok := g.prev[string(key)]
	if ok {
		g.put(string(key), v)
	}
	return v, ok
}

// put adds an entry, starting a new generation if the current one is full.
func (g *generations[V]) put(key string, v V) {
	if len(g.cur) >= g.limit {
		g.prev, g.cur = g.cur, make(map[string]V, g.limit/4)
	}
	g.cur[key] = v
}

// Pod returns p with its namespace, node name, labels and requests
// replaced by shared equal ones.
func (in *Interner) Pod(p Pod) Pod {
	in.mu.Lock()
	defer in.mu.Unlock()
	p.Namespace = in.str(p.Namespace)
	p.NodeName = in.str(p.NodeName)
	if len(p.Labels) > 0 {
		p.Labels = in.labelSet(p.Labels)
	}
	if len(p.Requests) > 0 {
		p.Requests = in.resources(p.Requests)
	}
	return p
}

func (in *Interner) str(s string) string {
	if s == "" {
		return s
	}
	in.buf = append(in.buf[:0], s...)
	if v, ok := in.strings.get(in.buf); ok {
		return v
	}
	in.strings.put(s, s)
	return s
}

// labelSet returns a shared map equal to m. The key lists the sorted
// pairs; a NUL cannot occur in a label key or value.
func (in *Interner) labelSet(m map[string]string) map[string]string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b := in.buf[:0]
	for _, k := range keys {
		b = append(append(append(append(b, k...), 0), m[k]...), 0)
	}
	in.buf = b
	if v, ok := in.labels.get(b); ok {
		return v
	}
	key := string(b) // before str reuses the buffer
	shared := make(map[string]string, len(m))
	for k, v := range m {
		shared[in.str(k)] = in.str(v)
	}
	in.labels.put(key, shared)
	return shared
}

// resources returns a shared Resources equal to r.
func (in *Interner) resources(r Resources) Resources {
	names := make([]corev1.ResourceName, 0, len(r))
	for name := range r {
		names = append(names, name)
	}
	slices.Sort(names)
	b := in.buf[:0]
	for _, name := range names {
		b = strconv.AppendInt(append(append(b, name...), 0), r[name], 10)
		b = append(b, 0)
	}
	in.buf = b
	if v, ok := in.requests.get(b); ok {
		return v
	}
	in.requests.put(string(b), r)
	return r
}
