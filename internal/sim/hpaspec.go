package sim

// The HPA strategies' configuration: the presets, and a scenario's hpa:
// section (controller flags and an autoscaling/v2 HorizontalPodAutoscaler),
// decoded, defaulted as the API server does and checked against what the
// model simulates. The model itself is hpa.go.

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// Behavior is an HPA's spec.behavior, as the API server stores it.
type Behavior = autoscalingv2.HorizontalPodAutoscalerBehavior

// HPAController is the kube-controller-manager's HPA flags, and when the
// controller syncs an HPA.
type HPAController struct {
	SyncPeriod             time.Duration // --horizontal-pod-autoscaler-sync-period
	DownscaleStabilization time.Duration // --horizontal-pod-autoscaler-downscale-stabilization
	Tolerance              float64       // --horizontal-pod-autoscaler-tolerance
	// ProcessingTime is how long one sync takes (its API calls). The
	// controller requeues an HPA SyncPeriod after it was processed
	// (processNextWorkItem's AddRateLimited, a fixed-interval limiter), so
	// syncs are SyncPeriod + ProcessingTime apart and drift: a recommendation
	// is never exactly as old as a stabilisation window.
	ProcessingTime time.Duration
	// FirstSync is when the HPA is first processed: its creation
	// (enqueueHPA queues it at once).
	FirstSync time.Duration
}

// HPAConfig configures one HPA strategy.
type HPAConfig struct {
	Controller HPAController
	// Object is the scenario's HPA, defaulted as the API server does; nil
	// runs the preset's, aimed at each opportunistic workload.
	Object *autoscalingv2.HorizontalPodAutoscaler
}

// The kube-controller-manager's defaults, and the time a sync takes on a
// small control plane (a few loopback API calls). 10 ms is an estimate the
// recorded example HPA bounds: at a 2 s sync, more drift than that puts the
// model's moves late (TestHPAMatchesRecordings); the calibration
// against the real control plane measures the period.
const (
	stockSyncPeriod             = 15 * time.Second
	stockDownscaleStabilization = 5 * time.Minute
	stockTolerance              = 0.1
	defaultProcessingTime       = 10 * time.Millisecond
)

var stockController = HPAController{
	SyncPeriod: stockSyncPeriod, DownscaleStabilization: stockDownscaleStabilization,
	Tolerance: stockTolerance, ProcessingTime: defaultProcessingTime,
}

// hpaPresets are the HPA strategies' defaults. hpa-writeup runs the
// write-up's controller flags: a 10 s sync and its 1.8
// --horizontal-pod-autoscaler-downscale-delay=30s as v1.37 has it, the
// downscale stabilisation window (the upscale delay no longer exists). The
// others run a stock controller.
func hpaPresets() map[string]HPAConfig {
	writeup := stockController
	writeup.SyncPeriod, writeup.DownscaleStabilization = 10*time.Second, 30*time.Second
	return map[string]HPAConfig{
		HPAWriteup:      {Controller: writeup},
		HPAExample:      {Controller: stockController},
		HPAAverageValue: {Controller: stockController},
	}
}

// presetDescriptions say what each HPA preset is (errors and help).
var presetDescriptions = map[string]string{
	HPAWriteup:      "the write-up's HPA: Object cpu_capacity_remaining, Value = the workload's CPU headroom, no behavior; controller sync 10s, downscale stabilisation 30s",
	HPAExample:      "examples/seed/hpa/worker-hpa.yaml as shipped: the same metric, behavior with 30 s windows both ways; a stock controller (sync 15s)",
	HPAAverageValue: "docs/hpa.md §2: External opportunist_desired_replicas, AverageValue 1, fed by opportunist in dry run; a stock controller (sync 15s)",
}

// The metrics the simulated HPAs can read, named as opportunist serves them
// (TestMetricNamesAgree checks the copies): the seed's Object metric
// (milli-cores), and the External metric of the controller's answer with the
// label that selects a scaler.
const (
	cpuRemainingMetric = "cpu_capacity_remaining"
	desiredMetric      = "opportunist_desired_replicas" // internal/metricsapi.DesiredReplicasMetric
	scalerLabel        = "scaler"                       // internal/metricsapi.ScalerLabel
)

