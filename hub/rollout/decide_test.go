package rollout

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	hubv1 "example.com/hub-operator/api/v1"
)

const (
	progressing = hubv1.RolloutProgressing
	paused      = hubv1.RolloutPaused
	waiting     = hubv1.RolloutWaitingForApproval
	halted      = hubv1.RolloutHalted
	rolledBack  = hubv1.RolloutRolledBack
	complete    = hubv1.RolloutComplete
)

type decideCase struct {
	name string
	in   Input
	want Plan
}

// TestDecide runs every case twice: as written and with the clusters in
// reverse order, which must not change the plan.
func TestDecide(t *testing.T) {
	var tests []decideCase
	for _, group := range [][]decideCase{
		firstRevisionCases(), stageCases(), concurrencyCases(), timeCases(), failureCases(),
		holdCases(), approvalCases(), membershipCases(), revisionCases(), completeCases(),
	} {
		tests = append(tests, group...)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.Now = t0
			got, err := Decide(in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
			in.Clusters = slices.Clone(in.Clusters)
			slices.Reverse(in.Clusters)
			again, err := Decide(in)
			if err != nil {
				t.Fatalf("Decide, clusters reversed: %v", err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("the order of the clusters changed the plan (-as given +reversed):\n%s", diff)
			}
		})
	}
}

func firstRevisionCases() []decideCase {
	return []decideCase{
		{name: "first revision: the canary starts, later stages wait with nothing (no stable revision)",
			in: Input{Revision: 1, Spec: canaryProd(), Clusters: []Cluster{empty("c1"), empty("p1"), empty("p2")}},
			want: Plan{
				Clusters: plans(row{"c1", 1, "canary", Updating}, row{"p1", 0, "prod", Waiting}, row{"p2", 0, "prod", Waiting}),
				Status:   status(1, 0, progressing, "canary", 0, "stage canary: 0/1 clusters updated, 1 updating"),
			}},
		{name: "first revision without spec.rollout: every cluster gets it at once",
			in: Input{Revision: 1, Clusters: []Cluster{empty("c1"), empty("p1"), empty("p2")}},
			want: Plan{
				Clusters: plans(row{"c1", 1, "default", Updating}, row{"p1", 1, "default", Updating}, row{"p2", 1, "default", Updating}),
				Status:   status(1, 0, progressing, "default", 0, "stage default: 0/3 clusters updated, 3 updating"),
			}},
		{name: "without spec.rollout a new revision reaches every cluster at once, whatever each runs",
			in: Input{Revision: 3, Previous: stable(2), Clusters: []Cluster{ready("a", 2), applied("b", 3, time.Minute), empty("c"), ready("d", 3)}},
			want: Plan{
				Clusters: plans(row{"a", 3, "default", Updating}, row{"b", 3, "default", Updating},
					row{"c", 3, "default", Updating}, row{"d", 3, "default", Updated}),
				Status: status(3, 2, progressing, "default", 1, "stage default: 1/4 clusters updated, 3 updating"),
			}},
		{name: "without spec.rollout a failure halts nothing and there is no progress deadline",
			in: Input{Revision: 3, Previous: stable(2), Clusters: []Cluster{
				failing(ready("a", 2), hubv1.ReasonApplyFailed, 3, "denied"), applied("b", 3, 24*time.Hour), ready("c", 3)}},
			want: Plan{
				Clusters: plans(row{"a", 3, "default", Failed}, row{"b", 3, "default", Updating}, row{"c", 3, "default", Updated}),
				Status:   status(3, 2, progressing, "default", 1, "stage default: 1/3 clusters updated, 1 updating, 1 failing"),
			}},
		{name: "without spec.rollout a Halted phase for the same revision does not stay",
			in: Input{Revision: 3, Previous: status(3, 2, halted, "canary", 0, "revision 3 failed"), Clusters: []Cluster{ready("a", 2)}},
			want: Plan{
				Clusters: plans(row{"a", 3, "default", Updating}),
				Status:   status(3, 2, progressing, "default", 0, "stage default: 0/1 clusters updated, 1 updating"),
			}},
	}
}

