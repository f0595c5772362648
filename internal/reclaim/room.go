package reclaim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

// NodeInput is what Room needs to know of one node, in canonical units.
type NodeInput struct {
	Node        string
	Allocatable capacity.Resources
	// System is the node's usage outside its pods (node usage − Σ pod
	// usage, at least 0): kubelet, runtime and daemons not run as pods.
	System capacity.Resources
	// Reserved is Σ Reserve(...) of the paid pods bound to the node.
	Reserved capacity.Resources
	// PaidPods counts them (for the formula's text).
	PaidPods int
	// Requested is Σ requests of the pods bound to the node that do not
	// reclaim (paid and requests-based opportunistic pods): alloc minus it
	// is the room requests alone allow.
	Requested capacity.Resources
	// Fresh says the node's usage is recent (within RoomConfig.MaxAge, as
	// the caller judged it): stale or missing usage reclaims nothing.
	Fresh bool
	// Held is the node's lowest room over the hold window
	// (RoomHistory.Lowest), per resource; nil or a resource missing: no
	// hold, the room now is published.
	Held capacity.Resources
	// Claimed is what the reclaiming pods bound to the node request of the
	// extended resources, by native resource (cpu for
	// opportunist.io/reclaimable-cpu). Terminating pods claim nothing.
	Claimed capacity.Resources
}

// Margin is a node's safety margin for one resource: a quantity in
// canonical units, or a percent of the node's allocatable.
type Margin struct {
	Quantity int64
	Percent  float64
}

// RoomConfig is a pool's reclaim settings (from spec.reclaim).
type RoomConfig struct {
	// Theta is the share of allocatable that paid reservations and
	// reclaimed pods may fill together, in (0, 1].
	Theta float64
	// Margin per resource; resources without one get none.
	Margin map[corev1.ResourceName]Margin
	// Resources are reclaimed (default cpu only).
	Resources []corev1.ResourceName
}

// Defaults (docs/reclaim.md says why).
const (
	DefaultTheta = 0.75
	// DefaultMaxAge: usage older than this reclaims nothing (Koordinator's
	// 15 minutes).
	DefaultMaxAge = 15 * time.Minute
)

// DefaultMargin is the node margin for a resource without one: half a core
// of cpu (room for what metrics-server's 15 s averages smooth away), 5 % of
// memory.
func DefaultMargin(name corev1.ResourceName) Margin {
	if name == corev1.ResourceCPU {
		return Margin{Quantity: 500}
	}
	return Margin{Percent: 5}
}

// DefaultRoomConfig reclaims cpu with the default theta and margin.
func DefaultRoomConfig() RoomConfig {
	return RoomConfig{
		Theta:     DefaultTheta,
		Margin:    map[corev1.ResourceName]Margin{corev1.ResourceCPU: DefaultMargin(corev1.ResourceCPU)},
		Resources: []corev1.ResourceName{corev1.ResourceCPU},
	}
}

// NodeRoom is one node's reclaim accounting, per reclaimed resource:
//
//	Reclaimable = max(0, Theta·Allocatable − System − Reserved − Margin)
//	Free        = max(0, Allocatable − Requested)      (what requests allow)
//	Room        = max(Reclaimable, Free)                (0 when Fresh is false: Free)
//	Publish     = max(min(Room, Held), min(Claimed, Room), Free)
//
// Room is the node's room for reclaiming pods: a reclaiming pod may use the
// idle part of paid requests (Reclaimable) or the unrequested room (Free),
// whichever is larger. Free is safe whatever the paid usage (paid pods use
// at most their requests), so stale usage shrinks reclaiming workloads back
// to it. Publish, the value of its extended resource (Extended(name)), is
// the room damped on the growth side only: the lowest room of the hold
// window (Held), so that reclaiming pods grow onto room once it has lasted,
// but at least what they already claim while the room holds it, so a dip
// they still fit in sends none away, and at least Free, which does not
// move with usage. It never exceeds Room: when the room
// falls below their claim, Publish falls with it and they yield at once.
type NodeRoom struct {
	Node                                               string
	Allocatable, System, Reserved, Margin, Reclaimable capacity.Resources
	Requested, Free, Room, Publish                     capacity.Resources
	// Held and Claimed are the NodeInput's (Held nil: no hold).
	Held, Claimed capacity.Resources
	Theta         float64
	PaidPods      int
	Fresh         bool
	// Formula is the arithmetic with its numbers, one line per resource.
	Formula string
}

