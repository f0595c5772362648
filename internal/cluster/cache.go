// Package cluster keeps a live capacity ledger of a Kubernetes cluster: node
// and pod informers with trimming transforms feed capacity.Ledger one event at
// a time, and readers get consistent reports without blocking the informers
// for longer than a copy.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/opportunist/opportunist/internal/capacity"
)

// Options tune the cache.
type Options struct {
	// Resync is the informers' resync period; 0 disables resyncs.
	Resync time.Duration
	// ProbeInterval is how often the API server's /readyz is probed.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe may take before the API server
	// counts as not answering (default DefaultProbeTimeout). A slow answer is
	// an answer: at 5,000 nodes a loaded API server took over a second for
	// /readyz while its watches delivered, and a 1 s timeout held rounds, a
	// yield's too, as on stale data. A server that is down refuses at once.
	ProbeTimeout time.Duration
	// Probe checks that the API server answers; nil probes /readyz with the client.
	Probe func(ctx context.Context) error
	Clock clock.WithTicker
	// PaidPodScheduled, when set, is told how long each paid pod waited
	// between being seen unbound and being bound: the time to yield.
	PaidPodScheduled func(waited time.Duration)
}

// Cache is the live capacity view of one cluster.
type Cache struct {
	opts    Options
	nodes   cache.SharedIndexInformer
	pods    cache.SharedIndexInformer
	mu      sync.RWMutex
	ledger  *capacity.Ledger
	changed chan struct{}
	// pendingSince is when each unbound pod was first seen unbound.
	pendingSince map[string]time.Time
	healthMu     sync.Mutex
	// failing holds each source (the /readyz probe, the node and pod
	// informers) that failed and has not succeeded since: since when, and the
	// last error. A source clears only itself, so a probe that answers does
	// not hide a watch that is still refused.
	failing map[string]failure
	// created is when the cache was made: data is stale from then until the
	// informers first sync.
	created time.Time
}

type failure struct {
	since time.Time
	err   error
}

// Sources of staleness.
const (
	sourceProbe = "probe /readyz"
	sourceNodes = "nodes"
	sourcePods  = "pods"
)

// DefaultProbeTimeout is Options.ProbeTimeout's default.
const DefaultProbeTimeout = 5 * time.Second

// New builds a cache over client. Nothing runs until Run.
func New(client kubernetes.Interface, opts Options) *Cache {
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = time.Second
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = DefaultProbeTimeout
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Probe == nil {
		opts.Probe = func(ctx context.Context) error {
			_, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Raw()
			return err
		}
	}
	c := &Cache{opts: opts, ledger: capacity.NewLedger(nil), changed: make(chan struct{}, 1), pendingSince: map[string]time.Time{},
		failing: map[string]failure{}, created: opts.Clock.Now()}
	// Informers built here rather than by a factory, so that every list and
	// watch reports its outcome: data is fresh again only once a re-list or
	// watch of each kind has succeeded.
	c.nodes = c.informer(client, sourceNodes, &corev1.Node{},
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.CoreV1().Nodes().List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return client.CoreV1().Nodes().Watch(ctx, o)
		})
	c.pods = c.informer(client, sourcePods, &corev1.Pod{},
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return client.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, o)
		})
	for _, inf := range []struct {
		informer  cache.SharedIndexInformer
		source    string
		transform cache.TransformFunc
		handler   cache.ResourceEventHandlerFuncs
	}{
		{c.nodes, sourceNodes, TransformNode, cache.ResourceEventHandlerFuncs{AddFunc: c.upsertNode, UpdateFunc: c.updateNode, DeleteFunc: c.deleteNode}},
		{c.pods, sourcePods, TransformPod, cache.ResourceEventHandlerFuncs{AddFunc: c.upsertPod, UpdateFunc: c.updatePod, DeleteFunc: c.deletePod}},
	} {
		// Errors here mean the informer already started, which cannot happen in New.
		_ = inf.informer.SetTransform(inf.transform)
		// A list or watch that fails (refused, Forbidden, ...) ends up here;
		// the reflector then retries with a backoff.
		_ = inf.informer.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
			c.recordFailure(inf.source, fmt.Errorf("list/watch %s: %w", inf.source, err))
			cache.DefaultWatchErrorHandler(ctx, r, err)
		})
		_, _ = inf.informer.AddEventHandler(inf.handler)
	}
	return c
}

