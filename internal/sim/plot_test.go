package sim

import (
	"bytes"
	"fmt"
	"image/png"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// seedBurstReport runs the built-in seed-burst scenario under every
// strategy: hpa-writeup leaves unschedulable replicas there, the others none.
func seedBurstReport(t *testing.T) *Report {
	t.Helper()
	sc, err := Builtin("seed-burst")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(sc, Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func renderPlot(t *testing.T, rep *Report, format string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WritePlot(&buf, rep, format); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var (
	usedFamily     = regexp.MustCompile(`font-family:([^;"]+);`)
	embeddedFamily = regexp.MustCompile(`font-family:"([^"]+)";`)
)

// TestPlotSVGEmbedsItsFonts: an SVG that names a font the viewer lacks is
// drawn in a fallback of other widths, and its titles run off the panels.
// Every family the SVG uses must be embedded in it.
func TestPlotSVGEmbedsItsFonts(t *testing.T) {
	svg := string(renderPlot(t, seedBurstReport(t), "svg"))
	var embedded []string
	for _, m := range embeddedFamily.FindAllStringSubmatch(svg, -1) {
		embedded = append(embedded, m[1])
	}
	if len(embedded) == 0 {
		t.Fatal("the SVG embeds no font")
	}
	used := 0
	for _, m := range usedFamily.FindAllStringSubmatch(svg, -1) {
		used++
		if !slices.Contains(embedded, m[1]) {
			t.Errorf("the SVG uses font %q but embeds only %q", m[1], embedded)
		}
	}
	if used == 0 {
		t.Fatal("the SVG names no font for its text")
	}
	if !strings.Contains(svg, "src: url(data:font/ttf;") {
		t.Error("the SVG's @font-face has no embedded font data")
	}
}

// TestPlotLabelsCarryTheTable: the overall title names the scenario and the
// simulated time; each panel's title has the simulate table's numbers in
// its words and units (pod-s for pending, s for the longest wait, pod-h for
// unschedulable); a panel whose strategy left unschedulable replicas says
// so inside the panel, and only then.
func TestPlotLabelsCarryTheTable(t *testing.T) {
	rep := seedBurstReport(t)
	svg := string(renderPlot(t, rep, "svg"))
	if want := "Scenario seed-burst, 40 minutes simulated"; !strings.Contains(svg, want) {
		t.Errorf("the SVG has no overall title %q", want)
	}
	sawNote := false
	for i, s := range rep.Series {
		res := rep.Results[i]
		t.Run(s.Strategy, func(t *testing.T) {
			title := panelTitle(s.Strategy, rep.Scenario, res)
			for _, want := range []string{
				fmt.Sprintf("harvest %.1f core-h", res.HarvestCoreHours),
				fmt.Sprintf("%.1f%% of the instant law", 100*res.HarvestRatio),
				fmt.Sprintf("%.1f%% of the bound", 100*res.HarvestOfBound),
				fmt.Sprintf("overshoot %.2f core-h", res.OvershootCoreHours),
				fmt.Sprintf("paid pending %.0f pod-s", res.PaidPendingPodSeconds),
				fmt.Sprintf("longest wait %.0f s", res.MaxPaidWait.Seconds()),
				fmt.Sprintf("unschedulable %.2f pod-h", res.UnboundOpportunisticPodHours),
			} {
				if !strings.Contains(title, want) {
					t.Errorf("panel title %q lacks %q", title, want)
				}
			}
			if strings.Contains(title, "waited") {
				t.Errorf("panel title %q says waited, which the table does not", title)
			}
			for _, line := range strings.Split(title, "\n") {
				if !strings.Contains(svg, line) {
					t.Errorf("the SVG lacks the panel title line %q", line)
				}
			}
			note := unschedulableNote(res)
			if got, want := note != "", res.UnboundOpportunisticPodHours > 0; got != want {
				t.Errorf("note %q with %.2f unschedulable pod-h", note, res.UnboundOpportunisticPodHours)
			}
			if note != "" {
				sawNote = true
				if !strings.Contains(svg, note) {
					t.Errorf("the SVG lacks the note %q", note)
				}
			}
		})
	}
	if !sawNote {
		t.Error("no strategy left unschedulable replicas on seed-burst; the note went untested")
	}
}

func TestPlotTicks(t *testing.T) {
	minutes := []float64{1, 2, 5, 10, 15, 20, 30, 60}
	hours := []float64{1, 2, 3, 6, 12, 24, 48, 72, 168}
	cores := []float64{1, 2, 5, 10, 20, 25, 50, 100}
	for _, tc := range []struct {
		name   string
		steps  []float64
		lo, hi float64
		want   []float64
	}{
		{"40 minutes", minutes, 0, 40, []float64{0, 5, 10, 15, 20, 25, 30, 35, 40}},
		{"12 hours", hours, 0, 12, []float64{0, 2, 4, 6, 8, 10, 12}},
		{"a day", hours, 0, 24, []float64{0, 3, 6, 9, 12, 15, 18, 21, 24}},
		{"a week", hours, 0, 168, []float64{0, 24, 48, 72, 96, 120, 144, 168}},
		{"three weeks", []float64{1, 2, 7, 14, 28}, 0, 21, []float64{0, 7, 14, 21}},
		{"193 cores", cores, 0, 193, []float64{0, 25, 50, 75, 100, 125, 150, 175}},
		{"past the last step", cores, 0, 2000, []float64{0, 400, 800, 1200, 1600, 2000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []float64
			for _, tk := range ticks(tc.steps).Ticks(tc.lo, tc.hi) {
				got = append(got, tk.Value)
				if tk.Label == "" {
					t.Errorf("tick %g has no label", tk.Value)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ticks %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSpokenDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{40 * time.Minute, "40 minutes"},
		{12 * time.Hour, "12 hours"},
		{24 * time.Hour, "24 hours"},
		{7 * 24 * time.Hour, "7 days"},
		{90 * time.Minute, "90 minutes"},
		{90 * time.Second, "1m30s"},
	} {
		if got := spokenDuration(tc.d); got != tc.want {
			t.Errorf("spokenDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestPlotPNG(t *testing.T) {
	rep := seedBurstReport(t)
	img, err := png.Decode(bytes.NewReader(renderPlot(t, rep, "png")))
	if err != nil {
		t.Fatal(err)
	}
	// 10 in wide at 96 dpi; taller with every panel.
	if b := img.Bounds(); b.Dx() != 960 || b.Dy() < 300*len(rep.Series) {
		t.Errorf("PNG is %dx%d for %d panels", b.Dx(), b.Dy(), len(rep.Series))
	}
}
