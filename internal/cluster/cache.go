// Package cluster keeps a live capacity ledger of a Kubernetes cluster: node
// and pod informers with trimming transforms feed capacity.Ledger one event at
// a time, and readers get consistent reports without blocking the informers
// for longer than a copy.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/informers"
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
	factory informers.SharedInformerFactory
	nodes   cache.SharedIndexInformer
	pods    cache.SharedIndexInformer
	mu      sync.RWMutex
	ledger  *capacity.Ledger
	changed chan struct{}
	// pendingSince is when each unbound pod was first seen unbound.
	pendingSince map[string]time.Time
	healthMu     sync.Mutex
	// lastFailure is when the API server last failed us (probe or watch), and why.
	lastFailure time.Time
	failure     error
	lastSuccess time.Time
}

// New builds a cache over client. Nothing runs until Run.
func New(client kubernetes.Interface, opts Options) *Cache {
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = time.Second
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
	c := &Cache{opts: opts, ledger: capacity.NewLedger(nil), changed: make(chan struct{}, 1), pendingSince: map[string]time.Time{}}
	c.factory = informers.NewSharedInformerFactory(client, opts.Resync)
	c.nodes = c.factory.Core().V1().Nodes().Informer()
	c.pods = c.factory.Core().V1().Pods().Informer()
	for _, inf := range []struct {
		informer  cache.SharedIndexInformer
		transform cache.TransformFunc
		handler   cache.ResourceEventHandlerFuncs
	}{
		{c.nodes, TransformNode, cache.ResourceEventHandlerFuncs{AddFunc: c.upsertNode, UpdateFunc: func(_, n any) { c.upsertNode(n) }, DeleteFunc: c.deleteNode}},
		{c.pods, TransformPod, cache.ResourceEventHandlerFuncs{AddFunc: c.upsertPod, UpdateFunc: func(_, p any) { c.upsertPod(p) }, DeleteFunc: c.deletePod}},
	} {
		// Errors here mean the informer already started, which cannot happen in New.
		_ = inf.informer.SetTransform(inf.transform)
		_ = inf.informer.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
			c.recordFailure(fmt.Errorf("watch: %w", err))
			cache.DefaultWatchErrorHandler(ctx, r, err)
		})
		_, _ = inf.informer.AddEventHandler(inf.handler)
	}
	return c
}

// Run starts the informers and the API server probe, and blocks until ctx ends.
func (c *Cache) Run(ctx context.Context) {
	c.factory.Start(ctx.Done())
	defer c.factory.Shutdown()
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

// Ready returns nil when the numbers can be trusted: the informers have synced
// and the API server answered after its last failure; else the reason.
func (c *Cache) Ready() error {
	if !c.Synced() {
		return errors.New("node and pod informers have not synced yet")
	}
	c.healthMu.Lock()
	defer c.healthMu.Unlock()
	if !c.lastFailure.IsZero() && !c.lastSuccess.After(c.lastFailure) {
		return fmt.Errorf("API server unreachable since %s: %w", c.lastFailure.Format(time.RFC3339), c.failure)
	}
	return nil
}

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
	ctx, cancel := context.WithTimeout(ctx, c.opts.ProbeInterval)
	defer cancel()
	if err := c.opts.Probe(ctx); err != nil {
		if ctx.Err() == nil || errors.Is(err, context.DeadlineExceeded) {
			c.recordFailure(fmt.Errorf("probe /readyz: %w", err))
		}
		return
	}
	c.healthMu.Lock()
	c.lastSuccess = c.opts.Clock.Now()
	c.healthMu.Unlock()
}

func (c *Cache) recordFailure(err error) {
	c.healthMu.Lock()
	defer c.healthMu.Unlock()
	c.lastFailure, c.failure = c.opts.Clock.Now(), err
}

func (c *Cache) lastError() error {
	c.healthMu.Lock()
	defer c.healthMu.Unlock()
	return c.failure
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
			l.DeletePod(p.Namespace, p.Name)
			delete(c.pendingSince, p.Namespace+"/"+p.Name)
		})
	}
}
