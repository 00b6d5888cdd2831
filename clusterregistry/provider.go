package clusterregistry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	mcmanager "sigs.k8s.io/multicluster-runtime/pkg/manager"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"

	hubv1 "example.com/hub-operator/api/v1"
)

// Defaults of Options.
const (
	// DefaultNamespace is the registry namespace when Options.Namespace is empty.
	DefaultNamespace = hubv1.DefaultRegistryNamespace
	// DefaultQPS and DefaultBurst bound the request rate to one member cluster.
	DefaultQPS   = 50
	DefaultBurst = 100
	// DefaultTimeout bounds every request of a member cluster's client (not
	// its cache's watches, which are long-running by design).
	DefaultTimeout = 10 * time.Second
	// DefaultCacheSyncTimeout bounds how long a connect attempt waits for a
	// member's cache to sync before giving up and retrying.
	DefaultCacheSyncTimeout = 15 * time.Second
	// DefaultProbeInterval is how often each connected cluster is probed.
	DefaultProbeInterval = 10 * time.Second
	// DefaultProbeTimeout bounds one health probe.
	DefaultProbeTimeout = 5 * time.Second
	// DefaultConnectBackoff is the delay after the first failed connect
	// attempt; it doubles with each further failure up to DefaultMaxConnectBackoff.
	DefaultConnectBackoff    = time.Second
	DefaultMaxConnectBackoff = time.Minute
	// ControllerName names the registry Secret controller on the hub manager,
	// and is the reporting controller of its events.
	ControllerName = "clusterregistry"
)

// Options configure a Provider. Zero values mean the Default constants.
type Options struct {
	// Namespace holds the registry Secrets.
	Namespace string

	// ForbiddenHosts are API servers a member kubeconfig must not point at,
	// typically the hub's own (see ValidationOptions.ForbiddenHosts).
	ForbiddenHosts []string
	// MaxKubeconfigBytes caps the size of a registry kubeconfig.
	MaxKubeconfigBytes int

	// QPS and Burst rate-limit each member cluster's clients; one limiter is
	// shared by all clients of a cluster so that the limit is real.
	QPS   float32
	Burst int
	// Timeout bounds each request of a member cluster's client.
	Timeout time.Duration
	// CacheSyncTimeout bounds the wait for a member cache to sync.
	CacheSyncTimeout time.Duration
	// ConnectBackoff and MaxConnectBackoff shape the exponential backoff
	// between failed connect attempts.
	ConnectBackoff    time.Duration
	MaxConnectBackoff time.Duration

	// ProbeInterval is the period of health probes of connected clusters.
	ProbeInterval time.Duration
	// ProbeTimeout bounds one health probe.
	ProbeTimeout time.Duration
	// ObserveProbe, if set, is called after every health probe, with its
	// latency and outcome (nil on success). It must not block.
	ObserveProbe func(cluster string, d time.Duration, err error)

	// Scheme of the member clusters' clients and caches. Default: the
	// client-go built-in types.
	Scheme *runtime.Scheme
	// SyncObjects are the kinds whose member informers are started and synced
	// before a cluster counts as Ready, so that a member the operator cannot
	// list them in is reported instead of silently serving an empty cache.
	// Default: Deployments and Services.
	SyncObjects []client.Object
	// ClusterOptions are applied after the provider's own cluster options
	// (scheme, HTTP clients, MemberCacheOptions), and may override them.
	ClusterOptions []cluster.Option

	// Logger is the provider's logger. Default: ctrl.Log named "clusterregistry".
	Logger logr.Logger
}

// Provider is a multicluster-runtime Provider over kubeconfig Secrets. See the
// package documentation for what it does; New creates one, SetupWithManager
// registers its Secret controller, and the multicluster manager calls Start.
type Provider struct {
	opts       Options
	validation ValidationOptions
	log        logr.Logger

	// Set by SetupWithManager, read-only afterwards.
	client   client.Client
	recorder events.EventRecorder

	// synced is closed once Start registered the Secrets that existed.
	synced chan struct{}
	// done is closed when Start returns; subscriber goroutines end with it.
	done chan struct{}
	// loops counts running connect loops, so that Start returns only after
	// every member cluster has stopped.
	loops sync.WaitGroup

	// mu protects every field below. It is never held while calling out:
	// not during Engage, a subscriber callback, a network request or a
	// cluster's cancel function.
	mu sync.RWMutex
	// ctx is the provider's long-lived context, from Start; nil before.
	// Connect loops and member clusters live in contexts derived from it.
	ctx context.Context
	// aware engages clusters; from Start.
	aware multicluster.Aware
	// entries holds every registered cluster by name.
	entries map[string]*entry
	// loopDone holds, by cluster name, the done channel of the newest connect
	// loop; a replacement loop waits for it so that two loops never engage
	// the same name at once.
	loopDone map[string]chan struct{}
	// indexers are replayed on every cluster before it is engaged.
	indexers []index
	// subscribers are told about changes.
	subscribers []*subscriber
	// nextGen numbers connect loops.
	nextGen uint64
}

