package rollout

import (
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"

	hubv1 "example.com/hub-operator/api/v1"
)

// t0 is the time of every decision in the tables; clusters are placed
// relative to it.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// ready runs rev and has been Available there for an hour.
func ready(name string, rev int64) Cluster {
	return Cluster{Name: name, Reachable: true, Revision: rev,
		AppliedAt: t0.Add(-2 * time.Hour), AvailableSince: t0.Add(-time.Hour)}
}

// applied got rev ago and is not Available there yet.
func applied(name string, rev int64, ago time.Duration) Cluster {
	return Cluster{Name: name, Reachable: true, Revision: rev, AppliedAt: t0.Add(-ago)}
}

// availableFor runs rev and has been Available there for d.
func availableFor(name string, rev int64, d time.Duration) Cluster {
	return Cluster{Name: name, Reachable: true, Revision: rev,
		AppliedAt: t0.Add(-d - time.Minute), AvailableSince: t0.Add(-d)}
}

// empty has nothing of the MyResource yet.
func empty(name string) Cluster { return Cluster{Name: name, Reachable: true} }

func down(c Cluster) Cluster {
	c.Reachable = false
	return c
}

func failing(c Cluster, reason string, rev int64, message string) Cluster {
	c.Failure, c.FailedRevision, c.Message = reason, rev, message
	return c
}

func labeled(c Cluster, key, value string) Cluster {
	c.Labels = map[string]string{key: value}
	return c
}

func stage(name string, names ...string) hubv1.RolloutStage {
	return hubv1.RolloutStage{Name: name, Selection: hubv1.Selection{ClusterNames: names}}
}

func limited(st hubv1.RolloutStage, v intstr.IntOrString) hubv1.RolloutStage {
	st.MaxConcurrency = &v
	return st
}

func gated(st hubv1.RolloutStage) hubv1.RolloutStage {
	st.RequireApproval = true
	return st
}

// canaryProd is the usual shape: one canary cluster, then two prod clusters;
// the rest fall to the implicit default stage.
func canaryProd() *hubv1.RolloutSpec {
	return &hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{stage("canary", "c1"), stage("prod", "p1", "p2")}}
}

func with(spec *hubv1.RolloutSpec, change func(*hubv1.RolloutSpec)) *hubv1.RolloutSpec {
	change(spec)
	return spec
}

// row is one expected ClusterPlan.
type row struct {
	name  string
	rev   int64
	stage string
	state State
}

func plans(rows ...row) map[string]ClusterPlan {
	out := make(map[string]ClusterPlan, len(rows))
	for _, r := range rows {
		out[r.name] = ClusterPlan{Revision: r.rev, Stage: r.stage, State: r.state}
	}
	return out
}

func status(rev, stable int64, phase hubv1.RolloutPhase, stage string, updated int32, message string) hubv1.RolloutStatus {
	return hubv1.RolloutStatus{Revision: rev, StableRevision: stable, Phase: phase, Stage: stage,
		UpdatedClusters: updated, Message: message}
}

// stable is a previous status that completed rev.
func stable(rev int64) hubv1.RolloutStatus {
	return status(rev, rev, hubv1.RolloutComplete, "", 0, "")
}
