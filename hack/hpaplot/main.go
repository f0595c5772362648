// Command hpaplot draws the HPA comparison of docs/hpa.md from the replica
// counts the end-to-end tests record (replicas.csv of TestHPAObjectMetricSeed
// and TestHPAExternalDesiredReplicas, 5-minute runs that `make record` makes
// and draws; CI runs neither at that length):
//
//	go run ./hack/hpaplot -o docs/img/hpa-comparison.svg \
//	    "seed HPA (Object metric, Value 30000)=_output/e2e/TestHPAObjectMetricSeed/replicas.csv" \
//	    "HPA on opportunist_desired_replicas (AverageValue 1)=_output/e2e/TestHPAExternalDesiredReplicas/replicas.csv"
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"os"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

func main() {
	out := flag.String("o", "hpa-comparison.svg", "output file (.svg or .png)")
	flag.Parse()
	if err := run(*out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "hpaplot:", err)
		os.Exit(1)
	}
}

type series struct {
	title         string
	ideal, actual plotter.XYs
}

func run(out string, args []string) error {
	if len(args) == 0 {
		return errors.New("give one or more TITLE=replicas.csv")
	}
	var all []series
	for _, a := range args {
		title, path, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("%q: want TITLE=FILE", a)
		}
		s, err := read(path)
		if err != nil {
			return err
		}
		s.title = title
		all = append(all, s)
	}
	const width, panelHeight = 8 * vg.Inch, 3 * vg.Inch
	var canvas vg.CanvasWriterTo
	if strings.HasSuffix(out, ".png") {
		canvas = vgimg.PngCanvas{Canvas: vgimg.New(width, panelHeight*vg.Length(len(all)))}
	} else {
		canvas = vgsvg.New(width, panelHeight*vg.Length(len(all)))
	}
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: len(all), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4)}
	for i, s := range all {
		p := plot.New()
		p.Title.Text = s.title
		p.X.Label.Text = "seconds (paid burst: sample app 2 → 17 at 60 s, → 2 at 180 s)"
		p.Y.Label.Text = "worker replicas"
		p.Y.Min, p.Y.Max = 0, 160
		ideal, err := plotter.NewLine(s.ideal)
		if err != nil {
			return err
		}
		ideal.Color, ideal.Dashes = color.RGBA{R: 120, G: 120, B: 120, A: 255}, []vg.Length{vg.Points(4), vg.Points(3)}
		actual, err := plotter.NewLine(s.actual)
		if err != nil {
			return err
		}
		actual.Color, actual.Width = color.RGBA{R: 200, G: 60, B: 40, A: 255}, vg.Points(1.5)
		p.Add(plotter.NewGrid(), ideal, actual)
		p.Legend.Add("ideal (fills to 30 cores of headroom)", ideal)
		p.Legend.Add("worker replicas", actual)
		p.Legend.Top = true
		p.Legend.YOffs = -vg.Points(14) // below the title
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

func read(path string) (series, error) {
	f, err := os.Open(path)
	if err != nil {
		return series{}, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return series{}, fmt.Errorf("%s: %w", path, err)
	}
	var s series
	for i, r := range rows[1:] {
		if len(r) != 4 {
			return series{}, fmt.Errorf("%s line %d: want 4 fields, got %d", path, i+2, len(r))
		}
		v := make([]float64, 4)
		for j, field := range r {
			if v[j], err = strconv.ParseFloat(field, 64); err != nil {
				return series{}, fmt.Errorf("%s line %d field %d: %w", path, i+2, j+1, err)
			}
		}
		s.ideal = append(s.ideal, plotter.XY{X: v[0], Y: v[2]})
		s.actual = append(s.actual, plotter.XY{X: v[0], Y: v[3]})
	}
	return s, nil
}
