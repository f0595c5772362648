package sim

import (
	"reflect"
	"testing"
	"time"
)

func TestLoadSchedule(t *testing.T) {
	m := time.Minute
	tests := []struct {
		name  string
		load  Load
		total time.Duration
		want  []Step
	}{
		{
			name:  "replicas then steps",
			load:  Load{Replicas: 2, Steps: []Step{{10 * m, 17}, {15 * m, 2}}},
			total: 40 * m,
			want:  []Step{{0, 2}, {10 * m, 17}, {15 * m, 2}},
		},
		{
			name:  "a step at zero replaces replicas; steps after the end are dropped",
			load:  Load{Replicas: 2, Steps: []Step{{0, 5}, {50 * m, 1}}},
			total: 40 * m,
			want:  []Step{{0, 5}},
		},
		{
			name:  "steps repeat, starting each cycle from replicas",
			load:  Load{Replicas: 1, Steps: []Step{{5 * m, 3}}, RepeatEvery: 10 * m},
			total: 25 * m,
			want:  []Step{{0, 1}, {5 * m, 3}, {10 * m, 1}, {15 * m, 3}, {20 * m, 1}},
		},
		{
			name:  "repeated counts that do not change make no event",
			load:  Load{Replicas: 3, Steps: []Step{{5 * m, 3}}, RepeatEvery: 10 * m},
			total: 30 * m,
			want:  []Step{{0, 3}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.load.schedule("w", tt.total, 1); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("schedule %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLoadNoiseAndBursts(t *testing.T) {
	l := Load{Replicas: 10, Noise: &Noise{Every: 5 * time.Minute, Replicas: 2}}
	a := l.schedule("web", 24*time.Hour, 7)
	if b := l.schedule("web", 24*time.Hour, 7); !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave two loads")
	}
	if b := l.schedule("web", 24*time.Hour, 8); reflect.DeepEqual(a, b) {
		t.Error("two seeds gave the same load")
	}
	if b := l.schedule("api", 24*time.Hour, 7); reflect.DeepEqual(a, b) {
		t.Error("two workloads drew the same noise")
	}
	seen := map[int32]bool{}
	for _, s := range a {
		if s.Replicas < 8 || s.Replicas > 12 || s.At%(5*time.Minute) != 0 {
			t.Fatalf("step %+v: want 10 +- 2, on the 5 min grid", s)
		}
		seen[s.Replicas] = true
	}
	if len(seen) != 5 {
		t.Errorf("noise drew %v over a day, want all of 8..12", seen)
	}

	l = Load{Replicas: 2, Bursts: &Bursts{MeanInterval: 20 * time.Minute, Duration: 90 * time.Second, Replicas: 15}}
	steps := l.schedule("checkout", 8*time.Hour, 1)
	var bursts int
	for i, s := range steps {
		if s.Replicas != 2 && s.Replicas%15 != 2 {
			t.Fatalf("step %+v: want 2 plus whole bursts of 15", s)
		}
		if s.Replicas > 2 && (i == 0 || steps[i-1].Replicas == 2) {
			bursts++
		}
	}
	if bursts < 12 || bursts > 36 {
		t.Errorf("%d bursts in 8 h, want about 24", bursts)
	}
}
