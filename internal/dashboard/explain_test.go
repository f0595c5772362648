package dashboard

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/opportunist/opportunist/internal/palette"
)

// The state tells a newcomer what the scenario and each strategy are, and
// carries simulate's numbers under simulate's names.
func TestStateCarriesExplanationsAndSummary(t *testing.T) {
	var raw map[string]any
	if err := json.Unmarshal(get(t, NewHandler(fakeSource{}), "/api/v1/state").Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	sc, ok := raw["scenario"].(map[string]any)
	if !ok {
		t.Fatalf("state has no scenario object: %v", raw)
	}
	for _, k := range []string{"name", "description", "setting", "durationSeconds", "loadChanges"} {
		if _, ok := sc[k]; !ok {
			t.Errorf("scenario lacks %q", k)
		}
	}
	view := raw["views"].([]any)[0].(map[string]any)
	if view["description"] != "this project's controller" {
		t.Errorf("view description = %v", view["description"])
	}
	summary, ok := view["summary"].(map[string]any)
	if !ok {
		t.Fatalf("view has no summary object: %v", view)
	}
	// The keys of sim.Result's JSON after this session (docs/simulate.md).
	for _, k := range []string{"harvestCoreHours", "instantLawCoreHours", "harvestOfInstantLaw", "boundCoreHours", "harvestOfBound",
		"overshootCoreHours", "paidPendingPodSeconds", "longestPaidWaitSeconds", "scaleEvents", "directionChanges", "unschedulablePodHours"} {
		if _, ok := summary[k]; !ok {
			t.Errorf("summary lacks %q: %v", k, summary)
		}
	}
	if summary["longestPaidWaitSeconds"] != 6.0 || summary["directionChanges"] != 2.0 {
		t.Errorf("summary = %v", summary)
	}
}

// A live cluster has no scenario and no summary: the keys are left out,
// not sent empty.
func TestStateWithoutScenario(t *testing.T) {
	data, err := json.Marshal(State{Views: []View{{Name: "cluster"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"scenario"`, `"summary"`, `"description"`} {
		if strings.Contains(string(data), k) {
			t.Errorf("a state without a scenario carries %s: %s", k, data)
		}
	}
}

// Counts and ratios whose names say what they are without a unit.
var unitless = []string{
	"current", "desired", "min", "max", "poolNodes", "stranded", "wanted", "fit", "slots", "pods", "gated",
	"from", "to", "loadChanges", "scaleEvents", "directionChanges", "pendingPaidPods",
	"harvestOfInstantLaw", "harvestOfBound",
}

var unitSuffix = regexp.MustCompile(`(Seconds|CoreHours|PodSeconds|PodHours|MilliCores|Bytes|Cores)$`)

// numbersWithoutUnit lists the paths of the numbers in v whose unit a
// reader cannot tell: neither the key's suffix, nor a "unit" beside it,
// nor a known count or ratio.
func numbersWithoutUnit(path string, v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		_, hasUnit := x["unit"]
		for k, e := range x {
			if _, isNumber := e.(float64); isNumber {
				if !hasUnit && !unitSuffix.MatchString(k) && !slices.Contains(unitless, k) {
					out = append(out, path+"."+k)
				}
				continue
			}
			out = append(out, numbersWithoutUnit(path+"."+k, e)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, numbersWithoutUnit(path+"[]", e)...)
		}
	}
	return out
}

// The plan's naming rule: camelCase keys, and every number's unit in its
// name or in a "unit" field of the same object.
func TestJSONNumbersNameTheirUnits(t *testing.T) {
	camel := regexp.MustCompile(`"([a-z][A-Za-z0-9]*)":`)
	anyKey := regexp.MustCompile(`"([^"]+)":`)
	for _, path := range []string{"/api/v1/state", "/api/v1/history", "/api/v1/state with forecasts"} {
		h := NewHandler(fakeSource{})
		if p, ok := strings.CutSuffix(path, " with forecasts"); ok {
			h, path = NewHandler(forecastSource{}), p
		}
		body := get(t, h, path).Body.String()
		var raw any
		if err := json.Unmarshal([]byte(body), &raw); err != nil {
			t.Fatal(err)
		}
		if bad := numbersWithoutUnit("", raw); len(bad) > 0 {
			t.Errorf("%s: numbers without a unit in their name or beside them: %v", path, bad)
		}
		if n, m := len(anyKey.FindAllString(body, -1)), len(camel.FindAllString(body, -1)); n != m {
			t.Errorf("%s: %d of %d keys are not camelCase: %s", path, n-m, n, body)
		}
	}
}

func TestNumbersWithoutUnitCatchesOne(t *testing.T) {
	got := numbersWithoutUnit("", map[string]any{"a": map[string]any{"wait": 3.0, "waitSeconds": 3.0}, "b": map[string]any{"unit": "cores", "paid": 1.0}})
	if !slices.Equal(got, []string{".a.wait"}) {
		t.Errorf("numbersWithoutUnit = %v, want [.a.wait]", got)
	}
}

// The page's colours are the simulate plots' (internal/palette), served as
// CSS and defined nowhere else.
func TestPaletteIsServedAndDefinedOnce(t *testing.T) {
	h := NewHandler(fakeSource{})
	rec := get(t, h, "/palette.css")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/css; charset=utf-8" {
		t.Fatalf("GET /palette.css: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{"--paid: " + palette.Hex(palette.Paid), "--opportunistic: " + palette.Hex(palette.Opportunistic), "--fill-line: " + palette.Hex(palette.FillLine)} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("palette.css lacks %q:\n%s", want, rec.Body)
		}
	}
	index := get(t, h, "/").Body.String()
	if p, s := strings.Index(index, `href="palette.css"`), strings.Index(index, `href="style.css"`); p < 0 || s < 0 || p > s {
		t.Errorf("index.html must load palette.css, before style.css")
	}
	declared := regexp.MustCompile(`--(paid|opportunistic|allocatable|fill-line|good|bad)\s*:`)
	for _, asset := range []string{"assets/style.css", "assets/app.js", "assets/index.html"} {
		data, err := assets.ReadFile(asset)
		if err != nil {
			t.Fatal(err)
		}
		if m := declared.FindString(string(data)); m != "" {
			t.Errorf("%s declares %q: the palette's colours belong in internal/palette", asset, m)
		}
	}
}
