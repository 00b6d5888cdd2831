package clusterregistry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/go-logr/logr"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"

	hubv1 "example.com/hub-operator/api/v1"
)

// connection keeps one member cluster connected for one registration of it
// (one kubeconfig): connect, sync, engage, probe; on any failure, disengage
// and try again after a backoff. The Provider starts one per registered
// cluster with a valid kubeconfig and a new one when the kubeconfig changes;
// it runs in a context derived from Start's, never a reconcile's, and
// nothing in it blocks anything but this one cluster.
type connection struct {
	p      *Provider
	log    logr.Logger
	name   string
	config *rest.Config
	aware  multicluster.Aware
	// gen identifies this connection in the Provider's entry: updates from a
	// connection that was replaced are dropped.
	gen uint64
	// suspect wakes the connection for an out-of-band probe (Suspect).
	suspect chan struct{}
	// prev is closed when the connection this one replaces has ended; nil
	// when it replaces none.
	prev <-chan struct{}
	// retire, when set, stops the connection this one replaces (new
	// credentials for a Ready cluster: make before break). The old one
	// serves until this one's first cluster has synced, or its first
	// attempt failed.
	retire context.CancelFunc
	// done is closed when Run has returned and the old connection is gone.
	done chan struct{}
	// handOver retires or waits for the previous connection, once; false
	// when ctx ended first.
	handOver func() bool
}

// launchLocked starts the connection of e. p.mu must be held for writing.
// retire, when set, stops the connection e replaces once the new one's own
// cluster has synced, so that the old one serves until then.
func (p *Provider) launchLocked(name string, e *entry, retire context.CancelFunc) {
	if p.ctx.Err() != nil {
		// Start is returning; it waits for connections, so none may be added now.
		return
	}
	p.nextGen++
	e.gen = p.nextGen
	ctx, cancel := context.WithCancel(p.ctx)
	e.cancel = cancel
	e.suspect = make(chan struct{}, 1)
	c := &connection{
		p: p, log: p.log.WithValues("cluster", name), name: name, config: e.config, aware: p.aware,
		gen: e.gen, suspect: e.suspect, prev: p.loopDone[name], retire: retire, done: make(chan struct{}),
	}
	p.loopDone[name] = c.done
	p.loops.Add(1)
	go c.Run(ctx)
}

