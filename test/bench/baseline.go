package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/member"
	"example.com/hub-operator/test/controlplane"
)

// The baseline runs in the benchmark's process rather than as a second
// binary: it is a handful of client-go clients with their own rate limiters
// and connections, exactly what a separate process would hold, and keeping
// it in-process spares a second build and a second way to pass identities.
//
// It does what the operator must do for a MyResource and nothing else, with
// the operator's limits: a work queue drained by maxConcurrent workers, each
// fanning out to at most fanOut members; per member client limits of
// memberQPS/memberBurst; the hub client unlimited, as controller-runtime's
// is by default (API Priority and Fairness queues both). Per MyResource:
// a finalizer patch, per member a server-side apply of the Deployment and of
// the Service (the namespace created once per member), and one status patch
// once every member's Deployment is Available.

var myResourceGVR = schema.GroupVersionResource{Group: hubv1.GroupVersion.Group, Version: hubv1.GroupVersion.Version, Resource: myResources}

type baselineItem struct {
	key    types.NamespacedName
	status bool // write the final status rather than apply
}

type baselineMember struct {
	name        string
	cs          kubernetes.Interface
	deployments appslisters.DeploymentLister
	nsOnce      sync.Once
	nsErr       error
}

type baseline struct {
	namespace string
	members   []*baselineMember
	hub       dynamic.NamespaceableResourceInterface
	mrs       cache.GenericLister
	queue     workqueue.TypedRateLimitingInterface[baselineItem]

	mu        sync.Mutex
	available map[string]map[string]bool // MyResource name -> members whose Deployment is Available
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// startBaseline starts the baseline controller for MyResources in namespace,
// applying to members, and returns once its caches are synced.
func startBaseline(ctx context.Context, hubCluster *controlplane.Cluster, members []*controlplane.Cluster, namespace string) (*baseline, error) {
	ctx, cancel := context.WithCancel(ctx)
	b := &baseline{
		namespace: namespace,
		queue:     workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[baselineItem]()),
		available: map[string]map[string]bool{},
		cancel:    cancel,
	}
	var synced []cache.InformerSynced
	for _, c := range members {
		m, hasSynced, err := b.watchMember(ctx, c)
		if err != nil {
			cancel()
			return nil, err
		}
		b.members = append(b.members, m)
		synced = append(synced, hasSynced)
	}
	hasSynced, err := b.watchHub(ctx, hubCluster)
	if err != nil {
		cancel()
		return nil, err
	}
	synced = append(synced, hasSynced)
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		cancel()
		return nil, fmt.Errorf("baseline caches did not sync")
	}
	b.wg.Go(func() {
		<-ctx.Done()
		b.queue.ShutDown()
	})
	for range maxConcurrent {
		b.wg.Go(func() { b.work(ctx) })
	}
	return b, nil
}

func (b *baseline) stop() {
	b.cancel()
	b.wg.Wait()
}

func userConfig(c *controlplane.Cluster, user string, qps float32, burst int) (*rest.Config, error) {
	cfg, err := c.UserConfig(user)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = qps, burst
	return cfg, nil
}

func (b *baseline) watchHub(ctx context.Context, hubCluster *controlplane.Cluster) (cache.InformerSynced, error) {
	cfg, err := userConfig(hubCluster, baselineUser, -1, 0)
	if err != nil {
		return nil, err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	b.hub = dc.Resource(myResourceGVR)
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dc, 0, b.namespace, nil)
	inf := factory.ForResource(myResourceGVR)
	b.mrs = inf.Lister()
	enqueue := func(obj any) {
		if u, ok := obj.(*unstructured.Unstructured); ok {
			b.queue.Add(baselineItem{key: types.NamespacedName{Namespace: u.GetNamespace(), Name: u.GetName()}})
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue,
		// A spec change (scenario d's image change) is applied again.
		UpdateFunc: func(old, obj any) {
			if o, ok := old.(*unstructured.Unstructured); ok && o.GetGeneration() != obj.(*unstructured.Unstructured).GetGeneration() {
				enqueue(obj)
			}
		},
	}); err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	return inf.Informer().HasSynced, nil
}

func (b *baseline) watchMember(ctx context.Context, c *controlplane.Cluster) (*baselineMember, cache.InformerSynced, error) {
	cfg, err := userConfig(c, baselineUser, float32(memberQPS), memberBurst)
	if err != nil {
		return nil, nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(b.namespace))
	inf := factory.Apps().V1().Deployments()
	m := &baselineMember{name: c.Name, cs: cs, deployments: inf.Lister()}
	onChange := func(obj any) {
		if d, ok := obj.(*appsv1.Deployment); ok && d.Status.ObservedGeneration == d.Generation && available(d) {
			b.memberAvailable(d.Labels[hubv1.OwnerNameLabel], c.Name)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onChange,
		UpdateFunc: func(_, obj any) { onChange(obj) },
	}); err != nil {
		return nil, nil, err
	}
	factory.Start(ctx.Done())
	return m, inf.Informer().HasSynced, nil
}

// memberAvailable records one member's Deployment as Available and queues
// the status write once every member's is.
func (b *baseline) memberAvailable(owner, cluster string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.available[owner] == nil {
		b.available[owner] = map[string]bool{}
	}
	before := len(b.available[owner])
	b.available[owner][cluster] = true
	if before < len(b.members) && len(b.available[owner]) == len(b.members) {
		b.queue.Add(baselineItem{key: types.NamespacedName{Namespace: b.namespace, Name: owner}, status: true})
	}
}

