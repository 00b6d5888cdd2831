package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/hub/rollout"
)

// failureReasons are the per-cluster reasons that fail a revision there
// (DESIGN.md: Conflict, ApplyFailed, ProgressDeadlineExceeded), and the
// cluster-level ones that stall it.
var failureReasons = []string{hubv1.ReasonConflict, hubv1.ReasonApplyFailed, hubv1.ReasonProgressDeadline,
	hubv1.ReasonInvalidKubeconfig, hubv1.ReasonRolloutFailed}

// stateUnknown is a cluster's state before the operator has reported a
// rollout revision to compare it with.
const stateUnknown rollout.State = "Unknown"

// clusterState is where one cluster is in the rollout of revision, read
// from its status entry alone.
func clusterState(cs *hubv1.ClusterStatus, revision int64) rollout.State {
	applied := meta.FindStatusCondition(cs.Conditions, hubv1.ClusterConditionApplied)
	available := meta.FindStatusCondition(cs.Conditions, hubv1.ClusterConditionAvailable)
	is := func(c *metav1.Condition, status metav1.ConditionStatus, reasons ...string) bool {
		return c != nil && c.Status == status && (len(reasons) == 0 || slices.Contains(reasons, c.Reason))
	}
	switch {
	case is(applied, metav1.ConditionFalse, hubv1.ReasonClusterUnreachable) ||
		is(available, metav1.ConditionUnknown, hubv1.ReasonClusterUnreachable) ||
		is(available, metav1.ConditionFalse, hubv1.ReasonClusterUnreachable):
		return rollout.Unreachable
	case is(applied, metav1.ConditionFalse, failureReasons...) || is(available, metav1.ConditionFalse, failureReasons...):
		return rollout.Failed
	case revision == 0:
		return stateUnknown // no rollout status yet: nothing to compare with
	case cs.Revision == revision && is(available, metav1.ConditionTrue):
		return rollout.Updated
	case cs.Revision == revision:
		return rollout.Updating
	default:
		return rollout.Waiting
	}
}

// printRolloutStatus writes where the rollout of mr stands: the header of
// status.rollout, then each stage with its clusters. labels are the
// clusters' registry labels, by name.
func printRolloutStatus(w io.Writer, mr *hubv1.MyResource, labels map[string]map[string]string) error {
	r := mr.Status.Rollout
	if r == nil {
		r = &hubv1.RolloutStatus{}
	}
	t := newTable(w)
	fmt.Fprintf(t, "Name:\t%s\n", mr.Name)
	fmt.Fprintf(t, "Namespace:\t%s\n", mr.Namespace)
	if mr.Status.ObservedGeneration != mr.Generation {
		fmt.Fprintf(t, "Generation:\t%d (status is of generation %d)\n", mr.Generation, mr.Status.ObservedGeneration)
	}
	if mr.Spec.Rollout == nil {
		fmt.Fprintf(t, "Strategy:\tall at once (no spec.rollout)\n")
	} else if mr.Spec.Rollout.Paused {
		fmt.Fprintf(t, "Strategy:\tstaged, paused (spec.rollout.paused)\n")
	}
	fmt.Fprintf(t, "Revision:\t%s\n", revisionCell(r.Revision))
	fmt.Fprintf(t, "Stable revision:\t%s\n", revisionCell(r.StableRevision))
	fmt.Fprintf(t, "Phase:\t%s\n", cmp.Or(oneLine(string(r.Phase)), "Unknown (no rollout status yet)"))
	fmt.Fprintf(t, "Stage:\t%s\n", cmp.Or(oneLine(r.Stage), none))
	fmt.Fprintf(t, "Updated:\t%d/%d clusters\n", r.UpdatedClusters, mr.Status.SelectedClusters)
	fmt.Fprintf(t, "Message:\t%s\n", cmp.Or(oneLine(r.Message), none))
	if err := t.Flush(); err != nil {
		return fmt.Errorf("writing rollout status: %w", err)
	}

	stages, err := rollout.Stages(mr.Spec.Rollout, rolloutClusters(mr, labels))
	if err != nil {
		return fmt.Errorf("grouping the clusters of MyResource %s/%s into stages: %w", mr.Namespace, mr.Name, err)
	}
	byName := make(map[string]*hubv1.ClusterStatus, len(mr.Status.Clusters))
	for i := range mr.Status.Clusters {
		byName[mr.Status.Clusters[i].Name] = &mr.Status.Clusters[i]
	}
	fmt.Fprintln(w)
	t = newTable(w)
	fmt.Fprintln(t, "STAGE\tMAX CONCURRENCY\tAPPROVAL\tCLUSTER\tREVISION\tSTATE\tMESSAGE")
	for _, st := range stages {
		stage := oneLine(st.Name)
		if st.Name == r.Stage {
			stage = "> " + stage // the stage the rollout is at
		}
		head := fmt.Sprintf("%s\t%d\t%s", stage, st.MaxConcurrency, approvalCell(mr, st, r.Revision))
		if len(st.Clusters) == 0 {
			fmt.Fprintf(t, "%s\t%s\t\t\t\n", head, none)
			continue
		}
		for i, name := range st.Clusters {
			if i > 0 {
				head = "\t\t"
			}
			cs := byName[name]
			state := clusterState(cs, r.Revision)
			msg := ""
			if state == rollout.Updating || state == rollout.Failed || state == rollout.Unreachable {
				msg = clusterMessage(meta.FindStatusCondition(cs.Conditions, hubv1.ClusterConditionApplied),
					meta.FindStatusCondition(cs.Conditions, hubv1.ClusterConditionAvailable))
			}
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\n", head, oneLine(name), revisionCell(cs.Revision), state, msg)
		}
	}
	if err := t.Flush(); err != nil {
		return fmt.Errorf("writing stage table: %w", err)
	}
	return nil
}

