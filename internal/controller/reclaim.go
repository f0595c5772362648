package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/reclaim"
)

// The live half of usage-based reclaim (docs/reclaim.md). Each round, for
// the nodes in the pool of a scaler with spec.reclaim enabled, it
//  1. reserves room for each paid pod from its recent usage (reclaim.Reserve
//     over the UsageHistory's samples) and computes the node's room
//     (reclaim.Room);
//  2. publishes it as the node's extended resource
//     opportunist.io/reclaimable-cpu (nodes/status; only when it changed), so
//     the scheduler places reclaiming pods, which request it, by it;
//  3. yields on pressure: where the reclaiming pods bound to a node request
//     more of it than the new room, it marks the fewest of them to go first
//     and lowers their scaler's count at once, without waiting for the
//     published value to come back through the watch.
// Stale or missing usage reclaims nothing: the room falls to what requests
// alone allow, and the scalers say so in a condition.

// ConditionReclaim is the condition of a scaler with reclaim enabled: True
// while usage is fresh, False (UsageStale) while nothing is reclaimed.
const (
	ConditionReclaim = "Reclaim"
	ReasonUsageFresh = "UsageFresh"
	ReasonUsageStale = "UsageStale"
	// ReasonReclaimNotRunning: spec.reclaim is enabled but the controller
	// runs without --reclaim (the chart's reclaim.enabled).
	ReasonReclaimNotRunning = "ReclaimNotRunning"
)

// UsageSource is what a round reads of the usage history.
type UsageSource interface {
	Snapshot(now time.Time) UsageSnapshot
}

// PaidPods lists the paid pods bound to each node (the capacity cache).
type PaidPods interface {
	Paid() map[string][]capacity.BoundPod
}

// Reclaimer holds reclaim's dependencies; a nil *Reclaimer on the
// Reconciler turns reclaim off (scalers asking for it then say so).
type Reclaimer struct {
	Usage       UsageSource
	Paid        PaidPods
	Nodes       NodeStatus
	Reservation reclaim.ReservationConfig
	// Rooms keeps each node's room over the hold window (Rooms.Hold,
	// reclaim.DefaultHold): reclaiming pods grow onto room once it has
	// lasted. A zero value holds nothing.
	Rooms   reclaim.RoomHistory
	Metrics *ReclaimMetrics
	Log     *slog.Logger
	// Evict moves pods off a node under pressure when the count cannot go
	// lower; nil: only the count is lowered.
	Evict Evictor
}

// reclaimRound is what one round found for the reclaiming scalers.
type reclaimRound struct {
	// rooms of the nodes in some reclaiming scaler's pool, by node.
	rooms map[string]reclaim.NodeRoom
	// pools lists each reclaiming scaler's nodes, sorted.
	pools map[string][]string
	// stale, when set, is why nothing is reclaimed.
	stale error
	// opportunistic and scalers are the round's, for the pressure yield.
	opportunistic map[string][]capacity.BoundPod
	scalers       []reclaimInput
	// victims are each scaler's pods on nodes under pressure; evict those
	// of them the decision's count does not remove (set after the law).
	victims, evict map[string][]string
}

// reclaimInput is one reclaiming scaler as the round sees it.
type reclaimInput struct {
	key    string
	config reclaim.RoomConfig
	in     *control.Scaler
}

// poolNodes are the Ready nodes of a scaler's pool as control.Decide counts
// them: matching its pool selector and eligible for one replica.
func poolNodes(rooms []capacity.NodeRoom, s *control.Scaler) []string {
	sel := s.PoolSelector
	if sel != nil && sel.Empty() {
		sel = nil
	}
	eligibility := capacity.EligibilityOf(s.Shape)
	var out []string
	for i := range rooms {
		r := &rooms[i]
		if r.State != capacity.NodeReady {
			continue
		}
		if sel != nil && !sel.Matches(labels.Set(r.Labels)) {
			continue
		}
		if ok, _ := eligibility.Node(r); ok {
			out = append(out, r.Name)
		}
	}
	sort.Strings(out)
	return out
}

