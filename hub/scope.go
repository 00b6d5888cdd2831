package hub

import (
	"sync"

	"k8s.io/client-go/tools/events"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
	"example.com/hub-operator/hub/rollout"
)

// scope carries one reconcile of one MyResource: what Reconcile read before
// any phase ran, and what the phases decided. Phases only change the scope;
// Reconcile's deferred persist turns it into the one status write, the
// finalizer removal and the events.
type scope struct {
	// mr is the MyResource as read at the start. Phases never change it:
	// it is the "before" of the status patch and of every transition event.
	mr *hubv1.MyResource
	// clusters is one snapshot of the registry, taken at the start: every
	// registered cluster with its engaged cluster, read together.
	clusters map[string]clusterregistry.Member

	// Set by the phase that looked at the members; statusComputed says it did.
	// Until then there is no status to write (the finalizer could not be
	// added, the object is already released).
	statusComputed bool
	// placement is what the phase matched: the MyResource's placement in
	// reconcileNormal, every registered cluster in reconcileDelete.
	placement placement
	// entries are the per-cluster status entries.
	entries []hubv1.ClusterStatus
	// verdict is what the phase concluded beyond the entries.
	verdict verdict
	// history is the MyResource's revisions, the spec's the newest.
	history *history
	// views are the MyResource as of each revision a cluster is given,
	// built before the clusters are worked on (then only read).
	views map[int64]*hubv1.MyResource
	// rollout is the planner's last decision (reconcileNormal).
	rollout rollout.Plan
	// mayHold lets the settler hold back a progress status that is about to
	// turn Ready (reconcileNormal with nothing to retry or recheck).
	mayHold bool

	// release asks persist to remove the finalizer (set by reconcileDelete).
	release bool

	// mu protects events: clusters are worked on concurrently.
	mu sync.Mutex
	// events are recorded once the write they report on has succeeded, so a
	// failed write and its retry never record the same event twice.
	events []pendingEvent
}

// pendingEvent is an event on the MyResource, recorded by persist.
type pendingEvent struct {
	eventType, reason, action, note string
}

func newScope(mr *hubv1.MyResource, snapshot []clusterregistry.Member) *scope {
	s := &scope{mr: mr, clusters: make(map[string]clusterregistry.Member, len(snapshot))}
	for _, m := range snapshot {
		s.clusters[m.Info.Name] = m
	}
	return s
}

// infos lists the registry views of the snapshot, for placement.
func (s *scope) infos() []clusterregistry.ClusterInfo {
	out := make([]clusterregistry.ClusterInfo, 0, len(s.clusters))
	for _, m := range s.clusters {
		out = append(out, m.Info)
	}
	return out
}

// event queues an event for persist to record.
func (s *scope) event(eventType, reason, action, note string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, pendingEvent{eventType: eventType, reason: reason, action: action, note: note})
}

// recordEvents records the queued events on the MyResource.
func (s *scope) recordEvents(rec events.EventRecorder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		rec.Eventf(s.mr, nil, e.eventType, e.reason, e.action, "%s", e.note)
	}
	s.events = nil
}
