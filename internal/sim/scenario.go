package sim

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
	"github.com/opportunist/opportunist/internal/scalerspec"
)

// Scenario is a validated simulation: a cluster, its paid load over time,
// node events and the opportunistic workloads to scale. See docs/simulate.md
// for the file format.
type Scenario struct {
	Name        string
	Description string
	Duration    time.Duration
	Step        time.Duration
	// PriorityClasses on: pods carry their priorities and the scheduler
	// preempts lower-priority pods for higher ones. Off: every pod has
	// priority 0 and nothing is preempted.
	PriorityClasses bool
	// PodEvictionTimeout is how long pods stay on a node that went down
	// (NotReady, not Ready themselves, still counted by their ReplicaSets)
	// before they are evicted and replaced: the default
	// tolerationSeconds of the not-ready and unreachable taints.
	PodEvictionTimeout time.Duration
	// RoundInterval is the opportunist controller's --round-interval: the
	// longest time between two rounds when nothing changes.
	RoundInterval time.Duration
	// SchedulerScoring is the cluster's NodeResourcesFit scoring strategy:
	// the simulated scheduler places pods with it, and the control law
	// (control.Cluster.Scoring) assumes it.
	SchedulerScoring capacity.Scoring
	// MetricsInterval is metrics-server's resolution: how often a
	// reclaiming scenario samples paid usage and publishes each node's
	// reclaimable room (usage.go).
	MetricsInterval time.Duration
	NodeGroups      []NodeGroup
	Paid            []PaidWorkload
	NodeEvents      []NodeEvent
	Opportunistic   []OpportunisticWorkload
	// HPA configures the HPA strategies, by strategy name (hpa-writeup,
	// hpa-example, hpa-averagevalue): the preset's, with the scenario's hpa:
	// section over it.
	HPA map[string]HPAConfig
}

// NodeGroup is Count identical nodes named <name>-<i>, i from 1.
type NodeGroup struct {
	Name        string
	Count       int
	Allocatable capacity.Resources
	Labels      map[string]string
	Taints      []corev1.Taint
}

// Pods describes the pods of one workload.
type Pods struct {
	// Shape holds the effective requests (with one pod slot), node selector
	// and tolerations.
	Shape capacity.Shape
	// Priority is the pods' PriorityClass value (used only with PriorityClasses on).
	Priority int32
	// Preempts: with PriorityClasses on, the scheduler may preempt
	// lower-priority pods for these (preemptionPolicy PreemptLowerPriority).
	Preempts bool
	// Startup is the time from binding to Ready.
	Startup time.Duration
	// Grace is the termination grace period: a deleted pod holds its room that long.
	Grace time.Duration
}

// PaidWorkload is a ReplicaSet of paid pods whose replica count follows Load.
type PaidWorkload struct {
	Name string
	Pods
	Load Load
	// Usage is its pods' CPU usage (nil: they use their requests).
	Usage *UsageModel
}

// Load is a paid workload's replica count over time: Replicas until the first
// step, then each step's count from its time on; the steps repeat every
// RepeatEvery when set. Noise and Bursts are drawn from the run's seed.
type Load struct {
	Replicas    int32
	Steps       []Step
	RepeatEvery time.Duration
	Noise       *Noise
	Bursts      *Bursts
	// Traced: the steps come from a trace file and are taken as they are.
	Traced bool
}

// Step sets a replica count from At on.
type Step struct {
	At       time.Duration
	Replicas int32
}

// Noise adds a uniform random offset in [-Replicas, +Replicas], redrawn every Every.
type Noise struct {
	Every    time.Duration
	Replicas int32
}

// Bursts add Replicas for Duration at random times, MeanInterval apart on average.
type Bursts struct {
	MeanInterval time.Duration
	Duration     time.Duration
	Replicas     int32
}

