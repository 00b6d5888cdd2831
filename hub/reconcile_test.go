package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	mcreconcile "sigs.k8s.io/multicluster-runtime/pkg/reconcile"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
	"example.com/hub-operator/member"
)

// harness runs the real Reconciler against a fake hub client, a fake
// registry and fake members: every branch of Reconcile in milliseconds.
type harness struct {
	r        *Reconciler
	hub      client.Client
	members  *fakeMembers
	registry *fakeRegistry
	recorder *events.FakeRecorder
	key      types.NamespacedName
	ctx      context.Context

	statusWrites int
	// failStatus fails the next status patch.
	failStatus bool
	// failRevision fails the next ControllerRevision create.
	failRevision bool
}

func newHarness(t *testing.T, mr *hubv1.MyResource, registry *fakeRegistry, members *fakeMembers) *harness {
	t.Helper()
	scheme := runtime.NewScheme()
	NewWithT(t).Expect(hubv1.AddToScheme(scheme)).To(Succeed())
	NewWithT(t).Expect(appsv1.AddToScheme(scheme)).To(Succeed())
	h := &harness{members: members, registry: registry, recorder: events.NewFakeRecorder(100), key: client.ObjectKeyFromObject(mr), ctx: t.Context()}
	h.hub = fake.NewClientBuilder().WithScheme(scheme).
		WithObjects(mr).
		WithStatusSubresource(&hubv1.MyResource{}).
		WithInterceptorFuncs(interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				if _, ok := obj.(*appsv1.ControllerRevision); ok && h.failRevision {
					h.failRevision = false
					return apierrors.NewServiceUnavailable("the hub is restarting")
				}
				return c.Create(ctx, obj, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				if h.failStatus {
					h.failStatus = false
					return apierrors.NewServiceUnavailable("the hub is restarting")
				}
				h.statusWrites++
				return c.SubResource(sub).Patch(ctx, obj, p, opts...)
			},
		}).Build()
	h.r = &Reconciler{Hub: h.hub, Registry: registry, Members: members, Recorder: h.recorder, ClusterTimeout: time.Second}
	return h
}

func (h *harness) reconcile() (ctrl.Result, error) {
	return h.r.Reconcile(h.ctx, mcreconcile.Request{Request: reconcile.Request{NamespacedName: h.key}})
}

// get returns the MyResource as the hub holds it, nil once it is gone.
func (h *harness) get(g Gomega) *hubv1.MyResource {
	mr := &hubv1.MyResource{}
	err := h.hub.Get(h.ctx, h.key, mr)
	if apierrors.IsNotFound(err) {
		return nil
	}
	g.Expect(err).NotTo(HaveOccurred())
	return mr
}

// events drains the events recorded so far.
func (h *harness) events() []string {
	var out []string
	for {
		select {
		case e := <-h.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func placedOn(p hubv1.Placement) *hubv1.MyResource {
	return &hubv1.MyResource{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", Generation: 1, Finalizers: []string{hubv1.FinalizerName}},
		Spec:       hubv1.MyResourceSpec{Placement: p},
	}
}

// deleting is mr being deleted, with status entries for the clusters it was applied to.
func deleting(mr *hubv1.MyResource, appliedTo ...string) *hubv1.MyResource {
	mr.DeletionTimestamp = &metav1.Time{Time: time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)}
	for _, name := range appliedTo {
		mr.Status.Clusters = append(mr.Status.Clusters, availableStatus(name, mr.Generation, ""))
	}
	return mr
}

func clusterNames(mr *hubv1.MyResource) []string {
	var out []string
	for _, c := range mr.Status.Clusters {
		out = append(out, c.Name)
	}
	return out
}

func cond(mr *hubv1.MyResource, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(mr.Status.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{}
}

var prodDev = []clusterregistry.ClusterInfo{
	ready("a", map[string]string{"env": "prod"}),
	ready("b", map[string]string{"env": "dev"}),
	ready("c", map[string]string{"env": "prod"}),
}

func TestReconcilePlacement(t *testing.T) {
	tests := []struct {
		name      string
		placement hubv1.Placement
		want      []string
	}{
		{"by names", hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a", "b"}}}, []string{"a", "b"}},
		{"by selector", hubv1.Placement{Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}}, []string{"a", "c"}},
		{"names OR selector", hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"b"}, ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}}, []string{"a", "b", "c"}},
		{"the empty selector selects every registered cluster", hubv1.Placement{Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{}}}, []string{"a", "b", "c"}},
		{"no placement selects none", hubv1.Placement{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			h := newHarness(t, placedOn(tt.placement), registryOf(prodDev), newFakeMembers())
			_, err := h.reconcile()
			g.Expect(err).NotTo(HaveOccurred())
			mr := h.get(g)
			g.Expect(clusterNames(mr)).To(Equal(tt.want))
			for _, name := range []string{"a", "b", "c"} {
				g.Expect(h.members.holds(name)).To(Equal(slices.Contains(tt.want, name)), "cluster %s", name)
			}
			g.Expect(cond(mr, hubv1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
			g.Expect(mr.Status.ReadySummary).To(Equal(fmt.Sprintf("%d/%d", len(tt.want), len(tt.want))))
		})
	}
}

func TestReconcileAddsTheFinalizerBeforeApplying(t *testing.T) {
	g := NewWithT(t)
	mr := placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a"}}})
	mr.Finalizers = nil
	h := newHarness(t, mr, registryOf(prodDev), newFakeMembers())
	_, err := h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.get(g).Finalizers).To(ConsistOf(hubv1.FinalizerName))
	g.Expect(h.members.holds("a")).To(BeTrue())
}

