package sim

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/opportunist/opportunist/internal/capacity"
)

// ---- the pod template in a scenario file ----

// podFields are the pod template fields that paid and opportunistic
// workloads share: either requests (one container) or containers, with
// init containers (restartPolicy Always: a sidecar), the pod overhead, and
// where the pods may go.
type podFields struct {
	pos               pos
	Requests          map[string]quantity
	Containers        []containerFile
	InitContainers    []containerFile
	Overhead          map[string]quantity
	NodeSelector      map[string]string
	Tolerations       []tolerationFile
	Affinity          *affinityFile
	Startup, Grace    duration
	Priority          int32
	PriorityClassName string
}

// containerFile is one container of a pod template: corev1's name,
// resources and (init containers only) restartPolicy.
type containerFile struct {
	pos
	Name      string `yaml:"name"`
	Resources struct {
		pos
		Requests map[string]quantity `yaml:"requests"`
		Limits   map[string]quantity `yaml:"limits"`
	} `yaml:"resources"`
	RestartPolicy string `yaml:"restartPolicy"`
}

// affinityFile is corev1.Affinity, of which the node affinity is modelled.
type affinityFile struct {
	pos
	NodeAffinity *struct {
		pos
		Required *struct {
			pos
			Terms []nodeSelectorTermFile `yaml:"nodeSelectorTerms"`
		} `yaml:"requiredDuringSchedulingIgnoredDuringExecution"`
		Preferred []struct {
			pos
			Weight     int32                `yaml:"weight"`
			Preference nodeSelectorTermFile `yaml:"preference"`
		} `yaml:"preferredDuringSchedulingIgnoredDuringExecution"`
	} `yaml:"nodeAffinity"`
}

type nodeSelectorTermFile struct {
	pos
	MatchExpressions []requirementFile `yaml:"matchExpressions"`
	MatchFields      []requirementFile `yaml:"matchFields"`
}

type requirementFile struct {
	pos
	Key      string   `yaml:"key"`
	Operator string   `yaml:"operator"`
	Values   []string `yaml:"values"`
}

// priorityClassesFile is the scenario's priorityClasses: true or false
// (pods carry their workload's priority value), or a list of
// PriorityClasses that workloads name.
type priorityClassesFile struct {
	line int
	on   bool
	list []priorityClassFile
}

type priorityClassFile struct {
	pos
	Name             string `yaml:"name"`
	Value            *int32 `yaml:"value"`
	PreemptionPolicy string `yaml:"preemptionPolicy"`
	GlobalDefault    bool   `yaml:"globalDefault"`
}

func (p *priorityClassesFile) decodeNode(d *decoder, n *yaml.Node, path string) {
	p.line = n.Line
	switch n.Kind {
	case yaml.ScalarNode:
		d.decodeScalar(n, reflect.ValueOf(&p.on).Elem(), path)
	case yaml.SequenceNode:
		d.decode(n, reflect.ValueOf(&p.list).Elem(), path)
		p.on = true
	default:
		d.c.add(n.Line, path, "want true, false or a list of PriorityClasses (name, value, preemptionPolicy, globalDefault), got %s", kindName(n))
	}
}

// ---- conversion ----

