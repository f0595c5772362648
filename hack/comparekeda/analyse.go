package main

import "math"

// result is one pipeline's row of the table.
type result struct {
	// Seconds from the paid app's scale to the worker's first change of
	// spec.replicas (a /scale write), and the count it wrote; NaN when it
	// did not change before the next scale or the end.
	BurstWrite, EndWrite     float64
	BurstWriteTo, EndWriteTo int32
	// Seconds from the scale to 17 until all 17 pods of the paid app run
	// and no paid pod is pending; NaN when never.
	PaidRunning float64
	// Reversals of the worker count: a change against the one before.
	Reversals int
	// FullSeconds: time with less than one core free or a paid pod pending.
	FullSeconds float64
	// OvershootCoreSeconds: the worker's bound cores beyond allocatable -
	// headroom - paid demand (bound or pending), over time, as the
	// simulator's overshoot: room taken from the headroom.
	OvershootCoreSeconds float64
	// HarvestCoreSeconds: the worker's bound cores over time.
	HarvestCoreSeconds float64
	// CPUSeconds: the pipeline's processes from the start of the window to
	// its end, and including their start-up; PeakRSSBytes the sum of their
	// peaks.
	CPUSeconds, CPUSecondsTotal float64
	PeakRSSBytes                int64
}

func analyse(r recording) result {
	s := r.Samples
	out := result{}
	out.BurstWrite, out.BurstWriteTo = firstChange(s, r.BurstAtSeconds, r.BurstEndSeconds)
	out.EndWrite, out.EndWriteTo = firstChange(s, r.BurstEndSeconds, r.LengthSeconds)
	out.PaidRunning = math.NaN()
	for _, x := range s {
		if x.At >= r.BurstAtSeconds && x.At <= r.BurstEndSeconds && x.SampleRunning == 17 && x.PendingPods == 0 {
			out.PaidRunning = x.At - r.BurstAtSeconds
			break
		}
	}
	out.Reversals = reversals(distinct(s, r.LengthSeconds))
	out.FullSeconds = integrate(s, r.LengthSeconds, func(x sample) float64 {
		if x.FreeMilli < 1000 || x.PendingPods > 0 {
			return 1
		}
		return 0
	})
	out.OvershootCoreSeconds = integrate(s, r.LengthSeconds, func(x sample) float64 {
		allowed := r.AllocatableMilli - r.HeadroomMilli - x.PaidBound - x.PaidPending
		return float64(min(max(x.WorkerBound-allowed, 0), x.WorkerBound)) / 1000
	})
	out.HarvestCoreSeconds = integrate(s, r.LengthSeconds, func(x sample) float64 { return float64(x.WorkerBound) / 1000 })
	for _, p := range r.Processes {
		out.CPUSeconds += p.CPUSecondsWindow
		out.CPUSecondsTotal += p.CPUSecondsTotal
		out.PeakRSSBytes += p.PeakRSSBytes
	}
	return out
}

// firstChange is the time after from until the worker count first differs
// from what it was at from, before until, and the count then.
func firstChange(s []sample, from, until float64) (float64, int32) {
	at := valueAt(s, from)
	for _, x := range s {
		if x.At > from && x.At < until && x.Worker != at {
			return x.At - from, x.Worker
		}
	}
	return math.NaN(), 0
}

// valueAt is the worker count at t: the last sample at or before it.
func valueAt(s []sample, t float64) int32 {
	var v int32
	for _, x := range s {
		if x.At > t {
			break
		}
		v = x.Worker
	}
	return v
}

// distinct is the sequence of worker counts until end, each change once.
func distinct(s []sample, end float64) []int32 {
	var out []int32
	for _, x := range s {
		if x.At > end {
			break
		}
		if n := len(out); n == 0 || out[n-1] != x.Worker {
			out = append(out, x.Worker)
		}
	}
	return out
}

// reversals counts the moves against the move before: 15 -> 116 -> 56 ->
// 116 is two (test/e2e's reversals, the count the KEDA tests assert).
func reversals(xs []int32) int {
	n, last := 0, 0
	for i := 1; i < len(xs); i++ {
		dir := 1
		if xs[i] < xs[i-1] {
			dir = -1
		}
		if last != 0 && dir != last {
			n++
		}
		last = dir
	}
	return n
}

// integrate sums f over [0, end), each sample holding until the next.
func integrate(s []sample, end float64, f func(sample) float64) float64 {
	total := 0.0
	for i, x := range s {
		from, to := max(x.At, 0), end
		if i+1 < len(s) {
			to = min(s[i+1].At, end)
		}
		if to > from {
			total += f(x) * (to - from)
		}
	}
	return total
}
