package hub

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	hubv1 "example.com/hub-operator/api/v1"
)

// clusterEntry builds a status.clusters entry, keeping the previous entry's
// condition transition times (and replica counts, when it is not observed
// now) so that an unchanged state produces an identical entry.
func clusterEntry(prev *hubv1.ClusterStatus, observed hubv1.ClusterStatus) hubv1.ClusterStatus {
	out := observed
	out.Conditions = nil
	if prev != nil {
		out.Conditions = slices.Clone(prev.Conditions)
		if observed.Revision != prev.Revision {
			// Applied's transition time is when the revision there was
			// applied: the rollout's deadline and minReadySeconds count
			// from it, also when the cluster was Applied before.
			meta.RemoveStatusCondition(&out.Conditions, hubv1.ClusterConditionApplied)
		}
	}
	for _, c := range observed.Conditions {
		meta.SetStatusCondition(&out.Conditions, c)
	}
	slices.SortFunc(out.Conditions, func(a, b metav1.Condition) int { return strings.Compare(a.Type, b.Type) })
	return out
}

// unobserved is the entry of a cluster the hub cannot look into now
// (unreachable, invalid, not registered, awaiting cleanup): its last known
// replica counts stay, its conditions say why.
func unobserved(prev *hubv1.ClusterStatus, name, reason, message string, generation int64) hubv1.ClusterStatus {
	st := hubv1.ClusterStatus{Name: name}
	if prev != nil {
		st.Replicas, st.ReadyReplicas, st.AvailableReplicas = prev.Replicas, prev.ReadyReplicas, prev.AvailableReplicas
		st.ObservedGeneration, st.Revision = prev.ObservedGeneration, prev.Revision
	}
	st.Conditions = []metav1.Condition{
		{Type: hubv1.ClusterConditionApplied, Status: metav1.ConditionFalse, Reason: reason, Message: message, ObservedGeneration: generation},
		{Type: hubv1.ClusterConditionAvailable, Status: metav1.ConditionUnknown, Reason: reason, Message: message, ObservedGeneration: generation},
	}
	return clusterEntry(prev, st)
}

// clusterReady says whether a cluster runs the current generation and
// revision (when revision is not 0), Available.
func clusterReady(st hubv1.ClusterStatus, generation, revision int64) bool {
	return st.ObservedGeneration == generation && (revision == 0 || st.Revision == revision) &&
		meta.IsStatusConditionTrue(st.Conditions, hubv1.ClusterConditionApplied) &&
		meta.IsStatusConditionTrue(st.Conditions, hubv1.ClusterConditionAvailable)
}

// clusterFailing says whether a cluster needs a person: not applied, or a
// rollout that gave up. A rollout in progress, or a cluster still connecting,
// catching up with a new generation (Pending) or waiting for its stage
// (RolloutPending), is not failing.
func clusterFailing(st hubv1.ClusterStatus) (bool, string, string) {
	if c := meta.FindStatusCondition(st.Conditions, hubv1.ClusterConditionApplied); c != nil &&
		c.Status == metav1.ConditionFalse && c.Reason != hubv1.ReasonPending && c.Reason != hubv1.ReasonRolloutPending {
		return true, c.Reason, c.Message
	}
	if c := meta.FindStatusCondition(st.Conditions, hubv1.ClusterConditionAvailable); c != nil &&
		c.Status == metav1.ConditionFalse && c.Reason == hubv1.ReasonProgressDeadline {
		return true, c.Reason, c.Message
	}
	return false, "", ""
}

// summary is the aggregated view of every cluster entry.
type summary struct {
	selected, ready int32
	failing         []string // "name: message", sorted by name
	failingReasons  map[string]bool
	// stalled are the failing clusters that no retry fixes, as failing.
	stalled        []string
	stalledReasons map[string]bool
	progressing    []string
}

// needsPerson are the cluster reasons that only a person fixes (a foreign
// object in the way, a rejected kubeconfig): kstatus readers must see them
// as Failed at once. An unreachable cluster or a refused apply may recover
// by itself and is not among them.
var needsPerson = map[string]bool{hubv1.ReasonConflict: true, hubv1.ReasonInvalidKubeconfig: true}

