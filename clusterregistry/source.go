package clusterregistry

import (
	"context"
	"sync"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// ChangeSource is a controller-runtime source for a controller whose work
// depends on the registry: every change of a cluster's registration, labels
// or health puts the requests affected returns for that cluster straight on
// the controller's queue. Changes are coalesced per cluster, never dropped
// (see Subscribe). Before the controller starts (a replica that is not the
// leader) they are ignored: a starting controller lists everything anyway.
func ChangeSource[R comparable](p interface {
	Subscribe(fn func(clusterName string))
}, affected func(ctx context.Context, cluster string) []R) source.TypedSource[R] {
	var (
		mu    sync.Mutex
		ctx   context.Context
		queue workqueue.TypedRateLimitingInterface[R]
	)
	p.Subscribe(func(name string) {
		mu.Lock()
		c, q := ctx, queue
		mu.Unlock()
		if q == nil {
			return
		}
		for _, req := range affected(c, name) {
			q.Add(req)
		}
	})
	return source.TypedFunc[R](func(c context.Context, q workqueue.TypedRateLimitingInterface[R]) error {
		mu.Lock()
		ctx, queue = c, q
		mu.Unlock()
		return nil
	})
}
