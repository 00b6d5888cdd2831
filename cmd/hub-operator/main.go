// Command hub-operator runs the MyResource controller on a hub cluster: it
// discovers member clusters from kubeconfig Secrets and runs each MyResource's
// workload in the members it selects.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	mcmanager "sigs.k8s.io/multicluster-runtime/pkg/manager"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
	"example.com/hub-operator/hub"
	"example.com/hub-operator/hub/eventmirror"
	"example.com/hub-operator/member"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hub-operator:", err)
		os.Exit(1)
	}
}

// options are the command-line flags. --kubeconfig is controller-runtime's
// own flag (registered by its config package), honoured by ctrl.GetConfig.
type options struct {
	registryNamespace    string
	metricsAddr          string
	probeAddr            string
	pprofAddr            string
	leaderElect          bool
	leaderElectionNS     string
	maxConcurrent        int
	fanOut               int
	clusterTimeout       time.Duration
	memberQPS            float64
	memberBurst          int
	memberRequestTimeout time.Duration
	probeInterval        time.Duration
	probeTimeout         time.Duration
}

func parseFlags() (options, *zap.Options) {
	o := options{}
	defaultNS := os.Getenv("POD_NAMESPACE")
	if defaultNS == "" {
		defaultNS = clusterregistry.DefaultNamespace
	}
	flag.StringVar(&o.registryNamespace, "cluster-registry-namespace", defaultNS,
		"Namespace of the registry Secrets (label example.com/member-cluster=true, key kubeconfig). Default: $POD_NAMESPACE, else hub-operator-system.")
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443",
		"Address of the metrics endpoint, served over HTTPS with Kubernetes authentication and authorization. 0 disables it.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	flag.StringVar(&o.pprofAddr, "pprof-bind-address", "0",
		"Address of Go's /debug/pprof endpoints, unauthenticated: bind it to localhost or a port no Service exposes. 0 (the default) disables it.")
	flag.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader, so that only one replica reconciles at a time.")
	flag.StringVar(&o.leaderElectionNS, "leader-election-namespace", os.Getenv("POD_NAMESPACE"),
		"Namespace of the leader-election Lease. Default: $POD_NAMESPACE, else the registry namespace.")
	flag.IntVar(&o.maxConcurrent, "max-concurrent-reconciles", 8, "How many MyResources are reconciled at once.")
	flag.IntVar(&o.fanOut, "fan-out", hub.DefaultFanOut, "How many member clusters one reconcile works on at once.")
	flag.DurationVar(&o.clusterTimeout, "cluster-timeout", hub.DefaultClusterTimeout, "Bound on the work for one member cluster in one reconcile.")
	flag.Float64Var(&o.memberQPS, "member-qps", float64(clusterregistry.DefaultQPS), "Client QPS towards each member cluster.")
	flag.IntVar(&o.memberBurst, "member-burst", clusterregistry.DefaultBurst, "Client burst towards each member cluster.")
	flag.DurationVar(&o.memberRequestTimeout, "member-request-timeout", clusterregistry.DefaultTimeout, "Timeout of one request to a member cluster.")
	flag.DurationVar(&o.probeInterval, "member-probe-interval", clusterregistry.DefaultProbeInterval, "How often each member cluster's health is probed.")
	flag.DurationVar(&o.probeTimeout, "member-probe-timeout", clusterregistry.DefaultProbeTimeout,
		"How long one health probe of a member waits for GET /readyz before the member is Unreachable.")
	zo := &zap.Options{}
	zo.BindFlags(flag.CommandLine)
	flag.Parse()
	if o.leaderElectionNS == "" {
		o.leaderElectionNS = o.registryNamespace
	}
	return o, zo
}

