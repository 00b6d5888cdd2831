package hub

import (
	"context"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
	"example.com/hub-operator/hub/rollout"
)

// maxPlanRounds bounds how often one reconcile re-plans after applying: an
// apply's outcome (a Conflict at the new revision, a cluster found
// unreachable) can change the plan, and acting on it in the same reconcile
// is what keeps a rollout step within a moment of what allows it.
const maxPlanRounds = 3

// rollOut applies to every selected cluster the revision the planner
// assigns it, re-planning with what the applies found until the plan no
// longer changes.
func (r *Reconciler) rollOut(ctx context.Context, s *scope) ([]hubv1.ClusterStatus, time.Duration, error) {
	entries := map[string]hubv1.ClusterStatus{}
	for _, e := range s.mr.Status.Clusters {
		entries[e.Name] = e
	}
	plan, err := r.decide(s, entries, nil, s.previousRollout())
	if err != nil {
		return nil, 0, invalidRollout{err}
	}
	applied := map[string]int64{}
	results := map[string]clusterResult{}
	for range maxPlanRounds {
		todo := changed(s.placement.selected, plan, applied)
		if len(todo) == 0 {
			break
		}
		s.prepareViews(plan)
		round := forEachCluster(ctx, todo, r.fanOut(), r.clusterTimeout(), func(ctx context.Context, name string) clusterResult {
			return r.applyCluster(ctx, s, name, plan.Clusters[name])
		})
		for name, res := range round {
			results[name], entries[name], applied[name] = res, res.status, plan.Clusters[name].Revision
		}
		// The last round's decision is the one the next round starts from:
		// a rollback it decided stays decided once the clusters run the
		// stable revision again.
		if plan, err = r.decide(s, entries, applied, plan.Status); err != nil {
			return nil, 0, invalidRollout{err}
		}
	}
	s.rollout = plan
	out, recheck, retry := collect(results)
	s.history.canonicalRevisions(out)
	if len(changed(s.placement.selected, plan, applied)) > 0 {
		recheck = sooner(recheck, time.Second) // rounds ran out: go on at once
	}
	return out, sooner(recheck, plan.RequeueAfter), retry
}

// changed are the clusters whose assigned revision this reconcile has not
// applied yet. A cluster worked on already that is now given nothing (the
// revision it failed is halted) keeps what that work found.
func changed(selected []string, plan rollout.Plan, applied map[string]int64) []string {
	var out []string
	for _, name := range selected {
		rev, ok := applied[name]
		if want := plan.Clusters[name].Revision; !ok || (rev != want && want != 0) {
			out = append(out, name)
		}
	}
	return out
}

// previousRollout is status.rollout as written, its stable revision by its
// number now.
func (s *scope) previousRollout() hubv1.RolloutStatus {
	var prev hubv1.RolloutStatus
	if s.mr.Status.Rollout != nil {
		prev = *s.mr.Status.Rollout
		prev.StableRevision = s.history.canonical(prev.StableRevision)
	}
	return prev
}

// decide asks the planner, from the clusters' entries and the rollout
// status the decision follows. attempted is what this reconcile applied to
// each cluster, so that a failed apply is a failure of that revision;
// before any apply, a first plan without apply failures says what would be
// attempted.
func (r *Reconciler) decide(s *scope, entries map[string]hubv1.ClusterStatus, attempted map[string]int64, prev hubv1.RolloutStatus) (rollout.Plan, error) {
	in := rollout.Input{
		Now:       r.clock(),
		Revision:  s.history.current.number,
		Spec:      s.mr.Spec.Rollout,
		Previous:  prev,
		Approval:  s.mr.Annotations[hubv1.RolloutApprovedAnnotation],
		Suspended: s.mr.Spec.Suspend,
	}
	if attempted == nil {
		plain := in
		plain.Clusters = r.planClusters(s, entries, nil)
		first, err := rollout.Decide(plain)
		if err != nil {
			return first, err
		}
		attempted = map[string]int64{}
		for name, cp := range first.Clusters {
			attempted[name] = cp.Revision
		}
	}
	in.Clusters = r.planClusters(s, entries, attempted)
	return rollout.Decide(in)
}

// planClusters is the planner's view of each selected cluster. Times come
// from the conditions of the entries, so a restart or a new leader resumes
// a rollout with the same clocks: Applied turned True when the revision was
// applied there, Available when its Deployment became Available.
func (r *Reconciler) planClusters(s *scope, entries map[string]hubv1.ClusterStatus, attempted map[string]int64) []rollout.Cluster {
	out := make([]rollout.Cluster, 0, len(s.placement.selected))
	for _, name := range s.placement.selected {
		m := s.clusters[name]
		c := rollout.Cluster{Name: name, Labels: m.Info.Labels, Reachable: reachable(m)}
		e, ok := entries[name]
		if !ok {
			out = append(out, c)
			continue
		}
		c.Revision = s.history.revisionOf(e)
		applied := meta.FindStatusCondition(e.Conditions, hubv1.ClusterConditionApplied)
		if applied != nil && applied.Status == metav1.ConditionTrue {
			c.AppliedAt = applied.LastTransitionTime.Time
		}
		if avail := meta.FindStatusCondition(e.Conditions, hubv1.ClusterConditionAvailable); avail != nil {
			switch {
			case avail.Status == metav1.ConditionTrue:
				c.AvailableSince = laterOf(avail.LastTransitionTime.Time, c.AppliedAt)
			case avail.Reason == hubv1.ReasonProgressDeadline:
				c.Failure, c.FailedRevision, c.Message = avail.Reason, c.Revision, avail.Message
			}
		}
		if failedBefore(&e) {
			c.Failure, c.FailedRevision, c.Message = applied.Reason, attempted[name], applied.Message
		}
		out = append(out, c)
	}
	return out
}

