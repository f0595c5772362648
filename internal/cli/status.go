//go:build !nocluster

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/controller"
)

type statusOptions struct {
	kube   kubeOptions
	Output string
}

func (o *statusOptions) AddFlags(fs *pflag.FlagSet) {
	o.kube.AddFlags(fs)
	fs.StringVarP(&o.Output, "output", "o", o.Output, "output format: table (the default), wide (plus bound and stranded replicas, slot nodes, one row per node), json or yaml for scripts")
}

func (o *statusOptions) Validate() []error {
	errs := o.kube.Validate()
	if o.Output != "" {
		errs = append(errs, checkOutput("--output", o.Output, []string{"table", "wide", "json", "yaml"})...)
	}
	return errs
}

func newStatusCommand() *cobra.Command {
	o := &statusOptions{kube: defaultKubeOptions()}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the cluster's capacity, requests and remaining room per resource",
		Long: `Print the cluster's capacity, requests and remaining room per resource, counting
only Ready, schedulable nodes and the non-terminal pods bound to them (the usable
pool). Pods of the workloads OpportunisticScalers target (by the selector in their
status) count as opportunistic, all others as paid. Each scaler's pool size,
decision and headroom slots (how many fit of how many wanted; with -o wide, on
which nodes) are read from its status. CPU is in cores, memory and storage in
bytes (binary suffixes).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(o.Validate()); err != nil {
				return err
			}
			client, _, err := o.kube.client(cmd.Context())
			if err != nil {
				return err
			}
			scalers, err := opportunisticScalers(cmd.Context(), client)
			if err != nil {
				return err
			}
			st, err := collectStatus(cmd.Context(), client, scalers)
			if err != nil {
				return err
			}
			return printStatus(cmd.OutOrStdout(), st, o.Output)
		},
	}
	o.AddFlags(cmd.Flags())
	completeValues(cmd, "output", []string{"table", "wide", "json", "yaml"})
	return cmd
}

// clusterStatus is what `status -o json` (and -o yaml) prints. Amounts are in canonical
// units, named in the JSON: cpu in milli-cores, memory and storage in bytes, others as
// counts (a "unit" field in each resource row, unit-bearing keys in the resource maps:
// capacity.ResourceSummary and capacity.Resources MarshalJSON).
type clusterStatus struct {
	Report  capacity.Report     `json:"report"`
	Nodes   []capacity.NodeRoom `json:"nodes"`
	Scalers []scalerStatus      `json:"scalers"`
}

// scalerStatus is one OpportunisticScaler: its pool's size and last
// decision, from its status, and its pods from the ledger.
type scalerStatus struct {
	Name string `json:"name"`
	// PoolNodes counts the Ready, schedulable nodes of its pool that one
	// replica is eligible for, as the controller last counted them.
	PoolNodes int32  `json:"poolNodes"`
	Current   int32  `json:"currentReplicas"`
	Desired   int32  `json:"desiredReplicas"`
	LimitedBy string `json:"limitedBy"`
	// Pods are bound and not terminal; Stranded of them on nodes that are
	// NotReady, cordoned or gone.
	Pods     int `json:"pods"`
	Stranded int `json:"stranded"`
	// Slots are its headroom slots as its status last reported them: how
	// many fit of how many wanted, and where.
	Slots []v1alpha1.SlotStatus `json:"slots,omitempty"`
	// Conflict is its Conflicting condition's message: another autoscaler
	// (an HPA, a KEDA ScaledObject) writes the same target.
	Conflict string `json:"conflict,omitempty"`
	// Prediction is its status.prediction: the forecast of paid demand
	// and the learned headroom.
	Prediction *v1alpha1.PredictionStatus `json:"prediction,omitempty"`
	// Reclaim is its status.reclaim (spec.reclaim enabled): each pool
	// node's reclaimable and published room with the formula.
	Reclaim *v1alpha1.ReclaimStatus `json:"reclaim,omitempty"`
}

// opportunisticScalers lists the OpportunisticScalers; none when the CRD
// is not installed.
func opportunisticScalers(ctx context.Context, client kubernetes.Interface) ([]v1alpha1.OpportunisticScaler, error) {
	installed, err := crdInstalled(client)
	if err != nil {
		return nil, fmt.Errorf("checking for the OpportunisticScaler CRD: %s", oneLine(err))
	}
	if !installed {
		return nil, nil
	}
	raw, err := client.Discovery().RESTClient().Get().AbsPath("/apis", v1alpha1.GroupVersion.Group, v1alpha1.GroupVersion.Version, "opportunisticscalers").Do(ctx).Raw()
	if err != nil {
		return nil, fmt.Errorf("listing OpportunisticScalers: %s", oneLine(err))
	}
	var list v1alpha1.OpportunisticScalerList
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("listing OpportunisticScalers: %s", oneLine(err))
	}
	return list.Items, nil
}

// collectStatus lists nodes and pods once, in pages, and summarises them;
// the pods of the scalers' workloads (by the selector in their status)
// count as opportunistic.
func collectStatus(ctx context.Context, client kubernetes.Interface, scalers []v1alpha1.OpportunisticScaler) (clusterStatus, error) {
	ledger := capacity.NewLedger(controller.WorkloadsFromStatus(scalers))
	nodePager := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return client.CoreV1().Nodes().List(ctx, opts)
	})
	if err := nodePager.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		ledger.UpsertNode(capacity.FromNode(obj.(*corev1.Node)))
		return nil
	}); err != nil {
		return clusterStatus{}, fmt.Errorf("listing nodes: %s", oneLine(err))
	}
	podPager := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return client.CoreV1().Pods("").List(ctx, opts)
	})
	if err := podPager.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		ledger.UpsertPod(capacity.FromPod(obj.(*corev1.Pod)))
		return nil
	}); err != nil {
		return clusterStatus{}, fmt.Errorf("listing pods: %s", oneLine(err))
	}
	st := clusterStatus{Report: ledger.Report(), Nodes: ledger.Rooms(), Scalers: []scalerStatus{}}
	usage := map[string]capacity.WorkloadUsage{}
	for _, u := range st.Report.Workloads {
		usage[u.Key] = u
	}
	for i := range scalers {
		s := &scalers[i]
		key := s.Namespace + "/" + s.Name
		st.Scalers = append(st.Scalers, scalerStatus{Name: key, PoolNodes: s.Status.PoolNodes, Current: s.Status.CurrentReplicas,
			Desired: s.Status.DesiredReplicas, LimitedBy: s.Status.LimitedBy, Pods: usage[key].Pods, Stranded: usage[key].Stranded, Slots: s.Status.Slots, Reclaim: s.Status.Reclaim,
			Conflict: conflictOf(s.Status.Conditions), Prediction: s.Status.Prediction})
	}
	sort.Slice(st.Scalers, func(i, j int) bool { return st.Scalers[i].Name < st.Scalers[j].Name })
	return st, nil
}

func printStatus(w io.Writer, st clusterStatus, output string) error {
	if output == "json" || output == "yaml" {
		return writeStructured(w, output, st)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tCAPACITY\tALLOCATABLE\tREQUESTS\tPAID\tOPPORTUNISTIC\tREMAINING")
	for _, r := range st.Report.Resources {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, quantity(r.Name, r.Capacity), quantity(r.Name, r.Allocatable),
			quantity(r.Name, r.Requests), quantity(r.Name, r.PaidRequests), quantity(r.Name, r.OpportunisticRequests), quantity(r.Name, r.Remaining))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var states []string
	for _, s := range st.Report.States {
		if s.State != capacity.NodeMissing.String() {
			states = append(states, fmt.Sprintf("%d %s", s.Nodes, strings.ReplaceAll(s.State, "_", " ")))
		}
	}
	fmt.Fprintf(w, "\nNodes: %s. Pending paid pods: %d%s.", strings.Join(states, ", "), st.Report.PendingPaid.Pods, demand(st.Report.PendingPaid.Requests))
	if g := st.Report.GatedPaid; g.Pods > 0 || output == "wide" {
		// Gated pods wait for their gates (e.g. Kueue's admission), not for room.
		fmt.Fprintf(w, " Gated paid pods: %d%s.", g.Pods, demand(g.Requests))
	}
	fmt.Fprintln(w)
	if len(st.Scalers) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
		// The SLOTS column only where some scaler keeps slots, so the
		// table of those that keep none stays as it was.
		withSlots := false
		for _, sc := range st.Scalers {
			withSlots = withSlots || len(sc.Slots) > 0
		}
		header := "SCALER\tPOOL NODES\tCURRENT\tDESIRED\tLIMITED BY"
		if withSlots {
			header += "\tSLOTS"
		}
		if output == "wide" {
			header += "\tBOUND\tSTRANDED"
		}
		fmt.Fprintln(tw, header)
		for _, sc := range st.Scalers {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s", sc.Name, sc.PoolNodes, sc.Current, sc.Desired, sc.LimitedBy)
			if withSlots {
				fmt.Fprintf(tw, "\t%s", slotsFit(sc.Slots))
			}
			if output == "wide" {
				fmt.Fprintf(tw, "\t%d\t%d", sc.Pods-sc.Stranded, sc.Stranded)
			}
			fmt.Fprintln(tw)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, sc := range st.Scalers {
			if sc.Conflict != "" {
				fmt.Fprintf(w, "Warning: %s: %s\n", sc.Name, sc.Conflict)
			}
		}
		if withSlots && output == "wide" {
			if err := printSlotNodes(w, st.Scalers); err != nil {
				return err
			}
		}
		if err := printPredictions(w, st.Scalers, output == "wide"); err != nil {
			return err
		}
		if output == "wide" {
			if err := printReclaimNodes(w, st.Scalers); err != nil {
				return err
			}
		}
	}
	if output != "wide" {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	// Units in the headers, as kubectl top has them: values keep their quantity suffixes (1500m, 80Gi).
	fmt.Fprintln(tw, "NODE\tSTATE\tPODS\tCPU REQUESTS (cores)\tCPU FREE (cores)\tMEMORY REQUESTS (bytes)\tMEMORY FREE (bytes)")
	for _, n := range st.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s/%s\t%s\t%s/%s\t%s\n", n.Name, n.State, n.Requested[corev1.ResourcePods], n.Allocatable[corev1.ResourcePods],
			quantity(corev1.ResourceCPU, n.Requested[corev1.ResourceCPU]), quantity(corev1.ResourceCPU, n.Allocatable[corev1.ResourceCPU]), quantity(corev1.ResourceCPU, n.Free(corev1.ResourceCPU)),
			quantity(corev1.ResourceMemory, n.Requested[corev1.ResourceMemory]), quantity(corev1.ResourceMemory, n.Allocatable[corev1.ResourceMemory]), quantity(corev1.ResourceMemory, n.Free(corev1.ResourceMemory)))
	}
	return tw.Flush()
}

// conflictOf is the message of a true Conflicting condition, else "".
func conflictOf(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, "Conflicting"); c != nil && c.Status == metav1.ConditionTrue {
		return c.Message
	}
	return ""
}

// slotsFit renders a scaler's slots as "web 3/4, db 2/2" (fit/wanted), "-"
// for none.
func slotsFit(slots []v1alpha1.SlotStatus) string {
	if len(slots) == 0 {
		return "-"
	}
	parts := make([]string, len(slots))
	for i, s := range slots {
		parts[i] = fmt.Sprintf("%s %d/%d", s.Name, s.Fit, s.Wanted)
	}
	return strings.Join(parts, ", ")
}

// printReclaimNodes lists, per reclaiming scaler, each pool node's room as
// its status reports it (at most 20, the rest counted), with the formula
// that makes the number (docs/reclaim.md).
func printReclaimNodes(w io.Writer, scalers []scalerStatus) error {
	found := false
	for _, sc := range scalers {
		found = found || sc.Reclaim != nil
	}
	if !found {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "SCALER\tNODE\tRECLAIMABLE (cores)\tPUBLISHED (cores)\tFORMULA")
	for _, sc := range scalers {
		r := sc.Reclaim
		if r == nil {
			continue
		}
		if !r.UsageFresh {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tusage stale: %s\n", sc.Name, r.Message)
		}
		for _, n := range r.Nodes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", sc.Name, n.Node, coresExact(n.Reclaimable), coresExact(n.Published), n.Formula)
		}
		if r.MoreNodes > 0 {
			fmt.Fprintf(tw, "%s\tand %d more nodes\t\t\t\n", sc.Name, r.MoreNodes)
		}
	}
	return tw.Flush()
}

// printSlotNodes lists, per scaler and slot, the nodes its fitting slots
// are on, as its status reports them (at most 20, the rest counted).
func printSlotNodes(w io.Writer, scalers []scalerStatus) error {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "SCALER\tSLOT\tFIT\tNODES (SLOTS)")
	for _, sc := range scalers {
		for _, s := range sc.Slots {
			nodes := make([]string, 0, len(s.Nodes)+1)
			for _, n := range s.Nodes {
				nodes = append(nodes, fmt.Sprintf("%s (%d)", n.Node, n.Slots))
			}
			if s.MoreNodes > 0 {
				nodes = append(nodes, fmt.Sprintf("and %d more nodes", s.MoreNodes))
			}
			where := strings.Join(nodes, ", ")
			if where == "" {
				where = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\n", sc.Name, s.Name, s.Fit, s.Wanted, where)
		}
	}
	return tw.Flush()
}

func demand(rs capacity.Resources) string {
	var parts []string
	for _, name := range rs.Names() {
		if name != corev1.ResourcePods {
			parts = append(parts, fmt.Sprintf("%s %s", name, quantity(name, rs[name])))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// quantity renders a canonical amount as Kubernetes does: "36500m" or "184"
// cores, "480Gi" of memory, plain counts for the rest.
// coresExact prints milli-cores as a bare number of cores, as the reclaim
// formula does ("11.897").
func coresExact(milli int64) string { return strconv.FormatFloat(float64(milli)/1000, 'f', -1, 64) }

func quantity(name corev1.ResourceName, v int64) string {
	switch {
	case name == corev1.ResourceCPU:
		return resource.NewMilliQuantity(v, resource.DecimalSI).String()
	case capacity.InBytes(name):
		return resource.NewQuantity(v, resource.BinarySI).String()
	}
	return fmt.Sprint(v)
}

// printPredictions lists the forecast of each scaler with spec.prediction
// or a learned headroom (nothing when none has): mode, forecaster and its
// backtest error, lead time, forecast peak and when, the reserve (applied
// in Auto, what Auto would apply in Preview) and the learned headroom;
// with wide, where the lead time and each learned headroom came from.
func printPredictions(w io.Writer, scalers []scalerStatus, wide bool) error {
	var with []scalerStatus
	for _, sc := range scalers {
		if sc.Prediction != nil {
			with = append(with, sc)
		}
	}
	if len(with) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "SCALER\tPREDICTION\tFORECASTER\tBACKTEST ERROR\tLEAD TIME\tPEAK\tRESERVE\tLEARNED HEADROOM")
	for _, sc := range with {
		p := sc.Prediction
		lead, peak := "-", resources(p.Peak)
		if p.LeadTime != nil {
			lead = p.LeadTime.Duration.String()
		}
		if p.PeakTime != nil && peak != "-" {
			peak += " at " + p.PeakTime.UTC().Format("15:04")
		}
		var learned []string
		for _, l := range p.LearnedHeadroom {
			learned = append(learned, string(l.Resource)+" "+l.Quantity.String())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sc.Name, p.Mode, dash(p.Forecaster), dash(p.BacktestError), lead, peak,
			resources(p.Reserve), dash(strings.Join(learned, ", ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, sc := range with {
		p := sc.Prediction
		if p.Reason != "" {
			fmt.Fprintf(w, "%s: %s\n", sc.Name, p.Reason)
		}
		if !wide {
			continue
		}
		if p.LeadTimeSource != "" {
			fmt.Fprintf(w, "%s: lead time from %s\n", sc.Name, p.LeadTimeSource)
		}
		for _, l := range p.LearnedHeadroom {
			fmt.Fprintf(w, "%s: %s headroom %s: %s\n", sc.Name, l.Resource, l.Quantity.String(), l.Source)
		}
		if line := outlookLine(p.Outlook); line != "" {
			fmt.Fprintf(w, "%s: %s\n", sc.Name, line)
		}
	}
	return nil
}

// sparks are a sparkline's eight levels, lowest first.
var sparks = []rune("▁▂▃▄▅▆▇█")

// outlookLine draws status.prediction.outlook on one line: the paid CPU
// observed up to now and the forecast after it, as sparklines on one
// scale (the lowest value ▁ to the top of the band █), then their ranges
// in cores, e.g. "cpu paid (cores, highest per 5m; ▁ = 30, █ = 112): 06:55
// ▁▂▄▆ now 08:55 ▇██▆ 09:55; observed 30–84; forecast 90–108, its band up
// to 94–112". "" without one.
func outlookLine(o *v1alpha1.PredictionOutlook) string {
	if o == nil || o.Step.Duration <= 0 || len(o.ObservedMilliCores)+len(o.ForecastMilliCores) == 0 {
		return ""
	}
	all := slices.Concat(o.ObservedMilliCores, o.ForecastMilliCores)
	bottom, top := slices.Min(all), slices.Max(o.ObservedMilliCores)
	for _, v := range o.ForecastMilliCores {
		top = max(top, v+o.BandMilliCores)
	}
	spark := func(vs []int64) string {
		out := make([]rune, len(vs))
		for i, v := range vs {
			level := 0
			if top > bottom {
				level = int(math.Round(float64(v-bottom) / float64(top-bottom) * float64(len(sparks)-1)))
			}
			out[i] = sparks[level]
		}
		return string(out)
	}
	cores := func(v int64) string { return strconv.FormatFloat(float64(v)/1000, 'f', -1, 64) }
	span := func(vs []int64, extra int64) string {
		lo, hi := slices.Min(vs), slices.Max(vs)
		if lo == hi {
			return cores(lo + extra)
		}
		return cores(lo+extra) + "–" + cores(hi+extra)
	}
	hhmm := func(t time.Time) string { return t.UTC().Format("15:04") }
	now := o.Start.Add(time.Duration(len(o.ObservedMilliCores)) * o.Step.Duration)
	var b strings.Builder
	fmt.Fprintf(&b, "cpu paid (cores, highest per %s; ▁ = %s, █ = %s):", strings.TrimSuffix(o.Step.Duration.String(), "0s"), cores(bottom), cores(top))
	if len(o.ObservedMilliCores) > 0 {
		fmt.Fprintf(&b, " %s %s", hhmm(o.Start.Time), spark(o.ObservedMilliCores))
	}
	fmt.Fprintf(&b, " now %s", hhmm(now))
	if len(o.ForecastMilliCores) > 0 {
		fmt.Fprintf(&b, " %s %s", spark(o.ForecastMilliCores), hhmm(now.Add(time.Duration(len(o.ForecastMilliCores))*o.Step.Duration)))
	}
	var parts []string
	if len(o.ObservedMilliCores) > 0 {
		parts = append(parts, "observed "+span(o.ObservedMilliCores, 0))
	}
	if len(o.ForecastMilliCores) > 0 {
		parts = append(parts, fmt.Sprintf("forecast %s, its band up to %s", span(o.ForecastMilliCores, 0), span(o.ForecastMilliCores, o.BandMilliCores)))
	} else {
		parts = append(parts, "no forecast (reactive)")
	}
	return b.String() + "; " + strings.Join(parts, "; ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// resources renders a resource list as "cpu 36, memory 8Gi", "-" for none.
func resources(list corev1.ResourceList) string {
	if len(list) == 0 {
		return "-"
	}
	names := make([]string, 0, len(list))
	for name := range list {
		names = append(names, string(name))
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, name := range names {
		q := list[corev1.ResourceName(name)]
		parts[i] = name + " " + q.String()
	}
	return strings.Join(parts, ", ")
}
