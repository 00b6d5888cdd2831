package rollout

import (
	"time"

	hubv1 "example.com/hub-operator/api/v1"
)

func rollback(spec *hubv1.RolloutSpec) *hubv1.RolloutSpec {
	spec.OnFailure = hubv1.RolloutRollback
	return spec
}

func failureCases() []decideCase {
	pde := hubv1.ReasonProgressDeadline
	return []decideCase{
		{name: "ProgressDeadlineExceeded reported by the canary halts the rollout (onFailure default Pause)",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: stable(2),
				Clusters: []Cluster{failing(applied("c1", 3, time.Minute), pde, 3, "ReplicaSet web-5d is progressing too slowly"), ready("p1", 2), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Failed}, row{"p1", 2, "prod", Waiting}, row{"p2", 2, "prod", Waiting}),
				Status: status(3, 2, halted, "canary", 0, "revision 3 failed in cluster c1 (stage canary): ProgressDeadlineExceeded: "+
					"ReplicaSet web-5d is progressing too slowly; halted (onFailure Pause)"),
			}},
		{name: "a Conflict in prod halts: the failed cluster keeps what it runs, the updated canary keeps the revision",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: stable(2),
				Clusters: []Cluster{ready("c1", 3), failing(ready("p1", 2), hubv1.ReasonConflict, 3, "field managed by kubectl"), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 2, "prod", Failed}, row{"p2", 2, "prod", Waiting}),
				Status: status(3, 2, halted, "prod", 1,
					"revision 3 failed in cluster p1 (stage prod): Conflict: field managed by kubectl; halted (onFailure Pause)"),
			}},
		{name: "ApplyFailed in prod with onFailure Rollback: every cluster that got the revision gets the stable one",
			in: Input{Revision: 3, Spec: rollback(canaryProd()), Previous: stable(2),
				Clusters: []Cluster{ready("c1", 3), failing(ready("p1", 2), hubv1.ReasonApplyFailed, 3, "admission webhook denied"), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 2, "canary", RolledBack}, row{"p1", 2, "prod", Failed}, row{"p2", 2, "prod", Waiting}),
				Status: status(3, 2, rolledBack, "prod", 1,
					"revision 3 failed in cluster p1 (stage prod): ApplyFailed: admission webhook denied; rolled back to revision 2"),
			}},
		{name: "onFailure Rollback gives the failed cluster itself the stable revision",
			in: Input{Revision: 3, Spec: rollback(canaryProd()), Previous: stable(2),
				Clusters: []Cluster{failing(applied("c1", 3, time.Minute), pde, 3, ""), ready("p1", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 2, "canary", Failed}, row{"p1", 2, "prod", Waiting}),
				Status: status(3, 2, rolledBack, "canary", 0,
					"revision 3 failed in cluster c1 (stage canary): ProgressDeadlineExceeded; rolled back to revision 2"),
			}},
		{name: "onFailure Rollback with no stable revision halts and says there is nothing to roll back to",
			in: Input{Revision: 1, Spec: rollback(canaryProd()),
				Clusters: []Cluster{failing(applied("c1", 1, time.Minute), pde, 1, ""), empty("p1")}},
			want: Plan{
				Clusters: plans(row{"c1", 1, "canary", Failed}, row{"p1", 0, "prod", Waiting}),
				Status: status(1, 0, halted, "canary", 0, "revision 1 failed in cluster c1 (stage canary): ProgressDeadlineExceeded; "+
					"halted: there is no stable revision to roll back to (none has reached every cluster yet)"),
			}},
		{name: "several failures: all named, the stage is the first failed one in stage order",
			in: Input{Revision: 3, Spec: with(canaryProd(), func(s *hubv1.RolloutSpec) { s.Stages[0].ClusterNames = []string{"c1", "c2"} }),
				Previous: stable(2), Clusters: []Cluster{
					failing(ready("p1", 2), hubv1.ReasonConflict, 3, "x"), failing(ready("c2", 2), hubv1.ReasonApplyFailed, 3, "y"), ready("c1", 3)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"c2", 2, "canary", Failed}, row{"p1", 2, "prod", Failed}),
				Status: status(3, 2, halted, "canary", 1, "revision 3 failed in cluster c2 (stage canary): ApplyFailed: y; "+
					"in cluster p1 (stage prod): Conflict: x; halted (onFailure Pause)"),
			}},
		{name: "a failure reported for an older revision is not a failure of the newest one",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: stable(2),
				Clusters: []Cluster{failing(ready("c1", 2), hubv1.ReasonConflict, 2, "old"), ready("p1", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updating}, row{"p1", 2, "prod", Waiting}),
				Status:   status(3, 2, progressing, "canary", 0, "stage canary: 0/1 clusters updated, 1 updating"),
			}},
		{name: "a failed cluster is not updated even while its Deployment is Available",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: stable(2),
				Clusters: []Cluster{failing(ready("c1", 3), pde, 3, ""), ready("p1", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Failed}, row{"p1", 2, "prod", Waiting}),
				Status: status(3, 2, halted, "canary", 0,
					"revision 3 failed in cluster c1 (stage canary): ProgressDeadlineExceeded; halted (onFailure Pause)"),
			}},
		{name: "a failure reported by a cluster now unreachable still halts; the cluster stays Unreachable",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: stable(2),
				Clusters: []Cluster{down(failing(applied("c1", 3, time.Minute), pde, 3, "")), ready("p1", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Unreachable}, row{"p1", 2, "prod", Waiting}),
				Status: status(3, 2, halted, "canary", 0,
					"revision 3 failed in cluster c1 (stage canary): ProgressDeadlineExceeded; halted (onFailure Pause)"),
			}},
		{name: "a failure halts even a paused rollout, and a joiner gets the stable revision",
			in: Input{Revision: 3, Spec: with(canaryProd(), func(s *hubv1.RolloutSpec) { s.Paused = true }), Previous: stable(2),
				Clusters: []Cluster{failing(applied("c1", 3, time.Minute), pde, 3, ""), empty("p1")}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Failed}, row{"p1", 2, "prod", Waiting}),
				Status: status(3, 2, halted, "canary", 0,
					"revision 3 failed in cluster c1 (stage canary): ProgressDeadlineExceeded; halted (onFailure Pause)"),
			}},
		{name: "sticky Halted: same revision, the phase, stage and message stay; nothing new starts though the failure cleared",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: status(3, 2, halted, "canary", 0, "revision 3 failed in cluster c1"),
				Clusters: []Cluster{ready("c1", 3), ready("p1", 2), empty("p2")}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 2, "prod", Waiting}, row{"p2", 2, "prod", Waiting}),
				Status:   status(3, 2, halted, "canary", 1, "revision 3 failed in cluster c1"),
			}},
		{name: "sticky RolledBack: a cluster still at the failed revision gets the stable one; the rolled back keep it",
			in: Input{Revision: 3, Spec: rollback(canaryProd()), Previous: status(3, 2, rolledBack, "prod", 1, "revision 3 failed in cluster p1"),
				Clusters: []Cluster{ready("c1", 3), ready("p1", 2), down(ready("p2", 3))}},
			want: Plan{
				Clusters: plans(row{"c1", 2, "canary", RolledBack}, row{"p1", 2, "prod", Waiting}, row{"p2", 2, "prod", Unreachable}),
				Status:   status(3, 2, rolledBack, "prod", 1, "revision 3 failed in cluster p1"),
			}},
		{name: "sticky Halted stays even when onFailure became Rollback: the phase changes only with a new revision",
			in: Input{Revision: 3, Spec: rollback(canaryProd()), Previous: status(3, 2, halted, "canary", 0, "m"),
				Clusters: []Cluster{applied("c1", 3, time.Hour), ready("p1", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Failed}, row{"p1", 2, "prod", Waiting}),
				Status:   status(3, 2, halted, "canary", 0, "m"),
			}},
		{name: "a halted rollout sets no requeue though a cluster is still updating",
			in: Input{Revision: 3, Spec: with(canaryProd(), func(s *hubv1.RolloutSpec) { s.Stages[0].ClusterNames = []string{"c1", "c2"} }),
				Previous: stable(2), Clusters: []Cluster{failing(applied("c1", 3, time.Minute), pde, 3, ""), applied("c2", 3, time.Minute)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Failed}, row{"c2", 3, "canary", Updating}),
				Status: status(3, 2, halted, "canary", 0,
					"revision 3 failed in cluster c1 (stage canary): ProgressDeadlineExceeded; halted (onFailure Pause)"),
			}},
		{name: "once the revision is stable (complete) a failure there halts nothing, the apply is retried and the rollout stays Complete",
			in: Input{Revision: 3, Spec: rollback(canaryProd()), Previous: stable(3),
				Clusters: []Cluster{ready("c1", 3), failing(ready("p1", 3), hubv1.ReasonConflict, 3, "x"), ready("p2", 3)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 3, "prod", Failed}, row{"p2", 3, "prod", Updated}),
				Status:   status(3, 3, complete, "", 2, "revision 3 reached every cluster; 1 of 3 are not updated now (see status.clusters)"),
			}},
		{name: "a new revision after a halt starts again from the first stage",
			in: Input{Revision: 4, Spec: canaryProd(), Previous: status(3, 2, halted, "canary", 0, "revision 3 failed in cluster c1"),
				Clusters: []Cluster{failing(applied("c1", 3, time.Hour), pde, 3, ""), ready("p1", 2), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 4, "canary", Updating}, row{"p1", 2, "prod", Waiting}, row{"p2", 2, "prod", Waiting}),
				Status:   status(4, 2, progressing, "canary", 0, "stage canary: 0/1 clusters updated, 1 updating"),
			}},
	}
}
