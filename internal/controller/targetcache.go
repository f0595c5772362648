package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/opportunist/opportunist/api/v1alpha1"
)

// TargetCache serves TargetReader's reads from watches, so that a round
// over unchanged targets sends the API server nothing:
//
//   - each target object comes from a watch of that one object (a field
//     selector on metadata.name, so RBAC with resourceNames still allows it),
//     started on first read and stopped once no scaler names the target;
//   - its /scale is derived from the object for apps/v1 Deployments,
//     StatefulSets and ReplicaSets (their /scale is spec.replicas,
//     status.replicas and spec.selector), and read with a GET for other kinds
//     only when the object's resourceVersion changed since the last read;
//   - PriorityClasses come from one watch of them all.
//
// A watch is trusted only while its last list or watch succeeded; a target
// whose watch is refused (Forbidden: RBAC grants get but not list and watch)
// is read with plain GETs, as without the cache, and its watch is tried
// again after ForbiddenRetry.
type TargetCache struct {
	TargetClients
	scales scale.ScalesGetter
	mapper meta.RESTMapper
	// scalers lists the scalers (from the manager's cache) when sweeping.
	scalers client.Reader
	log     *slog.Logger
	clock   clock.PassiveClock

	// SyncTimeout bounds how long a read waits for a new watch's first list
	// before it reads with a GET instead.
	SyncTimeout time.Duration
	// ForbiddenRetry is how long a refused watch is not tried again.
	ForbiddenRetry time.Duration
	// SweepInterval is how often watches of targets no scaler names stop.
	SweepInterval time.Duration

	// base is the parent of every watch: they stop when Start's context ends.
	base context.Context
	stop context.CancelFunc

	mu         sync.Mutex
	targets    map[targetKey]*targetEntry
	priorities *watched
}

// targetKey names a target object. The group and resource, not the
// version: a /scale write names only those.
type targetKey struct {
	schema.GroupResource
	Namespace, Name string
}

func (k targetKey) String() string {
	return k.GroupResource.String() + " " + k.Namespace + "/" + k.Name
}

// targetEntry is one target's watch and what was last read or written of
// its /scale.
type targetEntry struct {
	watch *watched
	// objectRV is the resourceVersion of the object last served.
	objectRV string
	// scale was read with a GET when the object was at scaleRV.
	scale   *autoscalingv1.Scale
	scaleRV string
	// written is the /scale this controller last wrote, served while the
	// object is still at writtenOverRV: the watch has not delivered the
	// write yet, and the object would tell the count before it.
	written       *autoscalingv1.Scale
	writtenOverRV string
	// reread: a write conflicted, so the next read GETs /scale.
	reread bool
}

// TargetClients are the clients a TargetCache reads with.
type TargetClients struct {
	// Dynamic and Kube make the GETs (and the LIST of PriorityClasses) of a
	// target whose watch cannot be trusted.
	Dynamic dynamic.Interface
	Kube    kubernetes.Interface
	// WatchDynamic and WatchKube list and watch. They must have no client
	// timeout (rest.Config.Timeout): that bounds the whole response, so it
	// would end every watch after it and the reflector would watch again
	// (with a 10s timeout, 6 requests a minute per target, for nothing).
	WatchDynamic dynamic.Interface
	WatchKube    kubernetes.Interface
}

// NewTargetCache builds a cache; nothing is watched until the first read.
// scales is the real /scale client (for GETs); write through WriteThrough.
func NewTargetCache(clients TargetClients, scales scale.ScalesGetter, mapper meta.RESTMapper, scalers client.Reader, log *slog.Logger) *TargetCache {
	base, stop := context.WithCancel(context.Background())
	return &TargetCache{
		TargetClients: clients, scales: scales, mapper: mapper, scalers: scalers, log: log, clock: clock.RealClock{},
		SyncTimeout: 5 * time.Second, ForbiddenRetry: 5 * time.Minute, SweepInterval: 30 * time.Second,
		base: base, stop: stop, targets: map[targetKey]*targetEntry{},
	}
}

// Start sweeps, every SweepInterval, the watches of targets that no scaler
// names any more, until ctx ends; then it stops every watch. (A
// controller-runtime Runnable: the manager runs it on the leader.)
func (c *TargetCache) Start(ctx context.Context) error {
	defer c.stop()
	t := time.NewTicker(c.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := c.Sweep(ctx); err != nil {
				c.log.Warn("cannot tell which target watches are still needed", "err", err)
			}
		}
	}
}

