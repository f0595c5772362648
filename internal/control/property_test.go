package control

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/opportunist/opportunist/internal/capacity"
)

var (
	zones     = []string{"a", "b", "c"}
	poolNames = []string{"spot", "reserved"}
	nodeTypes = []corev1.ResourceList{
		list("cpu", "16", "memory", "64Gi", "pods", "110"),
		list("cpu", "8", "memory", "32Gi", "pods", "110"),
		list("cpu", "4", "memory", "16Gi", "pods", "20", "nvidia.com/gpu", "2"),
	}
)

// randomWorld is a small random cluster and the scalers of its opportunistic
// workloads w0..wN.
type randomWorld struct {
	cluster Cluster
	scalers []Scaler
}

// worldOptions restrict the randomness, for properties that need it.
type worldOptions struct {
	// simple: one pool of every node, no headroom, no Min, no pending paid pods.
	simple bool
}

func randomWorldFor(rng *rand.Rand, o worldOptions) randomWorld {
	var nodes []*corev1.Node
	for i := range 1 + rng.IntN(10) {
		alloc := list("cpu", fmt.Sprint(rng.IntN(33)), "memory", fmt.Sprintf("%dGi", rng.IntN(65)), "pods", fmt.Sprint(5+rng.IntN(110)))
		if rng.IntN(4) == 0 {
			alloc["nvidia.com/gpu"] = list("g", fmt.Sprint(1+rng.IntN(4)))["g"]
		}
		if rng.IntN(2) == 0 { // a common instance type: nodes alike but for their names
			alloc = nodeTypes[rng.IntN(len(nodeTypes))].DeepCopy()
		}
		opts := []nodeOpt{labelled("zone", zones[rng.IntN(len(zones))])}
		if p := rng.IntN(len(poolNames) + 1); p < len(poolNames) { // pools overlap zones
			opts = append(opts, labelled("pool", poolNames[p]))
		}
		switch rng.IntN(8) {
		case 0:
			opts = append(opts, notReady())
		case 1:
			opts = append(opts, cordoned())
		case 2:
			opts = append(opts, tainted("dedicated", "x", corev1.TaintEffectNoSchedule))
		}
		nodes = append(nodes, kubeNode(fmt.Sprintf("n%02d", i), alloc, opts...))
	}
	names := nodeNames(nodes)
	nScalers := 1 + rng.IntN(4)
	apps := make([]string, nScalers)
	for i := range apps {
		apps[i] = fmt.Sprintf("w%d", i)
	}
	var ps []*corev1.Pod
	for i := range rng.IntN(40) {
		req := list("cpu", fmt.Sprintf("%dm", 100+rng.IntN(4000)), "memory", fmt.Sprintf("%dMi", rng.IntN(4096)))
		if rng.IntN(6) == 0 {
			req["nvidia.com/gpu"] = list("g", "1")["g"]
		}
		node, opts := names[rng.IntN(len(names))], []podOpt{priority(int32(rng.IntN(200) - 50))}
		switch {
		case rng.IntN(3) == 0:
			opts = append(opts, app(apps[rng.IntN(len(apps))])) // opportunistic, bound or not
			if rng.IntN(4) == 0 {
				node = ""
			}
		case !o.simple && rng.IntN(4) == 0:
			node = "" // pending paid
			if rng.IntN(3) == 0 {
				opts = append(opts, podSelector("zone", zones[rng.IntN(len(zones))]))
			}
		}
		ps = append(ps, kubePod(fmt.Sprintf("p%02d", i), node, req, opts...))
	}
	e := newEnv(nodes, ps, apps...)

	scalers := make([]Scaler, nScalers)
	for i, a := range apps {
		req := list("cpu", fmt.Sprintf("%dm", 100+rng.IntN(4000)), "memory", fmt.Sprintf("%dMi", 1+rng.IntN(2048)))
		if rng.IntN(5) == 0 {
			req["nvidia.com/gpu"] = list("g", "1")["g"]
		}
		lo := int32(rng.IntN(6))
		if o.simple {
			lo = 0
		}
		s := worker(a, req, bounds(lo, lo+int32(rng.IntN(60))), prio(int32(rng.IntN(3))), weight(int32(rng.IntN(4))),
			podPriority(int32(rng.IntN(100))), current(int32(rng.IntN(60))))
		if !o.simple {
			randomPolicy(rng, &s)
		}
		s.ScaleUp = Behavior{StabilizationWindow: time.Duration(rng.IntN(3)) * 30 * time.Second, MaxStep: int32(rng.IntN(3) * 5), Period: time.Duration(rng.IntN(2)) * time.Minute}
		if !o.simple && rng.IntN(5) == 0 {
			s.ScaleDown = Behavior{StabilizationWindow: time.Minute, MaxStep: int32(rng.IntN(2) * 5), Period: time.Minute}
		}
		for range rng.IntN(4) {
			s.History.Recommendations = append(s.History.Recommendations, Recommendation{Time: at(-100 + 20*len(s.History.Recommendations)), Replicas: int32(rng.IntN(80))})
		}
		if rng.IntN(3) == 0 {
			s.History.Scales = []Scale{{Time: at(-rng.IntN(90)), From: int32(rng.IntN(60)), To: int32(rng.IntN(60))}}
			s.History.LastTime, s.History.LastReplicas = at(-10), int32(rng.IntN(60))
		}
		scalers[i] = s
	}
	return randomWorld{cluster: e.cluster(), scalers: e.withBound(scalers...)}
}

