package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/dashboard"
	"github.com/opportunist/opportunist/internal/sim"
)

func TestDemoOptionsValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*demoOptions)
		want   []string
	}{
		{name: "defaults", mutate: func(*demoOptions) {}},
		{name: "no comparison", mutate: func(o *demoOptions) { o.Compare = "" }},
		{name: "a file replaces the built-in", mutate: func(o *demoOptions) { o.Scenario, o.ScenarioFile = "", "x.yaml" }},
		{name: "every problem at once", mutate: func(o *demoOptions) {
			o.Scenario, o.Strategy, o.Compare, o.Speed, o.Listen = "monday", "instant-law", "pid", 0, "8090"
		}, want: []string{
			`--scenario "monday" is not built in (built in: daily-checkpoint, daily-office, diurnal, fragmented, idle-requests, random-bursts, seed-burst, spiky, tainted-pool, web-headroom, web-headroom-priority, web-slots, web-slots-priority)`,
			`--strategy "instant-law" is not one of opportunist, hpa-writeup, hpa-example, hpa-averagevalue`,
			`--compare "pid" is not one of opportunist, hpa-writeup, hpa-example, hpa-averagevalue`,
			`--speed must be above 0 and at most 100000, got 0`,
			`--listen "8090" is not host:port`,
		}},
		{name: "compare with itself", mutate: func(o *demoOptions) { o.Compare = o.Strategy }, want: []string{`--compare "opportunist" is the --strategy already shown`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := defaultDemoOptions()
			tt.mutate(o)
			errs := o.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], w)
				}
			}
		})
	}
}

func TestDemoCommandRejectsFlagsInOneLine(t *testing.T) {
	root := NewRoot("opportunist")
	root.SetArgs([]string{"demo", "--speed", "-1", "--strategy", "instant-law"})
	root.SetOut(io.Discard)
	err := root.Execute()
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "invalid flags: ") {
		t.Fatalf("error = %v, want one line of invalid flags", err)
	}
}

// The demo at high speed serves states with data from both strategies.
func TestDemoServesLiveState(t *testing.T) {
	o := defaultDemoOptions()
	o.Speed = 5000
	src, err := o.newSource()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.play(ctx, o.Speed)
	srv := httptest.NewServer(dashboard.NewHandler(src))
	defer srv.Close()

	deadline := time.Now().Add(10 * time.Second)
	var st dashboard.State
	for {
		getJSON(t, srv.URL+"/api/v1/state", &st)
		if st.Time.Sub(demoEpoch) > 2*time.Minute && len(st.Views[0].Decisions) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no decisions after 10s: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(st.Views) != 2 || st.Views[0].Name != "opportunist" || st.Views[1].Name != "hpa-writeup" {
		t.Fatalf("views = %+v", st.Views)
	}
	v := st.Views[0]
	if cpu := v.Resources[0]; cpu.Name != "cpu" || cpu.Allocatable <= 0 || cpu.Paid <= 0 || cpu.Line >= cpu.Allocatable {
		t.Errorf("cpu = %+v", cpu)
	}
	if len(v.Workloads) == 0 || v.Workloads[0].LimitedBy == "" || v.Workloads[0].Max == 0 {
		t.Errorf("workloads = %+v", v.Workloads)
	}
	if len(v.Nodes) == 0 || v.Nodes[0].CPU.Allocatable <= 0 {
		t.Errorf("nodes = %+v", v.Nodes)
	}
	var h dashboard.History
	getJSON(t, srv.URL+"/api/v1/history", &h)
	if len(h.Views) != 2 || len(h.Views[0].Points) < 2 || len(h.Views[0].Points) > maxSamples {
		t.Errorf("history has %d views, %d points", len(h.Views), len(h.Views[0].Points))
	}
}

// demo prints the URL to open and serves the page there until stopped.
func TestDemoRunPrintsURL(t *testing.T) {
	o := defaultDemoOptions()
	o.Listen, o.Speed = "127.0.0.1:0", 1000
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.run(ctx, out) }()
	url := regexp.MustCompile(`http://\S+/`)
	deadline := time.Now().Add(5 * time.Second)
	for url.FindString(out.String()) == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no URL printed: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get(url.FindString(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("page: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// viewOf hands the control law's slot fits to the dashboard as they are.
func TestViewOfSlots(t *testing.T) {
	snap := sim.LiveSnapshot{Strategy: sim.Opportunist, Workloads: []sim.LiveWorkload{
		{Name: "plain"},
		{Name: "worker", Slots: []control.SlotFit{{Name: "web", Wanted: 4, Fit: 3, Nodes: []control.NodeSlots{{Node: "kontron-32-1", Slots: 3}}}}},
	}}
	v := viewOf(snap)
	if v.Workloads[0].Slots != nil {
		t.Errorf("a workload without slots shows %+v", v.Workloads[0].Slots)
	}
	want := []dashboard.SlotFit{{Name: "web", Wanted: 4, Fit: 3, Nodes: []dashboard.NodeSlots{{Node: "kontron-32-1", Slots: 3}}}}
	if got := v.Workloads[1].Slots; !reflect.DeepEqual(got, want) {
		t.Errorf("slots = %+v, want %+v", got, want)
	}
}

// The demo of a scenario with headroom slots shows how many fit ("web 4/4")
// once the controller has decided.
func TestDemoShowsSlots(t *testing.T) {
	o := defaultDemoOptions()
	o.Scenario, o.Compare = "web-slots", ""
	src, err := o.newSource()
	if err != nil {
		t.Fatal(err)
	}
	src.advance(60)
	st := src.State()
	ws := st.Views[0].Workloads
	if len(ws) != 1 || len(ws[0].Slots) != 1 {
		t.Fatalf("workloads = %+v, want the worker with its one slot", ws)
	}
	if s := ws[0].Slots[0]; s.Name != "web" || s.Wanted != 4 || s.Fit < 0 || s.Fit > 4 || len(s.Nodes) == 0 {
		t.Errorf("slot = %+v, want web: 4 wanted, where they fit", s)
	}
}
