package history

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/forecast"
)

// fakePrometheus serves /api/v1/query_range as Prometheus does: one
// series whose value at t is f(t) (no sample where f returns NaN), or a
// bad_data error for a query containing "(((".
type fakePrometheus struct {
	mu      sync.Mutex
	queries []string
	series  int
	f       func(t time.Time) float64
}

func (p *fakePrometheus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query_range" {
		http.NotFound(w, r)
		return
	}
	r.ParseForm()
	q := r.Form.Get("query")
	p.mu.Lock()
	p.queries = append(p.queries, q)
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if strings.Contains(q, "(((") {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"1:4: parse error: unexpected end of input"}`)
		return
	}
	start, _ := strconv.ParseFloat(r.Form.Get("start"), 64)
	end, _ := strconv.ParseFloat(r.Form.Get("end"), 64)
	step, _ := strconv.ParseFloat(r.Form.Get("step"), 64)
	if (end-start)/step >= 11000 {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries"}`)
		return
	}
	var values [][2]any
	for ts := start; ts <= end; ts += step {
		v := p.f(time.Unix(int64(ts), 0))
		if !math.IsNaN(v) {
			values = append(values, [2]any{ts, strconv.FormatFloat(v, 'f', -1, 64)})
		}
	}
	var result []map[string]any
	for i := range max(p.series, 1) {
		result = append(result, map[string]any{"metric": map[string]string{"i": strconv.Itoa(i)}, "values": values})
	}
	json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "matrix", "result": result}})
}

func TestBackfillFetch(t *testing.T) {
	end := t0.Add(14*24*time.Hour + 30*time.Second) // off the grid: the last sample is the minute before
	p := &fakePrometheus{f: func(at time.Time) float64 {
		if at.Before(t0.Add(24 * time.Hour)) {
			return math.NaN() // Prometheus' retention starts a day in
		}
		return float64(at.Sub(t0) / time.Minute)
	}}
	srv := httptest.NewServer(p)
	defer srv.Close()
	b, err := NewBackfill(srv.URL, map[corev1.ResourceName]string{corev1.ResourceCPU: "cpu_requests_total"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := b.Fetch(context.Background(), t0.Add(3*time.Minute), end, 14*24*time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	s := h.Series(corev1.ResourceCPU)
	if !s.Start.Equal(t0.Add(time.Minute)) || len(s.Values) != 14*1440 {
		t.Fatalf("fetched %d samples from %s, want 14 days on the anchor's grid from %s", len(s.Values), s.Start, t0.Add(time.Minute))
	}
	if s.Gaps() != 1440-1 || s.Values[1440-1] != 1440 || s.Values[len(s.Values)-1] != 14*1440 {
		t.Errorf("%d gaps, sample at day 1 = %v, last = %v: want the first day a gap, then the minute number", s.Gaps(), s.Values[1440-1], s.Values[len(s.Values)-1])
	}
	if len(p.queries) != 3 {
		t.Errorf("%d queries, want 14 days split into 3 under Prometheus' 11,000 points", len(p.queries))
	}
}

func TestBackfillErrors(t *testing.T) {
	p := &fakePrometheus{f: func(time.Time) float64 { return 1 }}
	srv := httptest.NewServer(p)
	defer srv.Close()
	for _, addr := range []string{"localhost:9090", "ftp://x", "http://", "::"} {
		if _, err := NewBackfill(addr, DefaultQueries); err == nil || !strings.Contains(err.Error(), "not a Prometheus URL") {
			t.Errorf("NewBackfill(%q): err = %v", addr, err)
		}
	}
	fetch := func(q string) error {
		b, err := NewBackfill(srv.URL, map[corev1.ResourceName]string{corev1.ResourceCPU: q})
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Fetch(context.Background(), t0, t0, time.Hour, time.Minute)
		return err
	}
	if err := fetch("sum((("); err == nil || !strings.Contains(err.Error(), "not valid PromQL") || !strings.Contains(err.Error(), "parse error") {
		t.Errorf("bad query: err = %v", err)
	}
	p.series = 2
	if err := fetch("cpu_requests_total"); err == nil || !strings.Contains(err.Error(), "2 series, want one") {
		t.Errorf("two series: err = %v", err)
	}
	srv.Close()
	if err := fetch("x"); err == nil || !strings.Contains(err.Error(), "querying Prometheus for cpu") {
		t.Errorf("unreachable: err = %v", err)
	}
}

func TestParseQueries(t *testing.T) {
	if q, err := ParseQueries(nil); err != nil || q[corev1.ResourceCPU] == "" || q[corev1.ResourceMemory] == "" {
		t.Errorf("defaults = %v, %v", q, err)
	}
	q, err := ParseQueries([]string{`cpu=sum(cpu_requests_total{a="b"})`})
	if err != nil || len(q) != 1 || q[corev1.ResourceCPU] != `sum(cpu_requests_total{a="b"})` {
		t.Errorf("ParseQueries = %v, %v", q, err)
	}
	for _, bad := range [][]string{{"cpu_requests_total"}, {"cpu="}, {"cpu=a", "cpu=b"}, {`sum(x{a="b"})`}} {
		if _, err := ParseQueries(bad); err == nil {
			t.Errorf("ParseQueries(%q) succeeded", bad)
		}
	}
}

func TestFill(t *testing.T) {
	nan := math.NaN()
	cpu := corev1.ResourceCPU
	h := &forecast.History{Start: t0.Add(2 * time.Minute), Step: time.Minute, Keep: time.Hour, Demand: map[corev1.ResourceName][]float64{cpu: {5, nan, 7}}}
	past := &forecast.History{Start: t0, Step: time.Minute, Demand: map[corev1.ResourceName][]float64{cpu: {1, nan, 3, 4, 9, 10}}}
	got, n, err := Fill(h, past)
	if err != nil {
		t.Fatal(err)
	}
	want := &forecast.History{Start: t0, Step: time.Minute, Keep: time.Hour, Demand: map[corev1.ResourceName][]float64{cpu: {1, nan, 5, 4, 7}}}
	sameHistory(t, got, want)
	if n != 2 {
		t.Errorf("filled %d, want 2 (one before the history, one gap)", n)
	}
	if _, _, err := Fill(h, &forecast.History{Start: t0.Add(30 * time.Second), Step: time.Minute, Demand: map[corev1.ResourceName][]float64{cpu: {1}}}); err == nil {
		t.Error("a backfill off the grid was taken")
	}
	if got, n, _ := Fill(nil, past); n != 5 || got.Len() != 6 {
		t.Errorf("Fill(nil) = %d samples, %d filled", got.Len(), n)
	}
	// Minutes before Prometheus' first sample are not kept.
	if got, n, _ := Fill(nil, &forecast.History{Start: t0, Step: time.Minute, Demand: map[corev1.ResourceName][]float64{cpu: {nan, nan, 2, nan, 3}}}); n != 2 || !got.Start.Equal(t0.Add(2*time.Minute)) || got.Len() != 3 {
		t.Errorf("Fill(nil) of a backfill starting with gaps: %d samples from %s, %d filled; want 3 from the first known one", got.Len(), got.Start, n)
	}
	if got, _, _ := Fill(nil, &forecast.History{Start: t0, Step: time.Minute, Demand: map[corev1.ResourceName][]float64{cpu: {nan}}}); got != nil {
		t.Errorf("a backfill of gaps only gave %v, want no history", got)
	}
}
