package rollout

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	hubv1 "example.com/hub-operator/api/v1"
)

// maxMessage bounds status.rollout.message: it names failed clusters with
// their members' own messages, which are not ours to bound.
const maxMessage = 1024

// policy is what spec.rollout, or its absence, makes of the rules.
type policy struct {
	// gated is true with spec.rollout: failures halt or roll back, and a
	// cluster joining mid-rollout gets the stable revision first. Without
	// it every cluster gets the newest revision at once.
	gated    bool
	minReady time.Duration
	// deadline is 0 without spec.rollout: then no cluster fails by time.
	deadline  time.Duration
	onFailure hubv1.RolloutFailurePolicy
	paused    bool
}

func policyOf(spec *hubv1.RolloutSpec) policy {
	if spec == nil {
		return policy{}
	}
	deadline := int32(hubv1.DefaultProgressDeadlineSeconds)
	if spec.ProgressDeadlineSeconds != nil {
		deadline = *spec.ProgressDeadlineSeconds
	}
	return policy{
		gated:     true,
		minReady:  time.Duration(spec.MinReadySeconds) * time.Second,
		deadline:  time.Duration(deadline) * time.Second,
		onFailure: spec.OnFailure,
		paused:    spec.Paused,
	}
}

// member is one cluster judged against the newest revision.
type member struct {
	Cluster
	stage           int // index into decision.stages
	atTarget        bool
	updated, failed bool
	reason, detail  string // why it failed
	stageName       string
}

// state is the state of a cluster at the newest revision.
func (m *member) state() State {
	switch {
	case m.failed:
		return Failed
	case m.updated:
		return Updated
	}
	return Updating
}

// decision carries one Decide from its inputs to the plan.
type decision struct {
	in      Input
	pol     policy
	target  int64
	stable  int64
	stages  []Stage
	members map[string]*member
	plan    Plan
}

func newDecision(in Input, stages []Stage) *decision {
	d := &decision{
		in: in, pol: policyOf(in.Spec), target: in.Revision, stable: in.Previous.StableRevision,
		stages: stages, members: make(map[string]*member, len(in.Clusters)),
		plan: Plan{Clusters: make(map[string]ClusterPlan, len(in.Clusters))},
	}
	stageOf := make(map[string]int, len(in.Clusters))
	for i, st := range stages {
		for _, name := range st.Clusters {
			stageOf[name] = i
		}
	}
	for _, c := range in.Clusters {
		d.members[c.Name] = d.judge(c, stageOf[c.Name])
	}
	return d
}

// judge classifies a cluster as updated, failed or neither at the newest
// revision.
func (d *decision) judge(c Cluster, stage int) *member {
	m := &member{Cluster: c, stage: stage, atTarget: c.Revision == d.target, stageName: d.stages[stage].Name}
	switch {
	case c.Failure != "" && c.FailedRevision == d.target:
		m.failed, m.reason, m.detail = true, c.Failure, c.Message
	case d.overdue(c):
		m.failed, m.reason = true, hubv1.ReasonProgressDeadline
		m.detail = fmt.Sprintf("not Available %s after revision %d was applied", d.pol.deadline, d.target)
	case m.atTarget && !c.AvailableSince.IsZero() && d.in.Now.Sub(c.AvailableSince) >= d.pol.minReady:
		m.updated = true
	}
	return m
}

func (d *decision) overdue(c Cluster) bool {
	return d.pol.deadline > 0 && c.Reachable && c.Revision == d.target &&
		c.AvailableSince.IsZero() && !c.AppliedAt.IsZero() && d.in.Now.Sub(c.AppliedAt) >= d.pol.deadline
}

// failed are the clusters where the newest revision failed, in stage order
// and then by name.
func (d *decision) failed() []*member {
	var out []*member
	for _, st := range d.stages {
		for _, name := range st.Clusters {
			if m := d.members[name]; m.failed {
				out = append(out, m)
			}
		}
	}
	return out
}

// keep is the revision a cluster the rollout has not reached runs on: its
// own, or the stable one when it has none yet (0 when there is none).
func (d *decision) keep(m *member) int64 {
	if m.Revision != 0 {
		return m.Revision
	}
	return d.stable
}

// fail stops the rollout on the failed clusters, rolling back when asked
// and there is a stable revision to roll back to.
func (d *decision) fail(failed []*member) {
	var suffix string
	phase := hubv1.RolloutHalted
	switch {
	case d.pol.onFailure == hubv1.RolloutRollback && d.stable != 0:
		phase, suffix = hubv1.RolloutRolledBack, fmt.Sprintf("; rolled back to revision %d", d.stable)
	case d.pol.onFailure == hubv1.RolloutRollback:
		suffix = "; halted: there is no stable revision to roll back to (none has reached every cluster yet)"
	default:
		suffix = "; halted (onFailure Pause)"
	}
	parts := make([]string, 0, len(failed))
	for _, m := range failed {
		why := m.reason
		if m.detail != "" {
			why += ": " + m.detail
		}
		parts = append(parts, fmt.Sprintf("cluster %s (stage %s): %s", m.Name, m.stageName, why))
	}
	text := fmt.Sprintf("revision %d failed in %s", d.target, strings.Join(parts, "; in "))
	d.stop(phase, failed[0].stageName, truncate(text, maxMessage-len(suffix))+suffix)
}