// NodeEvent takes Count nodes of a group down (or brings them back) at At.
// Pods on a node that goes down stay there, not Ready, for the scenario's
// PodEvictionTimeout; then they are evicted and their ReplicaSets replace
// them. A node back before that finds its pods Ready again.
type NodeEvent struct {
	At    time.Duration
	Group string
	Count int
	Down  bool
}

// OpportunisticWorkload is a ReplicaSet scaled by the strategy under test,
// with the OpportunisticScaler that the opportunist strategy runs.
type OpportunisticWorkload struct {
	Name string
	Pods
	// Replicas is the count at the start.
	Replicas int32
	// MinReplicas and MaxReplicas are Scaler's bounds (the HPA strategies
	// take them too), read from it at load.
	MinReplicas, MaxReplicas int32
	// Scaler is the workload's OpportunisticScaler as the API server would
	// store it: checked as the CRD validates it, its weight defaulted. Its
	// target is the ReplicaSet, its headroomSlots' shapeFrom name paid
	// workloads. Every round converts it with internal/scalerspec's
	// ToControl, as the controller does: the simulator keeps no copy of the
	// defaults, the behaviour or the headroom arithmetic.
	Scaler v1alpha1.OpportunisticScaler
}

const (
	defaultStep          = time.Second
	defaultRoundInterval = 5 * time.Second // opportunist run --round-interval
	defaultPods          = 110             // the kubelet's --max-pods
	defaultGrace         = 30 * time.Second
	defaultStartup       = 5 * time.Second
)

// defaultPodEvictionTimeout is the DefaultTolerationSeconds admission
// plugin's 300 s for node.kubernetes.io/not-ready and unreachable.
const defaultPodEvictionTimeout = 300 * time.Second

// ---- the file format ----

type scenarioFile struct {
	pos
	Name             string              `yaml:"name"`
	Description      string              `yaml:"description"`
	Duration         duration            `yaml:"duration"`
	Step             duration            `yaml:"step"`
	PriorityClasses  priorityClassesFile `yaml:"priorityClasses"`
	RoundInterval    duration            `yaml:"roundInterval"`
	SchedulerScoring string              `yaml:"schedulerScoring"`
	MetricsInterval  duration            `yaml:"metricsInterval"`
	Trace            string              `yaml:"trace"`
	NodeGroups       []nodeGroupFile     `yaml:"nodeGroups"`
	Paid             []paidFile          `yaml:"paid"`
	NodeEvents       []nodeEventFile     `yaml:"nodeEvents"`
	Opportunistic    []opportunistFile   `yaml:"opportunistic"`
	HPA              hpaSection          `yaml:"hpa"`

	PodEvictionTimeout duration `yaml:"podEvictionTimeout"`
}

type nodeGroupFile struct {
	pos
	Name        string              `yaml:"name"`
	Count       int                 `yaml:"count"`
	Allocatable map[string]quantity `yaml:"allocatable"`
	Labels      map[string]string   `yaml:"labels"`
	Taints      []taintFile         `yaml:"taints"`
}

type taintFile struct {
	pos
	Key    string `yaml:"key"`
	Value  string `yaml:"value"`
	Effect string `yaml:"effect"`
}

type tolerationFile struct {
	pos
	Key      string `yaml:"key"`
	Operator string `yaml:"operator"`
	Value    string `yaml:"value"`
	Effect   string `yaml:"effect"`
}

type paidFile struct {
	pos
	Name              string              `yaml:"name"`
	Requests          map[string]quantity `yaml:"requests"`
	Containers        []containerFile     `yaml:"containers"`
	InitContainers    []containerFile     `yaml:"initContainers"`
	Overhead          map[string]quantity `yaml:"overhead"`
	Priority          int32               `yaml:"priority"`
	PriorityClassName string              `yaml:"priorityClassName"`
	NodeSelector      map[string]string   `yaml:"nodeSelector"`
	Tolerations       []tolerationFile    `yaml:"tolerations"`
	Affinity          *affinityFile       `yaml:"affinity"`
	Startup           duration            `yaml:"startup"`
	Grace             duration            `yaml:"terminationGracePeriod"`
	Replicas          int32               `yaml:"replicas"`
	Steps             []stepFile          `yaml:"steps"`
	RepeatEvery       duration            `yaml:"repeatEvery"`
	Noise             *struct {
		pos
		Every    duration `yaml:"every"`
		Replicas int32    `yaml:"replicas"`
	} `yaml:"noise"`
	Bursts *struct {
		pos
		MeanInterval duration `yaml:"meanInterval"`
		Duration     duration `yaml:"duration"`
		Replicas     int32    `yaml:"replicas"`
	} `yaml:"bursts"`
	Usage *usageFile `yaml:"usage"`
}

