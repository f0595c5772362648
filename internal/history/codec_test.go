package history

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/forecast"
)

var t0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// daily is 14 days at one minute of a noisy office-hours pool: two paid
// shapes (250m/256Mi web pods, 1-core/2Gi API pods) whose pod counts follow
// the day with noise, with an hour-long gap where opportunist was down.
func daily(days int, seed uint64) *forecast.History {
	rng := rand.New(rand.NewPCG(seed, 1))
	h := forecast.NewHistory(t0, forecast.DefaultStep, 14*24*time.Hour)
	n := days * 1440
	cpu, mem := make([]float64, n), make([]float64, n)
	for i := range n {
		hour := float64(i%1440) / 60
		shape := math.Max(0, math.Sin((hour-7)/12*math.Pi)) // 07:00–19:00
		web := math.Round(20 + 120*shape + rng.NormFloat64()*6)
		api := math.Round(10 + 40*shape + rng.NormFloat64()*3)
		cpu[i] = max(web, 0)*250 + max(api, 0)*1000
		mem[i] = max(web, 0)*256*(1<<20) + max(api, 0)*2*(1<<30)
	}
	for i := (days/2)*1440 + 600; i < (days/2)*1440+660; i++ {
		cpu[i], mem[i] = math.NaN(), math.NaN()
	}
	h.Demand[corev1.ResourceCPU] = cpu
	h.Demand[corev1.ResourceMemory] = mem
	return h
}

