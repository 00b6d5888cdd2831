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
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"
	mcreconcile "sigs.k8s.io/multicluster-runtime/pkg/reconcile"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
	"example.com/hub-operator/member"
)

// Registry is what the reconciler needs from the cluster registry.
type Registry interface {
	// List returns every registered cluster, connected or not, sorted by name.
	List() []clusterregistry.ClusterInfo
	// Get returns a connected cluster, or multicluster.ErrClusterNotFound.
	Get(ctx context.Context, name multicluster.ClusterName) (cluster.Cluster, error)
	// Synced is closed once every registry Secret present at start-up is registered.
	Synced() <-chan struct{}
	// Suspect asks for a health probe of a cluster now, because a request to
	// it failed as unreachable; it must not block. Once the probe fails the
	// cluster is no longer Ready and later reconciles skip it at once instead
	// of each spending ClusterTimeout on it.
	Suspect(name string)
}

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
	// Applier writes to and reads from one member cluster.
	Applier *member.Applier
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
func (r *Reconciler) Reconcile(ctx context.Context, req mcreconcile.Request) (ctrl.Result, error) {
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
	if !mr.DeletionTimestamp.IsZero() {
		r.settle.forget(req.NamespacedName)
		return r.reconcileDelete(ctx, mr)
	}
	if !controllerutil.ContainsFinalizer(mr, hubv1.FinalizerName) {
		if err := r.patchFinalizer(ctx, mr, true); err != nil {
			return ctrl.Result{}, err
		}
	}
	return r.reconcileNormal(ctx, mr)
}

func (r *Reconciler) reconcileNormal(ctx context.Context, mr *hubv1.MyResource) (ctrl.Result, error) {
	p, err := place(mr.Spec.Placement, r.Registry.List())
	if err != nil {
		// Invalid input: say so and wait for the user to change the spec.
		return ctrl.Result{}, r.permanentFailure(ctx, mr, p, err)
	}
	work := r.applyCluster
	readyReason := ""
	if mr.Spec.Suspend {
		work, readyReason = r.observeCluster, hubv1.ReasonSuspended
	}
	results := forEachCluster(ctx, p.selected, r.fanOut(), r.clusterTimeout(), func(ctx context.Context, name string) clusterResult {
		return work(ctx, mr, p, name)
	})
	entries, recheck, retry := collect(results)
	if !mr.Spec.Suspend {
		entries = append(entries, r.cleanupUnselected(ctx, mr, p)...)
	}
	st := aggregate(mr, entries, p, readyReason)
	if retry == nil && recheck == 0 {
		if wait := r.settle.hold(mr, st, time.Now()); wait > 0 {
			// The member watches re-queue us when the Deployments turn
			// Available; this requeue writes the progress status otherwise.
			return ctrl.Result{RequeueAfter: wait}, nil
		}
	}
	if err := r.writeStatus(ctx, mr, st); err != nil {
		return ctrl.Result{}, err
	}
	if retry != nil {
		return ctrl.Result{}, retry
	}
	if hasReason(entries, hubv1.ReasonCleanupPending) {
		recheck = sooner(recheck, conflictRecheck)
	}
	if recheck > 0 {
		return ctrl.Result{RequeueAfter: recheck}, nil
	}
	return ctrl.Result{}, nil
}

