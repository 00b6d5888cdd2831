package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	hubv1 "example.com/hub-operator/api/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// now is the fixed clock of every golden file.
var now = time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	NewWithT(t).Expect(string(got)).To(Equal(string(want)), "golden file %s (run with -update to rewrite it)", path)
}

func cond(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: 2}
}

func clusterStatus(name string, replicas, ready int32, applied, available metav1.Condition) hubv1.ClusterStatus {
	return hubv1.ClusterStatus{Name: name, Replicas: replicas, ReadyReplicas: ready, AvailableReplicas: ready,
		ObservedGeneration: 2, Conditions: []metav1.Condition{applied, available}}
}

func event(name, typ, reason, note string, at metav1.Time) eventsv1.Event {
	return eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", CreationTimestamp: at},
		EventTime:  metav1.NewMicroTime(at.Time),
		Type:       typ, Reason: reason, Note: note,
		Regarding: corev1.ObjectReference{Kind: "MyResource", Namespace: "shop", Name: "web"},
	}
}

func TestPrintStatus(t *testing.T) {
	meta := metav1.ObjectMeta{Namespace: "shop", Name: "web", Generation: 2}
	applied := cond(hubv1.ClusterConditionApplied, metav1.ConditionTrue, hubv1.ReasonApplied, "objects are applied")
	available := cond(hubv1.ClusterConditionAvailable, metav1.ConditionTrue, hubv1.ReasonDeploymentAvailable, "Deployment has minimum availability.")

	ready := &hubv1.MyResource{ObjectMeta: meta, Status: hubv1.MyResourceStatus{
		ObservedGeneration: 2, SelectedClusters: 2, ReadyClusters: 2,
		Conditions: []metav1.Condition{
			cond(hubv1.ConditionReady, metav1.ConditionTrue, hubv1.ReasonAllClustersReady, "2 of 2 clusters are ready"),
			cond(hubv1.ConditionDegraded, metav1.ConditionFalse, hubv1.ReasonAsExpected, ""),
		},
		Clusters: []hubv1.ClusterStatus{
			clusterStatus("eu-1", 3, 3, applied, available),
			clusterStatus("us-1", 2, 2, applied, available),
		},
	}}

	degraded := ready.DeepCopy()
	degraded.Generation = 3
	degraded.Status.ReadyClusters = 1
	degraded.Status.SelectedClusters = 4
	degraded.Status.Conditions = []metav1.Condition{
		cond(hubv1.ConditionReady, metav1.ConditionFalse, hubv1.ReasonClustersFailing, "1 of 4 clusters are ready"),
		cond(hubv1.ConditionDegraded, metav1.ConditionTrue, hubv1.ReasonClustersFailing, "failing: ap-1, us-1"),
	}
	degraded.Status.Clusters = []hubv1.ClusterStatus{
		{Name: "ap-1", Conditions: []metav1.Condition{
			cond(hubv1.ClusterConditionApplied, metav1.ConditionFalse, hubv1.ReasonConflict,
				`Deployment shop/web exists and is managed by "kubectl-client-side-apply", not hub-operator`),
			cond(hubv1.ClusterConditionAvailable, metav1.ConditionUnknown, hubv1.ReasonConflict, "not applied"),
		}},
		clusterStatus("eu-1", 3, 3, applied, available),
		{Name: "new-1"},
		clusterStatus("us-1", 2, 0, applied, cond(hubv1.ClusterConditionAvailable, metav1.ConditionFalse,
			hubv1.ReasonProgressDeadline, "ReplicaSet \"web-5d4f\" has timed out progressing.\n\tquota exceeded")),
	}
	repeated := event("web.repeat", corev1.EventTypeWarning, "FailedCreate", "[cluster us-1] ReplicaSet/web-5d4f: exceeded quota", ago(30*time.Minute))
	repeated.Series = &eventsv1.EventSeries{Count: 7, LastObservedTime: metav1.NewMicroTime(now.Add(-2 * time.Minute))}
	legacy := eventsv1.Event{
		ObjectMeta:               metav1.ObjectMeta{Name: "web.legacy", Namespace: "shop"},
		Type:                     corev1.EventTypeWarning,
		Reason:                   "BackOff",
		Note:                     "[cluster ap-1] Pod/web-1: Back-off pulling image \"nginx:nope\"\x1b[31m",
		DeprecatedFirstTimestamp: ago(time.Hour),
		DeprecatedLastTimestamp:  ago(90 * time.Second),
		DeprecatedCount:          4,
	}
	events := []eventsv1.Event{legacy, repeated}
	for i := range 11 {
		events = append(events, event(fmt.Sprintf("web.%02d", i), corev1.EventTypeNormal, hubv1.ReasonApplied,
			fmt.Sprintf("applied generation %d to cluster eu-1", i), ago(time.Duration(50-i)*time.Minute)))
	}

	tests := []struct {
		name   string
		mr     *hubv1.MyResource
		events []eventsv1.Event
	}{
		{"ready", ready, []eventsv1.Event{
			event("web.b", corev1.EventTypeNormal, hubv1.ReasonApplied, "applied generation 2 to clusters eu-1, us-1", ago(5*time.Second)),
			event("web.a", corev1.EventTypeNormal, hubv1.ReasonApplied, "applied generation 1 to clusters eu-1, us-1", ago(3*time.Hour)),
		}},
		{"degraded", degraded, events},
		{"new", &hubv1.MyResource{ObjectMeta: meta}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			NewWithT(t).Expect(printStatus(&out, tt.mr, tt.events, now)).To(Succeed())
			golden(t, "status-"+tt.name+".golden", out.Bytes())
		})
	}
}

