package control

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/reclaim"
)

// A reclaiming worker grows onto paid requests left idle, says Reclaim, and
// shrinks back to what requests allow when usage goes stale.
func TestReclaim(t *testing.T) {
	nodes := []*corev1.Node{kubeNode("n1", cores(16)), kubeNode("n2", cores(16))}
	paid := pods("paid", 2, nodeNames(nodes), list("cpu", "14"))
	e := newEnv(nodes, paid, "worker")
	rooms := func(fresh bool) map[string]reclaim.NodeRoom {
		out := map[string]reclaim.NodeRoom{}
		for _, n := range nodeNames(nodes) {
			out[n] = reclaim.Room(reclaim.NodeInput{
				Node:        n,
				Allocatable: capacity.Resources{corev1.ResourceCPU: 16000},
				Reserved:    capacity.Resources{corev1.ResourceCPU: 4400}, // 14 requested, about 4 used
				PaidPods:    1,
				Requested:   capacity.Resources{corev1.ResourceCPU: 14000},
				Fresh:       fresh,
			}, reclaim.DefaultRoomConfig())
		}
		return out
	}
	w := worker("worker", list(reclaim.ExtendedResourceCPU, "1000", "cpu", "10m", "memory", "1Gi"), func(s *Scaler) {
		s.TargetUtilizationPercent = 80 // applies to requests, not to reclaimed room
		cfg := reclaim.DefaultRoomConfig()
		s.Reclaim = &cfg
	})
	tests := []struct {
		name      string
		fresh     bool
		want      int32
		wantLimit Limit
		wantWhy   string
	}{
		// per node: floor(0.75·16000) − 4400 reserved − 500 margin = 7100 > 2000 free
		{"fresh usage reclaims idle requests", true, 14, LimitReclaim, "reclaim: opportunist.io/reclaimable-cpu 14200m published on the pool (14200m by usage, requests alone leave 4000m); " +
			"e.g. n1: cpu: 0.75 × 16 alloc − 0 system − 4.4 reserved by 1 paid pods − 0.5 margin = 7.1 reclaimable; requests leave 2 free; publish 7.1 (opportunist.io/reclaimable-cpu 7100)"},
		{"stale usage leaves requests alone", false, 4, LimitBudget, "reclaim: usage stale on all 2 nodes, requests alone: 4000m free"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			published := rooms(tt.fresh)
			c := e.cluster()
			c.Rooms, c.Reclaim = WithReclaim(c.Rooms, published), published
			ws := e.withBound(w)
			ws[0].ScaleUp = Behavior{} // no window: the test reads one round
			d := Decide(at(0), c, ws)[0]
			if d.Desired != tt.want || d.Limit != tt.wantLimit {
				t.Errorf("desired %d limited by %s, want %d by %s (%s)", d.Desired, d.Limit, tt.want, tt.wantLimit, d.Reason)
			}
			if !strings.Contains(d.Reason, tt.wantWhy) {
				t.Errorf("reason %q\nlacks %q", d.Reason, tt.wantWhy)
			}
		})
	}

	// A scaler that does not reclaim is untouched by the published resource.
	plain := e.withBound(worker("worker", list("cpu", "1")))
	c := e.cluster()
	c.Rooms, c.Reclaim = WithReclaim(c.Rooms, rooms(true)), rooms(true)
	if d := Decide(at(0), c, plain)[0]; d.Desired != 4 || strings.Contains(d.Reason, "reclaim") {
		t.Errorf("requests-based worker: desired %d (%s), want 4 and no word of reclaim", d.Desired, d.Reason)
	}
}