func run() error {
	o, zo := parseFlags()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(zo)))
	log := ctrl.Log.WithName("setup")

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading hub kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := hubv1.AddToScheme(scheme); err != nil {
		return err
	}

	registryMetrics := clusterregistry.NewMetrics()
	provider := clusterregistry.New(clusterregistry.Options{
		Namespace:      o.registryNamespace,
		ForbiddenHosts: []string{cfg.Host},
		QPS:            float32(o.memberQPS),
		Burst:          o.memberBurst,
		Timeout:        o.memberRequestTimeout,
		ProbeInterval:  o.probeInterval,
		ProbeTimeout:   o.probeTimeout,
		ObserveProbe:   registryMetrics.ObserveProbe,
	})
	mgr, err := newManager(cfg, scheme, provider, o)
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	if err := setUp(ctx, mgr, provider, registryMetrics, o); err != nil {
		return err
	}
	if err := mgr.GetLocalManager().AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.GetLocalManager().AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}

	log.Info("Starting hub-operator", "registryNamespace", o.registryNamespace, "leaderElect", o.leaderElect)
	if err := mgr.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("running manager: %w", err)
	}
	return nil
}

// newManager creates the multicluster manager over the hub, with the
// registry as its provider of member clusters.
func newManager(cfg *rest.Config, scheme *runtime.Scheme, provider *clusterregistry.Provider, o options) (mcmanager.Manager, error) {
	mgr, err := mcmanager.New(cfg, provider, manager.Options{
		Scheme: scheme,
		Metrics: metricsserver.Options{
			BindAddress:    o.metricsAddr,
			SecureServing:  true,
			FilterProvider: filters.WithAuthenticationAndAuthorization,
		},
		HealthProbeBindAddress:  o.probeAddr,
		PprofBindAddress:        o.pprofAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "hub-operator.example.com",
		LeaderElectionNamespace: o.leaderElectionNS,
		// The leader steps down at once on shutdown, so a rolling update
		// hands over in seconds instead of a lease duration.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cache.Options{ByObject: hubCacheByObject(o.registryNamespace)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	return mgr, nil
}

// hubCacheByObject narrows the hub cache to what the operator reads there:
// the registry Secrets and its own ControllerRevisions.
func hubCacheByObject(registryNamespace string) map[client.Object]cache.ByObject {
	byObject := clusterregistry.HubCacheByObject(registryNamespace)
	maps.Copy(byObject, hub.RevisionCacheByObject())
	return byObject
}

// setUp wires the registry, the metrics and the controllers into mgr.
func setUp(ctx context.Context, mgr mcmanager.Manager, provider *clusterregistry.Provider, registryMetrics *clusterregistry.Metrics, o options) error {
	if err := provider.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up the cluster registry: %w", err)
	}
	// Registered on controller-runtime's registry, next to its own metrics,
	// so that the manager's authenticated endpoint serves them.
	if err := registryMetrics.Register(metrics.Registry, provider.List); err != nil {
		return err
	}
	hubMetrics := hub.NewMetrics()
	if err := hubMetrics.Register(metrics.Registry, mgr.GetLocalManager().GetCache(), provider.List); err != nil {
		return err
	}
	r := &hub.Reconciler{
		Hub:            mgr.GetLocalManager().GetClient(),
		Registry:       provider,
		Members:        newApplier(provider),
		FanOut:         o.fanOut,
		ClusterTimeout: o.clusterTimeout,
		Metrics:        hubMetrics,
	}
	if err := r.SetupWithManager(mgr, provider, o.maxConcurrent); err != nil {
		return fmt.Errorf("setting up the MyResource controller: %w", err)
	}
	if err := (&eventmirror.Mirror{}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up member event mirroring: %w", err)
	}
	return nil
}

// newApplier returns the Applier of every member, which drops what it
// remembers of a cluster (namespaces known to exist, the last apply of each
// object) once the cluster leaves the registry, so that it holds nothing for
// clusters that are gone.
func newApplier(provider *clusterregistry.Provider) *member.Applier {
	applier := &member.Applier{}
	provider.Subscribe(func(name string) {
		if _, registered := provider.Lookup(name); !registered {
			applier.Forget(name)
		}
	})
	return applier
}