func summarize(entries []hubv1.ClusterStatus, p placement, generation, revision int64) summary {
	s := summary{selected: int32(len(p.selected)), failingReasons: map[string]bool{}, stalledReasons: map[string]bool{}}
	for _, e := range entries {
		if failing, reason, msg := clusterFailing(e); failing {
			s.failing = append(s.failing, e.Name+": "+msg)
			s.failingReasons[reason] = true
			if needsPerson[reason] {
				s.stalled = append(s.stalled, e.Name+": "+msg)
				s.stalledReasons[reason] = true
			}
			continue
		}
		if !p.isSelected(e.Name) {
			continue
		}
		if clusterReady(e, generation, revision) {
			s.ready++
		} else {
			s.progressing = append(s.progressing, e.Name)
		}
	}
	return s
}

// verdict is what a reconcile concluded beyond the per-cluster entries.
type verdict struct {
	// readyReason, when set, makes Ready False with that reason whatever the
	// clusters say (ReasonSuspended, ReasonDeleting).
	readyReason string
	// invalid is a spec error only the user can fix: Ready False and
	// Degraded True, both with ReasonInvalidSpec and its message.
	invalid error
	// rollout is the new status.rollout; nil keeps the current one (a
	// deletion). Ready needs every cluster at its revision, and a rollout
	// stopped by a failure makes Ready False, Degraded and Stalled True,
	// with reason RolloutFailed and its message.
	rollout *hubv1.RolloutStatus
}

// aggregate computes the MyResource status from the per-cluster entries.
// Conditions keep their transition times when unchanged, so a converged
// MyResource aggregates to exactly its current status.
func aggregate(mr *hubv1.MyResource, entries []hubv1.ClusterStatus, p placement, v verdict) hubv1.MyResourceStatus {
	gen := mr.Generation
	slices.SortFunc(entries, func(a, b hubv1.ClusterStatus) int { return strings.Compare(a.Name, b.Name) })
	ro, revision := mr.Status.Rollout, int64(0)
	if v.rollout != nil {
		ro, revision = v.rollout.DeepCopy(), v.rollout.Revision
	}
	s := summarize(entries, p, gen, revision)
	st := hubv1.MyResourceStatus{
		ObservedGeneration: gen,
		Conditions:         slices.Clone(mr.Status.Conditions),
		SelectedClusters:   s.selected,
		ReadyClusters:      s.ready,
		ReadySummary:       fmt.Sprintf("%d/%d", s.ready, s.selected),
		Rollout:            ro,
		Clusters:           entries,
	}
	ready, degraded := readyCondition(s, gen, v.readyReason), degradedCondition(s, gen)
	failure := v.invalid
	switch {
	case v.invalid != nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, hubv1.ReasonInvalidSpec, v.invalid.Error()
		degraded.Status, degraded.Reason, degraded.Message = metav1.ConditionTrue, hubv1.ReasonInvalidSpec, v.invalid.Error()
	case rolloutFailed(v.rollout):
		failure = rolloutError{v.rollout}
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, hubv1.ReasonRolloutFailed, v.rollout.Message
		degraded.Status, degraded.Reason, degraded.Message = metav1.ConditionTrue, hubv1.ReasonRolloutFailed, v.rollout.Message
	}
	meta.SetStatusCondition(&st.Conditions, ready)
	meta.SetStatusCondition(&st.Conditions, degraded)
	meta.SetStatusCondition(&st.Conditions, progressingCondition(s, gen))
	stalled := stalledCondition(s, gen, failure)
	meta.SetStatusCondition(&st.Conditions, stalled)
	meta.SetStatusCondition(&st.Conditions, reconcilingCondition(s, gen, v, stalled.Status == metav1.ConditionTrue))
	return st
}

// stalledCondition is kstatus's Stalled: True when the spec is invalid, the
// rollout stopped on a failure, or a cluster needs a person, naming them.
func stalledCondition(s summary, gen int64, failure error) metav1.Condition {
	c := metav1.Condition{Type: hubv1.ConditionStalled, ObservedGeneration: gen,
		Status: metav1.ConditionFalse, Reason: hubv1.ReasonAsExpected, Message: "nothing needs a person"}
	var ro rolloutError
	switch {
	case errors.As(failure, &ro):
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, hubv1.ReasonRolloutFailed, ro.Message
	case failure != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, hubv1.ReasonInvalidSpec, failure.Error()
	case len(s.stalled) > 0:
		c.Status, c.Reason = metav1.ConditionTrue, onlyReason(s.stalledReasons, hubv1.ReasonClustersFailing)
		c.Message = truncate("cannot progress without a person: "+strings.Join(s.stalled, "; "), 1024)
	}
	return c
}

