package hub

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	hubv1 "example.com/hub-operator/api/v1"
)

// statusSettle is how long the status of a MyResource whose generation was
// just applied to a member may wait for the members to report it Available.
// A Deployment that rolls out at once (its pods are already there, or the
// change did not touch them) turns Available within a second, and writing
// "applied, progressing" just before "ready" would cost the hub a second
// status write per MyResource for a state nobody could act on. A rollout
// that takes longer gets its progress status after statusSettle.
const statusSettle = time.Second

// settler remembers, per MyResource, since when a freshly applied
// generation has been waiting for its status. Its zero value is ready.
type settler struct {
	mu    sync.Mutex
	since map[types.NamespacedName]settling
}

type settling struct {
	uid        types.UID
	generation int64
	since      time.Time
}

// hold says how much longer the status st of mr may wait before it is
// written, or 0 to write it now. Only a progress status of a generation a
// member has just accepted waits: a Ready status, a failing cluster or a
// status that already shows this generation is written at once.
func (s *settler) hold(mr *hubv1.MyResource, st hubv1.MyResourceStatus, now time.Time) time.Duration {
	key := types.NamespacedName{Namespace: mr.Namespace, Name: mr.Name}
	if meta.IsStatusConditionTrue(st.Conditions, hubv1.ConditionReady) ||
		meta.IsStatusConditionTrue(st.Conditions, hubv1.ConditionDegraded) ||
		!newlyApplied(mr, st) {
		s.forget(key)
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.since[key]
	if !ok || e.uid != mr.UID || e.generation != mr.Generation {
		e = settling{uid: mr.UID, generation: mr.Generation, since: now}
		if s.since == nil {
			s.since = map[types.NamespacedName]settling{}
		}
		s.since[key] = e
	}
	left := statusSettle - now.Sub(e.since)
	if left <= 0 {
		delete(s.since, key)
		return 0
	}
	return left
}

// forget drops what hold remembers of a MyResource: its status was
// written, or it is being deleted or gone.
func (s *settler) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.since, key)
}

// newlyApplied says whether st has a cluster that accepted mr's generation
// (Applied=True) where the status written so far does not say so yet.
func newlyApplied(mr *hubv1.MyResource, st hubv1.MyResourceStatus) bool {
	for _, e := range st.Clusters {
		now := meta.FindStatusCondition(e.Conditions, hubv1.ClusterConditionApplied)
		if now == nil || now.Status != metav1.ConditionTrue || now.ObservedGeneration != mr.Generation {
			continue
		}
		was := appliedCondition(mr, e.Name)
		if was == nil || was.Status != metav1.ConditionTrue || was.ObservedGeneration != mr.Generation {
			return true
		}
	}
	return false
}
