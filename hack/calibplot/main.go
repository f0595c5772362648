// Command calibplot draws the calibration of docs/simulate.md: an
// opportunistic workload's replicas over time on the local control plane and
// in the simulator, from the per-step traces the calibration e2e writes
// (real.csv and sim.csv; `make record` runs it and this):
//
//	go run ./hack/calibplot -o docs/img/calibration.png \
//	    "opportunist=docs/data/calibration-opportunist-real.csv,docs/data/calibration-opportunist-sim.csv" \
//	    "the write-up's HPA=docs/data/calibration-hpa-real.csv,docs/data/calibration-hpa-sim.csv"
package main

import (
	"errors"
	"flag"
	"fmt"
	"image/color"
	"os"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/opportunist/opportunist/internal/sim"
)

func main() {
	out := flag.String("o", "calibration.png", "output file (.svg or .png)")
	workload := flag.String("workload", "worker", "the opportunistic workload to draw")
	flag.Parse()
	if err := run(*out, *workload, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "calibplot:", err)
		os.Exit(1)
	}
}

type panel struct {
	title     string
	real, sim plotter.XYs
	strategy  [2]string // of the real and the simulated rows
}

func run(out, workload string, args []string) error {
	if len(args) == 0 {
		return errors.New("give one or more TITLE=REAL.csv,SIM.csv")
	}
	var panels []panel
	for _, a := range args {
		title, files, ok := strings.Cut(a, "=")
		realPath, simPath, ok2 := strings.Cut(files, ",")
		if !ok || !ok2 {
			return fmt.Errorf("%q: want TITLE=REAL.csv,SIM.csv", a)
		}
		p := panel{title: title}
		var err error
		if p.real, p.strategy[0], err = steps(realPath, workload); err != nil {
			return err
		}
		if p.sim, p.strategy[1], err = steps(simPath, workload); err != nil {
			return err
		}
		panels = append(panels, p)
	}
	const width, panelHeight = 8 * vg.Inch, 3 * vg.Inch
	var canvas vg.CanvasWriterTo
	if strings.HasSuffix(out, ".png") {
		canvas = vgimg.PngCanvas{Canvas: vgimg.New(width, panelHeight*vg.Length(len(panels)))}
	} else {
		canvas = vgsvg.New(width, panelHeight*vg.Length(len(panels)))
	}
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4)}
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		p.X.Label.Text = "seconds"
		p.Y.Label.Text = workload + " replicas (spec.replicas)"
		p.Y.Min, p.Y.Max = 0, 200 // room for the legend above the counts (max 150)
		sim, err := plotter.NewLine(pn.sim)
		if err != nil {
			return err
		}
		sim.Color, sim.Width, sim.Dashes = color.RGBA{R: 40, G: 90, B: 200, A: 255}, vg.Points(1.5), []vg.Length{vg.Points(5), vg.Points(3)}
		real, err := plotter.NewLine(pn.real)
		if err != nil {
			return err
		}
		real.Color, real.Width = color.RGBA{R: 200, G: 60, B: 40, A: 255}, vg.Points(1.5)
		p.Add(plotter.NewGrid(), real, sim)
		p.Legend.Add("local control plane ("+pn.strategy[0]+")", real)
		p.Legend.Add("simulator ("+pn.strategy[1]+")", sim)
		p.Legend.Top = true
		p.Legend.YOffs = -vg.Points(14) // below the title
		p.Legend.XOffs = -vg.Points(8)  // the line samples inside the frame
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

// steps reads a per-step trace and returns the workload's current count as
// a step function (a count holds until the next row) and the rows' strategy.
func steps(path, workload string) (plotter.XYs, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	rows, err := sim.ReadStepTrace(f)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	var xy plotter.XYs
	var strategy string
	var end time.Duration
	for _, r := range rows {
		if r.Workload != workload {
			continue
		}
		strategy = r.Strategy
		x, y := r.At.Seconds(), float64(r.Current)
		if n := len(xy); n > 0 && xy[n-1].Y != y {
			xy = append(xy, plotter.XY{X: x, Y: xy[n-1].Y})
		}
		xy = append(xy, plotter.XY{X: x, Y: y})
		end = r.At
	}
	if len(xy) == 0 {
		return nil, "", fmt.Errorf("%s: no rows of workload %s", path, workload)
	}
	// The last row holds for its step: draw it to the end of the run.
	xy = append(xy, plotter.XY{X: (end + time.Second).Seconds(), Y: xy[len(xy)-1].Y})
	return xy, strategy, nil
}