// reconcilingCondition is kstatus's Reconciling: True while a selected
// cluster still converges (being applied, its Deployment not Available yet)
// and the MyResource is neither stalled nor suspended.
func reconcilingCondition(s summary, gen int64, v verdict, stalled bool) metav1.Condition {
	c := metav1.Condition{Type: hubv1.ConditionReconciling, ObservedGeneration: gen,
		Status: metav1.ConditionFalse, Reason: hubv1.ReasonAsExpected, Message: "converged"}
	switch {
	case stalled:
		c.Message = "stalled: see the Stalled condition"
	case v.readyReason == hubv1.ReasonSuspended:
		c.Reason, c.Message = hubv1.ReasonSuspended, "suspended: nothing is applied"
	case len(s.progressing) > 0:
		c.Status, c.Reason = metav1.ConditionTrue, hubv1.ReasonDeploymentProgressing
		c.Message = "converging in " + truncate(strings.Join(s.progressing, ", "), 1000)
	}
	return c
}

// onlyReason is the one reason in reasons, or fallback when there are several.
func onlyReason(reasons map[string]bool, fallback string) string {
	if len(reasons) != 1 {
		return fallback
	}
	for r := range reasons {
		return r
	}
	return fallback
}

func readyCondition(s summary, gen int64, readyReason string) metav1.Condition {
	ready := metav1.Condition{Type: hubv1.ConditionReady, ObservedGeneration: gen}
	switch {
	case readyReason != "":
		ready.Status, ready.Reason = metav1.ConditionFalse, readyReason
		ready.Message = readyMessage(readyReason, s)
	case s.selected == 0:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, hubv1.ReasonNoClustersSelected, "the placement selects no registered cluster"
	case s.ready == s.selected:
		ready.Status, ready.Reason = metav1.ConditionTrue, hubv1.ReasonAllClustersReady
		ready.Message = fmt.Sprintf("all %d selected clusters run generation %d, available", s.selected, gen)
	default:
		ready.Status, ready.Reason = metav1.ConditionFalse, hubv1.ReasonClustersNotReady
		ready.Message = fmt.Sprintf("%d/%d selected clusters ready", s.ready, s.selected)
	}
	return ready
}

func degradedCondition(s summary, gen int64) metav1.Condition {
	degraded := metav1.Condition{Type: hubv1.ConditionDegraded, ObservedGeneration: gen,
		Status: metav1.ConditionFalse, Reason: hubv1.ReasonAsExpected, Message: "no cluster is failing"}
	if len(s.failing) > 0 {
		degraded.Status, degraded.Reason = metav1.ConditionTrue, onlyReason(s.failingReasons, hubv1.ReasonClustersFailing)
		degraded.Message = truncate(strings.Join(s.failing, "; "), 1024)
	}
	return degraded
}

func progressingCondition(s summary, gen int64) metav1.Condition {
	progressing := metav1.Condition{Type: hubv1.ConditionProgressing, ObservedGeneration: gen,
		Status: metav1.ConditionFalse, Reason: hubv1.ReasonAsExpected, Message: "no rollout in progress"}
	if len(s.progressing) > 0 {
		progressing.Status, progressing.Reason = metav1.ConditionTrue, hubv1.ReasonDeploymentProgressing
		progressing.Message = "rolling out in " + truncate(strings.Join(s.progressing, ", "), 1000)
	}
	return progressing
}

func readyMessage(reason string, s summary) string {
	switch reason {
	case hubv1.ReasonSuspended:
		return fmt.Sprintf("suspended: nothing is applied to or deleted from members; %d/%d selected clusters ready", s.ready, s.selected)
	case hubv1.ReasonDeleting:
		return "deleting: cleaning up member clusters"
	}
	return reason
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// previous finds a cluster's entry in the current status.
func previous(mr *hubv1.MyResource, name string) *hubv1.ClusterStatus {
	for i := range mr.Status.Clusters {
		if mr.Status.Clusters[i].Name == name {
			return &mr.Status.Clusters[i]
		}
	}
	return nil
}

// rolloutError is a rollout stopped by a failure, as the reason things stall.
type rolloutError struct{ *hubv1.RolloutStatus }

func (e rolloutError) Error() string { return e.Message }
