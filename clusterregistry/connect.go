package clusterregistry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
)

// userAgent identifies the operator's requests in member API server logs.
const userAgent = "hub-operator"

var (
	// errCacheSync: the member cache did not sync within CacheSyncTimeout.
	errCacheSync = errors.New("member cache did not sync in time")
	// errClusterStopped: a running member cluster stopped by itself.
	errClusterStopped = errors.New("member cluster stopped")
)

// drain empties a capacity-1 wake-up channel without blocking.
func drain(c chan struct{}) {
	select {
	case <-c:
	default:
	}
}

// memberConfig is config with the operator's client settings: a user agent,
// and one rate limiter shared by every client built from it.
func (p *Provider) memberConfig(config *rest.Config) *rest.Config {
	c := rest.CopyConfig(config)
	c.UserAgent = userAgent
	c.QPS = p.opts.QPS
	c.Burst = p.opts.Burst
	c.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(p.opts.QPS, p.opts.Burst)
	return c
}

// withPrivateTransport returns a copy of config for which client-go builds a
// new transport instead of sharing a cached one: client-go never caches the
// transport of a config with a Proxy function. http.ProxyFromEnvironment is
// what client-go uses when Proxy is nil, so behaviour is otherwise unchanged;
// a kubeconfig's proxy-url already sets Proxy.
func withPrivateTransport(config *rest.Config) *rest.Config {
	c := rest.CopyConfig(config)
	if c.Proxy == nil {
		c.Proxy = http.ProxyFromEnvironment
	}
	return c
}

// clusterOptions are the provider's cluster options followed by the user's.
// The cache and mapper use httpClient as is, because http.Client.Timeout
// would cut every watch after Timeout; only the client's requests get it.
func (p *Provider) clusterOptions(log logr.Logger, httpClient *http.Client) []cluster.Option {
	timed := &http.Client{Transport: httpClient.Transport, Timeout: p.opts.Timeout}
	opts := []cluster.Option{func(o *cluster.Options) {
		o.Scheme = p.opts.Scheme
		o.HTTPClient = httpClient
		o.Client.HTTPClient = timed
		o.Cache = MemberCacheOptions()
		o.Logger = log
	}}
	return append(opts, p.opts.ClusterOptions...)
}

// waitForSync starts the informers of SyncObjects and waits, at most
// CacheSyncTimeout, for the cache to sync.
func (p *Provider) waitForSync(ctx context.Context, cl cluster.Cluster) error {
	syncCtx, cancel := context.WithTimeout(ctx, p.opts.CacheSyncTimeout)
	defer cancel()
	for _, obj := range p.opts.SyncObjects {
		if _, err := cl.GetCache().GetInformer(syncCtx, obj); err != nil {
			if syncCtx.Err() != nil {
				return errCacheSync
			}
			return fmt.Errorf("starting informer for %T: %w", obj, err)
		}
	}
	if !cl.GetCache().WaitForCacheSync(syncCtx) {
		return errCacheSync
	}
	return nil
}

// indexersFrom returns the provider's indexers from position from on, and how
// many there are in total.
func (p *Provider) indexersFrom(from int) ([]index, int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return slices.Clone(p.indexers[min(from, len(p.indexers)):]), len(p.indexers)
}

func applyIndexers(ctx context.Context, cl cluster.Cluster, indexers []index) error {
	for _, i := range indexers {
		if err := cl.GetFieldIndexer().IndexField(ctx, i.obj, i.field, i.extract); err != nil {
			return fmt.Errorf("indexing field %s: %w", i.field, err)
		}
	}
	return nil
}

// setEngaged records cl (nil: none) as the engaged cluster of the loop gen and
// returns the indexers added since applied were, which the caller must apply:
// IndexField covers only clusters recorded before it ran.
func (p *Provider) setEngaged(name string, gen uint64, cl cluster.Cluster, applied int) []index {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[name]
	if !ok || e.gen != gen {
		return nil
	}
	e.cluster = cl
	if cl == nil {
		return nil
	}
	return slices.Clone(p.indexers[min(applied, len(p.indexers)):])
}

