package sim

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
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
	// RoundInterval is the opportunist controller's --round-interval: the
	// longest time between two rounds when nothing changes.
	RoundInterval time.Duration
	// SchedulerScoring is the cluster's NodeResourcesFit scoring strategy:
	// the simulated scheduler places pods with it, and the control law
	// (control.Cluster.Scoring) assumes it.
	SchedulerScoring capacity.Scoring
	NodeGroups       []NodeGroup
	Paid             []PaidWorkload
	NodeEvents       []NodeEvent
	Opportunistic    []OpportunisticWorkload
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
// Pods on a node that goes down are lost at once; their ReplicaSets replace them.
type NodeEvent struct {
	At    time.Duration
	Group string
	Count int
	Down  bool
}

// OpportunisticWorkload is a ReplicaSet scaled by the strategy under test,
// with the OpportunisticScaler spec that the opportunist strategy uses.
type OpportunisticWorkload struct {
	Name string
	Pods
	// Replicas is the count at the start.
	Replicas           int32
	MinReplicas        int32
	MaxReplicas        int32
	Headroom           map[corev1.ResourceName]control.Headroom
	TargetUtilization  float64
	PoolSelector       labels.Selector
	ScalerPriority     int32
	Weight             int32
	ScaleUp, ScaleDown control.Behavior
	// Slots is spec.headroomSlots: room kept free, node by node, for paid
	// pods of given shapes.
	Slots []control.Slot
}

const (
	defaultStep          = time.Second
	defaultRoundInterval = 5 * time.Second // opportunist run --round-interval
	defaultPods          = 110             // the kubelet's --max-pods
	defaultGrace         = 30 * time.Second
	defaultStartup       = 5 * time.Second
	defaultScaleUpWindow = 30 * time.Second // internal/controller/spec.go
	defaultPeriod        = 15 * time.Second
)

// ---- the file format ----

type scenarioFile struct {
	pos
	Name             string            `yaml:"name"`
	Description      string            `yaml:"description"`
	Duration         duration          `yaml:"duration"`
	Step             duration          `yaml:"step"`
	PriorityClasses  bool              `yaml:"priorityClasses"`
	RoundInterval    duration          `yaml:"roundInterval"`
	SchedulerScoring string            `yaml:"schedulerScoring"`
	Trace            string            `yaml:"trace"`
	NodeGroups       []nodeGroupFile   `yaml:"nodeGroups"`
	Paid             []paidFile        `yaml:"paid"`
	NodeEvents       []nodeEventFile   `yaml:"nodeEvents"`
	Opportunistic    []opportunistFile `yaml:"opportunistic"`
	HPA              hpaSection        `yaml:"hpa"`
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
	Name         string              `yaml:"name"`
	Requests     map[string]quantity `yaml:"requests"`
	Priority     int32               `yaml:"priority"`
	NodeSelector map[string]string   `yaml:"nodeSelector"`
	Tolerations  []tolerationFile    `yaml:"tolerations"`
	Startup      duration            `yaml:"startup"`
	Grace        duration            `yaml:"terminationGracePeriod"`
	Replicas     int32               `yaml:"replicas"`
	Steps        []stepFile          `yaml:"steps"`
	RepeatEvery  duration            `yaml:"repeatEvery"`
	Noise        *struct {
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
	Priority                 int32                    `yaml:"priority"`
	NodeSelector             map[string]string        `yaml:"nodeSelector"`
	Tolerations              []tolerationFile         `yaml:"tolerations"`
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
	Count     int32               `yaml:"count"`
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
		PriorityClasses: f.PriorityClasses,
		RoundInterval:   f.RoundInterval.or(defaultRoundInterval),
	}
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
		c.field(f.pos, "step", "%s over %s is more than %d steps", s.Step, s.Duration, maxSteps)
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
	for i := range f.Paid {
		p := &f.Paid[i]
		checkName(p.pos, p.Name)
		s.Paid = append(s.Paid, convertPaid(c, p, s.Duration))
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
		w.Slots = convertSlots(c, o, s)
		s.Opportunistic = append(s.Opportunistic, w)
	}
	s.HPA = convertHPASection(c, &f.HPA)
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
	list := corev1.ResourceList{}
	for name, q := range in {
		if errs := validation.IsQualifiedName(name); len(errs) > 0 {
			c.add(q.line, join(p.path, field+"."+name), "not a resource name: %s", errs[0])
			continue
		}
		list[corev1.ResourceName(name)] = q.Quantity
	}
	return capacity.FromResourceList(list)
}

