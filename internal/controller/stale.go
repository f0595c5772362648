package controller

import (
	"fmt"
	"time"
)

// StaleBehaviour is what the controller does once the capacity data has
// been stale (watch broken, API server not answering) for longer than
// StalePolicy.After.
type StaleBehaviour string

// The behaviours --on-stale accepts.
const (
	// StaleFreeze holds every target at its current count: no write is
	// better than a wrong one.
	StaleFreeze StaleBehaviour = "freeze"
	// StaleShrinkToMin scales every target down to its minReplicas: when
	// nothing can be known about paid load, opportunistic work gives its
	// room back. It never scales up.
	StaleShrinkToMin StaleBehaviour = "shrink-to-min"
)

// StaleBehaviours lists the accepted behaviours.
var StaleBehaviours = []StaleBehaviour{StaleFreeze, StaleShrinkToMin}

// StalePolicy is the configured reaction to stale data.
type StalePolicy struct {
	// After is how long data may be stale before Behaviour applies; before
	// that a round holds every target, as for a short blip.
	After     time.Duration
	Behaviour StaleBehaviour
}

// DefaultStalePolicy freezes after 30 s of stale data.
func DefaultStalePolicy() StalePolicy {
	return StalePolicy{After: 30 * time.Second, Behaviour: StaleFreeze}
}

// Valid reports whether the policy can be applied.
func (p StalePolicy) Valid() error {
	if p.After < 0 {
		return fmt.Errorf("stale-after must not be negative, got %s", p.After)
	}
	for _, b := range StaleBehaviours {
		if p.Behaviour == b {
			return nil
		}
	}
	return fmt.Errorf("on-stale must be %s or %s, got %q", StaleFreeze, StaleShrinkToMin, p.Behaviour)
}

// Applies reports whether data stale since since is, at now, stale for
// long enough that the configured behaviour applies.
func (p StalePolicy) Applies(since, now time.Time) bool {
	return now.Sub(since) >= p.After
}

// StaleOutcome is one scaler's treatment in a round on stale data.
type StaleOutcome struct {
	// Applied: the configured behaviour applies (else the round holds).
	Applied bool
	// Write and Desired: the count to write; only shrink-to-min writes, and
	// only downward.
	Write   bool
	Desired int32
	// Message says what is done, since when and why, for the status
	// condition and the Event.
	Message string
}

// DecideStale is what a round on data stale since since does to one scaler
// whose target is at current replicas (known is false when the target was
// not read, as under freeze) with bounds min. cause is why the data is stale.
func DecideStale(p StalePolicy, since, now time.Time, cause string, known bool, current, min int32) StaleOutcome {
	at := since.UTC().Format(time.RFC3339)
	if !p.Applies(since, now) {
		return StaleOutcome{Message: fmt.Sprintf("capacity data stale since %s: holding the current count; %s applies once stale for %s: %s", at, p.Behaviour, p.After, cause)}
	}
	out := StaleOutcome{Applied: true, Desired: current}
	if p.Behaviour == StaleShrinkToMin {
		// One message whatever the count, so the condition and its Event
		// change once per stale spell; the write has its own Event.
		out.Message = fmt.Sprintf("capacity data stale since %s, longer than %s: %s applied, scaling down to minReplicas %d (never up on stale data): %s", at, p.After, p.Behaviour, min, cause)
		if known && current > min {
			out.Write, out.Desired = true, min
		}
		return out
	}
	out.Message = fmt.Sprintf("capacity data stale since %s, longer than %s: %s applied, holding the current count: %s", at, p.After, p.Behaviour, cause)
	return out
}
