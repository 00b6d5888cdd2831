package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
)

// rolloutScenario is (r): one new revision over the members in three
// stages, one cluster, then a quarter of them, then the rest, each stage
// all at once (maxConcurrency 100%), minReadySeconds 0.
var rolloutScenario = scenario{Name: "r", Members: 20, MyResources: 1}

// rolloutResult is what (r) measures. A wave is a stage. Its member rollout
// is, per cluster, from the revision arriving in the member to the member's
// Deployment Available at it (the marker's work); the ideal total is the
// sum of each wave's slowest member rollout: what a rollout would take whose
// decisions cost nothing. A decision is a cluster of a later wave getting
// the revision, timed from the event that allowed it: the last cluster of
// the wave before turning Available.
type rolloutResult struct {
	Waves         []int   `json:"waves"`
	TotalSeconds  float64 `json:"totalSeconds"`
	IdealSeconds  float64 `json:"idealSeconds"`
	DecisionP50   float64 `json:"decisionP50Seconds"`
	DecisionP99   float64 `json:"decisionP99Seconds"`
	DecisionCount int     `json:"decisions"`
	// FirstApplySeconds is from the hub write to the revision arriving in
	// the canary: the distribution latency of the first wave.
	FirstApplySeconds float64 `json:"firstApplySeconds"`
}

func (e *benchEnv) runRollout(ctx context.Context, bin string, s scenario) (result, error) {
	members := e.members[:s.Members]
	r := result{Scenario: s.Name, Members: s.Members, MyResources: s.MyResources}
	mk, err := startMarker(ctx, members)
	if err != nil {
		return r, err
	}
	defer mk.stop()
	op, om, err := e.startOperator(bin, s, 1)
	if err != nil {
		return r, err
	}
	defer func() { _ = op.Stop() }()
	if err := om.waitUp(ctx); err != nil {
		return r, err
	}
	if err := e.register(ctx, members); err != nil {
		return r, err
	}
	if err := om.waitMembersReady(ctx, len(members)); err != nil {
		return r, fmt.Errorf("%w (log: %s)", err, op.LogPath)
	}
	ns := "op-" + s.Name
	if err := createNamespace(ctx, e.Hub, ns); err != nil {
		return r, err
	}
	res, err := e.rollOnce(ctx, ns, members)
	if err != nil {
		return r, fmt.Errorf("%w (log: %s)", err, op.LogPath)
	}
	r.Rollout = res
	logf("scenario %s: revision 2 over %v clusters in %.2fs (ideal %.2fs: the slowest member per wave); decision latency p50 %.3fs p99 %.3fs over %d decisions; hub write to canary %.3fs",
		s.Name, res.Waves, res.TotalSeconds, res.IdealSeconds, res.DecisionP50, res.DecisionP99, res.DecisionCount, res.FirstApplySeconds)
	if err := e.cleanUp(ctx, ns, members); err != nil {
		return r, err
	}
	return r, e.deregister(ctx)
}

// rollOnce creates the MyResource, waits for revision 1 everywhere, then
// changes its image and times revision 2's way through the waves.
func (e *benchEnv) rollOnce(ctx context.Context, ns string, members []*controlplane.Cluster) (*rolloutResult, error) {
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = m.Name
	}
	quarter := max(1, len(names)/4)
	waves := [][]string{names[:1], names[1 : 1+quarter], names[1+quarter:]}
	all := ptr.To(intstr.FromString("100%"))
	mr := myResource(ns, "rollout", names)
	mr.Spec.Rollout = &hubv1.RolloutSpec{
		Stages: []hubv1.RolloutStage{
			{Name: "canary", Selection: hubv1.Selection{ClusterNames: waves[0]}, MaxConcurrency: all},
			{Name: "quarter", Selection: hubv1.Selection{ClusterNames: waves[1]}, MaxConcurrency: all},
		},
		MaxConcurrency: all,
	}
	sw, err := watchSightings(ctx, members, ns, func(d *appsv1.Deployment) string {
		if d.Name != mr.Name {
			return ""
		}
		return d.Annotations[hubv1.RevisionAnnotation]
	})
	if err != nil {
		return nil, err
	}
	defer sw.stop()
	if err := e.Hub.Client.Create(ctx, mr); err != nil {
		return nil, err
	}
	if err := sw.waitAvailable(ctx, "1", names, convergeTimeout); err != nil {
		return nil, err
	}
	before := mr.DeepCopy()
	mr.Spec.Deployment.Template.Spec.Containers[0].Image += "-r2"
	wrote := time.Now()
	// A merge patch: the operator writes the status meanwhile.
	if err := e.Hub.Client.Patch(ctx, mr, client.MergeFrom(before)); err != nil {
		return nil, err
	}
	if err := sw.waitAvailable(ctx, "2", names, convergeTimeout); err != nil {
		return nil, err
	}
	return sw.measure("2", waves, wrote), nil
}

