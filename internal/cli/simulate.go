package cli

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/opportunist/opportunist/internal/sim"
)

type simulateOptions struct {
	Scenario     string
	ScenarioFile string
	Trace        string
	Strategies   []string
	Seed         uint64
	Output       string
	// Format is --format, the deprecated name of -o/--output.
	Format   string
	Plot     string
	TraceOut string
}

func defaultSimulateOptions() *simulateOptions {
	return &simulateOptions{Strategies: sim.Strategies(), Seed: 1}
}

func (o *simulateOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Scenario, "scenario", o.Scenario, "built-in scenario: "+strings.Join(sim.BuiltinNames(), ", "))
	fs.StringVar(&o.ScenarioFile, "scenario-file", o.ScenarioFile, "scenario file (YAML, see docs/simulate.md)")
	fs.StringVar(&o.Trace, "trace", o.Trace, "paid-load trace (CSV with the header time_s,name,replicas) replacing the load of the paid workloads it names")
	fs.StringSliceVar(&o.Strategies, "strategy", o.Strategies, "strategies to compare: "+strings.Join(sim.Strategies(), ", ")+" (and, if asked, "+sim.OpportunistPredictive+")")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the scenario's random noise and bursts: the same seed gives the same result")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "output format: table (the default: the columns to read first), wide (every column), json, yaml or csv")
	fs.StringVar(&o.Format, "format", o.Format, "deprecated name of -o/--output")
	_ = fs.MarkDeprecated("format", "use -o/--output instead")
	fs.StringVar(&o.Plot, "plot", o.Plot, "also draw the requests over time, one panel per strategy, into this .svg or .png file")
	fs.StringVar(&o.TraceOut, "trace-out", o.TraceOut, "also write the per-step trace (each opportunistic workload's desired, current and bound replicas, paid pods pending, free CPU) into this CSV file; the e2e calibration records real runs in the same columns")
}

// Validate returns every problem with the flags at once.
func (o *simulateOptions) Validate() []error {
	var errs []error
	switch {
	case o.Scenario == "" && o.ScenarioFile == "":
		errs = append(errs, fmt.Errorf("--scenario or --scenario-file is required (built in: %s)", strings.Join(sim.BuiltinNames(), ", ")))
	case o.Scenario != "" && o.ScenarioFile != "":
		errs = append(errs, fmt.Errorf("--scenario and --scenario-file are exclusive: pass one of them"))
	case o.Scenario != "" && !slices.Contains(sim.BuiltinNames(), o.Scenario):
		errs = append(errs, fmt.Errorf("--scenario %q is not built in (built in: %s)", o.Scenario, strings.Join(sim.BuiltinNames(), ", ")))
	}
	if len(o.Strategies) == 0 {
		errs = append(errs, fmt.Errorf("--strategy needs at least one of %s", strings.Join(sim.Strategies(), ", ")))
	}
	for i, s := range o.Strategies {
		if err := sim.CheckStrategy(s); err != nil {
			errs = append(errs, fmt.Errorf("--strategy: %w", err))
		} else if slices.Index(o.Strategies, s) != i {
			errs = append(errs, fmt.Errorf("--strategy %q is given twice", s))
		}
	}
	switch {
	case o.Format != "" && o.Output != "":
		errs = append(errs, fmt.Errorf("--format is the deprecated name of -o/--output: give only -o (got -o %s and --format %s)", o.Output, o.Format))
	case o.Format != "":
		errs = append(errs, checkOutput("--format", o.Format, simulateOutputs)...)
	case o.Output != "":
		errs = append(errs, checkOutput("--output", o.Output, simulateOutputs)...)
	}
	if o.Plot != "" {
		if _, err := sim.PlotFormat(o.Plot); err != nil {
			errs = append(errs, fmt.Errorf("--plot: %v", err))
		}
	}
	return errs
}