type stepFile struct {
	pos
	At       duration `yaml:"at"`
	Replicas *int32   `yaml:"replicas"`
}

type nodeEventFile struct {
	pos
	At     duration `yaml:"at"`
	Group  string   `yaml:"group"`
	Count  int      `yaml:"count"`
	Action string   `yaml:"action"`
}

type opportunistFile struct {
	pos
	Name                     string                   `yaml:"name"`
	Requests                 map[string]quantity      `yaml:"requests"`
	Containers               []containerFile          `yaml:"containers"`
	InitContainers           []containerFile          `yaml:"initContainers"`
	Overhead                 map[string]quantity      `yaml:"overhead"`
	Priority                 int32                    `yaml:"priority"`
	PriorityClassName        string                   `yaml:"priorityClassName"`
	NodeSelector             map[string]string        `yaml:"nodeSelector"`
	Tolerations              []tolerationFile         `yaml:"tolerations"`
	Affinity                 *affinityFile            `yaml:"affinity"`
	Startup                  duration                 `yaml:"startup"`
	Grace                    duration                 `yaml:"terminationGracePeriod"`
	Replicas                 *int32                   `yaml:"replicas"`
	MinReplicas              int32                    `yaml:"minReplicas"`
	MaxReplicas              int32                    `yaml:"maxReplicas"`
	Headroom                 map[string]headroomValue `yaml:"headroom"`
	TargetUtilizationPercent float64                  `yaml:"targetUtilizationPercent"`
	PoolSelector             map[string]string        `yaml:"poolSelector"`
	ScalerPriority           int32                    `yaml:"scalerPriority"`
	Weight                   int32                    `yaml:"weight"`
	HeadroomSlots            []slotFile               `yaml:"headroomSlots"`
	Reclaim                  *reclaimFile             `yaml:"reclaim"`
	Behavior                 struct {
		ScaleUp   *scalingRulesFile `yaml:"scaleUp"`
		ScaleDown *scalingRulesFile `yaml:"scaleDown"`
	} `yaml:"behavior"`
}

// slotFile is one of spec.headroomSlots: Count paid pods of the shape of a
// paid workload of the scenario (ShapeFrom), or of Requests.
type slotFile struct {
	pos
	Name      string              `yaml:"name"`
	ShapeFrom string              `yaml:"shapeFrom"`
	Requests  map[string]quantity `yaml:"requests"`
	Count     slotCount           `yaml:"count"`
}

// scalingRulesFile is the OpportunisticScaler's spec.behavior.scaleUp/scaleDown.
type scalingRulesFile struct {
	pos
	StabilizationWindowSeconds *int32 `yaml:"stabilizationWindowSeconds"`
	MaxStep                    int32  `yaml:"maxStep"`
	PeriodSeconds              *int32 `yaml:"periodSeconds"`
}

// ---- reading ----

// LoadScenario reads and validates a scenario file, and the trace file it
// names, if any.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	return ParseScenario(path, data, os.ReadFile)
}

