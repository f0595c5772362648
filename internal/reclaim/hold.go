package reclaim

import (
	"time"

	"github.com/opportunist/opportunist/internal/capacity"
)

// DefaultHold is how long a node's room must have lasted before reclaiming
// pods grow onto it (docs/reclaim.md, "Damping"): the HPA's scale-down
// stabilisation turned upside down. Five minutes holds, on a node of eight
// paid pods bursting each about every 30 minutes, more than one burst on
// average, so growth settles on the room a burst leaves rather than
// following each burst's end.
const DefaultHold = 5 * time.Minute

// RoomHistory keeps each node's room (NodeRoom.Room, before the hold) over
// the hold window, so that Room can publish the lowest of it. The caller
// records every computation; losing the history (a restart) only forgets
// the hold. Not safe for concurrent use.
type RoomHistory struct {
	Hold  time.Duration
	nodes map[string][]roomSample
}

type roomSample struct {
	at   time.Time
	room capacity.Resources
}

// Lowest is the lowest room the node had within the hold window before now,
// per resource, and nil when there is none (no hold: the room now stands).
func (h *RoomHistory) Lowest(node string, now time.Time) capacity.Resources {
	if h == nil || h.Hold <= 0 {
		return nil
	}
	var out capacity.Resources
	for _, s := range h.nodes[node] {
		if now.Sub(s.at) >= h.Hold {
			continue
		}
		if out == nil {
			out = s.room.Clone()
			continue
		}
		for name, v := range s.room {
			if cur, ok := out[name]; !ok || v < cur {
				out[name] = v
			}
		}
	}
	return out
}

// Record adds a node's room at now and forgets what the window no longer
// covers for it. A sample no lower than the new one in any resource can no
// longer be the lowest (it leaves the window first), so it goes too: a node
// keeps a short ascending list.
func (h *RoomHistory) Record(node string, now time.Time, room capacity.Resources) {
	if h == nil || h.Hold <= 0 {
		return
	}
	if h.nodes == nil {
		h.nodes = map[string][]roomSample{}
	}
	list := h.nodes[node]
	k := 0
	for k < len(list) && now.Sub(list[k].at) >= h.Hold {
		k++
	}
	list = list[k:]
	for len(list) > 0 && noLower(list[len(list)-1].room, room) {
		list = list[:len(list)-1]
	}
	h.nodes[node] = append(list, roomSample{at: now, room: room.Clone()})
}

// Prune forgets the nodes with nothing left in the window at now (nodes
// gone from the cluster or from every reclaiming pool): once a round, after
// its Records.
func (h *RoomHistory) Prune(now time.Time) {
	if h == nil {
		return
	}
	for n, list := range h.nodes {
		if len(list) == 0 || now.Sub(list[len(list)-1].at) >= h.Hold {
			delete(h.nodes, n)
		}
	}
}

// hold is what a node publishes of one resource: its room as it was at its
// lowest over the hold window (held, when known), so reclaiming pods grow
// onto room only once it has lasted; but never below what the reclaiming
// pods there already claim while the room still holds them, so a dip that
// leaves them fitting asks none of them to go; never below what requests
// leave free (that room does not move with usage: it needs no hold); and
// never above the room, so when the room falls below their claim they
// yield at once.
func hold(room, free, held, claimed int64, known bool) int64 {
	if !known {
		return room
	}
	return max(min(room, held), min(claimed, room), free)
}

// noLower says a is at least b in every resource of either.
func noLower(a, b capacity.Resources) bool {
	for name, v := range b {
		if a[name] < v {
			return false
		}
	}
	for name := range a {
		if _, ok := b[name]; !ok {
			return false
		}
	}
	return true
}
