package clusterregistry

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	hubv1 "example.com/hub-operator/api/v1"
)

func TestHealthAnnotations(t *testing.T) {
	now := time.Date(2026, 5, 4, 12, 30, 0, 0, time.FixedZone("CEST", 2*3600))
	const (
		earlier = "2026-05-01T08:00:00Z"
		nowText = "2026-05-04T10:30:00Z"
	)
	ready := ClusterInfo{Name: "m1", State: StateReady, Reason: hubv1.ReasonAsExpected, Message: "cluster is connected"}
	refused := ClusterInfo{Name: "m1", State: StateUnreachable, Reason: hubv1.ReasonClusterUnreachable, Message: "cluster refused the connection"}
	timedOut := refused
	timedOut.Message = "cluster did not answer within 5s"
	connecting := ClusterInfo{Name: "m1", State: StateConnecting, Reason: hubv1.ReasonPending, Message: "connecting to the cluster"}
	invalid := ClusterInfo{Name: "m1", State: StateInvalid, Reason: hubv1.ReasonInvalidKubeconfig, Message: "kubeconfig is invalid"}
	recorded := func(info ClusterInfo, at string) map[string]string {
		return map[string]string{
			"unrelated":                           "kept",
			hubv1.ClusterStateAnnotation:          string(info.State),
			hubv1.ClusterReasonAnnotation:         info.Reason,
			hubv1.ClusterMessageAnnotation:        info.Message,
			hubv1.ClusterLastTransitionAnnotation: at,
		}
	}
	want := func(info ClusterInfo, at string) map[string]string {
		m := recorded(info, at)
		delete(m, "unrelated")
		return m
	}

	tests := []struct {
		name        string
		current     map[string]string
		info        ClusterInfo
		want        map[string]string
		wantChanged bool
	}{
		{"a new Secret gets every annotation", nil, connecting, want(connecting, nowText), true},
		{"at rest nothing is written", recorded(ready, earlier), ready, want(ready, earlier), false},
		{"a state change moves the transition time", recorded(ready, earlier), refused, want(refused, nowText), true},
		{"a new message in the same state keeps the transition time", recorded(refused, earlier), timedOut, want(timedOut, earlier), true},
		{"a missing transition time is filled in", map[string]string{hubv1.ClusterStateAnnotation: "Ready"}, ready, want(ready, nowText), true},
		{"a restart's Connecting keeps the last known health", recorded(refused, earlier), connecting, nil, false},
		{"a fixed kubeconfig shows Connecting", recorded(invalid, earlier), connecting, want(connecting, nowText), true},
		{"an edited annotation is put back", map[string]string{
			hubv1.ClusterStateAnnotation: "Ready", hubv1.ClusterReasonAnnotation: "Edited",
			hubv1.ClusterMessageAnnotation: ready.Message, hubv1.ClusterLastTransitionAnnotation: earlier,
		}, ready, want(ready, earlier), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, changed := healthAnnotations(tt.current, tt.info, now)
			g.Expect(changed).To(Equal(tt.wantChanged))
			if tt.want == nil {
				g.Expect(got).To(BeNil())
				return
			}
			g.Expect(got).To(Equal(tt.want))
		})
	}
}
