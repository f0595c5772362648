// Command comparekeda makes the side-by-side of docs/keda.md from the
// recordings of TestCompareKEDA (`make compare-keda` runs both): for each
// pipeline, docs/data/compare-keda-<name>.csv (the namespace's state after
// every watched change) and .json (the run's clock, the machine's load, the
// pipeline's processes). It writes the tables between the markers
// "<!-- compare-keda:begin -->" and "<!-- compare-keda:end -->" of the doc
// and draws the worker's replicas over time:
//
//	go run ./hack/comparekeda -data docs/data -doc docs/keda.md -plot docs/img/compare-keda.png
package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// pipelines in the order of the table, with their titles.
var pipelines = []struct{ name, title string }{
	{"writeup", "(i) the write-up's: Prometheus + KEDA `prometheus` trigger on `cpu_capacity_remaining`"},
	{"direct", "(ii) opportunist direct: the OpportunisticScaler writes /scale"},
	{"keda-external", "(iii) opportunist through KEDA's `external` trigger"},
}

func main() {
	data := flag.String("data", "docs/data", "folder of compare-keda-<pipeline>.csv and .json")
	doc := flag.String("doc", "docs/keda.md", "markdown file whose compare-keda markers receive the tables")
	plotPath := flag.String("plot", "docs/img/compare-keda.png", "the plot to write (.png or .svg)")
	flag.Parse()
	if err := run(*data, *doc, *plotPath); err != nil {
		fmt.Fprintln(os.Stderr, "comparekeda:", err)
		os.Exit(1)
	}
}

func run(data, doc, plotPath string) error {
	var recs []recording
	for _, p := range pipelines {
		r, err := load(filepath.Join(data, "compare-keda-"+p.name))
		if err != nil {
			return fmt.Errorf("%w (make compare-keda records them)", err)
		}
		r.Title = p.title
		recs = append(recs, r)
	}
	text, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	out, err := replaceBetweenMarkers(string(text), render(recs))
	if err != nil {
		return fmt.Errorf("%s: %w", doc, err)
	}
	if err := os.WriteFile(doc, []byte(out), 0o644); err != nil {
		return err
	}
	return drawPlot(plotPath, recs)
}

// recording is one pipeline's run: run.json and samples.csv of TestCompareKEDA.
type recording struct {
	Title            string    `json:"-"`
	Pipeline         string    `json:"pipeline"`
	Date             string    `json:"date"`
	BurstAtSeconds   float64   `json:"burstAtSeconds"`
	BurstEndSeconds  float64   `json:"burstEndSeconds"`
	LengthSeconds    float64   `json:"lengthSeconds"`
	AllocatableMilli int64     `json:"allocatableMilli"`
	HeadroomMilli    int64     `json:"headroomMilli"`
	HPASync          string    `json:"hpaSync"`
	LoadAvgStart     string    `json:"loadAvgStart"`
	LoadAvgEnd       string    `json:"loadAvgEnd"`
	Processes        []process `json:"processes"`
	Samples          []sample  `json:"-"`
}

type process struct {
	Name             string  `json:"name"`
	PID              int     `json:"pid"`
	CPUSecondsTotal  float64 `json:"cpuSecondsTotal"`
	CPUSecondsWindow float64 `json:"cpuSecondsWindow"`
	PeakRSSBytes     int64   `json:"peakRSSBytes"`
}

// sample is the namespace's state from At until the next sample.
type sample struct {
	At                                             float64 // seconds since the pipeline started acting
	Worker                                         int32   // the worker's spec.replicas
	WorkerBound, PaidBound, PaidPending, FreeMilli int64   // milli-cores
	PendingPods, SampleRunning                     int
}

const csvHeader = "time_s,worker_replicas,worker_bound_milli,paid_bound_milli,paid_pending_milli,paid_pending_pods,sample_app_running,free_milli"

func load(base string) (recording, error) {
	var r recording
	js, err := os.ReadFile(base + ".json")
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(js, &r); err != nil {
		return r, fmt.Errorf("%s.json: %w", base, err)
	}
	f, err := os.Open(base + ".csv")
	if err != nil {
		return r, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return r, fmt.Errorf("%s.csv: %w", base, err)
	}
	if len(rows) < 2 {
		return r, fmt.Errorf("%s.csv: no samples", base)
	}
	for i, row := range rows[1:] {
		if len(row) != 8 {
			return r, fmt.Errorf("%s.csv line %d: %d fields, want 8 (%s)", base, i+2, len(row), csvHeader)
		}
		var v [8]float64
		for j, field := range row {
			if v[j], err = strconv.ParseFloat(field, 64); err != nil {
				return r, fmt.Errorf("%s.csv line %d field %d: %w", base, i+2, j+1, err)
			}
		}
		r.Samples = append(r.Samples, sample{At: v[0], Worker: int32(v[1]), WorkerBound: int64(v[2]), PaidBound: int64(v[3]),
			PaidPending: int64(v[4]), PendingPods: int(v[5]), SampleRunning: int(v[6]), FreeMilli: int64(v[7])})
	}
	return r, nil
}

const (
	beginMarker = "<!-- compare-keda:begin -->"
	endMarker   = "<!-- compare-keda:end -->"
)

// replaceBetweenMarkers puts body between the markers, keeping them.
func replaceBetweenMarkers(text, body string) (string, error) {
	i, j := strings.Index(text, beginMarker), strings.Index(text, endMarker)
	if i < 0 || j < i {
		return "", errors.New("no " + beginMarker + " ... " + endMarker + " section: add the two markers where the tables go")
	}
	return text[:i+len(beginMarker)] + "\n" + body + text[j:], nil
}