// computeRooms is the pure part of a round: each pool node's room from the
// cluster's rooms, the pods bound to it, the usage snapshot and the rooms
// of the hold window (read only; nil: no hold). A node in
// several reclaiming pools takes the most careful settings (lowest theta,
// largest margin) of their scalers, in key order.
func computeRooms(now time.Time, rooms []capacity.NodeRoom, paid, opportunistic map[string][]capacity.BoundPod,
	usage UsageSnapshot, reservation reclaim.ReservationConfig, held *reclaim.RoomHistory, scalers []reclaimInput) reclaimRound {
	out := reclaimRound{rooms: map[string]reclaim.NodeRoom{}, pools: map[string][]string{}, stale: usage.Stale}
	configs := map[string]reclaim.RoomConfig{}
	for _, s := range scalers {
		nodes := poolNodes(rooms, s.in)
		out.pools[s.key] = nodes
		for _, n := range nodes {
			c, seen := configs[n]
			if !seen {
				configs[n] = s.config
				continue
			}
			configs[n] = carefulOf(c, s.config)
		}
	}
	for i := range rooms {
		r := &rooms[i]
		cfg, ok := configs[r.Name]
		if !ok {
			continue
		}
		in := reclaim.NodeInput{Node: r.Name, Allocatable: capacity.Resources{}, System: capacity.Resources{},
			Reserved: capacity.Resources{}, Requested: capacity.Resources{}, Claimed: capacity.Resources{},
			Held: held.Lowest(r.Name, now)}
		for name, v := range r.Allocatable {
			in.Allocatable[name] = v
		}
		podUsage := capacity.Resources{}
		for _, p := range paid[r.Name] {
			samples := usage.Pods[p.Key]
			in.Reserved.Add(reclaim.Reserve(p.Requests, samples, now, reservation))
			in.Requested.Add(p.Requests)
			in.PaidPods++
			addLast(podUsage, samples, p.Requests)
		}
		for _, p := range opportunistic[r.Name] {
			reclaiming := p.Requests[reclaim.ExtendedResourceCPU] > 0 || p.Requests[reclaim.ExtendedResourceMemory] > 0
			held := p.Requests
			if reclaiming {
				held = capacity.Resources{corev1.ResourceCPU: p.Requests[reclaim.ExtendedResourceCPU],
					corev1.ResourceMemory: max(p.Requests[reclaim.ExtendedResourceMemory], p.Requests[corev1.ResourceMemory])}
			}
			addLast(podUsage, usage.Pods[p.Key], held)
			if reclaiming {
				if !p.Terminating { // reclaiming: what is published is for them
					in.Claimed[corev1.ResourceCPU] += p.Requests[reclaim.ExtendedResourceCPU]
					in.Claimed[corev1.ResourceMemory] += p.Requests[reclaim.ExtendedResourceMemory]
				}
				continue
			}
			// A requests-based opportunistic pod holds its request: it is
			// reserved at it, as it is requested.
			in.Reserved.Add(p.Requests)
			in.Requested.Add(p.Requests)
		}
		node, measured := usage.Nodes[r.Name]
		in.Fresh = usage.Stale == nil && measured
		if measured {
			in.System[corev1.ResourceCPU] = max(node.CPUMilli-podUsage[corev1.ResourceCPU], 0)
			in.System[corev1.ResourceMemory] = max(node.MemoryBytes-podUsage[corev1.ResourceMemory], 0)
		}
		out.rooms[r.Name] = reclaim.Room(in, cfg)
	}
	return out
}

// addLast adds a pod's newest sample to sum; a pod without one yet (its
// first metrics-server scrapes are still to come, while the node's usage
// already counts it) adds what it holds, so that its usage is not taken for
// the system's: a new paid pod is already reserved at its request, and
// counting its usage again as system shrank the room twice until its own
// samples arrived (then the room grew back: a yield and a regrowth for
// nothing). Where the node also has system usage, this takes up to the part
// of the pod's request it does not use yet for its own, so the room can come
// out larger than with the true split by at most that, for the one or two
// scrapes until its samples arrive: theta's buffer is there for such gaps.
func addLast(sum capacity.Resources, samples []reclaim.Usage, held capacity.Resources) {
	if len(samples) == 0 {
		sum[corev1.ResourceCPU] += held[corev1.ResourceCPU]
		sum[corev1.ResourceMemory] += held[corev1.ResourceMemory]
		return
	}
	last := samples[len(samples)-1]
	sum[corev1.ResourceCPU] += last.CPUMilli
	sum[corev1.ResourceMemory] += last.MemoryBytes
}

