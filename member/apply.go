package member

import (
	"context"
	"encoding/json"
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
	"k8s.io/apimachinery/pkg/runtime"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
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

	// applied remembers the last apply of each object, so that an apply
	// that would change nothing is not sent.
	applied appliedCache

	// mu protects namespaces.
	mu sync.Mutex
	// namespaces memoizes what this process learnt of each (cluster,
	// namespace) pair, so that a converged reconcile sends no request at
	// all; a pair it has not met is absent.
	namespaces map[clusterNamespace]namespaceState
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

// namespaceState is what the Applier knows of a member namespace.
type namespaceState int

const (
	// namespaceUnmet: this process has not met the namespace (the zero
	// value, a pair absent from the memo).
	namespaceUnmet namespaceState = iota
	// namespaceExists: it exists and is not being deleted.
	namespaceExists
	// namespaceSuspect: it existed, but a write in it failed since (it may
	// be gone or being deleted): it is read again before the next create.
	namespaceSuspect
)

func (a *Applier) fieldManager() string {
	if a.FieldManager != "" {
		return a.FieldManager
	}
	return hubv1.ManagedByValue
}

// Apply makes cluster t run mr: it ensures the namespace, then applies the
// Deployment and the Service (or deletes an owned Service when spec.service
// is absent). An object is applied unless this Applier already applied the
// same intent and the member's object is still the version that apply left
// (see appliedCache), or, for an object it has no record of, our field
// manager already owns exactly that intent there; so a converged reconcile
// writes nothing, whatever the member added of its own, and neither does a
// new process over converged objects. It returns the cluster's
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
	dep, svc, err := intents(desired)
	if err != nil {
		err = fmt.Errorf("cluster %s: %w", t.Name, err)
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
		depStale, depErr = a.outOfSync(ctx, t, mr, dep, observed)
	}, func() {
		if svc != nil {
			svcStale, svcErr = a.outOfSync(ctx, t, mr, svc, observedSvc)
		}
	})
	depNew, svcNew := observed.UID == "", observedSvc.UID == ""
	if depErr == nil && svcErr == nil && ((depNew && depStale) || (svc != nil && svcNew && svcStale)) {
		// Only a create needs the namespace: an object of ours in it
		// proves it exists, and an update there needs nothing else.
		if err := a.ensureNamespace(ctx, t, desired.Namespace); err != nil {
			return failedStatus(t.Name, mr, nil, err), err
		}
	}
	if depErr == nil && svcErr == nil {
		both(func() {
			if depStale {
				depErr = a.writeObject(ctx, t, dep, observed)
			}
		}, func() {
			switch {
			case svc == nil:
				svcErr = a.deleteStaleService(ctx, t, mr)
			case svcStale:
				svcErr = a.writeObject(ctx, t, svc, observedSvc)
			}
		})
		// Both missing as far as the cache knew, one turned out to be
		// someone else's, created a moment ago: the other, created now,
		// goes again, so that no object of ours stands beside a foreign one.
		a.undoHalf(ctx, t, depNew && depStale && depErr == nil && isConflict(svcErr), observed)
		a.undoHalf(ctx, t, svcNew && svcStale && svcErr == nil && isConflict(depErr), observedSvc)
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

// undoHalf deletes obj, created by this Apply, when do says its other half
// was refused as someone else's. A failure leaves it to the MyResource's
// deletion, which removes what is ours.
func (a *Applier) undoHalf(ctx context.Context, t Target, do bool, obj client.Object) {
	if do {
		if err := a.deleteObject(ctx, t, obj); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Deleting the half of a conflicting MyResource created beside a foreign object")
		}
	}
}

func isConflict(err error) bool {
	var c *ConflictError
	return errors.As(err, &c)
}

// intents wraps the rendered objects for Apply.
func intents(d *Desired) (dep, svc *intent, err error) {
	dep, err = newIntent(kindDeployment, d.Deployment, d.Deployment.ObjectMetaApplyConfiguration, true)
	if err != nil || d.Service == nil {
		return dep, nil, err
	}
	svc, err = newIntent(kindService, d.Service, d.Service.ObjectMetaApplyConfiguration, false)
	return dep, svc, err
}

