package main

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	hubv1 "example.com/hub-operator/api/v1"
)

// maxEvents is how many of a MyResource's events status shows: enough for
// the story of the last rollout, few enough to keep the table on screen.
const maxEvents = 10

// none marks an empty cell, as kubectl does.
const none = "<none>"

// table aligns tab-separated cells like kubectl get does, without the
// trailing blanks tabwriter leaves after an empty last cell.
type table struct {
	w   io.Writer
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

func newTable(w io.Writer) *table {
	t := &table{w: w}
	// kubectl's table settings, so the output sits well next to kubectl get.
	t.tw = tabwriter.NewWriter(&t.buf, 6, 4, 3, ' ', 0)
	return t
}

func (t *table) Write(p []byte) (int, error) { return t.tw.Write(p) }

// Flush writes the aligned table to the underlying writer.
func (t *table) Flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(t.buf.String()) {
		if _, err := io.WriteString(t.w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	t.buf.Reset()
	return nil
}

// printStatus writes the status of mr and its most recent events (newest
// last), with ages relative to now.
func printStatus(w io.Writer, mr *hubv1.MyResource, events []eventsv1.Event, now time.Time) error {
	t := newTable(w)
	fmt.Fprintf(t, "Name:\t%s\n", mr.Name)
	fmt.Fprintf(t, "Namespace:\t%s\n", mr.Namespace)
	if mr.Status.ObservedGeneration != mr.Generation {
		fmt.Fprintf(t, "Generation:\t%d (status is of generation %d)\n", mr.Generation, mr.Status.ObservedGeneration)
	}
	for _, typ := range []string{hubv1.ConditionReady, hubv1.ConditionDegraded} {
		fmt.Fprintf(t, "%s:\t%s\n", typ, conditionSummary(meta.FindStatusCondition(mr.Status.Conditions, typ)))
	}
	fmt.Fprintf(t, "Clusters:\t%d/%d ready\n", mr.Status.ReadyClusters, mr.Status.SelectedClusters)
	if err := t.Flush(); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}

	fmt.Fprintln(w)
	if len(mr.Status.Clusters) == 0 {
		fmt.Fprintln(w, "No clusters in the status.")
	} else {
		t = newTable(w)
		fmt.Fprintln(t, "CLUSTER\tAPPLIED\tAVAILABLE\tREADY/DESIRED\tMESSAGE")
		for i := range mr.Status.Clusters {
			c := &mr.Status.Clusters[i]
			applied := meta.FindStatusCondition(c.Conditions, hubv1.ClusterConditionApplied)
			available := meta.FindStatusCondition(c.Conditions, hubv1.ClusterConditionAvailable)
			fmt.Fprintf(t, "%s\t%s\t%s\t%d/%d\t%s\n", oneLine(c.Name), conditionCell(applied), conditionCell(available),
				c.ReadyReplicas, c.Replicas, clusterMessage(applied, available))
		}
		if err := t.Flush(); err != nil {
			return fmt.Errorf("writing cluster table: %w", err)
		}
	}

	fmt.Fprintln(w)
	recent := recentEvents(events)
	if len(recent) == 0 {
		fmt.Fprintln(w, "Events: <none>")
		return nil
	}
	fmt.Fprintln(w, "Events:")
	t = newTable(w)
	fmt.Fprintln(t, "LAST SEEN\tTYPE\tREASON\tMESSAGE")
	for i := range recent {
		e := &recent[i]
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\n", eventAge(e, now), oneLine(e.Type), oneLine(e.Reason), oneLine(e.Note))
	}
	if err := t.Flush(); err != nil {
		return fmt.Errorf("writing events: %w", err)
	}
	return nil
}

// conditionSummary is one line for an aggregate condition: status, reason, message.
func conditionSummary(c *metav1.Condition) string {
	if c == nil {
		return "Unknown (no status yet)"
	}
	s := fmt.Sprintf("%s (%s)", c.Status, oneLine(c.Reason))
	if c.Message != "" {
		s += " " + oneLine(c.Message)
	}
	return s
}

// conditionCell is a per-cluster condition's status, with its reason when
// it is not True: the reason is what a person acts on.
func conditionCell(c *metav1.Condition) string {
	switch {
	case c == nil:
		return string(metav1.ConditionUnknown)
	case c.Status == metav1.ConditionTrue:
		return string(c.Status)
	default:
		return fmt.Sprintf("%s (%s)", c.Status, oneLine(c.Reason))
	}
}

// clusterMessage is the message that explains a cluster's state: the failing
// condition's (Applied first: nothing is available that was not applied),
// else Available's.
func clusterMessage(applied, available *metav1.Condition) string {
	c := available
	if applied != nil && applied.Status != metav1.ConditionTrue {
		c = applied
	}
	if c == nil || c.Message == "" {
		return ""
	}
	return oneLine(c.Message)
}

// recentEvents returns the maxEvents most recent events, oldest first.
func recentEvents(events []eventsv1.Event) []eventsv1.Event {
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, func(a, b eventsv1.Event) int {
		return cmp.Or(lastSeen(&a).Compare(lastSeen(&b)), strings.Compare(a.Name, b.Name))
	})
	return sorted[max(0, len(sorted)-maxEvents):]
}