// applyCluster applies the MyResource to one selected cluster and reads its
// state back. A cluster that is not connected is reported, never waited for.
func (r *Reconciler) applyCluster(ctx context.Context, mr *hubv1.MyResource, p placement, name string) clusterResult {
	prev := previous(mr, name)
	t, res, ok := r.target(ctx, mr, p, name, prev)
	if !ok {
		return res
	}
	start := time.Now()
	st, err := r.Applier.Apply(ctx, mr, t)
	reason := member.Reason(err)
	r.Metrics.observeApply(name, time.Since(start), reason)
	if err == nil {
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
func (r *Reconciler) observeCluster(ctx context.Context, mr *hubv1.MyResource, p placement, name string) clusterResult {
	prev := previous(mr, name)
	t, res, ok := r.target(ctx, mr, p, name, prev)
	if !ok {
		return res
	}
	st, err := r.Applier.Observe(ctx, mr, t)
	if err != nil {
		r.suspectIfUnreachable(name, err)
		return clusterResult{status: unobserved(prev, name, member.Reason(err), err.Error(), mr.Generation)}
	}
	return clusterResult{status: clusterEntry(prev, st)}
}

// target resolves a selected cluster to something member can work on, or
// to the entry that says why it cannot.
func (r *Reconciler) target(ctx context.Context, mr *hubv1.MyResource, p placement, name string, prev *hubv1.ClusterStatus) (member.Target, clusterResult, bool) {
	info, registered := p.registered[name]
	if !registered {
		return member.Target{}, clusterResult{status: unobserved(prev, name, hubv1.ReasonClusterNotFound,
			fmt.Sprintf("no registry Secret named %q carries the label %s=true", name, hubv1.MemberClusterLabel), mr.Generation)}, false
	}
	if info.State == clusterregistry.StateConnecting && prev != nil {
		// Every operator start and leader change begins each cluster in
		// Connecting: what was last seen there still stands until the
		// connection says otherwise, and the registry re-queues us then.
		return member.Target{}, clusterResult{status: *prev}, false
	}
	if info.State != clusterregistry.StateReady {
		return member.Target{}, clusterResult{status: unobserved(prev, name, stateReason(info), info.Message, mr.Generation)}, false
	}
	cl, err := r.Registry.Get(ctx, multicluster.ClusterName(name))
	if err != nil {
		return member.Target{}, clusterResult{status: unobserved(prev, name, hubv1.ReasonClusterUnreachable,
			"cluster is not connected yet", mr.Generation)}, false
	}
	return memberTarget(info, cl), clusterResult{}, true
}

// memberTarget hands a connected cluster to package member: its cache of
// owned objects for reads at rest, the live reader for what the cache does
// not hold, the client for writes.
func memberTarget(info clusterregistry.ClusterInfo, cl cluster.Cluster) member.Target {
	return member.Target{Name: info.Name, Labels: info.Labels, Cache: cl.GetCache(), Reader: cl.GetAPIReader(), Writer: cl.GetClient()}
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
// naming what was left behind.
func (r *Reconciler) cleanupUnselected(ctx context.Context, mr *hubv1.MyResource, p placement) []hubv1.ClusterStatus {
	var candidates []string
	for name := range p.registered {
		if !p.isSelected(name) {
			candidates = append(candidates, name)
		}
	}
	for _, prev := range mr.Status.Clusters {
		if _, registered := p.registered[prev.Name]; !registered && !p.isSelected(prev.Name) {
			r.warnOrphaned(mr, prev.Name, "left the registry")
		}
	}
	slices.Sort(candidates)
	results := forEachCluster(ctx, candidates, r.fanOut(), r.clusterTimeout(), func(ctx context.Context, name string) *hubv1.ClusterStatus {
		return r.releaseCluster(ctx, mr, p, name)
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
func (r *Reconciler) releaseCluster(ctx context.Context, mr *hubv1.MyResource, p placement, name string) *hubv1.ClusterStatus {
	prev := previous(mr, name)
	info := p.registered[name]
	if info.State != clusterregistry.StateReady {
		if prev == nil {
			return nil // never applied there as far as we know: nothing to hold
		}
		if mr.Spec.DeletionPolicy == hubv1.DeletionPolicyOrphan {
			return nil
		}
		st := unobserved(prev, name, hubv1.ReasonCleanupPending,
			fmt.Sprintf("cluster left the placement but is %s; its objects are deleted when it answers, or delete its registry Secret to release it", strings.ToLower(string(info.State))), mr.Generation)
		return &st
	}
	cl, err := r.Registry.Get(ctx, multicluster.ClusterName(name))
	if err != nil {
		return nil
	}
	t := memberTarget(info, cl)
	if !r.Applier.Owns(ctx, mr.Namespace, mr.Name, t) {
		return nil
	}
	if mr.Spec.DeletionPolicy == hubv1.DeletionPolicyOrphan {
		if prev != nil {
			r.Recorder.Eventf(mr, nil, corev1.EventTypeNormal, hubv1.ReasonOrphaned, inCluster("Cleanup", name),
				"[cluster %s] left the placement; deletionPolicy Orphan leaves Deployment and Service %s/%s there", name, mr.Namespace, mr.Name)
		}
		return nil
	}
	gone, err := r.Applier.Delete(ctx, mr.Namespace, mr.Name, t)
	if err == nil && gone {
		r.Recorder.Eventf(mr, nil, corev1.EventTypeNormal, hubv1.ReasonDeleted, inCluster("Cleanup", name),
			"[cluster %s] deleted Deployment and Service %s/%s: the cluster left the placement", name, mr.Namespace, mr.Name)
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

// reconcileDelete removes the MyResource from every cluster that holds it,
// then drops the finalizer. An unreachable cluster holds the deletion, named
// in Degraded=CleanupPending, until it answers or leaves the registry.
func (r *Reconciler) reconcileDelete(ctx context.Context, mr *hubv1.MyResource) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(mr, hubv1.FinalizerName) {
		return ctrl.Result{}, nil
	}
	if mr.Annotations[hubv1.ForceOrphanAnnotation] == "true" {
		r.Recorder.Eventf(mr, nil, corev1.EventTypeWarning, hubv1.ReasonOrphaned, "Delete",
			"%s=true: finalizer removed at once; member objects were left in place in: %s",
			hubv1.ForceOrphanAnnotation, clusterList(mr.Status.Clusters))
		return ctrl.Result{}, r.patchFinalizer(ctx, mr, false)
	}
	if mr.Spec.DeletionPolicy == hubv1.DeletionPolicyOrphan {
		r.Recorder.Eventf(mr, nil, corev1.EventTypeNormal, hubv1.ReasonOrphaned, "Delete",
			"deletionPolicy Orphan: member objects left in place in: %s", clusterList(mr.Status.Clusters))
		return ctrl.Result{}, r.patchFinalizer(ctx, mr, false)
	}
	p, _ := place(hubv1.Placement{}, r.Registry.List()) // every registered cluster may hold objects
	if mr.Spec.Suspend {
		st := aggregate(mr, mr.Status.Clusters, p, hubv1.ReasonSuspended)
		return ctrl.Result{}, r.writeStatus(ctx, mr, st)
	}
	for _, prev := range mr.Status.Clusters {
		if _, registered := p.registered[prev.Name]; !registered {
			r.warnOrphaned(mr, prev.Name, "is not in the registry")
		}
	}
	pending := r.cleanupUnselected(ctx, withoutUnregistered(mr, p), p)
	if len(pending) > 0 {
		st := aggregate(mr, pending, p, hubv1.ReasonDeleting)
		if err := r.writeStatus(ctx, mr, st); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: cleanupRecheck}, nil
	}
	return ctrl.Result{}, r.patchFinalizer(ctx, mr, false)
}

// withoutUnregistered drops status entries of clusters that left the
// registry, so the deletion does not warn about them twice.
func withoutUnregistered(mr *hubv1.MyResource, p placement) *hubv1.MyResource {
	out := mr.DeepCopy()
	out.Status.Clusters = slices.DeleteFunc(out.Status.Clusters, func(c hubv1.ClusterStatus) bool {
		_, ok := p.registered[c.Name]
		return !ok
	})
	return out
}

func (r *Reconciler) warnOrphaned(mr *hubv1.MyResource, cluster, why string) {
	r.Recorder.Eventf(mr, nil, corev1.EventTypeWarning, hubv1.ReasonOrphaned, inCluster("Cleanup", cluster),
		"[cluster %s] %s: Deployment and Service %s/%s were left behind there", cluster, why, mr.Namespace, mr.Name)
}

// permanentFailure reports invalid input on the MyResource and does not
// retry: only a spec change can fix it, and that triggers a reconcile.
func (r *Reconciler) permanentFailure(ctx context.Context, mr *hubv1.MyResource, p placement, cause error) error {
	st := aggregate(mr, mr.Status.Clusters, p, "")
	for i := range st.Conditions {
		switch st.Conditions[i].Type {
		case hubv1.ConditionReady:
			st.Conditions[i].Status, st.Conditions[i].Reason, st.Conditions[i].Message = "False", hubv1.ReasonInvalidSpec, cause.Error()
		case hubv1.ConditionDegraded:
			st.Conditions[i].Status, st.Conditions[i].Reason, st.Conditions[i].Message = "True", hubv1.ReasonInvalidSpec, cause.Error()
		}
	}
	if err := r.writeStatus(ctx, mr, st); err != nil {
		return err
	}
	return reconcile.TerminalError(cause)
}

// writeStatus patches the status subresource, and only when it changed: a
// converged MyResource costs no write.
func (r *Reconciler) writeStatus(ctx context.Context, mr *hubv1.MyResource, st hubv1.MyResourceStatus) error {
	if equality.Semantic.DeepEqual(mr.Status, st) {
		return nil
	}
	r.recordTransitions(mr, st)
	next := mr.DeepCopy()
	next.Status = st
	if err := r.Hub.Status().Patch(ctx, next, client.MergeFrom(mr)); err != nil {
		return fmt.Errorf("updating status of MyResource %s/%s: %w", mr.Namespace, mr.Name, err)
	}
	return nil
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
