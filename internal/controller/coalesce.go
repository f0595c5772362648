package controller

import "time"

// roundSpacing spaces the starts of rounds by at least min: the events of
// a burst that arrive within min of a round's start wait for the rest of it
// and are then all served by one round. A round is never put off by more
// than min. A paid pod that the last round did not see pending does not
// wait for the interval: its round runs once urgent has passed since the
// last start (a tenth of min), so a burst of paid pods still coalesces.
type roundSpacing struct {
	min       time.Duration
	lastStart time.Time
}

// urgent is the spacing of rounds run early for new pending paid pods.
func (s *roundSpacing) urgent() time.Duration { return s.min / 10 }

// early starts a round now, before the interval ends, unless the last one
// started less than urgent ago; it returns how long to wait otherwise.
func (s *roundSpacing) early(now time.Time) time.Duration {
	if left := s.lastStart.Add(s.urgent()).Sub(now); left > 0 {
		return left
	}
	s.lastStart = now
	return 0
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
