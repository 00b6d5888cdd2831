package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/hub/rollout"
)

// The subcommands of rollout.
const (
	rolloutStatus  = "status"
	rolloutHistory = "history"
	rolloutPause   = "pause"
	rolloutResume  = "resume"
	rolloutApprove = "approve"
	rolloutUndo    = "undo"
)

var rolloutSubcommands = []string{rolloutStatus, rolloutHistory, rolloutPause, rolloutResume, rolloutApprove, rolloutUndo}

// rolloutOptions are the flags of the rollout subcommands.
type rolloutOptions struct {
	watch      bool
	timeout    time.Duration
	revision   int64 // history --revision, undo --to-revision; 0 when unset
	stage      string
	pollPeriod time.Duration // how often status --watch reads the MyResource
}

// errRolloutFailed is a rollout that stopped on a failure (Halted or
// RolledBack): rollout status exits non-zero, as kubectl rollout status does.
var errRolloutFailed = errors.New("rollout failed")

// revisionData is a ControllerRevision's data: the rendering-relevant part of
// MyResourceSpec, with MyResourceSpec's field names.
type revisionData struct {
	Deployment hubv1.DeploymentSpec `json:"deployment"`
	Service    *hubv1.ServiceSpec   `json:"service,omitempty"`
	Overrides  []hubv1.Override     `json:"overrides,omitempty"`
}

// runRollout runs one rollout subcommand against the hub.
func runRollout(ctx context.Context, c client.Client, w io.Writer, o *options, namespace string) error {
	name := o.args[0]
	switch o.subcommand {
	case rolloutStatus:
		return rolloutStatusCmd(ctx, c, w, namespace, name, o.registryNamespace, o.rollout)
	case rolloutHistory:
		return rolloutHistoryCmd(ctx, c, w, namespace, name, o.rollout.revision)
	case rolloutPause, rolloutResume:
		return setPaused(ctx, c, w, namespace, name, o.subcommand == rolloutPause)
	case rolloutApprove:
		return approve(ctx, c, w, namespace, name, o.rollout.stage)
	default:
		return undo(ctx, c, w, namespace, name, o.rollout.revision)
	}
}

func getMyResource(ctx context.Context, c client.Client, namespace, name string) (*hubv1.MyResource, error) {
	mr := &hubv1.MyResource{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, mr); err != nil {
		return nil, fmt.Errorf("getting MyResource %s/%s: %w", namespace, name, err)
	}
	return mr, nil
}

// registryLabels reads the labels of the registry Secrets (metadata only),
// by cluster name. A stage selects on them.
func registryLabels(ctx context.Context, c client.Client, namespace string) (map[string]map[string]string, error) {
	secrets, err := registrySecrets(ctx, c, namespace)
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[string]string, len(secrets))
	for _, s := range secrets {
		out[s.Name] = s.Labels
	}
	return out, nil
}

// rolloutStatusCmd prints where the rollout stands, once or (with watch)
// at every change until it is over.
func rolloutStatusCmd(ctx context.Context, c client.Client, w io.Writer, namespace, name, registryNS string, ro rolloutOptions) error {
	if ro.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ro.timeout)
		defer cancel()
	}
	last := ""
	for {
		mr, err := getMyResource(ctx, c, namespace, name)
		if err != nil {
			if ro.watch && errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("timed out waiting for the rollout of MyResource %s/%s", namespace, name)
			}
			return err
		}
		labels, err := registryLabels(ctx, c, registryNS)
		if err != nil {
			// The cluster states still tell most of the story; stages that
			// select by label may be missing clusters.
			labels = nil
			fmt.Fprintf(w, "Warning: %v: clusters get no labels, stages that select by label may look empty\n", err)
		}
		var buf bytes.Buffer
		if err := printRolloutStatus(&buf, mr, labels); err != nil {
			return err
		}
		if out := buf.String(); out != last {
			if last != "" {
				fmt.Fprintln(w)
			}
			if _, err := io.WriteString(w, out); err != nil {
				return err
			}
			last = out
		}
		done, err := rolloutDone(mr)
		if done || !ro.watch {
			return err
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("timed out waiting for the rollout of MyResource %s/%s", namespace, name)
			}
			return ctx.Err()
		case <-time.After(ro.pollPeriod):
		}
	}
}

// rolloutDone says whether the rollout is over for status --watch, and the
// error rollout status exits with: nil when Complete (for the generation
// the spec is at), errRolloutFailed when Halted or RolledBack.
func rolloutDone(mr *hubv1.MyResource) (bool, error) {
	r := mr.Status.Rollout
	if r == nil {
		return false, nil
	}
	switch r.Phase {
	case hubv1.RolloutHalted, hubv1.RolloutRolledBack:
		return true, fmt.Errorf("%w: MyResource %s/%s revision %d is %s: %s", errRolloutFailed,
			mr.Namespace, mr.Name, r.Revision, r.Phase, oneLine(r.Message))
	case hubv1.RolloutComplete:
		// A Complete status of an older generation may be of an older
		// revision: wait until the operator has seen the spec.
		return mr.Status.ObservedGeneration >= mr.Generation, nil
	default:
		return false, nil
	}
}