// randomPolicy sets a random headroom, pool and placement constraints.
func randomPolicy(rng *rand.Rand, s *Scaler) {
	switch rng.IntN(4) {
	case 0:
		*s = withOpts(*s, cpuHeadroom(int64(rng.IntN(20))))
	case 1:
		*s = withOpts(*s, headroom(corev1.ResourceMemory, Headroom{Percent: float64(rng.IntN(40))}))
	case 2:
		s.TargetUtilizationPercent = float64(50 + rng.IntN(51))
	}
	switch rng.IntN(6) {
	case 0, 1:
		s.PoolSelector = labels.SelectorFromSet(labels.Set{"zone": zones[rng.IntN(len(zones))]})
	case 2, 3:
		s.PoolSelector = labels.SelectorFromSet(labels.Set{"pool": poolNames[rng.IntN(len(poolNames))]})
	}
	if rng.IntN(4) == 0 {
		s.Shape.NodeSelector = map[string]string{"zone": zones[rng.IntN(len(zones))]}
	}
	if rng.IntN(3) == 0 {
		*s = withOpts(*s, tolerates("dedicated"))
	}
}

func withOpts(s Scaler, opts ...scalerOpt) Scaler {
	for _, o := range opts {
		o(&s)
	}
	return s
}

// TestDecideProperties checks, over random clusters, what must always hold.
func TestDecideProperties(t *testing.T) {
	for seed := range uint64(2000) {
		rng := rand.New(rand.NewPCG(seed, 42))
		w := randomWorldFor(rng, worldOptions{})
		ds := Decide(t0, w.cluster, w.scalers)
		if len(ds) != len(w.scalers) {
			t.Fatalf("seed %d: %d decisions for %d scalers", seed, len(ds), len(w.scalers))
		}
		scalers := map[string]Scaler{}
		for _, s := range w.scalers {
			scalers[s.Key] = s
		}
		for i, d := range ds {
			s := scalers[d.Key]
			fail := func(format string, args ...any) {
				t.Helper()
				t.Errorf("seed %d, %s (min %d max %d current %d): %s\ndecision: %+v", seed, d.Key, s.Min, s.Max, s.Current, fmt.Sprintf(format, args...), d)
			}
			if i > 0 && ds[i-1].Key >= d.Key {
				fail("decisions not sorted by key")
			}
			if d.Desired < s.Min || d.Desired > s.Max {
				fail("desired %d outside [min, max]", d.Desired)
			}
			if want, _ := clampDesired(d.Budget, d.Fit, s.Min, s.Max); d.Recommended != want {
				fail("recommended %d, want clamp(min(budget, fit)) = %d", d.Recommended, want)
			}
			lo, hi := min(s.Current, d.Recommended), max(s.Current, d.Recommended)
			if d.Desired < lo || d.Desired > hi {
				fail("desired %d not between current and recommended", d.Desired)
			}
			if s.ScaleDown == (Behavior{}) {
				if d.Desired > max(s.Min, int32(min(d.Fit, int64(s.Max)))) {
					fail("desired %d above max(min, fit %d)", d.Desired, d.Fit)
				}
				if d.Recommended < s.Current && d.Desired != d.Recommended {
					fail("scale-down to %d delayed: desired %d", d.Recommended, d.Desired)
				}
			}
			if d.Reason == "" {
				fail("no reason")
			}
		}
	}
}

