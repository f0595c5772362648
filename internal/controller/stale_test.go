package controller

import (
	"strings"
	"testing"
	"time"
)

func TestDecideStale(t *testing.T) {
	since := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	freeze := StalePolicy{After: 30 * time.Second, Behaviour: StaleFreeze}
	shrink := StalePolicy{After: 5 * time.Second, Behaviour: StaleShrinkToMin}
	for _, tc := range []struct {
		name         string
		policy       StalePolicy
		staleFor     time.Duration
		known        bool
		current, min int32
		want         StaleOutcome
		says         []string
	}{
		{name: "freeze within grace holds", policy: freeze, staleFor: 29 * time.Second, known: true, current: 7,
			want: StaleOutcome{}, says: []string{"stale since 2026-11-27T05:00:00Z", "holding", "freeze applies once stale for 30s", "watch refused"}},
		{name: "freeze after grace holds, applied", policy: freeze, staleFor: 30 * time.Second, current: 7,
			want: StaleOutcome{Applied: true, Desired: 7}, says: []string{"longer than 30s", "freeze applied", "holding the current count"}},
		{name: "shrink within grace holds", policy: shrink, staleFor: 4 * time.Second, known: true, current: 7, min: 2,
			want: StaleOutcome{}, says: []string{"holding", "shrink-to-min applies once stale for 5s"}},
		{name: "shrink after grace writes min", policy: shrink, staleFor: 6 * time.Second, known: true, current: 7, min: 2,
			want: StaleOutcome{Applied: true, Write: true, Desired: 2}, says: []string{"shrink-to-min applied", "minReplicas 2"}},
		{name: "shrink at min writes nothing", policy: shrink, staleFor: time.Hour, known: true, current: 2, min: 2,
			want: StaleOutcome{Applied: true, Desired: 2}},
		{name: "shrink never scales up", policy: shrink, staleFor: time.Hour, known: true, current: 1, min: 3,
			want: StaleOutcome{Applied: true, Desired: 1}},
		{name: "shrink without the target's count writes nothing", policy: shrink, staleFor: time.Hour, known: false, current: 0, min: 0,
			want: StaleOutcome{Applied: true}},
		{name: "zero grace applies at once", policy: StalePolicy{Behaviour: StaleShrinkToMin}, staleFor: 0, known: true, current: 4,
			want: StaleOutcome{Applied: true, Write: true, Desired: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := DecideStale(tc.policy, since, since.Add(tc.staleFor), "list/watch pods: watch refused", tc.known, tc.current, tc.min)
			msg := got.Message
			got.Message = ""
			if got != tc.want {
				t.Errorf("DecideStale = %+v, want %+v", got, tc.want)
			}
			for _, s := range tc.says {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q lacks %q", msg, s)
				}
			}
		})
	}
}

// TestStaleMessageIsStable: the message does not change within a stale
// spell once applied, so the condition and its Event change once.
func TestStaleMessageIsStable(t *testing.T) {
	since := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	p := StalePolicy{After: 5 * time.Second, Behaviour: StaleShrinkToMin}
	before := DecideStale(p, since, since.Add(10*time.Second), "x", true, 7, 0)
	after := DecideStale(p, since, since.Add(20*time.Second), "x", true, 0, 0)
	if before.Message != after.Message {
		t.Fatalf("message changed after the shrink:\n%s\n%s", before.Message, after.Message)
	}
}

func TestStalePolicyValid(t *testing.T) {
	for _, tc := range []struct {
		p    StalePolicy
		want string
	}{
		{DefaultStalePolicy(), ""},
		{StalePolicy{After: 0, Behaviour: StaleShrinkToMin}, ""},
		{StalePolicy{After: -time.Second, Behaviour: StaleFreeze}, "stale-after must not be negative"},
		{StalePolicy{After: time.Second, Behaviour: "shrink"}, `on-stale must be freeze or shrink-to-min, got "shrink"`},
	} {
		err := tc.p.Valid()
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v.Valid() = %v, want %q", tc.p, err, tc.want)
		}
	}
}
