package eventmirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/lru"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	mcbuilder "sigs.k8s.io/multicluster-runtime/pkg/builder"
	mcmanager "sigs.k8s.io/multicluster-runtime/pkg/manager"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"
	mcreconcile "sigs.k8s.io/multicluster-runtime/pkg/reconcile"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/member"
)

// Defaults of the Mirror's rate limit: per MyResource, a burst of
// DefaultBurst mirrored events, then one every DefaultInterval.
const (
	DefaultBurst    = 25
	DefaultInterval = 10 * time.Second
)

const (
	// mirrorAction is the action of every mirrored event on the hub.
	mirrorAction = "MirrorMemberEvent"
	// reportingController matches the recorder of the operator's own events.
	reportingController = "hub-operator"
	// Bounds of the in-memory state: member events already mirrored, and
	// MyResources with a rate limiter. An evicted entry costs at most one
	// redundant (idempotent) write or a refilled burst.
	seenSize     = 16384
	limitersSize = 4096
	// mirrorTimeout bounds one member event's work, the first read of a
	// member's ReplicaSets or Pods (which starts their informer) included.
	mirrorTimeout = 15 * time.Second
)

// ClusterGetter returns a connected member cluster; the multicluster
// manager is one.
type ClusterGetter interface {
	GetCluster(ctx context.Context, name multicluster.ClusterName) (cluster.Cluster, error)
}

// Mirror copies member Warning events about the objects a MyResource
// owns (its Deployment, that Deployment's ReplicaSets and Pods) onto the hub
// MyResource, so a person sees what goes wrong in every cluster in one
// `kubectl describe myr`.
//
// One member event is one hub event: its name is derived from the
// MyResource, the cluster, the member event's UID and its message, and its
// series count follows the member event's count. So a member event whose
// count rises patches one hub event instead of adding one per update, and a
// restarted operator or a new leader finds and updates the same hub events
// instead of duplicating them. client-go's events.k8s.io recorder is not
// used for these: it folds events by reason and object but not by message,
// so the warnings of two Pods with the same reason would become one event
// carrying only the first Pod's message.
//
// Mirroring is rate-limited per MyResource (Burst, then one per Interval);
// what exceeds it is dropped and logged at V(1). The member events already
// mirrored, with the count mirrored, are remembered in memory, bounded, so
// that resyncs and unrelated updates write nothing.
type Mirror struct {
	// Hub reads MyResources (from the manager's cache) and writes events.
	Hub client.Client
	// Clusters returns the member cluster of a request. Default: the manager.
	Clusters ClusterGetter
	// Burst and Interval shape each MyResource's token bucket. Default:
	// DefaultBurst, DefaultInterval.
	Burst    int
	Interval time.Duration

	// now is the clock of the rate limiters; time.Now when nil.
	now func() time.Time

	mu sync.Mutex
	// seen maps seenKey to the member count last mirrored (or dropped).
	seen *lru.Cache
	// limiters maps a MyResource's types.NamespacedName to its *rate.Limiter.
	limiters *lru.Cache
	// instance is the reportingInstance of the hub events.
	instance string
}

// seenKey identifies one member event.
type seenKey struct {
	cluster string
	uid     types.UID
}

// SetupWithManager watches Warning events in every member cluster (the
// member caches hold only those) and mirrors the ones about owned objects.
// The member's Event informer starts when the cluster is engaged.
func (m *Mirror) SetupWithManager(mgr mcmanager.Manager) error {
	if m.Hub == nil {
		m.Hub = mgr.GetLocalManager().GetClient()
	}
	if m.Clusters == nil {
		m.Clusters = mgr
	}
	return mcbuilder.ControllerManagedBy(mgr).
		Named("member-events").
		For(&corev1.Event{},
			mcbuilder.WithEngageWithLocalCluster(false),
			mcbuilder.WithEngageWithProviderClusters(true),
			mcbuilder.WithPredicates(mirrorCandidates())).
		WithOptions(controller.TypedOptions[mcreconcile.Request]{MaxConcurrentReconciles: 2}).
		Complete(m)
}

// mirrorCandidates keeps events that can never be mirrored, and deletions
// (a deleted member event has nothing left to mirror), off the work queue.
func mirrorCandidates() predicate.Predicate {
	is := func(o client.Object) bool {
		ev, ok := o.(*corev1.Event)
		return ok && member.IsMirrorCandidate(ev)
	}
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return is(e.Object) },
		UpdateFunc:  func(e event.UpdateEvent) bool { return is(e.ObjectNew) },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(e event.GenericEvent) bool { return is(e.Object) },
	}
}

// Reconcile mirrors one member event, if it is about an owned object and
// new or counted again since it was last mirrored.
func (m *Mirror) Reconcile(ctx context.Context, req mcreconcile.Request) (ctrl.Result, error) {
	cl, err := m.Clusters.GetCluster(ctx, req.ClusterName)
	if err != nil {
		// Disengaged meanwhile: its events come again when it reconnects.
		return ctrl.Result{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, mirrorTimeout)
	defer cancel()
	ev := &corev1.Event{}
	if err := cl.GetCache().Get(ctx, req.NamespacedName, ev); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("cluster %s: reading event %s: %w", req.ClusterName, req.NamespacedName, err)
	}
	return ctrl.Result{}, m.mirror(ctx, string(req.ClusterName), cl.GetCache(), ev)
}