// Sweep stops the watches of targets (and of workloads slots read their
// shape from) that no scaler names.
func (c *TargetCache) Sweep(ctx context.Context) error {
	var list v1alpha1.OpportunisticScalerList
	if err := c.scalers.List(ctx, &list); err != nil {
		return fmt.Errorf("listing OpportunisticScalers: %w", err)
	}
	named := map[targetKey]bool{}
	name := func(apiVersion, kind, namespace, name string) {
		gv, err := schema.ParseGroupVersion(apiVersion)
		if err != nil {
			return
		}
		m, err := c.mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: kind}, gv.Version)
		if err != nil {
			return
		}
		named[targetKey{m.Resource.GroupResource(), namespace, name}] = true
	}
	for _, s := range list.Items {
		ref := s.Spec.ScaleTargetRef
		name(ref.APIVersion, ref.Kind, s.Namespace, ref.Name)
		for _, slot := range s.Spec.HeadroomSlots {
			if from := slot.ShapeFrom; from != nil {
				ns := from.Namespace
				if ns == "" {
					ns = s.Namespace
				}
				name(from.APIVersion, from.Kind, ns, from.Name)
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.targets {
		if !named[k] {
			e.watch.close()
			delete(c.targets, k)
			c.log.Debug("stopped the watch of a target no scaler names", "target", k.String())
		}
	}
	return nil
}

// Watching returns the targets watched now, for tests and logs.
func (c *TargetCache) Watching() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k, e := range c.targets {
		if e.watch.running() {
			out = append(out, k.String())
		}
	}
	return out
}

// entry returns the target's entry and its watch, (re)starting the watch
// when needed.
func (c *TargetCache) entry(gvr schema.GroupVersionResource, namespace, name string) (*targetEntry, *watched) {
	key := targetKey{gvr.GroupResource(), namespace, name}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.targets[key]
	if e == nil {
		e = &targetEntry{}
		c.targets[key] = e
	}
	if e.watch.needsStart(c.clock.Now(), c.ForbiddenRetry) {
		e.watch = c.watchObject(gvr, namespace, name)
	}
	return e, e.watch
}

func (c *TargetCache) watchObject(gvr schema.GroupVersionResource, namespace, name string) *watched {
	res := c.WatchDynamic.Resource(gvr).Namespace(namespace)
	byName := func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	}
	what := fmt.Sprintf("%s %s/%s", gvr.GroupResource(), namespace, name)
	return c.startWatch(what, &unstructured.Unstructured{}, c.WatchDynamic,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			byName(&o)
			return res.List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			byName(&o)
			return res.Watch(ctx, o)
		})
}

func (c *TargetCache) watchPriorityClasses() *watched {
	pcs := c.WatchKube.SchedulingV1().PriorityClasses()
	return c.startWatch("priorityclasses", &schedulingv1.PriorityClass{}, c.WatchKube,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return pcs.List(ctx, o) },
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return pcs.Watch(ctx, o) })
}

// object reads a target object, from its watch when that can be trusted.
func (c *TargetCache) object(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
	e, w := c.entry(gvr, namespace, name)
	var obj *unstructured.Unstructured
	var err error
	if item, exists, ok := w.get(ctx, namespace+"/"+name, c.SyncTimeout); ok {
		if !exists {
			return nil, apierrors.NewNotFound(gvr.GroupResource(), name)
		}
		obj = item.(*unstructured.Unstructured).DeepCopy()
	} else if obj, err = c.Dynamic.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
		return nil, err
	}
	c.mu.Lock()
	e.objectRV = obj.GetResourceVersion()
	c.mu.Unlock()
	return obj, nil
}