// hpaSpecFor is the HPA a strategy runs for workload o: the scenario's
// object, or the preset's aimed at o (its bounds, and its CPU headroom as
// the target of remaining CPU: keptCPU, what control.KeptFree keeps free).
// A preset's minReplicas is at least 1, the HPA's default: a workload
// whose scaler may go to 0 would start its HPA at 0, where the controller
// leaves it alone ("scaling is disabled since the replica count of the
// target is zero") and the comparison would harvest nothing.
func hpaSpecFor(name string, cfg HPAConfig, o *OpportunisticWorkload, keptCPU int64) (autoscalingv2.HorizontalPodAutoscalerSpec, error) {
	if cfg.Object != nil {
		return *cfg.Object.Spec.DeepCopy(), nil
	}
	spec := autoscalingv2.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: o.Name},
		MinReplicas:    ptr(max(o.MinReplicas, 1)),
		MaxReplicas:    o.MaxReplicas,
	}
	switch name {
	case HPAWriteup, HPAExample:
		target := keptCPU
		if target <= 0 {
			return spec, fmt.Errorf("strategy %s: opportunistic workload %s keeps no CPU headroom (nor slots that request CPU), and the write-up's HPA targets the remaining CPU at the headroom", name, o.Name)
		}
		spec.Metrics = []autoscalingv2.MetricSpec{{
			Type: autoscalingv2.ObjectMetricSourceType,
			Object: &autoscalingv2.ObjectMetricSource{
				DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: "v1", Kind: "Service", Name: "cluster-metrics"},
				Metric:          autoscalingv2.MetricIdentifier{Name: cpuRemainingMetric},
				// The metric is served in milli-cores, as a plain number: 30 cores is "30000".
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: resource.NewQuantity(target, resource.DecimalSI)},
			},
		}}
		if name == HPAExample { // behavior: {scaleUp: {stabilizationWindowSeconds: 30}, scaleDown: {stabilizationWindowSeconds: 30}}
			spec.Behavior = defaultBehavior(&Behavior{
				ScaleUp:   &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr(int32(30))},
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr(int32(30))},
			})
		}
	case HPAAverageValue:
		// opportunist already stabilises: no windows, and no rate limit to
		// speak of (1000% per second both ways).
		spec.Metrics = []autoscalingv2.MetricSpec{{
			Type: autoscalingv2.ExternalMetricSourceType,
			External: &autoscalingv2.ExternalMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: desiredMetric, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{scalerLabel: o.Name}}},
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewQuantity(1, resource.DecimalSI)},
			},
		}}
		fast := autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: 1000, PeriodSeconds: 1}
		spec.Behavior = defaultBehavior(&Behavior{
			ScaleUp:   &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr(int32(0)), Policies: []autoscalingv2.HPAScalingPolicy{fast}},
			ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr(int32(0)), Policies: []autoscalingv2.HPAScalingPolicy{fast}},
		})
	default:
		return spec, fmt.Errorf("%s is not an HPA strategy", name)
	}
	return spec, nil
}

// usesDesired reports whether an HPA reads opportunist_desired_replicas.
func usesDesired(spec *autoscalingv2.HorizontalPodAutoscalerSpec) bool {
	for _, m := range spec.Metrics {
		if m.Type == autoscalingv2.ExternalMetricSourceType && m.External.Metric.Name == desiredMetric {
			return true
		}
	}
	return false
}

// DefaultBehavior is spec.behavior as the API server defaults an empty one
// (defaults.go): scale up with no window, by 100% or 4 pods per 15 s,
// whichever is more; scale down by 100% per 15 s after the controller's
// downscale stabilisation window (left nil here, as the API server does).
// A nil behavior stays nil: the controller then takes its older path.
func DefaultBehavior() *Behavior {
	return defaultBehavior(&Behavior{})
}