func convertPods(c *errs, p pos, requests map[string]quantity, priority int32, selector map[string]string, tols []tolerationFile, startup, grace duration) Pods {
	spec := &corev1.PodSpec{
		NodeSelector: selector,
		Containers:   []corev1.Container{{Name: "main"}},
	}
	reqs := resources(c, p, "requests", requests)
	spec.Containers[0].Resources.Requests = corev1.ResourceList{}
	for name, q := range requests {
		if _, ok := reqs[corev1.ResourceName(name)]; ok {
			spec.Containers[0].Resources.Requests[corev1.ResourceName(name)] = q.Quantity
		}
	}
	nonZero := false
	for name, v := range reqs {
		if name != corev1.ResourcePods && v > 0 {
			nonZero = true
		}
	}
	if !nonZero {
		c.field(p, "requests", "must request some resource (like cpu: 1): room is counted in replicas of the requests")
	}
	for i := range tols {
		t := &tols[i]
		op := corev1.TolerationOperator(t.Operator)
		switch op {
		case "", corev1.TolerationOpEqual:
			op = corev1.TolerationOpEqual
		case corev1.TolerationOpExists:
			if t.Value != "" {
				c.field(t.pos, "value", "must be empty with operator Exists")
			}
		default:
			c.field(t.pos, "operator", "%q must be Equal or Exists", t.Operator)
		}
		switch corev1.TaintEffect(t.Effect) {
		case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			c.field(t.pos, "effect", "%q must be NoSchedule, PreferNoSchedule, NoExecute or empty (all)", t.Effect)
		}
		spec.Tolerations = append(spec.Tolerations, corev1.Toleration{Key: t.Key, Operator: op, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	return Pods{
		Shape:    capacity.ShapeOf(spec),
		Priority: priority,
		Startup:  startup.or(defaultStartup),
		Grace:    grace.or(defaultGrace),
	}
}

func convertPaid(c *errs, p *paidFile, total time.Duration) PaidWorkload {
	out := PaidWorkload{
		Name: p.Name,
		Pods: convertPods(c, p.pos, p.Requests, p.Priority, p.NodeSelector, p.Tolerations, p.Startup, p.Grace),
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

func convertOpportunistic(c *errs, o *opportunistFile) OpportunisticWorkload {
	out := OpportunisticWorkload{
		Name:              o.Name,
		Pods:              convertPods(c, o.pos, o.Requests, o.Priority, o.NodeSelector, o.Tolerations, o.Startup, o.Grace),
		MinReplicas:       o.MinReplicas,
		MaxReplicas:       o.MaxReplicas,
		Headroom:          map[corev1.ResourceName]control.Headroom{},
		TargetUtilization: o.TargetUtilizationPercent,
		PoolSelector:      labels.Everything(),
		ScalerPriority:    o.ScalerPriority,
		Weight:            max(o.Weight, 1),
		ScaleUp:           behaviorOf(c, o.Behavior.ScaleUp, defaultScaleUpWindow),
		ScaleDown:         behaviorOf(c, o.Behavior.ScaleDown, 0),
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
	if u := o.TargetUtilizationPercent; u < 0 || u > 100 {
		c.field(o.pos, "targetUtilizationPercent", "%v is not between 1 and 100", u)
	}
	for name, h := range o.Headroom {
		field := join(o.path, "headroom."+name)
		if errs := validation.IsQualifiedName(name); len(errs) > 0 {
			c.add(h.line, field, "not a resource name: %s", errs[0])
			continue
		}
		if h.quantity != nil {
			rn := corev1.ResourceName(name)
			out.Headroom[rn] = control.Headroom{Quantity: capacity.FromResourceList(corev1.ResourceList{rn: *h.quantity})[rn]}
		} else {
			out.Headroom[corev1.ResourceName(name)] = control.Headroom{Percent: h.percent}
		}
	}
	if len(o.PoolSelector) > 0 {
		sel, err := labels.ValidatedSelectorFromSet(o.PoolSelector)
		if err != nil {
			c.field(o.pos, "poolSelector", "%v", err)
		} else {
			out.PoolSelector = sel
		}
	}
	return out
}

// Bounds of spec.headroomSlots, as the CRD validates them.
const (
	maxSlots     = 8
	maxSlotCount = 10000
)

// convertSlots reads a workload's headroomSlots: each is Count pods of one
// paid workload's exact pod shape (shapeFrom) or of the requests given, with
// the one pod slot every shape holds. A slot's name defaults to its
// shapeFrom, else slot-<index>.
func convertSlots(c *errs, o *opportunistFile, s *Scenario) []control.Slot {
	if len(o.HeadroomSlots) > maxSlots {
		c.field(o.pos, "headroomSlots", "%d slots, at most %d", len(o.HeadroomSlots), maxSlots)
	}
	var out []control.Slot
	names := map[string]bool{}
	for i := range o.HeadroomSlots {
		f := &o.HeadroomSlots[i]
		slot := control.Slot{Name: f.Name, Count: f.Count}
		switch {
		case f.ShapeFrom != "" && f.Requests != nil:
			c.field(f.pos, "shapeFrom", "set either shapeFrom (a paid workload) or requests, not both")
		case f.ShapeFrom != "":
			if slot.Name == "" {
				slot.Name = f.ShapeFrom
			}
			if p := s.paidByName(f.ShapeFrom); p != nil {
				slot.Shape = p.Shape
			} else {
				c.field(f.pos, "shapeFrom", "no paid workload is named %q (paid: %s)", f.ShapeFrom, paidNames(s.Paid))
			}
		case f.Requests != nil:
			slot.Shape = convertPods(c, f.pos, f.Requests, 0, nil, nil, duration{}, duration{}).Shape
		default:
			c.field(f.pos, "shapeFrom", "set shapeFrom (the name of a paid workload) or requests (like {cpu: \"4\"})")
		}
		if slot.Name == "" {
			slot.Name = fmt.Sprintf("slot-%d", i)
		}
		switch {
		case len(validation.IsDNS1123Label(slot.Name)) > 0:
			c.field(f.pos, "name", "%q must be a DNS label (lower case letters, digits and '-')", slot.Name)
		case names[slot.Name]:
			c.field(f.pos, "name", "%q is used by another slot: give each slot its own name", slot.Name)
		}
		names[slot.Name] = true
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

// behaviorOf mirrors internal/controller's conversion of spec.behavior:
// a scale-up window of 30 s by default, a 15 s period, no step limit.
func behaviorOf(c *errs, r *scalingRulesFile, window time.Duration) control.Behavior {
	b := control.Behavior{StabilizationWindow: window, Period: defaultPeriod}
	if r == nil {
		return b
	}
	if v := r.StabilizationWindowSeconds; v != nil {
		if *v < 0 || *v > 3600 {
			c.field(r.pos, "stabilizationWindowSeconds", "%d is not between 0 and 3600", *v)
		}
		b.StabilizationWindow = time.Duration(*v) * time.Second
	}
	if v := r.PeriodSeconds; v != nil {
		if *v < 1 || *v > 1800 {
			c.field(r.pos, "periodSeconds", "%d is not between 1 and 1800", *v)
		}
		b.Period = time.Duration(*v) * time.Second
	}
	if r.MaxStep < 0 {
		c.field(r.pos, "maxStep", "must not be negative")
	}
	b.MaxStep = r.MaxStep
	return b
}

// headroomOf is the room of one resource the workload keeps free in a pool
// of alloc, as the control law counts it: its headroom (or what its target
// utilisation leaves), and at least the sum of its headroom slots, which
// need that much free and more (they must fit node by node).
func (o *OpportunisticWorkload) headroomOf(name corev1.ResourceName, alloc int64) int64 {
	var kept int64
	if h, ok := o.Headroom[name]; ok {
		kept = max(h.Quantity, percentOf(alloc, h.Percent))
	} else if u := o.TargetUtilization; u > 0 {
		kept = percentOf(alloc, 100-u)
	}
	var slots int64
	for _, s := range o.Slots {
		slots += int64(s.Count) * s.Shape.Requests[name]
	}
	return max(kept, slots)
}

// percentOf is pct % of v rounded up, as internal/control counts a headroom.
func percentOf(v int64, pct float64) int64 {
	if v <= 0 || pct <= 0 {
		return 0
	}
	return int64(math.Ceil(float64(v) * min(pct, 100) / 100))
}

func (s *Scenario) paidByName(name string) *PaidWorkload {
	for i := range s.Paid {
		if s.Paid[i].Name == name {
			return &s.Paid[i]
		}
	}
	return nil
}