func newSimulateCommand() *cobra.Command {
	o := defaultSimulateOptions()
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Compare scaling strategies on a simulated cluster, without a cluster",
		Long: `Simulate a cluster and its paid load over time, and compare how much room each
strategy harvests for the opportunistic workloads, how long paid pods wait, and
how much it churns:

  opportunist       the control law of the OpportunisticScaler controller
  hpa-writeup       the write-up's HPA: Object cpu_capacity_remaining, Value = the
                    headroom, no behavior; its controller flags (sync 10s,
                    downscale stabilisation 30s)
  hpa-example       examples/seed/hpa/worker-hpa.yaml: the same metric, 30 s
                    windows both ways; a stock controller (sync 15s)
  hpa-averagevalue  an HPA on opportunist_desired_replicas (External, AverageValue 1)
  instant-law       the control law with perfect, instant knowledge, no stabilisation
  opportunist-predictive
                    opportunist with a forecast of paid demand learned from the
                    run's own past (docs/learning.md); not run unless asked

The HPAs are modelled on the v1.37 controller; a scenario's hpa: section can
give each its own HorizontalPodAutoscaler and controller flags (docs/hpa.md).
Harvest counts the CPU requests of Ready opportunistic pods; OF BOUND is harvest
over the packing bound (what the opportunistic shapes could hold node by node
beside the paid pods, under the headroom: graded without the law); overshoot the
part of harvest that ate into the headroom; paid pending the seconds paid pods
waited unbound. The table fits 120 columns; -o wide prints every column, among
them OF INSTANT LAW, harvest over the instant law's (the law graded by itself).
The scenario and trace formats are in docs/simulate.md.`,
		Example: `  opportunist simulate --scenario seed-burst
  opportunist simulate --scenario diurnal --seed 7 -o json --plot diurnal.svg
  opportunist simulate --scenario fragmented -o wide
  opportunist simulate --scenario-file my-cluster.yaml --trace paid.csv --strategy opportunist,instant-law`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(o.Validate()); err != nil {
				return err
			}
			return o.run(cmd.OutOrStdout())
		},
	}
	o.AddFlags(cmd.Flags())
	completeValues(cmd, "output", simulateOutputs)
	completeValues(cmd, "scenario", sim.BuiltinNames())
	completeList(cmd, "strategy", append(sim.Strategies(), sim.OpportunistPredictive))
	return cmd
}