// defaultBehavior is SetDefaults_HorizontalPodAutoscalerBehavior: the unset
// fields of a set behavior b take the API server's defaults.
func defaultBehavior(b *Behavior) *Behavior {
	if b == nil {
		return nil
	}
	maxPolicy := autoscalingv2.MaxChangePolicySelect
	zero := int32(0)
	return &Behavior{
		ScaleUp: fillRules(b.ScaleUp, autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: &zero,
			SelectPolicy:               &maxPolicy,
			Policies: []autoscalingv2.HPAScalingPolicy{
				{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
				{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
			},
		}),
		ScaleDown: fillRules(b.ScaleDown, autoscalingv2.HPAScalingRules{
			SelectPolicy: &maxPolicy,
			Policies:     []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}},
		}),
	}
}

// fillRules is copyHPAScalingRules: the set fields of from over the defaults.
func fillRules(from *autoscalingv2.HPAScalingRules, def autoscalingv2.HPAScalingRules) *autoscalingv2.HPAScalingRules {
	if from == nil {
		return &def
	}
	if from.SelectPolicy != nil {
		def.SelectPolicy = from.SelectPolicy
	}
	if from.StabilizationWindowSeconds != nil {
		def.StabilizationWindowSeconds = from.StabilizationWindowSeconds
	}
	if from.Policies != nil {
		def.Policies = from.Policies
	}
	if from.Tolerance != nil {
		def.Tolerance = from.Tolerance
	}
	return &def
}

func ptr[T any](v T) *T { return &v }

// ---- the scenario's hpa: section ----

// hpaSection configures the HPA strategies, by strategy name.
type hpaSection struct {
	pos
	Writeup      *hpaFile `yaml:"hpa-writeup"`
	Example      *hpaFile `yaml:"hpa-example"`
	AverageValue *hpaFile `yaml:"hpa-averagevalue"`
	// Renamed in issue 17: an error says to what.
	Seed            *rawYAML `yaml:"seed,gone"`
	OldAverageValue *rawYAML `yaml:"averageValue,gone"`
}

// hpaFile is one HPA strategy: the controller's flags and, optionally, the
// HPA object itself.
type hpaFile struct {
	pos
	SyncPeriod             duration `yaml:"syncPeriod"`
	DownscaleStabilization duration `yaml:"downscaleStabilization"`
	Tolerance              *float64 `yaml:"tolerance"`
	ProcessingTime         duration `yaml:"processingTime"`
	FirstSync              duration `yaml:"firstSync"`
	Object                 *rawYAML `yaml:"object"`
	// Gone: an error says why.
	UpscaleDelay   *rawYAML `yaml:"upscaleDelay,gone"`
	DownscaleDelay *rawYAML `yaml:"downscaleDelay,gone"`
	BehaviorUnset  *rawYAML `yaml:"behaviorUnset,gone"`
	Behavior       *rawYAML `yaml:"behavior,gone"`
}

// convertHPASection returns every HPA strategy's configuration: the
// preset's, with what the scenario sets.
func convertHPASection(c *errs, f *hpaSection) map[string]HPAConfig {
	out := hpaPresets()
	if f.Seed != nil {
		c.field(f.pos, "seed", "renamed: hpa-seed is now %s (%s), and %s (%s); write hpa.hpa-writeup or hpa.hpa-example",
			HPAWriteup, presetDescriptions[HPAWriteup], HPAExample, presetDescriptions[HPAExample])
	}
	if f.OldAverageValue != nil {
		c.field(f.pos, "averageValue", "renamed: write hpa.%s", HPAAverageValue)
	}
	for name, file := range map[string]*hpaFile{HPAWriteup: f.Writeup, HPAExample: f.Example, HPAAverageValue: f.AverageValue} {
		if file != nil {
			out[name] = convertHPA(c, file, "hpa."+name, out[name])
		}
	}
	return out
}