// A new revision's ControllerRevision is written beside the fan-out, not in
// front of it: a failed write fails the reconcile, which retries it, and the
// members run the revision by its number meanwhile.
func TestReconcileWritesTheRevisionBesideTheFanOut(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a", "b"}}}), registryOf(prodDev), newFakeMembers())
	h.failRevision = true
	_, err := h.reconcile()
	g.Expect(err).To(MatchError(ContainSubstring("creating revision 1 of MyResource team-a/web")))
	g.Expect(h.members.holds("a") && h.members.holds("b")).To(BeTrue(), "the members got the revision while its record was written")
	g.Expect(h.members.revisionOf("a")).To(Equal("1"))
	g.Expect(h.revisions(g)).To(BeEmpty())

	_, err = h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.revisions(g)).To(HaveLen(1), "the retry writes it")
	g.Expect(h.revisions(g)[0].Revision).To(BeEquivalentTo(1))
}

func TestReconcileWaitsForTheRegistry(t *testing.T) {
	g := NewWithT(t)
	mr := placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a"}}})
	mr.Finalizers = nil
	reg := registryOf(prodDev)
	reg.unsynced = true
	h := newHarness(t, mr, reg, newFakeMembers())
	res, err := h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(Equal(registryWait))
	got := h.get(g)
	g.Expect(got.Finalizers).To(BeEmpty(), "nothing is written before the registry is read")
	g.Expect(got.Status.Clusters).To(BeEmpty(), "a cluster not read yet is not reported missing")
	g.Expect(h.members.calls).To(BeEmpty())
}

func TestReconcileSuspendObservesWithoutWriting(t *testing.T) {
	g := NewWithT(t)
	mr := placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a", "b"}}})
	mr.Spec.Suspend = true
	h := newHarness(t, mr, registryOf(prodDev), newFakeMembers("a"))
	_, err := h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.members.calls).To(ConsistOf("observe a", "observe b"))
	got := h.get(g)
	ready := cond(got, hubv1.ConditionReady)
	g.Expect(ready.Status).To(Equal(metav1.ConditionFalse), "not Ready while suspended")
	g.Expect(ready.Reason).To(Equal(hubv1.ReasonSuspended))
	g.Expect(got.Status.ReadySummary).To(Equal("1/2"))
}

func TestReconcileReportsAnUnreachableClusterAndGoesOn(t *testing.T) {
	g := NewWithT(t)
	reg := registryOf([]clusterregistry.ClusterInfo{
		{Name: "a", State: clusterregistry.StateUnreachable, Reason: hubv1.ReasonClusterUnreachable, Message: "connection refused"},
		ready("b", nil),
	})
	h := newHarness(t, placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a", "b"}}}), reg, newFakeMembers())
	_, err := h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.members.calls).To(ConsistOf("apply b"), "an unreachable cluster is reported, never waited for")
	got := h.get(g)
	g.Expect(cond(got, hubv1.ConditionDegraded).Reason).To(Equal(hubv1.ReasonClusterUnreachable))
	g.Expect(cond(got, hubv1.ConditionDegraded).Message).To(ContainSubstring("a: connection refused"))
	g.Expect(got.Status.ReadySummary).To(Equal("1/2"))
}

