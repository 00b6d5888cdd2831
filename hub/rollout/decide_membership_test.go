package rollout

import (
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"

	hubv1 "example.com/hub-operator/api/v1"
)

func membershipCases() []decideCase {
	twoCanaries := func() *hubv1.RolloutSpec {
		return with(canaryProd(), func(s *hubv1.RolloutSpec) { s.Stages[0].ClusterNames = []string{"c1", "c2"} })
	}
	return []decideCase{
		{name: "an unreachable cluster does not hold its stage and gets the revision its stage has reached",
			in: Input{Revision: 3, Spec: twoCanaries(), Previous: stable(2),
				Clusters: []Cluster{ready("c1", 3), down(ready("c2", 2)), ready("p1", 2), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"c2", 3, "canary", Unreachable},
					row{"p1", 3, "prod", Updating}, row{"p2", 2, "prod", Waiting}),
				Status: status(3, 2, progressing, "prod", 1, "stage prod: 0/2 clusters updated, 1 updating"),
			}},
		{name: "an unreachable cluster of a stage not yet started keeps what it runs",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: stable(2),
				Clusters: []Cluster{ready("c1", 2), ready("p1", 2), down(ready("p2", 2)), down(empty("x"))}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updating}, row{"p1", 2, "prod", Waiting},
					row{"p2", 2, "prod", Unreachable}, row{"x", 2, "default", Unreachable}),
				Status: status(3, 2, progressing, "canary", 0, "stage canary: 0/1 clusters updated, 1 updating"),
			}},
		{name: "an unreachable cluster of the stage starting now gets the revision and takes no place in maxConcurrency",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: stable(2),
				Clusters: []Cluster{ready("c1", 3), down(ready("p1", 2)), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 3, "prod", Unreachable}, row{"p2", 3, "prod", Updating}),
				Status:   status(3, 2, progressing, "prod", 1, "stage prod: 0/2 clusters updated, 1 updating, 1 unreachable"),
			}},
		{name: "an unreachable cluster that answers again in a stage done gets the revision in its stage's turn",
			in: Input{Revision: 3, Spec: twoCanaries(), Previous: stable(2),
				Clusters: []Cluster{ready("c1", 3), ready("c2", 2), ready("p1", 3), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"c2", 3, "canary", Updating},
					row{"p1", 3, "prod", Updated}, row{"p2", 2, "prod", Waiting}),
				Status: status(3, 2, progressing, "canary", 2, "stage canary: 1/2 clusters updated, 1 updating"),
			}},
		{name: "a cluster joining mid-rollout gets the stable revision first",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: status(3, 2, progressing, "prod", 1, ""),
				Clusters: []Cluster{ready("c1", 3), ready("p1", 2), empty("p2"), empty("x")}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 3, "prod", Updating},
					row{"p2", 2, "prod", Waiting}, row{"x", 2, "default", Waiting}),
				Status: status(3, 2, progressing, "prod", 1, "stage prod: 0/2 clusters updated, 1 updating"),
			}},
		{name: "a joiner in a stage already done makes it current again: stable first, later stages wait",
			in: Input{Revision: 3, Spec: twoCanaries(), Previous: status(3, 2, progressing, "prod", 2, ""),
				Clusters: []Cluster{ready("c1", 3), empty("c2"), applied("p1", 3, time.Minute), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"c2", 2, "canary", Waiting},
					row{"p1", 3, "prod", Updating}, row{"p2", 2, "prod", Waiting}),
				Status:       status(3, 2, progressing, "canary", 1, "stage canary: 1/2 clusters updated, 0 updating"),
				RequeueAfter: 9 * time.Minute,
			}},
		{name: "a joiner that runs the stable revision moves on to the newest one in its stage's turn",
			in: Input{Revision: 3, Spec: twoCanaries(), Previous: status(3, 2, progressing, "canary", 2, ""),
				Clusters: []Cluster{ready("c1", 3), ready("c2", 2), applied("p1", 3, time.Minute), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"c2", 3, "canary", Updating},
					row{"p1", 3, "prod", Updating}, row{"p2", 2, "prod", Waiting}),
				Status:       status(3, 2, progressing, "canary", 1, "stage canary: 1/2 clusters updated, 1 updating"),
				RequeueAfter: 9 * time.Minute,
			}},
		{name: "a joiner with no stable revision to get is a cluster of its stage like the others",
			in: Input{Revision: 1, Spec: canaryProd(), Previous: status(1, 0, progressing, "prod", 2, ""),
				Clusters: []Cluster{ready("c1", 1), ready("p1", 1), empty("p2")}},
			want: Plan{
				Clusters: plans(row{"c1", 1, "canary", Updated}, row{"p1", 1, "prod", Updated}, row{"p2", 1, "prod", Updating}),
				Status:   status(1, 0, progressing, "prod", 2, "stage prod: 1/2 clusters updated, 1 updating"),
			}},
		{name: "a joiner after the rollout completed gets the stable revision, the newest, at once in any stage",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: stable(3),
				Clusters: []Cluster{ready("c1", 3), ready("p1", 3), empty("p2"), empty("x"), empty("y")}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 3, "prod", Updated}, row{"p2", 3, "prod", Updating},
					row{"x", 3, "default", Updating}, row{"y", 3, "default", Updating}),
				Status: status(3, 3, complete, "", 2, "revision 3 reached every cluster; 3 of 5 are not updated now (see status.clusters)"),
			}},
		{name: "a cluster of a passed stage briefly not Available does not take the rollout back to its stage",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: status(3, 2, progressing, "prod", 1, ""),
				Clusters: []Cluster{applied("c1", 3, time.Second), ready("p1", 2), ready("p2", 2)}},
			want: Plan{
				Clusters:     plans(row{"c1", 3, "canary", Updating}, row{"p1", 3, "prod", Updating}, row{"p2", 2, "prod", Waiting}),
				Status:       status(3, 2, progressing, "prod", 0, "stage prod: 0/2 clusters updated, 1 updating"),
				RequeueAfter: 599 * time.Second, // c1's and p1's deadline
			}},
		{name: "a cluster leaving the placement no longer holds its stage",
			in: Input{Revision: 3, Spec: twoCanaries(), Previous: status(3, 2, progressing, "canary", 1, ""),
				Clusters: []Cluster{ready("c1", 3), ready("p1", 2), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 3, "prod", Updating}, row{"p2", 2, "prod", Waiting}),
				Status:   status(3, 2, progressing, "prod", 1, "stage prod: 0/2 clusters updated, 1 updating"),
			}},
		{name: "the last cluster not updated leaving completes the rollout",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: status(3, 2, progressing, "prod", 2, ""),
				Clusters: []Cluster{ready("c1", 3), ready("p1", 3)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 3, "prod", Updated}),
				Status:   status(3, 3, complete, "", 2, "revision 3 runs in all 2 clusters"),
			}},
	}
}