func convertHPA(c *errs, f *hpaFile, path string, def HPAConfig) HPAConfig {
	out := def
	ctl := &out.Controller
	ctl.SyncPeriod = f.SyncPeriod.or(ctl.SyncPeriod)
	ctl.DownscaleStabilization = f.DownscaleStabilization.or(ctl.DownscaleStabilization)
	ctl.ProcessingTime = f.ProcessingTime.or(ctl.ProcessingTime)
	ctl.FirstSync = f.FirstSync.or(ctl.FirstSync)
	if f.Tolerance != nil {
		ctl.Tolerance = *f.Tolerance
		if !(ctl.Tolerance >= 0) {
			c.fieldAt(f.pos, path, "tolerance", "must not be negative")
		}
	}
	if ctl.SyncPeriod <= 0 {
		c.fieldAt(f.pos, path, "syncPeriod", "must be positive")
	}
	if f.UpscaleDelay != nil || f.DownscaleDelay != nil {
		field := "upscaleDelay"
		if f.UpscaleDelay == nil {
			field = "downscaleDelay"
		}
		c.fieldAt(f.pos, path, field, "Kubernetes 1.12 removed the upscale and downscale delays (the model is v1.37's): use downscaleStabilization, or a behavior in the object")
	}
	if f.BehaviorUnset != nil || f.Behavior != nil {
		field := "behavior"
		if f.BehaviorUnset != nil {
			field = "behaviorUnset"
		}
		c.fieldAt(f.pos, path, field, "the behavior is part of the HPA now: write it in object.spec.behavior (no behavior there: unset, as the API server keeps it)")
	}
	if f.Object != nil {
		out.Object = decodeHPAObject(c, f.Object.node, path+".object")
	}
	return out
}

// decodeHPAObject reads an autoscaling/v2 HorizontalPodAutoscaler strictly,
// defaults it as the API server does, and checks that the model simulates
// it. Problems are reported at the line of the field, when it has one.
func decodeHPAObject(c *errs, n *yaml.Node, path string) *autoscalingv2.HorizontalPodAutoscaler {
	data, err := yaml.Marshal(n)
	if err != nil {
		c.add(n.Line, path, "%v", err)
		return nil
	}
	var obj autoscalingv2.HorizontalPodAutoscaler
	if err := sigsyaml.UnmarshalStrict(data, &obj); err != nil {
		c.add(n.Line, path, "not an autoscaling/v2 HorizontalPodAutoscaler: %s", strings.TrimPrefix(err.Error(), "error unmarshaling JSON: while decoding JSON: "))
		return nil
	}
	bad := func(field, format string, args ...any) {
		c.add(lineOf(n, field), path+"."+field, format, args...)
	}
	if obj.APIVersion != "autoscaling/v2" || obj.Kind != "HorizontalPodAutoscaler" {
		bad("apiVersion", "want apiVersion autoscaling/v2 and kind HorizontalPodAutoscaler, got %q and %q", obj.APIVersion, obj.Kind)
	}
	spec := &obj.Spec
	if spec.MinReplicas == nil { // SetDefaults_HorizontalPodAutoscaler
		spec.MinReplicas = ptr(int32(1))
	}
	if spec.MaxReplicas < 1 {
		bad("spec.maxReplicas", "must be at least 1")
	}
	if m := *spec.MinReplicas; m < 0 || m > spec.MaxReplicas {
		bad("spec.minReplicas", "%d is not between 0 and maxReplicas", m)
	}
	if len(spec.Metrics) == 0 {
		bad("spec.metrics", "none: the API server would default to 80%% CPU utilization, a Resource metric, and the simulator models requests, not usage: use an Object %s or External %s metric", cpuRemainingMetric, desiredMetric)
	}
	for i := range spec.Metrics {
		checkMetric(&spec.Metrics[i], fmt.Sprintf("spec.metrics[%d]", i), bad)
	}
	if b := spec.Behavior; b != nil {
		checkRules(b.ScaleUp, "spec.behavior.scaleUp", bad)
		checkRules(b.ScaleDown, "spec.behavior.scaleDown", bad)
		spec.Behavior = defaultBehavior(b) // SetDefaults_HorizontalPodAutoscalerBehavior: only a set behavior
	}
	return &obj
}