func stageCases() []decideCase {
	selectorStages := &hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{
		stage("canary", "c1"),
		{Name: "eu", Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"region": "eu"}}}},
	}}
	return []decideCase{
		{name: "stages run in order: prod starts once the canary is updated",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: stable(2), Clusters: []Cluster{ready("c1", 3), ready("p1", 2), ready("p2", 2), ready("x", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 3, "prod", Updating},
					row{"p2", 2, "prod", Waiting}, row{"x", 2, "default", Waiting}),
				Status: status(3, 2, progressing, "prod", 1, "stage prod: 0/2 clusters updated, 1 updating"),
			}},
		{name: "a cluster belongs to the first stage that selects it; the unselected form the implicit default stage last",
			in: Input{Revision: 3, Spec: selectorStages, Previous: stable(2), Clusters: []Cluster{
				labeled(ready("c1", 2), "region", "eu"), labeled(ready("e1", 2), "region", "eu"), ready("x", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updating}, row{"e1", 2, "eu", Waiting}, row{"x", 2, "default", Waiting}),
				Status:   status(3, 2, progressing, "canary", 0, "stage canary: 0/1 clusters updated, 1 updating"),
			}},
		{name: "the implicit default stage comes after the named ones and uses spec.rollout.maxConcurrency",
			in: Input{Revision: 3, Previous: stable(2),
				Spec:     with(canaryProd(), func(s *hubv1.RolloutSpec) { v := intstr.FromInt32(2); s.MaxConcurrency = &v }),
				Clusters: []Cluster{ready("c1", 3), ready("p1", 3), ready("p2", 3), ready("x", 2), ready("y", 2), ready("z", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 3, "prod", Updated}, row{"p2", 3, "prod", Updated},
					row{"x", 3, "default", Updating}, row{"y", 3, "default", Updating}, row{"z", 2, "default", Waiting}),
				Status: status(3, 2, progressing, "default", 3, "stage default: 0/3 clusters updated, 2 updating"),
			}},
		{name: "a stage with no cluster is passed over",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: stable(2), Clusters: []Cluster{ready("p1", 2), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"p1", 3, "prod", Updating}, row{"p2", 2, "prod", Waiting}),
				Status:   status(3, 2, progressing, "prod", 0, "stage prod: 0/2 clusters updated, 1 updating"),
			}},
	}
}

func concurrencyCases() []decideCase {
	eight := []Cluster{}
	for _, n := range []string{"p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"} {
		eight = append(eight, ready(n, 2))
	}
	prod := func(v intstr.IntOrString, names ...string) *hubv1.RolloutSpec {
		return &hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{limited(stage("prod", names...), v)}}
	}
	all8 := []string{"p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"}
	return []decideCase{
		{name: "maxConcurrency 2 starts two clusters in name order",
			in: Input{Revision: 3, Spec: prod(intstr.FromInt32(2), "p1", "p2", "p3", "p4"), Previous: stable(2),
				Clusters: []Cluster{ready("p4", 2), ready("p3", 2), ready("p2", 2), ready("p1", 2)}},
			want: Plan{
				Clusters: plans(row{"p1", 3, "prod", Updating}, row{"p2", 3, "prod", Updating},
					row{"p3", 2, "prod", Waiting}, row{"p4", 2, "prod", Waiting}),
				Status: status(3, 2, progressing, "prod", 0, "stage prod: 0/4 clusters updated, 2 updating"),
			}},
		{name: "a cluster still updating holds its place in maxConcurrency",
			in: Input{Revision: 3, Spec: prod(intstr.FromInt32(2), "p1", "p2", "p3"), Previous: stable(2),
				Clusters: []Cluster{ready("p1", 2), ready("p2", 2), applied("p3", 3, time.Minute)}},
			want: Plan{
				Clusters:     plans(row{"p1", 3, "prod", Updating}, row{"p2", 2, "prod", Waiting}, row{"p3", 3, "prod", Updating}),
				Status:       status(3, 2, progressing, "prod", 0, "stage prod: 0/3 clusters updated, 2 updating"),
				RequeueAfter: 9 * time.Minute,
			}},
		{name: "an updated cluster frees its place in maxConcurrency",
			in: Input{Revision: 3, Spec: prod(intstr.FromInt32(2), "p1", "p2", "p3", "p4"), Previous: stable(2),
				Clusters: []Cluster{ready("p1", 3), applied("p2", 3, time.Minute), ready("p3", 2), ready("p4", 2)}},
			want: Plan{
				Clusters: plans(row{"p1", 3, "prod", Updated}, row{"p2", 3, "prod", Updating},
					row{"p3", 3, "prod", Updating}, row{"p4", 2, "prod", Waiting}),
				Status:       status(3, 2, progressing, "prod", 1, "stage prod: 1/4 clusters updated, 2 updating"),
				RequeueAfter: 9 * time.Minute,
			}},
		{name: "maxConcurrency 25% of 8 clusters is 2",
			in: Input{Revision: 3, Spec: prod(intstr.FromString("25%"), all8...), Previous: stable(2), Clusters: eight},
			want: Plan{
				Clusters: plans(row{"p1", 3, "prod", Updating}, row{"p2", 3, "prod", Updating}, row{"p3", 2, "prod", Waiting},
					row{"p4", 2, "prod", Waiting}, row{"p5", 2, "prod", Waiting}, row{"p6", 2, "prod", Waiting},
					row{"p7", 2, "prod", Waiting}, row{"p8", 2, "prod", Waiting}),
				Status: status(3, 2, progressing, "prod", 0, "stage prod: 0/8 clusters updated, 2 updating"),
			}},
		{name: "maxConcurrency 25% of 3 clusters rounds up to 1",
			in: Input{Revision: 3, Spec: prod(intstr.FromString("25%"), "p1", "p2", "p3"), Previous: stable(2),
				Clusters: []Cluster{ready("p1", 2), ready("p2", 2), ready("p3", 2)}},
			want: Plan{
				Clusters: plans(row{"p1", 3, "prod", Updating}, row{"p2", 2, "prod", Waiting}, row{"p3", 2, "prod", Waiting}),
				Status:   status(3, 2, progressing, "prod", 0, "stage prod: 0/3 clusters updated, 1 updating"),
			}},
		{name: "maxConcurrency 100% starts the whole stage",
			in: Input{Revision: 3, Spec: prod(intstr.FromString("100%"), "p1", "p2", "p3"), Previous: stable(2),
				Clusters: []Cluster{ready("p1", 2), ready("p2", 2), ready("p3", 2)}},
			want: Plan{
				Clusters: plans(row{"p1", 3, "prod", Updating}, row{"p2", 3, "prod", Updating}, row{"p3", 3, "prod", Updating}),
				Status:   status(3, 2, progressing, "prod", 0, "stage prod: 0/3 clusters updated, 3 updating"),
			}},
	}
}