// carefulOf merges two scalers' settings for a node they share.
func carefulOf(a, b reclaim.RoomConfig) reclaim.RoomConfig {
	out := a
	out.Theta = min(a.Theta, b.Theta)
	out.Margin = map[corev1.ResourceName]reclaim.Margin{}
	for name, m := range a.Margin {
		out.Margin[name] = m
	}
	for name, m := range b.Margin {
		if o, ok := out.Margin[name]; !ok || m.Quantity+int64(m.Percent) > o.Quantity+int64(o.Percent) {
			out.Margin[name] = m
		}
	}
	seen := map[corev1.ResourceName]bool{}
	out.Resources = nil
	for _, name := range append(append([]corev1.ResourceName(nil), a.Resources...), b.Resources...) {
		if !seen[name] {
			seen[name] = true
			out.Resources = append(out.Resources, name)
		}
	}
	return out
}

// pressure is the pure yield on pressure for one scaler: on each of its
// nodes whose reclaiming pods (those requesting an extended resource)
// request more of it than the node's new room publishes, the fewest of the
// scaler's pods there whose removal brings the sum back under it (largest
// request first, then the lowest deletion cost, then by key). Pods already
// terminating free their request and are never chosen. It returns the
// victims, sorted, and one phrase per node for the reason.
func pressure(key string, nodes []string, rooms map[string]reclaim.NodeRoom, opportunistic map[string][]capacity.BoundPod) (victims []string, why []string) {
	for _, node := range nodes {
		room, ok := rooms[node]
		if !ok {
			continue
		}
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if !contains(room, name) {
				continue
			}
			ext, _ := reclaim.Extended(name)
			publish := room.Publish[name]
			var held int64
			var mine []capacity.BoundPod
			for _, p := range opportunistic[node] {
				if p.Terminating || p.Requests[ext] <= 0 {
					continue
				}
				held += p.Requests[ext]
				if p.Workload == key {
					mine = append(mine, p)
				}
			}
			if held <= publish {
				continue
			}
			sort.SliceStable(mine, func(i, j int) bool {
				a, b := mine[i], mine[j]
				if a.Requests[ext] != b.Requests[ext] {
					return a.Requests[ext] > b.Requests[ext]
				}
				if a.DeletionCost != b.DeletionCost {
					return a.DeletionCost < b.DeletionCost
				}
				return a.Key < b.Key
			})
			over, n := held-publish, 0
			for _, p := range mine {
				if over <= 0 {
					break
				}
				if !containsString(victims, p.Key) {
					victims = append(victims, p.Key)
					n++
				}
				over -= p.Requests[ext]
			}
			if n > 0 {
				why = append(why, fmt.Sprintf("%s: reclaiming pods request %s of %s, its room is now %s", node,
					strconv.FormatInt(held, 10), ext, strconv.FormatInt(publish, 10)))
			}
		}
	}
	sort.Strings(victims)
	return victims, why
}