// mirror records ev of cluster on its owner's hub MyResource. owned is the
// member's cache of owned objects. A failed hub write is returned (and the
// event retried); a rate-limited one is dropped for good.
func (m *Mirror) mirror(ctx context.Context, cluster string, owned client.Reader, ev *corev1.Event) error {
	e, ok, err := member.OwnedEvent(ctx, owned, ev)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", cluster, err)
	}
	if !ok {
		return nil
	}
	key := seenKey{cluster: cluster, uid: e.UID}
	mirrored, known := m.mirroredCount(key)
	if known && mirrored >= e.Count {
		return nil
	}
	mr := &hubv1.MyResource{}
	if err := m.Hub.Get(ctx, e.Owner, mr); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading MyResource %s: %w", e.Owner, err)
	}
	if !m.allow(e.Owner) {
		ctrl.LoggerFrom(ctx).V(1).Info("Dropping a mirrored member event: rate limit of the MyResource exceeded",
			"cluster", cluster, "MyResource", klog.KObj(mr), "reason", e.Reason, "involvedObject", e.Kind+"/"+e.Name, "count", e.Count)
		m.remember(key, e.Count)
		return nil
	}
	if err := m.write(ctx, mr, cluster, e, known); err != nil {
		return err
	}
	m.remember(key, e.Count)
	return nil
}

// write creates or updates the hub event mirroring e. A member event seen
// before is most likely on the hub already, so it is patched first; a new
// one is created first. Either falls back to the other.
func (m *Mirror) write(ctx context.Context, mr *hubv1.MyResource, cluster string, e member.Event, seenBefore bool) error {
	hubEvent := m.hubEvent(mr, cluster, e)
	var err error
	if seenBefore {
		err = m.patchSeries(ctx, hubEvent)
		if apierrors.IsNotFound(err) {
			err = m.Hub.Create(ctx, hubEvent)
		}
	} else {
		err = m.Hub.Create(ctx, hubEvent)
		if apierrors.IsAlreadyExists(err) {
			err = m.patchSeries(ctx, hubEvent)
		}
	}
	if err != nil {
		return fmt.Errorf("mirroring event of cluster %s on MyResource %s/%s: %w", cluster, mr.Namespace, mr.Name, err)
	}
	return nil
}

// patchSeries sets the hub event's series to want's: a merge patch, so no
// read is needed, and one that changes nothing when it is already there.
func (m *Mirror) patchSeries(ctx context.Context, want *eventsv1.Event) error {
	if want.Series == nil {
		return nil // a count of 1 is what the event was created with
	}
	patch, err := json.Marshal(map[string]any{"series": want.Series})
	if err != nil {
		return fmt.Errorf("encoding series patch: %w", err)
	}
	target := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: want.Namespace, Name: want.Name}}
	return m.Hub.Patch(ctx, target, client.RawPatch(types.MergePatchType, patch))
}

// hubEvent is the events.k8s.io Event mirroring e on mr. Its times are the
// member's, so that writing it again (after a restart) changes nothing.
func (m *Mirror) hubEvent(mr *hubv1.MyResource, cluster string, e member.Event) *eventsv1.Event {
	now := m.clock()
	first, last := e.FirstSeen, e.LastSeen
	if first.IsZero() {
		first = now
	}
	if last.Before(first) {
		last = first
	}
	out := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: mr.Namespace, Name: mirroredEventName(mr, cluster, e)},
		EventTime:  metav1.NewMicroTime(first),
		Type:       corev1.EventTypeWarning,
		Reason:     e.HubReason(),
		Action:     mirrorAction,
		Note:       e.Note(cluster),
		Regarding: corev1.ObjectReference{
			APIVersion: hubv1.GroupVersion.String(), Kind: "MyResource",
			Namespace: mr.Namespace, Name: mr.Name, UID: mr.UID,
		},
		ReportingController: reportingController,
		ReportingInstance:   m.reportingInstance(),
	}
	// events.k8s.io/v1 accepts a series only from the second occurrence on.
	if e.Count > 1 {
		out.Series = &eventsv1.EventSeries{Count: e.Count, LastObservedTime: metav1.NewMicroTime(last)}
	}
	return out
}

// mirroredEventName is stable for one member event on one MyResource and
// differs when its message does: an events.k8s.io note is immutable.
func mirroredEventName(mr *hubv1.MyResource, cluster string, e member.Event) string {
	h := sha256.New()
	for _, s := range []string{string(mr.UID), cluster, string(e.UID), e.Reason, e.Message} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return mr.Name + "." + hex.EncodeToString(h.Sum(nil)[:8])
}

func (m *Mirror) reportingInstance() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.instance == "" {
		host, _ := os.Hostname()
		m.instance = reportingController + "-" + host
		if len(m.instance) > 128 {
			m.instance = m.instance[:128]
		}
	}
	return m.instance
}

func (m *Mirror) clock() time.Time {
	if m.now != nil {
		return m.now()
	}
	return time.Now()
}

func (m *Mirror) mirroredCount(key seenKey) (int32, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		return 0, false
	}
	v, ok := m.seen.Get(key)
	if !ok {
		return 0, false
	}
	return v.(int32), true
}

func (m *Mirror) remember(key seenKey, count int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = lru.New(seenSize)
	}
	m.seen.Add(key, count)
}

// allow takes a token from owner's bucket, if there is one.
func (m *Mirror) allow(owner types.NamespacedName) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.limiters == nil {
		m.limiters = lru.New(limitersSize)
	}
	var lim *rate.Limiter
	if v, ok := m.limiters.Get(owner); ok {
		lim = v.(*rate.Limiter)
	} else {
		burst, every := m.Burst, m.Interval
		if burst <= 0 {
			burst = DefaultBurst
		}
		if every <= 0 {
			every = DefaultInterval
		}
		lim = rate.NewLimiter(rate.Every(every), burst)
		m.limiters.Add(owner, lim)
	}
	return lim.AllowN(m.clock(), 1)
}
