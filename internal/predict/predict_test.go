package predict

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/forecast"
)

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func cpu(v int64) capacity.Resources { return capacity.Resources{corev1.ResourceCPU: v} }

func TestRecorder(t *testing.T) {
	r := NewRecorder(nil, t0.Add(10*time.Second))
	r.Observe(t0.Add(10*time.Second), cpu(5))
	r.Observe(t0.Add(40*time.Second), cpu(9)) // the minute's highest
	r.Observe(t0.Add(50*time.Second), cpu(2))
	// Minute 1 sees nothing: the level of 2 stands (within MaxCarry).
	r.Observe(t0.Add(2*time.Minute+5*time.Second), cpu(3))
	// 20 minutes of silence: the observer was not running.
	r.Observe(t0.Add(23*time.Minute), cpu(7))
	r.Observe(t0.Add(24*time.Minute), cpu(7))
	got := r.History.Series(corev1.ResourceCPU).Values
	if len(got) != 24 || got[23] != 7 {
		t.Fatalf("%d samples, want 24 ending with 7: %v", len(got), got)
	}
	for i, want := range map[int]float64{0: 9, 1: 2, 2: 3} {
		if got[i] != want {
			t.Errorf("minute %d = %v, want %v", i, got[i], want)
		}
	}
	carried := 0
	for _, v := range got[3:23] {
		if !math.IsNaN(v) {
			carried++
		}
	}
	if want := int(MaxCarry / time.Minute); carried != want {
		t.Errorf("%d minutes of silence after minute 2 carry the last level, want %d (MaxCarry %s): %v", carried, want, MaxCarry, got[3:23])
	}
}

// daily is days of per-minute paid CPU: 4 cores, 40 from 09:00 to 10:00.
func daily(days int) forecast.Series {
	s := forecast.Series{Start: t0, Step: time.Minute}
	for i := 0; i < days*24*60; i++ {
		v := 4000.0
		if m := i % (24 * 60); m >= 9*60 && m < 10*60 {
			v = 40000
		}
		s.Values = append(s.Values, v)
	}
	return s
}

func TestLearnHeadroom(t *testing.T) {
	day := forecast.Period{Steps: 24 * 60, Length: 24 * time.Hour}
	unit := func(v int64) string { return strconv.FormatInt(v, 10) + "m" }
	tests := []struct {
		name   string
		s      forecast.Series
		period forecast.Period
		now    time.Time
		want   int64
		source string
	}{
		{name: "the morning's rise at 08:xx", s: daily(3), period: day, now: t0.Add(3*24*time.Hour + 8*time.Hour + 30*time.Minute), want: 36000, source: "at this hour of the 24h0m0s period"},
		{name: "a quiet afternoon: the floor", s: daily(3), period: day, now: t0.Add(3*24*time.Hour + 15*time.Hour), want: 1000, source: "the floor, 1% of the pool's allocatable"},
		// Three rises in three days are rarer than 1 %: without the hour of
		// the period, the morning's rise is lost in the quiet minutes.
		{name: "no period: the whole history", s: daily(3), now: t0.Add(3*24*time.Hour + 8*time.Hour), want: 1000, source: "over the whole history), 4319 samples gave 0m"},
		{name: "less than a day: the default", s: forecast.Series{Start: t0, Step: time.Minute, Values: daily(1).Values[:600]}, now: t0.Add(10 * time.Hour), want: 10000, source: "10% of the pool's allocatable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := LearnHeadroom(tc.s, tc.period, tc.now, 2*time.Minute, HeadroomQuantile, 100000, unit)
			if h.Quantity != tc.want || !strings.Contains(h.Source, tc.source) {
				t.Errorf("learned %d (%s), want %d from %q", h.Quantity, h.Source, tc.want, tc.source)
			}
		})
	}
}

func TestPredictorReactiveUntilTwoDays(t *testing.T) {
	p := New(Config{}, NewRecorder(nil, t0), corev1.ResourceCPU)
	var reserve capacity.Resources
	for at := t0; at.Before(t0.Add(36 * time.Hour)); at = at.Add(time.Minute) {
		p.Observe(at, cpu(4000))
		reserve = p.Next(at, time.Minute, cpu(4000))
	}
	if len(reserve) != 0 || !strings.Contains(p.View().Reason, "two periods of a day") {
		t.Errorf("after 36 h: reserve %v, reason %q; want none, reactive until two days are held", reserve, p.View().Reason)
	}
}

// TestLearnSlots: a slot's count is learned from the history of how many
// paid pods of its shape there were, as a headroom is: 2 pods all day, 11
// from 09:00 to 10:00.
func TestLearnSlots(t *testing.T) {
	day := forecast.Period{Steps: 24 * 60, Length: 24 * time.Hour}
	pods := daily(3)
	for i, v := range pods.Values {
		pods.Values[i] = 2
		if v > 4000 { // daily's peak hour
			pods.Values[i] = 11
		}
	}
	tests := []struct {
		name    string
		s       forecast.Series
		period  forecast.Period
		now     time.Time
		current int
		want    int32
		source  string
	}{
		{name: "the morning's 9 more pods at 08:xx", s: pods, period: day, now: t0.Add(3*24*time.Hour + 8*time.Hour + 30*time.Minute), want: 9,
			source: "the 0.99-quantile of the number of paid pods of the shape's rise within the lead time 2m0s (at this hour of the 24h0m0s period), 180 samples"},
		{name: "a quiet afternoon: the floor", s: pods, period: day, now: t0.Add(3*24*time.Hour + 15*time.Hour), want: 1, source: "the floor, 1: the 0.99-quantile"},
		{name: "no period: the whole history", s: pods, now: t0.Add(3*24*time.Hour + 8*time.Hour), want: 1, source: "over the whole history), 4319 samples gave 0"},
		{name: "less than a day: 10 % of the pods seen now", s: forecast.Series{Start: t0, Step: time.Minute, Values: pods.Values[:600]}, now: t0.Add(10 * time.Hour), current: 25, want: 3,
			source: "10% of the 25 paid pods of the shape seen now, at least 1, until 24h0m0s of history is held (10h0m0s now)"},
		{name: "less than a day, none seen: 1", s: forecast.Series{Start: t0, Step: time.Minute}, now: t0, want: 1, source: "10% of the 0 paid pods"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, source := LearnSlots(tc.s, tc.period, tc.now, 2*time.Minute, HeadroomQuantile, tc.current)
			if got != tc.want || !strings.Contains(source, tc.source) {
				t.Errorf("learned %d (%s), want %d from %q", got, source, tc.want, tc.source)
			}
		})
	}
}
