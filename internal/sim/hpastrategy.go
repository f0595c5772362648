package sim

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/opportunist/opportunist/internal/control"
)

// hpaStrategy runs one HorizontalPodAutoscaler per opportunistic workload,
// synced as the v1.37 controller does: first at FirstSync, then each
// SyncPeriod after the previous sync was processed. It reads the metrics
// opportunist serves: cpu_capacity_remaining (milli-cores, allocatable
// minus the requests of every bound pod, as the exporter serves it) and
// opportunist_desired_replicas (from the opportunist controller in dry run:
// it decides and publishes, the HPA writes).
type hpaStrategy struct {
	name string
	hpas []*hpa
	next []time.Duration // each HPA's next sync
	ctl  *opportunist    // nil unless an HPA reads opportunist_desired_replicas
}

func newHPAStrategy(name string, sc *Scenario, w *world) (*hpaStrategy, error) {
	cfg := HPAConfigOf(sc, name)
	s := &hpaStrategy{name: name}
	for i := range sc.Opportunistic {
		spec, err := hpaSpecFor(name, cfg, &sc.Opportunistic[i], control.KeptFree(&w.scalers[i], corev1.ResourceCPU, w.allocCPU))
		if err != nil {
			return nil, err
		}
		h := newHPA(spec, cfg.Controller)
		s.hpas = append(s.hpas, h)
		s.next = append(s.next, cfg.Controller.FirstSync)
		if usesDesired(&spec) && s.ctl == nil {
			s.ctl = newOpportunist(sc, w, true)
		}
		// The workload was at least at the HPA's minimum when the HPA was created.
		w.opp[i].replicas = max(w.opp[i].replicas, h.min)
	}
	return s, nil
}

func (s *hpaStrategy) act(w *world) {
	if s.ctl != nil {
		s.ctl.act(w)
	}
	var remaining *int64 // read once a step, when a sync needs it
	m := metricValues{
		object: func(string) (int64, error) { // cpuRemainingMetric: the only Object metric checked in
			if remaining == nil {
				cpu, _ := w.ledger.ReadyResource(corev1.ResourceCPU)
				// The custom metrics API serves the milli-cores as a plain
				// number; the controller reads its milli-value.
				v := cpu.Remaining * 1000
				remaining = &v
			}
			return *remaining, nil
		},
		external: func(_ string, sel labels.Selector) (int64, error) { // desiredMetric
			var sum int64
			found := false
			for i, rs := range w.opp {
				if sel.Matches(labels.Set{scalerLabel: rs.name}) {
					sum += int64(s.ctl.desired[i]) * 1000
					found = true
				}
			}
			if !found {
				return 0, fmt.Errorf("no decision for the OpportunisticScaler %v selects", sel)
			}
			return sum, nil
		},
	}
	for i, rs := range w.opp {
		h := s.hpas[i]
		for s.next[i] <= w.now {
			at := s.next[i]
			st := scaleState{spec: rs.replicas, status: int32(len(rs.active)), ready: rs.ready, pods: int32(len(rs.active))}
			n, _ := h.reconcile(at, rs.replicas, func() int32 { return h.proposal(st, m) })
			w.scale(rs, n)
			s.next[i] = at + h.flags.ProcessingTime + h.flags.SyncPeriod
		}
	}
}

// why says in a sentence what sets workload i's size.
func (s *hpaStrategy) why(i int) string {
	h := s.hpas[i]
	var metrics []string
	for _, m := range h.spec.Metrics {
		switch m.Type {
		case autoscalingv2.ObjectMetricSourceType:
			metrics = append(metrics, fmt.Sprintf("Object %s %s %s", m.Object.Metric.Name, m.Object.Target.Type, targetValue(m.Object.Target)))
		case autoscalingv2.ExternalMetricSourceType:
			metrics = append(metrics, fmt.Sprintf("External %s %s %s", m.External.Metric.Name, m.External.Target.Type, targetValue(m.External.Target)))
		}
	}
	behavior := "no behavior"
	if h.spec.Behavior != nil {
		behavior = fmt.Sprintf("behavior: up window %ds, down window %s", *h.spec.Behavior.ScaleUp.StabilizationWindowSeconds, downWindow(h))
	}
	return fmt.Sprintf("%s: the HPA on %s, %s, syncing every %s", s.name, strings.Join(metrics, ", "), behavior, h.flags.SyncPeriod)
}

// targetValue prints a target as a manifest would ("30000", not "30k").
func targetValue(t autoscalingv2.MetricTarget) string {
	q := t.Value
	if q == nil {
		q = t.AverageValue
	}
	if q == nil {
		return "?"
	}
	if m := q.MilliValue(); m%1000 == 0 {
		return strconv.FormatInt(m/1000, 10)
	}
	return q.String()
}

func downWindow(h *hpa) string {
	if w := h.spec.Behavior.ScaleDown.StabilizationWindowSeconds; w != nil {
		return fmt.Sprintf("%ds", *w)
	}
	return h.flags.DownscaleStabilization.String()
}

// HPAConfigOf is the HPA and controller flags strategy name runs with in
// scenario sc: the scenario's hpa: entry for it, else the preset.
func HPAConfigOf(sc *Scenario, name string) HPAConfig {
	if cfg, ok := sc.HPA[name]; ok {
		return cfg
	}
	return hpaPresets()[name]
}