// convertPods builds a workload's pod template as a corev1.PodSpec and
// takes its shape (effective requests with init containers, sidecars and
// overhead, as the scheduler counts them) from capacity.ShapeOf.
// Priorities are resolved apart (priorityTable.resolve).
func convertPods(c *errs, f podFields) Pods {
	p := f.pos
	spec := &corev1.PodSpec{NodeSelector: f.NodeSelector}
	names := map[string]bool{}
	container := func(cf *containerFile, field string, i int, init bool) corev1.Container {
		at := join(p.path, fmt.Sprintf("%s[%d]", field, i))
		out := corev1.Container{Name: cf.Name, Resources: corev1.ResourceRequirements{
			Requests: resourceList(c, cf.Resources.pos, "requests", cf.Resources.Requests),
			Limits:   resourceList(c, cf.Resources.pos, "limits", cf.Resources.Limits),
		}}
		// The API server defaults a request to its limit (SetDefaults_Container).
		for name, q := range out.Resources.Limits {
			if out.Resources.Requests == nil {
				out.Resources.Requests = corev1.ResourceList{}
			}
			if _, ok := out.Resources.Requests[name]; !ok {
				out.Resources.Requests[name] = q
			}
		}
		if out.Name == "" {
			out.Name = fmt.Sprintf("%s-%d", strings.ToLower(field), i)
		}
		switch {
		case len(validation.IsDNS1123Label(out.Name)) > 0:
			c.add(cf.pos.at("name"), at+".name", "%q must be a DNS label (lower case letters, digits and '-')", out.Name)
		case names[out.Name]:
			c.add(cf.pos.at("name"), at+".name", "%q is used by another container of the pod: give each its own name", out.Name)
		}
		names[out.Name] = true
		switch rp := corev1.ContainerRestartPolicy(cf.RestartPolicy); {
		case rp == "":
		case !init:
			c.add(cf.pos.at("restartPolicy"), at+".restartPolicy", "only init containers take a restartPolicy (Always: a sidecar that runs beside the containers)")
		case rp == corev1.ContainerRestartPolicyAlways:
			out.RestartPolicy = &rp
		default:
			c.add(cf.pos.at("restartPolicy"), at+".restartPolicy", "%q must be Always (a sidecar) or absent (an init container that runs to completion first)", cf.RestartPolicy)
		}
		return out
	}
	if f.Requests != nil && f.Containers != nil {
		c.field(p, "containers", "set requests (the shorthand for one container) or containers, not both")
		f.Containers = nil
	}
	switch {
	case f.Containers != nil:
		if len(f.Containers) == 0 {
			c.field(p, "containers", "must list at least one container")
		}
		for i := range f.Containers {
			spec.Containers = append(spec.Containers, container(&f.Containers[i], "containers", i, false))
		}
	default:
		spec.Containers = []corev1.Container{{Name: "main", Resources: corev1.ResourceRequirements{Requests: resourceList(c, p, "requests", f.Requests)}}}
		names["main"] = true
	}
	for i := range f.InitContainers {
		spec.InitContainers = append(spec.InitContainers, container(&f.InitContainers[i], "initContainers", i, true))
	}
	if f.Overhead != nil {
		spec.Overhead = resourceList(c, p, "overhead", f.Overhead)
	}
	for k, v := range f.NodeSelector {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			c.field(p, "nodeSelector."+k, "not a valid label key: %s", errs[0])
		} else if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			c.field(p, "nodeSelector."+k, "not a valid label value: %s", errs[0])
		}
	}
	for i := range f.Tolerations {
		t := &f.Tolerations[i]
		op := corev1.TolerationOperator(t.Operator)
		if t.Key != "" {
			if errs := validation.IsQualifiedName(t.Key); len(errs) > 0 {
				c.field(t.pos, "key", "not a valid taint key: %s", errs[0])
			}
		} else if op != corev1.TolerationOpExists {
			c.field(t.pos, "key", "must be set, unless operator is Exists (which then tolerates every taint)")
		}
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
	spec.Affinity = convertAffinity(c, f.Affinity)

	shape := capacity.ShapeOf(spec)
	nonZero := false
	for name, v := range shape.Requests {
		if name != corev1.ResourcePods && v > 0 {
			nonZero = true
		}
	}
	if !nonZero {
		field := "requests"
		if f.Containers != nil {
			field = "containers"
		}
		c.field(p, field, "must request some resource (like cpu: 1): room is counted in replicas of the requests")
	}
	return Pods{
		Shape:    shape,
		Priority: f.Priority,
		Startup:  f.Startup.or(defaultStartup),
		Grace:    f.Grace.or(defaultGrace),
	}
}

