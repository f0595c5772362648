package sim

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/opportunist/opportunist/internal/palette"
)

// PlotFormat returns the plot format a file name asks for, svg or png.
func PlotFormat(file string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(file)); ext {
	case ".svg", ".png":
		return ext[1:], nil
	default:
		return "", fmt.Errorf("the plot file must end in .svg or .png, got %q", file)
	}
}

// The plots' colours are the dashboard's: one palette, internal/palette.
var (
	paidColor  = palette.Paid
	oppColor   = palette.Opportunistic
	allocColor = palette.Allocatable
	lineColor  = palette.FillLine
	noteColor  = palette.FillLine
)

// plotFont is the one typeface of every text in a plot: Liberation Sans,
// which gonum/plot carries in the binary (go-fonts). PNGs rasterize it
// from there and SVGs embed it, so text is measured and drawn with the
// same font whatever the viewer has installed.
var plotFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

// WritePlot draws an overall title, a legend and one panel per strategy,
// one above the other: paid and opportunistic CPU requests stacked over
// time, against allocatable and the fill line (allocatable minus
// headroom). Each panel's title carries the simulate table's numbers under
// the table's words. format is svg or png.
func WritePlot(w io.Writer, r *Report, format string) error {
	var panels [][]*plot.Plot
	var keys []legendEntry
	top := 0.0
	for _, s := range r.Series {
		for _, p := range s.Points {
			top = max(top, p.Allocatable, p.Paid+p.Opportunistic)
		}
	}
	// Room above allocatable for the note on unschedulable replicas, the
	// same in every panel so that their scales match.
	headroom := 1.05
	for _, res := range r.Results {
		if unschedulableNote(res) != "" {
			headroom = 1.2
		}
	}
	for i, s := range r.Series {
		p, entries, err := panel(r, i, s, top*headroom)
		if err != nil {
			return err
		}
		panels = append(panels, []*plot.Plot{p})
		keys = entries
	}
	const titleHeight, legendHeight = 0.45 * vg.Inch, 0.35 * vg.Inch
	width, height := 10*vg.Inch, vg.Length(len(panels))*3.2*vg.Inch+titleHeight+legendHeight
	var c interface {
		vg.CanvasSizer
		io.WriterTo
	}
	switch format {
	case "svg":
		c = vgsvg.NewWith(vgsvg.UseWH(width, height), vgsvg.EmbedFonts(true))
	case "png":
		img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(96))
		c = vgimg.PngCanvas{Canvas: img}
	default:
		return fmt.Errorf("unknown plot format %q", format)
	}
	dc := draw.New(c)
	dc.FillText(textStyle(16, color.Black, draw.XCenter, draw.YCenter),
		vg.Point{X: width / 2, Y: height - titleHeight/2}, plotTitle(r))
	// The legend in a strip under the title: entries side by side, each as
	// wide as its text, centred.
	strip := draw.Crop(dc, 0, 0, height-titleHeight-legendHeight, -titleHeight)
	legends := make([]plot.Legend, len(keys))
	widths := make([]vg.Length, len(keys))
	const gap = 24
	total := vg.Points(gap) * vg.Length(max(len(keys)-1, 0))
	for i, k := range keys {
		l := plot.NewLegend()
		l.TextStyle.Font = font.From(plotFont, 11)
		l.Top, l.Left = true, true
		l.Add(k.label, k.thumb)
		legends[i] = l
		widths[i] = l.ThumbnailWidth + l.TextStyle.Width(" ") + l.TextStyle.Width(k.label)
		total += widths[i]
	}
	x := (width - total) / 2
	for i := range legends {
		legends[i].Draw(draw.Crop(strip, x, -(width - x - widths[i]), 0, -vg.Points(4)))
		x += widths[i] + vg.Points(gap)
	}
	body := draw.Crop(dc, 0, 0, 0, -titleHeight-legendHeight)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadX: vg.Points(8), PadY: vg.Points(14)}
	canvases := plot.Align(panels, tiles, body)
	for i := range panels {
		panels[i][0].Draw(canvases[i][0])
	}
	_, err := c.WriteTo(w)
	return err
}

// plotTitle names the scenario and the simulated time.
func plotTitle(r *Report) string {
	return fmt.Sprintf("Scenario %s, %s simulated: CPU requests per strategy", r.Scenario, spokenDuration(r.Duration))
}

// panelTitle is one strategy's row of the simulate table, in its words
// and units: core-h, pod-s, seconds, pod-h.
func panelTitle(strategy, scenario string, res Result) string {
	return fmt.Sprintf("%s on %s: harvest %.1f core-h (%.1f%% of the instant law, %.1f%% of the bound), overshoot %.2f core-h\n"+
		"paid pending %.0f pod-s, longest wait %.0f s, unschedulable %.2f pod-h",
		strategy, scenario, res.HarvestCoreHours, 100*res.HarvestRatio, 100*res.HarvestOfBound, res.OvershootCoreHours,
		res.PaidPendingPodSeconds, res.LongestPaidWaitSeconds, res.UnboundOpportunisticPodHours)
}

// unschedulableNote is the sign drawn inside a panel whose strategy left
// opportunistic replicas that fit nowhere; "" when there were none.
func unschedulableNote(res Result) string {
	if res.UnboundOpportunisticPodHours <= 0 {
		return ""
	}
	return fmt.Sprintf("unschedulable opportunistic replicas: %.2f pod-h (created, fit on no node, harvest nothing)", res.UnboundOpportunisticPodHours)
}

