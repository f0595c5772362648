package sim

import (
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"time"
)

// schedule expands the load over [0, total) into the replica count at each
// change, the first at 0. Noise and bursts come from seed; each workload
// draws from its own streams, so adding a workload or a strategy never
// changes another's load.
func (l *Load) schedule(name string, total time.Duration, seed uint64) []Step {
	times := []time.Duration{0}
	if l.RepeatEvery > 0 && !l.Traced {
		for cycle := time.Duration(0); cycle < total; cycle += l.RepeatEvery {
			times = append(times, cycle)
			for _, s := range l.Steps {
				times = append(times, cycle+s.At)
			}
		}
	} else {
		for _, s := range l.Steps {
			times = append(times, s.At)
		}
	}
	var noise []int32
	if n := l.Noise; n != nil {
		rng := rand.New(rand.NewPCG(seed, stream(name, "noise")))
		for t := time.Duration(0); t < total; t += n.Every {
			times = append(times, t)
			noise = append(noise, int32(rng.IntN(int(2*n.Replicas+1)))-n.Replicas)
		}
	}
	type burst struct{ from, to time.Duration }
	var bursts []burst
	if b := l.Bursts; b != nil {
		rng := rand.New(rand.NewPCG(seed, stream(name, "bursts")))
		for t := time.Duration(0); ; {
			t += time.Duration(rng.ExpFloat64() * float64(b.MeanInterval))
			if t >= total {
				break
			}
			bursts = append(bursts, burst{t, t + b.Duration})
			times = append(times, t, t+b.Duration)
		}
	}
	slices.Sort(times)
	times = slices.Compact(times)

	var out []Step
	for _, t := range times {
		if t >= total {
			break
		}
		v := l.level(t)
		if len(noise) > 0 {
			v += noise[int(t/l.Noise.Every)]
		}
		for _, b := range bursts {
			if b.from <= t && t < b.to {
				v += l.Bursts.Replicas
			}
		}
		v = max(v, 0)
		if len(out) == 0 || out[len(out)-1].Replicas != v {
			out = append(out, Step{At: t, Replicas: v})
		}
	}
	return out
}

// level is the count the steps set at t, before noise and bursts.
func (l *Load) level(t time.Duration) int32 {
	if l.RepeatEvery > 0 && !l.Traced {
		t %= l.RepeatEvery
	}
	v := l.Replicas
	for _, s := range l.Steps {
		if s.At > t {
			break
		}
		v = s.Replicas
	}
	return v
}

// stream names an independent random stream.
func stream(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}
