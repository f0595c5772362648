package history

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/forecast"
)

// DefaultQueries read the paid demand of the usable pool from
// opportunist's own metrics, in the history's units (milli-cores, bytes):
// requests of bound paid pods plus those of pending paid pods. They are
// cluster-wide, not per scaler: a scaler with a narrower pool gets the
// whole pool's demand until its own history replaces it.
var DefaultQueries = map[corev1.ResourceName]string{
	corev1.ResourceCPU:    `1000 * (sum(opportunist_pool_requests{class="paid",resource="cpu"}) + (sum(opportunist_pending_paid_requests{resource="cpu"}) or vector(0)))`,
	corev1.ResourceMemory: `sum(opportunist_pool_requests{class="paid",resource="memory"}) + (sum(opportunist_pending_paid_requests{resource="memory"}) or vector(0))`,
}

// maxPointsPerQuery stays under Prometheus' limit of 11,000 points per
// series in one range query.
const maxPointsPerQuery = 10_000

// Backfill reads past demand from a Prometheus.
type Backfill struct {
	API promv1.API
	// Queries return one series each, in the history's units, per resource.
	Queries map[corev1.ResourceName]string
}

// ParseQueries reads "resource=promql" flag values; none gives
// DefaultQueries. Each resource may appear once.
func ParseQueries(flags []string) (map[corev1.ResourceName]string, error) {
	if len(flags) == 0 {
		return DefaultQueries, nil
	}
	out := map[corev1.ResourceName]string{}
	for _, f := range flags {
		name, q, ok := strings.Cut(f, "=")
		name, q = strings.TrimSpace(name), strings.TrimSpace(q)
		if !ok || name == "" || q == "" || strings.ContainsAny(name, " ({\"") {
			return nil, fmt.Errorf("%q: want resource=promql, e.g. cpu=cpu_requests_total (in milli-cores) or memory=sum(...) (in bytes)", f)
		}
		if _, dup := out[corev1.ResourceName(name)]; dup {
			return nil, fmt.Errorf("resource %s is given twice", name)
		}
		out[corev1.ResourceName(name)] = q
	}
	return out, nil
}

// NewBackfill checks the address (an http or https URL) and builds the
// client.
func NewBackfill(address string, queries map[corev1.ResourceName]string) (*Backfill, error) {
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not a Prometheus URL: want http(s)://host:port[/prefix]", address)
	}
	c, err := api.NewClient(api.Config{Address: address})
	if err != nil {
		return nil, fmt.Errorf("%q: %w", address, err)
	}
	return &Backfill{API: promv1.NewAPI(c), Queries: queries}, nil
}

// Fetch reads the span before end at step, on the grid of anchor (any
// instant of the history's grid, so what it returns lines up with it). A
// minute Prometheus has no sample for is a gap.
func (b *Backfill) Fetch(ctx context.Context, anchor, end time.Time, span, step time.Duration) (*forecast.History, error) {
	if step <= 0 || span <= 0 {
		return nil, fmt.Errorf("backfill: step %v and span %v must be positive", step, span)
	}
	// The first grid instant at or after end-span, the last at or before end.
	from := anchor.Add(-time.Duration(math.Floor(float64(anchor.Sub(end.Add(-span)))/float64(step))) * step)
	n := int(end.Sub(from)/step) + 1
	if n <= 0 {
		return forecast.NewHistory(from, step, 0), nil
	}
	h := forecast.NewHistory(from, step, 0)
	names := make([]corev1.ResourceName, 0, len(b.Queries))
	for name := range b.Queries {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		vs := gapsOf(n)
		for lo := 0; lo < n; lo += maxPointsPerQuery {
			hi := min(lo+maxPointsPerQuery, n) - 1
			r := promv1.Range{Start: from.Add(time.Duration(lo) * step), End: from.Add(time.Duration(hi) * step), Step: step}
			if err := b.query(ctx, name, r, from, vs); err != nil {
				return nil, err
			}
		}
		h.Demand[name] = vs
	}
	return h, nil
}