// entry is one registered cluster.
type entry struct {
	info ClusterInfo
	// hash of the kubeconfig it was built from, for change detection.
	hash string
	// config is the validated member rest.Config; nil when Invalid.
	config *rest.Config
	// gen identifies the connect loop that owns this entry: updates from any
	// other (torn-down) loop are dropped.
	gen uint64
	// cancel stops the connect loop and its cluster; nil when none runs.
	cancel context.CancelFunc
	// suspect wakes the connect loop for an out-of-band health probe
	// (Suspect); capacity 1, so requests made before the loop got to them
	// coalesce into one probe. nil when no loop runs.
	suspect chan struct{}
	// cluster is set while the cluster is engaged.
	cluster cluster.Cluster
}

type index struct {
	obj     client.Object
	field   string
	extract client.IndexerFunc
}

var (
	_ multicluster.Provider         = &Provider{}
	_ multicluster.ProviderRunnable = &Provider{}
)

// New returns a Provider with opts' zero values replaced by the defaults.
func New(opts Options) *Provider {
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.MaxKubeconfigBytes <= 0 {
		opts.MaxKubeconfigBytes = DefaultMaxKubeconfigBytes
	}
	if opts.QPS <= 0 {
		opts.QPS = DefaultQPS
	}
	if opts.Burst <= 0 {
		opts.Burst = DefaultBurst
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.CacheSyncTimeout <= 0 {
		opts.CacheSyncTimeout = DefaultCacheSyncTimeout
	}
	if opts.ConnectBackoff <= 0 {
		opts.ConnectBackoff = DefaultConnectBackoff
	}
	if opts.MaxConnectBackoff <= 0 {
		opts.MaxConnectBackoff = DefaultMaxConnectBackoff
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = DefaultProbeInterval
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = DefaultProbeTimeout
	}
	if opts.Scheme == nil {
		opts.Scheme = runtime.NewScheme()
		// AddToScheme of the built-in types cannot fail.
		_ = clientgoscheme.AddToScheme(opts.Scheme)
	}
	if opts.SyncObjects == nil {
		opts.SyncObjects = []client.Object{&appsv1.Deployment{}, &corev1.Service{}}
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = ctrl.Log.WithName(ControllerName)
	}
	return &Provider{
		opts: opts,
		validation: ValidationOptions{
			MaxBytes:       opts.MaxKubeconfigBytes,
			ForbiddenHosts: opts.ForbiddenHosts,
		},
		log:      opts.Logger,
		synced:   make(chan struct{}),
		done:     make(chan struct{}),
		entries:  map[string]*entry{},
		loopDone: map[string]chan struct{}{},
	}
}

// SetupWithManager registers the registry Secret controller on mgr's local
// (hub) manager. ctx is unused; it is there to match the signature of
// multicluster-runtime's providers. Clusters are engaged through the Aware
// passed to Start, which the multicluster manager calls when it starts.
func (p *Provider) SetupWithManager(_ context.Context, mgr mcmanager.Manager) error {
	if mgr == nil {
		return errors.New("setting up cluster registry: manager is nil")
	}
	local := mgr.GetLocalManager()
	p.client = local.GetClient()
	p.recorder = local.GetEventRecorder(ControllerName)
	err := ctrl.NewControllerManagedBy(local).
		Named(ControllerName).
		For(&corev1.Secret{}, builder.WithPredicates(p.registryPredicate())).
		WatchesRawSource(p.healthChanges()).
		Complete(p)
	if err != nil {
		return fmt.Errorf("setting up cluster registry controller for namespace %s: %w", p.opts.Namespace, err)
	}
	return nil
}

// Start runs the provider until ctx ends. It first registers every registry
// Secret in the hub cache (then Synced is closed), launching connect loops
// for them and for later ones as they come; when ctx ends it stops every
// member cluster and waits for them. The multicluster manager calls it after
// the hub caches synced; do not call it yourself.
func (p *Provider) Start(ctx context.Context, aware multicluster.Aware) error {
	if aware == nil {
		return errors.New("starting cluster registry: aware is nil")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.mu.Lock()
	if p.ctx != nil {
		p.mu.Unlock()
		return errors.New("starting cluster registry: already started")
	}
	p.ctx, p.aware = ctx, aware
	for name, e := range p.entries {
		if e.config != nil && e.cancel == nil {
			p.launchLocked(name, e, nil)
		}
	}
	p.mu.Unlock()

	err := p.registerExisting(ctx)
	if err == nil {
		close(p.synced)
		<-ctx.Done()
	}
	// Every loop's context derives from ctx: stop them, and wait for their
	// clusters to be down before reporting the provider stopped.
	cancel()
	p.loops.Wait()
	close(p.done)
	return err
}

// registerExisting registers every registry Secret the hub cache holds, so
// that when Synced closes a cluster missing from List is really not registered
// (rather than not yet reconciled).
func (p *Provider) registerExisting(ctx context.Context) error {
	if p.client == nil {
		return nil
	}
	var secrets corev1.SecretList
	if err := p.client.List(ctx, &secrets, client.InNamespace(p.opts.Namespace),
		client.MatchingLabels{hubv1.MemberClusterLabel: memberClusterLabelValue}); err != nil {
		return fmt.Errorf("listing registry secrets in namespace %s: %w", p.opts.Namespace, err)
	}
	for i := range secrets.Items {
		s := &secrets.Items[i]
		// The only error is a rejected kubeconfig, already recorded.
		_ = p.reconcileSecret(ctrl.LoggerInto(ctx, p.log.WithValues("Secret", klog.KObj(s))), s)
	}
	return nil
}

// Synced is closed once Start has registered every registry Secret that the
// hub cache held when it started. Until then a cluster missing from List may
// just not have been read yet, so the hub should not report it as not found.
func (p *Provider) Synced() <-chan struct{} {
	return p.synced
}

// Get returns the engaged cluster of that name. A registered cluster that is
// not engaged (connecting, never reached, invalid) is not found: use Lookup to
// tell those apart from unregistered ones.
func (p *Provider) Get(_ context.Context, clusterName multicluster.ClusterName) (cluster.Cluster, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if e, ok := p.entries[string(clusterName)]; ok && e.cluster != nil {
		return e.cluster, nil
	}
	return nil, fmt.Errorf("cluster %s is not engaged: %w", clusterName, multicluster.ErrClusterNotFound)
}

// IndexField adds a field index to every engaged cluster and to every cluster
// engaged later. With MemberCacheOptions, Deployments and Services not
// managed by hub-operator reach extractValue reduced to their name.
func (p *Provider) IndexField(ctx context.Context, obj client.Object, field string, extractValue client.IndexerFunc) error {
	p.mu.Lock()
	p.indexers = append(p.indexers, index{obj: obj, field: field, extract: extractValue})
	engaged := map[string]cluster.Cluster{}
	for name, e := range p.entries {
		if e.cluster != nil {
			engaged[name] = e.cluster
		}
	}
	p.mu.Unlock()

	var errs []error
	for name, cl := range engaged {
		if err := cl.GetFieldIndexer().IndexField(ctx, obj, field, extractValue); err != nil {
			errs = append(errs, fmt.Errorf("indexing field %s on cluster %s: %w", field, name, err))
		}
	}
	return errors.Join(errs...)
}

// List returns every registered cluster, connected or not, sorted by name.
func (p *Provider) List() []ClusterInfo {
	members := p.Snapshot()
	out := make([]ClusterInfo, 0, len(members))
	for _, m := range members {
		out = append(out, m.Info)
	}
	return out
}

// Snapshot returns every registered cluster, sorted by name, each with its
// engaged cluster read under the same lock as its registry view. Reading the
// two apart (List, then Get) leaves a window in which a cluster is Ready in
// one read and not engaged in the other (a connection being torn down
// disengages before its state turns Unreachable); a caller that took "not
// engaged" for "nothing there" would then forget objects in that member.
func (p *Provider) Snapshot() []Member {
	p.mu.RLock()
	out := make([]Member, 0, len(p.entries))
	for _, e := range p.entries {
		out = append(out, Member{Info: e.info.clone(), Cluster: e.cluster})
	}
	p.mu.RUnlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Info.Name, b.Info.Name) })
	return out
}

