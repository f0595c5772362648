// Command slots measures issue 20's headroom slots on the built-in web-*
// scenarios and writes the comparison table into docs/slots.md (between its
// markers) and a plot of the first day into docs/img/slots.png:
//
//	go run ./hack/slots        # or: make slots
//
// Every number it writes is what `opportunist simulate --scenario NAME
// --strategy opportunist,instant-law` prints for that scenario (seed 1): the
// table says which command, row by row.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"os"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/scalerspec"
	"github.com/opportunist/opportunist/internal/sim"
)

// pairs are the compared variants: a headroom of cpu: 16, then slots of four
// web pods, on the same cluster and load.
var pairs = [][2]string{{"web-headroom", "web-slots"}, {"web-headroom-priority", "web-slots-priority"}}

const (
	beginMarker = "<!-- begin: make slots -->"
	endMarker   = "<!-- end: make slots -->"
)

func main() {
	doc := flag.String("doc", "docs/slots.md", "markdown file whose table (between the markers) is rewritten")
	plotFile := flag.String("plot", "docs/img/slots.png", "plot of the first day (.svg or .png)")
	flag.Parse()
	if err := run(*doc, *plotFile); err != nil {
		fmt.Fprintln(os.Stderr, "slots:", err)
		os.Exit(1)
	}
}

func run(doc, plotFile string) error {
	var table strings.Builder
	table.WriteString("| scenario | PriorityClasses | kept free | harvest core-h | of the instant law | vs cpu: 16 | paid pending pod-s | vs cpu: 16 | longest wait | command |\n")
	table.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, pair := range pairs {
		var base sim.Result
		for i, name := range pair {
			sc, err := sim.Builtin(name)
			if err != nil {
				return err
			}
			start := time.Now()
			rep, err := sim.Run(sc, sim.Options{Seed: 1, Strategies: []string{sim.Opportunist, sim.InstantLaw}})
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "slots: %s: %s simulated in %s\n", name, sc.Duration, time.Since(start).Round(time.Millisecond))
			r := rep.Results[0]
			if i == 0 {
				base = r
			}
			kept := "cpu: 16"
			if len(sc.Opportunistic[0].Scaler.Spec.HeadroomSlots) > 0 {
				s := sc.Opportunistic[0].Scaler.Spec.HeadroomSlots[0]
				kept = fmt.Sprintf("%s × %s slots", s.Count.String(), scalerspec.SlotName(0, &s))
			}
			fmt.Fprintf(&table, "| %s | %s | %s | %.1f | %.1f %% | %s | %.0f | %s | %s | `opportunist simulate --scenario %s --strategy opportunist,instant-law` |\n",
				name, onOff(sc.PriorityClasses), kept, r.HarvestCoreHours, 100*r.HarvestRatio,
				percentOf2(r.HarvestCoreHours, base.HarvestCoreHours), r.PaidPendingPodSeconds,
				percentOf(r.PaidPendingPodSeconds, base.PaidPendingPodSeconds), r.MaxPaidWait, name)
		}
	}
	if err := rewrite(doc, beginMarker, endMarker, table.String()); err != nil {
		return err
	}
	frontier, err := frontierTable()
	if err != nil {
		return err
	}
	if err := rewrite(doc, frontierBegin, frontierEnd, frontier); err != nil {
		return err
	}
	return writePlot(plotFile)
}

const (
	frontierBegin = "<!-- begin: make slots frontier -->"
	frontierEnd   = "<!-- end: make slots frontier -->"
)

