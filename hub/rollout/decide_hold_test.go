package rollout

import (
	"time"

	hubv1 "example.com/hub-operator/api/v1"
)

func holdCases() []decideCase {
	pausedSpec := func() *hubv1.RolloutSpec {
		return with(canaryProd(), func(s *hubv1.RolloutSpec) { s.Paused = true; s.MinReadySeconds = 30 })
	}
	return []decideCase{
		{name: "paused: nothing starts, a cluster already updating goes on and still requeues",
			in: Input{Revision: 3, Spec: pausedSpec(), Previous: stable(2),
				Clusters: []Cluster{ready("c1", 3), availableFor("p1", 3, 10*time.Second), ready("p2", 2), down(ready("x", 2))}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 3, "prod", Updating},
					row{"p2", 2, "prod", Waiting}, row{"x", 2, "default", Unreachable}),
				Status: status(3, 2, paused, "prod", 1, "spec.rollout.paused is true: no further cluster starts revision 3; "+
					"stage prod: 0/2 clusters updated, 1 updating"),
				RequeueAfter: 20 * time.Second,
			}},
		{name: "paused: an unreachable cluster of a stage already done is not given the revision while paused",
			in: Input{Revision: 3, Spec: pausedSpec(), Previous: stable(2),
				Clusters: []Cluster{ready("c1", 3), ready("p1", 2), down(ready("p2", 2))}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 2, "prod", Waiting}, row{"p2", 2, "prod", Unreachable}),
				Status: status(3, 2, paused, "prod", 1, "spec.rollout.paused is true: no further cluster starts revision 3; "+
					"stage prod: 0/2 clusters updated, 0 updating, 1 unreachable"),
			}},
		{name: "paused but every cluster updated is Complete",
			in: Input{Revision: 3, Spec: pausedSpec(), Previous: stable(2), Clusters: []Cluster{ready("c1", 3), ready("p1", 3)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 3, "prod", Updated}),
				Status:   status(3, 3, complete, "", 2, "revision 3 runs in all 2 clusters"),
			}},
		{name: "suspended: nothing starts, the message names spec.suspend",
			in: Input{Revision: 3, Spec: canaryProd(), Suspended: true, Previous: stable(2),
				Clusters: []Cluster{ready("c1", 2), ready("p1", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 2, "canary", Waiting}, row{"p1", 2, "prod", Waiting}),
				Status: status(3, 2, paused, "canary", 0, "spec.suspend is true: no cluster starts revision 3; "+
					"stage canary: 0/1 clusters updated, 0 updating"),
			}},
		{name: "suspended without spec.rollout: nothing starts",
			in: Input{Revision: 3, Suspended: true, Previous: stable(2),
				Clusters: []Cluster{ready("a", 2), applied("b", 3, time.Minute), empty("c")}},
			want: Plan{
				Clusters: plans(row{"a", 2, "default", Waiting}, row{"b", 3, "default", Updating}, row{"c", 2, "default", Waiting}),
				Status: status(3, 2, paused, "default", 0, "spec.suspend is true: no cluster starts revision 3; "+
					"stage default: 0/3 clusters updated, 1 updating"),
			}},
	}
}

func approvalCases() []decideCase {
	spec := func() *hubv1.RolloutSpec {
		return &hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{stage("canary", "c1"), gated(stage("prod", "p1", "p2"))}}
	}
	waitsForProd := Plan{
		Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 2, "prod", Waiting}, row{"p2", 2, "prod", Waiting}),
		Status: status(3, 2, waiting, "prod", 1, "stage prod waits for approval: annotate the MyResource "+
			"example.com/rollout-approved=3/prod; stage prod: 0/2 clusters updated, 0 updating"),
	}
	atStable := []Cluster{ready("c1", 3), ready("p1", 2), ready("p2", 2)}
	return []decideCase{
		{name: "approval: a stage that requires it waits before it starts and says what to annotate",
			in: Input{Revision: 3, Spec: spec(), Previous: stable(2), Clusters: atStable}, want: waitsForProd},
		{name: "approval for this revision and stage lets the stage start",
			in: Input{Revision: 3, Spec: spec(), Previous: stable(2), Approval: "3/prod", Clusters: atStable},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 3, "prod", Updating}, row{"p2", 2, "prod", Waiting}),
				Status:   status(3, 2, progressing, "prod", 1, "stage prod: 0/2 clusters updated, 1 updating"),
			}},
		{name: "a stale approval of an older revision lets nothing start",
			in: Input{Revision: 3, Spec: spec(), Previous: stable(2), Approval: "2/prod", Clusters: atStable}, want: waitsForProd},
		{name: "a stale approval of another stage lets nothing start",
			in: Input{Revision: 3, Spec: spec(), Previous: stable(2), Approval: "3/canary", Clusters: atStable}, want: waitsForProd},
		{name: "a stage already started goes on without the annotation",
			in: Input{Revision: 3, Spec: spec(), Previous: stable(2), Clusters: []Cluster{ready("c1", 3), ready("p1", 3), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 3, "prod", Updated}, row{"p2", 3, "prod", Updating}),
				Status:   status(3, 2, progressing, "prod", 2, "stage prod: 1/2 clusters updated, 1 updating"),
			}},
		{name: "approval of the first stage of the first revision: the clusters wait with nothing",
			in: Input{Revision: 1, Spec: &hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{gated(stage("canary", "c1"))}},
				Clusters: []Cluster{empty("c1"), empty("x")}},
			want: Plan{
				Clusters: plans(row{"c1", 0, "canary", Waiting}, row{"x", 0, "default", Waiting}),
				Status: status(1, 0, waiting, "canary", 0, "stage canary waits for approval: annotate the MyResource "+
					"example.com/rollout-approved=1/canary; stage canary: 0/1 clusters updated, 0 updating"),
			}},
		{name: "while paused a stage waiting for approval reports Paused",
			in: Input{Revision: 3, Spec: with(spec(), func(s *hubv1.RolloutSpec) { s.Paused = true }), Previous: stable(2), Clusters: atStable},
			want: Plan{
				Clusters: waitsForProd.Clusters,
				Status: status(3, 2, paused, "prod", 1, "spec.rollout.paused is true: no further cluster starts revision 3; "+
					"stage prod: 0/2 clusters updated, 0 updating"),
			}},
	}
}
