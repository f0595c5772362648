package sim

import "time"

// killedYoungAge: an opportunistic pod stopped this soon after it started
// did little work before it was thrown away (issue 14's
// opportunisticPodsKilledYoung).
const killedYoungAge = 5 * time.Minute

// countKilledYoung counts a bound opportunistic pod that is being stopped
// (scaled down, yielded, preempted or evicted) within killedYoungAge of
// being bound. Pods deleted while pending never started and do not count.
func (w *world) countKilledYoung(p *pod) {
	if p.rs.paid || p.node < 0 {
		return
	}
	bound := p.readyAt - p.rs.pods.Startup
	if w.now-bound < killedYoungAge {
		w.killedYoung++
	}
}
