package member

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"

	"golang.org/x/sync/singleflight"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
)

// Action names a write Applier made to a member, for OnWrite.
type Action string

const (
	// ActionCreate is the creation of a missing Namespace.
	ActionCreate Action = "Create"
	// ActionApply is a server-side apply of a Deployment or Service.
	ActionApply Action = "Apply"
	// ActionDelete is the deletion of an owned Deployment or Service.
	ActionDelete Action = "Delete"
)

// Applier writes one MyResource's objects into member clusters and reads
// their state back. Its zero value is ready to use; it must not be copied
// after first use, and one Applier serves every cluster concurrently.
type Applier struct {
	// FieldManager is the server-side apply field manager of every write.
	// Defaults to hub-operator, which the contract fixes.
	FieldManager string

	// OnWrite, when set, is called after each successful write to a member,
	// so the hub can record events and metrics for real changes only. It
	// must not block.
	OnWrite func(cluster string, action Action, obj client.Object)

	// mu protects namespaces.
	mu sync.Mutex
	// namespaces memoizes the (cluster, namespace) pairs known to exist, so
	// that a converged reconcile sends no request at all.
	namespaces map[clusterNamespace]struct{}
	// namespaceChecks lets one of the reconciles that meet a namespace not
	// yet known at the same moment check and create it for all of them:
	// measured without it, 50 MyResources in one namespace on 20 members
	// sent 86 namespace creates where 20 were needed.
	namespaceChecks singleflight.Group
}

// Kinds and operations named in errors and logs.
const (
	kindDeployment = "Deployment"
	kindService    = "Service"
	kindNamespace  = "Namespace"

	opGet    = "get"
	opCreate = "create"
	opApply  = "apply"
	opDelete = "delete"
)

type clusterNamespace struct{ cluster, namespace string }

func (a *Applier) fieldManager() string {
	if a.FieldManager != "" {
		return a.FieldManager
	}
	return hubv1.ManagedByValue
}

// Apply makes cluster t run mr: it ensures the namespace, then applies the
// Deployment and the Service (or deletes an owned Service when spec.service
// is absent), writing only what is out of sync. It returns the cluster's
// status read back from the member Deployment (Name set to t.Name) and, on
// failure, an error wrapping *InvalidSpecError, *ConflictError or
// *ApplyError; classify it with Reason. The status is meaningful on failure
// too: Applied is False with Reason(err).
func (a *Applier) Apply(ctx context.Context, mr *hubv1.MyResource, t Target) (hubv1.ClusterStatus, error) {
	if mr == nil {
		return hubv1.ClusterStatus{Name: t.Name}, fmt.Errorf("cluster %s: apply: nil MyResource", t.Name)
	}
	log := ctrl.LoggerFrom(ctx).WithValues("cluster", t.Name)
	ctx = ctrl.LoggerInto(ctx, log)

	desired, err := Render(mr, t)
	if err != nil {
		return failedStatus(t.Name, mr, nil, err), err
	}
	if err := a.ensureNamespace(ctx, t, desired.Namespace); err != nil {
		return failedStatus(t.Name, mr, nil, err), err
	}

	// The Deployment and the Service are read together, then written
	// together: a new MyResource waits for two requests in a row on each
	// member rather than four. Nothing is written until both are known to be
	// ours, so a foreign Deployment does not get a Service of ours beside it.
	observed, observedSvc := &appsv1.Deployment{}, &corev1.Service{}
	var depStale, svcStale bool
	var depErr, svcErr error
	both(func() {
		depStale, depErr = a.outOfSync(ctx, t, mr, desired.Deployment, observed)
	}, func() {
		if desired.Service != nil {
			svcStale, svcErr = a.outOfSync(ctx, t, mr, desired.Service, observedSvc)
		}
	})
	if depErr == nil && svcErr == nil {
		both(func() {
			if depStale {
				depErr = a.writeObject(ctx, t, desired.Deployment, observed)
			}
		}, func() {
			switch {
			case desired.Service == nil:
				svcErr = a.deleteStaleService(ctx, t, mr)
			case svcStale:
				svcErr = a.writeObject(ctx, t, desired.Service, observedSvc)
			}
		})
	}
	if depErr != nil {
		return failedStatus(t.Name, mr, nil, depErr), depErr
	}
	if svcErr != nil {
		if observed.UID == "" {
			observed = nil // not in the member, and not written because of the Service
		}
		return failedStatus(t.Name, mr, observed, svcErr), svcErr
	}

	st := Status(observed, mr.Generation)
	st.Name = t.Name
	return st, nil
}