func (b *Backfill) query(ctx context.Context, name corev1.ResourceName, r promv1.Range, from time.Time, into []float64) error {
	q := b.Queries[name]
	v, _, _, err := b.API.QueryRange(ctx, q, r)
	if err != nil {
		var perr *promv1.Error
		if errors.As(err, &perr) && perr.Type == promv1.ErrBadData {
			return fmt.Errorf("the %s query %q is not valid PromQL: %s", name, q, perr.Msg)
		}
		return fmt.Errorf("querying Prometheus for %s (%q): %w", name, q, err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return fmt.Errorf("the %s query %q returned a %s, want a range vector", name, q, v.Type())
	}
	if len(m) > 1 {
		return fmt.Errorf("the %s query %q returned %d series, want one (aggregate it, e.g. sum(...))", name, q, len(m))
	}
	for _, s := range m {
		for _, p := range s.Values {
			off := p.Timestamp.Time().Sub(from)
			i := int(off / r.Step)
			if off%r.Step != 0 || i < 0 || i >= len(into) {
				continue // off the grid: Prometheus answers on start + k*step only
			}
			if f := float64(p.Value); !math.IsNaN(f) && !math.IsInf(f, 0) {
				into[i] = f
			}
		}
	}
	return nil
}

func gapsOf(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.NaN()
	}
	return out
}

// Fill returns h with its gaps filled from past, on the same step and
// grid: where h has a sample it is kept; where h has a gap, or starts
// later than past, past's sample is used. h nil gives a copy of past.
// It returns how many samples were filled. Samples of past after the end
// of h are not taken: the recorder continues from h's end.
func Fill(h, past *forecast.History) (*forecast.History, int, error) {
	if past == nil {
		return h, 0, nil
	}
	// Prometheus' retention may start later than the span asked: leading
	// minutes it knows nothing of are not kept.
	first := past.Len()
	for _, vs := range past.Demand {
		for i, v := range vs {
			if !math.IsNaN(v) {
				first = min(first, i)
				break
			}
		}
	}
	if first == past.Len() {
		return h, 0, nil // nothing known
	}
	trimmed := forecast.NewHistory(past.Start.Add(time.Duration(first)*past.Step), past.Step, past.Keep)
	for name, vs := range past.Demand {
		trimmed.Demand[name] = vs[min(first, len(vs)):]
	}
	past = trimmed
	if h == nil {
		out := forecast.NewHistory(past.Start, past.Step, past.Keep)
		n := 0
		for name, vs := range past.Demand {
			out.Demand[name] = slices.Clone(vs)
			for _, v := range vs {
				if !math.IsNaN(v) {
					n++
				}
			}
		}
		return out, n, nil
	}
	if h.Step != past.Step || h.Start.Sub(past.Start)%h.Step != 0 {
		return h, 0, fmt.Errorf("backfill: its grid (%v from %s) does not line up with the history's (%v from %s)", past.Step, past.Start.Format(time.RFC3339), h.Step, h.Start.Format(time.RFC3339))
	}
	start := h.Start
	if past.Start.Before(start) {
		start = past.Start
	}
	lead := int(h.Start.Sub(start) / h.Step) // steps prepended before h
	length := lead + h.Len()
	out := forecast.NewHistory(start, h.Step, h.Keep)
	filled := 0
	names := map[corev1.ResourceName]bool{}
	for name := range h.Demand {
		names[name] = true
	}
	for name := range past.Demand {
		names[name] = true
	}
	pastOff := int(past.Start.Sub(start) / h.Step)
	for name := range names {
		vs := gapsOf(length)
		for i, v := range h.Demand[name] {
			vs[lead+i] = v
		}
		for i, v := range past.Demand[name] {
			j := pastOff + i
			if j >= length || math.IsNaN(v) || !math.IsNaN(vs[j]) {
				continue
			}
			vs[j] = v
			filled++
		}
		out.Demand[name] = vs
	}
	return out, filled, nil
}