// ParseScenario validates a scenario. file names it in errors, and a trace
// it names is read with readFile, relative to file's directory.
func ParseScenario(file string, data []byte, readFile func(string) ([]byte, error)) (*Scenario, error) {
	c := &errs{file: file}
	var f scenarioFile
	decodeYAML(c, data, &f)
	if len(c.list) > 0 {
		return nil, c.err()
	}
	s := convert(c, &f)
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	if f.Trace != "" {
		path := f.Trace
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(file), path)
		}
		data, err := readFile(path)
		if err != nil {
			c.field(f.pos, "trace", "cannot read the trace: %v", err)
			return nil, c.err()
		}
		tr, err := ParseTrace(path, data)
		if err != nil {
			return nil, err
		}
		if err := s.ApplyTrace(tr); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func convert(c *errs, f *scenarioFile) *Scenario {
	s := &Scenario{
		Name:            f.Name,
		Description:     strings.TrimSpace(f.Description),
		Duration:        f.Duration.Duration,
		Step:            f.Step.or(defaultStep),
		PriorityClasses: f.PriorityClasses.on,
		RoundInterval:   f.RoundInterval.or(defaultRoundInterval),
		MetricsInterval: f.MetricsInterval.or(defaultMetricsInterval),
	}
	if s.MetricsInterval <= 0 {
		c.field(f.pos, "metricsInterval", "must be positive")
	}
	s.PodEvictionTimeout = f.PodEvictionTimeout.or(defaultPodEvictionTimeout)
	if sc, err := capacity.ParseScoring(f.SchedulerScoring); err != nil {
		c.field(f.pos, "schedulerScoring", "%q is not LeastAllocated (the scheduler's default) or MostAllocated", f.SchedulerScoring)
	} else {
		s.SchedulerScoring = sc
	}
	if !f.Duration.set || s.Duration <= 0 {
		c.field(f.pos, "duration", "must be set and positive (like 30m or 24h)")
	}
	if s.Step <= 0 {
		c.field(f.pos, "step", "must be positive")
	} else if s.Duration > 0 && s.Duration/s.Step > maxSteps {
		c.field(f.pos, "step", "%s over %s is %d steps, more than the simulator's limit of %d (a year at 1s): use a longer step or a shorter duration", s.Step, s.Duration, s.Duration/s.Step, maxSteps)
	}
	if s.RoundInterval <= 0 {
		c.field(f.pos, "roundInterval", "must be positive")
	}
	names := map[string]bool{}
	checkName := func(p pos, name string) {
		switch {
		case name == "":
			c.field(p, "name", "must be set")
		case len(validation.IsDNS1123Label(name)) > 0:
			c.field(p, "name", "%q must be a DNS label (lower case letters, digits and '-')", name)
		case names[name]:
			c.field(p, "name", "%q is used twice", name)
		}
		names[name] = true
	}
	if len(f.NodeGroups) == 0 {
		c.field(f.pos, "nodeGroups", "at least one node group is needed")
	}
	groups := map[string]int{}
	for i := range f.NodeGroups {
		g := &f.NodeGroups[i]
		checkName(g.pos, g.Name)
		groups[g.Name] = g.Count
		s.NodeGroups = append(s.NodeGroups, convertGroup(c, g))
	}
	prio := convertPriorityClasses(c, f)
	for i := range f.Paid {
		p := &f.Paid[i]
		checkName(p.pos, p.Name)
		w := convertPaid(c, p, s.Duration)
		w.Usage = convertUsage(c, p.Usage)
		w.Priority, w.Preempts = prio.resolve(c, p.podFields(), true)
		s.Paid = append(s.Paid, w)
	}
	for i := range f.NodeEvents {
		e := &f.NodeEvents[i]
		ev := NodeEvent{At: e.At.Duration, Group: e.Group, Count: e.Count}
		count, ok := groups[e.Group]
		switch {
		case e.Group == "":
			c.field(e.pos, "group", "must name a node group")
		case !ok:
			c.field(e.pos, "group", "no node group is named %q", e.Group)
		case e.Count < 0 || e.Count > count:
			c.field(e.pos, "count", "%d is not between 1 and the group's %d nodes (0 or absent: all)", e.Count, count)
		}
		if ev.Count == 0 {
			ev.Count = count
		}
		switch e.Action {
		case "down":
			ev.Down = true
		case "up":
		default:
			c.field(e.pos, "action", "%q must be down or up", e.Action)
		}
		if !e.At.set {
			c.field(e.pos, "at", "must be set")
		}
		s.NodeEvents = append(s.NodeEvents, ev)
	}
	slices.SortStableFunc(s.NodeEvents, func(a, b NodeEvent) int { return int(a.At - b.At) })
	if len(f.Opportunistic) == 0 {
		c.field(f.pos, "opportunistic", "at least one opportunistic workload is needed")
	}
	for i := range f.Opportunistic {
		o := &f.Opportunistic[i]
		checkName(o.pos, o.Name)
		w := convertOpportunistic(c, o)
		w.Priority, w.Preempts = prio.resolve(c, o.podFields(), false)
		w.Scaler.Spec.HeadroomSlots = convertSlots(c, o, s)
		s.Opportunistic = append(s.Opportunistic, w)
		if len(c.list) == 0 {
			// What the CRD's checks let through, the controller's conversion
			// may still refuse: the scenario fails as the scaler would.
			if _, err := s.scaler(len(s.Opportunistic)-1, 0, control.PodCounts{}, 0, control.History{}); err != nil {
				c.field(o.pos, "", "the controller refuses this scaler: %v", err)
			}
		}
	}
	checkReclaim(c, f, s)
	s.HPA = convertHPASection(c, &f.HPA)
	checkLimits(c, f, s)
	return s
}

