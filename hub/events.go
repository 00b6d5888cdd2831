package hub

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	hubv1 "example.com/hub-operator/api/v1"
)

// recordTransitions turns per-cluster Applied transitions into events on the
// hub MyResource. Only transitions are recorded: a steady state, good or
// bad, records nothing, so events never become writes at rest. Successful
// applies of one reconcile are folded into one event.
func (r *Reconciler) recordTransitions(mr *hubv1.MyResource, next hubv1.MyResourceStatus) {
	var applied []string
	for _, e := range next.Clusters {
		now := meta.FindStatusCondition(e.Conditions, hubv1.ClusterConditionApplied)
		if now == nil || now.Reason == hubv1.ReasonCleanupPending || now.Reason == hubv1.ReasonRolloutPending {
			continue
		}
		if was := appliedCondition(mr, e.Name); was != nil && was.Status == now.Status && was.Reason == now.Reason &&
			(now.Status != metav1.ConditionTrue || was.ObservedGeneration == now.ObservedGeneration) {
			continue
		}
		if now.Status == metav1.ConditionTrue {
			applied = append(applied, e.Name)
			continue
		}
		r.Recorder.Eventf(mr, nil, corev1.EventTypeWarning, now.Reason, inCluster("Apply", e.Name), "[cluster %s] %s", e.Name, now.Message)
	}
	if len(applied) > 0 {
		r.Recorder.Eventf(mr, nil, corev1.EventTypeNormal, hubv1.ReasonApplied, fmt.Sprintf("Apply generation %d", mr.Generation),
			"applied generation %d to %s", mr.Generation, plural(applied, "cluster"))
	}
}

func appliedCondition(mr *hubv1.MyResource, cluster string) *metav1.Condition {
	if prev := previous(mr, cluster); prev != nil {
		return meta.FindStatusCondition(prev.Conditions, hubv1.ClusterConditionApplied)
	}
	return nil
}

func plural(names []string, noun string) string {
	if len(names) == 1 {
		return fmt.Sprintf("%s %s", noun, names[0])
	}
	return fmt.Sprintf("%ss %s", noun, strings.Join(names, ", "))
}

// inCluster names an event's action per cluster. The events.k8s.io recorder
// folds events with the same object, reason and action into one series and
// keeps only the first message, so without the cluster in the action an
// ApplyFailed in one cluster would hide the same reason in another.
func inCluster(action, cluster string) string {
	return action + " in cluster " + cluster
}
