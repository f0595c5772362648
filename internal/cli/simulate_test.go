package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSimulateOptionsValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*simulateOptions)
		want   []string
	}{
		{name: "a built-in scenario", mutate: func(o *simulateOptions) { o.Scenario = "diurnal" }},
		{name: "a scenario is required", mutate: func(*simulateOptions) {}, want: []string{"--scenario or --scenario-file is required (built in: daily-checkpoint, daily-office, diurnal, fragmented, idle-requests, random-bursts, seed-burst, spiky, tainted-pool, web-headroom, web-headroom-priority, web-slots, web-slots-priority)"}},
		{name: "every problem at once", mutate: func(o *simulateOptions) {
			o.Scenario, o.ScenarioFile, o.Strategies, o.Format, o.Plot = "x", "y.yaml", []string{"instant-law", "pid", "instant-law", "oracle"}, "xml", "plot.pdf"
		}, want: []string{
			"--scenario and --scenario-file are exclusive",
			`--strategy: unknown strategy "pid" (known: opportunist, hpa-writeup, hpa-example, hpa-averagevalue, instant-law, opportunist-predictive)`,
			`--strategy "instant-law" is given twice`,
			`--strategy: strategy "oracle": it was renamed instant-law (the control law with perfect, instant knowledge, no stabilisation)`,
			`--format must be table, wide, json, yaml or csv, got "xml"`,
			`--plot: the plot file must end in .svg or .png, got "plot.pdf"`,
		}},
		{name: "unknown built-in", mutate: func(o *simulateOptions) { o.Scenario = "monday" }, want: []string{`--scenario "monday" is not built in`}},
		{name: "no strategy", mutate: func(o *simulateOptions) { o.Scenario, o.Strategies = "spiky", nil }, want: []string{"--strategy needs at least one"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := defaultSimulateOptions()
			tt.mutate(o)
			errs := o.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to mention %q", i, errs[i], w)
				}
			}
		})
	}
}

func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := NewRoot("opportunist")
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestSimulateGolden(t *testing.T) {
	for _, format := range []string{"table", "wide", "json", "yaml", "csv"} {
		t.Run(format, func(t *testing.T) {
			out, err := execute(t, "simulate", "--scenario", "seed-burst", "-o", format)
			if err != nil {
				t.Fatal(err)
			}
			ext := map[string]string{"table": "txt", "wide": "wide.txt", "json": "json", "yaml": "yaml", "csv": "csv"}[format]
			golden := filepath.Join("testdata", "simulate-seed-burst."+ext)
			if *update {
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if out != string(want) {
				t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, out)
			}
		})
	}
}

func TestSimulateScenarioFileAndTrace(t *testing.T) {
	dir := t.TempDir()
	scenario := filepath.Join(dir, "mine.yaml")
	writeFile(t, scenario, `name: mine
duration: 30m
nodeGroups:
- {name: n, count: 2, allocatable: {cpu: "16", memory: 64Gi}}
paid:
- {name: web, requests: {cpu: "4"}, replicas: 2}
opportunistic:
- {name: batch, requests: {cpu: "1"}, maxReplicas: 40, headroom: {cpu: "4"}}
`)
	trace := filepath.Join(dir, "web.csv")
	writeFile(t, trace, "time_s,name,replicas\n0,web,2\n600,web,6\n1200,web,1\n")
	out, err := execute(t, "simulate", "--scenario-file", scenario, "--trace", trace, "--strategy", "opportunist,instant-law", "-o", "csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "mine,opportunist,") || !strings.HasPrefix(lines[2], "mine,instant-law,") {
		t.Fatalf("output:\n%s\nwant a header and the two strategies asked for", out)
	}
	// From 0 the instant law fills the room; the trace then moves web 2 -> 6 -> 1:
	// down, then up.
	header, instant := strings.Split(lines[0], ","), strings.Split(lines[2], ",")
	col := func(name string) string {
		if i := slices.Index(header, name); i >= 0 && i < len(instant) {
			return instant[i]
		}
		return "(no column " + name + ")"
	}
	if col("scaleEvents") != "3" || col("directionChanges") != "2" {
		t.Errorf("instant-law row %q, want 3 scale events and 2 direction changes", lines[2])
	}
}