// maxSteps bounds a run: a year at a one-second step.
const maxSteps = 366 * 24 * 3600

func convertGroup(c *errs, g *nodeGroupFile) NodeGroup {
	out := NodeGroup{Name: g.Name, Count: g.Count, Labels: g.Labels}
	if g.Count < 1 {
		c.field(g.pos, "count", "must be at least 1")
	}
	out.Allocatable = resources(c, g.pos, "allocatable", g.Allocatable)
	if out.Allocatable[corev1.ResourceCPU] <= 0 {
		c.field(g.pos, "allocatable.cpu", "must be set and positive")
	}
	if _, ok := out.Allocatable[corev1.ResourcePods]; !ok {
		out.Allocatable[corev1.ResourcePods] = defaultPods
	}
	for k, v := range g.Labels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			c.field(g.pos, "labels."+k, "not a valid label key: %s", errs[0])
		} else if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			c.field(g.pos, "labels."+k, "not a valid label value: %s", errs[0])
		}
	}
	for i := range g.Taints {
		t := &g.Taints[i]
		effect := corev1.TaintEffect(t.Effect)
		switch effect {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			c.field(t.pos, "effect", "%q must be NoSchedule, PreferNoSchedule or NoExecute", t.Effect)
		}
		if t.Key == "" {
			c.field(t.pos, "key", "must be set")
		}
		out.Taints = append(out.Taints, corev1.Taint{Key: t.Key, Value: t.Value, Effect: effect})
	}
	return out
}

// resources converts a map of quantities into canonical units.
func resources(c *errs, p pos, field string, in map[string]quantity) capacity.Resources {
	return capacity.FromResourceList(resourceList(c, p, field, in))
}

func (p *paidFile) podFields() podFields {
	return podFields{pos: p.pos, Requests: p.Requests, Containers: p.Containers, InitContainers: p.InitContainers, Overhead: p.Overhead,
		NodeSelector: p.NodeSelector, Tolerations: p.Tolerations, Affinity: p.Affinity, Startup: p.Startup, Grace: p.Grace,
		Priority: p.Priority, PriorityClassName: p.PriorityClassName}
}

func (o *opportunistFile) podFields() podFields {
	return podFields{pos: o.pos, Requests: o.Requests, Containers: o.Containers, InitContainers: o.InitContainers, Overhead: o.Overhead,
		NodeSelector: o.NodeSelector, Tolerations: o.Tolerations, Affinity: o.Affinity, Startup: o.Startup, Grace: o.Grace,
		Priority: o.Priority, PriorityClassName: o.PriorityClassName}
}