// informer builds a shared informer whose successful lists and watches
// clear the staleness of source.
func (c *Cache) informer(client kubernetes.Interface, source string, obj runtime.Object,
	list func(context.Context, metav1.ListOptions) (runtime.Object, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			out, err := list(ctx, o)
			if err == nil {
				c.recordSuccess(source)
			}
			return out, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			w, err := watchFn(ctx, o)
			if err == nil {
				c.recordSuccess(source)
			}
			return w, err
		},
	}
	return cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, client), obj,
		cache.SharedIndexInformerOptions{ResyncPeriod: c.opts.Resync, Indexers: cache.Indexers{}})
}

// Run starts the informers and the API server probe, and blocks until ctx ends.
func (c *Cache) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, inf := range []cache.SharedIndexInformer{c.nodes, c.pods} {
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
	ticker := c.opts.Clock.NewTicker(c.opts.ProbeInterval)
	defer ticker.Stop()
	for {
		c.probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

// WaitForSync blocks until both informers have listed everything once.
func (c *Cache) WaitForSync(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), c.nodes.HasSynced, c.pods.HasSynced) {
		return errors.New("node and pod informers did not sync: " + errString(c.lastError()))
	}
	return nil
}

// Synced reports whether both informers have listed everything once.
func (c *Cache) Synced() bool { return c.nodes.HasSynced() && c.pods.HasSynced() }

// Ready returns nil when the numbers can be trusted: the informers have synced,
// each has listed or watched successfully since its last failure, and the
// API server's /readyz answered since its last failure; else the reason.
func (c *Cache) Ready() error {
	if since, err := c.Stale(); err != nil {
		return fmt.Errorf("capacity data stale since %s: %w", since.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// Stale returns since when the numbers cannot be trusted and why, or a zero
// time and nil when they can. Before the first sync they are stale since
// the cache was made.
func (c *Cache) Stale() (time.Time, error) {
	synced := c.Synced()
	c.healthMu.Lock()
	defer c.healthMu.Unlock()
	var since time.Time
	var reasons []string
	if !synced {
		since = c.created
	}
	sources := make([]string, 0, len(c.failing))
	for s := range c.failing {
		sources = append(sources, s)
	}
	sort.Strings(sources)
	for _, s := range sources {
		f := c.failing[s]
		if since.IsZero() || f.since.Before(since) {
			since = f.since
		}
		reasons = append(reasons, f.err.Error())
	}
	switch {
	case !synced && len(reasons) > 0:
		return since, fmt.Errorf("%w; %s", ErrNotSynced, strings.Join(reasons, "; "))
	case !synced:
		return since, ErrNotSynced
	case len(reasons) > 0:
		return since, errors.New(strings.Join(reasons, "; "))
	}
	return time.Time{}, nil
}

// ErrNotSynced is (wrapped in) Stale's error until both informers have
// listed everything once: the data has never been good, which is not the
// same as data that went stale (a controller should not act on either).
var ErrNotSynced = errors.New("node and pod informers have not synced yet")

// Report returns a consistent capacity report of the cluster.
func (c *Cache) Report() capacity.Report {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ledger.Report()
}

// Rooms returns every node's free room, for fit checks.
func (c *Cache) Rooms() []capacity.NodeRoom {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ledger.Rooms()
}

// Pending returns the unbound, non-terminal pods.
func (c *Cache) Pending() []capacity.PendingPod {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ledger.Pending()
}

// StartUps returns the last start-ups (creation to Ready) of an
// opportunistic workload's pods (capacity.Ledger.StartUps).
func (c *Cache) StartUps(workload string) []time.Duration {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ledger.StartUps(workload)
}

// Opportunistic returns the opportunistic pods bound to each node.
func (c *Cache) Opportunistic() map[string][]capacity.BoundPod {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ledger.Opportunistic()
}

// Paid returns the paid pods bound to each node.
func (c *Cache) Paid() map[string][]capacity.BoundPod {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ledger.Paid()
}

// SetWorkloads changes which pods count as opportunistic.
func (c *Cache) SetWorkloads(ws []capacity.Workload) {
	c.update(func(l *capacity.Ledger) { l.SetWorkloads(ws) })
}

// Changes receives after the model changed. Changes coalesce: one receive
// may stand for many events, so a reader re-reads the whole state.
func (c *Cache) Changes() <-chan struct{} { return c.changed }

// update applies one change to the ledger and signals readers.
func (c *Cache) update(change func(*capacity.Ledger)) {
	c.mu.Lock()
	change(c.ledger)
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default: // a signal is already pending
	}
}

func (c *Cache) probe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.ProbeTimeout)
	defer cancel()
	if err := c.opts.Probe(ctx); err != nil {
		if ctx.Err() == nil || errors.Is(err, context.DeadlineExceeded) {
			c.recordFailure(sourceProbe, fmt.Errorf("%s: %w", sourceProbe, err))
		}
		return
	}
	c.recordSuccess(sourceProbe)
}

