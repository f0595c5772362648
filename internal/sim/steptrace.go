package sim

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"
)

// StepTraceHeader is the header of a per-step trace: what `opportunist
// simulate --trace-out` writes and what the end-to-end recorder writes for
// a run on a real control plane, so the two can be compared line by line.
var StepTraceHeader = []string{"strategy", "seconds", "workload", "desired", "current", "bound", "paid_pending", "free_cpu"}

// StepRow is one opportunistic workload at one instant.
type StepRow struct {
	Strategy string
	At       time.Duration
	Workload string
	// Desired is what the strategy last asked: the controller's
	// status.desiredReplicas, or the spec.replicas an HPA wrote.
	Desired int32
	// Current is the ReplicaSet's (Deployment's) spec.replicas.
	Current int32
	// Bound counts the workload's pods bound to a node and not terminating.
	Bound int32
	// PaidPending counts paid pods not bound, cluster-wide.
	PaidPending int
	// FreeCPU is allocatable minus the requests of bound pods, in
	// milli-cores, over Ready nodes.
	FreeCPU int64
}

// sameState reports whether two rows differ only in time.
func (r StepRow) sameState(o StepRow) bool {
	r.At = o.At
	return r == o
}

// WriteStepTrace writes rows as CSV with StepTraceHeader: seconds as a
// decimal, free_cpu in cores with three decimals.
func WriteStepTrace(w io.Writer, rows []StepRow) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(StepTraceHeader)
	for _, r := range rows {
		_ = cw.Write([]string{r.Strategy, strconv.FormatFloat(r.At.Seconds(), 'f', -1, 64), r.Workload,
			strconv.Itoa(int(r.Desired)), strconv.Itoa(int(r.Current)), strconv.Itoa(int(r.Bound)),
			strconv.Itoa(r.PaidPending), strconv.FormatFloat(float64(r.FreeCPU)/1000, 'f', 3, 64)})
	}
	cw.Flush()
	return cw.Error()
}

// ReadStepTrace parses what WriteStepTrace wrote.
func ReadStepTrace(r io.Reader) ([]StepRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(StepTraceHeader)
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("empty step trace: want the header %v", StepTraceHeader)
	}
	for i, h := range StepTraceHeader {
		if recs[0][i] != h {
			return nil, fmt.Errorf("step trace header %v, want %v", recs[0], StepTraceHeader)
		}
	}
	var rows []StepRow
	for n, rec := range recs[1:] {
		line := n + 2
		var ints [4]int64
		for i, col := range []int{3, 4, 5, 6} {
			if ints[i], err = strconv.ParseInt(rec[col], 10, 32); err != nil {
				return nil, fmt.Errorf("line %d: %s %q is not an integer", line, StepTraceHeader[col], rec[col])
			}
		}
		secs, err := strconv.ParseFloat(rec[1], 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: seconds %q is not a number", line, rec[1])
		}
		free, err := strconv.ParseFloat(rec[7], 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: free_cpu %q is not a number", line, rec[7])
		}
		rows = append(rows, StepRow{Strategy: rec[0], At: time.Duration(secs * float64(time.Second)), Workload: rec[2],
			Desired: int32(ints[0]), Current: int32(ints[1]), Bound: int32(ints[2]), PaidPending: int(ints[3]),
			FreeCPU: int64(free*1000 + 0.5*sign(free))})
	}
	return rows, nil
}

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}

// stepTrace records one strategy's run: a row per opportunistic workload
// at every step where something in it changed, and at the first and last
// steps.
type stepTrace struct {
	strategy string
	rows     []StepRow
	last     []StepRow // by workload: the state at the last step seen
	emitted  []bool    // by workload: last was emitted
}

// desiredReporter is a strategy that asks for a count of its own (the
// controller's status.desiredReplicas); for the others, what they asked is
// what they wrote: the current count.
type desiredReporter interface {
	desiredOf(workload int) int32
}

func (o *opportunist) desiredOf(i int) int32 { return o.desired[i] }

// record samples the world after a step.
func (t *stepTrace) record(w *world, s strategy) {
	if t.last == nil {
		t.last, t.emitted = make([]StepRow, len(w.opp)), make([]bool, len(w.opp))
	}
	free := w.allocCPU - w.boundPaidCPU - w.boundOppCPU
	if w.virtualOpp {
		free = w.allocCPU - w.boundPaidCPU
		for _, rs := range w.opp {
			free -= int64(rs.replicas) * rs.cpu
		}
	}
	first := len(t.rows) == 0
	for i, rs := range w.opp {
		r := StepRow{Strategy: t.strategy, At: w.now, Workload: rs.name, Current: rs.replicas, Desired: rs.replicas,
			PaidPending: w.pendingPaid, FreeCPU: free}
		if d, ok := s.(desiredReporter); ok {
			r.Desired = d.desiredOf(i)
		}
		if w.virtualOpp {
			r.Bound = rs.replicas
		} else {
			for _, p := range rs.active {
				if p.node >= 0 {
					r.Bound++
				}
			}
		}
		changed := first || !r.sameState(t.last[i])
		t.last[i], t.emitted[i] = r, changed
		if changed {
			t.rows = append(t.rows, r)
		}
	}
}

// finish emits the last step's rows not emitted yet.
func (t *stepTrace) finish() {
	for i, r := range t.last {
		if !t.emitted[i] {
			t.rows = append(t.rows, r)
		}
	}
}
