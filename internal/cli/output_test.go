package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"sigs.k8s.io/yaml"

	"github.com/opportunist/opportunist/internal/sim"
)

// deprecatedFormat is pflag's notice for --format. cobra prints flag notices
// to OutOrStderr: stderr in the binary (main sets no output), but the out
// buffer of a test that sets one.
const deprecatedFormat = "Flag --format has been deprecated, use -o/--output instead\n"

// executeSplit runs the command tree with stdout and stderr apart, and
// returns the notices cobra prints (which the binary prints on stderr) apart
// from the rest of the output.
func executeSplit(t *testing.T, args ...string) (stdout, notices string, err error) {
	t.Helper()
	root := NewRoot("opportunist")
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.Execute()
	stdout = out.String()
	if rest, ok := strings.CutPrefix(stdout, deprecatedFormat); ok {
		stdout, notices = rest, deprecatedFormat
	}
	return stdout, errOut.String() + notices, err
}

// TestSimulateFormatIsDeprecatedOutput: --format still works, prints what
// -o prints, and says on stderr that -o replaces it.
func TestSimulateFormatIsDeprecatedOutput(t *testing.T) {
	for _, format := range []string{"json", "csv"} {
		t.Run(format, func(t *testing.T) {
			args := []string{"simulate", "--scenario", "seed-burst", "--strategy", "opportunist,instant-law"}
			withO, errO, err := executeSplit(t, append(args, "-o", format)...)
			if err != nil {
				t.Fatal(err)
			}
			withFormat, errFormat, err := executeSplit(t, append(args, "--format", format)...)
			if err != nil {
				t.Fatal(err)
			}
			if withO != withFormat {
				t.Errorf("--format %s printed\n%s\n-o %s printed\n%s\nwant the same", format, withFormat, format, withO)
			}
			if errO != "" {
				t.Errorf("-o printed on stderr: %q", errO)
			}
			if errFormat != deprecatedFormat {
				t.Errorf("--format printed %q on stderr, want %q", errFormat, deprecatedFormat)
			}
		})
	}
}

// TestSimulateOutputAndFormatConflict: -o and its deprecated name together
// are one clear error, whichever values they carry.
func TestSimulateOutputAndFormatConflict(t *testing.T) {
	for _, args := range [][]string{{"-o", "json", "--format", "json"}, {"--format", "csv", "--output", "table"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, _, err := executeSplit(t, append([]string{"simulate", "--scenario", "seed-burst"}, args...)...)
			const want = "invalid flags: --format is the deprecated name of -o/--output: give only -o"
			if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Count(err.Error(), ";") != 0 {
				t.Fatalf("error = %v, want one error starting %q", err, want)
			}
			if out != "" {
				t.Errorf("printed on a user error:\n%s", out)
			}
		})
	}
}

// TestYAMLHasTheJSONFields: -o yaml is the JSON, field for field, on every
// command that prints JSON.
func TestYAMLHasTheJSONFields(t *testing.T) {
	for _, args := range [][]string{
		{"simulate", "--scenario", "seed-burst", "--strategy", "opportunist,hpa-writeup"},
		{"version"},
	} {
		t.Run(args[0], func(t *testing.T) {
			js, _, err := executeSplit(t, append(args, "-o", "json")...)
			if err != nil {
				t.Fatal(err)
			}
			ym, _, err := executeSplit(t, append(args, "-o", "yaml")...)
			if err != nil {
				t.Fatal(err)
			}
			var fromJSON, fromYAML any
			if err := json.Unmarshal([]byte(js), &fromJSON); err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal([]byte(ym), &fromYAML); err != nil {
				t.Fatalf("-o yaml does not parse as YAML: %v\n%s", err, ym)
			}
			if !reflect.DeepEqual(fromJSON, fromYAML) {
				t.Errorf("-o yaml\n%s\nis not -o json\n%s", ym, js)
			}
		})
	}
}

// TestSimulateTableFits120Columns: the default table, its heading and its
// notes fit a terminal of 120 columns (the web-* scenarios take seconds each
// and are left out).
func TestSimulateTableFits120Columns(t *testing.T) {
	for _, scenario := range []string{"seed-burst", "fragmented", "tainted-pool", "spiky", "idle-requests"} {
		t.Run(scenario, func(t *testing.T) {
			out, err := execute(t, "simulate", "--scenario", scenario)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(out, "\n") {
				if n := utf8.RuneCountInString(line); n > tableWidth {
					t.Errorf("a line of %d columns, want at most %d:\n%s", n, tableWidth, line)
				}
			}
		})
	}
}