// scaleOf returns obj's /scale: the count this controller wrote while the
// watch has not shown it yet, else derived from the object (apps/v1), else
// the last GET while the object is unchanged, else a GET.
func (c *TargetCache) scaleOf(ctx context.Context, gr schema.GroupResource, obj *unstructured.Unstructured) (*autoscalingv1.Scale, error) {
	key := targetKey{gr, obj.GetNamespace(), obj.GetName()}
	rv := obj.GetResourceVersion()
	c.mu.Lock()
	e := c.targets[key]
	if e == nil { // swept meanwhile
		e = &targetEntry{}
		c.targets[key] = e
	}
	if e.written != nil && e.writtenOverRV == rv {
		defer c.mu.Unlock()
		return e.written.DeepCopy(), nil
	}
	e.written = nil
	if !e.reread {
		if sc, ok := derivedScale(gr, obj); ok {
			c.mu.Unlock()
			return sc, nil
		}
		if e.scale != nil && e.scaleRV == rv {
			defer c.mu.Unlock()
			return e.scale.DeepCopy(), nil
		}
	}
	c.mu.Unlock()
	sc, err := c.scales.Scales(key.Namespace).Get(ctx, gr, key.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	e.scale, e.scaleRV, e.reread = sc.DeepCopy(), rv, false
	c.mu.Unlock()
	return sc, nil
}

// wrote records the outcome of a /scale write.
func (c *TargetCache) wrote(gr schema.GroupResource, namespace, name string, sc *autoscalingv1.Scale, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.targets[targetKey{gr, namespace, name}]
	switch {
	case e == nil:
	case err == nil:
		e.written, e.writtenOverRV = sc.DeepCopy(), e.objectRV
	case apierrors.IsConflict(err):
		// Our view is behind: read the next one fresh, not from the watch.
		e.written, e.reread = nil, true
	}
}

// priorityClass reads a PriorityClass by name.
func (c *TargetCache) priorityClass(ctx context.Context, name string) (*schedulingv1.PriorityClass, error) {
	if item, exists, ok := c.priorityWatch().get(ctx, name, c.SyncTimeout); ok && exists {
		return item.(*schedulingv1.PriorityClass).DeepCopy(), nil
	}
	// Not watched, or not seen yet: a class made a moment ago may not have
	// reached the watch, so a miss is confirmed with a GET.
	return c.Kube.SchedulingV1().PriorityClasses().Get(ctx, name, metav1.GetOptions{})
}

// priorityClasses lists every PriorityClass.
func (c *TargetCache) priorityClasses(ctx context.Context) ([]schedulingv1.PriorityClass, error) {
	w := c.priorityWatch()
	if w.usable(ctx, c.SyncTimeout) {
		var out []schedulingv1.PriorityClass
		for _, item := range w.informer.GetStore().List() {
			out = append(out, *item.(*schedulingv1.PriorityClass).DeepCopy())
		}
		return out, nil
	}
	l, err := c.Kube.SchedulingV1().PriorityClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

func (c *TargetCache) priorityWatch() *watched {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.priorities.needsStart(c.clock.Now(), c.ForbiddenRetry) {
		c.priorities = c.watchPriorityClasses()
	}
	return c.priorities
}

// derivedScale is the /scale of an apps/v1 workload, built from the object
// as the API server builds it (pkg/registry/apps/*/storage: spec.replicas,
// status.replicas, the selector rendered by LabelSelectorAsSelector), so
// these kinds need no GET at all.
func derivedScale(gr schema.GroupResource, obj *unstructured.Unstructured) (*autoscalingv1.Scale, bool) {
	if gr.Group != "apps" || (gr.Resource != "deployments" && gr.Resource != "statefulsets" && gr.Resource != "replicasets") {
		return nil, false
	}
	replicas, found, err := unstructured.NestedInt64(obj.Object, "spec", "replicas")
	if err != nil {
		return nil, false
	}
	if !found {
		replicas = 1 // the API server's default
	}
	statusReplicas, _, err := unstructured.NestedInt64(obj.Object, "status", "replicas")
	if err != nil {
		return nil, false
	}
	raw, found, err := unstructured.NestedMap(obj.Object, "spec", "selector")
	if err != nil || !found {
		return nil, false
	}
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &ls); err != nil {
		return nil, false
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		return nil, false
	}
	return &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
		ObjectMeta: metav1.ObjectMeta{Name: obj.GetName(), Namespace: obj.GetNamespace(), UID: obj.GetUID(),
			ResourceVersion: obj.GetResourceVersion(), CreationTimestamp: obj.GetCreationTimestamp()},
		Spec:   autoscalingv1.ScaleSpec{Replicas: int32(replicas)},
		Status: autoscalingv1.ScaleStatus{Replicas: int32(statusReplicas), Selector: sel.String()},
	}, true
}

// WriteThrough wraps the /scale client that writes targets, so that the
// cache learns what was written (and when a write conflicted) before the
// watch shows it.
func (c *TargetCache) WriteThrough(scales scale.ScalesGetter) scale.ScalesGetter {
	return writeThrough{scales, c}
}

type writeThrough struct {
	scale.ScalesGetter
	cache *TargetCache
}

func (w writeThrough) Scales(namespace string) scale.ScaleInterface {
	return scaleWriter{w.ScalesGetter.Scales(namespace), w.cache, namespace}
}

type scaleWriter struct {
	scale.ScaleInterface
	cache     *TargetCache
	namespace string
}