// listRevisions returns the MyResource's ControllerRevisions (owned by it:
// an ownerReference with its UID), sorted by revision.
func listRevisions(ctx context.Context, c client.Client, mr *hubv1.MyResource) ([]appsv1.ControllerRevision, error) {
	var list appsv1.ControllerRevisionList
	if err := c.List(ctx, &list, client.InNamespace(mr.Namespace)); err != nil {
		return nil, fmt.Errorf("listing ControllerRevisions in namespace %s: %w", mr.Namespace, err)
	}
	owned := slices.DeleteFunc(list.Items, func(cr appsv1.ControllerRevision) bool {
		return !slices.ContainsFunc(cr.OwnerReferences, func(ref metav1.OwnerReference) bool { return ref.UID == mr.UID })
	})
	slices.SortFunc(owned, func(a, b appsv1.ControllerRevision) int {
		if a.Revision != b.Revision {
			if a.Revision < b.Revision {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return owned, nil
}

// getWithRevisions reads a MyResource and its revisions.
func getWithRevisions(ctx context.Context, c client.Client, namespace, name string) (*hubv1.MyResource, []appsv1.ControllerRevision, error) {
	mr, err := getMyResource(ctx, c, namespace, name)
	if err != nil {
		return nil, nil, err
	}
	revs, err := listRevisions(ctx, c, mr)
	return mr, revs, err
}

func findRevision(revs []appsv1.ControllerRevision, n int64) *appsv1.ControllerRevision {
	for i := range revs {
		if revs[i].Revision == n {
			return &revs[i]
		}
	}
	return nil
}

func revisionNumbers(revs []appsv1.ControllerRevision) string {
	if len(revs) == 0 {
		return "none"
	}
	nums := make([]string, len(revs))
	for i := range revs {
		nums[i] = strconv.FormatInt(revs[i].Revision, 10)
	}
	return strings.Join(nums, ", ")
}

func decodeRevision(cr *appsv1.ControllerRevision) (*revisionData, error) {
	if len(cr.Data.Raw) == 0 {
		return nil, fmt.Errorf("ControllerRevision %s has no data", cr.Name)
	}
	d := &revisionData{}
	if err := json.Unmarshal(cr.Data.Raw, d); err != nil {
		return nil, fmt.Errorf("reading ControllerRevision %s: %w", cr.Name, err)
	}
	return d, nil
}

// rolloutHistoryCmd prints the revisions of a MyResource, or one revision's data.
func rolloutHistoryCmd(ctx context.Context, c client.Client, w io.Writer, namespace, name string, revision int64) error {
	mr, revs, err := getWithRevisions(ctx, c, namespace, name)
	if err != nil {
		return err
	}
	if revision == 0 {
		return printHistory(w, mr, revs, time.Now())
	}
	cr := findRevision(revs, revision)
	if cr == nil {
		return fmt.Errorf("MyResource %s/%s has no revision %d (revisions: %s)", namespace, name, revision, revisionNumbers(revs))
	}
	return printRevision(w, mr, cr)
}

// setPaused sets spec.rollout.paused.
func setPaused(ctx context.Context, c client.Client, w io.Writer, namespace, name string, paused bool) error {
	mr, err := getMyResource(ctx, c, namespace, name)
	if err != nil {
		return err
	}
	verb := map[bool]string{true: "paused", false: "resumed"}[paused]
	if mr.Spec.Rollout == nil {
		return fmt.Errorf("MyResource %s/%s has no spec.rollout; nothing to %s", namespace, name,
			map[bool]string{true: "pause", false: "resume"}[paused])
	}
	if mr.Spec.Rollout.Paused == paused {
		fmt.Fprintf(w, "myresource.example.com/%s already %s\n", name, verb)
		return nil
	}
	patch := client.MergeFromWithOptions(mr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	mr.Spec.Rollout.Paused = paused
	if err := c.Patch(ctx, mr, patch); err != nil {
		return fmt.Errorf("setting spec.rollout.paused of MyResource %s/%s: %w", namespace, name, err)
	}
	fmt.Fprintf(w, "myresource.example.com/%s %s\n", name, verb)
	return nil
}

// stageNames are the names of the stages of mr: the spec's, then "default".
func stageNames(mr *hubv1.MyResource) []string {
	var names []string
	if mr.Spec.Rollout != nil {
		for _, st := range mr.Spec.Rollout.Stages {
			names = append(names, st.Name)
		}
	}
	return append(names, hubv1.DefaultStageName)
}

// approve sets the approval annotation for a stage of the newest revision.
func approve(ctx context.Context, c client.Client, w io.Writer, namespace, name, stage string) error {
	mr, err := getMyResource(ctx, c, namespace, name)
	if err != nil {
		return err
	}
	r := mr.Status.Rollout
	if r == nil || r.Revision == 0 {
		return fmt.Errorf("MyResource %s/%s has no rollout status yet: nothing to approve", namespace, name)
	}
	switch {
	case stage == "" && r.Phase != hubv1.RolloutWaitingForApproval:
		return fmt.Errorf("nothing of MyResource %s/%s waits for approval (rollout is %s at stage %q); name a stage with --stage to approve it ahead",
			namespace, name, cmp.Or(string(r.Phase), "Unknown"), r.Stage)
	case stage == "":
		stage = r.Stage
	case !slices.Contains(stageNames(mr), stage):
		return fmt.Errorf("MyResource %s/%s has no stage %q (stages: %s)", namespace, name, stage, strings.Join(stageNames(mr), ", "))
	}
	value := fmt.Sprintf("%d/%s", r.Revision, stage)
	if mr.Annotations[hubv1.RolloutApprovedAnnotation] == value {
		fmt.Fprintf(w, "myresource.example.com/%s stage %s of revision %d already approved\n", name, stage, r.Revision)
		return nil
	}
	patch := client.MergeFromWithOptions(mr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if mr.Annotations == nil {
		mr.Annotations = map[string]string{}
	}
	mr.Annotations[hubv1.RolloutApprovedAnnotation] = value
	if err := c.Patch(ctx, mr, patch); err != nil {
		return fmt.Errorf("approving stage %s of MyResource %s/%s: %w", stage, namespace, name, err)
	}
	fmt.Fprintf(w, "myresource.example.com/%s approved: stage %s of revision %d\n", name, stage, r.Revision)
	return nil
}

// undo writes a revision's data back into the spec, as kubectl rollout undo
// does for a Deployment. Without toRevision it is the highest revision below
// the current one.
func undo(ctx context.Context, c client.Client, w io.Writer, namespace, name string, toRevision int64) error {
	mr, revs, err := getWithRevisions(ctx, c, namespace, name)
	if err != nil {
		return err
	}
	var target *appsv1.ControllerRevision
	if toRevision != 0 {
		if target = findRevision(revs, toRevision); target == nil {
			return fmt.Errorf("MyResource %s/%s has no revision %d (revisions: %s)", namespace, name, toRevision, revisionNumbers(revs))
		}
	} else {
		current := int64(0)
		if mr.Status.Rollout != nil {
			current = mr.Status.Rollout.Revision
		}
		if current == 0 && len(revs) > 0 {
			current = revs[len(revs)-1].Revision
		}
		for i := len(revs) - 1; i >= 0; i-- {
			if revs[i].Revision < current {
				target = &revs[i]
				break
			}
		}
		if target == nil {
			return fmt.Errorf("MyResource %s/%s has no revision before revision %d to go back to (revisions: %s)",
				namespace, name, current, revisionNumbers(revs))
		}
	}
	data, err := decodeRevision(target)
	if err != nil {
		return err
	}
	patch := client.MergeFromWithOptions(mr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	mr.Spec.Deployment, mr.Spec.Service, mr.Spec.Overrides = data.Deployment, data.Service, data.Overrides
	if same, err := sameJSON(patch.Data(mr)); err != nil {
		return fmt.Errorf("computing the patch of MyResource %s/%s: %w", namespace, name, err)
	} else if same {
		fmt.Fprintf(w, "myresource.example.com/%s skipped rollback (the spec already matches revision %d)\n", name, target.Revision)
		return nil
	}
	if err := c.Patch(ctx, mr, patch); err != nil {
		return fmt.Errorf("rolling MyResource %s/%s back to revision %d: %w", namespace, name, target.Revision, err)
	}
	fmt.Fprintf(w, "myresource.example.com/%s rolled back to revision %d\n", name, target.Revision)
	return nil
}

// sameJSON reports whether a merge patch changes nothing but the
// resourceVersion it is locked on.
func sameJSON(patch []byte, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	var p map[string]any
	if err := json.Unmarshal(patch, &p); err != nil {
		return false, err
	}
	if m, ok := p["metadata"].(map[string]any); ok {
		delete(m, "resourceVersion")
		if len(m) == 0 {
			delete(p, "metadata")
		}
	}
	return len(p) == 0, nil
}

// rolloutClusters are the clusters of status.clusters with their registry
// labels (none for a cluster missing there), as the planner groups them.
func rolloutClusters(mr *hubv1.MyResource, labels map[string]map[string]string) []rollout.Cluster {
	out := make([]rollout.Cluster, 0, len(mr.Status.Clusters))
	for _, cs := range mr.Status.Clusters {
		out = append(out, rollout.Cluster{Name: cs.Name, Labels: labels[cs.Name], Revision: cs.Revision})
	}
	return out
}