func sameHistory(t *testing.T, got, want *forecast.History) {
	t.Helper()
	if !got.Start.Equal(want.Start) || got.Step != want.Step || got.Keep != want.Keep {
		t.Fatalf("grid = %v/%v/%v, want %v/%v/%v", got.Start, got.Step, got.Keep, want.Start, want.Step, want.Keep)
	}
	if len(got.Demand) != len(want.Demand) {
		t.Fatalf("%d resources, want %d", len(got.Demand), len(want.Demand))
	}
	for name, wv := range want.Demand {
		gv := got.Demand[name]
		if len(gv) != len(wv) {
			t.Fatalf("%s: %d samples, want %d", name, len(gv), len(wv))
		}
		for i := range wv {
			if math.IsNaN(wv[i]) != math.IsNaN(gv[i]) || (!math.IsNaN(wv[i]) && math.Round(wv[i]) != gv[i]) {
				t.Fatalf("%s[%d] = %v, want %v", name, i, gv[i], wv[i])
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name string
		h    *forecast.History
	}{
		{"empty", forecast.NewHistory(t0, time.Minute, 0)},
		{"gaps at both ends and inside", &forecast.History{Start: t0, Step: time.Minute, Keep: time.Hour, Demand: map[corev1.ResourceName][]float64{
			corev1.ResourceCPU: {nan, nan, 1500, 1500, 0, nan, 3, 2_000_000, 0, nan},
		}}},
		{"all gaps", &forecast.History{Start: t0, Step: time.Minute, Demand: map[corev1.ResourceName][]float64{corev1.ResourceCPU: {nan, nan, nan}}}},
		{"negative, large and fractional values", &forecast.History{Start: t0.Add(-time.Hour), Step: time.Second, Demand: map[corev1.ResourceName][]float64{
			corev1.ResourceMemory: {1 << 50, -5, 1 << 50, 0.4, 2.6},
			"nvidia.com/gpu":      {1, 2},
		}}},
		{"fourteen days", daily(14, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Encode(tc.h)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			sameHistory(t, got, tc.h)
		})
	}
}

// TestRecordAfterDecode: a decoded history goes on recording where it ended.
func TestRecordAfterDecode(t *testing.T) {
	h := forecast.NewHistory(t0, time.Minute, 0)
	if err := h.Record(t0, map[corev1.ResourceName]float64{corev1.ResourceCPU: 7}); err != nil {
		t.Fatal(err)
	}
	data, _ := Encode(h)
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Record(t0.Add(2*time.Minute), map[corev1.ResourceName]float64{corev1.ResourceCPU: 9}); err != nil {
		t.Fatal(err)
	}
	if v := got.Series(corev1.ResourceCPU).Values; len(v) != 3 || v[0] != 7 || !math.IsNaN(v[1]) || v[2] != 9 {
		t.Errorf("after decode and record: %v, want [7 NaN 9]", v)
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		h          *forecast.History
	}{
		{"nil", "nothing", nil},
		{"no step", "step", &forecast.History{Start: t0}},
		{"infinite", "not a demand", &forecast.History{Start: t0, Step: time.Minute, Demand: map[corev1.ResourceName][]float64{corev1.ResourceCPU: {1, math.Inf(1)}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Encode(tc.h); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one about %q", err, tc.want)
			}
		})
	}
}

// gzipped is a well-formed header around an arbitrary body.
func gzipped(body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(magic)
	b.WriteByte(Version)
	zw := gzip.NewWriter(&b)
	zw.Write(body)
	zw.Close()
	return b.Bytes()
}

func TestDecodeCorrupt(t *testing.T) {
	good, err := Encode(daily(2, 2))
	if err != nil {
		t.Fatal(err)
	}
	head := func(count uint64) []byte {
		b := binary.AppendVarint(nil, t0.UnixNano())
		b = binary.AppendUvarint(b, uint64(time.Minute))
		b = binary.AppendUvarint(b, 0)
		return binary.AppendUvarint(b, count)
	}
	resource := func(b []byte, name string, n uint64, runs ...uint64) []byte {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = binary.AppendUvarint(b, n)
		for _, r := range runs {
			b = binary.AppendUvarint(b, r)
		}
		return b
	}
	newer := append([]byte(nil), good...)
	newer[len(magic)] = Version + 1
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 0xff
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"empty", "no header", nil},
		{"foreign", "no header", []byte(`{"apiVersion":"v1"}`)},
		{"newer version", "version 2", newer},
		{"not gzip", "corrupt", append([]byte(magic+"\x01"), "plain"...)},
		{"flipped byte", "corrupt", flipped},
		{"truncated", "corrupt", good[:len(good)-9]},
		{"no step", "corrupt", gzipped(binary.AppendUvarint(binary.AppendUvarint(binary.AppendVarint(nil, 0), 0), 0))},
		{"too many resources", "resources", gzipped(head(1000))},
		{"too many samples", "samples", gzipped(resource(head(1), "cpu", 1<<40))},
		{"run past the end", "run of 5", gzipped(resource(head(1), "cpu", 3, 5<<1|1))},
		{"empty run", "run of 0", gzipped(resource(head(1), "cpu", 3, 1))},
		{"missing samples", "sample", gzipped(resource(head(1), "cpu", 3, 3<<1))},
		{"twice", "twice", gzipped(resource(resource(head(2), "cpu", 1, 3), "cpu", 1, 3))},
		{"trailing bytes", "after the last", gzipped(append(resource(head(1), "cpu", 1, 3), 0))},
		{"empty name", "name of 0", gzipped(resource(head(1), "", 1, 3))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := Decode(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode = %v, %v; want an error about %q", h, err, tc.want)
			}
		})
	}
	// Every truncation is an error, never a panic.
	for n := 0; n < len(good); n += 1 + n/50 {
		if _, err := Decode(good[:n]); err == nil {
			t.Fatalf("Decode of the first %d of %d bytes succeeded", n, len(good))
		}
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := Encode(daily(1, 3))
	f.Add(good)
	f.Add([]byte(magic + "\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := Decode(data)
		if err != nil {
			return
		}
		again, err := Encode(h)
		if err != nil {
			t.Fatalf("decoded %v but cannot encode it: %v", h, err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("re-encoded history does not decode: %v", err)
		}
	})
}

// TestSize14Days measures the persisted form of 14 days at one minute of a
// noisy daily cpu + memory demand (docs/learning.md quotes it): it must stay
// far below the 1 MiB limit of a Kubernetes object.
func TestSize14Days(t *testing.T) {
	h := daily(14, 1)
	data, err := Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	raw := 0
	for _, vs := range h.Demand {
		raw += 8 * len(vs)
	}
	t.Logf("14 days at 1 min, cpu + memory (%d samples each): %d bytes encoded (%.1f KiB; %d bytes as float64s, %.1f%% of the 1 MiB object limit)",
		len(h.Demand[corev1.ResourceCPU]), len(data), float64(len(data))/1024, raw, 100*float64(len(data))/(1<<20))
	if len(data) > 256<<10 {
		t.Errorf("%d bytes: more than a quarter of the 1 MiB object limit", len(data))
	}
}

func BenchmarkEncode14Days(b *testing.B) {
	h := daily(14, 1)
	for b.Loop() {
		if _, err := Encode(h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode14Days(b *testing.B) {
	data, _ := Encode(daily(14, 1))
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