// TestSharingNeverOvercommits: scalers never plan more than the room there
// is on the nodes of their pools, whatever their priorities, weights, shapes
// and selectors.
func TestSharingNeverOvercommits(t *testing.T) {
	for seed := range uint64(2000) {
		rng := rand.New(rand.NewPCG(seed, 7))
		w := randomWorldFor(rng, worldOptions{simple: true})
		room := capacity.Resources{}
		for _, r := range w.cluster.Rooms {
			if inSomePool(&r, w.scalers) {
				room.Add(r.Allocatable)
				room.Sub(r.Requested)
				room.Add(r.OpportunisticRequested)
			}
		}
		planned := capacity.Resources{}
		ds := byKey(Decide(t0, w.cluster, w.scalers))
		for _, s := range w.scalers {
			for name, v := range s.Shape.Requests {
				planned[name] += int64(ds[s.Key].Recommended) * v
			}
		}
		for name, v := range planned {
			if v > max(room[name], 0) {
				t.Errorf("seed %d: %s planned %d, room %d\n%+v", seed, name, v, room[name], ds)
			}
		}
	}
}

// inSomePool: one of the scalers' replicas is eligible for the node.
func inSomePool(r *capacity.NodeRoom, scalers []Scaler) bool {
	for _, s := range scalers {
		if ok, _ := capacity.Eligible(r, s.Shape); ok {
			return true
		}
	}
	return false
}

func TestDecideIsDeterministic(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 3))
		w := randomWorldFor(rng, worldOptions{})
		want := Decide(t0, w.cluster, w.scalers)

		if again := Decide(t0, w.cluster, w.scalers); !reflect.DeepEqual(again, want) {
			t.Fatalf("seed %d: same input, different output:\n%+v\n%+v", seed, again, want)
		}
		shuffled := w
		shuffled.scalers = slices.Clone(w.scalers)
		shuffled.cluster.Rooms = slices.Clone(w.cluster.Rooms)
		shuffled.cluster.Pending = slices.Clone(w.cluster.Pending)
		rng.Shuffle(len(shuffled.scalers), func(i, j int) { shuffled.scalers[i], shuffled.scalers[j] = shuffled.scalers[j], shuffled.scalers[i] })
		rng.Shuffle(len(shuffled.cluster.Rooms), func(i, j int) {
			shuffled.cluster.Rooms[i], shuffled.cluster.Rooms[j] = shuffled.cluster.Rooms[j], shuffled.cluster.Rooms[i]
		})
		rng.Shuffle(len(shuffled.cluster.Pending), func(i, j int) {
			shuffled.cluster.Pending[i], shuffled.cluster.Pending[j] = shuffled.cluster.Pending[j], shuffled.cluster.Pending[i]
		})
		if got := Decide(t0, shuffled.cluster, shuffled.scalers); !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: shuffled input, different output:\n%+v\n%+v", seed, got, want)
		}
	}
}