// revisionOf is the revision a cluster's entry says it runs, by its number
// now: a renumbered revision by its new number, and objects applied by a
// release without revisions (applied, ObservedGeneration set, but no
// revision) as revision 1, the spec they found at the upgrade, so that an
// upgrade rolls nothing out again.
func (h *history) revisionOf(e hubv1.ClusterStatus) int64 {
	if e.Revision == 0 && e.ObservedGeneration > 0 {
		return h.canonical(1)
	}
	return h.canonical(e.Revision)
}

// canonicalRevisions has every entry name its revision by its number now.
func (h *history) canonicalRevisions(entries []hubv1.ClusterStatus) {
	for i := range entries {
		if n := h.revisionOf(entries[i]); n != 0 {
			entries[i].Revision = n
		}
	}
}

// reachable says whether a cluster counts in its stage. One still
// Connecting does: every operator start and leader change begins each
// cluster there, and taking it for unreachable would let the new leader's
// first decisions pass its stage, or call the rollout complete, on what it
// has not seen yet. Its last status entry stands until it connects.
func reachable(m clusterregistry.Member) bool {
	return m.Info.State == clusterregistry.StateConnecting || (m.Info.State == clusterregistry.StateReady && m.Cluster != nil)
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// prepareViews builds, once per reconcile and revision, the MyResource as
// of each revision the plan assigns: what package member renders.
func (s *scope) prepareViews(plan rollout.Plan) {
	if s.views == nil {
		s.views = map[int64]*hubv1.MyResource{}
	}
	for _, cp := range plan.Clusters {
		if _, ok := s.views[cp.Revision]; ok || cp.Revision == 0 {
			continue
		}
		rev := s.history.byNumber[cp.Revision]
		if rev == nil {
			continue // not a revision we know: applyCluster reports it
		}
		v := s.mr.DeepCopy()
		v.Spec.Deployment, v.Spec.Service, v.Spec.Overrides = rev.spec.Deployment, rev.spec.Service, rev.spec.Overrides
		if v.Annotations == nil {
			v.Annotations = map[string]string{}
		}
		v.Annotations[hubv1.RevisionAnnotation] = strconv.FormatInt(rev.number, 10)
		s.views[cp.Revision] = v
	}
}

// rolloutEvents queues the events of the rollout's transitions. Without
// spec.rollout there is no rollout to tell about: a revision simply goes
// everywhere, as the Applied events say.
func (s *scope) rolloutEvents(next hubv1.RolloutStatus) {
	if s.mr.Spec.Rollout == nil {
		return
	}
	var prev hubv1.RolloutStatus
	if s.mr.Status.Rollout != nil {
		prev = *s.mr.Status.Rollout
	}
	for _, e := range rollout.Transitions(prev, next) {
		s.event(e.Type, e.Reason, "Rollout revision "+strconv.FormatInt(next.Revision, 10), e.Message)
	}
}

// rolloutFailed says whether the rollout stopped on a failure.
func rolloutFailed(st *hubv1.RolloutStatus) bool {
	return st != nil && (st.Phase == hubv1.RolloutHalted || st.Phase == hubv1.RolloutRolledBack)
}

// updateCounts are the rollout update counters' increments from prev to
// the plan: clusters newly updated, and on the transition to a stop, the
// clusters that failed and those given the stable revision again.
func updateCounts(prev *hubv1.RolloutStatus, plan rollout.Plan) map[string]int {
	next := plan.Status
	var was hubv1.RolloutStatus
	if prev != nil && prev.Revision == next.Revision {
		was = *prev
	}
	out := map[string]int{resultSucceeded: int(next.UpdatedClusters - was.UpdatedClusters)}
	if rolloutFailed(&next) && was.Phase != next.Phase {
		for _, cp := range plan.Clusters {
			switch cp.State {
			case rollout.Failed:
				out[resultFailed]++
			case rollout.RolledBack:
				out[resultRolledBack]++
			}
		}
	}
	return out
}

// invalidRollout is a spec.rollout the planner cannot read.
type invalidRollout struct{ error }

// failedBefore says whether a cluster's last apply failed in a way that
// fails a rollout (Conflict, ApplyFailed).
func failedBefore(prev *hubv1.ClusterStatus) bool {
	if prev == nil {
		return false
	}
	c := meta.FindStatusCondition(prev.Conditions, hubv1.ClusterConditionApplied)
	return c != nil && c.Status == metav1.ConditionFalse && (c.Reason == hubv1.ReasonConflict || c.Reason == hubv1.ReasonApplyFailed)
}

// pendingMessage says why a cluster has nothing applied yet.
func pendingMessage(cp rollout.ClusterPlan, current int64) string {
	return "stage " + cp.Stage + " has not reached this cluster: revision " + strconv.FormatInt(current, 10) +
		" waits, and no earlier revision has reached every cluster yet"
}

// waiting marks a cluster that runs an older revision while its stage waits:
// it is not Applied at the current revision, and that is no failure.
func waiting(st *hubv1.ClusterStatus, cp rollout.ClusterPlan, current, generation int64) {
	msg := "stage " + cp.Stage + " waits: revision " + strconv.FormatInt(current, 10) +
		" is not applied yet; the cluster runs revision " + strconv.FormatInt(cp.Revision, 10)
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: hubv1.ClusterConditionApplied,
		Status: metav1.ConditionFalse, Reason: hubv1.ReasonRolloutPending, Message: msg, ObservedGeneration: generation})
}
