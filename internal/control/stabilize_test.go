package control

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// roomFor is a cluster with room for exactly n one-core replicas.
func roomFor(n int) Cluster {
	node := kubeNode("n0", list("cpu", "1000", "memory", "4Ti", "pods", "5000"))
	var ps []*corev1.Pod
	if n < 1000 {
		ps = append(ps, kubePod("paid", "n0", list("cpu", fmt.Sprint(1000-n))))
	}
	return newEnv([]*corev1.Node{node}, ps).cluster()
}

// step is one round: at second at, the room holds room replicas and the
// target runs current.
type step struct {
	at      int
	room    int
	current int32
	want    int32
	limit   Limit
}

func TestStabilization(t *testing.T) {
	window := func(d time.Duration) scalerOpt { return scaleUp(Behavior{StabilizationWindow: d}) }
	tests := []struct {
		name   string
		scaler Scaler
		steps  []step
	}{
		{
			name:   "first round: nothing to stabilise against",
			scaler: worker("w", list("cpu", "1"), window(30*time.Second)),
			steps:  []step{{at: 0, room: 50, current: 0, want: 50, limit: LimitBudget}},
		},
		{
			// A new leader: it knows nothing of the window its predecessor
			// was in, so the current count counts as recommended now.
			name:   "seeded history: no scale-up past the current count until a whole window has passed",
			scaler: worker("w", list("cpu", "1"), window(30*time.Second), history(SeedHistory(at(0), 10))),
			steps: []step{
				{at: 0, room: 20, current: 10, want: 10, limit: LimitStabilized},
				{at: 29, room: 20, current: 10, want: 10, limit: LimitStabilized},
				{at: 31, room: 20, current: 10, want: 20, limit: LimitBudget},
			},
		},
		{
			name:   "seeded history holds no scale-down back, nor a scale-up without a window",
			scaler: worker("w", list("cpu", "1"), history(SeedHistory(at(0), 10))),
			steps: []step{
				{at: 0, room: 4, current: 10, want: 4, limit: LimitBudget},
				{at: 1, room: 20, current: 4, want: 20, limit: LimitBudget},
			},
		},
		{
			name:   "scale-up waits until the higher count held for the whole window",
			scaler: worker("w", list("cpu", "1"), window(30*time.Second)),
			steps: []step{
				{at: 0, room: 10, current: 10, want: 10, limit: LimitBudget},
				{at: 10, room: 14, current: 10, want: 10, limit: LimitStabilized},
				{at: 35, room: 14, current: 10, want: 10, limit: LimitStabilized}, // 10 still held at 5s
				{at: 41, room: 14, current: 10, want: 14, limit: LimitBudget},
			},
		},
		{
			name:   "scale-up goes to the lowest count of the window",
			scaler: worker("w", list("cpu", "1"), window(30*time.Second)),
			steps: []step{
				{at: 0, room: 10, current: 10, want: 10, limit: LimitBudget},
				{at: 10, room: 12, current: 10, want: 10, limit: LimitStabilized},
				{at: 20, room: 20, current: 10, want: 10, limit: LimitStabilized},
				{at: 41, room: 20, current: 10, want: 12, limit: LimitStabilized},
				{at: 51, room: 20, current: 12, want: 20, limit: LimitBudget},
			},
		},
		{
			name:   "scale-down is immediate, even inside the window",
			scaler: worker("w", list("cpu", "1"), window(5*time.Minute)),
			steps: []step{
				{at: 0, room: 20, current: 20, want: 20, limit: LimitBudget},
				{at: 5, room: 12, current: 20, want: 12, limit: LimitBudget},
			},
		},
		{
			name:   "±1 flapping is damped",
			scaler: worker("w", list("cpu", "1"), window(30*time.Second)),
			steps: []step{
				{at: 0, room: 11, current: 11, want: 11, limit: LimitBudget},
				{at: 5, room: 10, current: 11, want: 10, limit: LimitBudget},
				{at: 10, room: 11, current: 10, want: 10, limit: LimitStabilized},
				{at: 20, room: 10, current: 10, want: 10, limit: LimitBudget},
				{at: 25, room: 11, current: 10, want: 10, limit: LimitStabilized},
				{at: 50, room: 11, current: 10, want: 10, limit: LimitStabilized},
				{at: 56, room: 11, current: 10, want: 11, limit: LimitBudget},
			},
		},
		{
			name: "hysteresis: a +1 right after a scale-down is held, even with no recommendation remembered",
			scaler: worker("w", list("cpu", "1"), window(30*time.Second),
				history(History{Scales: []Scale{{Time: at(-5), From: 11, To: 10}}, LastTime: at(-5), LastReplicas: 10})),
			steps: []step{{at: 0, room: 11, current: 10, want: 10, limit: LimitStabilized}},
		},
		{
			name: "hysteresis holds +1 only: +2 is not flapping",
			scaler: worker("w", list("cpu", "1"), window(30*time.Second),
				history(History{Scales: []Scale{{Time: at(-5), From: 11, To: 10}}, LastTime: at(-5), LastReplicas: 10})),
			steps: []step{{at: 0, room: 12, current: 10, want: 12, limit: LimitBudget}},
		},
		{
			name: "hysteresis ends with the window",
			scaler: worker("w", list("cpu", "1"), window(30*time.Second),
				history(History{Scales: []Scale{{Time: at(-31), From: 11, To: 10}}, LastTime: at(-31), LastReplicas: 10})),
			steps: []step{{at: 0, room: 11, current: 10, want: 11, limit: LimitBudget}},
		},
		{
			name:   "step limit: at most MaxStep added per period",
			scaler: worker("w", list("cpu", "1"), scaleUp(Behavior{MaxStep: 4, Period: 15 * time.Second})),
			steps: []step{
				{at: 0, room: 30, current: 10, want: 14, limit: LimitStepLimit},
				{at: 1, room: 30, current: 14, want: 14, limit: LimitStepLimit}, // the +4 at 0s is seen now
				{at: 16, room: 30, current: 14, want: 18, limit: LimitStepLimit},
				{at: 17, room: 30, current: 18, want: 18, limit: LimitStepLimit},
				{at: 18, room: 12, current: 18, want: 12, limit: LimitBudget}, // down: no limit
			},
		},
		{
			name:   "step limit without a period limits each decision",
			scaler: worker("w", list("cpu", "1"), scaleUp(Behavior{MaxStep: 4})),
			steps: []step{
				{at: 0, room: 30, current: 10, want: 14, limit: LimitStepLimit},
				{at: 1, room: 30, current: 14, want: 18, limit: LimitStepLimit},
				{at: 2, room: 20, current: 18, want: 20, limit: LimitBudget},
			},
		},
		{
			name:   "window and step limit together",
			scaler: worker("w", list("cpu", "1"), scaleUp(Behavior{StabilizationWindow: 10 * time.Second, MaxStep: 5, Period: time.Minute})),
			steps: []step{
				{at: 0, room: 10, current: 10, want: 10, limit: LimitBudget},
				{at: 1, room: 40, current: 10, want: 10, limit: LimitStabilized},
				{at: 12, room: 40, current: 10, want: 15, limit: LimitStepLimit},
			},
		},
		{
			name:   "a decision not applied leaves no scale in the history",
			scaler: worker("w", list("cpu", "1"), scaleUp(Behavior{MaxStep: 4, Period: time.Minute})),
			steps: []step{
				{at: 0, room: 30, current: 10, want: 14, limit: LimitStepLimit},
				{at: 1, room: 30, current: 10, want: 14, limit: LimitStepLimit}, // dry run: still 10
			},
		},
		{
			name:   "opt-in scale-down window holds the highest count of the window",
			scaler: worker("w", list("cpu", "1"), scaleDown(Behavior{StabilizationWindow: time.Minute})),
			steps: []step{
				{at: 0, room: 20, current: 20, want: 20, limit: LimitBudget},
				{at: 10, room: 12, current: 20, want: 20, limit: LimitStabilized},
				{at: 65, room: 12, current: 20, want: 20, limit: LimitStabilized},
				{at: 71, room: 12, current: 20, want: 12, limit: LimitBudget},
			},
		},
		{
			name:   "opt-in scale-down step limit",
			scaler: worker("w", list("cpu", "1"), scaleDown(Behavior{MaxStep: 5, Period: time.Minute})),
			steps: []step{
				{at: 0, room: 5, current: 20, want: 15, limit: LimitStepLimit},
				{at: 1, room: 5, current: 15, want: 15, limit: LimitStepLimit},
			},
		},
		{
			name: "Min is a floor the window cannot hold back",
			scaler: worker("w", list("cpu", "1"), bounds(15, 150), window(time.Minute),
				history(History{Recommendations: []Recommendation{{Time: at(-10), Replicas: 0}}, LastTime: at(-10)})),
			steps: []step{{at: 0, room: 100, current: 0, want: 15, limit: LimitMin}},
		},
		{
			name: "Max is a ceiling an opt-in scale-down window cannot hold up",
			scaler: worker("w", list("cpu", "1"), bounds(0, 10), scaleDown(Behavior{StabilizationWindow: time.Minute}),
				history(History{Recommendations: []Recommendation{{Time: at(-10), Replicas: 40}}, LastTime: at(-10), LastReplicas: 40})),
			steps: []step{{at: 0, room: 100, current: 40, want: 10, limit: LimitMax}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hist := tc.scaler.History
			for _, st := range tc.steps {
				s := tc.scaler
				s.Current, s.History = st.current, hist
				d := Decide(at(st.at), roomFor(st.room), []Scaler{s})[0]
				if d.Desired != st.want || d.Limit != st.limit {
					t.Fatalf("at %ds (room %d, current %d): desired %d (%s), want %d (%s)\nreason: %s\nhistory: %+v",
						st.at, st.room, st.current, d.Desired, d.Limit, st.want, st.limit, d.Reason, hist)
				}
				hist = d.History
			}
		})
	}
}

