package forecast

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

var t0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday

// office is paid demand in milli-cores at minute i: 8 cores at night, 60
// from 09:00 to 17:00 on weekdays (weekends stay at night level when
// weekends is set), plus uniform noise of ±noise cores.
func office(days int, weekends bool, noise float64, seed uint64) Series {
	rng := rand.New(rand.NewPCG(seed, 1))
	vs := make([]float64, days*1440)
	for i := range vs {
		day, minute := i/1440, i%1440
		v := 8.0
		if minute >= 9*60 && minute < 17*60 && (!weekends || day%7 < 5) {
			v = 60
		}
		vs[i] = 1000 * (v + noise*(2*rng.Float64()-1))
	}
	return Series{Start: t0, Step: time.Minute, Values: vs}
}

// bursts is demand with no period: 8 cores, and +50 for 20 to 80 minutes
// at random, about every 5 hours.
func bursts(days int, seed uint64) Series {
	rng := rand.New(rand.NewPCG(seed, 2))
	vs := make([]float64, days*1440)
	for i := 0; i < len(vs); {
		gap := int(rng.ExpFloat64() * 300)
		for j := i; j < min(i+gap, len(vs)); j++ {
			vs[j] = 8000
		}
		i += gap
		d := 20 + rng.IntN(60)
		for j := i; j < min(i+d, len(vs)); j++ {
			vs[j] = 58000
		}
		i += d
	}
	return Series{Start: t0, Step: time.Minute, Values: vs}
}

func withGaps(s Series, every, length int) Series {
	vs := append([]float64(nil), s.Values...)
	for i := every; i+length < len(vs); i += every {
		for j := i; j < i+length; j++ {
			vs[j] = math.NaN()
		}
	}
	s.Values = vs
	return s
}

func TestDetectPeriod(t *testing.T) {
	tests := []struct {
		name   string
		series Series
		want   time.Duration
		reason string // a part of the reason
	}{
		{"daily, 14 days", office(14, false, 4, 1), 24 * time.Hour, "period 24h0m0s"},
		{"daily, 2 days is enough", office(2, false, 4, 1), 24 * time.Hour, "period 24h0m0s"},
		{"weekdays only: a week", office(14, true, 4, 1), 7 * 24 * time.Hour, "period 168h0m0s"},
		{"daily with gaps", withGaps(office(14, false, 4, 1), 1000, 60), 24 * time.Hour, "period 24h0m0s"},
		{"a day and a half: too short", office(1, false, 4, 1), 0, "fewer than two"},
		{"random bursts", bursts(14, 1), 0, "no period"},
		{"flat", office(3, false, 0, 1).map0(), 0, "flat"},
		{"mostly gaps", withGaps(office(14, false, 4, 1), 100, 40), 0, "gaps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DetectPeriod(tt.series, Candidates, 7)
			if got.Length != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("DetectPeriod = %v (%s), want %v with %q", got.Length, got.Reason, tt.want, tt.reason)
			}
		})
	}
}

// map0 sets every sample to its first value.
func (s Series) map0() Series {
	vs := make([]float64, len(s.Values))
	for i := range vs {
		vs[i] = 5000
	}
	s.Values = vs
	return s
}

func TestChoose(t *testing.T) {
	cfg := Config{Horizon: 70 * time.Minute, Every: time.Hour, Seed: 7}
	tests := []struct {
		name     string
		series   Series
		reactive bool
		maxError float64
	}{
		{"daily office hours", office(14, false, 4, 3), false, 0.35},
		{"daily, with an hour's gap every day", withGaps(office(14, false, 4, 3), 1440, 60), false, 0.35},
		{"weekdays", office(14, true, 4, 3), false, 0.35},
		{"random bursts", bursts(14, 3), true, 0},
		{"one day", office(1, false, 4, 3), true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Choose(tt.series, cfg)
			t.Log(m.Reason)
			if m.Reactive() != tt.reactive {
				t.Fatalf("Choose = %s, want reactive %v: %s", m.Method, tt.reactive, m.Reason)
			}
			if tt.reactive {
				return
			}
			if m.Error > tt.maxError {
				t.Errorf("backtest error %.3f, want at most %.3f", m.Error, tt.maxError)
			}
			fc, err := m.Forecast(tt.series, 24*60)
			if err != nil {
				t.Fatal(err)
			}
			// The series ends at midnight: 09:00 to 17:00 is the peak (a Monday
			// after two weeks from a Monday).
			if at9, at3 := fc[10*60], fc[3*60]; at9 < 45000 || at3 > 20000 {
				t.Errorf("forecast at 10:00 = %.0f, at 03:00 = %.0f: want the office hours back", at9, at3)
			}
		})
	}
}

