// Package rollout decides, for one MyResource, which revision each selected
// cluster runs now and where the rollout of the newest revision stands. It
// is pure: the clusters' observed state and the time are inputs, and it
// reads no clock and calls no API, so every decision has a table test.
//
// The contract is DESIGN.md's "Rollouts (contract)". In short: clusters are
// grouped into the spec's stages (a cluster belongs to the first stage that
// selects it; the rest form the implicit last stage "default"); the stages
// are taken in order, and within the current stage at most maxConcurrency
// clusters are updating at once. A cluster is updated once its Deployment has
// been Available at the newest revision for minReadySeconds; it has failed
// when it reports ProgressDeadlineExceeded, its apply failed with Conflict or
// ApplyFailed, or it is not Available progressDeadlineSeconds after the
// revision was applied there. A failure halts the rollout (onFailure Pause)
// or gives the clusters that got the revision the stable one again
// (Rollback); either way that revision is not tried again.
package rollout

import (
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	hubv1 "example.com/hub-operator/api/v1"
)

// Cluster is what the planner knows of one selected cluster.
type Cluster struct {
	// Name and Labels are the cluster's (its registry Secret's); stages
	// select on them.
	Name   string
	Labels map[string]string
	// Reachable is false when the hub cannot write to the cluster now. An
	// unreachable cluster never holds a stage.
	Reachable bool
	// Revision is the revision the member's objects carry; 0 when the
	// cluster has none of them.
	Revision int64
	// AppliedAt is when Revision was applied there; zero when unknown.
	AppliedAt time.Time
	// AvailableSince is since when the cluster's Deployment has been
	// Available at Revision; zero when it is not Available.
	AvailableSince time.Time
	// Failure is a reason that fails FailedRevision there: Conflict or
	// ApplyFailed (the apply of FailedRevision failed), or
	// ProgressDeadlineExceeded (the Deployment, at FailedRevision, reports
	// it). "" when none.
	Failure        string
	FailedRevision int64
	// Message says more about Failure.
	Message string
}

// Input is everything one decision depends on.
type Input struct {
	// Now is the time of the decision.
	Now time.Time
	// Revision is the newest revision: the one the spec renders now.
	Revision int64
	// Spec is spec.rollout; nil sends Revision to every cluster at once
	// (and then nothing halts: failures are the clusters' own).
	Spec *hubv1.RolloutSpec
	// Previous is status.rollout as last written; zero before the first.
	// Its StableRevision is the stable revision, and a Halted or RolledBack
	// phase for Revision stays (the failed revision is not retried).
	Previous hubv1.RolloutStatus
	// Approval is the value of the example.com/rollout-approved annotation.
	Approval string
	// Suspended is spec.suspend: nothing starts.
	Suspended bool
	// Clusters are the selected clusters, in any order.
	Clusters []Cluster
}

// State is where one cluster is in the rollout of the newest revision.
type State string

const (
	// Updated means it runs the newest revision, Available for minReadySeconds.
	Updated State = "Updated"
	// Updating means it has been given the newest revision and is not yet updated.
	Updating State = "Updating"
	// Waiting means its stage has not reached it; it keeps the revision it runs
	// (the stable one, or an older one it still runs). Assigned 0 when it
	// has none and there is no stable revision to give it.
	Waiting State = "Waiting"
	// Failed means the newest revision failed there.
	Failed State = "Failed"
	// RolledBack means it was given the stable revision again after a failure.
	RolledBack State = "RolledBack"
	// Unreachable means it cannot be written to; it gets the revision its stage
	// has reached when it answers again.
	Unreachable State = "Unreachable"
)

// ClusterPlan is the decision for one cluster.
type ClusterPlan struct {
	// Revision is the revision the cluster must run now; 0 means none
	// (nothing to give it yet: Applied=False, reason RolloutPending).
	Revision int64
	// Stage is the name of the cluster's stage.
	Stage string
	State State
}

