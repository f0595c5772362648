package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A hand-made run on 184 cores, 30 of headroom, 38 paid: the worker goes
// 15 -> 116 at 1 s; the app's burst at 10 s adds 60 paid cores, 28 bound at
// once and 32 pending until workers yield at 12 s; the worker drops to 56 at
// 13 s; the app returns at 20 s and the worker refills to 116 at 22 s.
func testRecording() recording {
	return recording{Pipeline: "t", BurstAtSeconds: 10, BurstEndSeconds: 20, LengthSeconds: 30,
		AllocatableMilli: 184000, HeadroomMilli: 30000,
		Processes: []process{{Name: "a", CPUSecondsWindow: 1, CPUSecondsTotal: 2, PeakRSSBytes: 10 << 20}, {Name: "b", CPUSecondsWindow: 0.5, CPUSecondsTotal: 1, PeakRSSBytes: 20 << 20}},
		Samples: []sample{
			{At: 0, Worker: 15, WorkerBound: 15000, PaidBound: 38000, FreeMilli: 131000, SampleRunning: 2},
			{At: 1, Worker: 116, WorkerBound: 116000, PaidBound: 38000, FreeMilli: 30000, SampleRunning: 2},
			{At: 10, Worker: 116, WorkerBound: 116000, PaidBound: 66000, PaidPending: 32000, PendingPods: 8, FreeMilli: 2000, SampleRunning: 9},
			{At: 12, Worker: 116, WorkerBound: 84000, PaidBound: 98000, FreeMilli: 2000, SampleRunning: 17},
			{At: 13, Worker: 56, WorkerBound: 56000, PaidBound: 98000, FreeMilli: 30000, SampleRunning: 17},
			{At: 20, Worker: 56, WorkerBound: 56000, PaidBound: 38000, FreeMilli: 90000, SampleRunning: 2},
			{At: 22, Worker: 116, WorkerBound: 116000, PaidBound: 38000, FreeMilli: 30000, SampleRunning: 2},
		}}
}

func TestAnalyse(t *testing.T) {
	got := analyse(testRecording())
	check := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("first write after the burst", got.BurstWrite, 3)
	check("its count", float64(got.BurstWriteTo), 56)
	check("first write after its end", got.EndWrite, 2)
	check("its count", float64(got.EndWriteTo), 116)
	check("all paid pods running", got.PaidRunning, 2)
	check("reversals", float64(got.Reversals), 2)
	// Full: paid pods pending from 10 s to 12 s (then 2 cores are free).
	check("full seconds", got.FullSeconds, 2)
	// Allowed = 184 - 30 - paid demand: 56 from 10 s to 20 s. The worker's
	// bound cores above that: 60 for 2 s, 28 for 1 s, then 0.
	check("overshoot core-s", got.OvershootCoreSeconds, 60*2+28)
	check("harvest core-s", got.HarvestCoreSeconds, 15+116*11+84+56*9+116*8)
	check("CPU s", got.CPUSeconds, 1.5)
	check("CPU s total", got.CPUSecondsTotal, 3)
	check("peak RSS", float64(got.PeakRSSBytes), 30<<20)
}

func TestAnalyseNoWrite(t *testing.T) {
	r := testRecording()
	r.Samples = r.Samples[:2] // the worker never moves after 1 s, the app never runs 17
	got := analyse(r)
	if !math.IsNaN(got.BurstWrite) || !math.IsNaN(got.EndWrite) || !math.IsNaN(got.PaidRunning) {
		t.Errorf("no change after the burst: got %+v, want NaN times", got)
	}
	if !strings.Contains(render([]recording{r}), "| none | not during the burst | none |") {
		t.Errorf("the table does not say none:\n%s", render([]recording{r}))
	}
}

func TestReversals(t *testing.T) {
	for _, tc := range []struct {
		xs   []int32
		want int
	}{
		{nil, 0},
		{[]int32{15, 116}, 0},
		{[]int32{15, 116, 56, 116}, 2},
		{[]int32{15, 30, 60, 120, 150, 15, 30}, 2},
		{[]int32{15, 116, 112, 56, 104, 116}, 2},
	} {
		if got := reversals(tc.xs); got != tc.want {
			t.Errorf("reversals(%v) = %d, want %d", tc.xs, got, tc.want)
		}
	}
}

func TestReplaceBetweenMarkers(t *testing.T) {
	doc := "# x\n\nbefore\n" + beginMarker + "\nold\n" + endMarker + "\nafter\n"
	got, err := replaceBetweenMarkers(doc, "new\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "# x\n\nbefore\n" + beginMarker + "\nnew\n" + endMarker + "\nafter\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := replaceBetweenMarkers("# no markers\n", "new\n"); err == nil || !strings.Contains(err.Error(), beginMarker) {
		t.Errorf("without markers: err %v, want one naming the markers", err)
	}
}

// TestRun writes the doc and the plot from recordings on disk.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	r := testRecording()
	for _, p := range pipelines {
		js := `{"pipeline":"` + p.name + `","date":"2026-12-02T13:00:00Z","burstAtSeconds":10,"burstEndSeconds":20,"lengthSeconds":30,"allocatableMilli":184000,"headroomMilli":30000,"hpaSync":"2s","loadAvgStart":"1 2 3","loadAvgEnd":"4 5 6","processes":[{"name":"opportunist","pid":1,"cpuSecondsTotal":2,"cpuSecondsWindow":1,"peakRSSBytes":1048576}]}`
		var csv strings.Builder
		csv.WriteString(csvHeader + "\n")
		for _, s := range r.Samples {
			fmt.Fprintf(&csv, "%.3f,%d,%d,%d,%d,%d,%d,%d\n", s.At, s.Worker, s.WorkerBound, s.PaidBound, s.PaidPending, s.PendingPods, s.SampleRunning, s.FreeMilli)
		}
		base := filepath.Join(dir, "compare-keda-"+p.name)
		if err := os.WriteFile(base+".json", []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(base+".csv", []byte(csv.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc := filepath.Join(dir, "keda.md")
	if err := os.WriteFile(doc, []byte("intro\n"+beginMarker+"\n"+endMarker+"\nend\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	plotPath := filepath.Join(dir, "compare-keda.png")
	if err := run(dir, doc, plotPath); err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(doc)
	for _, want := range []string{"Recorded 2026-12-02 13:00 (UTC)", "| (ii) opportunist direct", "| 3.0 s (→ 56) | 2.0 s | 2.0 s (→ 116) | 2 | 2.0 s | 148 core-s |", "- keda-external (HPA sync 2s): `15 116 56 116`", "\nend\n"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("the doc lacks %q:\n%s", want, text)
		}
	}
	if info, err := os.Stat(plotPath); err != nil || info.Size() < 1000 {
		t.Errorf("plot %s: %v, %v", plotPath, info, err)
	}
	if err := run(filepath.Join(dir, "missing"), doc, plotPath); err == nil || !strings.Contains(err.Error(), "make compare-keda") {
		t.Errorf("without recordings: %v, want an error saying make compare-keda makes them", err)
	}
}