// Room computes a node's reclaimable room.
func Room(node NodeInput, cfg RoomConfig) NodeRoom {
	resources := cfg.Resources
	if len(resources) == 0 {
		resources = []corev1.ResourceName{corev1.ResourceCPU}
	}
	out := NodeRoom{
		Node: node.Node, Theta: cfg.Theta, PaidPods: node.PaidPods, Fresh: node.Fresh,
		Allocatable: capacity.Resources{}, System: capacity.Resources{}, Reserved: capacity.Resources{},
		Margin: capacity.Resources{}, Reclaimable: capacity.Resources{},
		Requested: capacity.Resources{}, Free: capacity.Resources{}, Room: capacity.Resources{}, Publish: capacity.Resources{},
		Held: node.Held, Claimed: node.Claimed,
	}
	var lines []string
	for _, name := range resources {
		alloc := node.Allocatable[name]
		m := cfg.Margin[name]
		margin := m.Quantity + int64(math.Ceil(m.Percent/100*float64(alloc)))
		system, reserved, requested := max(node.System[name], 0), node.Reserved[name], node.Requested[name]
		reclaimable := int64(0)
		if node.Fresh {
			reclaimable = max(int64(math.Floor(cfg.Theta*float64(alloc)))-system-reserved-margin, 0)
		}
		free := max(alloc-requested, 0)
		out.Allocatable[name], out.System[name], out.Reserved[name] = alloc, system, reserved
		out.Margin[name], out.Reclaimable[name] = margin, reclaimable
		room := max(reclaimable, free)
		held, known := node.Held[name]
		out.Requested[name], out.Free[name], out.Room[name] = requested, free, room
		out.Publish[name] = hold(room, free, held, node.Claimed[name], known)
		lines = append(lines, formula(name, &out, node.PaidPods))
	}
	out.Formula = strings.Join(lines, "; ")
	return out
}

// formula spells one resource's arithmetic, e.g.
// "cpu: 0.75 × 32 alloc − 1.2 system − 5.4 reserved by 6 paid pods − 0.5 margin = 16.9 reclaimable; requests leave 2 free; publish 16.9 (opportunist.io/reclaimable-cpu 16900)".
func formula(name corev1.ResourceName, r *NodeRoom, paid int) string {
	f := func(v int64) string { return human(name, v) }
	ext, _ := Extended(name)
	head := fmt.Sprintf("%s: %s × %s alloc − %s system − %s reserved by %d paid pods − %s margin = %s reclaimable",
		name, strconv.FormatFloat(r.Theta, 'f', -1, 64), f(r.Allocatable[name]), f(r.System[name]),
		f(r.Reserved[name]), paid, f(r.Margin[name]), f(r.Reclaimable[name]))
	if !r.Fresh {
		head = fmt.Sprintf("%s: usage stale or missing, 0 reclaimable", name)
	}
	if r.Publish[name] != r.Room[name] {
		return fmt.Sprintf("%s; requests leave %s free; room %s, lowest %s in the hold window, reclaiming pods claim %s; publish %s (%s %d)",
			head, f(r.Free[name]), f(r.Room[name]), f(r.Held[name]), f(r.Claimed[name]), f(r.Publish[name]), ext, r.Publish[name])
	}
	return fmt.Sprintf("%s; requests leave %s free; publish %s (%s %d)",
		head, f(r.Free[name]), f(r.Publish[name]), ext, r.Publish[name])
}

// human prints a canonical amount for people: cpu in cores, memory in GiB.
func human(name corev1.ResourceName, v int64) string {
	switch {
	case name == corev1.ResourceCPU:
		return strconv.FormatFloat(float64(v)/1000, 'f', -1, 64)
	case capacity.InBytes(name):
		return strconv.FormatFloat(math.Round(float64(v)/(1<<30)*100)/100, 'f', -1, 64) + "Gi"
	}
	return strconv.FormatInt(v, 10)
}

// Fresh says whether usage last sampled at last is recent enough at now to
// reclaim by (NodeInput.Fresh): within maxAge (DefaultMaxAge when 0). A
// zero last (never sampled) is stale.
func Fresh(last, now time.Time, maxAge time.Duration) bool {
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	return !last.IsZero() && now.Sub(last) <= maxAge
}
