package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	hubv1 "example.com/hub-operator/api/v1"
)

// Revisions are kept as a DaemonSet keeps them: one apps/v1
// ControllerRevision per distinct rendering-relevant spec, named
// <myresource>-<hash of the data>, labelled with that hash, numbered 1, 2,
// 3, ... in .revision. A spec brought back to an older revision's (an undo)
// renumbers that revision as the newest and keeps its old numbers in an
// annotation, as a Deployment does with its ReplicaSets, so that clusters
// that still carry an old number are known to run it.

// revisionHashLabel is the hash of a ControllerRevision's data, as the
// DaemonSet controller labels its own.
const revisionHashLabel = appsv1.ControllerRevisionHashLabelKey

// revisionSpec is the rendering-relevant part of a MyResource's spec: what
// a revision holds. Its JSON names are the spec's.
type revisionSpec struct {
	Deployment hubv1.DeploymentSpec `json:"deployment"`
	Service    *hubv1.ServiceSpec   `json:"service,omitempty"`
	Overrides  []hubv1.Override     `json:"overrides,omitempty"`
}

// revision is one revision of a MyResource.
type revision struct {
	number int64
	// also are the numbers it had before it was renumbered.
	also []int64
	spec revisionSpec
	cr   *appsv1.ControllerRevision
}

// history is a MyResource's revisions, the newest (the spec's) among them.
type history struct {
	current *revision
	// byNumber maps every number a revision has or had to it.
	byNumber map[int64]*revision
	all      []*revision // ascending by number
}

// RevisionCacheByObject is the hub cache's view of ControllerRevisions:
// only the operator's, without managedFields.
func RevisionCacheByObject() map[client.Object]cache.ByObject {
	return map[client.Object]cache.ByObject{
		&appsv1.ControllerRevision{}: {
			Label:     labels.SelectorFromSet(labels.Set{hubv1.ManagedByLabel: hubv1.ManagedByValue}),
			Transform: cache.TransformStripManagedFields(),
		},
	}
}

// syncRevisions makes the MyResource's current spec its newest revision,
// renumbering a ControllerRevision when an older one holds it, and trims the
// history to spec.revisionHistoryLimit, keeping every revision a cluster
// still runs. A spec no revision holds yet becomes the newest revision at
// once, and record writes its ControllerRevision (and then trims): the
// caller runs it while the members get the revision (see recordRevision).
// record is nil when there is nothing to write.
func (r *Reconciler) syncRevisions(ctx context.Context, mr *hubv1.MyResource) (_ *history, record func(context.Context) error, _ error) {
	h, err := r.listRevisions(ctx, mr)
	if err != nil {
		return nil, nil, err
	}
	spec := specOf(mr)
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, nil, err
	}
	hash := revisionHash(data)
	newest := int64(0)
	if n := len(h.all); n > 0 {
		newest = h.all[n-1].number
	}
	for _, rev := range h.all {
		if rev.cr.Labels[revisionHashLabel] != hash {
			continue
		}
		if rev.number != newest {
			if err := r.renumber(ctx, h, rev, newest+1); err != nil {
				return nil, nil, err
			}
		}
		h.current = rev
		return h, nil, r.trimRevisions(ctx, mr, h)
	}
	rev, err := r.newRevision(mr, spec, data, hash, newest+1)
	if err != nil {
		return nil, nil, err
	}
	h.add(rev)
	h.current = rev
	return h, func(ctx context.Context) error {
		if err := r.createRevision(ctx, mr, rev); err != nil {
			return err
		}
		return r.trimRevisions(ctx, mr, h)
	}, nil
}

