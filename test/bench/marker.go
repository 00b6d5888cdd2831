package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"example.com/hub-operator/test/controlplane"
)

// markerWorkers is how many status patches the marker sends at once per member.
const markerWorkers = 4

// marker stands in for the Deployment controller and the kubelets the
// members do not run: it patches every new or changed Deployment's status to
// fully Available at its current generation. The operator's and the
// baseline's Deployments get the same treatment, and its writes (the
// deployments/status subresource) are left out of both counts.
type marker struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

func startMarker(ctx context.Context, members []*controlplane.Cluster) (*marker, error) {
	ctx, cancel := context.WithCancel(ctx)
	m := &marker{cancel: cancel}
	for _, c := range members {
		if err := m.watch(ctx, c); err != nil {
			m.stop()
			return nil, err
		}
	}
	return m, nil
}

func (m *marker) watch(ctx context.Context, c *controlplane.Cluster) error {
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(cs, 0)
	inf := factory.Apps().V1().Deployments()
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[types.NamespacedName]())
	enqueue := func(obj any) {
		if d, ok := obj.(*appsv1.Deployment); ok && needsMark(d) {
			q.Add(types.NamespacedName{Namespace: d.Namespace, Name: d.Name})
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		return fmt.Errorf("cluster %s: marker cache did not sync", c.Name)
	}
	m.wg.Go(func() {
		<-ctx.Done()
		q.ShutDown()
		factory.Shutdown()
	})
	for range markerWorkers {
		m.wg.Go(func() {
			for {
				key, shutdown := q.Get()
				if shutdown {
					return
				}
				d, err := inf.Lister().Deployments(key.Namespace).Get(key.Name)
				if err == nil && needsMark(d) {
					err = mark(ctx, cs, d)
				}
				if err != nil && ctx.Err() == nil {
					q.AddRateLimited(key)
					m.record(fmt.Errorf("cluster %s: marking %s: %w", c.Name, key, err))
				} else {
					q.Forget(key)
				}
				q.Done(key)
			}
		})
	}
	return nil
}

func (m *marker) record(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.errs) < 10 {
		m.errs = append(m.errs, err)
	}
}

// stop ends the marker and returns the first errors it met (it retried them).
func (m *marker) stop() []error {
	m.cancel()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.errs
}

func needsMark(d *appsv1.Deployment) bool {
	want := ptr.Deref(d.Spec.Replicas, 1)
	s := d.Status
	return s.ObservedGeneration != d.Generation || s.AvailableReplicas != want || s.UpdatedReplicas != want ||
		s.ReadyReplicas != want || s.Replicas != want || !available(d)
}

func available(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// mark patches the status subresource as the Deployment controller would
// once every replica is up.
func mark(ctx context.Context, cs kubernetes.Interface, d *appsv1.Deployment) error {
	n := ptr.Deref(d.Spec.Replicas, 1)
	now := metav1.NewTime(time.Now())
	st := appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		Replicas:           n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
				Message: "marked available by the benchmark", LastUpdateTime: now, LastTransitionTime: now},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable",
				Message: "marked available by the benchmark", LastUpdateTime: now, LastTransitionTime: now},
		},
	}
	body, err := json.Marshal(map[string]any{statusKey: st})
	if err != nil {
		return err
	}
	_, err = cs.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.MergePatchType, body, metav1.PatchOptions{}, statusKey)
	return err
}