// Plan is the decision.
type Plan struct {
	// Clusters has an entry for every input cluster, by name.
	Clusters map[string]ClusterPlan
	// Status is the new status.rollout.
	Status hubv1.RolloutStatus
	// RequeueAfter is when a time gate opens (minReadySeconds passed, a
	// progress deadline reached); 0 when none is pending.
	RequeueAfter time.Duration
}

// Stage is one stage with the clusters it holds.
type Stage struct {
	Name string
	// Clusters are the names of the stage's clusters, sorted.
	Clusters []string
	// MaxConcurrency is the number of the stage's clusters that may be
	// updating at once (a percent resolved against len(Clusters), rounded
	// up, at least 1).
	MaxConcurrency  int
	RequireApproval bool
}

// Stages groups clusters into spec's stages, in order, with the implicit
// "default" stage last when it holds any cluster. A nil spec is one
// "default" stage of unbounded concurrency. An invalid selector or
// maxConcurrency is an error.
func Stages(spec *hubv1.RolloutSpec, clusters []Cluster) ([]Stage, error) {
	if spec == nil {
		names := make([]string, 0, len(clusters))
		for _, c := range clusters {
			names = append(names, c.Name)
		}
		slices.Sort(names)
		return []Stage{{Name: hubv1.DefaultStageName, Clusters: names, MaxConcurrency: max(len(names), 1)}}, nil
	}
	matchers := make([]func(string, map[string]string) bool, len(spec.Stages))
	for i, st := range spec.Stages {
		m, err := st.Matcher()
		if err != nil {
			return nil, fmt.Errorf("spec.rollout.stages[%d] (%s): clusterSelector: %w", i, st.Name, err)
		}
		matchers[i] = m
	}
	members := make([][]string, len(spec.Stages)+1) // the last one is the implicit stage
	for _, c := range clusters {
		i := len(spec.Stages)
		for j, m := range matchers {
			if m(c.Name, c.Labels) {
				i = j
				break
			}
		}
		members[i] = append(members[i], c.Name)
	}
	var out []Stage
	for i, names := range members {
		name, limit, approval, field := hubv1.DefaultStageName, spec.MaxConcurrency, false, "spec.rollout.maxConcurrency"
		if i < len(spec.Stages) {
			st := spec.Stages[i]
			name, limit, approval, field = st.Name, st.MaxConcurrency, st.RequireApproval, fmt.Sprintf("spec.rollout.stages[%d].maxConcurrency", i)
		} else if len(names) == 0 {
			continue // no implicit stage without clusters
		}
		n, err := concurrency(limit, len(names))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		slices.Sort(names)
		out = append(out, Stage{Name: name, Clusters: names, MaxConcurrency: n, RequireApproval: approval})
	}
	return out, nil
}