// contains reports whether the room was computed for a resource.
func contains(room reclaim.NodeRoom, name corev1.ResourceName) bool {
	_, ok := room.Publish[name]
	return ok
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// boundOf counts a scaler's bound pods that are not terminating.
func boundOf(key string, opportunistic map[string][]capacity.BoundPod) int32 {
	var n int32
	for _, pods := range opportunistic {
		for _, p := range pods {
			if p.Workload == key && !p.Terminating {
				n++
			}
		}
	}
	return n
}

// applyPressure lowers a decision for the victims: the scaler keeps its
// bound pods minus them (its unbound ones would only race for the room),
// never below its Min. Whenever the decision lowers the count, by this or
// by the law's own budget (which sees the pool's total, not where the room
// went), the victims are marked to go first, so the pods leave the nodes
// under pressure and not the others. The victims the lower count cannot
// remove (held at Min) are returned, to be evicted: only those are left
// unmarked, so the ReplicaSet's scale-down and the evictions never pick
// the same pod.
func applyPressure(d *control.Decision, in *control.Scaler, bound int32, victims, why []string) (evict []string) {
	if len(victims) == 0 {
		return nil
	}
	keep := max(bound-int32(len(victims)), in.Min)
	if keep < d.Desired {
		d.Desired = keep
		d.Limit = control.LimitReclaim
		d.Reason = fmt.Sprintf("paid usage rose where %d reclaiming pods run: yielding them (%s); %s", len(victims), strings.Join(why, "; "), d.Reason)
	}
	removed := max(int(bound-d.Desired), 0)
	if removed < len(victims) {
		victims, evict = victims[:removed], victims[removed:]
	}
	if len(victims) == 0 {
		return evict
	}
	for _, v := range victims {
		if !containsString(d.Yield, v) {
			d.Yield = append(d.Yield, v)
		}
	}
	sort.Strings(d.Yield)
	return evict
}

// reclaimInputs picks the scalers that reclaim (their input carries
// spec.reclaim, converted by scalerspec.ToControl).
func reclaimInputs(inputs []control.Scaler) []reclaimInput {
	var out []reclaimInput
	for i := range inputs {
		if inputs[i].Reclaim != nil {
			out = append(out, reclaimInput{key: inputs[i].Key, config: *inputs[i].Reclaim, in: &inputs[i]})
		}
	}
	return out
}

// reclaimRooms runs the first half of a round's reclaim, before the law:
// each pool node's room, published where it changed, and handed to the law
// as the scheduler will see it (control.WithReclaim), without waiting for
// the watch to bring it back.
func (r *Reconciler) reclaimRooms(ctx context.Context, now time.Time, rounds []*scalerRound, inputs []control.Scaler, cluster *control.Cluster) *reclaimRound {
	rc := r.Reclaimer
	if rc == nil {
		for _, sr := range rounds {
			if sp := sr.obj.Spec.Reclaim; sp != nil && sp.Enabled && sr.problem == "" {
				sr.reclaimOff = true
			}
		}
		return nil
	}
	scalers := reclaimInputs(inputs)
	if len(scalers) == 0 {
		r.unpublish(ctx, cluster.Rooms, nil)
		rc.Metrics.Rooms(nil)
		return nil
	}
	usage := rc.Usage.Snapshot(now)
	if usage.Hold {
		return nil // nothing read yet: leave the nodes as they are
	}
	opportunistic := r.Capacity.Opportunistic()
	rr := computeRooms(now, cluster.Rooms, rc.Paid.Paid(), opportunistic, usage, rc.Reservation, &rc.Rooms, scalers)
	for node, room := range rr.rooms {
		rc.Rooms.Record(node, now, room.Room)
	}
	rc.Rooms.Prune(now)
	rr.opportunistic, rr.scalers = opportunistic, scalers
	r.publish(ctx, cluster.Rooms, rr.rooms)
	r.unpublish(ctx, cluster.Rooms, rr.rooms)
	rc.Metrics.Rooms(rr.rooms)
	cluster.Rooms, cluster.Reclaim = control.WithReclaim(cluster.Rooms, rr.rooms), rr.rooms
	for _, sr := range rounds {
		if _, ok := rr.pools[sr.key]; ok {
			sr.reclaim = &rr
		}
	}
	return &rr
}

// reclaimPressure is the second half, after the law: the yield on pressure
// folded into the reclaiming scalers' decisions.
func reclaimPressure(rr *reclaimRound, decisions []control.Decision) {
	if rr == nil {
		return
	}
	byKey := map[string]*control.Decision{}
	for i := range decisions {
		byKey[decisions[i].Key] = &decisions[i]
	}
	rr.victims, rr.evict = map[string][]string{}, map[string][]string{}
	for _, s := range rr.scalers {
		d := byKey[s.key]
		if d == nil {
			continue
		}
		victims, why := pressure(s.key, rr.pools[s.key], rr.rooms, rr.opportunistic)
		rr.victims[s.key] = victims
		rr.evict[s.key] = applyPressure(d, s.in, boundOf(s.key, rr.opportunistic), victims, why)
	}
}

// publish writes each pool node's room where it differs from what the node
// has (read from the capacity cache: no extra request when nothing moved).
func (r *Reconciler) publish(ctx context.Context, rooms []capacity.NodeRoom, want map[string]reclaim.NodeRoom) {
	for i := range rooms {
		room, ok := want[rooms[i].Name]
		if !ok {
			continue
		}
		for name, v := range room.Publish {
			ext, _ := reclaim.Extended(name)
			if have, ok := rooms[i].Allocatable[ext]; ok && have == v {
				continue
			}
			r.setExtended(ctx, rooms[i].Name, ext, v)
		}
	}
}

// unpublish sets to 0 the extended resources of nodes that no reclaiming
// scaler's pool holds any more (or that no longer reclaim that resource),
// so no reclaiming pod lands on room nobody watches.
func (r *Reconciler) unpublish(ctx context.Context, rooms []capacity.NodeRoom, want map[string]reclaim.NodeRoom) {
	for i := range rooms {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			ext, _ := reclaim.Extended(name)
			if rooms[i].Allocatable[ext] == 0 {
				continue
			}
			if room, ok := want[rooms[i].Name]; ok && contains(room, name) {
				continue
			}
			r.setExtended(ctx, rooms[i].Name, ext, 0)
		}
	}
}