// lastSeen is when the event last happened, whichever API wrote it.
func lastSeen(e *eventsv1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.DeprecatedLastTimestamp.IsZero():
		return e.DeprecatedLastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	default:
		return e.CreationTimestamp.Time
	}
}

// eventAge is like kubectl describe's: "5m", or "5m (x3 over 20m)" for an
// event that happened more than once.
func eventAge(e *eventsv1.Event, now time.Time) string {
	age := duration.HumanDuration(now.Sub(lastSeen(e)))
	count := e.DeprecatedCount
	if e.Series != nil {
		count = e.Series.Count
	}
	if count <= 1 {
		return age
	}
	first := e.EventTime.Time
	if first.IsZero() {
		first = e.DeprecatedFirstTimestamp.Time
	}
	if first.IsZero() {
		return fmt.Sprintf("%s (x%d)", age, count)
	}
	return fmt.Sprintf("%s (x%d over %s)", age, count, duration.HumanDuration(now.Sub(first)))
}

// printClusters writes one line per registry Secret, sorted by name: the
// health the operator recorded in its annotations and the cluster's labels.
// It takes metadata only; a Secret's data is never needed.
func printClusters(w io.Writer, secrets []metav1.PartialObjectMetadata, now time.Time) error {
	sorted := slices.Clone(secrets)
	slices.SortFunc(sorted, func(a, b metav1.PartialObjectMetadata) int { return strings.Compare(a.Name, b.Name) })
	if len(sorted) == 0 {
		fmt.Fprintln(w, "No clusters registered.")
		return nil
	}
	t := newTable(w)
	fmt.Fprintln(t, "CLUSTER\tSTATE\tREASON\tLAST TRANSITION\tLABELS\tMESSAGE")
	for i := range sorted {
		s := &sorted[i]
		a := s.Annotations
		state := cmp.Or(oneLine(a[hubv1.ClusterStateAnnotation]), "Unknown")
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\n", oneLine(s.Name), state,
			cmp.Or(oneLine(a[hubv1.ClusterReasonAnnotation]), none),
			transitionAge(a[hubv1.ClusterLastTransitionAnnotation], now),
			clusterLabels(s.Labels), oneLine(a[hubv1.ClusterMessageAnnotation]))
	}
	if err := t.Flush(); err != nil {
		return fmt.Errorf("writing cluster table: %w", err)
	}
	return nil
}

func transitionAge(value string, now time.Time) string {
	if value == "" {
		return none
	}
	at, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return "<invalid>"
	}
	return duration.HumanDuration(now.Sub(at))
}

// clusterLabels lists a cluster's labels as k=v, sorted, without the
// registry label that every registered cluster carries.
func clusterLabels(labels map[string]string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if k != hubv1.MemberClusterLabel {
			out = append(out, oneLine(k+"="+labels[k]))
		}
	}
	if len(out) == 0 {
		return none
	}
	return strings.Join(out, ",")
}

// oneLine keeps a table cell on one line and the terminal safe: messages and
// annotations are written by others and may hold newlines, tabs (which would
// break the columns) or escape sequences.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
