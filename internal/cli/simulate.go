package cli

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

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
	Format       string
	Plot         string
	TraceOut     string
}

func defaultSimulateOptions() *simulateOptions {
	return &simulateOptions{Strategies: sim.Strategies(), Seed: 1, Format: "table"}
}

func (o *simulateOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Scenario, "scenario", o.Scenario, "built-in scenario: "+strings.Join(sim.BuiltinNames(), ", "))
	fs.StringVar(&o.ScenarioFile, "scenario-file", o.ScenarioFile, "scenario file (YAML, see docs/simulate.md)")
	fs.StringVar(&o.Trace, "trace", o.Trace, "paid-load trace (CSV with the header time_s,name,replicas) replacing the load of the paid workloads it names")
	fs.StringSliceVar(&o.Strategies, "strategy", o.Strategies, "strategies to compare: "+strings.Join(sim.Strategies(), ", "))
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the scenario's random noise and bursts: the same seed gives the same result")
	fs.StringVar(&o.Format, "format", o.Format, "output format: table, json or csv")
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
		errs = append(errs, fmt.Errorf("--scenario and --scenario-file are exclusive"))
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
	switch o.Format {
	case "table", "json", "csv":
	default:
		errs = append(errs, fmt.Errorf("--format must be table, json or csv, got %q", o.Format))
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

The HPAs are modelled on the v1.37 controller; a scenario's hpa: section can
give each its own HorizontalPodAutoscaler and controller flags (docs/hpa.md).
Harvest counts the CPU requests of Ready opportunistic pods; RATIO is harvest over
the instant law's (the law graded by itself), OF BOUND harvest over the packing
bound (what the opportunistic shapes could hold node by node beside the paid pods,
under the headroom: graded without the law); overshoot the part of harvest that
ate into the headroom; paid pending the seconds paid pods waited unbound.
The scenario and trace formats are in docs/simulate.md.`,
		Example: `  opportunist simulate --scenario seed-burst
  opportunist simulate --scenario diurnal --seed 7 --format json --plot diurnal.svg
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
	rep, err := sim.Run(sc, sim.Options{Seed: o.Seed, Strategies: o.Strategies, StepTrace: o.TraceOut != ""})
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
	switch o.Format {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "csv":
		return writeSimulateCSV(out, rep)
	}
	return writeSimulateTable(out, sc, rep, o.Seed)
}

func writeSimulateTable(w io.Writer, sc *sim.Scenario, rep *sim.Report, seed uint64) error {
	fmt.Fprintf(w, "Scenario %s (%s at a %s step, seed %d): %s\n\n", sc.Name, shortDuration(sc.Duration), shortDuration(sc.Step), seed, sc.Description)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "STRATEGY\tHARVEST core-h\tINSTANT-LAW core-h\tRATIO\tBOUND core-h\tOF BOUND\tUTILIZATION\tOVERSHOOT core-h\tPAID PENDING pod-s\tLONGEST WAIT\tSCALES\tDIRECTION CHANGES\tUNSCHEDULABLE pod-h")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f%%\t%.1f\t%.1f%%\t%.1f%%\t%.2f\t%.0f\t%s\t%d\t%d\t%.2f\n", r.Strategy, r.HarvestCoreHours, r.InstantLawCoreHours,
			100*r.HarvestRatio, r.BoundCoreHours, 100*r.HarvestOfBound, 100*r.MeanUtilization, r.OvershootCoreHours, r.PaidPendingPodSeconds, shortDuration(r.MaxPaidWait),
			r.ScaleEvents, r.DirectionChanges, r.UnboundOpportunisticPodHours)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nThe paid load or the nodes changed %d times. UNSCHEDULABLE: opportunistic pods that fit nowhere (pod-hours).\n", rep.LoadChanges)
	return err
}

func writeSimulateCSV(w io.Writer, rep *sim.Report) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"scenario", "strategy", "harvest_core_hours", "instant_law_core_hours", "harvest_ratio", "bound_core_hours", "harvest_of_bound", "mean_utilization",
		"overshoot_core_hours", "paid_pending_pod_seconds", "longest_paid_wait_seconds", "scale_events", "direction_changes", "unschedulable_pod_hours"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, r := range rep.Results {
		_ = cw.Write([]string{rep.Scenario, r.Strategy, f(r.HarvestCoreHours), f(r.InstantLawCoreHours), f(r.HarvestRatio), f(r.BoundCoreHours), f(r.HarvestOfBound), f(r.MeanUtilization),
			f(r.OvershootCoreHours), f(r.PaidPendingPodSeconds), f(r.LongestPaidWaitSeconds), strconv.Itoa(r.ScaleEvents), strconv.Itoa(r.DirectionChanges),
			f(r.UnboundOpportunisticPodHours)})
	}
	cw.Flush()
	return cw.Error()
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