func TestPrintClusters(t *testing.T) {
	secret := func(name string, labels, annotations map[string]string) metav1.PartialObjectMetadata {
		if labels == nil {
			labels = map[string]string{}
		}
		labels[hubv1.MemberClusterLabel] = "true"
		return metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "hub-operator-system", Labels: labels, Annotations: annotations}}
	}
	health := func(state, reason, msg string, since time.Duration) map[string]string {
		return map[string]string{
			hubv1.ClusterStateAnnotation:                       state,
			hubv1.ClusterReasonAnnotation:                      reason,
			hubv1.ClusterMessageAnnotation:                     msg,
			hubv1.ClusterLastTransitionAnnotation:              now.Add(-since).Format(time.RFC3339),
			"kubectl.kubernetes.io/last-applied-configuration": "{}",
		}
	}
	tests := []struct {
		name    string
		secrets []metav1.PartialObjectMetadata
	}{
		{"mixed", []metav1.PartialObjectMetadata{
			secret("us-1", map[string]string{"env": "prod", "region": "us"},
				health("Unreachable", hubv1.ReasonClusterUnreachable, "cluster did not answer within 5s", 3*time.Minute)),
			secret("eu-1", map[string]string{"region": "eu", "env": "prod"},
				health("Ready", hubv1.ReasonAsExpected, "cluster is connected", 49*time.Hour)),
			secret("broken", nil,
				health("Invalid", hubv1.ReasonInvalidKubeconfig, "kubeconfig uses an exec credential plugin, which is not allowed", 20*time.Second)),
			secret("fresh", map[string]string{"tier": "gold"}, nil),
			secret("edited", nil, map[string]string{
				hubv1.ClusterStateAnnotation:          "Ready",
				hubv1.ClusterLastTransitionAnnotation: "yesterday",
				hubv1.ClusterMessageAnnotation:        "line one\nline\ttwo",
			}),
		}},
		{"none", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			NewWithT(t).Expect(printClusters(&out, tt.secrets, now)).To(Succeed())
			golden(t, "clusters-"+tt.name+".golden", out.Bytes())
		})
	}
}
