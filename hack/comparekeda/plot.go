package main

import (
	"fmt"
	"image/color"
	"os"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// drawPlot draws one panel per pipeline, as hack/hpaplot does: the worker's
// spec.replicas and the ideal count (what fits beside the paid demand under
// the headroom, within the worker's 15..150) over time.
func drawPlot(out string, recs []recording) error {
	const width, panelHeight = 8 * vg.Inch, 2.6 * vg.Inch
	var canvas vg.CanvasWriterTo
	if strings.HasSuffix(out, ".png") {
		canvas = vgimg.PngCanvas{Canvas: vgimg.New(width, panelHeight*vg.Length(len(recs)))}
	} else {
		canvas = vgsvg.New(width, panelHeight*vg.Length(len(recs)))
	}
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: len(recs), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4)}
	for i, r := range recs {
		p := plot.New()
		p.Title.Text = strings.ReplaceAll(r.Title, "`", "")
		p.X.Label.Text = fmt.Sprintf("seconds (paid app 2 → 17 at %.0f s, → 2 at %.0f s)", r.BurstAtSeconds, r.BurstEndSeconds)
		p.Y.Label.Text = "worker replicas"
		p.X.Min, p.X.Max = 0, r.LengthSeconds
		p.Y.Min, p.Y.Max = 0, 160
		ideal, actual := idealAndActual(r)
		li, err := plotter.NewLine(ideal)
		if err != nil {
			return err
		}
		li.StepStyle = plotter.PostStep
		li.Color, li.Dashes = color.RGBA{R: 120, G: 120, B: 120, A: 255}, []vg.Length{vg.Points(4), vg.Points(3)}
		la, err := plotter.NewLine(actual)
		if err != nil {
			return err
		}
		la.StepStyle = plotter.PostStep
		la.Color, la.Width = color.RGBA{R: 200, G: 60, B: 40, A: 255}, vg.Points(1.5)
		p.Add(plotter.NewGrid(), li, la)
		p.Legend.Add("ideal (fills to 30 cores of headroom)", li)
		p.Legend.Add("worker replicas (spec)", la)
		p.Legend.Top = true
		p.Legend.YOffs = -vg.Points(14)
		p.Draw(tiles.At(dc, 0, i))
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = canvas.WriteTo(f)
	return err
}

// idealAndActual are the plot's two step lines, with a last point at the
// end of the window so the final step is drawn.
func idealAndActual(r recording) (ideal, actual plotter.XYs) {
	for _, x := range r.Samples {
		if x.At > r.LengthSeconds {
			break
		}
		ideal = append(ideal, plotter.XY{X: x.At, Y: idealWorkers(r, x)})
		actual = append(actual, plotter.XY{X: x.At, Y: float64(x.Worker)})
	}
	if n := len(actual); n > 0 {
		ideal = append(ideal, plotter.XY{X: r.LengthSeconds, Y: ideal[n-1].Y})
		actual = append(actual, plotter.XY{X: r.LengthSeconds, Y: actual[n-1].Y})
	}
	return ideal, actual
}

// idealWorkers is how many 1-core workers fit beside the paid demand under
// the headroom, within the worker's 15..150.
func idealWorkers(r recording, x sample) float64 {
	free := (r.AllocatableMilli - r.HeadroomMilli - x.PaidBound - x.PaidPending) / 1000
	return float64(min(max(free, 15), 150))
}
