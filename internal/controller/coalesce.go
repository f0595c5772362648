package controller

import "time"

// roundSpacing spaces the starts of rounds by at least min: the events of
// a burst that arrive within min of a round's start wait for the rest of it
// and are then all served by one round. A round is never put off by more
// than min, so a pending paid pod waits at most that long for its round.
type roundSpacing struct {
	min       time.Duration
	lastStart time.Time
}

// wait says how long a round asked for at now must wait; zero means it may
// start now, which is then recorded as the last start.
func (s *roundSpacing) wait(now time.Time) time.Duration {
	if s.min > 0 && !s.lastStart.IsZero() {
		if left := s.lastStart.Add(s.min).Sub(now); left > 0 {
			return left
		}
	}
	s.lastStart = now
	return 0
}