// resourceList reads a map of quantities as a corev1.ResourceList (nil
// stays nil). An amount beyond what the capacity model counts
// (capacity.MaxAmount) is an error, not a silent clamp.
func resourceList(c *errs, p pos, field string, in map[string]quantity) corev1.ResourceList {
	if in == nil {
		return nil
	}
	list := corev1.ResourceList{}
	// In name order, so errors come out the same on every run.
	for _, name := range slices.Sorted(maps.Keys(in)) {
		q := in[name]
		at := join(p.path, field+"."+name)
		if errs := validation.IsQualifiedName(name); len(errs) > 0 {
			c.add(q.line, at, "not a resource name: %s", errs[0])
			continue
		}
		rn := corev1.ResourceName(name)
		if capacity.FromResourceList(corev1.ResourceList{rn: q.Quantity})[rn] >= capacity.MaxAmount {
			most := resource.NewQuantity(capacity.MaxAmount, resource.BinarySI).String()
			if rn == corev1.ResourceCPU {
				most = resource.NewQuantity(capacity.MaxAmount/1000, resource.DecimalSI).String() + " cores"
			}
			c.add(q.line, at, "%s is more than the simulator counts (below %s): lower it", q.text, most)
		}
		list[rn] = q.Quantity
	}
	return list
}

// convertAffinity reads a node affinity and checks it as the scheduler
// parses it (component-helpers' nodeaffinity), each requirement at its
// line.
func convertAffinity(c *errs, f *affinityFile) *corev1.Affinity {
	if f == nil || f.NodeAffinity == nil {
		return nil
	}
	na := f.NodeAffinity
	out := &corev1.NodeAffinity{}
	term := func(t *nodeSelectorTermFile) corev1.NodeSelectorTerm {
		var out corev1.NodeSelectorTerm
		for _, list := range []struct {
			reqs   []requirementFile
			fields bool
		}{{t.MatchExpressions, false}, {t.MatchFields, true}} {
			for i := range list.reqs {
				r := &list.reqs[i]
				req := corev1.NodeSelectorRequirement{Key: r.Key, Operator: corev1.NodeSelectorOperator(r.Operator), Values: r.Values}
				one := corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{req}}
				if list.fields {
					one = corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{req}}
					out.MatchFields = append(out.MatchFields, req)
				} else {
					out.MatchExpressions = append(out.MatchExpressions, req)
				}
				if _, err := nodeaffinity.NewNodeSelector(&corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{one}}); err != nil {
					affinityErrors(c, r, err)
				}
			}
		}
		return out
	}
	if r := na.Required; r != nil {
		out.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{}
		if len(r.Terms) == 0 {
			c.field(r.pos, "nodeSelectorTerms", "must list at least one term (a node matching any term is eligible)")
		}
		for i := range r.Terms {
			out.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = append(out.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms, term(&r.Terms[i]))
		}
	}
	for i := range na.Preferred {
		p := &na.Preferred[i]
		if p.Weight < 1 || p.Weight > 100 {
			c.field(p.pos, "weight", "%d is not between 1 and 100", p.Weight)
		}
		out.PreferredDuringSchedulingIgnoredDuringExecution = append(out.PreferredDuringSchedulingIgnoredDuringExecution,
			corev1.PreferredSchedulingTerm{Weight: p.Weight, Preference: term(&p.Preference)})
	}
	return &corev1.Affinity{NodeAffinity: out}
}

// affinityErrors reports the scheduler's parse errors of one requirement
// at its line, under its own field.
func affinityErrors(c *errs, r *requirementFile, err error) {
	var list []error
	if agg, ok := err.(interface{ Errors() []error }); ok {
		list = agg.Errors()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		var fe *field.Error
		name, msg := "", e.Error()
		if errors.As(e, &fe) {
			// The field is nodeSelectorTerms[0].matchExpressions[0].<name>.
			if i := strings.LastIndex(fe.Field, "]."); i >= 0 {
				name = fe.Field[i+2:]
			}
			msg = fe.ErrorBody()
		}
		if name == "" {
			name = "key"
		}
		c.field(r.pos, name, "%s", msg)
	}
}