// TestDecideDoesNotChangeItsInput: the rooms, pending pods and scalers are
// the caller's, shared with its cache.
func TestDecideDoesNotChangeItsInput(t *testing.T) {
	for seed := range uint64(100) {
		rng := rand.New(rand.NewPCG(seed, 5))
		w := randomWorldFor(rng, worldOptions{})
		before := fmt.Sprintf("%+v %+v", w.cluster, w.scalers)
		Decide(t0, w.cluster, w.scalers)
		if after := fmt.Sprintf("%+v %+v", w.cluster, w.scalers); after != before {
			t.Fatalf("seed %d: input changed:\n%s\n%s", seed, before, after)
		}
	}
}

// TestDecideIgnoresNodeNames: sharing and placement never depend on what the
// nodes are called or the order they come in, only on what they are. Two
// nodes alike in every respect but their names are interchangeable, so the
// name may break ties between them and nothing else.
func TestDecideIgnoresNodeNames(t *testing.T) {
	for seed := range uint64(2000) {
		rng := rand.New(rand.NewPCG(seed, 11))
		w := randomWorldFor(rng, worldOptions{})
		want := Decide(t0, w.cluster, w.scalers)

		cluster, names := renameNodes(rng, w.cluster)
		got, want := renamed(Decide(t0, cluster, w.scalers), nil), renamed(want, names)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("seed %d: renamed nodes, different decisions:\n%s", seed, diffDecisions(got, want))
		}
	}
}

// renameNodes gives the nodes new names in a new order (the hostname label
// follows the name, and so do the opportunistic pods listed by node),
// without touching the caller's cluster.
func renameNodes(rng *rand.Rand, c Cluster) (Cluster, map[string]string) {
	out, names := c, map[string]string{}
	out.Rooms = slices.Clone(c.Rooms)
	newNames := rng.Perm(len(out.Rooms))
	if c.Opportunistic != nil {
		out.Opportunistic = map[string][]capacity.BoundPod{}
	}
	for i := range out.Rooms {
		name := fmt.Sprintf("node-%03d", 999-newNames[i]) // reversed, so the name order changes too
		if pods, ok := c.Opportunistic[out.Rooms[i].Name]; ok {
			out.Opportunistic[name] = pods
		}
		names[out.Rooms[i].Name] = name
		ls := maps.Clone(out.Rooms[i].Labels)
		ls["kubernetes.io/hostname"] = name
		out.Rooms[i].Name, out.Rooms[i].Labels = name, ls
	}
	rng.Shuffle(len(out.Rooms), func(i, j int) { out.Rooms[i], out.Rooms[j] = out.Rooms[j], out.Rooms[i] })
	return out, names
}

// renamed returns the decisions as they read once the nodes are renamed:
// a yield's reason names its nodes. Which pods a yield takes may differ
// between interchangeable nodes, so only how many is kept.
func renamed(ds []Decision, names map[string]string) []Decision {
	out := slices.Clone(ds)
	for i := range out {
		out[i].Reason = nodeName.ReplaceAllStringFunc(out[i].Reason, func(n string) string {
			if v, ok := names[n]; ok {
				return v
			}
			return n
		})
		out[i].Yield = make([]string, len(out[i].Yield))
	}
	return out
}

var nodeName = regexp.MustCompile(`[a-z][a-z0-9-]*[0-9]`)

// diffDecisions lists the decisions that differ, one line each.
func diffDecisions(got, want []Decision) string {
	var b strings.Builder
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if !reflect.DeepEqual(g, w) {
			fmt.Fprintf(&b, "%s: desired %d/%d recommended %d/%d budget %d/%d fit %d/%d limit %s/%s\n   got  %s\n   want %s\n",
				w.Key, g.Desired, w.Desired, g.Recommended, w.Recommended, g.Budget, w.Budget, g.Fit, w.Fit, g.Limit, w.Limit, g.Reason, w.Reason)
		}
	}
	return b.String()
}
