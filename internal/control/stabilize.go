package control

import (
	"fmt"
	"time"
)

// History is what the control law remembers of one scaler between rounds.
// The caller stores the History of each Decision and passes it back in the
// next round's Scaler; losing it (a restart) only forgets stabilisation.
// Decide never changes the History it is given.
type History struct {
	// Recommendations are the recommended counts, one entry per change,
	// oldest first: each holds from its Time until the next entry's.
	Recommendations []Recommendation
	// Scales are the changes of the target's replica count, oldest first.
	// They are observed, not assumed: a decision that was not applied (dry
	// run, paused, failed write) leaves no trace here.
	Scales []Scale
	// LastTime is when Decide last ran; LastReplicas the target's count then.
	LastTime     time.Time
	LastReplicas int32
}

// SeedHistory is the history of a scaler the caller has none for: a new
// scaler, or every scaler after a restart or a failover. The current count
// stands as the recommendation made at now, as the upstream HPA seeds its
// recommendations, so a scale-up waits out a whole window from now: a new
// leader does not grow a target past the window its predecessor was in.
func SeedHistory(now time.Time, current int32) History {
	return History{
		Recommendations: []Recommendation{{Time: now, Replicas: current}},
		LastTime:        now,
		LastReplicas:    current,
	}
}

// Recommendation is a recommended replica count and when it was made.
type Recommendation struct {
	Time     time.Time
	Replicas int32
}

// Scale is a change of the target's replica count. Time is that of the round
// before it was seen: our own writes follow a round.
type Scale struct {
	Time     time.Time
	From, To int32
}

// LastScale returns the latest scale remembered, if any.
func (h History) LastScale() (Scale, bool) {
	if len(h.Scales) == 0 {
		return Scale{}, false
	}
	return h.Scales[len(h.Scales)-1], true
}

// next returns the history after this round: the target's count observed,
// the recommendation recorded, and what no window looks at any more dropped.
func (h History) next(now time.Time, s *Scaler, rec int32) History {
	out := History{LastTime: now, LastReplicas: s.Current}
	scales := h.Scales
	if !h.LastTime.IsZero() && h.LastReplicas != s.Current {
		scales = append(scales[:len(scales):len(scales)], Scale{Time: h.LastTime, From: h.LastReplicas, To: s.Current})
	}
	memory := max(s.ScaleUp.Period, s.ScaleDown.Period, s.ScaleUp.StabilizationWindow)
	for _, sc := range scales {
		if sc.Time.After(now.Add(-memory)) {
			out.Scales = append(out.Scales, sc)
		}
	}
	window := max(s.ScaleUp.StabilizationWindow, s.ScaleDown.StabilizationWindow)
	out.Recommendations = append(out.Recommendations, inForceSince(h.Recommendations, now.Add(-window))...)
	if n := len(out.Recommendations); n == 0 || out.Recommendations[n-1].Replicas != rec {
		out.Recommendations = append(out.Recommendations, Recommendation{Time: now, Replicas: rec})
	}
	return out
}

// inForceSince returns the recommendations in force at some time after
// cutoff: those made after it, and the one made last before it.
func inForceSince(recs []Recommendation, cutoff time.Time) []Recommendation {
	i := 0
	for i < len(recs) && !recs[i].Time.After(cutoff) {
		i++
	}
	return recs[max(i-1, 0):]
}

// stabilize turns the recommendation into the count to set now. Growth is
// held to the lowest count recommended within the scale-up window, cut to
// MaxStep per period, and a +1 right after a scale-down is held
// (hysteresis). A scale-down is applied at once unless ScaleDown is set,
// and even then at once when pending paid pods are waiting for the room.
// Min and Max stay hard bounds. held says what held the count back, if anything.
func stabilize(now time.Time, s *Scaler, h *History, rec int32, limit Limit) (desired int32, _ Limit, held string) {
	cur := s.Current
	switch {
	case rec > cur:
		desired, limit, held = stabilizeUp(now, s, h, rec, limit)
		if desired < s.Min {
			desired, limit, held = s.Min, LimitMin, ""
		}
	case rec < cur && limit != LimitPendingPaid:
		desired, limit, held = stabilizeDown(now, s, h, rec, limit)
		if desired > max(s.Max, s.Min) {
			desired, limit, held = max(s.Max, s.Min), LimitMax, ""
		}
	default:
		desired = rec
	}
	return desired, limit, held
}

func stabilizeUp(now time.Time, s *Scaler, h *History, rec int32, limit Limit) (int32, Limit, string) {
	cur, b := s.Current, s.ScaleUp
	desired := rec
	if b.StabilizationWindow > 0 {
		if low := lowest(inForceSince(h.Recommendations, now.Add(-b.StabilizationWindow))); low < desired {
			desired = max(low, cur)
			limit = LimitStabilized
		}
	}
	if b.MaxStep > 0 {
		if ceiling := cur + max(b.MaxStep-h.changed(now.Add(-b.Period), +1), 0); desired > ceiling {
			desired, limit = ceiling, LimitStepLimit
		}
	}
	if desired == cur+1 && h.shrankSince(now.Add(-b.StabilizationWindow)) {
		desired, limit = cur, LimitStabilized
	}
	switch limit {
	case LimitStabilized:
		return desired, limit, fmt.Sprintf("scale-up from %d to %d held at %d by the %s stabilization window", cur, rec, desired, b.StabilizationWindow)
	case LimitStepLimit:
		return desired, limit, fmt.Sprintf("scale-up from %d to %d limited to %d by max step %d per %s", cur, rec, desired, b.MaxStep, b.Period)
	}
	return desired, limit, ""
}

func stabilizeDown(now time.Time, s *Scaler, h *History, rec int32, limit Limit) (int32, Limit, string) {
	cur, b := s.Current, s.ScaleDown
	desired := rec
	if b.StabilizationWindow > 0 {
		if high := highest(inForceSince(h.Recommendations, now.Add(-b.StabilizationWindow))); high > desired {
			desired = min(high, cur)
			limit = LimitStabilized
		}
	}
	if b.MaxStep > 0 {
		if floor := cur - max(b.MaxStep-h.changed(now.Add(-b.Period), -1), 0); desired < floor {
			desired, limit = floor, LimitStepLimit
		}
	}
	switch limit {
	case LimitStabilized:
		return desired, limit, fmt.Sprintf("scale-down from %d to %d held at %d by the %s scale-down window", cur, rec, desired, b.StabilizationWindow)
	case LimitStepLimit:
		return desired, limit, fmt.Sprintf("scale-down from %d to %d limited to %d by max step %d per %s", cur, rec, desired, b.MaxStep, b.Period)
	}
	return desired, limit, ""
}

// changed sums the replicas added (direction +1) or removed (-1) by the
// scales after cutoff.
func (h *History) changed(cutoff time.Time, direction int32) int32 {
	var sum int32
	for _, sc := range h.Scales {
		if d := (sc.To - sc.From) * direction; d > 0 && sc.Time.After(cutoff) {
			sum += d
		}
	}
	return sum
}

// shrankSince reports whether the latest scale was a scale-down after cutoff.
func (h *History) shrankSince(cutoff time.Time) bool {
	last, ok := h.LastScale()
	return ok && last.To < last.From && last.Time.After(cutoff)
}

func lowest(recs []Recommendation) int32 {
	low := recs[0].Replicas
	for _, r := range recs[1:] {
		low = min(low, r.Replicas)
	}
	return low
}

func highest(recs []Recommendation) int32 {
	high := recs[0].Replicas
	for _, r := range recs[1:] {
		high = max(high, r.Replicas)
	}
	return high
}
