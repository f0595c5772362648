package controller

import (
	"context"
	"reflect"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

func handlerFor(fn handler.MapFunc) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(fn)
}

// capacitySource turns the capacity model's change signal into rounds. The
// queue holds one request, so a burst of pod events costs one round.
func capacitySource(changes <-chan struct{}) source.Source {
	return source.Func(func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-changes:
					q.Add(RoundRequest)
				}
			}
		}()
		return nil
	})
}

// controllerOptions: one round at a time, since a round covers every scaler.
func controllerOptions() controller.Options {
	return controller.Options{MaxConcurrentReconciles: 1}
}

func equality(a, b any) bool { return reflect.DeepEqual(a, b) }
