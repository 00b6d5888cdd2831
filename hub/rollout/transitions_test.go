package rollout

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	hubv1 "example.com/hub-operator/api/v1"
)

func TestTransitions(t *testing.T) {
	at := func(rev int64, phase hubv1.RolloutPhase, stage, message string) hubv1.RolloutStatus {
		return status(rev, 2, phase, stage, 0, message)
	}
	started := func(rev, stage string) []Event {
		return []Event{{Type: corev1.EventTypeNormal, Reason: hubv1.ReasonRolloutStageStarted,
			Message: "revision " + rev + ": stage " + stage + " started"}}
	}
	approve := "stage prod waits for approval: annotate the MyResource example.com/rollout-approved=3/prod; stage prod: 0/2 clusters updated, 0 updating"
	waitsForProd := []Event{{Type: corev1.EventTypeNormal, Reason: hubv1.ReasonRolloutWaitingApprove,
		Message: "revision 3: " + approve}}
	halt := "revision 3 failed in cluster c1 (stage canary): Conflict; halted (onFailure Pause)"
	tests := []struct {
		name       string
		prev, next hubv1.RolloutStatus
		want       []Event
	}{
		{name: "the first status of a rollout starts its first stage",
			next: at(3, progressing, "canary", "stage canary: 0/1 clusters updated, 1 updating"), want: started("3", "canary")},
		{name: "the next stage starts",
			prev: at(3, progressing, "canary", "a"), next: at(3, progressing, "prod", "b"), want: started("3", "prod")},
		{name: "a new revision starts the first stage again",
			prev: at(3, progressing, "canary", "a"), next: at(4, progressing, "canary", "a"), want: started("4", "canary")},
		{name: "progress within a stage records nothing",
			prev: at(3, progressing, "prod", "stage prod: 0/2 clusters updated, 1 updating"),
			next: at(3, progressing, "prod", "stage prod: 1/2 clusters updated, 1 updating")},
		{name: "waiting for approval is recorded with what to annotate",
			prev: at(3, progressing, "canary", "a"), next: at(3, waiting, "prod", approve), want: waitsForProd},
		{name: "the approval lets the stage start",
			prev: at(3, waiting, "prod", approve), next: at(3, progressing, "prod", "b"), want: started("3", "prod")},
		{name: "waiting for the same approval of a new revision is recorded again",
			prev: at(2, waiting, "prod", "old"), next: at(3, waiting, "prod", approve), want: waitsForProd},
		{name: "a pause records nothing",
			prev: at(3, progressing, "prod", "a"), next: at(3, paused, "prod", "spec.rollout.paused is true")},
		{name: "resuming the same stage after a pause records nothing",
			prev: at(3, paused, "prod", "spec.rollout.paused is true"), next: at(3, progressing, "prod", "a")},
		{name: "resuming into the next stage starts it",
			prev: at(3, paused, "canary", "spec.rollout.paused is true"), next: at(3, progressing, "prod", "a"), want: started("3", "prod")},
		{name: "a halt is a warning naming the revision, stage and failure",
			prev: at(3, progressing, "canary", "a"), next: at(3, halted, "canary", halt),
			want: []Event{{Type: corev1.EventTypeWarning, Reason: hubv1.ReasonRolloutHalted,
				Message: "revision 3 halted at stage canary: " + halt}}},
		{name: "a halt of a new revision is recorded again",
			prev: at(3, halted, "canary", halt), next: at(4, halted, "canary", "revision 4 failed"),
			want: []Event{{Type: corev1.EventTypeWarning, Reason: hubv1.ReasonRolloutHalted,
				Message: "revision 4 halted at stage canary: revision 4 failed"}}},
		{name: "a rollback is a warning naming the stable revision",
			prev: at(3, progressing, "prod", "a"), next: at(3, rolledBack, "prod", "revision 3 failed in cluster p1"),
			want: []Event{{Type: corev1.EventTypeWarning, Reason: hubv1.ReasonRolledBack,
				Message: "revision 3 failed at stage prod and was rolled back to revision 2: revision 3 failed in cluster p1"}}},
		{name: "completion is recorded once",
			prev: at(3, progressing, "prod", "a"), next: status(3, 3, complete, "", 3, "revision 3 runs in all 3 clusters"),
			want: []Event{{Type: corev1.EventTypeNormal, Reason: hubv1.ReasonRolloutComplete,
				Message: "revision 3 is complete: revision 3 runs in all 3 clusters"}}},
		{name: "completion of a new revision is recorded again",
			prev: status(3, 3, complete, "", 0, "revision 3: no cluster is selected"), next: status(4, 4, complete, "", 0, "revision 4: no cluster is selected"),
			want: []Event{{Type: corev1.EventTypeNormal, Reason: hubv1.ReasonRolloutComplete,
				Message: "revision 4 is complete: revision 4: no cluster is selected"}}},
		{name: "a cluster joining a complete rollout starts its stage again",
			prev: status(3, 3, complete, "", 3, "x"), next: status(3, 3, progressing, "prod", 2, "y"), want: started("3", "prod")},
		{name: "a halted rollout whose message changes records nothing",
			prev: at(3, halted, "canary", halt), next: at(3, halted, "canary", halt+" (again)")},
		{name: "a rolled back rollout whose counts change records nothing",
			prev: status(3, 2, rolledBack, "prod", 2, "m"), next: status(3, 2, rolledBack, "prod", 0, "m")},
		{name: "a complete rollout whose clusters change records nothing",
			prev: status(3, 3, complete, "", 3, "revision 3 runs in all 3 clusters"), next: status(3, 3, complete, "", 4, "revision 3 runs in all 4 clusters")},
	}
	for _, phase := range []hubv1.RolloutPhase{progressing, paused, waiting, halted, rolledBack, complete} {
		s := at(3, phase, "prod", "m")
		tests = append(tests, struct {
			name       string
			prev, next hubv1.RolloutStatus
			want       []Event
		}{name: "at rest " + string(phase) + " records nothing", prev: s, next: s})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Transitions(tt.prev, tt.next)); diff != "" {
				t.Errorf("Transitions (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTransitionsOfDecisions replays a rollout through Decide, feeding each
// status back as the previous one, and checks each event comes once.
func TestTransitionsOfDecisions(t *testing.T) {
	spec := &hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{stage("canary", "c1"), gated(stage("prod", "p1"))}}
	steps := []struct {
		clusters []Cluster
		approval string
		want     []string
	}{
		{clusters: []Cluster{ready("c1", 2), ready("p1", 2)}, want: []string{hubv1.ReasonRolloutStageStarted}},
		{clusters: []Cluster{applied("c1", 3, 0), ready("p1", 2)}},
		{clusters: []Cluster{ready("c1", 3), ready("p1", 2)}, want: []string{hubv1.ReasonRolloutWaitingApprove}},
		{clusters: []Cluster{ready("c1", 3), ready("p1", 2)}},
		{clusters: []Cluster{ready("c1", 3), ready("p1", 2)}, approval: "3/prod", want: []string{hubv1.ReasonRolloutStageStarted}},
		{clusters: []Cluster{ready("c1", 3), applied("p1", 3, 0)}, approval: "3/prod"},
		{clusters: []Cluster{ready("c1", 3), ready("p1", 3)}, want: []string{hubv1.ReasonRolloutComplete}},
		{clusters: []Cluster{ready("c1", 3), ready("p1", 3)}},
	}
	prev := stable(2)
	for i, step := range steps {
		plan, err := Decide(Input{Now: t0, Revision: 3, Spec: spec, Previous: prev, Approval: step.approval, Clusters: step.clusters})
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		var got []string
		for _, e := range Transitions(prev, plan.Status) {
			got = append(got, e.Reason)
		}
		if diff := cmp.Diff(step.want, got); diff != "" {
			t.Errorf("step %d (%s): events (-want +got):\n%s", i, plan.Status.Message, diff)
		}
		prev = plan.Status
	}
}