// TestSimulateWideHasEveryColumn: -o wide has a column for every number of
// a strategy's JSON (its strategy, each figure), and the default table a
// subset of them.
func TestSimulateWideHasEveryColumn(t *testing.T) {
	args := []string{"simulate", "--scenario", "seed-burst", "--strategy", "opportunist"}
	js, err := execute(t, append(args, "-o", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal([]byte(js), &doc); err != nil || len(doc.Results) != 1 {
		t.Fatalf("JSON %q: %v", js, err)
	}
	columns := func(output string) []string {
		out, err := execute(t, append(args, "-o", output)...)
		if err != nil {
			t.Fatal(err)
		}
		// The row of the one strategy: the line starting with its name.
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "opportunist ") {
				return strings.Fields(line)
			}
		}
		t.Fatalf("-o %s has no row for opportunist:\n%s", output, out)
		return nil
	}
	wide, table := columns("wide"), columns("table")
	if len(wide) != len(doc.Results[0]) {
		t.Errorf("-o wide has %d columns %q, want one per JSON field (%d)", len(wide), wide, len(doc.Results[0]))
	}
	if len(table) >= len(wide) {
		t.Errorf("the default table has %d columns, -o wide %d: want wide to have more", len(table), len(wide))
	}
	for _, c := range table {
		if !strings.Contains(strings.Join(wide, " "), c) {
			t.Errorf("the default table shows %q, which -o wide does not", c)
		}
	}
}

// TestCompletion: shell completion (and so kubectl_complete-opportunist)
// offers the values of -o, --scenario and --strategy.
func TestCompletion(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"simulate", "-o", ""}, []string{"table", "wide", "json", "yaml", "csv"}},
		{[]string{"version", "-o", ""}, []string{"json", "yaml"}},
		{[]string{"simulate", "--scenario", ""}, sim.BuiltinNames()}, // the shell keeps those that start with what was typed
		{[]string{"simulate", "--strategy", "opportunist,hpa-w"}, []string{"opportunist,hpa-writeup"}},
		{[]string{"simulate", "--strategy", "instant-law,"}, []string{"instant-law,opportunist", "instant-law,hpa-writeup", "instant-law,hpa-example", "instant-law,hpa-averagevalue", "instant-law,opportunist-predictive"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, _, err := executeSplit(t, append([]string{"__complete"}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			// The values, one a line, then ":<directive>".
			lines := strings.Split(strings.TrimSpace(out), "\n")
			var got []string
			for _, l := range lines {
				if !strings.HasPrefix(l, ":") {
					got = append(got, l)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("completes %q, want %q", got, tt.want)
			}
		})
	}
}

// TestKubectlCompleteScript: the kubectl_complete-opportunist that `make
// plugin` installs hands its words to kubectl-opportunist __complete.
func TestKubectlCompleteScript(t *testing.T) {
	script, err := filepath.Abs("../../hack/kubectl_complete-opportunist")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// A stand-in plugin that prints its arguments, one a line.
	if err := os.WriteFile(filepath.Join(dir, "kubectl-opportunist"), []byte("#!/bin/sh\nprintf '%s\\n' \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(script, "simulate", "-o", "")
	cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	if want := "__complete\nsimulate\n-o\n\n"; string(out) != want {
		t.Errorf("kubectl-opportunist got %q, want %q", out, want)
	}
}

// TestJSONNamesSayTheirUnits: every JSON the commands print (simulate,
// status, version) names its fields in camelCase, as Kubernetes does, and a
// reader can tell the unit of every number from its name (…CoreHours,
// …Seconds, …MilliCores, …Bytes), from a "unit" field beside it, or because
// it is a ratio (0–1) or a count of things it names.
func TestJSONNamesSayTheirUnits(t *testing.T) {
	simulateJSON, err := execute(t, "simulate", "--scenario", "seed-burst", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	versionJSON, _, err := executeSplit(t, "version", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	statusJSON, err := os.ReadFile(filepath.Join("testdata", "status.json")) // TestStatusGolden keeps it current
	if err != nil {
		t.Fatal(err)
	}
	camel := regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)
	unitSuffix := regexp.MustCompile(`(CoreHours|Cores|MilliCores|Bytes|Seconds|PodHours)$`)
	// A ratio says what it is a fraction of: harvestOfBound, paidCpuContentionOfNodeTime.
	ratios := regexp.MustCompile(`^(\w+Of[A-Z]\w*|meanUtilization)$`)
	// A count names what it counts: opportunisticPodsKilledYoung, scaleEvents, poolNodes.
	counts := regexp.MustCompile(`(?i)(pods|nodes|replicas|events|changes|slots|stranded|pending|wanted|fit)`)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		case map[string]any:
			_, hasUnit := v["unit"].(string)
			for key, e := range v {
				at := path + "." + key
				if !camel.MatchString(key) {
					t.Errorf("%s: %q is not camelCase", at, key)
				}
				if key == "labels" {
					continue // the node's own labels: data, not our names
				}
				if _, isNumber := e.(float64); isNumber && !hasUnit && !unitSuffix.MatchString(key) && !ratios.MatchString(key) && !counts.MatchString(key) {
					t.Errorf("%s: a number whose name says no unit (and no \"unit\" field beside it)", at)
				}
				walk(at, e)
			}
		}
	}
	for name, doc := range map[string][]byte{"simulate -o json": []byte(simulateJSON), "status -o json": statusJSON, "version -o json": []byte(versionJSON)} {
		var v any
		if err := json.Unmarshal(doc, &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		walk(name, v)
	}
}