// Observe reads the cluster's status for mr without writing anything, for
// a MyResource whose writes are suspended: the Deployment comes from the
// cache of owned objects, or a live read on a miss. A missing Deployment is
// reported as not applied; one that is not ours is a *ConflictError.
func (a *Applier) Observe(ctx context.Context, mr *hubv1.MyResource, t Target) (hubv1.ClusterStatus, error) {
	if mr == nil {
		return hubv1.ClusterStatus{Name: t.Name}, fmt.Errorf("cluster %s: observe: nil MyResource", t.Name)
	}
	key := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: mr.Namespace, Name: mr.Name}}
	observed := &appsv1.Deployment{}
	found, err := a.observe(ctx, t, key, observed)
	if err == nil && found && !a.owned(observed, mr.Namespace, mr.Name) {
		err = a.conflict(ctx, t, kindDeployment, observed)
	}
	if err != nil {
		return failedStatus(t.Name, mr, nil, err), err
	}
	if !found {
		observed = nil
	}
	st := Status(observed, mr.Generation)
	st.Name = t.Name
	return st, nil
}

// Forget drops what the Applier remembers about cluster, for a cluster that
// left the registry or was re-registered against another API server.
func (a *Applier) Forget(cluster string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := range a.namespaces {
		if k.cluster == cluster {
			delete(a.namespaces, k)
		}
	}
}

func (a *Applier) knownNamespace(k clusterNamespace) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.namespaces[k]
	return ok
}

func (a *Applier) rememberNamespace(k clusterNamespace, known bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !known {
		delete(a.namespaces, k)
		return
	}
	if a.namespaces == nil {
		a.namespaces = map[clusterNamespace]struct{}{}
	}
	a.namespaces[k] = struct{}{}
}

// ensureNamespace creates the namespace when a live read says it is
// missing. An existing namespace is used as it is, whoever made it.
func (a *Applier) ensureNamespace(ctx context.Context, t Target, ns *corev1.Namespace) error {
	key := clusterNamespace{t.Name, ns.Name}
	if a.knownNamespace(key) {
		return nil
	}
	_, err, _ := a.namespaceChecks.Do(t.Name+"/"+ns.Name, func() (any, error) {
		return nil, a.checkNamespace(ctx, t, ns, key)
	})
	return err
}

// checkNamespace reads the namespace live, creates it when missing and
// remembers it as known.
func (a *Applier) checkNamespace(ctx context.Context, t Target, ns *corev1.Namespace, key clusterNamespace) error {
	if a.knownNamespace(key) {
		return nil // a check that just finished found it
	}
	live := &corev1.Namespace{}
	err := t.live().Get(ctx, client.ObjectKeyFromObject(ns), live)
	switch {
	case err == nil:
		if live.DeletionTimestamp != nil {
			return fmt.Errorf("cluster %s: namespace %s is being deleted; its objects are recreated once it is gone", t.Name, ns.Name)
		}
	case apierrors.IsNotFound(err):
		ctrl.LoggerFrom(ctx).V(1).Info("Creating Namespace", "Namespace", klog.KObj(ns))
		create := ns.DeepCopy()
		if err := t.Writer.Create(ctx, create, client.FieldOwner(a.fieldManager())); err != nil && !apierrors.IsAlreadyExists(err) {
			return &ApplyError{Cluster: t.Name, Op: opCreate, Kind: kindNamespace, Name: ns.Name, Err: err}
		} else if err == nil {
			a.wrote(t.Name, ActionCreate, create)
		}
	default:
		return &ApplyError{Cluster: t.Name, Op: opGet, Kind: kindNamespace, Name: ns.Name, Err: err}
	}
	a.rememberNamespace(key, true)
	return nil
}