// concurrency resolves a maxConcurrency against a stage of size clusters:
// default 1, a percent rounded up, never below 1.
func concurrency(v *intstr.IntOrString, size int) (int, error) {
	if v == nil {
		return hubv1.DefaultMaxConcurrency, nil
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(v, size, true)
	if err != nil {
		return 0, err
	}
	if n < 1 {
		n = 1
	}
	return n, nil
}

// Decide plans the rollout. It returns an error only for a spec it cannot
// read (a stage selector or maxConcurrency that is invalid).
//
// Where the contract is silent it decides so:
//   - The rules are applied in this order: a Halted or RolledBack phase of
//     Previous for the same revision stays; a failure halts or rolls back;
//     every reachable cluster updated is Complete (even while paused); a
//     suspend or pause holds the current stage (Paused); an approval holds
//     it (WaitingForApproval); otherwise Progressing.
//   - A failed cluster is not updated, even when it is Available.
//   - Only a reachable cluster can fail its progress deadline: a deadline
//     passed while the hub could not see the cluster would make an
//     unreachable cluster hold the rollout. A failure it reported counts.
//   - An unreachable cluster is always in state Unreachable, and is not
//     counted in UpdatedClusters. While the rollout is Paused, Halted or
//     RolledBack it is given no revision it does not run: nothing starts.
//   - A failed cluster whose apply failed (not at the newest revision)
//     keeps the revision it runs when halted: the failed revision is not
//     retried.
//   - Once the newest revision is the stable one (it completed), a failure
//     there halts nothing: there is no rollout to stop and no other revision
//     to roll back to; the cluster is Failed and the phase Progressing.
//     A cluster joining then gets it at once, in any stage.
//   - Complete leaves Stage empty: no stage is in progress.
//   - Without spec.rollout a halted phase of Previous does not stay: there
//     is no halting without spec.rollout, so removing it is a way out.
func Decide(in Input) (Plan, error) {
	stages, err := Stages(in.Spec, in.Clusters)
	if err != nil {
		return Plan{}, err
	}
	d := newDecision(in, stages)
	prev := in.Previous
	switch failed := d.failed(); {
	case d.pol.gated && prev.Revision == in.Revision &&
		(prev.Phase == hubv1.RolloutHalted || prev.Phase == hubv1.RolloutRolledBack):
		d.stop(prev.Phase, prev.Stage, prev.Message)
	case d.pol.gated && len(failed) > 0 && d.stable != in.Revision:
		d.fail(failed)
	default:
		d.progress()
	}
	return d.finish(), nil
}

// Event is a rollout transition worth telling the user about.
type Event struct {
	// Type is corev1.EventTypeNormal or corev1.EventTypeWarning.
	Type string
	// Reason is one of RolloutStageStarted, RolloutWaitingForApproval,
	// RolloutHalted, RolledBack, RolloutComplete.
	Reason  string
	Message string
}

// Transitions are the events between two statuses of the same MyResource:
// only what changed, so that a decision repeated at rest records nothing.
//
// RolloutStageStarted is keyed on (revision, stage): it is recorded when a
// Progressing status names another revision or stage than prev, or when
// prev waited for the approval of that same stage. Resuming from Paused at
// the same stage is not a start, so a stage reached while the rollout was
// paused is not announced as started. RolloutWaitingForApproval is
// recorded unless prev already waited for the same (revision, stage);
// RolloutHalted, RolledBack and RolloutComplete once per revision.
func Transitions(prev, next hubv1.RolloutStatus) []Event {
	sameRevision := prev.Revision == next.Revision
	sameStage := sameRevision && prev.Stage == next.Stage
	was := func(phase hubv1.RolloutPhase) bool { return prev.Phase == phase }
	switch next.Phase {
	case hubv1.RolloutProgressing:
		if !sameStage || was(hubv1.RolloutWaitingForApproval) {
			return []Event{{Type: corev1.EventTypeNormal, Reason: hubv1.ReasonRolloutStageStarted,
				Message: fmt.Sprintf("revision %d: stage %s started", next.Revision, next.Stage)}}
		}
	case hubv1.RolloutWaitingForApproval:
		if !sameStage || !was(hubv1.RolloutWaitingForApproval) {
			return []Event{{Type: corev1.EventTypeNormal, Reason: hubv1.ReasonRolloutWaitingApprove,
				Message: fmt.Sprintf("revision %d: %s", next.Revision, next.Message)}}
		}
	case hubv1.RolloutHalted:
		if !sameRevision || !was(hubv1.RolloutHalted) {
			return []Event{{Type: corev1.EventTypeWarning, Reason: hubv1.ReasonRolloutHalted,
				Message: fmt.Sprintf("revision %d halted at stage %s: %s", next.Revision, next.Stage, next.Message)}}
		}
	case hubv1.RolloutRolledBack:
		if !sameRevision || !was(hubv1.RolloutRolledBack) {
			return []Event{{Type: corev1.EventTypeWarning, Reason: hubv1.ReasonRolledBack,
				Message: fmt.Sprintf("revision %d failed at stage %s and was rolled back to revision %d: %s",
					next.Revision, next.Stage, next.StableRevision, next.Message)}}
		}
	case hubv1.RolloutComplete:
		if !sameRevision || !was(hubv1.RolloutComplete) {
			return []Event{{Type: corev1.EventTypeNormal, Reason: hubv1.ReasonRolloutComplete,
				Message: fmt.Sprintf("revision %d is complete: %s", next.Revision, next.Message)}}
		}
	}
	return nil
}