func TestHistory(t *testing.T) {
	s := worker("w", list("cpu", "1"), scaleUp(Behavior{StabilizationWindow: 30 * time.Second, MaxStep: 10, Period: time.Minute}))

	t.Run("observes the target's changes at the round before them", func(t *testing.T) {
		s := s
		s.Current = 10
		h := Decide(at(0), roomFor(14), []Scaler{s})[0].History
		s.Current, s.History = 14, h
		h = Decide(at(3), roomFor(14), []Scaler{s})[0].History
		last, ok := h.LastScale()
		if want := (Scale{Time: at(0), From: 10, To: 14}); !ok || last != want {
			t.Errorf("last scale %+v (%v), want %+v", last, ok, want)
		}
		if h.LastTime != at(3) || h.LastReplicas != 14 {
			t.Errorf("last round %v %d, want %v 14", h.LastTime, h.LastReplicas, at(3))
		}
	})

	t.Run("records a recommendation only when it changes, and forgets what no window needs", func(t *testing.T) {
		s := s
		s.Current = 5
		var h History
		for i, room := range []int{5, 5, 6, 6, 7} {
			s.History = h
			h = Decide(at(20*i), roomFor(room), []Scaler{s})[0].History
		}
		// At 80s the window starts at 50s: 6 (made at 40s) is in force then.
		want := []Recommendation{{Time: at(40), Replicas: 6}, {Time: at(80), Replicas: 7}}
		if !reflect.DeepEqual(h.Recommendations, want) {
			t.Errorf("recommendations %+v, want %+v", h.Recommendations, want)
		}
	})

	t.Run("never changes the history it is given", func(t *testing.T) {
		s := s
		s.Current = 12
		s.History = History{
			Recommendations: []Recommendation{{Time: at(-100), Replicas: 3}, {Time: at(-10), Replicas: 8}},
			Scales:          []Scale{{Time: at(-200), From: 1, To: 3}, {Time: at(-10), From: 3, To: 8}},
			LastTime:        at(-5),
			LastReplicas:    8,
		}
		given := History{
			Recommendations: append([]Recommendation(nil), s.History.Recommendations...),
			Scales:          append([]Scale(nil), s.History.Scales...),
			LastTime:        s.History.LastTime,
			LastReplicas:    s.History.LastReplicas,
		}
		Decide(at(0), roomFor(20), []Scaler{s})
		if !reflect.DeepEqual(s.History, given) {
			t.Errorf("history changed:\n%+v\nwant\n%+v", s.History, given)
		}
	})
}