// Run keeps the cluster connected until ctx ends.
func (c *connection) Run(ctx context.Context) {
	defer c.p.loops.Done()
	defer c.finish()
	// The previous connection for this name may still be disengaging;
	// engaging the new cluster before it is gone could let its late Engage win.
	c.handOver = sync.OnceValue(func() bool {
		if c.retire != nil {
			c.retire()
		}
		if c.prev == nil {
			return true
		}
		select {
		case <-c.prev:
			return true
		case <-ctx.Done():
			return false
		}
	})
	if c.retire == nil && !c.handOver() {
		return
	}
	backoff := c.p.connectBackoff()
	for {
		wasReady, err := c.connectAndServe(ctx)
		if ctx.Err() != nil || !c.handOver() {
			return
		}
		// Drop a retired cluster that the entry still pointed at.
		c.p.setEngaged(c.name, c.gen, nil, 0)
		if wasReady {
			backoff = c.p.connectBackoff() // a lost connection starts over at the base delay
		}
		c.p.setState(c.log, c.name, c.gen, StateUnreachable, hubv1.ReasonClusterUnreachable, c.p.describe(err))
		delay := backoff.Step()
		c.log.V(1).Info("Retrying connection to cluster", "after", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// finish runs when Run returns: a successor waits for done, so the old
// connection must be gone by then too.
func (c *connection) finish() {
	if c.retire != nil {
		c.retire()
	}
	if c.prev != nil {
		<-c.prev
	}
	c.p.mu.Lock()
	if c.p.loopDone[c.name] == c.done {
		delete(c.p.loopDone, c.name)
	}
	c.p.mu.Unlock()
	close(c.done)
}

// connectBackoff is the delay between connect attempts: ConnectBackoff,
// doubled after each failure up to MaxConnectBackoff, with 10% jitter so
// that members lost together are not retried in lockstep.
func (p *Provider) connectBackoff() *wait.Backoff {
	return &wait.Backoff{
		Duration: p.opts.ConnectBackoff,
		Factor:   2,
		Jitter:   0.1,
		Steps:    math.MaxInt32,
		Cap:      p.opts.MaxConnectBackoff,
	}
}

// connectAndServe makes one connection to the cluster and serves it until ctx
// ends (returning nil) or the connection is lost (returning why, and whether
// the cluster had been Ready). While serving it probes the cluster every
// ProbeInterval, and at once when suspect fires. handOver is called once the
// new cluster has synced, before it is engaged.
func (c *connection) connectAndServe(ctx context.Context) (wasReady bool, _ error) {
	p, log, name, gen := c.p, c.log, c.name, c.gen
	memberConfig := p.memberConfig(c.config)

	// A probe first: it fails fast and with a precise cause for a member that
	// is down, where a cache would only time out.
	prober, err := newProber(memberConfig, p.opts.ProbeTimeout)
	if err != nil {
		return false, err
	}
	defer prober.close()
	if err := p.probe(ctx, name, prober); err != nil {
		return false, err
	}

	// A private connection pool per attempt: client-go shares transports by
	// config, and a pool holding connections hung by a network black hole
	// would stall the next attempt until HTTP/2 health checks give up.
	httpClient, err := rest.HTTPClientFor(withPrivateTransport(memberConfig))
	if err != nil {
		return false, fmt.Errorf("building HTTP client for cluster %s: %w", name, err)
	}
	defer utilnet.CloseIdleConnectionsFor(httpClient.Transport)

	log.V(1).Info("Connecting to cluster")
	cl, err := cluster.New(memberConfig, p.clusterOptions(log, httpClient)...)
	if err != nil {
		return false, fmt.Errorf("creating cluster %s: %w", name, err)
	}
	// Indexes must be in place before the informers start.
	indexers, applied := p.indexersFrom(0)
	if err := applyIndexers(ctx, cl, indexers); err != nil {
		return false, fmt.Errorf("cluster %s: %w", name, err)
	}

	clusterCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- cl.Start(clusterCtx) }()
	running := true
	defer func() {
		stop()
		if !running {
			return
		}
		if err := <-stopped; err != nil {
			log.V(1).Info("Member cluster stopped with an error", "err", err)
		}
	}()

	if err := p.waitForSync(clusterCtx, cl); err != nil {
		return false, err
	}
	if !c.handOver() {
		return false, ctx.Err()
	}

	if err := applyIndexers(ctx, cl, p.setEngaged(name, gen, cl, applied)); err != nil {
		p.setEngaged(name, gen, nil, 0)
		return false, fmt.Errorf("cluster %s: %w", name, err)
	}
	// Engage with clusterCtx: cancelling it (teardown, lost connection)
	// disengages the cluster from every controller.
	if err := c.aware.Engage(clusterCtx, multicluster.ClusterName(name), cl); err != nil {
		p.setEngaged(name, gen, nil, 0)
		return false, fmt.Errorf("engaging cluster %s: %w", name, err)
	}
	defer p.setEngaged(name, gen, nil, 0)
	log.Info("Engaged cluster")
	p.setState(log, name, gen, StateReady, hubv1.ReasonAsExpected, "cluster is connected")

	clusterStopped, err := c.serve(ctx, prober, stopped)
	running = !clusterStopped
	return true, err
}

// serve probes an engaged cluster every ProbeInterval, and at once when
// suspect fires, recording each outcome as its State, until ctx ends (nil)
// or the cluster stops by itself (clusterStopped, with why).
func (c *connection) serve(ctx context.Context, pr *prober, stopped <-chan error) (clusterStopped bool, _ error) {
	p, log, name, gen, suspect := c.p, c.log, c.name, c.gen, c.suspect
	ticker := time.NewTicker(p.opts.ProbeInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case err := <-stopped:
			return true, errors.Join(errClusterStopped, err)
		case <-ticker.C:
		case <-suspect:
			log.V(1).Info("Probing cluster out of band: a request to it failed as unreachable")
		}
		if err := p.probe(ctx, name, pr); err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			p.setState(log, name, gen, StateUnreachable, hubv1.ReasonClusterUnreachable, p.describe(err))
		} else {
			p.setState(log, name, gen, StateReady, hubv1.ReasonAsExpected, "cluster is connected")
		}
		// Suspicions raised while this probe ran are answered by it.
		drain(suspect)
	}
}
