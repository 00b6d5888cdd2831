package member

import (
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	hubv1 "example.com/hub-operator/api/v1"
)

// memberDeployment is a Deployment at metadata.generation 4 rendered from
// hub generation 7, wanting 3 replicas, with the given status.
func memberDeployment(status appsv1.DeploymentStatus) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "team-a", Generation: 4,
			Annotations: map[string]string{hubv1.HubGenerationAnnotation: "7"},
		},
		Spec:   appsv1.DeploymentSpec{Replicas: ptr.To[int32](3)},
		Status: status,
	}
}

func depCond(t appsv1.DeploymentConditionType, s corev1.ConditionStatus, reason, msg string) appsv1.DeploymentCondition {
	return appsv1.DeploymentCondition{Type: t, Status: s, Reason: reason, Message: msg}
}

var (
	availableTrue  = depCond(appsv1.DeploymentAvailable, corev1.ConditionTrue, "MinimumReplicasAvailable", "Deployment has minimum availability.")
	availableFalse = depCond(appsv1.DeploymentAvailable, corev1.ConditionFalse, "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
	progressing    = depCond(appsv1.DeploymentProgressing, corev1.ConditionTrue, "ReplicaSetUpdated", `ReplicaSet "web-1" is progressing.`)
)

func TestStatus(t *testing.T) {
	tests := []struct {
		name          string
		dep           *appsv1.Deployment
		hubGeneration int64
		applied       metav1.ConditionStatus
		appliedReason string
		available     metav1.ConditionStatus
		reason        string
		message       string
	}{
		{
			name: "complete rollout is Available",
			dep: memberDeployment(appsv1.DeploymentStatus{
				ObservedGeneration: 4, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3,
				Conditions: []appsv1.DeploymentCondition{availableTrue, progressing},
			}),
			hubGeneration: 7,
			applied:       metav1.ConditionTrue, appliedReason: hubv1.ReasonApplied,
			available: metav1.ConditionTrue, reason: hubv1.ReasonDeploymentAvailable,
			message: "3/3 replicas available",
		},
		{
			name: "a generation the Deployment controller has not observed is progressing, whatever the stale status says",
			dep: memberDeployment(appsv1.DeploymentStatus{
				ObservedGeneration: 3, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3,
				Conditions: []appsv1.DeploymentCondition{availableTrue},
			}),
			hubGeneration: 7,
			applied:       metav1.ConditionTrue, appliedReason: hubv1.ReasonApplied,
			available: metav1.ConditionFalse, reason: hubv1.ReasonDeploymentProgressing,
			message: "waiting for the Deployment controller to observe generation 4",
		},
		{
			name: "a rollout that has not updated every replica is progressing even when the Deployment is Available",
			dep: memberDeployment(appsv1.DeploymentStatus{
				ObservedGeneration: 4, Replicas: 4, UpdatedReplicas: 1, ReadyReplicas: 3, AvailableReplicas: 3,
				Conditions: []appsv1.DeploymentCondition{availableTrue, progressing},
			}),
			hubGeneration: 7,
			applied:       metav1.ConditionTrue, appliedReason: hubv1.ReasonApplied,
			available: metav1.ConditionFalse, reason: hubv1.ReasonDeploymentProgressing,
			message: "rolling out: 1/3 replicas updated, 3/3 replicas available",
		},
		{
			name: "old replicas still terminating keep it progressing",
			dep: memberDeployment(appsv1.DeploymentStatus{
				ObservedGeneration: 4, Replicas: 4, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3,
				Conditions: []appsv1.DeploymentCondition{availableTrue, progressing},
			}),
			hubGeneration: 7,
			applied:       metav1.ConditionTrue, appliedReason: hubv1.ReasonApplied,
			available: metav1.ConditionFalse, reason: hubv1.ReasonDeploymentProgressing,
			message: "1 old replicas pending termination",
		},
		{
			name: "updated but not yet available replicas are progressing",
			dep: memberDeployment(appsv1.DeploymentStatus{
				ObservedGeneration: 4, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2,
				Conditions: []appsv1.DeploymentCondition{availableTrue, progressing},
			}),
			hubGeneration: 7,
			applied:       metav1.ConditionTrue, appliedReason: hubv1.ReasonApplied,
			available: metav1.ConditionFalse, reason: hubv1.ReasonDeploymentProgressing,
			message: "2/3 replicas available, waiting for 1 more; if that lasts, the Pods' warnings from this cluster are in this MyResource's events",
		},
		{
			name: "an exceeded progress deadline says so with the Deployment's message",
			dep: memberDeployment(appsv1.DeploymentStatus{
				ObservedGeneration: 4, Replicas: 3, UpdatedReplicas: 1, AvailableReplicas: 0,
				Conditions: []appsv1.DeploymentCondition{
					availableFalse,
					depCond(appsv1.DeploymentProgressing, corev1.ConditionFalse, "ProgressDeadlineExceeded", `ReplicaSet "web-2" has timed out progressing.`),
				},
			}),
			hubGeneration: 7,
			applied:       metav1.ConditionTrue, appliedReason: hubv1.ReasonApplied,
			available: metav1.ConditionFalse, reason: hubv1.ReasonProgressDeadline,
			message: `0/3 replicas available; the rollout gave up: ReplicaSet "web-2" has timed out progressing; ` +
				`the Pods' warnings from this cluster are in this MyResource's events (kubectl describe myr)`,
		},
		{
			name: "a quota that stops pod creation says which quota to raise",
			dep: memberDeployment(appsv1.DeploymentStatus{
				ObservedGeneration: 4, Replicas: 0, UpdatedReplicas: 0,
				Conditions: []appsv1.DeploymentCondition{
					availableFalse, progressing,
					depCond(appsv1.DeploymentReplicaFailure, corev1.ConditionTrue, "FailedCreate", `pods "web-x" is forbidden: exceeded quota`),
				},
			}),
			hubGeneration: 7,
			applied:       metav1.ConditionTrue, appliedReason: hubv1.ReasonApplied,
			available: metav1.ConditionFalse, reason: hubv1.ReasonDeploymentUnavailable,
			message: `0/3 replicas available; pods cannot be created: pods "web-x" is forbidden: exceeded quota; ` +
				`raise the ResourceQuota in namespace team-a of the cluster, or lower the MyResource's replicas or resource requests`,
		},
		{
			name: "a replica failure surfaces why pods cannot be created",
			dep: memberDeployment(appsv1.DeploymentStatus{
				ObservedGeneration: 4, Replicas: 0, UpdatedReplicas: 0,
				Conditions: []appsv1.DeploymentCondition{
					availableFalse, progressing,
					depCond(appsv1.DeploymentReplicaFailure, corev1.ConditionTrue, "FailedCreate", `pods "web-x" is forbidden: error looking up service account team-a/web: serviceaccount "web" not found`),
				},
			}),
			hubGeneration: 7,
			applied:       metav1.ConditionTrue, appliedReason: hubv1.ReasonApplied,
			available: metav1.ConditionFalse, reason: hubv1.ReasonDeploymentUnavailable,
			message: `0/3 replicas available; pods cannot be created: pods "web-x" is forbidden: error looking up service account team-a/web: serviceaccount "web" not found`,
		},
		{
			name: "an Available=False Deployment is unavailable with its message",
			dep: memberDeployment(appsv1.DeploymentStatus{
				ObservedGeneration: 4, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 1, AvailableReplicas: 1,
				Conditions: []appsv1.DeploymentCondition{availableFalse, progressing},
			}),
			hubGeneration: 7,
			applied:       metav1.ConditionTrue, appliedReason: hubv1.ReasonApplied,
			available: metav1.ConditionFalse, reason: hubv1.ReasonDeploymentUnavailable,
			message: "1/3 replicas available; Deployment does not have minimum availability; " +
				"the Pods' warnings from this cluster are in this MyResource's events (kubectl describe myr)",
		},
		{
			name: "an older hub generation in the member is not Applied for the current one",
			dep: memberDeployment(appsv1.DeploymentStatus{
				ObservedGeneration: 4, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3,
				Conditions: []appsv1.DeploymentCondition{availableTrue},
			}),
			hubGeneration: 8,
			applied:       metav1.ConditionFalse, appliedReason: hubv1.ReasonPending,
			available: metav1.ConditionTrue, reason: hubv1.ReasonDeploymentAvailable,
			message: "3/3 replicas available",
		},
		{
			name:          "a missing Deployment is neither Applied nor Available",
			dep:           nil,
			hubGeneration: 7,
			applied:       metav1.ConditionFalse, appliedReason: hubv1.ReasonPending,
			available: metav1.ConditionFalse, reason: hubv1.ReasonDeploymentUnavailable,
			message: "does not exist",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			st := Status(tt.dep, tt.hubGeneration)

			g.Expect(st.Conditions).To(HaveLen(2))
			applied := meta.FindStatusCondition(st.Conditions, hubv1.ClusterConditionApplied)
			g.Expect(applied).NotTo(BeNil())
			g.Expect(applied.Status).To(Equal(tt.applied))
			g.Expect(applied.Reason).To(Equal(tt.appliedReason))
			avail := meta.FindStatusCondition(st.Conditions, hubv1.ClusterConditionAvailable)
			g.Expect(avail).NotTo(BeNil())
			g.Expect(avail.Status).To(Equal(tt.available))
			g.Expect(avail.Reason).To(Equal(tt.reason))
			g.Expect(avail.Message).To(ContainSubstring(tt.message))
			for _, c := range st.Conditions {
				g.Expect(c.ObservedGeneration).To(Equal(tt.hubGeneration))
			}
			if tt.dep != nil {
				g.Expect(st.ObservedGeneration).To(Equal(int64(7)), "observedGeneration is read from the member's hub-generation annotation")
				g.Expect(st.Replicas).To(Equal(int32(3)))
				g.Expect(st.ReadyReplicas).To(Equal(tt.dep.Status.ReadyReplicas))
				g.Expect(st.AvailableReplicas).To(Equal(tt.dep.Status.AvailableReplicas))
			}
		})
	}
}

func TestStatusIsStableAtRest(t *testing.T) {
	g := NewWithT(t)
	dep := memberDeployment(appsv1.DeploymentStatus{
		ObservedGeneration: 4, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3,
		Conditions: []appsv1.DeploymentCondition{availableTrue, progressing},
	})
	// The hub merges into the previous entry with SetStatusCondition; an
	// unchanged Deployment must change nothing, or the hub writes at rest.
	prev := Status(dep, 7).Conditions
	for _, c := range Status(dep.DeepCopy(), 7).Conditions {
		g.Expect(meta.SetStatusCondition(&prev, c)).To(BeFalse())
	}
}

func TestStatusDefaultsReplicas(t *testing.T) {
	g := NewWithT(t)
	dep := memberDeployment(appsv1.DeploymentStatus{ObservedGeneration: 4})
	dep.Spec.Replicas = nil
	g.Expect(Status(dep, 7).Replicas).To(Equal(int32(1)))
}