// stop assigns revisions for a Halted or RolledBack rollout: nothing more
// starts the newest revision; on rollback the clusters that got it (or
// failed it) are given the stable revision again.
func (d *decision) stop(phase hubv1.RolloutPhase, stage, message string) {
	rollback := phase == hubv1.RolloutRolledBack && d.stable != 0
	for name, m := range d.members {
		p := ClusterPlan{Revision: d.keep(m), Stage: m.stageName, State: Waiting}
		switch {
		case rollback && (m.atTarget || m.failed):
			p.Revision, p.State = d.stable, RolledBack
		case m.atTarget:
			p.Revision, p.State = d.target, m.state()
		}
		if m.failed {
			p.State = Failed
		}
		if !m.Reachable {
			p.State = Unreachable
		}
		d.plan.Clusters[name] = p
	}
	d.plan.Status.Phase, d.plan.Status.Stage, d.plan.Status.Message = phase, stage, message
}

// progress moves the rollout on through the current stage: the first one
// with a reachable cluster that is not updated.
func (d *decision) progress() {
	if d.pol.gated && d.stable == d.target {
		// The newest revision reached every cluster once: its rollout is
		// over, and a cluster that flaps later is the clusters' health
		// (Ready, Degraded), not a rollout going back a stage. One that
		// runs an older revision (it answered again) is moved on in its
		// stage's concurrency, unless nothing may start.
		phase, _ := d.hold(Stage{})
		for _, st := range d.stages {
			d.runStage(st, true, phase == hubv1.RolloutProgressing)
		}
		d.complete()
		return
	}
	cur := d.current()
	if cur < 0 {
		for _, st := range d.stages {
			d.runStage(st, true, false)
		}
		d.complete()
		return
	}
	phase, why := d.hold(d.stages[cur])
	for i, st := range d.stages {
		// Held by a pause nothing starts, not even an unreachable cluster
		// when it answers.
		reached := phase != hubv1.RolloutPaused && (i < cur || d.started(st))
		d.runStage(st, reached, i == cur && phase == hubv1.RolloutProgressing)
	}
	summary := d.summary(d.stages[cur])
	if why != "" {
		summary = why + "; " + summary
	}
	d.plan.Status.Phase, d.plan.Status.Stage, d.plan.Status.Message = phase, d.stages[cur].Name, summary
}

// current is the first stage with a reachable cluster that is not updated.
// A stage the rollout of this revision has already passed is not taken up
// again because one of its clusters, at the newest revision, is briefly not
// Available (a pod restarting): it counted as updated once, and the stage
// is done. A cluster there that does not run the newest revision (one that
// joined, or answered again) does take the rollout back to its stage.
func (d *decision) current() int {
	passed := d.passed()
	for i, st := range d.stages {
		for _, name := range st.Clusters {
			if m := d.members[name]; m.Reachable && !m.updated && (i >= passed || !m.atTarget) {
				return i
			}
		}
	}
	return -1
}

// passed is the index of the stage the last decision for this revision was
// at: every stage before it was done then.
func (d *decision) passed() int {
	prev := d.in.Previous
	if prev.Revision != d.target || prev.Phase == hubv1.RolloutComplete || prev.Stage == "" {
		return 0
	}
	for i, st := range d.stages {
		if st.Name == prev.Stage {
			return i
		}
	}
	return 0
}

// started: a cluster of the stage runs the newest revision.
func (d *decision) started(st Stage) bool {
	return slices.ContainsFunc(st.Clusters, func(name string) bool { return d.members[name].atTarget })
}

// hold says why the current stage may not start clusters: the phase
// (Progressing when nothing holds it) and what to do about it.
func (d *decision) hold(st Stage) (hubv1.RolloutPhase, string) {
	approval := fmt.Sprintf("%d/%s", d.target, st.Name)
	switch {
	case d.in.Suspended:
		return hubv1.RolloutPaused, fmt.Sprintf("spec.suspend is true: no cluster starts revision %d", d.target)
	case d.pol.paused:
		return hubv1.RolloutPaused, fmt.Sprintf("spec.rollout.paused is true: no further cluster starts revision %d", d.target)
	case st.RequireApproval && !d.started(st) && d.in.Approval != approval:
		return hubv1.RolloutWaitingForApproval, fmt.Sprintf("stage %s waits for approval: annotate the MyResource %s=%s",
			st.Name, hubv1.RolloutApprovedAnnotation, approval)
	}
	return hubv1.RolloutProgressing, ""
}

