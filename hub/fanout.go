package hub

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// forEachCluster runs fn for every cluster name with at most limit at once,
// each bounded by timeout. It is not errgroup.WithContext on purpose: one
// failing or hanging member must neither cancel nor delay the others, so fn
// reports its outcome through its own result rather than an error.
func forEachCluster[T any](ctx context.Context, names []string, limit int, timeout time.Duration,
	fn func(ctx context.Context, name string) T) map[string]T {
	var (
		g   errgroup.Group
		mu  sync.Mutex
		out = make(map[string]T, len(names))
	)
	g.SetLimit(max(limit, 1))
	for _, name := range names {
		g.Go(func() error {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			res := fn(cctx, name)
			mu.Lock()
			out[name] = res
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	return out
}
