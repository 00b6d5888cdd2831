package suite

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
)

// Sighting is when the test's own watch on a member first saw a revision on
// the MyResource's Deployment, and first saw it Available at it.
type Sighting struct{ Carried, Available time.Time }

// RevisionWatch records, per member, when each revision of one MyResource
// arrived there and when it turned Available, from a watch on each member
// stamped on arrival: what a user watching the members would see.
type RevisionWatch struct {
	mu   sync.Mutex
	seen map[string]map[string]*Sighting // cluster -> revision -> sighting
}

// WatchRevisions starts watching the Deployment ns/name in each of the
// clusters until the test ends.
func WatchRevisions(t *testing.T, env *controlplane.Env, ns, name string, clusters ...string) *RevisionWatch {
	t.Helper()
	rw := &RevisionWatch{seen: map[string]map[string]*Sighting{}}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	t.Cleanup(cancel)
	for _, cluster := range clusters {
		rw.seen[cluster] = map[string]*Sighting{}
		wc, err := client.NewWithWatch(env.Member(cluster).Config, client.Options{Scheme: controlplane.Scheme()})
		gomega.NewWithT(t).Expect(err).NotTo(gomega.HaveOccurred())
		go rw.follow(ctx, wc, cluster, ns, name)
	}
	return rw
}

func (rw *RevisionWatch) follow(ctx context.Context, wc client.WithWatch, cluster, ns, name string) {
	for ctx.Err() == nil {
		w, err := wc.Watch(ctx, &appsv1.DeploymentList{}, client.InNamespace(ns))
		if err != nil {
			time.Sleep(100 * time.Millisecond) // the member is down for a while: watch again
			continue
		}
		for ev := range w.ResultChan() {
			if dep, ok := ev.Object.(*appsv1.Deployment); ok && dep.Name == name {
				rw.note(cluster, dep, time.Now())
			}
		}
	}
}

func (rw *RevisionWatch) note(cluster string, dep *appsv1.Deployment, at time.Time) {
	rev := dep.Annotations[hubv1.RevisionAnnotation]
	rw.mu.Lock()
	defer rw.mu.Unlock()
	s := rw.seen[cluster][rev]
	if s == nil {
		s = &Sighting{Carried: at}
		rw.seen[cluster][rev] = s
	}
	want := ptr.Deref(dep.Spec.Replicas, 1)
	if s.Available.IsZero() && dep.Status.ObservedGeneration >= dep.Generation &&
		dep.Status.UpdatedReplicas == want && dep.Status.AvailableReplicas == want && dep.Status.Replicas == want {
		s.Available = at
	}
}

// SightingOf is a copy of what was seen of revision rev in cluster; nil when
// the revision never arrived there.
func (rw *RevisionWatch) SightingOf(cluster string, rev int64) *Sighting {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if s := rw.seen[cluster][fmt.Sprint(rev)]; s != nil {
		c := *s
		return &c
	}
	return nil
}

// ExpectStageOrder checks a revision's way through the stages: no cluster
// of a stage got it before every cluster of the stage before was Available
// at it, and within a stage no more than one cluster was updating at once.
func (rw *RevisionWatch) ExpectStageOrder(t *testing.T, rev int64, stages ...[]string) {
	t.Helper()
	var prevDone time.Time
	for i, stage := range stages {
		var got []*Sighting
		for _, c := range stage {
			s := rw.SightingOf(c, rev)
			if s == nil || s.Available.IsZero() {
				t.Fatalf("revision %d never became Available in %s: %+v", rev, c, s)
			}
			if s.Carried.Before(prevDone) {
				t.Errorf("stage %d: %s got revision %d at %s, before the stage before was done at %s",
					i, c, rev, s.Carried.Format(time.StampMilli), prevDone.Format(time.StampMilli))
			}
			got = append(got, s)
		}
		slices.SortFunc(got, func(a, b *Sighting) int { return a.Carried.Compare(b.Carried) })
		for j := 1; j < len(got); j++ {
			if got[j].Carried.Before(got[j-1].Available) {
				t.Errorf("stage %d: two clusters updating at once with maxConcurrency 1: %+v", i, got)
			}
		}
		for _, s := range got {
			if s.Available.After(prevDone) {
				prevDone = s.Available
			}
		}
		t.Logf("revision %d, stage %d (%v): first carried %s, last Available %s", rev, i, stage,
			got[0].Carried.Format(time.StampMilli), prevDone.Format(time.StampMilli))
	}
}