func (b *baseline) work(ctx context.Context) {
	for {
		item, shutdown := b.queue.Get()
		if shutdown {
			return
		}
		var err error
		if item.status {
			err = b.writeStatus(ctx, item.key)
		} else {
			err = b.apply(ctx, item.key)
		}
		if err != nil && ctx.Err() == nil {
			if b.queue.NumRequeues(item) == 0 {
				logf("baseline (retried): %s: %v", item.key, err)
			}
			b.queue.AddRateLimited(item)
		} else {
			b.queue.Forget(item)
		}
		b.queue.Done(item)
	}
}

func (b *baseline) get(key types.NamespacedName) (*hubv1.MyResource, error) {
	obj, err := b.mrs.ByNamespace(key.Namespace).Get(key.Name)
	if err != nil {
		return nil, err
	}
	mr := &hubv1.MyResource{}
	return mr, runtime.DefaultUnstructuredConverter.FromUnstructured(obj.(*unstructured.Unstructured).Object, mr)
}

func (b *baseline) apply(ctx context.Context, key types.NamespacedName) error {
	mr, err := b.get(key)
	if err != nil {
		return err
	}
	// The operator's finalizer patch also carries an optimistic lock.
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"finalizers": append(mr.Finalizers, hubv1.FinalizerName), "resourceVersion": mr.ResourceVersion}})
	if err != nil {
		return err
	}
	if _, err := b.hub.Namespace(key.Namespace).Patch(ctx, key.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return err
	}
	var g errgroup.Group
	g.SetLimit(fanOut)
	for _, m := range b.members {
		g.Go(func() error { return b.applyMember(ctx, mr, m) })
	}
	return g.Wait()
}

func (b *baseline) applyMember(ctx context.Context, mr *hubv1.MyResource, m *baselineMember) error {
	desired, err := member.Render(mr, member.Target{Name: m.name})
	if err != nil {
		return err
	}
	m.nsOnce.Do(func() {
		_, m.nsErr = m.cs.CoreV1().Namespaces().Create(ctx, desired.Namespace, metav1.CreateOptions{FieldManager: "bench-baseline"})
		if apierrors.IsAlreadyExists(m.nsErr) {
			m.nsErr = nil
		}
	})
	if m.nsErr != nil {
		return m.nsErr
	}
	if err := applyObject(ctx, m.cs.AppsV1().RESTClient(), deployments, mr.Namespace, mr.Name, desired.Deployment); err != nil {
		return fmt.Errorf("cluster %s: %w", m.name, err)
	}
	if desired.Service != nil {
		if err := applyObject(ctx, m.cs.CoreV1().RESTClient(), "services", mr.Namespace, mr.Name, desired.Service); err != nil {
			return fmt.Errorf("cluster %s: %w", m.name, err)
		}
	}
	return nil
}

// applyObject server-side applies the apply configuration config to the
// object namespace/name.
func applyObject(ctx context.Context, rc rest.Interface, resource, namespace, name string, config any) error {
	body, err := json.Marshal(config)
	if err != nil {
		return err
	}
	return rc.Patch(types.ApplyPatchType).
		Namespace(namespace).Resource(resource).Name(name).
		Param("fieldManager", "bench-baseline").Param("force", "true").
		Body(body).Do(ctx).Error()
}

// writeStatus writes the one status patch: every member Ready, with the
// operator's per-cluster entries so that both write statuses of a size.
func (b *baseline) writeStatus(ctx context.Context, key types.NamespacedName) error {
	mr, err := b.get(key)
	if err != nil {
		return err
	}
	now := metav1.Now()
	st := hubv1.MyResourceStatus{ObservedGeneration: mr.Generation}
	for _, m := range b.members {
		d, err := m.deployments.Deployments(key.Namespace).Get(key.Name)
		if err != nil {
			return err
		}
		cs := member.Status(d, mr.Generation)
		cs.Name = m.name
		for i := range cs.Conditions {
			cs.Conditions[i].LastTransitionTime = now
		}
		st.Clusters = append(st.Clusters, cs)
	}
	n := int32(len(b.members)) //nolint:gosec // a few members
	st.SelectedClusters, st.ReadyClusters, st.ReadySummary = n, n, fmt.Sprintf("%d/%d", n, n)
	st.Conditions = []metav1.Condition{
		{Type: hubv1.ConditionReady, Status: metav1.ConditionTrue, Reason: hubv1.ReasonAllClustersReady,
			Message: fmt.Sprintf("%d/%d clusters ready", n, n), ObservedGeneration: mr.Generation, LastTransitionTime: now},
		{Type: hubv1.ConditionDegraded, Status: metav1.ConditionFalse, Reason: hubv1.ReasonAsExpected,
			ObservedGeneration: mr.Generation, LastTransitionTime: now},
	}
	body, err := json.Marshal(map[string]any{statusKey: st})
	if err != nil {
		return err
	}
	_, err = b.hub.Namespace(key.Namespace).Patch(ctx, key.Name, types.MergePatchType, body, metav1.PatchOptions{}, statusKey)
	return err
}