// recordFailure marks source failing; the first failure sets since when.
func (c *Cache) recordFailure(source string, err error) {
	c.healthMu.Lock()
	defer c.healthMu.Unlock()
	f, failing := c.failing[source]
	if !failing {
		f.since = c.opts.Clock.Now()
	}
	f.err = err
	c.failing[source] = f
}

// recordSuccess clears source's failure.
func (c *Cache) recordSuccess(source string) {
	c.healthMu.Lock()
	defer c.healthMu.Unlock()
	delete(c.failing, source)
}

func (c *Cache) lastError() error {
	_, err := c.Stale()
	return err
}

func errString(err error) string {
	if err == nil {
		return "no error recorded"
	}
	return err.Error()
}

func (c *Cache) upsertNode(obj any) {
	if n, ok := obj.(*NodeObject); ok {
		c.update(func(l *capacity.Ledger) { l.UpsertNode(n.Model) })
	}
}

// updateNode applies a node update that changes the model. Most node
// updates are heartbeats (conditions' timestamps, images): the model is the
// same, so they neither touch the ledger nor signal a round.
func (c *Cache) updateNode(old, obj any) {
	if o, ok := old.(*NodeObject); ok {
		if n, ok := obj.(*NodeObject); ok && reflect.DeepEqual(o.Model, n.Model) {
			return
		}
	}
	c.upsertNode(obj)
}

func (c *Cache) deleteNode(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if n, ok := obj.(*NodeObject); ok {
		c.update(func(l *capacity.Ledger) { l.DeleteNode(n.Name) })
	}
}

func (c *Cache) upsertPod(obj any) {
	if p, ok := obj.(*PodObject); ok {
		c.update(func(l *capacity.Ledger) {
			l.UpsertPod(p.Model)
			c.trackPending(l, &p.Model)
		})
	}
}

// updatePod applies a pod update that changes the model. Most pod updates
// change only status fields the model ignores (conditions, IPs, container
// states, a deletion timestamp): those neither touch the ledger nor signal a
// round, so status churn costs the API server nothing.
func (c *Cache) updatePod(old, obj any) {
	if o, ok := old.(*PodObject); ok {
		if p, ok := obj.(*PodObject); ok && reflect.DeepEqual(o.Model, p.Model) {
			return
		}
	}
	c.upsertPod(obj)
}

// trackPending measures how long paid pods wait to be bound.
func (c *Cache) trackPending(l *capacity.Ledger, p *capacity.Pod) {
	key := p.Key()
	since, waiting := c.pendingSince[key]
	switch {
	case p.NodeName == "" && !p.Terminal:
		if !waiting {
			c.pendingSince[key] = c.opts.Clock.Now()
		}
	case waiting:
		delete(c.pendingSince, key)
		if workload, _ := l.WorkloadOf(p.Namespace, p.Name); workload == "" && p.NodeName != "" && c.opts.PaidPodScheduled != nil {
			c.opts.PaidPodScheduled(c.opts.Clock.Since(since))
		}
	}
}

func (c *Cache) deletePod(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if p, ok := obj.(*PodObject); ok {
		c.update(func(l *capacity.Ledger) {
			l.DeletePod(p.Model.Namespace, p.Model.Name)
			delete(c.pendingSince, p.Model.Namespace+"/"+p.Model.Name)
		})
	}
}
