package reclaim

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

func cpu(v int64) capacity.Resources { return capacity.Resources{corev1.ResourceCPU: v} }

// The history gives the lowest room of the window before now, and forgets
// what left it.
func TestRoomHistoryLowest(t *testing.T) {
	h := RoomHistory{Hold: 5 * time.Minute}
	if got := h.Lowest("n1", t0); got != nil {
		t.Fatalf("lowest of an empty history = %v, want nil (no hold)", got)
	}
	h.Record("n1", t0, cpu(9000))
	h.Record("n1", t0.Add(time.Minute), cpu(7000)) // a burst
	h.Record("n1", t0.Add(2*time.Minute), cpu(9000))
	h.Record("n2", t0.Add(2*time.Minute), cpu(3000))
	for _, tt := range []struct {
		name string
		at   time.Duration
		want int64
	}{
		{"the burst's dip holds", 3 * time.Minute, 7000},
		{"still within the window", 5*time.Minute + 59*time.Second, 7000},
		{"the dip left the window", 6 * time.Minute, 9000},
	} {
		if got := h.Lowest("n1", t0.Add(tt.at))[corev1.ResourceCPU]; got != tt.want {
			t.Errorf("%s: lowest %d, want %d", tt.name, got, tt.want)
		}
	}
	h.Record("n1", t0.Add(8*time.Minute), cpu(9500))
	h.Prune(t0.Add(8 * time.Minute))
	if _, kept := h.nodes["n2"]; kept {
		t.Error("n2, not seen for longer than the window, is still kept")
	}
	if n := len(h.nodes["n1"]); n != 1 {
		t.Errorf("n1 keeps %d samples, want 1: the others left the window", n)
	}
	var none *RoomHistory
	none.Record("n1", t0, cpu(1)) // a nil history holds nothing and does not panic
	if none.Lowest("n1", t0) != nil {
		t.Error("a nil history holds")
	}
}

// Publish is damped on the growth side only: it is at most the room (a
// fall below what the reclaiming pods claim shows at once), at most the
// lowest room of the window, and at least the claim while the room holds it.
func TestRoomHold(t *testing.T) {
	node := NodeInput{Node: "n1", Allocatable: cpu(32000), Reserved: cpu(12000), PaidPods: 6,
		Requested: cpu(30000), Fresh: true}
	// room = 0.75·32 − 12 − 0.5 = 11.5 cores
	tests := []struct {
		name           string
		held, claimed  capacity.Resources
		want           int64
		formulaMention bool
	}{
		{"no history: the room", nil, cpu(5000), 11500, false},
		{"room grew: the lowest of the window", cpu(8000), cpu(5000), 8000, true},
		{"a dip they still fit: their claim", cpu(8000), cpu(10000), 10000, true},
		{"the room fell below their claim: the room", cpu(13000), cpu(12000), 11500, false},
		{"room steady: the room", cpu(11500), cpu(11000), 11500, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := node
			in.Held, in.Claimed = tt.held, tt.claimed
			r := Room(in, DefaultRoomConfig())
			if r.Room[corev1.ResourceCPU] != 11500 {
				t.Fatalf("room %d, want 11500", r.Room[corev1.ResourceCPU])
			}
			if got := r.Publish[corev1.ResourceCPU]; got != tt.want {
				t.Errorf("publish %d, want %d", got, tt.want)
			}
			if got := strings.Contains(r.Formula, "hold window"); got != tt.formulaMention {
				t.Errorf("formula %q mentions the hold: %v, want %v", r.Formula, got, tt.formulaMention)
			}
		})
	}
}