func (w scaleWriter) Update(ctx context.Context, gr schema.GroupResource, sc *autoscalingv1.Scale, opts metav1.UpdateOptions) (*autoscalingv1.Scale, error) {
	out, err := w.ScaleInterface.Update(ctx, gr, sc, opts)
	w.cache.wrote(gr, w.namespace, sc.Name, out, err)
	return out, err
}

// watched is one informer and whether what it holds can be trusted.
type watched struct {
	informer cache.SharedIndexInformer
	cancel   context.CancelFunc

	mu sync.Mutex
	// failed: the last list or watch failed (nil once one succeeds).
	failed error
	// forbiddenAt: a list or watch was refused; the informer is stopped.
	forbiddenAt time.Time
	stopped     bool
}

func (c *TargetCache) startWatch(what string, obj runtime.Object, client any,
	list func(context.Context, metav1.ListOptions) (runtime.Object, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) *watched {
	w := &watched{}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			out, err := list(ctx, o)
			if err == nil {
				w.succeeded()
			}
			return out, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			out, err := watchFn(ctx, o)
			if err == nil {
				w.succeeded()
			}
			return out, err
		},
	}
	w.informer = cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, client), obj, cache.SharedIndexInformerOptions{})
	ctx, cancel := context.WithCancel(c.base)
	w.cancel = cancel
	_ = w.informer.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		if apierrors.IsForbidden(err) {
			// Retrying would only repeat the refusal: stop, and read with GETs.
			c.log.Warn("watch refused; reading with GET instead (grant list and watch to save the API server these reads)", "what", what, "err", err)
			w.forbid(c.clock.Now())
			return
		}
		w.fail(err)
		cache.DefaultWatchErrorHandler(ctx, r, err)
	})
	go w.informer.RunWithContext(ctx)
	return w
}

func (w *watched) succeeded() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failed = nil
}

func (w *watched) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failed = err
}

func (w *watched) forbid(now time.Time) {
	w.mu.Lock()
	w.forbiddenAt, w.stopped = now, true
	w.mu.Unlock()
	w.cancel()
}

func (w *watched) close() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.cancel()
}

func (w *watched) running() bool {
	if w == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.stopped
}

// needsStart: never started, or refused long enough ago to try again.
func (w *watched) needsStart(now time.Time, retry time.Duration) bool {
	if w == nil {
		return true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stopped && now.Sub(w.forbiddenAt) >= retry
}

// usable waits (up to timeout) for the first list, and reports whether the
// store can be trusted: synced, running, and its last list or watch
// succeeded.
func (w *watched) usable(ctx context.Context, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		stopped, failed := w.stopped, w.failed
		w.mu.Unlock()
		switch {
		case stopped || failed != nil:
			return false
		case w.informer.HasSynced():
			return true
		case time.Now().After(deadline):
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// get looks key up in the store; ok is false when the store cannot be
// trusted, and the caller reads from the API server instead.
func (w *watched) get(ctx context.Context, key string, timeout time.Duration) (item any, exists, ok bool) {
	if !w.usable(ctx, timeout) {
		return nil, false, false
	}
	item, exists, err := w.informer.GetStore().GetByKey(key)
	if err != nil {
		return nil, false, false
	}
	return item, exists, true
}

// The reads TargetReader.Read makes: from Cache when it is set, else
// straight from the API server.

func (r *TargetReader) getObject(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
	if r.Cache != nil {
		return r.Cache.object(ctx, gvr, namespace, name)
	}
	return r.Dynamic.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (r *TargetReader) getScale(ctx context.Context, gr schema.GroupResource, obj *unstructured.Unstructured) (*autoscalingv1.Scale, error) {
	if r.Cache != nil {
		return r.Cache.scaleOf(ctx, gr, obj)
	}
	return r.Scales.Scales(obj.GetNamespace()).Get(ctx, gr, obj.GetName(), metav1.GetOptions{})
}

func (r *TargetReader) getPriorityClass(ctx context.Context, name string) (*schedulingv1.PriorityClass, error) {
	if r.Cache != nil {
		return r.Cache.priorityClass(ctx, name)
	}
	return r.Kube.SchedulingV1().PriorityClasses().Get(ctx, name, metav1.GetOptions{})
}

func (r *TargetReader) listPriorityClasses(ctx context.Context) ([]schedulingv1.PriorityClass, error) {
	if r.Cache != nil {
		return r.Cache.priorityClasses(ctx)
	}
	l, err := r.Kube.SchedulingV1().PriorityClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}