// both runs f and g at once and returns when both are done.
func both(f, g func()) {
	var wg sync.WaitGroup
	wg.Go(g)
	f()
	wg.Wait()
}

// outOfSync reads the member's version of desired into observed and says
// whether it must be written: it is missing, or differs in a field we set.
// An object someone else owns is a *ConflictError and is never written.
func (a *Applier) outOfSync(ctx context.Context, t Target, mr *hubv1.MyResource, desired, observed client.Object) (bool, error) {
	log := ctrl.LoggerFrom(ctx)
	kind := kindOf(desired)
	found, err := a.observe(ctx, t, desired, observed)
	if err != nil {
		return false, err
	}
	if !found {
		log.V(1).Info("Applying "+kind, kind, klog.KObj(desired), "reason", "missing")
		return true, nil
	}
	if !a.owned(observed, mr.Namespace, mr.Name) {
		return false, a.conflict(ctx, t, kind, observed)
	}
	ok, diff, err := inSync(desired, observed)
	if err != nil {
		return false, fmt.Errorf("cluster %s: compare %s %s: %w", t.Name, kind, klog.KObj(desired), err)
	}
	if !ok {
		log.V(1).Info("Applying "+kind, kind, klog.KObj(desired), "reason", "out of sync", "diff", diff)
	}
	return !ok, nil
}

// writeObject server-side applies desired and leaves the member's answer
// in observed.
func (a *Applier) writeObject(ctx context.Context, t Target, desired, observed client.Object) error {
	kind := kindOf(desired)
	u, err := applyPayload(desired)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", t.Name, err)
	}
	err = a.apply(ctx, t, u)
	if apierrors.IsNotFound(err) {
		// The only way an apply is NotFound is a missing namespace: the memo
		// was stale (someone deleted the namespace). Check it and retry once.
		a.rememberNamespace(clusterNamespace{t.Name, desired.GetNamespace()}, false)
		if nsErr := a.ensureNamespace(ctx, t, &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{
				Name:   desired.GetNamespace(),
				Labels: map[string]string{hubv1.ManagedByLabel: hubv1.ManagedByValue},
			},
		}); nsErr != nil {
			return nsErr
		}
		u, err = applyPayload(desired)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", t.Name, err)
		}
		err = a.apply(ctx, t, u)
	}
	if err != nil {
		// Whatever failed, re-check the namespace next time: a namespace
		// being deleted fails with Forbidden, not NotFound.
		a.rememberNamespace(clusterNamespace{t.Name, desired.GetNamespace()}, false)
		return &ApplyError{Cluster: t.Name, Op: opApply, Kind: kind, Namespace: desired.GetNamespace(), Name: desired.GetName(), Err: err}
	}
	// Zero observed first: it may hold the stale version read before.
	reflect.ValueOf(observed).Elem().SetZero()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, observed); err != nil {
		return fmt.Errorf("cluster %s: read back applied %s %s: %w", t.Name, kind, klog.KObj(desired), err)
	}
	a.wrote(t.Name, ActionApply, observed)
	return nil
}

// apply sends u with server-side apply, forcing ownership of conflicting
// fields so that member-side edits of managed fields are reverted, and
// leaves the server's answer in u.
func (a *Applier) apply(ctx context.Context, t Target, u *unstructured.Unstructured) error {
	return t.Writer.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(a.fieldManager()), client.ForceOwnership)
}