// spokenDuration prints 40 minutes, 12 hours, 7 days, 1h30m.
func spokenDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d >= 2*time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	default:
		return d.String()
	}
}

func textStyle(size vg.Length, c color.Color, x text.XAlignment, y text.YAlignment) text.Style {
	return text.Style{Color: c, Font: font.From(plotFont, size), XAlign: x, YAlign: y, Handler: plot.DefaultTextHandler}
}

type legendEntry struct {
	label string
	thumb plot.Thumbnailer
}

func panel(r *Report, i int, s Series, top float64) (*plot.Plot, []legendEntry, error) {
	p := plot.New()
	res := r.Results[i]
	p.Title.Text = panelTitle(s.Strategy, r.Scenario, res)
	p.Title.TextStyle.Font = font.From(plotFont, 11)
	unit, unitName, steps := time.Hour, "time (hours)", []float64{1, 2, 3, 6, 12, 24, 48, 72, 168}
	switch {
	case r.Duration <= 2*time.Hour:
		unit, unitName, steps = time.Minute, "time (minutes)", []float64{1, 2, 5, 10, 15, 20, 30, 60}
	case r.Duration > 3*24*time.Hour:
		unit, unitName, steps = 24*time.Hour, "time (days)", []float64{1, 2, 7, 14, 28}
	}
	p.X.Label.Text = unitName
	p.Y.Label.Text = "CPU requests (cores)"
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(plotFont, 10)
		a.Tick.Label.Font = font.From(plotFont, 10)
	}
	p.Y.Min, p.Y.Max = 0, top
	p.X.Min, p.X.Max = 0, float64(r.Duration)/float64(unit)
	p.X.Tick.Marker = ticks(steps)
	p.Y.Tick.Marker = ticks([]float64{1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000})
	grid := plotter.NewGrid()
	grid.Vertical.Color = color.Gray{Y: 0xdd}
	grid.Horizontal.Color = color.Gray{Y: 0xdd}

	n := len(s.Points)
	total, paid, alloc, target := make(plotter.XYs, n), make(plotter.XYs, n), make(plotter.XYs, n), make(plotter.XYs, n)
	for j, pt := range s.Points {
		x := float64(pt.At) / float64(unit)
		total[j] = plotter.XY{X: x, Y: pt.Paid + pt.Opportunistic}
		paid[j] = plotter.XY{X: x, Y: pt.Paid}
		alloc[j] = plotter.XY{X: x, Y: pt.Allocatable}
		target[j] = plotter.XY{X: x, Y: pt.Target}
	}
	// Stacked areas: paid + opportunistic first, paid drawn over it.
	var keys []legendEntry
	for _, l := range []struct {
		xys   plotter.XYs
		fill  color.Color
		line  color.Color
		dash  bool
		label string
	}{
		{total, oppColor, oppColor, false, "opportunistic (bound)"},
		{paid, paidColor, paidColor, false, "paid (bound)"},
		{alloc, nil, allocColor, false, "allocatable"},
		{target, nil, lineColor, true, "fill line: allocatable - headroom"},
	} {
		line, err := plotter.NewLine(l.xys)
		if err != nil {
			return nil, nil, fmt.Errorf("plotting %s: %w", s.Strategy, err)
		}
		line.StepStyle = plotter.PostStep
		line.FillColor = l.fill
		line.LineStyle.Color = l.line
		line.LineStyle.Width = vg.Points(1)
		if l.dash {
			line.LineStyle.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(line)
		keys = append(keys, legendEntry{l.label, line})
	}
	p.Add(grid) // over the fills, so the ticks can be read inside them
	if note := unschedulableNote(res); note != "" {
		p.Add(boxedNote{text: note})
	}
	return p, keys, nil
}

// ticks labels multiples of the first step that gives at most eight
// intervals over the axis; the last step's multiples past that.
func ticks(steps []float64) plot.Ticker {
	return plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		step := steps[len(steps)-1]
		for _, s := range steps {
			if (hi-lo)/s <= 8 {
				step = s
				break
			}
		}
		for (hi-lo)/step > 8 {
			step *= 2
		}
		var out []plot.Tick
		for v := math.Ceil(lo/step) * step; v <= hi+1e-9; v += step {
			out = append(out, plot.Tick{Value: v, Label: fmt.Sprintf("%g", v)})
		}
		return out
	})
}

// boxedNote writes a line of text on white in the top left of the data
// area, above allocatable, where no request can reach.
type boxedNote struct{ text string }

func (n boxedNote) Plot(c draw.Canvas, _ *plot.Plot) {
	sty := textStyle(11, noteColor, draw.XLeft, draw.YTop)
	pad := vg.Points(4)
	at := vg.Point{X: c.Min.X + 2*pad, Y: c.Max.Y - 2*pad}
	w, h := sty.Width(n.text), sty.Height(n.text)
	c.FillPolygon(color.White, []vg.Point{
		{X: at.X - pad, Y: at.Y + pad}, {X: at.X + w + pad, Y: at.Y + pad},
		{X: at.X + w + pad, Y: at.Y - h - pad}, {X: at.X - pad, Y: at.Y - h - pad},
	})
	c.FillText(sty, at, n.text)
}