// frontierTable runs web-headroom with more and more cores kept free, up to
// the first headroom with which no paid pod waits, next to web-slots: what
// a sum headroom costs to be as safe as the slots.
func frontierTable() (string, error) {
	var b strings.Builder
	b.WriteString("| kept free | harvest core-h | vs cpu: 16 | paid pending pod-s | longest wait |\n|---|---|---|---|---|\n")
	var base float64
	row := func(kept string, r sim.Result) {
		fmt.Fprintf(&b, "| %s | %.1f | %s | %.0f | %s |\n", kept, r.HarvestCoreHours, percentOf2(r.HarvestCoreHours, base), r.PaidPendingPodSeconds, r.MaxPaidWait)
	}
	for cores := int64(16); cores <= 64; cores++ {
		sc, err := sim.Builtin("web-headroom")
		if err != nil {
			return "", err
		}
		sc.Opportunistic[0].Scaler.Spec.Headroom = map[corev1.ResourceName]v1alpha1.HeadroomValue{corev1.ResourceCPU: v1alpha1.HeadroomValue(strconv.FormatInt(cores, 10))}
		rep, err := sim.Run(sc, sim.Options{Seed: 1, Strategies: []string{sim.Opportunist}})
		if err != nil {
			return "", err
		}
		r := rep.Results[0]
		if cores == 16 {
			base = r.HarvestCoreHours
		}
		row(fmt.Sprintf("cpu: %d", cores), r)
		if r.PaidPendingPodSeconds == 0 {
			break
		}
	}
	sc, err := sim.Builtin("web-slots")
	if err != nil {
		return "", err
	}
	rep, err := sim.Run(sc, sim.Options{Seed: 1, Strategies: []string{sim.Opportunist}})
	if err != nil {
		return "", err
	}
	row("**4 × web slots**", rep.Results[0])
	return b.String(), nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func percentOf(v, base float64) string {
	if base == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f %%", 100*v/base)
}

// rewrite replaces what is between the markers of doc with table.
func rewrite(doc, beginMarker, endMarker, table string) error {
	data, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	before, rest, ok := bytes.Cut(data, []byte(beginMarker))
	_, after, ok2 := bytes.Cut(rest, []byte(endMarker))
	if !ok || !ok2 {
		return fmt.Errorf("%s has no %s ... %s markers for the table", doc, beginMarker, endMarker)
	}
	var out bytes.Buffer
	out.Write(before)
	out.WriteString(beginMarker + "\n" + table + endMarker)
	out.Write(after)
	return os.WriteFile(doc, out.Bytes(), 0o644)
}

// writePlot draws the first day of web-headroom and web-slots (no
// PriorityClasses): the worker's CPU requests above, paid pods waiting below.
func writePlot(file string) error {
	type run struct {
		label  string
		color  color.Color
		points []sim.Point
	}
	var runs []run
	for i, name := range pairs[0] {
		sc, err := sim.Builtin(name)
		if err != nil {
			return err
		}
		sc.Duration = 24 * time.Hour
		rep, err := sim.Run(sc, sim.Options{Seed: 1, Strategies: []string{sim.Opportunist}})
		if err != nil {
			return err
		}
		r := rep.Results[0]
		label := fmt.Sprintf("%s: harvest %.0f core-h, paid pods waited %.0f pod-s", name, r.HarvestCoreHours, r.PaidPendingPodSeconds)
		c := []color.Color{color.RGBA{R: 0xc4, G: 0x1e, B: 0x3a, A: 0xff}, color.RGBA{R: 0x2e, G: 0x8b, B: 0x57, A: 0xff}}[i]
		runs = append(runs, run{label, c, rep.Series[0].Points})
	}
	// The legend goes where the lines are not: below the harvest, above the waits.
	panels := []struct {
		title, y  string
		value     func(sim.Point) float64
		legendTop bool
	}{
		{"the worker's CPU requests: what is harvested", "cores", func(p sim.Point) float64 { return p.Opportunistic }, false},
		{"paid pods waiting for room", "pods (mean over each point)", func(p sim.Point) float64 { return p.PaidPending }, true},
	}
	const width, panelHeight = 10 * vg.Inch, 3 * vg.Inch
	var canvas vg.CanvasWriterTo
	switch {
	case strings.HasSuffix(file, ".png"):
		canvas = vgimg.PngCanvas{Canvas: vgimg.New(width, panelHeight*vg.Length(len(panels)))}
	case strings.HasSuffix(file, ".svg"):
		canvas = vgsvg.New(width, panelHeight*vg.Length(len(panels)))
	default:
		return errors.New("the plot file must end in .svg or .png")
	}
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadX: vg.Points(8), PadY: vg.Points(8)}
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = "Day one, no PriorityClasses: " + pn.title
		p.X.Label.Text = "hours"
		p.Y.Label.Text = pn.y
		p.X.Min, p.X.Max, p.Y.Min = 0, 24, 0
		top := 0.0
		for _, r := range runs {
			xys := make(plotter.XYs, len(r.points))
			for j, pt := range r.points {
				xys[j] = plotter.XY{X: pt.At.Hours(), Y: pn.value(pt)}
				top = max(top, xys[j].Y)
			}
			line, err := plotter.NewLine(xys)
			if err != nil {
				return err
			}
			line.StepStyle = plotter.PostStep
			line.Color, line.Width = r.color, vg.Points(1.2)
			p.Add(line)
			p.Legend.Add(r.label, line)
		}
		p.Add(plotter.NewGrid())
		p.Legend.Top = pn.legendTop
		if pn.legendTop {
			p.Y.Max = max(top, 1) * 1.6
		}
		p.Draw(tiles.At(dc, 0, i))
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := canvas.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// percentOf2 is percentOf to two decimals: the harvest target is a bound of 3 %.
func percentOf2(v, base float64) string {
	if base == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f %%", 100*v/base)
}