func convertPaid(c *errs, p *paidFile, total time.Duration) PaidWorkload {
	out := PaidWorkload{
		Name: p.Name,
		Pods: convertPods(c, p.podFields()),
		Load: Load{Replicas: p.Replicas, RepeatEvery: p.RepeatEvery.Duration},
	}
	if p.Replicas < 0 {
		c.field(p.pos, "replicas", "must not be negative")
	}
	var last time.Duration = -1
	for i := range p.Steps {
		st := &p.Steps[i]
		switch {
		case !st.At.set:
			c.field(st.pos, "at", "must be set")
		case st.At.Duration <= last:
			c.field(st.pos, "at", "%s is not after the previous step (%s): steps go forward in time", st.At.Duration, last)
		case p.RepeatEvery.set && st.At.Duration >= p.RepeatEvery.Duration:
			c.field(st.pos, "at", "%s is not within repeatEvery %s", st.At.Duration, p.RepeatEvery.Duration)
		}
		last = st.At.Duration
		if st.Replicas == nil || *st.Replicas < 0 {
			c.field(st.pos, "replicas", "must be set and not negative")
			continue
		}
		out.Load.Steps = append(out.Load.Steps, Step{At: st.At.Duration, Replicas: *st.Replicas})
	}
	if p.RepeatEvery.set && p.RepeatEvery.Duration <= 0 {
		c.field(p.pos, "repeatEvery", "must be positive")
	}
	if n := p.Noise; n != nil {
		if n.Every.Duration <= 0 {
			c.field(n.pos, "every", "must be set and positive")
		}
		if n.Replicas < 1 {
			c.field(n.pos, "replicas", "must be at least 1")
		}
		out.Load.Noise = &Noise{Every: n.Every.Duration, Replicas: n.Replicas}
	}
	if b := p.Bursts; b != nil {
		if b.MeanInterval.Duration <= 0 {
			c.field(b.pos, "meanInterval", "must be set and positive")
		}
		if b.Duration.Duration <= 0 {
			c.field(b.pos, "duration", "must be set and positive")
		}
		if b.Replicas < 1 {
			c.field(b.pos, "replicas", "must be at least 1")
		}
		out.Load.Bursts = &Bursts{MeanInterval: b.MeanInterval.Duration, Duration: b.Duration.Duration, Replicas: b.Replicas}
	}
	return out
}