func timeCases() []decideCase {
	minReady := func(s int32) *hubv1.RolloutSpec {
		return with(canaryProd(), func(spec *hubv1.RolloutSpec) { spec.MinReadySeconds = s })
	}
	deadline := func(s int32) *hubv1.RolloutSpec {
		return with(canaryProd(), func(spec *hubv1.RolloutSpec) { spec.ProgressDeadlineSeconds = &s })
	}
	return []decideCase{
		{name: "minReadySeconds: Available but not long enough is not updated; requeue when it will be",
			in: Input{Revision: 3, Spec: minReady(60), Previous: stable(2),
				Clusters: []Cluster{availableFor("c1", 3, 20*time.Second), ready("p1", 2), ready("p2", 2)}},
			want: Plan{
				Clusters:     plans(row{"c1", 3, "canary", Updating}, row{"p1", 2, "prod", Waiting}, row{"p2", 2, "prod", Waiting}),
				Status:       status(3, 2, progressing, "canary", 0, "stage canary: 0/1 clusters updated, 1 updating"),
				RequeueAfter: 40 * time.Second,
			}},
		{name: "minReadySeconds: Available exactly that long is updated and the next stage starts",
			in: Input{Revision: 3, Spec: minReady(60), Previous: stable(2),
				Clusters: []Cluster{availableFor("c1", 3, 60*time.Second), ready("p1", 2), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updated}, row{"p1", 3, "prod", Updating}, row{"p2", 2, "prod", Waiting}),
				Status:   status(3, 2, progressing, "prod", 1, "stage prod: 0/2 clusters updated, 1 updating"),
			}},
		{name: "progress deadline (default 600s) passed without Available: the cluster failed",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: stable(2),
				Clusters: []Cluster{applied("c1", 3, 600*time.Second), ready("p1", 2), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Failed}, row{"p1", 2, "prod", Waiting}, row{"p2", 2, "prod", Waiting}),
				Status: status(3, 2, halted, "canary", 0, "revision 3 failed in cluster c1 (stage canary): ProgressDeadlineExceeded: "+
					"not Available 10m0s after revision 3 was applied; halted (onFailure Pause)"),
			}},
		{name: "progress deadline not yet passed: updating, requeue when it will be",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: stable(2),
				Clusters: []Cluster{applied("c1", 3, 599*time.Second), ready("p1", 2), ready("p2", 2)}},
			want: Plan{
				Clusters:     plans(row{"c1", 3, "canary", Updating}, row{"p1", 2, "prod", Waiting}, row{"p2", 2, "prod", Waiting}),
				Status:       status(3, 2, progressing, "canary", 0, "stage canary: 0/1 clusters updated, 1 updating"),
				RequeueAfter: time.Second,
			}},
		{name: "progressDeadlineSeconds from the spec; the soonest gate sets the requeue",
			in: Input{Revision: 3, Previous: stable(2),
				Spec: with(deadline(60), func(s *hubv1.RolloutSpec) {
					s.MinReadySeconds = 30
					s.Stages[0].ClusterNames = []string{"c1", "c2"}
					v := intstr.FromInt32(2)
					s.Stages[0].MaxConcurrency = &v
				}),
				Clusters: []Cluster{applied("c1", 3, 50*time.Second), availableFor("c2", 3, 15*time.Second)}},
			want: Plan{
				Clusters:     plans(row{"c1", 3, "canary", Updating}, row{"c2", 3, "canary", Updating}),
				Status:       status(3, 2, progressing, "canary", 0, "stage canary: 0/2 clusters updated, 2 updating"),
				RequeueAfter: 10 * time.Second,
			}},
		{name: "a cluster with no known apply time has no deadline yet",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: stable(2),
				Clusters: []Cluster{{Name: "c1", Reachable: true, Revision: 3}}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Updating}),
				Status:   status(3, 2, progressing, "canary", 0, "stage canary: 0/1 clusters updated, 1 updating"),
			}},
		{name: "an unreachable cluster does not fail by its deadline: it never holds a stage",
			in: Input{Revision: 3, Spec: canaryProd(), Previous: stable(2),
				Clusters: []Cluster{down(applied("c1", 3, time.Hour)), ready("p1", 2), ready("p2", 2)}},
			want: Plan{
				Clusters: plans(row{"c1", 3, "canary", Unreachable}, row{"p1", 3, "prod", Updating}, row{"p2", 2, "prod", Waiting}),
				Status:   status(3, 2, progressing, "prod", 0, "stage prod: 0/2 clusters updated, 1 updating"),
			}},
	}
}