func TestReconcileConflictIsRecheckedNotRetried(t *testing.T) {
	g := NewWithT(t)
	members := newFakeMembers()
	members.cluster("a").applyErr = &member.ConflictError{Cluster: "a", Kind: "Deployment", Namespace: "team-a", Name: "web", Managers: []string{"kubectl"}}
	h := newHarness(t, placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a", "b"}}}), registryOf(prodDev), members)
	res, err := h.reconcile()
	g.Expect(err).NotTo(HaveOccurred(), "someone else's object is not a reason for backoff")
	g.Expect(res.RequeueAfter).To(Equal(conflictRecheck))
	got := h.get(g)
	g.Expect(cond(got, hubv1.ConditionDegraded).Reason).To(Equal(hubv1.ReasonConflict))
	g.Expect(h.members.holds("b")).To(BeTrue(), "a conflict in one cluster does not stop the others")
	g.Expect(h.events()).To(ContainElement(HavePrefix("Warning " + hubv1.ReasonConflict)))
}

func TestReconcileWritesNothingWhenNothingChanged(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a", "b"}}}), registryOf(prodDev), newFakeMembers())
	_, err := h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.statusWrites).To(Equal(1))
	g.Expect(h.events()).To(ConsistOf("Normal Applied applied generation 1 to clusters a, b"))

	for range 3 {
		_, err = h.reconcile()
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(h.statusWrites).To(Equal(1), "a converged MyResource costs no write")
	g.Expect(h.events()).To(BeEmpty(), "and records no event")
}

func TestReconcileRecordsEventsOnlyOnceTheStatusIsWritten(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a"}}}), registryOf(prodDev), newFakeMembers())
	h.failStatus = true
	_, err := h.reconcile()
	g.Expect(err).To(MatchError(ContainSubstring("updating status of MyResource team-a/web")))
	g.Expect(h.events()).To(BeEmpty(), "the transition is not recorded: the status does not say it yet")

	_, err = h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.events()).To(ConsistOf("Normal Applied applied generation 1 to cluster a"), "recorded once, after the write")
}

func TestReconcileInvalidSelectorIsTerminal(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterSelector: invalidSelector}}), registryOf(prodDev), newFakeMembers())
	_, err := h.reconcile()
	g.Expect(errors.Is(err, reconcile.TerminalError(nil))).To(BeTrue(), "only a spec change fixes it")
	got := h.get(g)
	for _, typ := range []string{hubv1.ConditionReady, hubv1.ConditionDegraded} {
		c := cond(got, typ)
		g.Expect(c.Reason).To(Equal(hubv1.ReasonInvalidSpec), typ)
		g.Expect(c.Message).To(ContainSubstring("invalid placement.clusterSelector"), typ)
		g.Expect(c.LastTransitionTime.IsZero()).To(BeFalse(), typ)
	}
	g.Expect(h.members.calls).To(BeEmpty())
}

func TestReconcileCleansUpAClusterThatLeftThePlacement(t *testing.T) {
	g := NewWithT(t)
	mr := placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a"}}})
	mr.Status.Clusters = []hubv1.ClusterStatus{availableStatus("a", 1, ""), availableStatus("b", 1, "")}
	h := newHarness(t, mr, registryOf(prodDev), newFakeMembers("a", "b"))
	_, err := h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.members.holds("b")).To(BeFalse())
	g.Expect(clusterNames(h.get(g))).To(Equal([]string{"a"}))
	g.Expect(h.events()).To(ContainElement(HavePrefix("Normal Deleted [cluster b] deleted Deployment and Service team-a/web")))
}

