package dashboard

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opportunist/opportunist/internal/controller"
	"github.com/opportunist/opportunist/internal/exporter"
)

const grafanaDashboard = "../../deploy/grafana/opportunist.json"

// recordingRegistry keeps what is registered, to describe it.
type recordingRegistry struct{ collectors []prometheus.Collector }

func (r *recordingRegistry) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *recordingRegistry) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
}

func (r *recordingRegistry) Unregister(prometheus.Collector) bool { return false }

// servedMetrics names every series opportunist run serves: the exporter's
// and the controller's metrics, with a histogram's _bucket, _sum and _count.
func servedMetrics(t *testing.T) map[string]bool {
	reg := &recordingRegistry{}
	reg.MustRegister(exporter.NewCollector(nil))
	exporter.NewPaidPodWaitObserver(reg)
	controller.NewMetrics(reg)
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	served := map[string]bool{}
	for _, c := range reg.collectors {
		ch := make(chan *prometheus.Desc, 100)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			m := fqName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("no name in %s", d)
			}
			for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
				served[m[1]+suffix] = true
			}
		}
	}
	if len(served) < 20 {
		t.Fatalf("only %d metrics found: %v", len(served), served)
	}
	return served
}

// Every query of the Grafana dashboard names metrics that opportunist serves.
// Queries write every selector with braces, so a metric is a name before "{".
func TestGrafanaDashboardQueriesServedMetrics(t *testing.T) {
	data, err := os.ReadFile(grafanaDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", grafanaDashboard, err)
	}
	served := servedMetrics(t)
	selector := regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{`)
	queries, capacityGraph := 0, false
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries++
			names := selector.FindAllStringSubmatch(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no metric with a {selector}", p.Title, tg.Expr)
			}
			for _, n := range names {
				if !served[n[1]] {
					t.Errorf("panel %q: query %q names %s, which opportunist does not serve", p.Title, tg.Expr, n[1])
				}
			}
			// Names outside braces and not before one would escape the check.
			for _, bare := range regexp.MustCompile(`\b(opportunist_[a-z_]+|[a-z]+_(total|remaining))\b`).FindAllString(tg.Expr, -1) {
				if !served[bare] {
					t.Errorf("panel %q: query %q names %s, which opportunist does not serve", p.Title, tg.Expr, bare)
				}
			}
			capacityGraph = capacityGraph || strings.Contains(tg.Expr, `class="opportunistic"`)
		}
	}
	if queries < 10 || !capacityGraph {
		t.Errorf("%d queries, capacity graph %v: the dashboard lost panels", queries, capacityGraph)
	}
}