func TestDecideRejectsAnInvalidStage(t *testing.T) {
	bad := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "region", Operator: "Near"}}}
	tests := []struct {
		name string
		spec *hubv1.RolloutSpec
		want string
	}{
		{name: "a stage selector that is not a label selector",
			spec: &hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{{Name: "eu", Selection: hubv1.Selection{ClusterSelector: bad}}}},
			want: "spec.rollout.stages[0] (eu): clusterSelector"},
		{name: "a maxConcurrency that is neither a count nor a percent",
			spec: &hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{limited(stage("eu", "a"), intstr.FromString("half"))}},
			want: "spec.rollout.stages[0].maxConcurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decide(Input{Now: t0, Revision: 3, Spec: tt.spec, Clusters: []Cluster{ready("a", 2)}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decide error = %v, want one naming %q", err, tt.want)
			}
		})
	}
}

// A member's message is not ours to bound; the status message is, and the
// failure policy at its end survives the cut.
func TestDecideCapsTheFailureMessage(t *testing.T) {
	long := strings.Repeat("é", 2000)
	got, err := Decide(Input{Now: t0, Revision: 3, Spec: rollback(canaryProd()), Previous: stable(2),
		Clusters: []Cluster{failing(applied("c1", 3, time.Minute), hubv1.ReasonProgressDeadline, 3, long)}})
	if err != nil {
		t.Fatal(err)
	}
	msg := got.Status.Message
	if len(msg) > maxMessage || !utf8.ValidString(msg) {
		t.Errorf("message is %d bytes (valid UTF-8: %t), want at most %d", len(msg), utf8.ValidString(msg), maxMessage)
	}
	if !strings.HasPrefix(msg, "revision 3 failed in cluster c1 (stage canary): ProgressDeadlineExceeded: éé") ||
		!strings.HasSuffix(msg, "…; rolled back to revision 2") {
		t.Errorf("message = %q, want the failure first, cut, and the rollback last", msg)
	}
}
