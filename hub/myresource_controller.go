package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	mcreconcile "sigs.k8s.io/multicluster-runtime/pkg/reconcile"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
	"example.com/hub-operator/hub/rollout"
	"example.com/hub-operator/member"
)

// Registry is what the reconciler needs from the cluster registry.
type Registry interface {
	// Snapshot returns every registered cluster, connected or not, sorted by
	// name, each with its engaged cluster (nil when none) from the same read.
	Snapshot() []clusterregistry.Member
	// Synced is closed once every registry Secret present at start-up is registered.
	Synced() <-chan struct{}
	// Suspect asks for a health probe of a cluster now, because a request to
	// it failed as unreachable; it must not block. Once the probe fails the
	// cluster is no longer Ready and later reconciles skip it at once instead
	// of each spending ClusterTimeout on it.
	Suspect(name string)
}

// Members is the work on one member cluster: what the reconciler needs from
// package member. *member.Applier implements it against real clusters;
// tests use an in-memory fake.
type Members interface {
	// Apply makes cluster t run mr and reads its state back; the status is
	// meaningful on failure too (see member.Applier.Apply).
	Apply(ctx context.Context, mr *hubv1.MyResource, t member.Target) (hubv1.ClusterStatus, error)
	// Observe reads cluster t's state for mr without writing.
	Observe(ctx context.Context, mr *hubv1.MyResource, t member.Target) (hubv1.ClusterStatus, error)
	// Owns says whether t may hold objects of the owner; when in doubt, true.
	Owns(ctx context.Context, ownerNamespace, ownerName string, t member.Target) bool
	// Delete deletes the owner's objects from t; gone is true only once no
	// object of the owner is left there.
	Delete(ctx context.Context, ownerNamespace, ownerName string, t member.Target) (gone bool, err error)
}

var _ Members = &member.Applier{}

// Defaults of the Reconciler's tuning fields.
const (
	DefaultFanOut         = 16
	DefaultClusterTimeout = 15 * time.Second
	// conflictRecheck is how often a cluster whose object is held by someone
	// else is re-read: that object is not ours, so no watch tells us when it goes.
	conflictRecheck = 30 * time.Second
	// unreachableRecheck is when a MyResource whose request to a Ready
	// member timed out is tried again. The probe that Suspect starts either
	// fails, and the registry re-queues us and later reconciles skip the
	// member, or passes (a slow moment of a live member), and then nothing
	// else would re-queue us.
	unreachableRecheck = 10 * time.Second
	// cleanupRecheck bounds how long a pending cleanup waits for a watch event.
	cleanupRecheck = time.Minute
	// registryWait is how often a reconcile retries while the registry starts.
	registryWait = 500 * time.Millisecond
)

// Reconciler reconciles MyResources on the hub.
type Reconciler struct {
	// Hub is the hub manager's (cached) client.
	Hub client.Client
	// Registry knows the member clusters.
	Registry Registry
	// Members writes to and reads from one member cluster at a time.
	Members Members
	// Recorder records events on the hub MyResource.
	Recorder events.EventRecorder
	// FanOut bounds how many clusters one reconcile works on at once.
	FanOut int
	// ClusterTimeout bounds the work on one cluster in one reconcile.
	ClusterTimeout time.Duration
	// Metrics records apply requests; nil records nothing.
	Metrics *Metrics

	// settle holds back progress statuses that are about to turn Ready.
	settle settler
	// now is the settler's clock; nil is time.Now (tests set it).
	now func() time.Time
}

// clusterResult is what one cluster's work produced.
type clusterResult struct {
	status hubv1.ClusterStatus
	// retry asks for a backoff retry: the member refused or failed transiently.
	retry error
	// recheck asks for another reconcile after that long; 0 asks for none.
	recheck time.Duration
}