func (r *Reconciler) setExtended(ctx context.Context, node string, ext corev1.ResourceName, v int64) {
	rc := r.Reclaimer
	if err := rc.Nodes.SetExtended(ctx, node, ext, v); err != nil {
		rc.Metrics.PublishError()
		r.Log.Warn("cannot publish reclaimable room", "node", node, "resource", string(ext), "value", v, "err", err)
		return
	}
	r.Log.Info("published reclaimable room", "node", node, "resource", string(ext), "value", v)
}

// reclaimStatus is a scaler's status.reclaim: its pool's nodes, at most
// limit (v1alpha1.MaxReclaimNodes in status; 0: all, for the dashboard),
// the rest counted.
func reclaimStatus(key string, rr *reclaimRound, limit int) *v1alpha1.ReclaimStatus {
	out := &v1alpha1.ReclaimStatus{UsageFresh: rr.stale == nil}
	if rr.stale != nil {
		out.Message = rr.stale.Error()
	}
	for i, node := range rr.pools[key] {
		if limit > 0 && i == limit {
			out.MoreNodes = int32(len(rr.pools[key]) - i)
			break
		}
		room := rr.rooms[node]
		out.Nodes = append(out.Nodes, v1alpha1.NodeReclaimStatus{Node: node,
			Reclaimable: room.Reclaimable[corev1.ResourceCPU], Published: room.Publish[corev1.ResourceCPU], Formula: room.Formula})
	}
	return out
}

// setReclaimCondition says whether the scaler reclaims now.
func setReclaimCondition(status *v1alpha1.OpportunisticScalerStatus, sr *scalerRound) {
	switch {
	case sr.reclaimOff:
		setCondition(status, ConditionReclaim, false, ReasonReclaimNotRunning,
			"spec.reclaim is enabled but the controller runs without --reclaim (the chart's reclaim.enabled): nothing is reclaimed", sr.obj.Generation)
	case sr.reclaim == nil:
		return
	case sr.reclaim.stale != nil:
		setCondition(status, ConditionReclaim, false, ReasonUsageStale,
			"nothing is reclaimed, the pool's room falls to what requests allow: "+sr.reclaim.stale.Error(), sr.obj.Generation)
	default:
		setCondition(status, ConditionReclaim, true, ReasonUsageFresh, "usage from metrics.k8s.io is fresh: idle requests are reclaimed", sr.obj.Generation)
	}
}

// ReclaimMetrics are reclaim's series.
type ReclaimMetrics struct {
	mu          sync.Mutex
	reclaimable *prometheus.GaugeVec
	published   *prometheus.GaugeVec
	errors      prometheus.Counter
}

// NewReclaimMetrics creates and registers them.
func NewReclaimMetrics(reg prometheus.Registerer) *ReclaimMetrics {
	m := &ReclaimMetrics{
		reclaimable: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opportunist_reclaimable",
			Help: "Reclaimable room of each node in a reclaiming scaler's pool, by resource, in base units (cores, bytes): theta × allocatable − system usage − reservations of paid pods − margin, at least 0 (0 while usage is stale)."},
			[]string{"resource", "node"}),
		published: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opportunist_reclaim_published",
			Help: "Room published for reclaiming pods on each node (the extended resource opportunist.io/reclaimable-<resource>), in base units: the larger of the reclaimable room and what requests leave free."},
			[]string{"resource", "node"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "opportunist_reclaim_publish_errors_total",
			Help: "Failed writes of a node's reclaimable room to its status."}),
	}
	reg.MustRegister(m.reclaimable, m.published, m.errors)
	return m
}

// Rooms replaces the per-node series.
func (m *ReclaimMetrics) Rooms(rooms map[string]reclaim.NodeRoom) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reclaimable.Reset()
	m.published.Reset()
	for node, room := range rooms {
		for name, v := range room.Reclaimable {
			m.reclaimable.WithLabelValues(string(name), node).Set(baseUnits(name, v))
		}
		for name, v := range room.Publish {
			m.published.WithLabelValues(string(name), node).Set(baseUnits(name, v))
		}
	}
}

// PublishError counts a failed write.
func (m *ReclaimMetrics) PublishError() {
	if m != nil {
		m.errors.Inc()
	}
}

func baseUnits(name corev1.ResourceName, v int64) float64 {
	if name == corev1.ResourceCPU {
		return float64(v) / 1000
	}
	return float64(v)
}