func (o *simulateOptions) scenario() (*sim.Scenario, error) {
	var sc *sim.Scenario
	var err error
	if o.Scenario != "" {
		sc, err = sim.Builtin(o.Scenario)
	} else {
		sc, err = sim.LoadScenario(o.ScenarioFile)
	}
	if err != nil {
		return nil, err
	}
	if o.Trace != "" {
		data, err := os.ReadFile(o.Trace)
		if err != nil {
			return nil, fmt.Errorf("reading trace: %w", err)
		}
		tr, err := sim.ParseTrace(o.Trace, data)
		if err != nil {
			return nil, err
		}
		if err := sc.ApplyTrace(tr); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

func (o *simulateOptions) run(out io.Writer) error {
	sc, err := o.scenario()
	if err != nil {
		return err
	}
	strategies := o.Strategies
	if sc.Reclaims() && slices.Equal(strategies, sim.Strategies()) {
		strategies = nil // the default: Run picks the strategies that reclaim
	}
	rep, err := sim.Run(sc, sim.Options{Seed: o.Seed, Strategies: strategies, StepTrace: o.TraceOut != ""})
	if err != nil {
		return err
	}
	if o.TraceOut != "" {
		var buf bytes.Buffer
		if err := sim.WriteStepTrace(&buf, rep.Steps); err != nil {
			return fmt.Errorf("writing the step trace: %w", err)
		}
		if err := os.WriteFile(o.TraceOut, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("writing the step trace: %w", err)
		}
	}
	// The plot goes first: a plot that cannot be written fails the command
	// before it prints anything.
	if o.Plot != "" {
		format, _ := sim.PlotFormat(o.Plot) // checked by Validate
		var buf bytes.Buffer
		if err := sim.WritePlot(&buf, rep, format); err != nil {
			return fmt.Errorf("drawing the plot: %w", err)
		}
		if err := os.WriteFile(o.Plot, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("writing the plot: %w", err)
		}
	}
	switch output := o.output(); output {
	case "json", "yaml":
		return writeStructured(out, output, rep)
	case "csv":
		return writeSimulateCSV(out, rep)
	case "wide":
		return writeSimulateWide(out, sc, rep, o.Seed)
	}
	return writeSimulateTable(out, sc, rep, o.Seed)
}

// simulateOutputs are the values of simulate's -o/--output.
var simulateOutputs = []string{"table", "wide", "json", "yaml", "csv"}

// output is the format asked for by -o, or by its deprecated name --format
// (Validate rejects both at once); table when neither.
func (o *simulateOptions) output() string {
	switch {
	case o.Format != "":
		return o.Format
	case o.Output != "":
		return o.Output
	}
	return "table"
}

// tableWidth is what the default table and its heading fit in: a terminal of
// 120 columns. `-o wide` is wider.
const tableWidth = 120

// writeSimulateTable prints the columns to read first, in 120 columns: what
// each strategy harvested and how much of the room there was (OF BOUND, graded
// without the law, so it needs no other strategy explained), what it cost paid
// work (overshoot into the headroom, paid pending, longest wait) and how much
// it churned (direction changes). OF INSTANT LAW is left to wide: it grades against the
// instant law, whose own row is in the table; so are the absolute bound,
// utilization, scale events (direction changes say the churn) and
// unschedulable pod-h, named below the table when not zero.
func writeSimulateTable(w io.Writer, sc *sim.Scenario, rep *sim.Report, seed uint64) error {
	writeSimulateHeading(w, sc, seed)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "STRATEGY\tHARVEST core-h\tOF BOUND\tOVERSHOOT core-h\tPAID PENDING pod-s\tLONGEST WAIT\tDIRECTION CHANGES")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f%%\t%.2f\t%.0f\t%s\t%d\n", r.Strategy, r.HarvestCoreHours, 100*r.HarvestOfBound, r.OvershootCoreHours,
			r.PaidPendingPodSeconds, shortDuration(r.MaxPaidWait), r.DirectionChanges)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nThe paid load or the nodes changed %d times. OF BOUND: harvest over what the room could hold. -o wide: every column.\n", rep.LoadChanges)
	for _, r := range rep.Results {
		if r.UnboundOpportunisticPodHours > 0 {
			fmt.Fprintf(w, "%s left %.2f pod-h of opportunistic pods unschedulable (they fit nowhere).\n", r.Strategy, r.UnboundOpportunisticPodHours)
		}
	}
	writeReclaimLines(w, sc, rep)
	return nil
}

// writeReclaimLines says, in a scenario that reclaims, what each strategy
// reclaimed from idle paid requests, at what cost to paid pods, and its
// harvest over the opportunist's with reclaim off (docs/reclaim.md).
func writeReclaimLines(w io.Writer, sc *sim.Scenario, rep *sim.Report) {
	if !sc.Reclaims() {
		return
	}
	for _, r := range rep.Results {
		line := fmt.Sprintf("%s reclaimed %.1f core-h from idle paid requests; paid CPU contention %.0f node-s (%.3f%% of node-time); harvest %.2fx the %.1f core-h of requests alone.",
			r.Strategy, r.ReclaimedCoreHours, r.PaidCPUContentionSeconds, 100*r.PaidCPUContentionOfNodeTime, r.HarvestOfRequestsOnly, r.RequestsOnlyCoreHours)
		fmt.Fprintln(w, wrap(line, tableWidth))
	}
}

