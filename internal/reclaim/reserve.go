// Package reclaim is the pure arithmetic of usage-based reclaim: a paid pod's
// reservation (what it keeps although it does not use it all), and each
// node's reclaimable room, with the formula and the numbers behind it. It
// does no I/O: the controller feeds it samples from metrics.k8s.io, the
// simulator feeds it its usage model.
package reclaim

import (
	"math"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
)

// ExtendedResourceCPU is the node extended resource that publishes a node's
// room for reclaiming pods, in milli-cores as an integer count. A reclaiming
// pod requests it (plus a tiny native cpu request and a cpu limit).
const ExtendedResourceCPU = "opportunist.io/reclaimable-cpu"

// ExtendedResourceMemory is ExtendedResourceCPU for memory, in bytes. Memory
// is reclaimed only when a scaler asks for it: it is not compressible.
const ExtendedResourceMemory = "opportunist.io/reclaimable-memory"

// Extended returns the extended resource that publishes the reclaimable room
// of a native resource, and false for a resource that is never reclaimed.
func Extended(name corev1.ResourceName) (corev1.ResourceName, bool) {
	switch name {
	case corev1.ResourceCPU:
		return ExtendedResourceCPU, true
	case corev1.ResourceMemory:
		return ExtendedResourceMemory, true
	}
	return "", false
}

// Native is the inverse of Extended.
func Native(ext corev1.ResourceName) (corev1.ResourceName, bool) {
	switch ext {
	case ExtendedResourceCPU:
		return corev1.ResourceCPU, true
	case ExtendedResourceMemory:
		return corev1.ResourceMemory, true
	}
	return "", false
}

// Usage is one usage sample of a pod (or a node): metrics-server's
// resolution is 15 s, so a sample stands for the 15 s before At.
type Usage struct {
	At          time.Time
	CPUMilli    int64
	MemoryBytes int64
}

func (u Usage) of(name corev1.ResourceName) int64 {
	if name == corev1.ResourceMemory {
		return u.MemoryBytes
	}
	return u.CPUMilli
}

// ReservationConfig shapes a reservation: it stays at the request for
// Settle after the pod is first seen, then decays over another Settle
// towards the Quantile of the samples of the last Window plus
// MarginPercent of the request. A pod's age is read from its oldest sample,
// so a caller that keeps only Window of samples needs Window ≥ 2·Settle.
type ReservationConfig struct {
	Settle        time.Duration
	Quantile      float64 // in (0, 1]
	MarginPercent float64 // of the request
	Window        time.Duration
}

// DefaultReservation is the default shape (docs/reclaim.md says why): Borg's
// 300 s settling time, the 90th percentile of the last 30 minutes (120
// samples of metrics-server: bursts shorter than 3 minutes in the half hour
// are left to theta's buffer) plus 10 % of the request.
var DefaultReservation = ReservationConfig{
	Settle:        5 * time.Minute,
	Quantile:      0.9,
	MarginPercent: 10,
	Window:        30 * time.Minute,
}

// Reserve is a paid pod's reservation: what the node must keep for it. It
// starts at the request; once the pod has been observed for cfg.Settle it
// decays linearly, over another cfg.Settle, towards the cfg.Quantile of the
// samples within cfg.Window plus cfg.MarginPercent of the request; a rise of
// usage lifts it at once (the newest sample enters the quantile and is a
// floor). It is never above the request (reclaim never gives a paid pod more
// than it asked for) and never below the newest sample (capped by the
// request). Only cpu and memory are reserved by usage; every other resource,
// and a pod without samples, keeps its request. samples need not be sorted.
func Reserve(request capacity.Resources, samples []Usage, now time.Time, cfg ReservationConfig) capacity.Resources {
	out := request.Clone()
	if len(samples) == 0 {
		return out
	}
	first, last := samples[0], samples[0]
	for _, s := range samples[1:] {
		if s.At.Before(first.At) {
			first = s
		}
		if s.At.After(last.At) {
			last = s
		}
	}
	decay := 1.0 // share of the way from the request to the target
	if cfg.Settle > 0 {
		decay = (now.Sub(first.At).Seconds() - cfg.Settle.Seconds()) / cfg.Settle.Seconds()
	}
	decay = min(max(decay, 0), 1)
	var recent []Usage
	for _, s := range samples {
		if cfg.Window <= 0 || now.Sub(s.At) <= cfg.Window {
			recent = append(recent, s)
		}
	}
	if len(recent) == 0 {
		recent = []Usage{last}
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, ok := request[name]
		if !ok || req <= 0 {
			continue
		}
		values := make([]int64, len(recent))
		for i, s := range recent {
			values[i] = s.of(name)
		}
		target := float64(quantile(values, cfg.Quantile)) + cfg.MarginPercent/100*float64(req)
		target = min(target, float64(req))
		r := int64(math.Ceil(float64(req) - decay*(float64(req)-target)))
		r = max(r, min(last.of(name), req))
		out[name] = min(max(r, 0), req)
	}
	return out
}

// quantile is the q-quantile of values by the nearest-rank method (the
// smallest value with at least q of the values at or below it), so that it
// is always one of the samples.
func quantile(values []int64, q float64) int64 {
	s := slices.Clone(values)
	slices.Sort(s)
	rank := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(rank, 0), len(s)-1)]
}