// Lookup returns the registered cluster of that name.
func (p *Provider) Lookup(name string) (ClusterInfo, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok := p.entries[name]
	if !ok {
		return ClusterInfo{}, false
	}
	return e.info.clone(), true
}

// Subscribe registers fn to be told the name of a cluster whose registration,
// labels, State, Reason or Message changed (including its removal: Lookup then
// reports it gone). fn runs on a goroutine of its own, never with a provider
// lock held; names that change again before fn got to them are delivered once.
// fn should return quickly (e.g. enqueue work) since it delays later
// notifications to the same subscriber.
func (p *Provider) Subscribe(fn func(clusterName string)) {
	s := newSubscriber(fn)
	p.mu.Lock()
	p.subscribers = append(p.subscribers, s)
	p.mu.Unlock()
	go s.run(p.done)
}

// Suspect asks for a health probe of the named cluster now, out of band,
// because a caller's request to it just failed as unreachable (a timeout, a
// refused or reset connection). Without it the registry would learn of a dead
// member only at its next periodic probe, and until then every reconcile
// would spend its cluster timeout on it. A failed probe turns the cluster
// Unreachable (and tells subscribers) within ProbeTimeout.
//
// Suspect never blocks and is cheap to call often: at most one probe per
// cluster is in flight, and requests made while one is pending or running are
// answered by it. It is a no-op for a cluster that is not registered or not
// connected (its connect loop is already retrying), and it never writes
// anything anywhere: only a change of state does, as with periodic probes.
func (p *Provider) Suspect(name string) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok := p.entries[name]
	if !ok || e.suspect == nil {
		return
	}
	select {
	case e.suspect <- struct{}{}:
	default:
	}
}

// notify tells every subscriber that name changed. Call it without p.mu held.
func (p *Provider) notify(name string) {
	p.mu.RLock()
	subs := slices.Clone(p.subscribers)
	p.mu.RUnlock()
	for _, s := range subs {
		s.notify(name)
	}
}