// Reconcile converges one MyResource. Only requests for the hub (the local
// cluster) reach it; member events are mapped to their hub owner.
//
// It reads the MyResource and one snapshot of the registry into a scope,
// runs reconcileNormal or reconcileDelete, which only change the scope, and
// leaves every write of the outcome to persist: the status patch, the
// finalizer removal and the events, in that order and once.
func (r *Reconciler) Reconcile(ctx context.Context, req mcreconcile.Request) (res ctrl.Result, reterr error) {
	select {
	case <-r.Registry.Synced():
	default:
		// Until every registry Secret is read, a cluster missing from the
		// registry may just be unread: placing now would report it gone.
		return ctrl.Result{RequeueAfter: registryWait}, nil
	}
	mr := &hubv1.MyResource{}
	if err := r.Hub.Get(ctx, req.NamespacedName, mr); err != nil {
		if apierrors.IsNotFound(err) {
			r.settle.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	s := newScope(mr, r.Registry.Snapshot())
	defer func() { res, reterr = r.persist(ctx, s, res, reterr) }()

	if !mr.DeletionTimestamp.IsZero() {
		r.settle.forget(req.NamespacedName)
		return r.reconcileDelete(ctx, s)
	}
	if !controllerutil.ContainsFinalizer(mr, hubv1.FinalizerName) {
		if err := r.patchFinalizer(ctx, mr, true); err != nil {
			return ctrl.Result{}, err
		}
	}
	return r.reconcileNormal(ctx, s)
}

func (r *Reconciler) reconcileNormal(ctx context.Context, s *scope) (ctrl.Result, error) {
	mr := s.mr
	p, err := place(mr.Spec.Placement, s.infos())
	s.placement, s.statusComputed = p, true
	if err != nil {
		// Invalid input: say so and wait for the user to change the spec.
		s.entries, s.verdict.invalid = mr.Status.Clusters, err
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	var record func(context.Context) error
	if s.history, record, err = r.syncRevisions(ctx, mr); err != nil {
		s.statusComputed = false // nothing new is known; the retry will
		return ctrl.Result{}, err
	}
	recorded := recordRevision(ctx, record)
	var (
		entries []hubv1.ClusterStatus
		recheck time.Duration
		retry   error
	)
	if mr.Spec.Suspend {
		s.verdict.readyReason = hubv1.ReasonSuspended
		entries, recheck, retry = r.observeAll(ctx, s)
	} else {
		entries, recheck, retry = r.rollOut(ctx, s)
	}
	retry = errors.Join(retry, recorded())
	if inv := (invalidRollout{}); errors.As(retry, &inv) {
		// The planner could not read spec.rollout (a stage selector the
		// API server's validation let through): only the user can fix it.
		s.entries, s.verdict.invalid = mr.Status.Clusters, inv
		return ctrl.Result{}, reconcile.TerminalError(inv)
	}
	s.verdict.rollout = &s.rollout.Status
	s.rolloutEvents(s.rollout.Status)
	if !mr.Spec.Suspend {
		entries = append(entries, r.cleanupUnselected(ctx, s, "left the registry")...)
	}
	s.entries = entries
	if retry != nil {
		return ctrl.Result{}, retry
	}
	if hasReason(entries, hubv1.ReasonCleanupPending) {
		recheck = sooner(recheck, conflictRecheck)
	}
	// With nothing to retry or recheck, the member watches re-queue us when
	// the Deployments turn Available: the settler may hold the progress
	// status. A suspended MyResource is not Ready whatever the members say,
	// so holding its status would save nothing.
	s.mayHold = recheck == 0 && !mr.Spec.Suspend
	return ctrl.Result{RequeueAfter: recheck}, nil
}

// observeAll reads every selected cluster without writing (suspend).
func (r *Reconciler) observeAll(ctx context.Context, s *scope) ([]hubv1.ClusterStatus, time.Duration, error) {
	results := forEachCluster(ctx, s.placement.selected, r.fanOut(), r.clusterTimeout(), func(ctx context.Context, name string) clusterResult {
		return r.observeCluster(ctx, s, name)
	})
	entries := map[string]hubv1.ClusterStatus{}
	for name, res := range results {
		entries[name] = res.status
	}
	plan, err := r.decide(s, entries, map[string]int64{}, s.previousRollout())
	if err != nil {
		return nil, 0, invalidRollout{err}
	}
	s.rollout = plan
	out, recheck, retry := collect(results)
	s.history.canonicalRevisions(out)
	return out, recheck, retry
}

// applyCluster gives one selected cluster the revision the plan assigns it
// and reads its state back. A cluster that is not connected is reported,
// never waited for; one that waits for its stage with nothing to run is
// only reported.
func (r *Reconciler) applyCluster(ctx context.Context, s *scope, name string, cp rollout.ClusterPlan) clusterResult {
	mr := s.mr
	prev := previous(mr, name)
	t, res, ok := r.target(s, name, prev)
	if !ok {
		return res
	}
	view := s.views[cp.Revision]
	if view == nil {
		if failedBefore(prev) {
			// The revision it failed is not tried again: what it failed
			// with stays the last word until the spec changes.
			return clusterResult{status: *prev}
		}
		return clusterResult{status: unobserved(prev, name, hubv1.ReasonRolloutPending, pendingMessage(cp, s.history.current.number), mr.Generation)}
	}
	start := time.Now()
	st, err := r.Members.Apply(ctx, view, t)
	reason := member.Reason(err)
	r.Metrics.observeApply(name, time.Since(start), reason)
	if err == nil {
		if cp.Revision != s.history.current.number {
			waiting(&st, cp, s.history.current.number, mr.Generation)
		}
		return clusterResult{status: clusterEntry(prev, st)}
	}
	res = clusterResult{status: unobserved(prev, name, reason, err.Error(), mr.Generation)}
	if len(st.Conditions) > 0 {
		res.status = clusterEntry(prev, st) // Apply read the member back despite the failure
	}
	switch {
	case member.IsInvalidSpec(err):
		// Only a spec change fixes it, and a spec change re-queues us.
	case reason == hubv1.ReasonConflict:
		res.recheck = conflictRecheck
	case reason == hubv1.ReasonClusterUnreachable:
		// Probed now rather than at the next tick; the registry re-queues us
		// when the cluster turns Unreachable and when it answers again.
		r.Registry.Suspect(name)
		res.recheck = unreachableRecheck
	default:
		res.retry = err // it names the cluster already
	}
	return res
}

// observeCluster reads one cluster's state without writing (suspend).
func (r *Reconciler) observeCluster(ctx context.Context, s *scope, name string) clusterResult {
	mr := s.mr
	prev := previous(mr, name)
	t, res, ok := r.target(s, name, prev)
	if !ok {
		return res
	}
	st, err := r.Members.Observe(ctx, mr, t)
	if err != nil {
		r.suspectIfUnreachable(name, err)
		return clusterResult{status: unobserved(prev, name, member.Reason(err), err.Error(), mr.Generation)}
	}
	return clusterResult{status: clusterEntry(prev, st)}
}

// target resolves a selected cluster to something member can work on, or
// to the entry that says why it cannot.
func (r *Reconciler) target(s *scope, name string, prev *hubv1.ClusterStatus) (member.Target, clusterResult, bool) {
	gen := s.mr.Generation
	m, registered := s.clusters[name]
	if !registered {
		return member.Target{}, clusterResult{status: unobserved(prev, name, hubv1.ReasonClusterNotFound,
			fmt.Sprintf("no registry Secret named %q carries the label %s=true", name, hubv1.MemberClusterLabel), gen)}, false
	}
	if m.Info.State == clusterregistry.StateConnecting && prev != nil {
		// Every operator start and leader change begins each cluster in
		// Connecting: what was last seen there still stands until the
		// connection says otherwise, and the registry re-queues us then.
		return member.Target{}, clusterResult{status: *prev}, false
	}
	if m.Info.State != clusterregistry.StateReady {
		return member.Target{}, clusterResult{status: unobserved(prev, name, stateReason(m.Info), m.Info.Message, gen)}, false
	}
	if m.Cluster == nil {
		return member.Target{}, clusterResult{status: unobserved(prev, name, hubv1.ReasonClusterUnreachable,
			"cluster is not connected yet", gen)}, false
	}
	return memberTarget(m), clusterResult{}, true
}

// memberTarget hands a connected cluster to package member: its cache of
// owned objects for reads at rest, the live reader for what the cache does
// not hold, the client for writes.
func memberTarget(m clusterregistry.Member) member.Target {
	cl := m.Cluster
	return member.Target{Name: m.Info.Name, Labels: m.Info.Labels, Cache: cl.GetCache(), Reader: cl.GetAPIReader(), Writer: cl.GetClient()}
}

// suspectIfUnreachable has the registry probe a cluster whose request just
// failed as unreachable, so the next reconciles skip it.
func (r *Reconciler) suspectIfUnreachable(name string, err error) {
	if member.IsUnreachable(err) {
		r.Registry.Suspect(name)
	}
}

func stateReason(info clusterregistry.ClusterInfo) string {
	if info.Reason != "" {
		return info.Reason
	}
	if info.State == clusterregistry.StateInvalid {
		return hubv1.ReasonInvalidKubeconfig
	}
	return hubv1.ReasonClusterUnreachable
}

// cleanupUnselected deletes the MyResource's objects from registered
// clusters it no longer selects (a confirmed placement change) and returns
// entries for the clusters still holding them. It never deletes because a
// cluster is missing: unregistered clusters are released, with a warning
// naming what was left behind (why says how it went missing).
func (r *Reconciler) cleanupUnselected(ctx context.Context, s *scope, why string) []hubv1.ClusterStatus {
	mr, p := s.mr, s.placement
	var candidates []string
	for name := range s.clusters {
		if !p.isSelected(name) {
			candidates = append(candidates, name)
		}
	}
	for _, prev := range mr.Status.Clusters {
		if _, registered := s.clusters[prev.Name]; !registered && !p.isSelected(prev.Name) {
			s.event(corev1.EventTypeWarning, hubv1.ReasonOrphaned, inCluster("Cleanup", prev.Name),
				fmt.Sprintf("[cluster %s] %s: Deployment and Service %s/%s were left behind there", prev.Name, why, mr.Namespace, mr.Name))
		}
	}
	slices.Sort(candidates)
	results := forEachCluster(ctx, candidates, r.fanOut(), r.clusterTimeout(), func(ctx context.Context, name string) *hubv1.ClusterStatus {
		return r.releaseCluster(ctx, s, name)
	})
	var pending []hubv1.ClusterStatus
	for _, name := range candidates {
		if st := results[name]; st != nil {
			pending = append(pending, *st)
		}
	}
	return pending
}

// releaseCluster removes the MyResource from one cluster it is leaving, or
// returns the entry saying why it cannot yet (nil when the cluster is clean).
func (r *Reconciler) releaseCluster(ctx context.Context, s *scope, name string) *hubv1.ClusterStatus {
	mr := s.mr
	prev := previous(mr, name)
	m := s.clusters[name]
	orphan := mr.Spec.DeletionPolicy == hubv1.DeletionPolicyOrphan
	if m.Info.State != clusterregistry.StateReady || m.Cluster == nil {
		// Without an engaged cluster nothing says the member is clean. Only a
		// cluster that is not Ready and never had our objects as far as the
		// status knows is let go; a Ready one whose connection is being
		// replaced may hold them, and holds the deletion until it answers.
		if orphan || (prev == nil && m.Info.State != clusterregistry.StateReady) {
			return nil
		}
		st := unobserved(prev, name, hubv1.ReasonCleanupPending, notConnectedMessage(m.Info), mr.Generation)
		return &st
	}
	t := memberTarget(m)
	if !r.Members.Owns(ctx, mr.Namespace, mr.Name, t) {
		return nil
	}
	if orphan {
		if prev != nil {
			s.event(corev1.EventTypeNormal, hubv1.ReasonOrphaned, inCluster("Cleanup", name),
				fmt.Sprintf("[cluster %s] left the placement; deletionPolicy Orphan leaves Deployment and Service %s/%s there", name, mr.Namespace, mr.Name))
		}
		return nil
	}
	gone, err := r.Members.Delete(ctx, mr.Namespace, mr.Name, t)
	if err == nil && gone {
		s.event(corev1.EventTypeNormal, hubv1.ReasonDeleted, inCluster("Cleanup", name),
			fmt.Sprintf("[cluster %s] deleted Deployment and Service %s/%s: the cluster left the placement", name, mr.Namespace, mr.Name))
		return nil
	}
	msg := "deleting Deployment and Service: the cluster left the placement"
	if err != nil {
		r.suspectIfUnreachable(name, err)
		msg = "deleting: " + err.Error()
	}
	st := unobserved(prev, name, hubv1.ReasonCleanupPending, msg, mr.Generation)
	return &st
}

// notConnectedMessage says why a cluster's objects cannot be deleted now.
func notConnectedMessage(info clusterregistry.ClusterInfo) string {
	state := strings.ToLower(string(info.State))
	if info.State == clusterregistry.StateReady {
		state = "reconnecting"
	}
	return fmt.Sprintf("cluster left the placement but is %s; its objects are deleted when it answers, or delete its registry Secret to release it", state)
}

// reconcileDelete removes the MyResource from every cluster that holds it,
// then has persist drop the finalizer. An unreachable cluster holds the
// deletion, named in Degraded=CleanupPending, until it answers or leaves the
// registry.
func (r *Reconciler) reconcileDelete(ctx context.Context, s *scope) (ctrl.Result, error) {
	mr := s.mr
	if !controllerutil.ContainsFinalizer(mr, hubv1.FinalizerName) {
		return ctrl.Result{}, nil
	}
	if mr.Annotations[hubv1.ForceOrphanAnnotation] == "true" {
		s.event(corev1.EventTypeWarning, hubv1.ReasonOrphaned, "Delete",
			fmt.Sprintf("%s=true: finalizer removed at once; member objects were left in place in: %s",
				hubv1.ForceOrphanAnnotation, clusterList(mr.Status.Clusters)))
		s.release = true
		return ctrl.Result{}, nil
	}
	if mr.Spec.DeletionPolicy == hubv1.DeletionPolicyOrphan {
		s.event(corev1.EventTypeNormal, hubv1.ReasonOrphaned, "Delete",
			"deletionPolicy Orphan: member objects left in place in: "+clusterList(mr.Status.Clusters))
		s.release = true
		return ctrl.Result{}, nil
	}
	// Every registered cluster may hold objects: the empty placement selects none.
	s.placement, _ = place(hubv1.Placement{}, s.infos())
	s.statusComputed = true
	if mr.Spec.Suspend {
		s.entries, s.verdict.readyReason = mr.Status.Clusters, hubv1.ReasonSuspended
		return ctrl.Result{}, nil
	}
	pending := r.cleanupUnselected(ctx, s, "is not in the registry")
	if len(pending) > 0 {
		s.entries, s.verdict.readyReason = pending, hubv1.ReasonDeleting
		return ctrl.Result{RequeueAfter: cleanupRecheck}, nil
	}
	s.release = true
	return ctrl.Result{}, nil
}

// persist is the one exit of every reconcile that got as far as a scope. It
// removes the finalizer when the phase released the MyResource, or else
// computes the status from what the phase found and patches it when it
// changed (unless the settler holds a progress status back); events are
// recorded only after the write they report on succeeded. res and reterr are
// the phase's; persist joins its own error to them.
func (r *Reconciler) persist(ctx context.Context, s *scope, res ctrl.Result, reterr error) (ctrl.Result, error) {
	mr := s.mr
	if s.release {
		if err := r.patchFinalizer(ctx, mr, false); err != nil {
			return res, errors.Join(reterr, err)
		}
		s.recordEvents(r.Recorder)
		return res, reterr
	}
	if !s.statusComputed {
		return res, reterr
	}
	st := aggregate(mr, s.entries, s.placement, s.verdict)
	if s.mayHold && reterr == nil {
		if wait := r.settle.hold(mr, st, r.clock()); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
	}
	if !equality.Semantic.DeepEqual(mr.Status, st) {
		next := mr.DeepCopy()
		next.Status = st
		if err := r.Hub.Status().Patch(ctx, next, client.MergeFrom(mr)); err != nil {
			return res, errors.Join(reterr, fmt.Errorf("updating status of MyResource %s/%s: %w", mr.Namespace, mr.Name, err))
		}
		r.recordTransitions(mr, st)
		if s.verdict.rollout != nil {
			for result, n := range updateCounts(mr.Status.Rollout, s.rollout) {
				r.Metrics.countUpdates(result, n)
			}
		}
	}
	s.recordEvents(r.Recorder)
	return res, reterr
}

// patchFinalizer adds or removes the finalizer with an optimistic lock, so a
// concurrent writer of metadata.finalizers is never overwritten.
func (r *Reconciler) patchFinalizer(ctx context.Context, mr *hubv1.MyResource, add bool) error {
	before := mr.DeepCopy()
	if add {
		controllerutil.AddFinalizer(mr, hubv1.FinalizerName)
	} else {
		controllerutil.RemoveFinalizer(mr, hubv1.FinalizerName)
	}
	err := r.Hub.Patch(ctx, mr, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	if !add && apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("patching finalizer of MyResource %s/%s: %w", mr.Namespace, mr.Name, err)
	}
	return nil
}

func (r *Reconciler) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

func (r *Reconciler) fanOut() int {
	if r.FanOut > 0 {
		return r.FanOut
	}
	return DefaultFanOut
}

func (r *Reconciler) clusterTimeout() time.Duration {
	if r.ClusterTimeout > 0 {
		return r.ClusterTimeout
	}
	return DefaultClusterTimeout
}

// collect flattens per-cluster results, joining the errors worth a retry.
func collect(results map[string]clusterResult) (entries []hubv1.ClusterStatus, recheck time.Duration, retry error) {
	var errs []error
	for _, res := range results {
		entries = append(entries, res.status)
		if res.retry != nil {
			errs = append(errs, res.retry)
		}
		recheck = sooner(recheck, res.recheck)
	}
	return entries, recheck, errors.Join(errs...)
}

// sooner is the shorter of two waits, where 0 means no wait asked for.
func sooner(a, b time.Duration) time.Duration {
	if a == 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

func hasReason(entries []hubv1.ClusterStatus, reason string) bool {
	for _, e := range entries {
		for _, c := range e.Conditions {
			if c.Reason == reason {
				return true
			}
		}
	}
	return false
}

func clusterList(entries []hubv1.ClusterStatus) string {
	if len(entries) == 0 {
		return "(none recorded)"
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name)
	}
	return strings.Join(names, ", ")
}