func revisionCases() []decideCase {
	spec := func() *hubv1.RolloutSpec {
		return with(canaryProd(), func(s *hubv1.RolloutSpec) { v := intstr.FromInt32(2); s.Stages[1].MaxConcurrency = &v })
	}
	return []decideCase{
		{name: "a new revision mid-rollout restarts from the first stage; an abandoned revision is kept while waiting",
			in: Input{Revision: 4, Spec: spec(), Previous: status(3, 2, progressing, "prod", 2, ""),
				Clusters: []Cluster{ready("c1", 3), applied("p1", 3, time.Minute), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 4, "canary", Updating}, row{"p1", 3, "prod", Waiting}, row{"p2", 2, "prod", Waiting}),
				Status:   status(4, 2, progressing, "canary", 0, "stage canary: 0/1 clusters updated, 1 updating"),
			}},
		{name: "a cluster on an abandoned revision is moved on like the others in its stage's turn",
			in: Input{Revision: 4, Spec: spec(), Previous: status(4, 2, progressing, "canary", 0, ""),
				Clusters: []Cluster{availableFor("c1", 4, time.Second), ready("p1", 3), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 4, "canary", Updated}, row{"p1", 4, "prod", Updating}, row{"p2", 4, "prod", Updating}),
				Status:   status(4, 2, progressing, "prod", 1, "stage prod: 0/2 clusters updated, 2 updating"),
			}},
		{name: "a failure of the abandoned revision does not halt the new one",
			in: Input{Revision: 4, Spec: spec(), Previous: status(3, 2, progressing, "prod", 1, ""),
				Clusters: []Cluster{ready("c1", 4), failing(applied("p1", 3, time.Hour), hubv1.ReasonProgressDeadline, 3, ""), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 4, "canary", Updated}, row{"p1", 4, "prod", Updating}, row{"p2", 4, "prod", Updating}),
				Status:   status(4, 2, progressing, "prod", 1, "stage prod: 0/2 clusters updated, 2 updating"),
			}},
	}
}

func completeCases() []decideCase {
	return []decideCase{
		{name: "every cluster updated: Complete, the revision becomes the stable one",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: status(3, 2, progressing, "prod", 2, ""),
				Clusters: []Cluster{ready("c1", 3), ready("p1", 3), ready("p2", 3), ready("x", 3), ready("y", 3)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 3, "prod", Updated}, row{"p2", 3, "prod", Updated},
					row{"x", 3, "default", Updated}, row{"y", 3, "default", Updated}),
				Status: status(3, 3, complete, "", 5, "revision 3 runs in all 5 clusters"),
			}},
		{name: "Complete without the unreachable clusters, which get the revision when they answer",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: status(3, 2, progressing, "prod", 2, ""),
				Clusters: []Cluster{ready("c1", 3), ready("p1", 3), down(ready("p2", 2))}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 3, "prod", Updated}, row{"p2", 3, "prod", Unreachable}),
				Status:   status(3, 3, complete, "", 2, "revision 3 runs in all 2 reachable clusters; unreachable, it gets there when they answer: p2"),
			}},
		{name: "no cluster selected is Complete",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: stable(2)},
			want: Plan{
				Clusters: plans(),
				Status:   status(3, 3, complete, "", 0, "revision 3: no cluster is selected"),
			}},
		{name: "no cluster selected without spec.rollout is Complete",
			in: Input{Revision: 1},
			want: Plan{
				Clusters: plans(),
				Status:   status(1, 1, complete, "", 0, "revision 1: no cluster is selected"),
			}},
		{name: "without spec.rollout every cluster Available is Complete",
			in: Input{Revision: 3, Previous: stable(2), Clusters: []Cluster{ready("a", 3), availableFor("b", 3, time.Second)}},
			want: Plan{
				Clusters: plans(row{"a", 3, "default", Updated}, row{"b", 3, "default", Updated}),
				Status:   status(3, 3, complete, "", 2, "revision 3 runs in all 2 clusters"),
			}},
	}
}