// convertOpportunistic builds the workload's OpportunisticScaler and checks
// it as the CRD's schema does (bounds, ranges, selector); converting it is
// left to internal/scalerspec (the controller's conversion).
func convertOpportunistic(c *errs, o *opportunistFile) OpportunisticWorkload {
	out := OpportunisticWorkload{
		Name:        o.Name,
		Pods:        convertPods(c, o.podFields()),
		MinReplicas: o.MinReplicas,
		MaxReplicas: o.MaxReplicas,
	}
	minReplicas := o.MinReplicas
	spec := v1alpha1.OpportunisticScalerSpec{
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: o.Name},
		MinReplicas:    &minReplicas,
		MaxReplicas:    o.MaxReplicas,
		Priority:       o.ScalerPriority,
		Weight:         o.Weight,
		Behavior: v1alpha1.Behavior{
			ScaleUp:   scalingRules(c, o.Behavior.ScaleUp),
			ScaleDown: scalingRules(c, o.Behavior.ScaleDown),
		},
	}
	if spec.Weight == 0 {
		spec.Weight = 1 // the CRD's default
	}
	if o.MinReplicas < 0 {
		c.field(o.pos, "minReplicas", "must not be negative")
	}
	if o.MaxReplicas < 1 {
		c.field(o.pos, "maxReplicas", "must be set and at least 1")
	} else if o.MinReplicas > o.MaxReplicas {
		c.field(o.pos, "minReplicas", "%d exceeds maxReplicas %d", o.MinReplicas, o.MaxReplicas)
	}
	out.Replicas = o.MinReplicas
	if o.Replicas != nil {
		out.Replicas = *o.Replicas
		if out.Replicas < 0 {
			c.field(o.pos, "replicas", "must not be negative")
		}
	}
	if o.Weight < 0 || o.Weight > 1000 {
		c.field(o.pos, "weight", "%d is not between 1 and 1000", o.Weight)
	}
	if u := o.TargetUtilizationPercent; u != 0 {
		if !(u >= 1 && u <= 100) || u != math.Trunc(u) {
			c.field(o.pos, "targetUtilizationPercent", "%v is not a whole percent between 1 and 100", u)
		} else {
			pct := int32(u)
			spec.TargetUtilizationPercent = &pct
		}
	}
	if len(o.Headroom) > 0 {
		spec.Headroom = map[corev1.ResourceName]v1alpha1.HeadroomValue{}
	}
	if len(o.Headroom) > maxHeadroom {
		c.field(o.pos, "headroom", "%d resources, at most %d", len(o.Headroom), maxHeadroom)
	}
	for name, h := range o.Headroom {
		if errs := validation.IsQualifiedName(name); len(errs) > 0 {
			c.add(h.line, join(o.path, "headroom."+name), "not a resource name: %s", errs[0])
			continue
		}
		// The text the API server would store: decode checked its range.
		v := strconv.FormatFloat(h.percent, 'f', -1, 64) + "%"
		if h.quantity != nil {
			v = h.quantity.String()
		}
		spec.Headroom[corev1.ResourceName(name)] = v1alpha1.HeadroomValue(v)
	}
	if len(o.PoolSelector) > 0 {
		if _, err := labels.ValidatedSelectorFromSet(o.PoolSelector); err != nil {
			c.field(o.pos, "poolSelector", "%v", err)
		} else {
			spec.PoolSelector = &metav1.LabelSelector{MatchLabels: o.PoolSelector}
		}
	}
	spec.Reclaim = convertReclaim(c, o.Reclaim)
	out.Scaler = v1alpha1.OpportunisticScaler{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: o.Name}, Spec: spec}
	return out
}

// Bounds of spec.headroom and spec.headroomSlots, as the CRD validates them.
const (
	maxHeadroom  = 16
	maxSlots     = 8
	maxSlotCount = 10000
)

// convertSlots reads a workload's headroomSlots and checks them as the CRD
// does: each is Count pods of one paid workload's exact pod shape
// (shapeFrom, a paid workload of the scenario) or of the requests given. A
// slot's name defaults to its shapeFrom, else slot-<index>, as the
// controller names it.
func convertSlots(c *errs, o *opportunistFile, s *Scenario) []v1alpha1.HeadroomSlot {
	if len(o.HeadroomSlots) > maxSlots {
		c.field(o.pos, "headroomSlots", "%d slots, at most %d", len(o.HeadroomSlots), maxSlots)
	}
	var out []v1alpha1.HeadroomSlot
	names := map[string]bool{}
	for i := range o.HeadroomSlots {
		f := &o.HeadroomSlots[i]
		slot := v1alpha1.HeadroomSlot{Name: f.Name, Count: intstr.FromInt32(int32(f.Count))}
		switch {
		case f.ShapeFrom != "" && f.Requests != nil:
			c.field(f.pos, "shapeFrom", "set either shapeFrom (a paid workload) or requests, not both")
		case f.ShapeFrom != "":
			slot.ShapeFrom = &v1alpha1.SlotShapeSource{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: f.ShapeFrom}
			if s.paidByName(f.ShapeFrom) == nil {
				c.field(f.pos, "shapeFrom", "no paid workload is named %q (paid: %s)", f.ShapeFrom, paidNames(s.Paid))
			}
		case f.Requests != nil:
			// The shape is the controller's to make; this checks the requests.
			convertPods(c, podFields{pos: f.pos, Requests: f.Requests})
			slot.Requests = corev1.ResourceList{}
			for name, q := range f.Requests {
				slot.Requests[corev1.ResourceName(name)] = q.Quantity
			}
		default:
			c.field(f.pos, "shapeFrom", "set shapeFrom (the name of a paid workload) or requests (like {cpu: \"4\"})")
		}
		name := scalerspec.SlotName(i, &slot)
		switch {
		case len(validation.IsDNS1123Label(name)) > 0:
			c.field(f.pos, "name", "%q must be a DNS label (lower case letters, digits and '-')", name)
		case names[name]:
			c.field(f.pos, "name", "%q is used by another slot: give each slot its own name", name)
		}
		names[name] = true
		if f.Count < 1 || f.Count > maxSlotCount {
			c.field(f.pos, "count", "%d is not between 1 and %d", f.Count, maxSlotCount)
		}
		out = append(out, slot)
	}
	return out
}

