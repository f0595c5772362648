package reclaim

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// steady is one sample every 15 s from t0 for d, all at cpu milli-cores.
func steady(d time.Duration, cpu int64) []Usage {
	var out []Usage
	for at := time.Duration(0); at <= d; at += 15 * time.Second {
		out = append(out, Usage{At: t0.Add(at), CPUMilli: cpu, MemoryBytes: 1 << 30})
	}
	return out
}

func TestReserve(t *testing.T) {
	req := capacity.Resources{corev1.ResourceCPU: 4000, corev1.ResourceMemory: 8 << 30, "nvidia.com/gpu": 1}
	cfg := DefaultReservation // settle 5m, p95, +10 % of request, window 30m
	burst := append(steady(20*time.Minute, 1000), Usage{At: t0.Add(20*time.Minute + 15*time.Second), CPUMilli: 3900})
	tests := []struct {
		name    string
		samples []Usage
		now     time.Duration // after t0
		wantCPU int64
	}{
		{"no samples keeps the request", nil, 0, 4000},
		{"settling keeps the request", steady(4*time.Minute, 1000), 4 * time.Minute, 4000},
		// half way through the decay: 4000 − 0.5·(4000 − (1000 + 400))
		{"decays linearly after settle", steady(7*time.Minute+30*time.Second, 1000), 7*time.Minute + 30*time.Second, 2700},
		{"settled at quantile plus margin", steady(20*time.Minute, 1000), 20 * time.Minute, 1400},
		{"jumps back up at once on a burst", burst, 20*time.Minute + 15*time.Second, 3900},
		{"never above the request", steady(20*time.Minute, 9000), 20 * time.Minute, 4000},
		{"old samples leave the window", append(steady(10*time.Minute, 3000), steady(50*time.Minute, 500)[41:]...), 50 * time.Minute, 900},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Reserve(req, tt.samples, t0.Add(tt.now), cfg)
			if got[corev1.ResourceCPU] != tt.wantCPU {
				t.Errorf("cpu reservation = %d, want %d", got[corev1.ResourceCPU], tt.wantCPU)
			}
			if got["nvidia.com/gpu"] != 1 {
				t.Errorf("gpu = %d, want the request 1: only cpu and memory are reserved by usage", got["nvidia.com/gpu"])
			}
			if got[corev1.ResourceMemory] > req[corev1.ResourceMemory] {
				t.Errorf("memory %d above its request", got[corev1.ResourceMemory])
			}
		})
	}
	if req[corev1.ResourceCPU] != 4000 {
		t.Fatal("Reserve changed its request argument")
	}
}

// The invariants hold whatever the samples: request ≥ reservation ≥ min(last sample, request).
func TestReserveBounds(t *testing.T) {
	req := capacity.Resources{corev1.ResourceCPU: 2000}
	var samples []Usage
	for i := range 400 {
		cpu := int64((i * 7919) % 3000) // up to 1.5× the request
		samples = append(samples, Usage{At: t0.Add(time.Duration(i) * 15 * time.Second), CPUMilli: cpu})
		now := samples[len(samples)-1].At
		got := Reserve(req, samples, now, DefaultReservation)[corev1.ResourceCPU]
		if got > 2000 || got < min(cpu, 2000) {
			t.Fatalf("sample %d (cpu %d): reservation %d outside [min(usage, request), request]", i, cpu, got)
		}
	}
}

func TestRoom(t *testing.T) {
	node := NodeInput{
		Node:        "n1",
		Allocatable: capacity.Resources{corev1.ResourceCPU: 32000, corev1.ResourceMemory: 128 << 30},
		System:      capacity.Resources{corev1.ResourceCPU: 1200},
		Reserved:    capacity.Resources{corev1.ResourceCPU: 5400},
		PaidPods:    6,
		Requested:   capacity.Resources{corev1.ResourceCPU: 30000},
		Fresh:       true,
	}
	r := Room(node, DefaultRoomConfig())
	// floor(0.75·32000) − 1200 − 5400 − 500 = 24000 − 7100
	if got := r.Reclaimable[corev1.ResourceCPU]; got != 16900 {
		t.Errorf("reclaimable = %d, want 16900", got)
	}
	if got := r.Publish[corev1.ResourceCPU]; got != 16900 {
		t.Errorf("publish = %d, want 16900 (more than the 2000 requests leave)", got)
	}
	if _, ok := r.Reclaimable[corev1.ResourceMemory]; ok {
		t.Error("memory reclaimed although only cpu was asked for")
	}
	want := "cpu: 0.75 × 32 alloc − 1.2 system − 5.4 reserved by 6 paid pods − 0.5 margin = 16.9 reclaimable; requests leave 2 free; publish 16.9 (opportunist.io/reclaimable-cpu 16900)"
	if r.Formula != want {
		t.Errorf("formula:\n got %s\nwant %s", r.Formula, want)
	}

	node.Fresh = false
	r = Room(node, DefaultRoomConfig())
	if r.Reclaimable[corev1.ResourceCPU] != 0 || r.Publish[corev1.ResourceCPU] != 2000 {
		t.Errorf("stale: reclaimable %d publish %d, want 0 and the 2000 requests leave", r.Reclaimable[corev1.ResourceCPU], r.Publish[corev1.ResourceCPU])
	}
	if !strings.Contains(r.Formula, "stale") {
		t.Errorf("stale formula does not say so: %s", r.Formula)
	}

	node.Fresh = true
	node.Reserved[corev1.ResourceCPU] = 30000
	if got := Room(node, DefaultRoomConfig()).Reclaimable[corev1.ResourceCPU]; got != 0 {
		t.Errorf("over-reserved node: reclaimable %d, want the floor 0", got)
	}

	cfg := RoomConfig{Theta: 0.6, Resources: []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory},
		Margin: map[corev1.ResourceName]Margin{corev1.ResourceMemory: {Percent: 5}}}
	node.Reserved = capacity.Resources{corev1.ResourceCPU: 1000, corev1.ResourceMemory: 16 << 30}
	r = Room(node, cfg)
	// 0.6·128Gi − 16Gi − 6.4Gi
	gib := float64(1 << 30)
	if got, want := r.Reclaimable[corev1.ResourceMemory], int64(0.6*128*gib)-(16<<30)-int64(0.05*128*gib+0.5); got != want {
		t.Errorf("memory reclaimable = %d, want %d", got, want)
	}
}

func TestExtended(t *testing.T) {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		ext, ok := Extended(name)
		back, ok2 := Native(ext)
		if !ok || !ok2 || back != name {
			t.Errorf("%s → %s → %s", name, ext, back)
		}
	}
	if _, ok := Extended(corev1.ResourcePods); ok {
		t.Error("pods are not reclaimed")
	}
}

func TestFresh(t *testing.T) {
	tests := []struct {
		name   string
		last   time.Time
		maxAge time.Duration
		want   bool
	}{
		{"never sampled", time.Time{}, 0, false},
		{"just sampled", t0.Add(-15 * time.Second), 0, true},
		{"15 minutes is still fresh", t0.Add(-15 * time.Minute), 0, true},
		{"older than the default", t0.Add(-15*time.Minute - time.Second), 0, false},
		{"configured shorter", t0.Add(-2 * time.Minute), time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fresh(tt.last, t0, tt.maxAge); got != tt.want {
				t.Errorf("Fresh = %v, want %v", got, tt.want)
			}
		})
	}
}
