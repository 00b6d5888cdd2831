package member

import (
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	hubv1 "example.com/hub-operator/api/v1"
)

// Deployment condition reasons set by the Deployment controller
// (k8s.io/kubernetes/pkg/controller/deployment/util), which this package reads.
const (
	progressDeadlineExceededReason = "ProgressDeadlineExceeded"
)

// podWarningsHint tells a person where the cause of unavailable Pods is
// found without opening the member: their Warning events are mirrored.
const podWarningsHint = "the Pods' warnings from this cluster are in this MyResource's events (kubectl describe myr)"

// Status reads the compact state of a member Deployment for a hub
// MyResource at hubGeneration. It is pure. The returned entry has no Name
// (the caller knows the cluster) and conditions without LastTransitionTime:
// merge them into the previous entry with meta.SetStatusCondition, which
// keeps the old time when nothing changed so a converged status is not
// rewritten.
//
// Applied is True when the Deployment carries the hub generation
// hubGeneration. Available is True only when the Deployment controller has
// observed the Deployment's current generation and the rollout is complete:
// every desired replica updated and available, no old replica left, and the
// Deployment's own Available condition True. A nil dep means the Deployment
// does not exist.
func Status(dep *appsv1.Deployment, hubGeneration int64) hubv1.ClusterStatus {
	if dep == nil {
		return hubv1.ClusterStatus{Conditions: []metav1.Condition{
			condition(hubv1.ClusterConditionApplied, metav1.ConditionFalse, hubv1.ReasonPending, hubGeneration,
				"the Deployment does not exist in the cluster yet"),
			condition(hubv1.ClusterConditionAvailable, metav1.ConditionFalse, hubv1.ReasonDeploymentUnavailable, hubGeneration,
				"the Deployment does not exist in the cluster yet"),
		}}
	}

	applied, _ := strconv.ParseInt(dep.Annotations[hubv1.HubGenerationAnnotation], 10, 64)
	revision, _ := strconv.ParseInt(dep.Annotations[hubv1.RevisionAnnotation], 10, 64)
	desired := ptr.Deref(dep.Spec.Replicas, 1)
	st := hubv1.ClusterStatus{
		Replicas:           desired,
		ReadyReplicas:      dep.Status.ReadyReplicas,
		AvailableReplicas:  dep.Status.AvailableReplicas,
		ObservedGeneration: applied,
		Revision:           revision,
	}

	appliedCond := condition(hubv1.ClusterConditionApplied, metav1.ConditionTrue, hubv1.ReasonApplied, hubGeneration,
		fmt.Sprintf("generation %d applied", applied))
	if applied != hubGeneration {
		appliedCond = condition(hubv1.ClusterConditionApplied, metav1.ConditionFalse, hubv1.ReasonPending, hubGeneration,
			fmt.Sprintf("the cluster has generation %d applied; generation %d is not applied yet", applied, hubGeneration))
	}
	st.Conditions = []metav1.Condition{appliedCond, availableCondition(dep, desired, hubGeneration)}
	return st
}

func availableCondition(dep *appsv1.Deployment, desired int32, hubGeneration int64) metav1.Condition {
	s := &dep.Status
	ratio := fmt.Sprintf("%d/%d replicas available", s.AvailableReplicas, desired)
	notAvailable := func(reason, msg string) metav1.Condition {
		return condition(hubv1.ClusterConditionAvailable, metav1.ConditionFalse, reason, hubGeneration, msg)
	}

	// Until the Deployment controller has seen the current spec, every other
	// status field describes an older one.
	if s.ObservedGeneration < dep.Generation {
		return notAvailable(hubv1.ReasonDeploymentProgressing, fmt.Sprintf(
			"waiting for the Deployment controller to observe generation %d (it has seen %d); if this persists, check that kube-controller-manager runs in the cluster",
			dep.Generation, s.ObservedGeneration))
	}
	if c := deploymentCondition(dep, appsv1.DeploymentProgressing); c != nil && c.Status == corev1.ConditionFalse && c.Reason == progressDeadlineExceededReason {
		return notAvailable(hubv1.ReasonProgressDeadline, fmt.Sprintf(
			"%s; the rollout gave up: %s; %s", ratio, sentence(c.Message), podWarningsHint))
	}
	if c := deploymentCondition(dep, appsv1.DeploymentReplicaFailure); c != nil && c.Status == corev1.ConditionTrue {
		msg := fmt.Sprintf("%s; pods cannot be created: %s", ratio, sentence(c.Message))
		if strings.Contains(c.Message, "exceeded quota") {
			msg += fmt.Sprintf("; raise the ResourceQuota in namespace %s of the cluster, or lower the MyResource's replicas or resource requests", dep.Namespace)
		}
		return notAvailable(hubv1.ReasonDeploymentUnavailable, msg)
	}
	switch {
	case s.UpdatedReplicas < desired:
		return notAvailable(hubv1.ReasonDeploymentProgressing, fmt.Sprintf(
			"rolling out: %d/%d replicas updated, %s", s.UpdatedReplicas, desired, ratio))
	case s.Replicas > s.UpdatedReplicas:
		return notAvailable(hubv1.ReasonDeploymentProgressing, fmt.Sprintf(
			"rolling out: %d old replicas pending termination, %s", s.Replicas-s.UpdatedReplicas, ratio))
	}
	avail := deploymentCondition(dep, appsv1.DeploymentAvailable)
	if avail != nil && avail.Status == corev1.ConditionFalse {
		return notAvailable(hubv1.ReasonDeploymentUnavailable, fmt.Sprintf("%s; %s; %s", ratio, sentence(avail.Message), podWarningsHint))
	}
	if s.AvailableReplicas < desired {
		return notAvailable(hubv1.ReasonDeploymentProgressing, fmt.Sprintf(
			"%s, waiting for %d more; if that lasts, %s", ratio, desired-s.AvailableReplicas, podWarningsHint))
	}
	if avail == nil || avail.Status != corev1.ConditionTrue {
		return notAvailable(hubv1.ReasonDeploymentProgressing, ratio)
	}
	return condition(hubv1.ClusterConditionAvailable, metav1.ConditionTrue, hubv1.ReasonDeploymentAvailable, hubGeneration, ratio)
}

// sentence is a member's message without its final period, for joining
// into one line with "; ".
func sentence(msg string) string {
	return strings.TrimSuffix(strings.TrimSpace(msg), ".")
}

func deploymentCondition(dep *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range dep.Status.Conditions {
		if dep.Status.Conditions[i].Type == t {
			return &dep.Status.Conditions[i]
		}
	}
	return nil
}

func condition(typ string, status metav1.ConditionStatus, reason string, gen int64, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, ObservedGeneration: gen, Message: msg}
}
