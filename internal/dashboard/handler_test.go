package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC)

type fakeSource struct{}

func (fakeSource) State() State {
	return State{Time: t0, Origin: "test",
		Scenario: &Scenario{Name: "burst", Description: "a burst of paid load", Setting: "4 nodes, 32 cores", DurationSeconds: 2400, LoadChanges: 2},
		Views: []View{{
			Name:        "opportunist",
			Description: "this project's controller",
			Summary: &Summary{HarvestCoreHours: 70.9, InstantLawCoreHours: 71.8, HarvestOfInstantLaw: 0.987, BoundCoreHours: 72, HarvestOfBound: 0.984,
				OvershootCoreHours: 0.02, PaidPendingPodSeconds: 60, LongestPaidWaitSeconds: 6, ScaleEvents: 3, DirectionChanges: 2, UnschedulablePodHours: 0.5},
			Resources:   []Resource{{Name: "cpu", Unit: "cores", Allocatable: 32, Paid: 10, Opportunistic: 18, Line: 28.8}},
			Workloads:   []Workload{{Name: "batch", Current: 9, Desired: 9, Min: 0, Max: 40, LimitedBy: "Budget", Reason: "fills to the line"}},
			PendingPaid: PendingPaid{Pods: 2, OldestWaitSeconds: 4},
			Nodes:       []Node{{Name: "n-1", State: "Ready", CPU: NodeResource{Unit: "cores", Allocatable: 8, Paid: 2, Opportunistic: 4, Free: 2}, Pods: 3}},
			Decisions:   []Decision{{Time: t0, Workload: "batch", From: 7, To: 9, LimitedBy: "Budget", Reason: "room"}},
		}}}
}

func (fakeSource) History() History {
	return History{Views: []Series{{Name: "opportunist", Points: []Sample{
		{Time: t0, Resources: []Resource{{Name: "cpu", Unit: "cores", Allocatable: 32, Paid: 10, Opportunistic: 18, Line: 28.8}}, PendingPaidPods: 2},
	}}}}
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestStateJSON(t *testing.T) {
	rec := get(t, NewHandler(fakeSource{}), "/api/v1/state")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var raw map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"time", "origin", "finished", "views"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("state lacks %q: %s", k, rec.Body)
		}
	}
	view := raw["views"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "resources", "workloads", "pendingPaid", "nodes", "decisions"} {
		if _, ok := view[k]; !ok {
			t.Errorf("view lacks %q", k)
		}
	}
	var got State
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	w := got.Views[0].Workloads[0]
	if w.Name != "batch" || w.Current != 9 || w.Max != 40 || w.LimitedBy != "Budget" {
		t.Errorf("workload = %+v", w)
	}
	if r := got.Views[0].Resources[0]; r.Line != 28.8 || r.Paid != 10 {
		t.Errorf("resource = %+v", r)
	}
	if !got.Time.Equal(t0) {
		t.Errorf("time = %v", got.Time)
	}
}

func TestHistoryJSON(t *testing.T) {
	rec := get(t, NewHandler(fakeSource{}), "/api/v1/history")
	var got History
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Views) != 1 || len(got.Views[0].Points) != 1 || got.Views[0].Points[0].Resources[0].Allocatable != 32 {
		t.Errorf("history = %+v", got)
	}
}

func TestStreamDeliversStates(t *testing.T) {
	srv := httptest.NewServer(NewHandler(fakeSource{}, WithStreamInterval(10*time.Millisecond)))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() && events < 2 {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var s State
		if err := json.Unmarshal([]byte(data), &s); err != nil {
			t.Fatalf("event data: %v", err)
		}
		if s.Origin != "test" {
			t.Errorf("origin = %q", s.Origin)
		}
		events++
	}
	if events < 2 {
		t.Fatalf("got %d events, want 2 (%v)", events, sc.Err())
	}
}

func TestUnknownPaths404(t *testing.T) {
	h := NewHandler(fakeSource{})
	for _, p := range []string{"/nope", "/api/v1/nope", "/api/v2/state", "/assets/app.js", "/a/b"} {
		if rec := get(t, h, p); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, rec.Code)
		}
	}
}

func TestAssetsContentTypes(t *testing.T) {
	h := NewHandler(fakeSource{})
	for path, want := range map[string]string{
		"/":           "text/html; charset=utf-8",
		"/index.html": "text/html; charset=utf-8",
		"/style.css":  "text/css; charset=utf-8",
		"/app.js":     "text/javascript; charset=utf-8",
	} {
		rec := get(t, h, path)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != want {
			t.Errorf("GET %s: %d %q, want 200 %q", path, rec.Code, rec.Header().Get("Content-Type"), want)
		}
	}
	if body := get(t, h, "/").Body.String(); !strings.Contains(body, `src="app.js"`) || !strings.Contains(body, `href="style.css"`) {
		t.Errorf("index does not load its assets relatively")
	}
}