// approvalCell says whether a stage needs approval and whether the
// annotation grants it for this revision.
func approvalCell(mr *hubv1.MyResource, st rollout.Stage, revision int64) string {
	switch {
	case !st.RequireApproval:
		return "-"
	case mr.Annotations[hubv1.RolloutApprovedAnnotation] == fmt.Sprintf("%d/%s", revision, st.Name):
		return "approved"
	default:
		return "required"
	}
}

func revisionCell(n int64) string {
	if n == 0 {
		return none
	}
	return strconv.FormatInt(n, 10)
}

// printHistory writes one line per revision, oldest first, with how many
// clusters run it and a one-line summary of what it renders.
func printHistory(w io.Writer, mr *hubv1.MyResource, revs []appsv1.ControllerRevision, now time.Time) error {
	if len(revs) == 0 {
		fmt.Fprintf(w, "No revisions of MyResource %s/%s on the hub.\n", mr.Namespace, mr.Name)
		return nil
	}
	running := map[int64]int{}
	for _, cs := range mr.Status.Clusters {
		running[cs.Revision]++
	}
	t := newTable(w)
	fmt.Fprintln(t, "REVISION\tCREATED\tCLUSTERS\tFORMERLY\tCHANGE")
	for i := range revs {
		cr := &revs[i]
		fmt.Fprintf(t, "%s\t%s\t%d\t%s\t%s\n", revisionLabel(mr, cr.Revision), duration.HumanDuration(now.Sub(cr.CreationTimestamp.Time)),
			running[cr.Revision], cmp.Or(oneLine(cr.Annotations[hubv1.RevisionHistoryAnnotation]), none), changeSummary(cr))
	}
	if err := t.Flush(); err != nil {
		return fmt.Errorf("writing history: %w", err)
	}
	return nil
}

// revisionLabel is a revision number, marked when it is the current or the
// stable one.
func revisionLabel(mr *hubv1.MyResource, n int64) string {
	r := mr.Status.Rollout
	if r == nil {
		return strconv.FormatInt(n, 10)
	}
	var marks []string
	if n == r.Revision {
		marks = append(marks, "current")
	}
	if n == r.StableRevision {
		marks = append(marks, "stable")
	}
	if len(marks) == 0 {
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%d (%s)", n, strings.Join(marks, ", "))
}

// changeSummary is a revision in one line: its first container's image and
// how many overrides it has.
func changeSummary(cr *appsv1.ControllerRevision) string {
	d, err := decodeRevision(cr)
	if err != nil {
		return "<unreadable data>"
	}
	var parts []string
	if cs := d.Deployment.Template.Spec.Containers; len(cs) > 0 {
		parts = append(parts, oneLine(cs[0].Name+"="+cs[0].Image))
		if len(cs) > 1 {
			parts = append(parts, fmt.Sprintf("+%d %s", len(cs)-1, plural(len(cs)-1, "container")))
		}
	}
	if n := len(d.Overrides); n > 0 {
		parts = append(parts, fmt.Sprintf("+%d %s", n, plural(n, "override")))
	}
	if len(parts) == 0 {
		return none
	}
	return strings.Join(parts, " ")
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// printRevision writes one revision's data as YAML, under a comment line
// saying which revision it is.
func printRevision(w io.Writer, mr *hubv1.MyResource, cr *appsv1.ControllerRevision) error {
	if _, err := decodeRevision(cr); err != nil {
		return err
	}
	// Re-indent through a generic value so the YAML keeps every field the
	// operator wrote, even one this plugin does not know.
	var v any
	if err := json.Unmarshal(cr.Data.Raw, &v); err != nil {
		return fmt.Errorf("reading ControllerRevision %s: %w", cr.Name, err)
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("writing revision %d as YAML: %w", cr.Revision, err)
	}
	header := fmt.Sprintf("# MyResource %s/%s revision %s", mr.Namespace, mr.Name, revisionLabel(mr, cr.Revision))
	if h := cr.Annotations[hubv1.RevisionHistoryAnnotation]; h != "" {
		header += ", formerly " + oneLine(h)
	}
	_, err = fmt.Fprintf(w, "%s\n%s", header, out)
	return err
}