// observe reads the member's version of desired into observed: from the
// cache of owned objects, and on a miss live, since an object we do not own
// (or one created a moment ago) is not in that cache. found is false only
// when the live read says it does not exist.
func (a *Applier) observe(ctx context.Context, t Target, desired, observed client.Object) (found bool, err error) {
	key := client.ObjectKeyFromObject(desired)
	kind := kindOf(desired)
	err = t.cache().Get(ctx, key, observed)
	if apierrors.IsNotFound(err) && t.Cache != nil {
		err = t.live().Get(ctx, key, observed)
	}
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	default:
		return false, &ApplyError{Cluster: t.Name, Op: opGet, Kind: kind, Namespace: key.Namespace, Name: key.Name, Err: err}
	}
}

// owned reports whether obj belongs to the MyResource ownerNamespace/ownerName.
// Owner labels naming another MyResource settle it as not ours. Otherwise it
// is ours when it carries our labels, or when our field manager applied it
// before (member-side label edits are drift to revert, not a reason to give
// the object up: names are deterministic, so an object hub-operator applied
// under this name was applied for this owner).
func (a *Applier) owned(obj client.Object, ownerNamespace, ownerName string) bool {
	l := obj.GetLabels()
	ns, hasNS := l[hubv1.OwnerNamespaceLabel]
	name, hasName := l[hubv1.OwnerNameLabel]
	if (hasNS && ns != ownerNamespace) || (hasName && name != ownerName) {
		return false
	}
	if l[hubv1.ManagedByLabel] == hubv1.ManagedByValue && hasNS && hasName {
		return true
	}
	return slices.ContainsFunc(obj.GetManagedFields(), func(e metav1.ManagedFieldsEntry) bool {
		return e.Manager == a.fieldManager() && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == ""
	})
}

// conflict builds the *ConflictError for an object we must not touch. The
// field managers come from a live read, because a cache may strip them.
func (a *Applier) conflict(ctx context.Context, t Target, kind string, obj client.Object) error {
	managers := fieldManagers(obj)
	if len(managers) == 0 && t.Cache != nil {
		live := obj.DeepCopyObject().(client.Object)
		if err := t.live().Get(ctx, client.ObjectKeyFromObject(obj), live); err == nil {
			managers = fieldManagers(live)
		}
	}
	return &ConflictError{Cluster: t.Name, Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName(), Managers: managers}
}

// fieldManagers lists who wrote obj's spec, or anyone who wrote it at all
// when no spec writer is recorded.
func fieldManagers(obj client.Object) []string {
	var main, all []string
	for _, e := range obj.GetManagedFields() {
		all = append(all, e.Manager)
		if e.Subresource == "" {
			main = append(main, e.Manager)
		}
	}
	if len(main) == 0 {
		main = all
	}
	slices.Sort(main)
	return slices.Compact(main)
}

// deleteStaleService deletes the owned Service left from when spec.service
// was set. The cache is authoritative here: it holds every owned object, and
// a live read on every reconcile of a MyResource without a Service would cost
// a request at rest.
func (a *Applier) deleteStaleService(ctx context.Context, t Target, mr *hubv1.MyResource) error {
	svc := &corev1.Service{}
	err := t.cache().Get(ctx, client.ObjectKey{Namespace: mr.Namespace, Name: mr.Name}, svc)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return &ApplyError{Cluster: t.Name, Op: opGet, Kind: kindService, Namespace: mr.Namespace, Name: mr.Name, Err: err}
	}
	if !a.owned(svc, mr.Namespace, mr.Name) || svc.DeletionTimestamp != nil {
		return nil
	}
	return a.deleteObject(ctx, t, svc)
}

