package hub

import (
	"context"
	"fmt"
	"slices"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
	"example.com/hub-operator/member"
)

// fakeRegistry is a Registry over a fixed snapshot.
type fakeRegistry struct {
	members  []clusterregistry.Member
	unsynced bool

	mu        sync.Mutex
	suspected []string
}

func (f *fakeRegistry) Snapshot() []clusterregistry.Member { return f.members }
func (f *fakeRegistry) Synced() <-chan struct{} {
	c := make(chan struct{})
	if !f.unsynced {
		close(c)
	}
	return c
}
func (f *fakeRegistry) Suspect(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.suspected = append(f.suspected, name)
}

// registryOf builds a fakeRegistry from registry views; Ready clusters are
// engaged unless listed in notEngaged.
func registryOf(infos []clusterregistry.ClusterInfo, notEngaged ...string) *fakeRegistry {
	r := &fakeRegistry{}
	for _, info := range infos {
		m := clusterregistry.Member{Info: info}
		if info.State == clusterregistry.StateReady && !slices.Contains(notEngaged, info.Name) {
			m.Cluster = engaged{}
		}
		r.members = append(r.members, m)
	}
	return r
}

// ready is the registry view of a connected cluster.
func ready(name string, labels map[string]string) clusterregistry.ClusterInfo {
	return clusterregistry.ClusterInfo{Name: name, Labels: labels, State: clusterregistry.StateReady, Reason: hubv1.ReasonAsExpected}
}

// engaged stands for an engaged cluster: fakeMembers never touches it.
type engaged struct{ cluster.Cluster }

func (engaged) GetCache() cache.Cache       { return nil }
func (engaged) GetAPIReader() client.Reader { return nil }
func (engaged) GetClient() client.Client    { return nil }

// fakeCluster is one member as fakeMembers holds it.
type fakeCluster struct {
	// holds says the MyResource's objects are there.
	holds bool
	// applyErr fails Apply; deleteErr fails Delete.
	applyErr, deleteErr error
	// rollingOut: the Deployment is applied but not Available yet.
	rollingOut bool
	// revision is the revision annotation of the last apply.
	revision string
}

// fakeMembers is an in-memory Members: per cluster, whether it holds the
// MyResource's objects (one MyResource per test), and the calls made.
type fakeMembers struct {
	mu       sync.Mutex
	clusters map[string]*fakeCluster
	calls    []string
}

func newFakeMembers(holding ...string) *fakeMembers {
	f := &fakeMembers{clusters: map[string]*fakeCluster{}}
	for _, name := range holding {
		f.cluster(name).holds = true
	}
	return f
}

// cluster returns the state of a cluster; callers hold mu or run before the reconcile.
func (f *fakeMembers) cluster(name string) *fakeCluster {
	if f.clusters[name] == nil {
		f.clusters[name] = &fakeCluster{}
	}
	return f.clusters[name]
}

func (f *fakeMembers) call(op, name string) *fakeCluster {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op+" "+name)
	return f.cluster(name)
}

func (f *fakeMembers) holds(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cluster(name).holds
}

func (f *fakeMembers) Apply(_ context.Context, mr *hubv1.MyResource, t member.Target) (hubv1.ClusterStatus, error) {
	c := f.call("apply", t.Name)
	if c.applyErr != nil {
		return hubv1.ClusterStatus{Name: t.Name}, c.applyErr
	}
	f.mu.Lock()
	c.holds = true
	c.revision = mr.Annotations[hubv1.RevisionAnnotation]
	rollingOut, rev := c.rollingOut, c.revision
	f.mu.Unlock()
	if rollingOut {
		return rollingOutStatus(t.Name, mr.Generation, rev), nil
	}
	return availableStatus(t.Name, mr.Generation, rev), nil
}

func (f *fakeMembers) Observe(_ context.Context, mr *hubv1.MyResource, t member.Target) (hubv1.ClusterStatus, error) {
	if !f.call("observe", t.Name).holds {
		st := member.Status(nil, mr.Generation)
		st.Name = t.Name
		return st, nil
	}
	f.mu.Lock()
	rev := f.cluster(t.Name).revision
	f.mu.Unlock()
	return availableStatus(t.Name, mr.Generation, rev), nil
}

func (f *fakeMembers) Owns(_ context.Context, _, _ string, t member.Target) bool {
	return f.call("owns", t.Name).holds
}

func (f *fakeMembers) Delete(_ context.Context, _, _ string, t member.Target) (bool, error) {
	c := f.call("delete", t.Name)
	if c.deleteErr != nil {
		return false, c.deleteErr
	}
	f.mu.Lock()
	c.holds = false
	f.mu.Unlock()
	return true, nil
}

// availableStatus is what member reports for a Deployment at generation gen
// that rolled out completely.
func availableStatus(cluster string, gen int64, revision string) hubv1.ClusterStatus {
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Generation: 1, Annotations: map[string]string{hubv1.HubGenerationAnnotation: fmt.Sprint(gen), hubv1.RevisionAnnotation: revision}},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}}},
	}
	st := member.Status(dep, gen)
	st.Name = cluster
	return st
}

// rollingOutStatus is what member reports for a Deployment at generation gen
// whose new Pods are not Available yet.
func rollingOutStatus(cluster string, gen int64, revision string) hubv1.ClusterStatus {
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Generation: 1, Annotations: map[string]string{hubv1.HubGenerationAnnotation: fmt.Sprint(gen), hubv1.RevisionAnnotation: revision}},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)},
		Status:     appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2},
	}
	st := member.Status(dep, gen)
	st.Name = cluster
	return st
}

// revisionOf is the revision annotation a cluster's objects last got.
func (f *fakeMembers) revisionOf(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cluster(name).revision
}