// priorityTable resolves workloads' priorities: from their priorityClassName
// with a list of PriorityClasses, from priority: with priorityClasses: true.
type priorityTable struct {
	list    bool
	classes map[string]*priorityClassFile
	def     *priorityClassFile // the globalDefault class, if any
	names   []string
}

// Bounds of a PriorityClass value a user may create (the API server
// reserves higher ones for system-* classes).
const maxUserPriority = 1000000000

func convertPriorityClasses(c *errs, f *scenarioFile) *priorityTable {
	t := &priorityTable{list: f.PriorityClasses.list != nil, classes: map[string]*priorityClassFile{}}
	for i := range f.PriorityClasses.list {
		pc := &f.PriorityClasses.list[i]
		switch {
		case pc.Name == "":
			c.field(pc.pos, "name", "must be set")
		case len(validation.IsDNS1123Subdomain(pc.Name)) > 0:
			c.field(pc.pos, "name", "%q must be a DNS subdomain (lower case letters, digits, '-' and '.')", pc.Name)
		case strings.HasPrefix(pc.Name, "system-"):
			c.field(pc.pos, "name", "%q: names starting with system- are the cluster's own classes: choose another", pc.Name)
		case t.classes[pc.Name] != nil:
			c.field(pc.pos, "name", "%q is used twice", pc.Name)
		}
		if pc.Value == nil {
			c.field(pc.pos, "value", "must be set (the pods' priority: higher is scheduled first and may preempt lower)")
		} else if *pc.Value > maxUserPriority {
			c.field(pc.pos, "value", "%d is above %d, the highest a user-defined PriorityClass may have", *pc.Value, maxUserPriority)
		}
		switch corev1.PreemptionPolicy(pc.PreemptionPolicy) {
		case "", corev1.PreemptLowerPriority, corev1.PreemptNever:
		default:
			c.field(pc.pos, "preemptionPolicy", "%q must be PreemptLowerPriority (the default) or Never", pc.PreemptionPolicy)
		}
		if pc.GlobalDefault {
			if t.def != nil {
				c.field(pc.pos, "globalDefault", "%q and %q are both the global default: at most one class may be", t.def.Name, pc.Name)
			}
			t.def = pc
		}
		t.classes[pc.Name] = pc
		t.names = append(t.names, pc.Name)
	}
	return t
}

// resolve returns a workload's priority and whether its pods may preempt
// lower-priority ones. With a list, that is its PriorityClass's (or the
// global default's, else 0 and PreemptLowerPriority, as the admission
// plugin does); with priorityClasses: true, its priority value, paid pods
// preempting and opportunistic ones not (preemptionPolicy Never, as
// opportunist recommends).
func (t *priorityTable) resolve(c *errs, f podFields, paid bool) (int32, bool) {
	_, priSet := f.pos.fields["priority"]
	if !t.list {
		if f.PriorityClassName != "" {
			c.field(f.pos, "priorityClassName", "%q names a PriorityClass, but the scenario lists none: give priorityClasses as a list (like [{name: %s, value: 1000}]), or set priority: instead", f.PriorityClassName, f.PriorityClassName)
		}
		return f.Priority, paid
	}
	if priSet {
		c.field(f.pos, "priority", "with a list of priorityClasses, name one with priorityClassName (the API server sets the priority from it)")
	}
	pc := t.def
	if f.PriorityClassName != "" {
		pc = t.classes[f.PriorityClassName]
		if pc == nil {
			c.field(f.pos, "priorityClassName", "no PriorityClass is named %q (priorityClasses: %s)", f.PriorityClassName, strings.Join(t.names, ", "))
			return 0, false
		}
	}
	if pc == nil || pc.Value == nil {
		return 0, true
	}
	return *pc.Value, corev1.PreemptionPolicy(pc.PreemptionPolicy) != corev1.PreemptNever
}
