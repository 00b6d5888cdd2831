package clusterregistry

import (
	"maps"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/cluster"
)

// State is where a registered cluster stands, as far as the hub can tell.
type State string

const (
	// StateConnecting means the kubeconfig is valid and the first connection is
	// being made. Reason is ReasonPending.
	StateConnecting State = "Connecting"
	// StateReady means the cluster is engaged, its cache synced and its last health
	// probe answered. Reason is ReasonAsExpected.
	StateReady State = "Ready"
	// StateUnreachable means connecting failed (and is being retried with backoff),
	// or the last health probe failed. Reason is ReasonClusterUnreachable. A
	// cluster that was engaged stays engaged while unreachable.
	StateUnreachable State = "Unreachable"
	// StateInvalid means the registry Secret's kubeconfig was rejected; nothing is
	// attempted until the Secret changes. Reason is ReasonInvalidKubeconfig.
	StateInvalid State = "Invalid"
)

// ClusterInfo is one registered cluster as the hub sees it, connected or not.
type ClusterInfo struct {
	// Name is the cluster's name: the registry Secret's name.
	Name string
	// Labels are the registry Secret's labels, used for placement.
	Labels map[string]string
	// State is where the cluster stands.
	State State
	// Reason is an api/v1 reason constant matching State (ReasonPending,
	// ReasonAsExpected, ReasonClusterUnreachable, ReasonInvalidKubeconfig).
	Reason string
	// Message says why, for humans. It never contains kubeconfig contents and
	// stays the same while the cause does, so that it can go into a status
	// without making it churn.
	Message string
}

// Member is one registered cluster as a single registry read saw it.
type Member struct {
	// Info is the cluster's registry view.
	Info ClusterInfo
	// Cluster is the engaged cluster, nil while none is: connecting, never
	// reached, invalid, or a connection being torn down. A cluster can be
	// Ready in Info and nil here for a moment; callers must not read that as
	// "holds nothing".
	Cluster cluster.Cluster
}

func (ci ClusterInfo) clone() ClusterInfo {
	ci.Labels = maps.Clone(ci.Labels)
	return ci
}

func (ci ClusterInfo) equal(o ClusterInfo) bool {
	return ci.Name == o.Name && ci.State == o.State && ci.Reason == o.Reason &&
		ci.Message == o.Message && maps.Equal(ci.Labels, o.Labels)
}

// subscriber delivers change notifications to one Subscribe callback from its
// own goroutine, coalescing names that change again before the callback got to
// them. The provider therefore never waits on a subscriber, and a subscriber
// sees every changed name at least once after its last change.
type subscriber struct {
	fn func(clusterName string)

	mu      sync.Mutex // protects pending
	pending map[string]struct{}
	wake    chan struct{} // capacity 1: "pending is not empty"
}

func newSubscriber(fn func(string)) *subscriber {
	return &subscriber{fn: fn, pending: map[string]struct{}{}, wake: make(chan struct{}, 1)}
}

func (s *subscriber) notify(name string) {
	s.mu.Lock()
	s.pending[name] = struct{}{}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-s.wake:
		}
		s.mu.Lock()
		names := s.pending
		s.pending = map[string]struct{}{}
		s.mu.Unlock()
		for name := range names {
			s.fn(name)
		}
	}
}