// runStage assigns the revisions of one stage. When open, its clusters
// start the newest revision in name order while fewer than maxConcurrency
// are updating; reached gives an unreachable cluster the newest revision
// for when it answers.
func (d *decision) runStage(st Stage, reached, open bool) {
	busy := 0
	for _, name := range st.Clusters {
		if m := d.members[name]; m.Reachable && m.atTarget && !m.updated {
			busy++
		}
	}
	for _, name := range st.Clusters {
		m := d.members[name]
		p := ClusterPlan{Revision: d.keep(m), Stage: st.Name}
		p.State = d.waiting(p.Revision)
		switch {
		case !m.Reachable:
			continue // after the stage's starts: they reach the stage too
		case m.atTarget:
			p.Revision, p.State = d.target, m.state()
		case open && d.joining(m):
			p.Revision = d.stable // the stable revision first, the newest one in its turn
			p.State = d.waiting(p.Revision)
		case open && busy < st.MaxConcurrency:
			p.Revision, p.State = d.target, m.state()
			busy++
		}
		d.plan.Clusters[name] = p
		reached = reached || (open && p.Revision == d.target)
	}
	for _, name := range st.Clusters {
		if m := d.members[name]; !m.Reachable {
			p := ClusterPlan{Revision: d.keep(m), Stage: st.Name, State: Unreachable}
			if m.atTarget || reached {
				p.Revision = d.target
			}
			d.plan.Clusters[name] = p
		}
	}
}

// joining: a cluster with nothing of this MyResource yet gets the stable
// revision first, as DESIGN.md has a cluster joining mid-rollout. Once the
// newest revision is the stable one it is known good and a joiner gets it
// at once, not in its stage's turn.
func (d *decision) joining(m *member) bool {
	return d.pol.gated && m.Revision == 0 && d.stable != 0
}

// waiting is the state of a reachable cluster the rollout has not reached
// that is given rev: Updating when rev is the newest revision (a joiner
// given the stable revision once it is the newest).
func (d *decision) waiting(rev int64) State {
	if rev == d.target {
		return Updating
	}
	return Waiting
}

func (d *decision) summary(st Stage) string {
	var updated, updating, failing, unreachable int
	for _, name := range st.Clusters {
		p := d.plan.Clusters[name]
		switch p.State {
		case Unreachable:
			unreachable++
		case Updated:
			updated++
		case Updating:
			updating++
		case Failed:
			failing++
		}
	}
	s := fmt.Sprintf("stage %s: %d/%d clusters updated, %d updating", st.Name, updated, len(st.Clusters), updating)
	if failing > 0 {
		s += fmt.Sprintf(", %d failing", failing)
	}
	if unreachable > 0 {
		s += fmt.Sprintf(", %d unreachable", unreachable)
	}
	return s
}

func (d *decision) complete() {
	var unreachable []string
	behind := 0
	for _, m := range d.members {
		switch {
		case !m.Reachable:
			unreachable = append(unreachable, m.Name)
		case !m.updated:
			behind++
		}
	}
	n := len(d.members)
	msg := fmt.Sprintf("revision %d runs in all %d clusters", d.target, n)
	switch {
	case behind > 0:
		msg = fmt.Sprintf("revision %d reached every cluster; %d of %d are not updated now (see status.clusters)", d.target, behind, n)
	case n == 0:
		msg = fmt.Sprintf("revision %d: no cluster is selected", d.target)
	case len(unreachable) > 0:
		slices.Sort(unreachable)
		msg = truncate(fmt.Sprintf("revision %d runs in all %d reachable clusters; unreachable, it gets there when they answer: %s",
			d.target, n-len(unreachable), strings.Join(unreachable, ", ")), maxMessage)
	}
	d.plan.Status.Phase, d.plan.Status.Message = hubv1.RolloutComplete, msg
}

// finish fills in what every phase reports.
func (d *decision) finish() Plan {
	st := &d.plan.Status
	st.Revision, st.StableRevision = d.target, d.stable
	if st.Phase == hubv1.RolloutComplete {
		st.StableRevision = d.target
	}
	for _, m := range d.members {
		if m.Reachable && m.updated {
			st.UpdatedClusters++
		}
	}
	d.plan.RequeueAfter = d.requeue()
	return d.plan
}

// requeue is when the soonest time gate opens: a cluster's minReadySeconds
// passed, or its progress deadline reached.
func (d *decision) requeue() time.Duration {
	switch d.plan.Status.Phase {
	case hubv1.RolloutComplete, hubv1.RolloutHalted, hubv1.RolloutRolledBack:
		return 0
	}
	var soonest time.Duration
	for _, m := range d.members {
		if !m.Reachable || !m.atTarget || m.updated || m.failed {
			continue
		}
		var left time.Duration
		switch {
		case !m.AvailableSince.IsZero():
			left = m.AvailableSince.Add(d.pol.minReady).Sub(d.in.Now)
		case !m.AppliedAt.IsZero() && d.pol.deadline > 0:
			left = m.AppliedAt.Add(d.pol.deadline).Sub(d.in.Now)
		}
		if left > 0 && (soonest == 0 || left < soonest) {
			soonest = left
		}
	}
	return soonest
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	const mark = "…"
	if len(s) <= n {
		return s
	}
	cut := max(n-len(mark), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
