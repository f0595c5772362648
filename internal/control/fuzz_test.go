package control

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// byteSource turns the fuzz input into the random numbers randomWorldFor
// draws: one input byte per number, copied into every byte of the word so
// that both the high bits (IntN) and the low bits (IntN of a power of two)
// follow it. Once the input is spent a PCG takes over, so any input decodes
// into a whole world and rejection sampling always ends.
type byteSource struct {
	data []byte
	rest *rand.PCG
}

func (s *byteSource) Uint64() uint64 {
	if len(s.data) == 0 {
		return s.rest.Uint64()
	}
	b := s.data[0]
	s.data = s.data[1:]
	return uint64(b) * 0x0101010101010101
}

// fuzzWorld is randomWorldFor driven by the input, with what that builder
// never makes: Min above Max, a current count anywhere, and every kind of
// scale-down behaviour (none, window, step).
func fuzzWorld(data []byte) randomWorld {
	rng := rand.New(&byteSource{data: data, rest: rand.NewPCG(uint64(len(data)), 9)})
	w := randomWorldFor(rng, worldOptions{simple: rng.IntN(4) == 0})
	for i := range w.scalers {
		s := &w.scalers[i]
		if rng.IntN(2) == 0 {
			s.Min, s.Max = int32(rng.IntN(12)), int32(rng.IntN(12)) // min ≤ max or not
		}
		if rng.IntN(3) == 0 {
			s.Current = int32(rng.IntN(40))
		}
		switch rng.IntN(5) {
		case 0:
			s.ScaleDown = Behavior{}
		case 1:
			s.ScaleDown = Behavior{Period: 15 * time.Second}
		case 2:
			s.ScaleDown = Behavior{StabilizationWindow: time.Duration(1+rng.IntN(120)) * time.Second, Period: 15 * time.Second}
		case 3:
			s.ScaleDown = Behavior{MaxStep: int32(1 + rng.IntN(5)), Period: time.Duration(rng.IntN(60)) * time.Second}
		}
	}
	return w
}

// FuzzDecide checks over fuzzer-made clusters what TestDecideProperties and
// TestDecideIgnoresNodeNames check over seeded ones, plus Min above Max and
// every scale-down behaviour.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte("\x03\x10\x20\x05\x07\x01\x02\x09\x11\x30\x40\x50\x02\x01\x00\x05\x08\x09\x03\x02\x01"))
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 11))
		data := make([]byte, 64+rng.IntN(256))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w := fuzzWorld(data)
		before := fmt.Sprintf("%+v %+v", w.cluster, w.scalers)
		ds := Decide(t0, w.cluster, w.scalers)
		if after := fmt.Sprintf("%+v %+v", w.cluster, w.scalers); after != before {
			t.Fatalf("Decide changed its input:\n%s\n%s", before, after)
		}
		if len(ds) != len(w.scalers) {
			t.Fatalf("%d decisions for %d scalers", len(ds), len(w.scalers))
		}
		scalers := map[string]Scaler{}
		for _, s := range w.scalers {
			scalers[s.Key] = s
		}
		for i, d := range ds {
			s, ok := scalers[d.Key]
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("%s (min %d max %d current %d bound %d down %+v): %s\ndecision: %+v", d.Key, s.Min, s.Max, s.Current, s.Bound, s.ScaleDown, fmt.Sprintf(format, args...), d)
			}
			if !ok || (i > 0 && ds[i-1].Key >= d.Key) {
				fail("unknown key, or decisions not sorted by key")
			}
			hi := max(s.Min, s.Max) // Min wins, even over Max
			if d.Desired < s.Min || d.Desired > hi {
				fail("desired %d outside [min, max(min, max)] = [%d, %d]", d.Desired, s.Min, hi)
			}
			if want, _ := clampDesired(d.Budget, d.Fit, s.Min, s.Max); d.Recommended != want {
				fail("recommended %d, want clamp(min(budget, fit), min, max) = %d", d.Recommended, want)
			}
			if lo, up := min(s.Current, d.Recommended), max(s.Current, d.Recommended); d.Desired < lo || d.Desired > up {
				fail("desired %d not between current and recommended", d.Desired)
			}
			if s.ScaleDown.StabilizationWindow == 0 && s.ScaleDown.MaxStep == 0 {
				if d.Desired > max(s.Min, int32(min(d.Fit, int64(s.Max)))) {
					fail("desired %d above max(min, fit %d)", d.Desired, d.Fit)
				}
				if d.Recommended < s.Current && d.Desired != d.Recommended {
					fail("scale-down to %d delayed: desired %d", d.Recommended, d.Desired)
				}
			}
			if d.Reason == "" {
				fail("no reason")
			}
		}
		if again := Decide(t0, w.cluster, w.scalers); !reflect.DeepEqual(again, ds) {
			t.Fatalf("same input, different output:\n%+v\n%+v", again, ds)
		}
		reversed := w
		reversed.scalers = slices.Clone(w.scalers)
		slices.Reverse(reversed.scalers)
		reversed.cluster.Rooms = slices.Clone(w.cluster.Rooms)
		slices.Reverse(reversed.cluster.Rooms)
		reversed.cluster.Pending = slices.Clone(w.cluster.Pending)
		slices.Reverse(reversed.cluster.Pending)
		if got := Decide(t0, reversed.cluster, reversed.scalers); !reflect.DeepEqual(got, ds) {
			t.Fatalf("reversed input, different output:\n%+v\n%+v", got, ds)
		}
		cluster, names := renameNodes(rand.New(rand.NewPCG(uint64(len(data)), 13)), w.cluster)
		if got, want := renamed(Decide(t0, cluster, w.scalers), nil), renamed(ds, names); !reflect.DeepEqual(got, want) {
			t.Fatalf("renamed nodes, different output:\n%s", diffDecisions(got, want))
		}
	})
}