func TestReconcileDelete(t *testing.T) {
	unreachable := func(name string) clusterregistry.ClusterInfo {
		return clusterregistry.ClusterInfo{Name: name, State: clusterregistry.StateUnreachable, Reason: hubv1.ReasonClusterUnreachable, Message: "i/o timeout"}
	}
	orphanPolicy := func(mr *hubv1.MyResource) *hubv1.MyResource {
		mr.Spec.DeletionPolicy = hubv1.DeletionPolicyOrphan
		return mr
	}
	forceOrphan := func(mr *hubv1.MyResource) *hubv1.MyResource {
		mr.Annotations = map[string]string{hubv1.ForceOrphanAnnotation: "true"}
		return mr
	}
	tests := []struct {
		name       string
		mr         *hubv1.MyResource
		registry   *fakeRegistry
		members    *fakeMembers
		deleteErr  error
		released   bool     // the finalizer is gone
		pending    []string // clusters named in Degraded=CleanupPending
		calls      []string
		wantEvents []string // prefixes
	}{
		{
			name:     "deletes from every cluster, then drops the finalizer",
			mr:       deleting(placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a", "b"}}}), "a", "b"),
			registry: registryOf(prodDev), members: newFakeMembers("a", "b"),
			released: true,
			calls:    []string{"owns a", "delete a", "owns b", "delete b", "owns c"},
			wantEvents: []string{"Normal Deleted [cluster a] deleted Deployment and Service team-a/web",
				"Normal Deleted [cluster b] deleted Deployment and Service team-a/web"},
		},
		{
			name:     "deletionPolicy Orphan leaves the objects and drops the finalizer",
			mr:       orphanPolicy(deleting(placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a"}}}), "a")),
			registry: registryOf(prodDev), members: newFakeMembers("a"),
			released:   true,
			wantEvents: []string{"Normal Orphaned deletionPolicy Orphan: member objects left in place in: a"},
		},
		{
			name:     "force-orphan drops the finalizer at once, even with a member unreachable",
			mr:       forceOrphan(deleting(placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a"}}}), "a")),
			registry: registryOf([]clusterregistry.ClusterInfo{unreachable("a")}), members: newFakeMembers("a"),
			released:   true,
			wantEvents: []string{"Warning Orphaned example.com/force-orphan=true: finalizer removed at once"},
		},
		{
			name:     "a cluster Ready in the registry whose connection is gone holds the deletion",
			mr:       deleting(placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a", "b"}}}), "a", "b"),
			registry: registryOf(prodDev, "a"), members: newFakeMembers("a", "b"),
			pending: []string{"a"},
			calls:   []string{"owns b", "delete b", "owns c"},
		},
		{
			name:     "it holds the deletion even when the status never named it",
			mr:       deleting(placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a"}}})),
			registry: registryOf(prodDev, "a"), members: newFakeMembers("a"),
			pending: []string{"a"},
			calls:   []string{"owns b", "owns c"},
		},
		{
			name:     "an unreachable cluster that holds objects holds the deletion",
			mr:       deleting(placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a"}}}), "a"),
			registry: registryOf([]clusterregistry.ClusterInfo{unreachable("a")}), members: newFakeMembers("a"),
			pending: []string{"a"},
		},
		{
			name:     "an unreachable cluster it was never applied to does not",
			mr:       deleting(placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"b"}}}), "b"),
			registry: registryOf([]clusterregistry.ClusterInfo{unreachable("a"), ready("b", nil)}), members: newFakeMembers("b"),
			released: true,
			calls:    []string{"owns b", "delete b"},
		},
		{
			name:     "a failed delete holds the deletion",
			mr:       deleting(placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a"}}}), "a"),
			registry: registryOf(prodDev), members: newFakeMembers("a"),
			deleteErr: errors.New("cluster a: delete Deployment team-a/web: the server is currently unable to handle the request"),
			pending:   []string{"a"},
			calls:     []string{"owns a", "delete a", "owns b", "owns c"},
		},
		{
			name:     "a cluster that left the registry is released with a warning",
			mr:       deleting(placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"gone"}}}), "gone"),
			registry: registryOf(prodDev), members: newFakeMembers(),
			released:   true,
			calls:      []string{"owns a", "owns b", "owns c"},
			wantEvents: []string{"Warning Orphaned [cluster gone] is not in the registry: Deployment and Service team-a/web were left behind there"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			if tt.deleteErr != nil {
				tt.members.cluster("a").deleteErr = tt.deleteErr
			}
			h := newHarness(t, tt.mr, tt.registry, tt.members)
			res, err := h.reconcile()
			g.Expect(err).NotTo(HaveOccurred())
			if tt.calls != nil {
				g.Expect(h.members.calls).To(ConsistOf(tt.calls))
			} else {
				g.Expect(h.members.calls).NotTo(ContainElement(HavePrefix("delete")))
			}
			evs := h.events()
			for _, want := range tt.wantEvents {
				g.Expect(evs).To(ContainElement(HavePrefix(want)))
			}
			got := h.get(g)
			if tt.released {
				g.Expect(got).To(BeNil(), "the finalizer was the last one: the MyResource is gone")
				return
			}
			g.Expect(got).NotTo(BeNil())
			g.Expect(got.Finalizers).To(ContainElement(hubv1.FinalizerName), "never dropped while a member may hold objects")
			g.Expect(res.RequeueAfter).To(Equal(cleanupRecheck))
			degraded := cond(got, hubv1.ConditionDegraded)
			g.Expect(degraded.Reason).To(Equal(hubv1.ReasonCleanupPending))
			for _, name := range tt.pending {
				g.Expect(degraded.Message).To(ContainSubstring(name + ": "))
			}
			g.Expect(cond(got, hubv1.ConditionReady).Reason).To(Equal(hubv1.ReasonDeleting))
		})
	}
}

func TestReconcileDeleteWhileSuspendedTouchesNoMember(t *testing.T) {
	g := NewWithT(t)
	mr := deleting(placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a"}}}), "a")
	mr.Spec.Suspend = true
	h := newHarness(t, mr, registryOf(prodDev), newFakeMembers("a"))
	_, err := h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.members.calls).To(BeEmpty())
	got := h.get(g)
	g.Expect(got.Finalizers).To(ContainElement(hubv1.FinalizerName))
	g.Expect(cond(got, hubv1.ConditionReady).Reason).To(Equal(hubv1.ReasonSuspended))
}