// recordRevision starts record, when there is one, and returns what waits
// for it. A new revision's number and data are known before its
// ControllerRevision exists, and nothing the members get depends on that
// write: written beside the fan-out, it stays out of the distribution's
// way (a hub round trip in front of every member of every change, where
// the finalizer of a create is the only other). Its failure fails the
// reconcile, which retries: the members already run the revision by its
// number, as after any failure between the two.
func recordRevision(ctx context.Context, record func(context.Context) error) (wait func() error) {
	if record == nil {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() { done <- record(ctx) }()
	return func() error { return <-done }
}

func specOf(mr *hubv1.MyResource) revisionSpec {
	return revisionSpec{Deployment: mr.Spec.Deployment, Service: mr.Spec.Service, Overrides: mr.Spec.Overrides}
}

func revisionHash(data []byte) string {
	h := fnv.New32a()
	_, _ = h.Write(data)
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// listRevisions reads the MyResource's ControllerRevisions from the cache.
func (r *Reconciler) listRevisions(ctx context.Context, mr *hubv1.MyResource) (*history, error) {
	var list appsv1.ControllerRevisionList
	if err := r.Hub.List(ctx, &list, client.InNamespace(mr.Namespace), client.MatchingLabels{
		hubv1.ManagedByLabel: hubv1.ManagedByValue, hubv1.OwnerNameLabel: mr.Name,
	}); err != nil {
		return nil, fmt.Errorf("listing the revisions of MyResource %s/%s: %w", mr.Namespace, mr.Name, err)
	}
	h := &history{byNumber: map[int64]*revision{}}
	for i := range list.Items {
		cr := &list.Items[i]
		if !metav1.IsControlledBy(cr, mr) {
			continue // a MyResource of the same name that was deleted and created again
		}
		rev := &revision{number: cr.Revision, cr: cr, also: historyNumbers(cr)}
		if err := json.Unmarshal(cr.Data.Raw, &rev.spec); err != nil {
			return nil, fmt.Errorf("reading revision %d of MyResource %s/%s (ControllerRevision %s): %w", cr.Revision, mr.Namespace, mr.Name, cr.Name, err)
		}
		h.add(rev)
	}
	return h, nil
}

func (h *history) add(rev *revision) {
	h.all = append(h.all, rev)
	slices.SortFunc(h.all, func(a, b *revision) int { return int(a.number - b.number) })
	h.byNumber[rev.number] = rev
	for _, n := range rev.also {
		if _, taken := h.byNumber[n]; !taken {
			h.byNumber[n] = rev
		}
	}
}

// canonical maps a revision number a cluster reports to the number of the
// revision it is now (itself, unless that revision was renumbered); 0 when
// no such revision is known.
func (h *history) canonical(n int64) int64 {
	if rev, ok := h.byNumber[n]; ok {
		return rev.number
	}
	return 0
}

func historyNumbers(cr *appsv1.ControllerRevision) []int64 {
	var out []int64
	for _, f := range strings.Split(cr.Annotations[hubv1.RevisionHistoryAnnotation], ",") {
		if n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// newRevision is revision number of mr, with its ControllerRevision not
// written yet.
func (r *Reconciler) newRevision(mr *hubv1.MyResource, spec revisionSpec, data []byte, hash string, number int64) (*revision, error) {
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: mr.Namespace,
			Name:      revisionName(mr.Name, hash),
			Labels: map[string]string{
				hubv1.ManagedByLabel: hubv1.ManagedByValue, hubv1.OwnerNameLabel: mr.Name, revisionHashLabel: hash,
			},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: number,
	}
	gvk, err := apiutil.GVKForObject(mr, r.Hub.Scheme())
	if err != nil {
		return nil, err
	}
	cr.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(mr, gvk)}
	return &revision{number: number, spec: spec, cr: cr}, nil
}

// createRevision writes rev's ControllerRevision. It writes into a copy:
// the reconcile reads rev meanwhile.
func (r *Reconciler) createRevision(ctx context.Context, mr *hubv1.MyResource, rev *revision) error {
	cr := rev.cr.DeepCopy()
	if err := r.Hub.Create(ctx, cr); err != nil {
		if apierrors.IsAlreadyExists(err) {
			// The cache has not caught up with a create of ours yet; the
			// retry reads it back.
			return fmt.Errorf("revision %s of MyResource %s/%s exists but is not in the cache yet: %w", cr.Name, mr.Namespace, mr.Name, err)
		}
		return fmt.Errorf("creating revision %d of MyResource %s/%s: %w", rev.number, mr.Namespace, mr.Name, err)
	}
	return nil
}

// revisionName is <myresource>-<hash>, the MyResource's name shortened when
// the whole would not be a valid object name.
func revisionName(owner, hash string) string {
	const maxName = 253
	if len(owner)+1+len(hash) > maxName {
		owner = strings.TrimRight(owner[:maxName-1-len(hash)], "-.")
	}
	return owner + "-" + hash
}

// renumber makes rev the newest revision, number, remembering the numbers
// it had (an optimistic-lock update: a stale cache read fails and retries).
func (r *Reconciler) renumber(ctx context.Context, h *history, rev *revision, number int64) error {
	cr := rev.cr.DeepCopy()
	also := append(slices.Clone(rev.also), rev.number)
	parts := make([]string, len(also))
	for i, n := range also {
		parts[i] = strconv.FormatInt(n, 10)
	}
	if cr.Annotations == nil {
		cr.Annotations = map[string]string{}
	}
	cr.Annotations[hubv1.RevisionHistoryAnnotation] = strings.Join(parts, ",")
	cr.Revision = number
	if err := r.Hub.Update(ctx, cr); err != nil {
		return fmt.Errorf("renumbering revision %d of %s/%s as %d: %w", rev.number, cr.Namespace, cr.Name, number, err)
	}
	rev.number, rev.also, rev.cr = number, also, cr
	h.all = slices.DeleteFunc(h.all, func(x *revision) bool { return x == rev })
	h.add(rev)
	return nil
}

// trimRevisions deletes the oldest revisions beyond the history limit that
// no cluster runs and that are not the stable one.
func (r *Reconciler) trimRevisions(ctx context.Context, mr *hubv1.MyResource, h *history) error {
	limit := int(ptr.Deref(mr.Spec.RevisionHistoryLimit, hubv1.DefaultRevisionHistoryLimit))
	if len(h.all) <= limit+1 {
		return nil
	}
	keep := map[int64]bool{h.current.number: true}
	if ro := mr.Status.Rollout; ro != nil {
		keep[h.canonical(ro.StableRevision)] = true
	}
	for _, e := range mr.Status.Clusters {
		keep[h.revisionOf(e)] = true
	}
	old := len(h.all) - 1 // every revision but the current one
	for _, rev := range h.all {
		if old <= limit {
			break
		}
		if keep[rev.number] {
			continue
		}
		if err := r.Hub.Delete(ctx, rev.cr, client.Preconditions{UID: &rev.cr.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting revision %d of MyResource %s/%s: %w", rev.number, mr.Namespace, mr.Name, err)
		}
		old--
	}
	return nil
}