func paidNames(paid []PaidWorkload) string {
	if len(paid) == 0 {
		return "none"
	}
	names := make([]string, len(paid))
	for i := range paid {
		names[i] = paid[i].Name
	}
	return strings.Join(names, ", ")
}

// scalingRules reads spec.behavior.scaleUp or scaleDown and checks it as
// the CRD does. Its defaults are the controller's to apply.
func scalingRules(c *errs, r *scalingRulesFile) *v1alpha1.ScalingRules {
	if r == nil {
		return nil
	}
	if v := r.StabilizationWindowSeconds; v != nil && (*v < 0 || *v > 3600) {
		c.field(r.pos, "stabilizationWindowSeconds", "%d is not between 0 and 3600", *v)
	}
	if v := r.PeriodSeconds; v != nil && (*v < 1 || *v > 1800) {
		c.field(r.pos, "periodSeconds", "%d is not between 1 and 1800", *v)
	}
	if r.MaxStep < 0 {
		c.field(r.pos, "maxStep", "must not be negative")
	}
	return &v1alpha1.ScalingRules{StabilizationWindowSeconds: r.StabilizationWindowSeconds, MaxStep: r.MaxStep, PeriodSeconds: r.PeriodSeconds}
}

// scaler is workload i's input to the control law, converted from its
// OpportunisticScaler by the controller's own function: current is the
// ReplicaSet's replicas, pods its pod counts (control.PodCountsOf),
// podPriority its pods' priority.
func (s *Scenario) scaler(i int, current int32, pods control.PodCounts, podPriority int32, history control.History) (control.Scaler, error) {
	o := &s.Opportunistic[i]
	target := &scalerspec.Target{
		Scale:       &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: current}},
		Shape:       o.Shape,
		PodPriority: podPriority,
	}
	return scalerspec.ToControl(&o.Scaler, target, pods, history, s.paidShape)
}

// paidShape reads a slot's shapeFrom: the pod shape of the paid workload it
// names (scalerspec.SlotShapes).
func (s *Scenario) paidShape(_ string, ref autoscalingv2.CrossVersionObjectReference) (capacity.Shape, error) {
	if p := s.paidByName(ref.Name); p != nil {
		return p.Shape, nil
	}
	return capacity.Shape{}, fmt.Errorf("no paid workload is named %q: %w", ref.Name, scalerspec.ErrTargetMissing)
}

// restingScalers converts every workload's scaler at rest (no replicas, no
// history): what does not change in a run, its pool and its headroom.
func (s *Scenario) restingScalers() []control.Scaler {
	out := make([]control.Scaler, len(s.Opportunistic))
	for i := range s.Opportunistic {
		out[i] = s.mustScaler(i, 0, control.PodCounts{}, 0, control.History{})
	}
	return out
}

func (s *Scenario) paidByName(name string) *PaidWorkload {
	for i := range s.Paid {
		if s.Paid[i].Name == name {
			return &s.Paid[i]
		}
	}
	return nil
}
