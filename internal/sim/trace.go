package sim

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// traceHeader is the first line every trace must have.
const traceHeader = "time_s,name,replicas"

// Trace is a paid-load trace: from time_s on, paid workload name wants
// replicas. See docs/simulate.md.
type Trace struct {
	File string
	rows map[string][]traceRow
	// order lists the workload names in the order they first appear.
	order []string
}

type traceRow struct {
	at       time.Duration
	replicas int32
	line     int
}

// ParseTrace reads a trace CSV. file names it in errors, which give the line
// and the column of every bad value.
func ParseTrace(file string, data []byte) (*Trace, error) {
	c := &errs{file: file}
	t := &Trace{File: file, rows: map[string][]traceRow{}}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	header := true
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// FieldPos is only defined for a record that was read: take the
			// line from the parse error (an unterminated quote panicked here).
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				c.add(pe.Line, "", "not valid CSV: %v", pe.Err)
			} else {
				c.add(0, "", "not valid CSV: %v", err)
			}
			return nil, c.err()
		}
		line, _ := r.FieldPos(0)
		if header {
			header = false
			got := strings.Join(trimAll(rec), ",")
			if got != traceHeader {
				c.add(line, "", "the header must be %q, got %q", traceHeader, got)
				return nil, c.err()
			}
			continue
		}
		if len(rec) != 3 {
			c.add(line, "", "want 3 fields (%s), got %d", traceHeader, len(rec))
			continue
		}
		rec = trimAll(rec)
		row := traceRow{line: line}
		before := len(c.list)
		secs, err := strconv.ParseFloat(rec[0], 64)
		if err != nil || secs < 0 || math.IsInf(secs, 0) || math.IsNaN(secs) || secs > maxSteps {
			c.add(line, "time_s", "%q is not a time in seconds from 0 to %d", rec[0], maxSteps)
		}
		row.at = time.Duration(secs * float64(time.Second))
		name := rec[1]
		if name == "" {
			c.add(line, "name", "must name a paid workload")
		}
		n, err := strconv.ParseInt(rec[2], 10, 32)
		if err != nil || n < 0 {
			c.add(line, "replicas", "%q is not a whole number of replicas, 0 or more", rec[2])
		}
		row.replicas = int32(n)
		if len(c.list) > before {
			continue
		}
		if _, ok := t.rows[name]; !ok {
			t.order = append(t.order, name)
		}
		for _, prev := range t.rows[name] {
			if prev.at == row.at {
				c.add(line, "time_s", "%s already has a row at %s s (line %d)", name, rec[0], prev.line)
			}
		}
		t.rows[name] = append(t.rows[name], row)
	}
	switch {
	case header:
		c.add(0, "", "the file is empty: want the header %q", traceHeader)
	case len(t.order) == 0 && len(c.list) == 0:
		c.add(0, "", "no rows after the header: add one row per change, like 0,web,2 (from 0 s, paid workload web wants 2 replicas)")
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	for _, rows := range t.rows {
		slices.SortStableFunc(rows, func(a, b traceRow) int { return int(a.at - b.at) })
	}
	return t, nil
}

func trimAll(rec []string) []string {
	out := make([]string, len(rec))
	for i, f := range rec {
		out[i] = strings.TrimSpace(f)
	}
	return out
}

// ApplyTrace makes the trace drive the paid workloads it names: their steps,
// repetition, noise and bursts give way to its rows; before its first row a
// workload keeps its replicas. A name that is not a paid workload of the
// scenario is an error, and the scenario is then left unchanged.
func (s *Scenario) ApplyTrace(t *Trace) error {
	c := &errs{file: t.File}
	for _, name := range t.order {
		if s.paidByName(name) == nil {
			known := make([]string, len(s.Paid))
			for i := range s.Paid {
				known[i] = s.Paid[i].Name
			}
			c.add(t.rows[name][0].line, "name", "%q is not a paid workload of scenario %s (paid: %s)", name, s.Name, strings.Join(known, ", "))
		}
	}
	if s.Duration > 0 {
		for _, name := range t.order {
			for _, r := range t.rows[name] {
				if r.at >= s.Duration {
					c.add(r.line, "time_s", "%s s is not before the end of scenario %s (duration %s, %s s): the row would never apply; drop it or lengthen the scenario's duration",
						strconv.FormatFloat(r.at.Seconds(), 'f', -1, 64), s.Name, s.Duration, strconv.FormatFloat(s.Duration.Seconds(), 'f', -1, 64))
				}
			}
		}
	}
	s.checkTracePods(c, t)
	if err := c.err(); err != nil {
		return err
	}
	for _, name := range t.order {
		p := s.paidByName(name)
		steps := make([]Step, len(t.rows[name]))
		for i, r := range t.rows[name] {
			steps[i] = Step{At: r.at, Replicas: r.replicas}
		}
		p.Load = Load{Replicas: p.Load.Replicas, Steps: steps, Traced: true}
	}
	return nil
}

// checkTracePods reports the trace row that takes the pods the scenario asks
// for at once past the simulator's limit.
func (s *Scenario) checkTracePods(c *errs, t *Trace) {
	var total int64
	var top traceRow
	for i := range s.Paid {
		p := &s.Paid[i]
		rows, traced := t.rows[p.Name]
		if !traced {
			total += p.Load.peak()
			continue
		}
		pk := int64(p.Load.Replicas)
		for _, r := range rows {
			pk = max(pk, int64(r.replicas))
			if r.replicas > top.replicas {
				top = r
			}
		}
		total += pk
	}
	for i := range s.Opportunistic {
		total += int64(max(s.Opportunistic[i].MaxReplicas, s.Opportunistic[i].Replicas))
	}
	if total > maxPods && top.line > 0 {
		c.add(top.line, "replicas", "%d replicas make %d pods in total with the other workloads at their peaks, more than the simulator's limit of %d (%s): lower it",
			top.replicas, total, maxPods, envelope)
	}
}