// sightings records, per member, when each version of a Deployment arrived
// there and when it was first Available at it, from a watch on each member,
// stamped on arrival. A version is what keyOf says ("" for one not
// recorded): a revision of one Deployment for (r), a Deployment at an image
// for (d).
type sightings struct {
	keyOf    func(*appsv1.Deployment) string
	mu       sync.Mutex
	carried  map[string]map[string]time.Time // revision -> cluster -> time
	avail    map[string]map[string]time.Time
	watchers []watch.Interface
	changed  chan struct{}
}

func watchSightings(ctx context.Context, members []*controlplane.Cluster, ns string, keyOf func(*appsv1.Deployment) string) (*sightings, error) {
	sw := &sightings{keyOf: keyOf, carried: map[string]map[string]time.Time{}, avail: map[string]map[string]time.Time{}, changed: make(chan struct{}, 1)}
	for _, m := range members {
		wc, err := client.NewWithWatch(m.Config, client.Options{Scheme: controlplane.Scheme()})
		if err != nil {
			return nil, err
		}
		w, err := wc.Watch(ctx, &appsv1.DeploymentList{}, client.InNamespace(ns))
		if err != nil {
			sw.stop()
			return nil, err
		}
		sw.watchers = append(sw.watchers, w)
		go func(cluster string) {
			for ev := range w.ResultChan() {
				if dep, ok := ev.Object.(*appsv1.Deployment); ok {
					sw.note(cluster, dep, time.Now())
				}
			}
		}(m.Name)
	}
	return sw, nil
}

func (sw *sightings) stop() {
	for _, w := range sw.watchers {
		w.Stop()
	}
}

func (sw *sightings) note(cluster string, dep *appsv1.Deployment, at time.Time) {
	rev := sw.keyOf(dep)
	if rev == "" {
		return
	}
	want := ptr.Deref(dep.Spec.Replicas, 1)
	available := dep.Status.ObservedGeneration >= dep.Generation && dep.Status.UpdatedReplicas == want &&
		dep.Status.AvailableReplicas == want && dep.Status.Replicas == want
	sw.mu.Lock()
	defer sw.mu.Unlock()
	first := func(m map[string]map[string]time.Time) {
		if m[rev] == nil {
			m[rev] = map[string]time.Time{}
		}
		if _, seen := m[rev][cluster]; !seen {
			m[rev][cluster] = at
		}
	}
	first(sw.carried)
	if available {
		first(sw.avail)
	}
	select {
	case sw.changed <- struct{}{}:
	default:
	}
}

// waitAvailable waits until revision rev is Available in every cluster.
func (sw *sightings) waitAvailable(ctx context.Context, rev string, clusters []string, timeout time.Duration) error {
	return sw.wait(ctx, sw.avail, rev, len(clusters), "Available", timeout)
}

// waitCarried waits until version key has arrived in n clusters.
func (sw *sightings) waitCarried(ctx context.Context, key string, n int, timeout time.Duration) error {
	return sw.wait(ctx, sw.carried, key, n, "arrived", timeout)
}

func (sw *sightings) wait(ctx context.Context, seen map[string]map[string]time.Time, key string, want int, what string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		sw.mu.Lock()
		n := len(seen[key])
		sw.mu.Unlock()
		if n >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %s in %d of %d members: %w", key, what, n, want, ctx.Err())
		case <-sw.changed:
		case <-time.After(time.Second):
		}
	}
}

func (sw *sightings) measure(rev string, waves [][]string, wrote time.Time) *rolloutResult {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	carried, avail := sw.carried[rev], sw.avail[rev]
	res := &rolloutResult{FirstApplySeconds: carried[waves[0][0]].Sub(wrote).Seconds()}
	var decisions []float64
	var done time.Time // the last cluster of the wave before turning Available
	for i, wave := range waves {
		res.Waves = append(res.Waves, len(wave))
		slowest, last := 0.0, time.Time{}
		for _, c := range wave {
			slowest = math.Max(slowest, avail[c].Sub(carried[c]).Seconds())
			if avail[c].After(last) {
				last = avail[c]
			}
			if i > 0 {
				decisions = append(decisions, carried[c].Sub(done).Seconds())
			}
		}
		res.IdealSeconds += slowest
		done = last
	}
	res.TotalSeconds = done.Sub(wrote).Seconds()
	slices.Sort(decisions)
	res.DecisionCount = len(decisions)
	res.DecisionP50, res.DecisionP99 = nearestRank(decisions, 0.5), nearestRank(decisions, 0.99)
	return res
}

// nearestRank is the q quantile of sorted values by the nearest-rank method.
func nearestRank(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func printRollouts(w io.Writer, results []result) {
	for _, r := range results {
		if ro := r.Rollout; ro != nil {
			fmt.Fprintf(w, "rollout %s: %d members in waves %v: %.2f s (ideal %.2f s), decision latency p50 %.3f s, p99 %.3f s (%d decisions), hub write to canary %.3f s\n",
				r.Scenario, r.Members, ro.Waves, ro.TotalSeconds, ro.IdealSeconds, ro.DecisionP50, ro.DecisionP99, ro.DecisionCount, ro.FirstApplySeconds)
		}
	}
}