// TestSimulateCSVColumnsAreJSONFields: CSV carries every JSON field, in the
// same order, after its scenario column.
func TestSimulateCSVColumnsAreJSONFields(t *testing.T) {
	args := []string{"simulate", "--scenario", "seed-burst", "--strategy", "opportunist"}
	js, err := execute(t, append(args, "-o", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	csvOut, err := execute(t, append(args, "--output", "csv")...)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal([]byte(js), &doc); err != nil || len(doc.Results) != 1 {
		t.Fatalf("JSON %q: %v", js, err)
	}
	dec := json.NewDecoder(bytes.NewReader(doc.Results[0]))
	var keys []string
	if _, err := dec.Token(); err != nil { // {
		t.Fatal(err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	header, _, _ := strings.Cut(csvOut, "\n")
	if want := strings.Join(append([]string{"scenario"}, keys...), ","); header != want {
		t.Errorf("CSV header\n%s\nwant the JSON fields\n%s", header, want)
	}
	for _, k := range []string{"longestPaidWaitSeconds", "unschedulablePodHours"} {
		if !slices.Contains(keys, k) {
			t.Errorf("JSON has no %s (the table shows it)", k)
		}
	}
}

func TestSimulateErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "duration: 1h\nnodeGroups:\n- {name: n, count: 1, allocatable: {cpu: lots}}\n")
	badTrace := filepath.Join(dir, "bad.csv")
	writeFile(t, badTrace, "time_s,name,replicas\n0,other-services,many\n")
	huge := filepath.Join(dir, "huge.yaml")
	writeFile(t, huge, "duration: 1h\nnodeGroups: [{name: n, count: 1, allocatable: {cpu: \"8\"}}]\npaid: [{name: web, requests: {cpu: \"1\"}, replicas: 2000000000}]\n"+
		"opportunistic: [{name: w, requests: {cpu: \"1\"}, maxReplicas: 5}]\n")
	headerOnly := filepath.Join(dir, "header.csv")
	writeFile(t, headerOnly, "time_s,name,replicas\n")
	unknownTrace := filepath.Join(dir, "unknown.csv")
	writeFile(t, unknownTrace, "time_s,name,replicas\n0,checkout,3\n")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"simulate", "--scenario-file", bad}, bad + `:3: nodeGroups[0].allocatable.cpu: "lots" is not a quantity (like 4, 500m or 80Gi)`},
		{[]string{"simulate", "--scenario", "seed-burst", "--trace", badTrace}, badTrace + `:2: replicas: "many" is not a whole number of replicas, 0 or more`},
		{[]string{"simulate", "--scenario", "seed-burst", "--trace", unknownTrace}, unknownTrace + `:2: name: "checkout" is not a paid workload of scenario seed-burst (paid: other-services, sample-metrics-app)`},
		{[]string{"simulate", "--scenario-file", huge}, huge + ":3: paid[0].replicas: 2000000000 replicas make 2000000005 pods in total with the other workloads at their peaks, more than the simulator's limit of 300000"},
		{[]string{"simulate", "--scenario", "seed-burst", "--trace", headerOnly}, headerOnly + ": no rows after the header"},
		{[]string{"simulate", "--scenario-file", filepath.Join(dir, "none.yaml")}, "reading scenario: open " + filepath.Join(dir, "none.yaml") + ": no such file or directory"},
		{[]string{"simulate", "--scenario", "seed-burst", "--plot", filepath.Join(dir, "no", "dir", "p.svg")}, "writing the plot: open " + filepath.Join(dir, "no", "dir", "p.svg")},
		{[]string{"simulate", "--scenario", "seed-burst", "--trace-out", filepath.Join(dir, "no", "dir", "t.csv")}, "writing the step trace: open " + filepath.Join(dir, "no", "dir", "t.csv")},
		{[]string{"simulate", "--scenario", "seed-burst", "--seed", "-1"}, `--seed "-1" is not a whole number, 0 or more`},
		{[]string{"simulate", "-o", "yaml"}, "invalid flags: --scenario or --scenario-file is required"},
		{[]string{"simulate", "--scenario", "seed-burst", "-o", "xml"}, `invalid flags: --output must be table, wide, json, yaml or csv, got "xml"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[1:], " "), func(t *testing.T) {
			out, err := execute(t, tt.args...)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error = %v\nwant one line starting %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("printed on a user error:\n%s", out)
			}
		})
	}
}

func TestSimulatePlot(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ file, magic string }{{"p.svg", "<?xml"}, {"p.png", "\x89PNG"}} {
		path := filepath.Join(dir, tt.file)
		if _, err := execute(t, "simulate", "--scenario", "seed-burst", "--strategy", "opportunist,hpa-writeup", "--plot", path); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte(tt.magic)) {
			t.Errorf("%s starts %q, want %q", tt.file, data[:min(len(data), 8)], tt.magic)
		}
		if tt.file == "p.svg" {
			for _, title := range []string{"opportunist on seed-burst", "hpa-writeup on seed-burst"} {
				if !bytes.Contains(data, []byte(title)) {
					t.Errorf("the plot has no panel titled %q", title)
				}
			}
		}
	}
}

// TestSimulateTraceOut: --trace-out writes the per-step trace of the
// strategies asked for, and only of those.
func TestSimulateTraceOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "steps.csv")
	if _, err := execute(t, "simulate", "--scenario", "seed-burst", "--strategy", "opportunist", "--trace-out", path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	const first = "strategy,seconds,workload,desired,current,bound,paid_pending,free_cpu\nopportunist,0,worker,116,116,116,0,30.000"
	if got := strings.Join(lines[:min(2, len(lines))], "\n"); got != first {
		t.Errorf("the trace starts\n%s\nwant (184 cores - 38 paid - 116 workers = 30 free)\n%s", got, first)
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "opportunist,2399,worker,") {
		t.Errorf("the trace ends with %q, want the last step of 40m at 1s (2399 s)", last)
	}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "opportunist,") {
			t.Errorf("a row of a strategy not asked for: %q", l)
		}
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDocsShowTheGoldenTables: docs/simulate.md shows the table and the wide
// table byte for byte as the goldens have them.
func TestDocsShowTheGoldenTables(t *testing.T) {
	doc, err := os.ReadFile("../../docs/simulate.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ command, golden string }{
		{"opportunist simulate --scenario seed-burst", "simulate-seed-burst.txt"},
		{"opportunist simulate --scenario seed-burst -o wide", "simulate-seed-burst.wide.txt"},
	} {
		want, err := os.ReadFile(filepath.Join("testdata", tt.golden))
		if err != nil {
			t.Fatal(err)
		}
		if block := "```\n$ " + tt.command + "\n" + string(want) + "```\n"; !strings.Contains(string(doc), block) {
			t.Errorf("docs/simulate.md does not show `%s` as testdata/%s has it:\n%s", tt.command, tt.golden, block)
		}
	}
}

// TestDocsShowTheJSONFields: the JSON example in docs/simulate.md has the
// fields of the golden's first strategy, in order and with its values.
func TestDocsShowTheJSONFields(t *testing.T) {
	doc, err := os.ReadFile("../../docs/simulate.md")
	if err != nil {
		t.Fatal(err)
	}
	_, example, ok := strings.Cut(string(doc), "```json\n")
	if !ok {
		t.Fatal("docs/simulate.md has no ```json example")
	}
	_, example, _ = strings.Cut(example, `"results": [`)
	example, _, ok = strings.Cut(example, "}")
	if !ok {
		t.Fatalf("docs/simulate.md's JSON example has no first result: %q", example)
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "simulate-seed-burst.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(golden, &rep); err != nil || len(rep.Results) == 0 {
		t.Fatalf("testdata/simulate-seed-burst.json: %v", err)
	}
	got, want := orderedFields(t, []byte(example+"}")), orderedFields(t, rep.Results[0])
	if !slices.Equal(got, want) {
		t.Errorf("docs/simulate.md's JSON example has\n%v\nwant the golden's first result\n%v", got, want)
	}
}

// orderedFields lists an object's "key=value" pairs in order.
func orderedFields(t *testing.T, object []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(object))
	if _, err := dec.Token(); err != nil {
		t.Fatalf("%s: %v", object, err)
	}
	var out []string
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: %v", object, err)
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			t.Fatalf("%s: %v", object, err)
		}
		out = append(out, fmt.Sprintf("%s=%s", key, value))
	}
	return out
}