// writeSimulateWide prints every column.
func writeSimulateWide(w io.Writer, sc *sim.Scenario, rep *sim.Report, seed uint64) error {
	writeSimulateHeading(w, sc, seed)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "STRATEGY\tHARVEST core-h\tINSTANT-LAW core-h\tOF INSTANT LAW\tBOUND core-h\tOF BOUND\tUTILIZATION\tOVERSHOOT core-h\tPAID PENDING pod-s\tLONGEST WAIT\tSCALES\tDIRECTION CHANGES\tUNSCHEDULABLE pod-h\tKILLED YOUNG\tRECLAIMED core-h\tCONTENTION node-s\tCONTENTION OF NODE-TIME\tREQUESTS-ONLY core-h\tOF REQUESTS-ONLY")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f%%\t%.1f\t%.1f%%\t%.1f%%\t%.2f\t%.0f\t%s\t%d\t%d\t%.2f\t%d\t%.1f\t%.0f\t%.3f%%\t%.1f\t%.2fx\n", r.Strategy, r.HarvestCoreHours, r.InstantLawCoreHours,
			100*r.HarvestRatio, r.BoundCoreHours, 100*r.HarvestOfBound, 100*r.MeanUtilization, r.OvershootCoreHours, r.PaidPendingPodSeconds, shortDuration(r.MaxPaidWait),
			r.ScaleEvents, r.DirectionChanges, r.UnboundOpportunisticPodHours, r.OpportunisticPodsKilledYoung,
			r.ReclaimedCoreHours, r.PaidCPUContentionSeconds, 100*r.PaidCPUContentionOfNodeTime, r.RequestsOnlyCoreHours, r.HarvestOfRequestsOnly)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "\nThe paid load or the nodes changed %d times. UNSCHEDULABLE: opportunistic pods that fit nowhere (pod-hours). KILLED YOUNG: opportunistic pods stopped within 5 minutes of starting. RECLAIMED, CONTENTION, REQUESTS-ONLY: docs/reclaim.md (0 without reclaim).\n", rep.LoadChanges); err != nil {
		return err
	}
	return nil
}

// writeSimulateHeading names the scenario, wrapped to the table's width.
func writeSimulateHeading(w io.Writer, sc *sim.Scenario, seed uint64) {
	line := fmt.Sprintf("Scenario %s (%s at a %s step, seed %d): %s", sc.Name, shortDuration(sc.Duration), shortDuration(sc.Step), seed, sc.Description)
	fmt.Fprintf(w, "%s\n\n", wrap(line, tableWidth))
}

// wrap breaks text at spaces into lines of at most width characters (a word
// longer than width stays whole).
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(text) {
		switch {
		case i == 0:
		case n+1+utf8.RuneCountInString(word) > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += utf8.RuneCountInString(word)
	}
	return b.String()
}

// writeSimulateCSV prints one row per strategy: the scenario, then every
// JSON field of sim.Result under its JSON name, in the same order, so that
// the CSV and JSON readers share one list of names (and a field added to
// the Result appears in both).
func writeSimulateCSV(w io.Writer, rep *sim.Report) error {
	fields := csvFields(reflect.TypeFor[sim.Result]())
	cw := csv.NewWriter(w)
	header := []string{"scenario"}
	for _, f := range fields {
		header = append(header, f.name)
	}
	_ = cw.Write(header)
	for _, r := range rep.Results {
		row := []string{rep.Scenario}
		v := reflect.ValueOf(r)
		for _, f := range fields {
			row = append(row, csvValue(v.Field(f.index)))
		}
		_ = cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

type csvField struct {
	name  string
	index int
}

// csvFields lists a struct's JSON fields (those with a json name, not "-").
func csvFields(t reflect.Type) []csvField {
	var out []csvField
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, csvField{name: name, index: i})
		}
	}
	return out
}

// csvValue prints a number as JSON does (no exponent, no trailing zeros).
func csvValue(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'f', -1, 64)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	}
	return fmt.Sprint(v.Interface())
}

// shortDuration prints 40m, 24h, 1h30m, 6s rather than 40m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