// Observe reads the cluster's status for mr without writing anything, for
// a MyResource whose writes are suspended: the Deployment comes from the
// cache (see observe). A missing Deployment is
// reported as not applied; one that is not ours is a *ConflictError.
func (a *Applier) Observe(ctx context.Context, mr *hubv1.MyResource, t Target) (hubv1.ClusterStatus, error) {
	if mr == nil {
		return hubv1.ClusterStatus{Name: t.Name}, fmt.Errorf("cluster %s: observe: nil MyResource", t.Name)
	}
	observed := &appsv1.Deployment{}
	found, err := a.observe(ctx, t, kindDeployment, client.ObjectKey{Namespace: mr.Namespace, Name: mr.Name}, observed)
	if err == nil && found {
		var ours bool
		ours, err = a.owned(ctx, t, observed, mr.Namespace, mr.Name)
		switch {
		case apierrors.IsNotFound(err):
			found, err = false, nil
		case err == nil && !ours:
			err = a.conflict(ctx, t, kindDeployment, observed)
		}
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
	for k := range a.namespaces {
		if k.cluster == cluster {
			delete(a.namespaces, k)
		}
	}
	a.mu.Unlock()
	a.applied.forgetCluster(cluster)
}

func (a *Applier) namespaceState(k clusterNamespace) namespaceState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.namespaces[k]
}

func (a *Applier) setNamespace(k clusterNamespace, state namespaceState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.namespaces == nil {
		a.namespaces = map[clusterNamespace]namespaceState{}
	}
	a.namespaces[k] = state
}

// suspectNamespace marks a namespace known to exist for a read before the
// next create in it.
func (a *Applier) suspectNamespace(k clusterNamespace) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.namespaces[k] == namespaceExists {
		a.namespaces[k] = namespaceSuspect
	}
}

// ensureNamespace makes sure the namespace exists before an object is
// created in it. An existing namespace is used as it is, whoever made it.
func (a *Applier) ensureNamespace(ctx context.Context, t Target, ns *corev1.Namespace) error {
	key := clusterNamespace{t.Name, ns.Name}
	if a.namespaceState(key) == namespaceExists {
		return nil
	}
	_, err, _ := a.namespaceChecks.Do(t.Name+"/"+ns.Name, func() (any, error) {
		return nil, a.checkNamespace(ctx, t, ns, key)
	})
	return err
}

// checkNamespace makes sure the namespace exists and remembers it. One this
// process has not met is most likely new, so it is created at once: a
// member round trip less in front of the first object there, where a read
// would come first. One that answers AlreadyExists, and one a write failed
// in since, is read to tell a namespace being deleted apart.
func (a *Applier) checkNamespace(ctx context.Context, t Target, ns *corev1.Namespace, key clusterNamespace) error {
	state := a.namespaceState(key)
	if state == namespaceExists {
		return nil // a check that just finished found it
	}
	var createErr error
	if state == namespaceUnmet {
		if createErr = a.createNamespace(ctx, t, ns); createErr == nil {
			a.setNamespace(key, namespaceExists)
			return nil
		}
	}
	live := &corev1.Namespace{}
	err := t.live().Get(ctx, client.ObjectKeyFromObject(ns), live)
	switch {
	case err == nil && live.DeletionTimestamp != nil:
		a.setNamespace(key, namespaceSuspect) // read, not created, next time
		return fmt.Errorf("cluster %s: namespace %s is being deleted; its objects are recreated once it is gone", t.Name, ns.Name)
	case err == nil:
	case apierrors.IsNotFound(err) && createErr != nil:
		// Neither created (RBAC may forbid it) nor there.
		return &ApplyError{Cluster: t.Name, Op: opCreate, Kind: kindNamespace, Name: ns.Name, Err: createErr}
	case apierrors.IsNotFound(err):
		if err := a.createNamespace(ctx, t, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return &ApplyError{Cluster: t.Name, Op: opCreate, Kind: kindNamespace, Name: ns.Name, Err: err}
		}
	default:
		return &ApplyError{Cluster: t.Name, Op: opGet, Kind: kindNamespace, Name: ns.Name, Err: err}
	}
	a.setNamespace(key, namespaceExists)
	return nil
}

// createNamespace creates ns, reporting the write; an existing one is an
// AlreadyExists error.
func (a *Applier) createNamespace(ctx context.Context, t Target, ns *corev1.Namespace) error {
	ctrl.LoggerFrom(ctx).V(1).Info("Creating Namespace", "Namespace", klog.KObj(ns))
	create := ns.DeepCopy()
	if err := t.Writer.Create(ctx, create, client.FieldOwner(a.fieldManager())); err != nil {
		return err
	}
	a.wrote(t.Name, ActionCreate, create)
	return nil
}

// both runs f and g at once and returns when both are done.
func both(f, g func()) {
	var wg sync.WaitGroup
	wg.Go(g)
	f()
	wg.Wait()
}