func TestForecasters(t *testing.T) {
	// A clean daily square wave: every forecaster but None puts the peak back.
	s := office(7, false, 0, 1)
	for _, m := range Methods() {
		t.Run(string(m), func(t *testing.T) {
			fc := forecasterOf(m)(s.Values, 1440, 1440)
			got := fc[12*60]
			want := 60000.0
			if m == None {
				want = 8000
			}
			if math.Abs(got-want) > 3000 {
				t.Errorf("%s at noon = %.0f, want about %.0f", m, got, want)
			}
		})
	}
}

func TestHistoryRecord(t *testing.T) {
	h := NewHistory(t0, time.Minute, 0)
	cpu := corev1.ResourceCPU
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.Record(t0, map[corev1.ResourceName]float64{cpu: 1}))
	must(h.Record(t0.Add(3*time.Minute), map[corev1.ResourceName]float64{cpu: 4, corev1.ResourceMemory: 9}))
	got := h.Series(cpu).Values
	if len(got) != 4 || got[0] != 1 || !math.IsNaN(got[1]) || !math.IsNaN(got[2]) || got[3] != 4 {
		t.Errorf("cpu = %v, want [1 NaN NaN 4]: the skipped minutes are gaps", got)
	}
	if mem := h.Series(corev1.ResourceMemory).Values; len(mem) != 4 || !math.IsNaN(mem[0]) || mem[3] != 9 {
		t.Errorf("memory = %v, want gaps before its first sample", mem)
	}
	if err := h.Record(t0.Add(2*time.Minute), nil); err == nil || !strings.Contains(err.Error(), "before the end") {
		t.Errorf("a sample in the past: err = %v", err)
	}
	if err := h.Record(t0.Add(90*time.Second), nil); err == nil || !strings.Contains(err.Error(), "grid") {
		t.Errorf("a sample off the grid: err = %v", err)
	}
}

func TestHistoryKeep(t *testing.T) {
	h := NewHistory(t0, time.Minute, 2*24*time.Hour)
	for i := range 5 * 1440 {
		if err := h.Record(t0.Add(time.Duration(i)*time.Minute), map[corev1.ResourceName]float64{corev1.ResourceCPU: float64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	s := h.Series(corev1.ResourceCPU)
	if n := len(s.Values); n < 2*1440 || n > 3*1440 {
		t.Errorf("kept %d samples, want two to three days", n)
	}
	if last := s.Values[len(s.Values)-1]; last != 5*1440-1 || !s.End().Equal(t0.Add(5*24*time.Hour)) {
		t.Errorf("last sample %v ending %v: trimming moved the grid", last, s.End())
	}
}

func BenchmarkChoose14Days(b *testing.B) {
	s := office(14, true, 4, 1)
	cfg := Config{Horizon: 70 * time.Minute, Seed: 1}
	for b.Loop() {
		Choose(s, cfg)
	}
}

func BenchmarkDetectPeriod14Days(b *testing.B) {
	s := office(14, true, 4, 1)
	for b.Loop() {
		DetectPeriod(s, Candidates, 1)
	}
}

func TestForecastErrors(t *testing.T) {
	m := Model{Method: SeasonalNaive, Period: Period{Steps: 1440, Length: 24 * time.Hour}}
	if _, err := m.Forecast(office(1, false, 0, 1), 10); err == nil || !strings.Contains(err.Error(), "two periods") {
		t.Errorf("a day of history for a daily model: err = %v, want it to ask for two periods", err)
	}
	empty := Series{Start: t0, Step: time.Minute, Values: gaps(100)}
	if _, err := m.Forecast(empty, 10); err == nil || !strings.Contains(err.Error(), "no sample") {
		t.Errorf("a history of gaps: err = %v", err)
	}
	if got := DetectPeriod(empty, Candidates, 1); got.Found() || !strings.Contains(got.Reason, "all gaps") {
		t.Errorf("DetectPeriod on gaps = %+v", got)
	}
}