// setState records a State of the loop gen and tells subscribers if anything
// changed. Updates from a loop that no longer owns the entry are dropped.
func (p *Provider) setState(log logr.Logger, name string, gen uint64, state State, reason, msg string) {
	p.mu.Lock()
	e, ok := p.entries[name]
	if !ok || e.gen != gen {
		p.mu.Unlock()
		return
	}
	next := e.info
	next.State, next.Reason, next.Message = state, reason, msg
	changed := !next.equal(e.info)
	e.info = next
	p.mu.Unlock()
	if changed {
		log.Info("Cluster state changed", "state", state, "reason", reason, "message", msg)
		p.notify(name)
	}
}

// prober sends health probes to one member over a connection pool of its own,
// so that a probe measures the member now, not a pooled connection that a
// network failure left hanging.
type prober struct {
	rest      *rest.RESTClient
	transport http.RoundTripper
}

func newProber(config *rest.Config, timeout time.Duration) (*prober, error) {
	c := withPrivateTransport(config)
	c.Timeout = timeout
	c.RateLimiter = nil
	c.QPS = -1 // a probe must not queue behind the cluster's own requests
	c.NegotiatedSerializer = serializer.NewCodecFactory(runtime.NewScheme()).WithoutConversion()
	httpClient, err := rest.HTTPClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("building probe client: %w", err)
	}
	rc, err := rest.UnversionedRESTClientForConfigAndClient(c, httpClient)
	if err != nil {
		return nil, fmt.Errorf("building probe client: %w", err)
	}
	return &prober{rest: rc, transport: httpClient.Transport}, nil
}

func (pr *prober) close() { utilnet.CloseIdleConnectionsFor(pr.transport) }

// probe sends GET /readyz, bounded by ProbeTimeout, and reports it to
// ObserveProbe. After a failure it drops the pool's connections so that the
// next probe dials afresh.
func (p *Provider) probe(ctx context.Context, name string, pr *prober) error {
	ctx, cancel := context.WithTimeout(ctx, p.opts.ProbeTimeout)
	defer cancel()
	start := time.Now()
	_, err := pr.rest.Get().AbsPath("/readyz").DoRaw(ctx)
	if p.opts.ObserveProbe != nil {
		p.opts.ObserveProbe(name, time.Since(start), err)
	}
	if err != nil {
		pr.close()
		return fmt.Errorf("probing cluster %s: %w", name, err)
	}
	return nil
}

// describe turns a connection failure into a stable, human message for
// ClusterInfo.Message. It names the cause's class, never the error text: an
// API server's response body or a TLS error could carry anything.
func (p *Provider) describe(err error) string {
	var (
		status  apierrors.APIStatus
		dnsErr  *net.DNSError
		netErr  net.Error
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		verify  *tls.CertificateVerificationError
	)
	switch {
	case err == nil:
		return "cluster is unreachable"
	case errors.Is(err, errCacheSync):
		return fmt.Sprintf("cluster cache did not sync within %s: check that the operator may list and watch Deployments and Services in the cluster", p.opts.CacheSyncTimeout)
	case errors.Is(err, errClusterStopped):
		return "connection to the cluster was lost"
	case apierrors.IsUnauthorized(err):
		return "cluster rejected the kubeconfig's credentials (401 Unauthorized)"
	case apierrors.IsForbidden(err):
		return "cluster denied access to its health endpoint (403 Forbidden)"
	case errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid), errors.As(err, &verify):
		return "cluster's serving certificate does not verify against the kubeconfig's certificate authority or server name"
	case errors.As(err, &dnsErr):
		return "cluster's host name does not resolve"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "cluster refused the connection"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("cluster did not answer within %s", p.opts.ProbeTimeout)
	case errors.As(err, &status):
		return fmt.Sprintf("cluster's API server is not ready (HTTP %d)", status.Status().Code)
	default:
		return "cluster is unreachable"
	}
}