// outOfSync reads the member's version of in into observed and says whether
// it must be applied: it is missing, or this process has not applied this
// intent to this very version of it (see appliedCache) and, when this
// process holds no record of it at all, what our field manager owns there is
// not this intent (appliedBefore). An object someone else owns is a
// *ConflictError and is never written.
func (a *Applier) outOfSync(ctx context.Context, t Target, mr *hubv1.MyResource, in *intent, observed client.Object) (bool, error) {
	log := ctrl.LoggerFrom(ctx)
	key := in.object()
	found, err := a.observe(ctx, t, in.kind, key, observed)
	if err != nil {
		return false, err
	}
	if found {
		var ours bool
		ours, err = a.owned(ctx, t, observed, mr.Namespace, mr.Name)
		switch {
		case apierrors.IsNotFound(err):
			found = false // deleted since the cache read
		case err != nil:
			return false, err
		case !ours:
			a.applied.forget(in.key(t.Name))
			return false, a.conflict(ctx, t, in.kind, observed)
		}
	}
	if !found {
		reflect.ValueOf(observed).Elem().SetZero()
		log.V(1).Info("Applying "+in.kind, in.kind, key, "reason", "missing")
		return true, nil
	}
	switch k := in.key(t.Name); {
	case a.applied.current(k, in.hash, in.fingerprint(observed), observed.GetResourceVersion()):
		return false, nil
	case a.applied.known(k):
		log.V(1).Info("Applying "+in.kind, in.kind, key, "reason", "intent or member object changed since the last apply")
		return true, nil
	}
	if applied, err := a.appliedBefore(ctx, t, in, observed); applied || err != nil {
		return false, err
	}
	log.V(1).Info("Applying "+in.kind, in.kind, key, "reason", "what our field manager owns in the member is not this intent")
	return true, nil
}

// appliedBefore judges an object of ours that this process holds no record
// of (it has just started, or took over as leader): it reads the object live
// into observed (the cache strips managed fields) and reports whether what
// our field manager owns there is exactly the apply configuration of in, in
// which case an apply would change nothing and it records the object as
// writeObject would have. Anything else is applied: drift (a foreign edit
// takes the field from our managed set), a spec changed meanwhile, or what
// the member made of our last apply (a webhook's addition attributed to us,
// a quantity in another form).
func (a *Applier) appliedBefore(ctx context.Context, t Target, in *intent, observed client.Object) (bool, error) {
	beforeRV := observed.GetResourceVersion()
	if len(observed.GetManagedFields()) == 0 {
		key := in.object()
		err := t.live().Get(ctx, key, observed)
		switch {
		case apierrors.IsNotFound(err):
			return false, nil // deleted since the cache read: the apply creates it
		case err != nil:
			return false, &ApplyError{Cluster: t.Name, Op: opGet, Kind: in.kind, Namespace: key.Namespace, Name: key.Name, Err: err}
		}
	}
	if owned, ok := ownedIntent(observed, a.fieldManager()); !ok || owned != in.hash {
		return false, nil
	}
	a.applied.record(in.key(t.Name), appliedRecord{intent: in.hash, beforeRV: beforeRV, after: in.fingerprint(observed)})
	return true, nil
}

// ownedIntent hashes, as newIntent hashes an intent, the apply
// configuration that manager owns in obj (its managed fields, with obj's
// values; name, namespace and type meta set as Render sets them), so that
// equal hashes are equal JSON of one type. ok is false when it cannot be
// read, and the object is then applied.
func ownedIntent(obj client.Object, manager string) (_ digest, ok bool) {
	var owned runtime.ApplyConfiguration
	var err error
	switch o := obj.(type) {
	case *appsv1.Deployment:
		owned, err = appsv1ac.ExtractDeployment(o, manager)
	case *corev1.Service:
		owned, err = corev1ac.ExtractService(o, manager)
	default:
		return digest{}, false
	}
	if err != nil {
		return digest{}, false
	}
	b, err := json.Marshal(owned)
	if err != nil {
		return digest{}, false
	}
	return digestOf(b), true
}

