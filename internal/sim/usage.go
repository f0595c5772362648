package sim

import (
	"hash/fnv"
	"math"
	"reflect"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/reclaim"
	"github.com/opportunist/opportunist/internal/scalerspec"
)

// UsageModel is a paid workload's CPU usage as a fraction of its pods'
// requests: a baseline redrawn every Every within ±Noise, and bursts to
// BurstTo lasting BurstFor, BurstEvery apart on average, each pod on its own
// (drawn from the run's seed and the pod's name, so every strategy sees the
// same usage). The baseline is set so that the long-run mean is Average.
type UsageModel struct {
	Average, Noise       float64
	Every                time.Duration
	BurstEvery, BurstFor time.Duration
	BurstTo              float64
}

// usageFile is a paid workload's usage: section.
type usageFile struct {
	pos
	Average    float64  `yaml:"average"`
	Noise      float64  `yaml:"noise"`
	Every      duration `yaml:"every"`
	BurstEvery duration `yaml:"burstEvery"`
	BurstFor   duration `yaml:"burstFor"`
	BurstTo    *float64 `yaml:"burstTo"`
}

// defaultMetricsInterval is metrics-server's resolution as its manifests set it.
const defaultMetricsInterval = 15 * time.Second

func convertUsage(c *errs, f *usageFile) *UsageModel {
	if f == nil {
		return nil
	}
	u := &UsageModel{Average: f.Average, Noise: f.Noise, Every: f.Every.or(defaultMetricsInterval),
		BurstEvery: f.BurstEvery.Duration, BurstFor: f.BurstFor.Duration, BurstTo: 1}
	if f.BurstTo != nil {
		u.BurstTo = *f.BurstTo
	}
	if !(u.Average > 0 && u.Average <= 1) {
		c.field(f.pos, "average", "%v is not a fraction of the requests above 0 and at most 1 (0.35 is 35 %%)", f.Average)
	}
	if !(u.Noise >= 0 && u.Noise <= 1) {
		c.field(f.pos, "noise", "%v is not a fraction between 0 and 1", f.Noise)
	}
	if u.Every <= 0 {
		c.field(f.pos, "every", "must be positive")
	}
	if !(u.BurstTo >= 0 && u.BurstTo <= 1) {
		c.field(f.pos, "burstTo", "%v is not a fraction between 0 and 1: paid pods use at most their requests here", u.BurstTo)
	}
	if (u.BurstEvery > 0) != (u.BurstFor > 0) {
		c.field(f.pos, "burstEvery", "set both burstEvery and burstFor, or neither")
	} else if u.BurstFor > u.BurstEvery {
		c.field(f.pos, "burstFor", "%s is longer than burstEvery %s", u.BurstFor, u.BurstEvery)
	}
	if u.base() < 0 {
		c.field(f.pos, "average", "%v is below what the bursts alone use (%v): lower burstTo or burstFor, or raise average", u.Average, u.burstShare()*u.BurstTo)
	}
	return u
}

func (u *UsageModel) burstShare() float64 {
	if u.BurstEvery <= 0 {
		return 0
	}
	return u.BurstFor.Seconds() / u.BurstEvery.Seconds()
}

// base is the baseline outside bursts that makes the mean Average.
func (u *UsageModel) base() float64 {
	p := u.burstShare()
	if p >= 1 {
		return 0
	}
	return (u.Average - p*u.BurstTo) / (1 - p)
}

// fraction is the pod's usage over its request at t.
func (u *UsageModel) fraction(seed uint64, pod string, t time.Duration) float64 {
	h := fnv.New64a()
	h.Write([]byte(pod))
	key := h.Sum64() ^ seed
	if u.BurstFor > 0 {
		slot := uint64(t / u.BurstFor)
		if unit(key, 1, slot) < u.burstShare() {
			return u.BurstTo
		}
	}
	noise := (2*unit(key, 2, uint64(t/u.Every)) - 1) * u.Noise
	return min(max(u.base()+noise, 0), 1)
}