// checkMetric accepts the metrics opportunist serves, with the targets the
// controller reads for them.
func checkMetric(m *autoscalingv2.MetricSpec, field string, bad func(string, string, ...any)) {
	switch m.Type {
	case autoscalingv2.ObjectMetricSourceType:
		if m.Object == nil {
			bad(field+".object", "missing for type Object")
			return
		}
		if m.Object.Metric.Name != cpuRemainingMetric {
			bad(field+".object.metric.name", "%q is not simulated (the simulator serves %s, in milli-cores)", m.Object.Metric.Name, cpuRemainingMetric)
		}
		if m.Object.Metric.Selector != nil {
			bad(field+".object.metric.selector", "not simulated: %s is one cluster-wide value", cpuRemainingMetric)
		}
		checkTarget(m.Object.Target, field+".object.target", bad)
	case autoscalingv2.ExternalMetricSourceType:
		if m.External == nil {
			bad(field+".external", "missing for type External")
			return
		}
		if m.External.Metric.Name != desiredMetric {
			bad(field+".external.metric.name", "%q is not simulated (the simulator serves %s)", m.External.Metric.Name, desiredMetric)
		}
		if s := m.External.Metric.Selector; s != nil {
			if _, err := metav1.LabelSelectorAsSelector(s); err != nil {
				bad(field+".external.metric.selector", "%v", err)
			}
		}
		checkTarget(m.External.Target, field+".external.target", bad)
	default:
		bad(field+".type", "%q is not simulated: the simulator models requests, not usage, and serves the metrics opportunist does (Object %s, External %s)", m.Type, cpuRemainingMetric, desiredMetric)
	}
}

func checkTarget(t autoscalingv2.MetricTarget, field string, bad func(string, string, ...any)) {
	var q *resource.Quantity
	switch t.Type {
	case autoscalingv2.ValueMetricType:
		q = t.Value
	case autoscalingv2.AverageValueMetricType:
		q = t.AverageValue
	default:
		bad(field+".type", "%q: want Value or AverageValue", t.Type)
		return
	}
	if q == nil || q.Sign() <= 0 {
		bad(field, "a %s target needs a positive %s", t.Type, strings.ToLower(string(t.Type[:1]))+string(t.Type[1:]))
	}
}

// checkRules is the API server's validation of scaling rules.
func checkRules(r *autoscalingv2.HPAScalingRules, field string, bad func(string, string, ...any)) {
	if r == nil {
		return
	}
	if w := r.StabilizationWindowSeconds; w != nil && (*w < 0 || *w > 3600) {
		bad(field+".stabilizationWindowSeconds", "%d is not between 0 and 3600", *w)
	}
	if p := r.SelectPolicy; p != nil {
		switch *p {
		case autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect, autoscalingv2.DisabledPolicySelect:
		default:
			bad(field+".selectPolicy", "%q must be Max, Min or Disabled", *p)
		}
	}
	if r.Policies != nil && len(r.Policies) == 0 {
		bad(field+".policies", "must hold at least one policy when set")
	}
	for i, p := range r.Policies {
		pf := fmt.Sprintf("%s.policies[%d]", field, i)
		if p.Type != autoscalingv2.PodsScalingPolicy && p.Type != autoscalingv2.PercentScalingPolicy {
			bad(pf+".type", "%q must be Pods or Percent", p.Type)
		}
		if p.Value <= 0 {
			bad(pf+".value", "must be positive")
		}
		if p.PeriodSeconds < 1 || p.PeriodSeconds > 1800 {
			bad(pf+".periodSeconds", "%d is not between 1 and 1800", p.PeriodSeconds)
		}
	}
	if t := r.Tolerance; t != nil && t.Sign() < 0 {
		bad(field+".tolerance", "must not be negative")
	}
}

// lineOf finds the line of a field ("spec.metrics[0].type") in a YAML
// mapping, or of the deepest part of it that is there.
func lineOf(n *yaml.Node, field string) int {
	line := n.Line
	for part := range strings.SplitSeq(field, ".") {
		key, idx := part, -1
		if k, rest, ok := strings.Cut(part, "["); ok {
			key = k
			fmt.Sscanf(rest, "%d]", &idx)
		}
		next := (*yaml.Node)(nil)
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					line, next = n.Content[i].Line, n.Content[i+1]
				}
			}
		}
		if next == nil {
			return line
		}
		n = next
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}