// deleteObject deletes obj in the background (the Deployment's ReplicaSets
// and Pods are collected by the member's garbage collector), and only the
// very object that was judged ours: the UID precondition keeps a replacement
// created meanwhile safe.
func (a *Applier) deleteObject(ctx context.Context, t Target, obj client.Object) error {
	kind := kindOf(obj)
	ctrl.LoggerFrom(ctx).V(1).Info("Deleting "+kind, kind, klog.KObj(obj))
	uid := obj.GetUID()
	err := t.Writer.Delete(ctx, obj,
		client.PropagationPolicy(metav1.DeletePropagationBackground),
		client.Preconditions{UID: &uid})
	switch {
	case err == nil:
		a.wrote(t.Name, ActionDelete, obj)
		return nil
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		// Gone already, or replaced by another object that the next pass
		// judges on its own.
		return nil
	default:
		return &ApplyError{Cluster: t.Name, Op: opDelete, Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName(), Err: err}
	}
}

// Delete deletes the Deployment and Service owned by the MyResource
// ownerNamespace/ownerName in cluster t, never the Namespace and never an
// object that is not ours. gone is true only when live reads confirm that no
// object of ours is left, so the hub keeps its finalizer until then; an
// object of that name owned by someone else does not hold it.
func (a *Applier) Delete(ctx context.Context, ownerNamespace, ownerName string, t Target) (gone bool, err error) {
	ctx = ctrl.LoggerInto(ctx, ctrl.LoggerFrom(ctx).WithValues("cluster", t.Name))
	key := client.ObjectKey{Namespace: ownerNamespace, Name: ownerName}
	gone = true
	var errs []error
	for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}} {
		objGone, err := a.deleteOwned(ctx, t, key, obj)
		if err != nil {
			errs = append(errs, err)
		}
		gone = gone && objGone
	}
	return gone && len(errs) == 0, errors.Join(errs...)
}

func (a *Applier) deleteOwned(ctx context.Context, t Target, key client.ObjectKey, obj client.Object) (bool, error) {
	kind := kindOf(obj)
	absent := func() (bool, error) {
		err := t.live().Get(ctx, key, obj)
		switch {
		case apierrors.IsNotFound(err):
			return true, nil
		case err != nil:
			return false, &ApplyError{Cluster: t.Name, Op: opGet, Kind: kind, Namespace: key.Namespace, Name: key.Name, Err: err}
		}
		return !a.owned(obj, key.Namespace, key.Name), nil
	}
	if gone, err := absent(); gone || err != nil {
		return gone, err
	}
	if obj.GetDeletionTimestamp() == nil {
		if err := a.deleteObject(ctx, t, obj); err != nil {
			return false, err
		}
	}
	// Background deletion removes the object itself at once unless another
	// finalizer holds it, so one more read usually confirms it.
	return absent()
}

func (a *Applier) wrote(cluster string, action Action, obj client.Object) {
	if a.OnWrite != nil {
		a.OnWrite(cluster, action, obj)
	}
}

// failedStatus is the cluster's status after err: Applied False with the
// error's reason, and Available read from the Deployment when one was
// observed, else Unknown.
func failedStatus(cluster string, mr *hubv1.MyResource, dep *appsv1.Deployment, err error) hubv1.ClusterStatus {
	reason, msg := Reason(err), err.Error()
	st := hubv1.ClusterStatus{Name: cluster}
	available := condition(hubv1.ClusterConditionAvailable, metav1.ConditionUnknown, reason, mr.Generation,
		"availability is unknown until the objects are applied")
	if dep != nil {
		st = Status(dep, mr.Generation)
		st.Name = cluster
		for _, c := range st.Conditions {
			if c.Type == hubv1.ClusterConditionAvailable {
				available = c
			}
		}
	}
	st.Conditions = []metav1.Condition{
		condition(hubv1.ClusterConditionApplied, metav1.ConditionFalse, reason, mr.Generation, msg),
		available,
	}
	return st
}

func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *appsv1.Deployment:
		return kindDeployment
	case *corev1.Service:
		return kindService
	case *corev1.Namespace:
		return kindNamespace
	default:
		return fmt.Sprintf("%T", obj)
	}
}