// unit is a uniform draw in [0, 1) from a key, a stream and an index.
func unit(key, stream, i uint64) float64 {
	x := key + stream*0x9e3779b97f4a7c15 + i*0xbf58476d1ce4e5b9
	x ^= x >> 30 // splitmix64's finaliser
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

// reclaimWorld is metrics-server and the controller's reclaim publisher in
// the simulator: every metrics interval it samples the paid pods' usage,
// reserves (reclaim.Reserve), publishes each node's room (reclaim.Room) as
// the extended resource the scheduler places reclaiming pods by, and
// shrinks reclaiming pods off nodes whose published room fell below what
// they request (yield on pressure).
type reclaimWorld struct {
	cfg      reclaim.RoomConfig
	reserve  reclaim.ReservationConfig
	interval time.Duration
	next     time.Duration
	seed     uint64
	samples  map[*pod][]reclaim.Usage
	// published is the last publication, by node name (control.Cluster.Reclaim).
	published map[string]reclaim.NodeRoom
	// rooms is each node's room over the hold window (reclaim.DefaultHold).
	rooms reclaim.RoomHistory
}

// initReclaim starts the publisher when a scaler reclaims: the nodes
// publish one room, so the scenario's reclaiming scalers share one setting
// (the scenario checks it).
func (w *world) initReclaim(seed uint64) {
	for i := range w.scalers {
		if cfg := w.scalers[i].Reclaim; cfg != nil {
			w.reclaim = &reclaimWorld{cfg: *cfg, reserve: reclaim.DefaultReservation, interval: w.sc.MetricsInterval, seed: seed,
				samples: map[*pod][]reclaim.Usage{}, rooms: reclaim.RoomHistory{Hold: reclaim.DefaultHold}}
			return
		}
	}
}

// reclaims says whether a set's pods request reclaimed room.
func (rs *replicaSet) reclaims() bool {
	return rs.pods.Shape.Requests[reclaim.ExtendedResourceCPU] > 0
}

// usageOf is a bound pod's CPU usage in milli-cores: a paid pod's by its
// model (its request without one), an opportunistic pod's all it may use
// (CPU-bound workers: its cpu request plus its reclaimed cpu).
func (w *world) usageOf(p *pod) int64 {
	if !p.rs.paid {
		return p.rs.cpu
	}
	req := p.rs.pods.Shape.Requests[corev1.ResourceCPU]
	u := w.sc.Paid[p.rs.index].Usage
	if u == nil {
		return req
	}
	return int64(math.Round(u.fraction(w.reclaim.seed, p.name, w.now) * float64(req)))
}

// publish samples, reserves and publishes; due every metrics interval.
func (w *world) publish() {
	r := w.reclaim
	if r == nil || w.now < r.next {
		return
	}
	r.next = w.now + r.interval
	at := epoch.Add(w.now)
	samples := make(map[*pod][]reclaim.Usage, len(r.samples))
	published := make(map[string]reclaim.NodeRoom, len(w.nodes))
	yielded := map[*replicaSet]int32{}
	for i, n := range w.nodes {
		in := reclaim.NodeInput{Node: n.name, Allocatable: n.spec.Allocatable, Reserved: capacity.Resources{},
			Requested: capacity.Resources{}, Fresh: n.spec.Ready}
		var claimed int64 // reclaimed cpu requested by reclaiming pods here
		for _, p := range n.pods {
			if p.gone {
				continue
			}
			if p.rs.reclaims() {
				if !p.terminating {
					claimed += p.rs.pods.Shape.Requests[reclaim.ExtendedResourceCPU]
				}
				continue
			}
			in.Requested.Add(p.rs.pods.Shape.Requests)
			if !p.rs.paid {
				continue
			}
			s := append(r.samples[p], reclaim.Usage{At: at, CPUMilli: w.usageOf(p)})
			for len(s) > 0 && at.Sub(s[0].At) > r.reserve.Window {
				s = s[1:]
			}
			samples[p] = s
			in.Reserved.Add(reclaim.Reserve(p.rs.pods.Shape.Requests, s, at, r.reserve))
			in.PaidPods++
		}
		in.Claimed = capacity.Resources{corev1.ResourceCPU: claimed}
		in.Held = r.rooms.Lowest(n.name, at)
		room := reclaim.Room(in, r.cfg)
		r.rooms.Record(n.name, at, room.Room)
		published[n.name] = room
		v := room.Publish[corev1.ResourceCPU]
		if n.spec.Allocatable[reclaim.ExtendedResourceCPU] != v {
			// A new map: the ledger subtracts the one it holds (and groups share theirs).
			alloc := n.spec.Allocatable.Clone()
			alloc[reclaim.ExtendedResourceCPU] = v
			n.spec.Allocatable, w.rooms[i].Allocatable = alloc, alloc
			w.ledger.UpsertNode(n.spec)
			w.roomChanged(i)
			w.version++
			w.reschedule = true
		}
		if claimed > v {
			w.yieldReclaimed(i, claimed-v, yielded)
		}
	}
	// One write per ReplicaSet, lowered by as many as yielded, as the
	// controller folds the yield into its round's decision.
	for _, rs := range w.opp {
		if n := yielded[rs]; n > 0 {
			w.scale(rs, rs.replicas-n)
		}
	}
	r.rooms.Prune(at)
	r.samples, r.published = samples, published
}

// yieldReclaimed shrinks reclaiming pods off node i until they request no
// more than its published room: the fewest pods that free excess, each
// marked with the yield's pod-deletion-cost and counted in yielded, by
// ReplicaSet, for the scale-down, as the controller yields on pressure.
func (w *world) yieldReclaimed(i int, excess int64, yielded map[*replicaSet]int32) {
	for _, p := range w.nodes[i].pods {
		if excess <= 0 {
			return
		}
		if p.gone || p.terminating || !p.rs.reclaims() {
			continue
		}
		excess -= p.rs.pods.Shape.Requests[reclaim.ExtendedResourceCPU]
		p.cost = yieldDeletionCost
		w.ledger.UpsertPod(w.ledgerPod(p))
		w.version++
		yielded[p.rs]++
		w.deletePod(p) // the ReplicaSet's choice, by the cost just set
	}
}

// contention accounts one step of each node: whether its total CPU usage
// exceeds its allocatable while reclaiming pods run there, and how much of
// what runs there is reclaimed (beyond what requests leave free).
func (w *world) contention() (nodes int, reclaimed int64) {
	for _, n := range w.nodes {
		if !n.spec.Ready {
			continue
		}
		var used, paidRequested, opp int64
		running := false
		for _, p := range n.pods {
			if p.gone {
				continue
			}
			if p.rs.paid {
				used += w.usageOf(p)
				paidRequested += p.rs.cpu
				continue
			}
			if !p.ready {
				continue
			}
			used += p.rs.cpu
			opp += p.rs.cpu
			running = running || p.rs.reclaims()
		}
		alloc := n.spec.Allocatable[corev1.ResourceCPU]
		if running && used > alloc {
			nodes++
		}
		reclaimed += max(opp-max(alloc-paidRequested, 0), 0)
	}
	return nodes, reclaimed
}

// reclaimFile is an opportunistic workload's reclaim: section, the
// OpportunisticScaler's spec.reclaim.
type reclaimFile struct {
	pos
	Enabled   bool              `yaml:"enabled"`
	Resources []string          `yaml:"resources"`
	Theta     string            `yaml:"theta"`
	Margin    map[string]string `yaml:"margin"`
}

// convertReclaim builds spec.reclaim; scalerspec.ReclaimConfig (the
// controller's conversion) checks it when the scenario's scalers are
// converted.
func convertReclaim(c *errs, f *reclaimFile) *v1alpha1.Reclaim {
	if f == nil {
		return nil
	}
	out := &v1alpha1.Reclaim{Enabled: f.Enabled, Theta: f.Theta}
	for _, r := range f.Resources {
		out.Resources = append(out.Resources, corev1.ResourceName(r))
	}
	for k, v := range f.Margin {
		if out.Margin == nil {
			out.Margin = map[corev1.ResourceName]v1alpha1.HeadroomValue{}
		}
		out.Margin[corev1.ResourceName(k)] = v1alpha1.HeadroomValue(v)
	}
	if f.Enabled {
		if _, err := scalerspec.ReclaimConfig(out); err != nil {
			c.field(f.pos, "", "%v", err)
		}
	}
	return out
}

// Reclaims says whether a workload of the scenario reclaims idle requests.
func (s *Scenario) Reclaims() bool {
	for i := range s.Opportunistic {
		if r := s.Opportunistic[i].Scaler.Spec.Reclaim; r != nil && r.Enabled {
			return true
		}
	}
	return false
}

// withoutReclaim is the scenario with reclaim off: each reclaiming
// workload's pods request their reclaimed cpu as plain cpu, as a
// requests-only opportunist's would. Its harvest is what requests alone
// allow (Result.RequestsOnlyCoreHours).
func (s *Scenario) withoutReclaim() *Scenario {
	out := *s
	out.Opportunistic = slices.Clone(s.Opportunistic)
	for i := range out.Opportunistic {
		o := &out.Opportunistic[i]
		ext := o.Shape.Requests[reclaim.ExtendedResourceCPU]
		if ext == 0 && o.Scaler.Spec.Reclaim == nil {
			continue
		}
		o.Shape.Requests = o.Shape.Requests.Clone()
		delete(o.Shape.Requests, reclaim.ExtendedResourceCPU)
		o.Shape.Requests[corev1.ResourceCPU] += ext
		o.Scaler = *o.Scaler.DeepCopy()
		o.Scaler.Spec.Reclaim = nil
	}
	return &out
}

// checkReclaim: nodes publish one reclaimable room, so the reclaiming
// workloads share one setting; a pod requesting the extended resource needs
// a scaler that publishes it.
func checkReclaim(c *errs, f *scenarioFile, s *Scenario) {
	if len(c.list) > 0 {
		return
	}
	var first *reclaim.RoomConfig
	for i := range s.Opportunistic {
		o := &s.Opportunistic[i]
		cfg, _ := scalerspec.ReclaimConfig(o.Scaler.Spec.Reclaim)
		switch {
		case cfg == nil && o.Shape.Requests[reclaim.ExtendedResourceCPU] > 0:
			c.field(f.Opportunistic[i].pos, "reclaim", "its pods request %s but reclaim is not enabled: add reclaim: {enabled: true}", reclaim.ExtendedResourceCPU)
		case cfg != nil && o.Shape.Requests[reclaim.ExtendedResourceCPU] <= 0:
			c.field(f.Opportunistic[i].pos, "requests", "reclaim is enabled but its pods do not request %s (in milli-cores, like \"1000\" for a core) beside a tiny cpu request", reclaim.ExtendedResourceCPU)
		case cfg != nil && first == nil:
			first = cfg
		case cfg != nil && !reflect.DeepEqual(cfg, first):
			c.field(f.Opportunistic[i].pos, "reclaim", "differs from another workload's: nodes publish one reclaimable room, so reclaiming workloads share one setting")
		}
	}
}