// writeObject server-side applies in and leaves the member's answer in
// observed, remembering both for the next skip decision.
func (a *Applier) writeObject(ctx context.Context, t Target, in *intent, observed client.Object) error {
	key := in.object()
	existed, beforeRV := observed.GetUID() != "", observed.GetResourceVersion()
	err := a.apply(ctx, t, in.config, existed)
	if !existed && apierrors.IsConflict(err) {
		// It exists after all (created a moment ago, before the cache saw
		// it) and another manager set some of these fields: judge it as one
		// found in the cache would be.
		if err := a.existsAfterAll(ctx, t, in, observed); err != nil {
			return err
		}
		existed, beforeRV = true, observed.GetResourceVersion()
		err = a.apply(ctx, t, in.config, true)
	}
	if apierrors.IsNotFound(err) {
		// The only way an apply is NotFound is a missing namespace: the memo
		// was stale (someone deleted the namespace). Check it and retry once.
		a.suspectNamespace(clusterNamespace{t.Name, key.Namespace})
		if nsErr := a.ensureNamespace(ctx, t, &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{
				Name:   key.Namespace,
				Labels: map[string]string{hubv1.ManagedByLabel: hubv1.ManagedByValue},
			},
		}); nsErr != nil {
			return nsErr
		}
		err = a.apply(ctx, t, in.config, existed)
	}
	if err != nil {
		// Whatever failed, re-check the namespace next time: a namespace
		// being deleted fails with Forbidden, not NotFound.
		a.suspectNamespace(clusterNamespace{t.Name, key.Namespace})
		a.applied.forget(in.key(t.Name))
		return &ApplyError{Cluster: t.Name, Op: opApply, Kind: in.kind, Namespace: key.Namespace, Name: key.Name, Err: err}
	}
	// The client decoded the member's answer into the apply configuration,
	// which has every field of the object; observed may hold the stale
	// version read before, so it is zeroed first.
	b, err := json.Marshal(in.config)
	reflect.ValueOf(observed).Elem().SetZero()
	if err == nil {
		err = json.Unmarshal(b, observed)
	}
	if err != nil {
		a.applied.forget(in.key(t.Name))
		return fmt.Errorf("cluster %s: read back applied %s %s: %w", t.Name, in.kind, key, err)
	}
	a.applied.record(in.key(t.Name), appliedRecord{intent: in.hash, beforeRV: beforeRV, after: in.fingerprint(observed)})
	// An apply the member answers with the version it had changed nothing
	// (the first apply of each object after a restart, typically), and is
	// no write to report.
	if !existed || observed.GetResourceVersion() != beforeRV {
		a.wrote(t.Name, ActionApply, observed)
	}
	return nil
}

// apply sends config with server-side apply. To an object that exists
// (and is ours) it forces ownership of conflicting fields, so that
// member-side edits of managed fields are reverted. An object the cache says
// is missing is applied without force: if it was created a moment ago by
// someone else, the fields they set differently make the apply a Conflict
// that writes nothing, instead of a takeover.
func (a *Applier) apply(ctx context.Context, t Target, config runtime.ApplyConfiguration, exists bool) error {
	if !exists {
		return t.Writer.Apply(ctx, config, client.FieldOwner(a.fieldManager()))
	}
	return t.Writer.Apply(ctx, config, client.FieldOwner(a.fieldManager()), client.ForceOwnership)
}

// existsAfterAll reads live into observed an object an apply without force
// found to exist, and returns a *ConflictError unless it is ours.
func (a *Applier) existsAfterAll(ctx context.Context, t Target, in *intent, observed client.Object) error {
	key := in.object()
	if err := t.live().Get(ctx, key, observed); err != nil {
		return &ApplyError{Cluster: t.Name, Op: opGet, Kind: in.kind, Namespace: key.Namespace, Name: key.Name, Err: err}
	}
	ours, err := a.owned(ctx, t, observed, key.Namespace, key.Name)
	switch {
	case err != nil:
		return err
	case !ours:
		return a.conflict(ctx, t, in.kind, observed)
	}
	return nil
}

// observe reads the member's object key into observed from the cache,
// which holds every Deployment and Service of the member (see Target.Cache):
// a miss means the object does not exist, and a new object is applied with
// no read first. The one miss that may be wrong is an object this process
// applied a moment ago, before the cache's watch brought it: with a record
// of that apply, a miss is read again live.
func (a *Applier) observe(ctx context.Context, t Target, kind string, key client.ObjectKey, observed client.Object) (found bool, err error) {
	err = t.cache().Get(ctx, key, observed)
	if apierrors.IsNotFound(err) && t.Cache != nil && a.applied.known(appliedKey{cluster: t.Name, kind: kind, namespace: key.Namespace, name: key.Name}) {
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
	ours, err := a.owned(ctx, t, svc, mr.Namespace, mr.Name)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	case !ours || svc.DeletionTimestamp != nil:
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
		a.forgetApplied(t.Name, kind, client.ObjectKeyFromObject(obj))
		a.wrote(t.Name, ActionDelete, obj)
		return nil
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		a.forgetApplied(t.Name, kind, client.ObjectKeyFromObject(obj))
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
		if err != nil && !apierrors.IsNotFound(err) {
			return false, &ApplyError{Cluster: t.Name, Op: opGet, Kind: kind, Namespace: key.Namespace, Name: key.Name, Err: err}
		}
		ours := false
		if err == nil {
			ours, err = a.owned(ctx, t, obj, key.Namespace, key.Name)
		}
		switch {
		case apierrors.IsNotFound(err):
			a.forgetApplied(t.Name, kind, key)
			return true, nil
		case err != nil:
			return false, err
		}
		return !ours, nil
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

// forgetApplied drops the apply record of an object that is gone.
func (a *Applier) forgetApplied(cluster, kind string, key client.ObjectKey) {
	a.applied.forget(appliedKey{cluster: cluster, kind: kind, namespace: key.Namespace, name: key.Name})
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
