package sim

import (
	"fmt"
	"image/color"
	"io"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
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

var (
	paidColor  = color.RGBA{R: 0x4c, G: 0x72, B: 0xb0, A: 0xff}
	oppColor   = color.RGBA{R: 0xf2, G: 0x9e, B: 0x4c, A: 0xff}
	allocColor = color.Black
	lineColor  = color.RGBA{R: 0xc4, G: 0x1e, B: 0x3a, A: 0xff}
)

// WritePlot draws one panel per strategy, one above the other: paid and
// opportunistic CPU requests stacked over time, against allocatable and the
// fill line (allocatable minus headroom), under one legend. format is svg or png.
func WritePlot(w io.Writer, r *Report, format string) error {
	var panels [][]*plot.Plot
	var keys []legendEntry
	top := 0.0
	for _, s := range r.Series {
		for _, p := range s.Points {
			top = max(top, p.Allocatable, p.Paid+p.Opportunistic)
		}
	}
	for i, s := range r.Series {
		p, entries, err := panel(r, i, s, top*1.05)
		if err != nil {
			return err
		}
		panels = append(panels, []*plot.Plot{p})
		keys = entries
	}
	const legendHeight = 0.35 * vg.Inch
	width, height := 10*vg.Inch, vg.Length(len(panels))*3*vg.Inch+legendHeight
	var c interface {
		vg.CanvasSizer
		io.WriterTo
	}
	switch format {
	case "svg":
		c = vgsvg.New(width, height)
	case "png":
		img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(96))
		c = vgimg.PngCanvas{Canvas: img}
	default:
		return fmt.Errorf("unknown plot format %q", format)
	}
	dc := draw.New(c)
	// The legend, one entry per column, in a strip along the top.
	strip := draw.Crop(dc, 0, 0, height-legendHeight, 0)
	colWidth := width / vg.Length(max(len(keys), 1))
	for i, k := range keys {
		l := plot.NewLegend()
		l.Top, l.Left = true, true
		l.Add(k.label, k.thumb)
		col := draw.Crop(strip, vg.Length(i)*colWidth+vg.Points(12), -(width - vg.Length(i+1)*colWidth), 0, -vg.Points(4))
		l.Draw(col)
	}
	body := draw.Crop(dc, 0, 0, 0, -legendHeight)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadX: vg.Points(8), PadY: vg.Points(12)}
	canvases := plot.Align(panels, tiles, body)
	for i := range panels {
		panels[i][0].Draw(canvases[i][0])
	}
	_, err := c.WriteTo(w)
	return err
}

type legendEntry struct {
	label string
	thumb plot.Thumbnailer
}

func panel(r *Report, i int, s Series, top float64) (*plot.Plot, []legendEntry, error) {
	p := plot.New()
	res := r.Results[i]
	p.Title.Text = fmt.Sprintf("%s on %s: harvest %.1f core-h (%.1f%% of the instant law, %.1f%% of the bound), overshoot %.1f core-h, paid pods waited %.0f s",
		s.Strategy, r.Scenario, res.HarvestCoreHours, 100*res.HarvestRatio, 100*res.HarvestOfBound, res.OvershootCoreHours, res.PaidPendingPodSeconds)
	unit, unitName := time.Hour, "hours"
	if r.Duration <= 2*time.Hour {
		unit, unitName = time.Minute, "minutes"
	}
	p.X.Label.Text = unitName
	p.Y.Label.Text = "CPU requests (cores)"
	p.Y.Min, p.Y.Max = 0, top
	p.X.Min, p.X.Max = 0, float64(r.Duration)/float64(unit)

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
		{total, oppColor, oppColor, false, "opportunistic"},
		{paid, paidColor, paidColor, false, "paid"},
		{alloc, nil, allocColor, false, "allocatable"},
		{target, nil, lineColor, true, "allocatable - headroom"},
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
	return p, keys, nil
}