func TestPrefix(t *testing.T) {
	h := NewHandler(fakeSource{}, WithPrefix("/dashboard"))
	if rec := get(t, h, "/dashboard/api/v1/state"); rec.Code != http.StatusOK {
		t.Errorf("prefixed state: %d", rec.Code)
	}
	if rec := get(t, h, "/dashboard/"); rec.Code != http.StatusOK {
		t.Errorf("prefixed page: %d", rec.Code)
	}
}

// The page must work with no network: no asset names an external URL.
func TestNoExternalURLs(t *testing.T) {
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := assets.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		data, err := io.ReadAll(f)
		if err != nil {
			return err
		}
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(string(data), bad) {
				t.Errorf("%s contains %q", path, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A stream ends when the handler's context does: a graceful shutdown does
// not wait for open pages.
func TestStreamEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(NewHandler(fakeSource{}, WithContext(ctx), WithStreamInterval(time.Hour)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cancel()
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(resp.Body); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("reading the stream: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open 5s after the context ended")
	}
}

// slotSource serves a workload keeping headroom slots beside one without.
type slotSource struct{ fakeSource }

func (slotSource) State() State {
	s := fakeSource{}.State()
	s.Views[0].Workloads = append(s.Views[0].Workloads, Workload{Name: "worker", Current: 50, Desired: 48, Max: 200, LimitedBy: "Slots",
		Reason: "3 of 4 web slots fit: yielding 2 replicas on node kontron-28-1",
		Slots:  []SlotFit{{Name: "web", Wanted: 4, Fit: 3, Nodes: []NodeSlots{{Node: "kontron-32-1", Slots: 2}, {Node: "kontron-32-3", Slots: 1}}}}})
	return s
}

// TestStateSlots: a workload with slots says how many of each shape fit
// ("web 3/4") and where; one without has no slots field at all.
func TestStateSlots(t *testing.T) {
	rec := get(t, NewHandler(slotSource{}), "/api/v1/state")
	var raw struct {
		Views []struct {
			Workloads []map[string]json.RawMessage `json:"workloads"`
		} `json:"views"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	ws := raw.Views[0].Workloads
	if _, ok := ws[0]["slots"]; ok {
		t.Errorf("workload without slots has a slots field: %s", ws[0]["slots"])
	}
	want := `[{"name":"web","wanted":4,"fit":3,"nodes":[{"node":"kontron-32-1","slots":2},{"node":"kontron-32-3","slots":1}]}]`
	if got := string(ws[1]["slots"]); got != want {
		t.Errorf("slots = %s\nwant %s", got, want)
	}
	if js := get(t, NewHandler(slotSource{}), "/app.js").Body.String(); !strings.Contains(js, "function slotsRow(w)") || !strings.Contains(js, "${s.fit}/${s.wanted}") {
		t.Errorf("app.js does not draw the slots badge (\"web 3/4\")")
	}
}

// forecastSource serves a live cluster's predicting workload.
type forecastSource struct{ fakeSource }

func (forecastSource) State() State {
	s := fakeSource{}.State()
	four, six := 4.0, 6.0
	peakAt := t0.Add(2 * time.Minute)
	s.Views[0].Forecasts = []Forecast{{Workload: "batch", Resource: "cpu", Unit: "cores", Forecaster: "SeasonalNaive", StepSeconds: 60,
		ObservedStart: t0.Add(-3 * time.Minute), Observed: []*float64{&four, nil, &six}, ForecastStart: &t0, Forecast: []float64{6, 40, 40},
		Band: 2.5, Peak: 44, PeakTime: &peakAt}}
	return s
}

// TestStateForecasts: a predicting workload's forecast carries its band,
// a gap as null, and a unit beside every number; the demo's state (no
// forecasts) has no forecasts field; the page draws them.
func TestStateForecasts(t *testing.T) {
	var raw struct {
		Views []map[string]json.RawMessage `json:"views"`
	}
	if err := json.Unmarshal(get(t, NewHandler(fakeSource{}), "/api/v1/state").Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if f, ok := raw.Views[0]["forecasts"]; ok {
		t.Errorf("a view without forecasts (the demo) has a forecasts field: %s", f)
	}
	if err := json.Unmarshal(get(t, NewHandler(forecastSource{}), "/api/v1/state").Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	want := `[{"workload":"batch","resource":"cpu","unit":"cores","forecaster":"SeasonalNaive","stepSeconds":60,` +
		`"observedStart":"2026-01-01T00:02:00Z","observed":[4,null,6],"forecastStart":"2026-01-01T00:05:00Z","forecast":[6,40,40],` +
		`"band":2.5,"peak":44,"peakTime":"2026-01-01T00:07:00Z"}]`
	if got := string(raw.Views[0]["forecasts"]); got != want {
		t.Errorf("forecasts = %s\nwant %s", got, want)
	}
	if js := get(t, NewHandler(forecastSource{}), "/app.js").Body.String(); !strings.Contains(js, "function forecastChart(svg, f)") || !strings.Contains(js, "p.v + f.band") {
		t.Errorf("app.js does not draw the forecast with its band")
	}
	if html := get(t, NewHandler(forecastSource{}), "/").Body.String(); !strings.Contains(html, `id="forecast-card" hidden`) {
		t.Errorf("index.html has no forecast card hidden until a forecast comes")
	}
}
