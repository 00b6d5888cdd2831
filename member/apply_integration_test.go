package member

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gstruct"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
	"example.com/hub-operator/test/controlplane"
	"example.com/hub-operator/test/suite"
)

const waitTimeout = 30 * time.Second

// writeLog records every write the Applier reports through OnWrite.
type writeLog struct {
	mu     sync.Mutex
	writes []string
}

func (w *writeLog) record(_ string, action Action, obj client.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(action)+" "+kindOf(obj)+" "+obj.GetNamespace()+"/"+obj.GetName())
}

func (w *writeLog) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.writes
	w.writes = nil
	return out
}

// operatorTarget builds the Target the hub would build for m1: clients with
// the operator's own (audited) identity, and a real cache configured as in
// production (clusterregistry.MemberCacheOptions: only objects labelled
// managed-by=hub-operator, managed fields stripped).
func operatorTarget(t *testing.T, m *controlplane.Cluster, clusterLabels map[string]string) Target {
	t.Helper()
	g := NewWithT(t)
	cfg, err := clientcmd.RESTConfigFromKubeConfig(m.OperatorKubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	live, err := client.New(cfg, client.Options{Scheme: controlplane.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	opts := clusterregistry.MemberCacheOptions()
	opts.Scheme = controlplane.Scheme()
	c, err := cache.New(cfg, opts)
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Start(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	// Start the informers now, so the first Apply does not pay for it.
	for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}} {
		_, err := c.GetInformer(t.Context(), obj)
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(c.WaitForCacheSync(t.Context())).To(BeTrue())
	return Target{Name: m.Name, Labels: clusterLabels, Cache: c, Reader: live, Writer: live}
}

// requestsFor counts the operator's requests on objects in namespace ns
// (and on the namespace itself), excluding the cache's list and watch.
func requestsFor(g Gomega, m *controlplane.Cluster, ns string) (reads, writes int) {
	events, err := m.AuditEvents()
	g.Expect(err).NotTo(HaveOccurred())
	for _, e := range events {
		if e.ObjectRef == nil || e.Verb == "list" || e.Verb == "watch" {
			continue
		}
		isNamespace := e.ObjectRef.Resource == "namespaces" && e.ObjectRef.Name == ns
		if e.ObjectRef.Namespace != ns && !isNamespace {
			continue
		}
		if e.IsWrite() {
			writes++
		} else {
			reads++
		}
	}
	return reads, writes
}

func appliedCondition(st hubv1.ClusterStatus) *metav1.Condition {
	return meta.FindStatusCondition(st.Conditions, hubv1.ClusterConditionApplied)
}

// TestApplyIntegration drives the Applier against a real member API server.
// The member runs no kube-controller-manager, so Deployments never roll out
// and deleted namespaces never finish terminating; those behaviours are
// covered where members have fake nodes.
func TestApplyIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a kube-apiserver")
	}
	clusterLabels := map[string]string{"env": "prod"}
	env := controlplane.StartForTest(t, controlplane.Options{Members: []controlplane.MemberOptions{{Name: "m1", Labels: clusterLabels}}})
	m1 := env.Member("m1")
	target := operatorTarget(t, m1, clusterLabels)
	writes := &writeLog{}
	applier := &Applier{OnWrite: writes.record}

	// Each subtest works in its own namespace, named like a hub namespace.
	newMR := func(ns string) *hubv1.MyResource {
		mr := newMyResource()
		mr.Namespace = ns
		mr.UID = types.UID("uid-" + ns)
		return mr
	}
	liveDeployment := func(g Gomega, ns string) *appsv1.Deployment {
		dep := &appsv1.Deployment{}
		g.Expect(m1.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web"}, dep)).To(Succeed())
		return dep
	}
	// cached waits until the cache holds the Deployment as cond wants it, so
	// the next Apply sees what the member has.
	cached := func(g Gomega, ns string, cond func(Gomega, *appsv1.Deployment)) {
		g.Eventually(func(g Gomega) {
			dep := &appsv1.Deployment{}
			g.Expect(target.Cache.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web"}, dep)).To(Succeed())
			cond(g, dep)
		}).WithContext(t.Context()).WithTimeout(waitTimeout).Should(Succeed())
	}

	t.Run("apply creates the namespace, Deployment and Service with the contract metadata", func(t *testing.T) {
		g := NewWithT(t)
		mr := newMR("create")
		st, err := applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())

		g.Expect(st.Name).To(Equal("m1"))
		g.Expect(appliedCondition(st)).To(gstruct.PointTo(gstruct.MatchFields(gstruct.IgnoreExtras, gstruct.Fields{
			"Status": Equal(metav1.ConditionTrue), "Reason": Equal(hubv1.ReasonApplied),
		})))
		g.Expect(st.ObservedGeneration).To(Equal(mr.Generation))
		avail := meta.FindStatusCondition(st.Conditions, hubv1.ClusterConditionAvailable)
		g.Expect(avail.Status).To(Equal(metav1.ConditionFalse), "no Deployment controller runs in this member")
		g.Expect(avail.Reason).To(Equal(hubv1.ReasonDeploymentProgressing))
		g.Expect(writes.take()).To(ConsistOf("Create Namespace /create", "Apply Deployment create/web", "Apply Service create/web"))

		ns := &corev1.Namespace{}
		g.Expect(m1.Client.Get(t.Context(), client.ObjectKey{Name: "create"}, ns)).To(Succeed())
		g.Expect(ns.Labels).To(HaveKeyWithValue(hubv1.ManagedByLabel, hubv1.ManagedByValue))

		dep := liveDeployment(g, "create")
		svc := &corev1.Service{}
		g.Expect(m1.Client.Get(t.Context(), client.ObjectKey{Namespace: "create", Name: "web"}, svc)).To(Succeed())
		for _, obj := range []client.Object{dep, svc} {
			g.Expect(obj.GetLabels()).To(Equal(map[string]string{
				hubv1.ManagedByLabel: hubv1.ManagedByValue, hubv1.OwnerNamespaceLabel: "create", hubv1.OwnerNameLabel: "web",
			}))
			g.Expect(obj.GetAnnotations()).To(HaveKeyWithValue(hubv1.OwnerUIDAnnotation, "uid-create"))
			g.Expect(obj.GetAnnotations()).To(HaveKeyWithValue(hubv1.HubGenerationAnnotation, "3"))
			g.Expect(obj.GetManagedFields()).To(ContainElement(gstruct.MatchFields(gstruct.IgnoreExtras, gstruct.Fields{
				"Manager": Equal(hubv1.ManagedByValue), "Operation": Equal(metav1.ManagedFieldsOperationApply),
			})), "written with server-side apply by field manager hub-operator")
		}
		g.Expect(dep.Spec.Selector.MatchLabels).To(Equal(map[string]string{hubv1.SelectorLabel: "web"}))
		g.Expect(dep.Spec.Template.Labels).To(HaveKeyWithValue(hubv1.SelectorLabel, "web"))
		g.Expect(svc.Spec.Selector).To(Equal(map[string]string{hubv1.SelectorLabel: "web"}))
	})

	t.Run("concurrent applies into one new namespace check and create it once", func(t *testing.T) {
		g := NewWithT(t)
		const ns, n = "burst", 12
		fresh := &Applier{} // nothing remembered about any namespace
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				mr := newMR(ns)
				mr.Name, mr.UID = fmt.Sprintf("web-%d", i), types.UID(fmt.Sprintf("uid-%s-%d", ns, i))
				_, errs[i] = fresh.Apply(t.Context(), mr, target)
			})
		}
		wg.Wait()
		g.Expect(errors.Join(errs...)).NotTo(HaveOccurred())
		events, err := m1.AuditEvents()
		g.Expect(err).NotTo(HaveOccurred())
		nsRequests := 0
		for _, e := range events {
			if e.ObjectRef != nil && e.ObjectRef.Resource == "namespaces" && e.ObjectRef.Name == ns {
				nsRequests++
			}
		}
		t.Logf("%d concurrent applies sent %d namespace requests", n, nsRequests)
		g.Expect(nsRequests).To(Equal(1), "one create for all %d applies: a namespace this process has not met is created, not read first", n)
	})

	t.Run("a namespace someone else made is used as it is: the create is refused, and it is read once", func(t *testing.T) {
		g := NewWithT(t)
		const ns = "pre-made"
		g.Expect(m1.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: ns, Labels: map[string]string{"team": "a"},
		}})).To(Succeed())
		made := &writeLog{}
		fresh := &Applier{OnWrite: made.record}
		for range 2 {
			_, err := fresh.Apply(t.Context(), newMR(ns), target)
			g.Expect(err).NotTo(HaveOccurred())
		}
		g.Expect(made.take()).To(ConsistOf("Apply Deployment pre-made/web", "Apply Service pre-made/web"), "no namespace is reported created")
		events, err := m1.AuditEvents()
		g.Expect(err).NotTo(HaveOccurred())
		var seq []string
		for _, e := range events {
			if e.ObjectRef != nil && e.ObjectRef.Resource == "namespaces" && e.ObjectRef.Name == ns {
				seq = append(seq, fmt.Sprintf("%s %d", e.Verb, e.ResponseStatus.Code))
			}
		}
		g.Expect(seq).To(Equal([]string{"create 409", "get 200"}), "the second apply needs no namespace request")
		live := &corev1.Namespace{}
		g.Expect(m1.Client.Get(t.Context(), client.ObjectKey{Name: ns}, live)).To(Succeed())
		g.Expect(live.Labels).To(Equal(map[string]string{"team": "a", corev1.LabelMetadataName: ns}), "left as its maker made it")
	})

	t.Run("a new MyResource costs one apply per object, both at once, and no read", func(t *testing.T) {
		g := NewWithT(t)
		const ns = "one-step"
		_, err := applier.Apply(t.Context(), newMR(ns), target)
		g.Expect(err).NotTo(HaveOccurred())
		// The cache holds every Deployment and Service of the member (foreign
		// ones by name), so a miss there is a missing object: no live read
		// stands between the hub write and the member's object.
		g.Eventually(func(g Gomega) {
			events, err := m1.AuditEvents()
			g.Expect(err).NotTo(HaveOccurred())
			var seq []string
			for _, e := range events {
				if e.ObjectRef != nil && e.ObjectRef.Namespace == ns && e.ObjectRef.Resource != "namespaces" && e.Verb != "list" && e.Verb != "watch" {
					seq = append(seq, e.Verb+" "+e.ObjectRef.Resource)
				}
			}
			g.Expect(seq).To(ConsistOf("patch deployments", "patch services"))
		}).WithContext(t.Context()).WithTimeout(waitTimeout).Should(Succeed())
	})

	t.Run("a second apply with an in-sync cache sends no request at all", func(t *testing.T) {
		g := NewWithT(t)
		mr := newMR("at-rest")
		_, err := applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		writes.take()
		before := liveDeployment(g, "at-rest")
		cached(g, "at-rest", func(g Gomega, dep *appsv1.Deployment) {
			g.Expect(dep.ResourceVersion).To(Equal(before.ResourceVersion))
		})
		g.Eventually(func(g Gomega) {
			svc := &corev1.Service{}
			g.Expect(target.Cache.Get(t.Context(), client.ObjectKey{Namespace: "at-rest", Name: "web"}, svc)).To(Succeed())
		}).WithContext(t.Context()).WithTimeout(waitTimeout).Should(Succeed())
		reads0, writes0 := requestsFor(g, m1, "at-rest")

		for range 3 {
			st, err := applier.Apply(t.Context(), mr, target)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(appliedCondition(st).Status).To(Equal(metav1.ConditionTrue))
		}

		observed, err := applier.Observe(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(appliedCondition(observed).Status).To(Equal(metav1.ConditionTrue), "Observe reads the same state without writing")

		g.Expect(writes.take()).To(BeEmpty())
		g.Expect(liveDeployment(g, "at-rest").ResourceVersion).To(Equal(before.ResourceVersion))
		g.Expect(writes0).To(BeNumerically(">=", 3), "the audit log records the operator's writes")
		// One deliberate read as the operator marks the end of the applies
		// in the audit log, so the counts below are not read too early.
		g.Expect(target.Reader.Get(t.Context(), client.ObjectKeyFromObject(before), &appsv1.Deployment{})).To(Succeed())
		g.Eventually(func(g Gomega) {
			reads, wr := requestsFor(g, m1, "at-rest")
			g.Expect(wr-writes0).To(BeZero(), "zero writes at rest")
			g.Expect(reads-reads0).To(Equal(1), "the namespace is memoized and the objects come from the cache")
		}).WithContext(t.Context()).WithTimeout(waitTimeout).Should(Succeed())
	})

	// A restart or a new leader starts with no apply records: over objects
	// a previous process converged, it reads each once live and writes
	// nothing, and drift made while no process ran is still reverted.
	// convergedBy has the first Applier converge a MyResource in ns, its
	// objects in the cache as the member has them.
	convergedBy := func(t *testing.T, g Gomega, ns string) *hubv1.MyResource {
		t.Helper()
		mr := newMR(ns)
		_, err := applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		cachedBoth(t, g, m1, target, ns)
		return mr
	}
	t.Run("a new process over converged objects reads each once live and writes nothing", func(t *testing.T) {
		g := NewWithT(t)
		const ns = "restart"
		mr := convergedBy(t, g, ns)
		before := liveDeployment(g, ns)
		reads0, writes0 := requestsFor(g, m1, ns)

		restarted := &writeLog{}
		fresh := &Applier{OnWrite: restarted.record} // remembers nothing, as after a restart
		for range 3 {
			st, err := fresh.Apply(t.Context(), mr, target)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(appliedCondition(st).Status).To(Equal(metav1.ConditionTrue))
		}
		g.Expect(restarted.take()).To(BeEmpty())
		g.Expect(liveDeployment(g, ns).ResourceVersion).To(Equal(before.ResourceVersion))
		// liveDeployment reads as the test's admin, which the counts leave
		// out; this read as the operator marks the end of the applies.
		g.Expect(target.Reader.Get(t.Context(), client.ObjectKeyFromObject(before), &appsv1.Deployment{})).To(Succeed())
		g.Eventually(func(g Gomega) {
			reads, wr := requestsFor(g, m1, ns)
			g.Expect(wr-writes0).To(BeZero(), "no apply over objects a previous process converged")
			g.Expect(reads-reads0).To(Equal(3), "each object once live, then the marker read: objects of ours prove the namespace, which is not read")
		}).WithContext(t.Context()).WithTimeout(waitTimeout).Should(Succeed())
	})

	t.Run("drift made while no process ran is reverted by a new process", func(t *testing.T) {
		g := NewWithT(t)
		const ns = "restart-drift"
		mr := convergedBy(t, g, ns)

		// A foreign edit of a managed field, and a label of ours removed.
		dep := liveDeployment(g, ns)
		dep.Spec.Template.Spec.Containers[0].Image = "evil:1"
		g.Expect(m1.Client.Update(t.Context(), dep)).To(Succeed())
		svc := &corev1.Service{}
		g.Expect(m1.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web"}, svc)).To(Succeed())
		delete(svc.Labels, hubv1.OwnerNamespaceLabel)
		g.Expect(m1.Client.Update(t.Context(), svc)).To(Succeed())
		cachedBoth(t, g, m1, target, ns)

		restarted := &writeLog{}
		fresh := &Applier{OnWrite: restarted.record}
		_, err := fresh.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(restarted.take()).To(ConsistOf("Apply Deployment "+ns+"/web", "Apply Service "+ns+"/web"))
		g.Expect(liveDeployment(g, ns).Spec.Template.Spec.Containers[0].Image).To(Equal("nginx:1.27"))
		g.Expect(m1.Client.Get(t.Context(), client.ObjectKeyFromObject(svc), svc)).To(Succeed())
		g.Expect(svc.Labels).To(HaveKeyWithValue(hubv1.OwnerNamespaceLabel, ns))
	})

	t.Run("a new hub generation is applied and read back as observedGeneration", func(t *testing.T) {
		g := NewWithT(t)
		mr := newMR("generation")
		_, err := applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		mr.Generation = 4
		mr.Spec.Deployment.Replicas = ptr.To[int32](5)
		st, err := applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(st.ObservedGeneration).To(Equal(int64(4)))
		g.Expect(st.Replicas).To(Equal(int32(5)))
		g.Expect(liveDeployment(g, "generation").Spec.Replicas).To(HaveValue(Equal(int32(5))))
	})

	t.Run("an image and replicas edited in the member are reverted", func(t *testing.T) {
		g := NewWithT(t)
		mr := newMR("drift")
		_, err := applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())

		dep := liveDeployment(g, "drift")
		dep.Spec.Template.Spec.Containers[0].Image = "evil:1"
		dep.Spec.Replicas = ptr.To[int32](9)
		g.Expect(m1.Client.Update(t.Context(), dep)).To(Succeed())
		cached(g, "drift", func(g Gomega, dep *appsv1.Deployment) {
			g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("evil:1"))
		})
		writes.take()

		_, err = applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(writes.take()).To(Equal([]string{"Apply Deployment drift/web"}), "only the drifted object is written")
		dep = liveDeployment(g, "drift")
		g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("nginx:1.27"))
		g.Expect(dep.Spec.Replicas).To(HaveValue(Equal(int32(2))))
	})

	t.Run("owner labels stripped in the member are restored, not treated as a conflict", func(t *testing.T) {
		g := NewWithT(t)
		mr := newMR("relabel")
		_, err := applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		cached(g, "relabel", func(Gomega, *appsv1.Deployment) {})

		dep := liveDeployment(g, "relabel")
		dep.Labels = nil
		g.Expect(m1.Client.Update(t.Context(), dep)).To(Succeed())
		// Unlabelled, the cache keeps only its name.
		cached(g, "relabel", func(g Gomega, d *appsv1.Deployment) { g.Expect(d.Labels).To(BeEmpty()) })

		_, err = applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(liveDeployment(g, "relabel").Labels).To(HaveKeyWithValue(hubv1.ManagedByLabel, hubv1.ManagedByValue))
	})

	// The production cache strips managed fields, and an object that keeps
	// its managed-by label stays in it: whether it is ours is confirmed by a
	// live read, not judged from the cached copy.
	t.Run("an owner label removed in the member is restored, not a Conflict", func(t *testing.T) {
		g := NewWithT(t)
		const ns = "owner-label"
		mr := newMR(ns)
		_, err := applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		// The name label twice: the same edit made again after its revert
		// is drift again, though the object looks as it did the first time.
		for _, label := range []string{hubv1.OwnerNameLabel, hubv1.OwnerNameLabel, hubv1.OwnerNamespaceLabel} {
			for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}} {
				stripLabel(t, g, m1, target, obj, ns, label)
			}
			writes.take()
			_, err = applier.Apply(t.Context(), mr, target)
			g.Expect(err).NotTo(HaveOccurred(), "removing %s makes no Conflict", label)
			g.Expect(writes.take()).To(ConsistOf("Apply Deployment "+ns+"/web", "Apply Service "+ns+"/web"))
			for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}} {
				g.Expect(m1.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web"}, obj)).To(Succeed())
				g.Expect(obj.GetLabels()).To(Equal(map[string]string{
					hubv1.ManagedByLabel: hubv1.ManagedByValue, hubv1.OwnerNamespaceLabel: ns, hubv1.OwnerNameLabel: "web",
				}), "%s restored on the %T", label, obj)
			}
		}
	})

	t.Run("an owned object with an owner label removed is still owned, and deleted", func(t *testing.T) {
		g := NewWithT(t)
		const ns = "owner-label-delete"
		_, err := applier.Apply(t.Context(), newMR(ns), target)
		g.Expect(err).NotTo(HaveOccurred())
		for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}} {
			stripLabel(t, g, m1, target, obj, ns, hubv1.OwnerNameLabel)
		}
		g.Expect(applier.Owns(t.Context(), ns, "web", target)).To(BeTrue(), "a cluster that leaves the placement is cleaned up")
		writes.take()
		g.Eventually(func(g Gomega) {
			gone, err := applier.Delete(t.Context(), ns, "web", target)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(gone).To(BeTrue())
		}).WithContext(t.Context()).WithTimeout(waitTimeout).Should(Succeed())
		g.Expect(writes.take()).To(ConsistOf("Delete Deployment "+ns+"/web", "Delete Service "+ns+"/web"))
	})

	t.Run("an owner label naming another MyResource stays a Conflict", func(t *testing.T) {
		g := NewWithT(t)
		const ns = "owner-label-other"
		mr := newMR(ns)
		_, err := applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		dep := liveDeployment(g, ns)
		dep.Labels[hubv1.OwnerNameLabel] = "api"
		g.Expect(m1.Client.Update(t.Context(), dep)).To(Succeed())
		cached(g, ns, func(g Gomega, d *appsv1.Deployment) {
			g.Expect(d.Labels).To(HaveKeyWithValue(hubv1.OwnerNameLabel, "api"))
		})
		writes.take()
		_, err = applier.Apply(t.Context(), mr, target)
		g.Expect(Reason(err)).To(Equal(hubv1.ReasonConflict), "got %v", err)
		g.Expect(writes.take()).To(BeEmpty())
		g.Expect(liveDeployment(g, ns).Labels).To(HaveKeyWithValue(hubv1.OwnerNameLabel, "api"))
	})

	t.Run("a Deployment deleted in the member is recreated", func(t *testing.T) {
		g := NewWithT(t)
		mr := newMR("recreate")
		_, err := applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		old := liveDeployment(g, "recreate")
		g.Expect(m1.Client.Delete(t.Context(), old)).To(Succeed())

		// The cache may still hold the old object for a moment; the hub's
		// watch on the deletion reconciles again, as this loop does.
		g.Eventually(func(g Gomega) {
			_, err := applier.Apply(t.Context(), mr, target)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(liveDeployment(g, "recreate").UID).NotTo(Equal(old.UID))
		}).WithContext(t.Context()).WithTimeout(waitTimeout).Should(Succeed())
	})

	t.Run("a pre-existing unmanaged Deployment yields a ConflictError and stays untouched", func(t *testing.T) {
		g := NewWithT(t)
		mr := newMR("conflict")
		g.Expect(m1.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "conflict"}})).To(Succeed())
		theirs := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "conflict", Labels: map[string]string{"app": "theirs"}},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "theirs"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "theirs"}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "theirs", Image: "theirs:1"}}},
				},
			},
		}
		g.Expect(m1.Client.Create(t.Context(), theirs, client.FieldOwner("someone-else"))).To(Succeed())
		seenByCache(t.Context(), g, target, theirs)
		writes.take()

		st, err := applier.Apply(t.Context(), mr, target)
		var conflict *ConflictError
		g.Expect(errors.As(err, &conflict)).To(BeTrue(), "got %v", err)
		g.Expect(conflict.Kind).To(Equal("Deployment"))
		g.Expect(conflict.Managers).To(Equal([]string{"someone-else"}), "managers are read live, the cache strips them")
		g.Expect(Reason(err)).To(Equal(hubv1.ReasonConflict))
		g.Expect(appliedCondition(st)).To(gstruct.PointTo(gstruct.MatchFields(gstruct.IgnoreExtras, gstruct.Fields{
			"Status": Equal(metav1.ConditionFalse), "Reason": Equal(hubv1.ReasonConflict),
		})))
		g.Expect(writes.take()).To(BeEmpty())

		after := liveDeployment(g, "conflict")
		g.Expect(after.ResourceVersion).To(Equal(theirs.ResourceVersion))
		g.Expect(after.Labels).To(Equal(map[string]string{"app": "theirs"}))
		g.Expect(apierrors.IsNotFound(m1.Client.Get(t.Context(), client.ObjectKey{Namespace: "conflict", Name: "web"}, &corev1.Service{}))).
			To(BeTrue(), "nothing else is applied for a conflicting MyResource")

		_, err = applier.Observe(t.Context(), mr, target)
		g.Expect(Reason(err)).To(Equal(hubv1.ReasonConflict), "got %v", err)

		gone, err := applier.Delete(t.Context(), "conflict", "web", target)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(gone).To(BeTrue(), "an object that is not ours does not hold a deletion")
		g.Expect(liveDeployment(g, "conflict").UID).To(Equal(theirs.UID), "Delete leaves what is not ours")
	})

	t.Run("a foreign Deployment the cache has not seen yet is a Conflict, and nothing is written to it", func(t *testing.T) {
		g := NewWithT(t)
		const ns = "conflict-unseen"
		g.Expect(m1.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		theirs := suite.ForeignDeployment(ns, "web")
		g.Expect(m1.Client.Create(t.Context(), theirs, client.FieldOwner("someone-else"))).To(Succeed())
		writes.take()
		// A cache that misses everything is one that has not yet seen an
		// object created a moment ago.
		lagging := target
		lagging.Cache = missingReader{}

		_, err := applier.Apply(t.Context(), newMR(ns), lagging)
		var conflict *ConflictError
		g.Expect(errors.As(err, &conflict)).To(BeTrue(), "got %v", err)
		g.Expect(conflict.Kind).To(Equal("Deployment"))
		g.Expect(conflict.Managers).To(Equal([]string{"someone-else"}))
		// The Service went out beside the Deployment, the cache missing both,
		// and is taken back once the Deployment is known to be foreign.
		g.Expect(writes.take()).To(Or(BeEmpty(), Equal([]string{"Apply Service " + ns + "/web", "Delete Service " + ns + "/web"})))
		g.Expect(apierrors.IsNotFound(m1.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web"}, &corev1.Service{}))).To(BeTrue())
		after := liveDeployment(g, ns)
		g.Expect(after.ResourceVersion).To(Equal(theirs.ResourceVersion), "the apply without force changed nothing")
		g.Expect(after.Labels).To(Equal(theirs.Labels))
	})

	t.Run("a pre-existing unmanaged Service yields a ConflictError and nothing is written", func(t *testing.T) {
		g := NewWithT(t)
		mr := newMR("conflict-svc")
		g.Expect(m1.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "conflict-svc"}})).To(Succeed())
		theirs := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "conflict-svc"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{"app": "theirs"}},
		}
		g.Expect(m1.Client.Create(t.Context(), theirs, client.FieldOwner("someone-else"))).To(Succeed())
		seenByCache(t.Context(), g, target, theirs)
		writes.take()

		_, err := applier.Apply(t.Context(), mr, target)
		var conflict *ConflictError
		g.Expect(errors.As(err, &conflict)).To(BeTrue(), "got %v", err)
		g.Expect(conflict.Kind).To(Equal("Service"))
		g.Expect(writes.take()).To(BeEmpty(), "the Deployment waits until the Service is known to be ours")
		g.Expect(apierrors.IsNotFound(m1.Client.Get(t.Context(), client.ObjectKey{Namespace: "conflict-svc", Name: "web"}, &appsv1.Deployment{}))).
			To(BeTrue())
	})

	t.Run("removing spec.service deletes the owned Service", func(t *testing.T) {
		g := NewWithT(t)
		mr := newMR("drop-service")
		_, err := applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		g.Eventually(func() error {
			return target.Cache.Get(t.Context(), client.ObjectKey{Namespace: "drop-service", Name: "web"}, &corev1.Service{})
		}).WithContext(t.Context()).WithTimeout(waitTimeout).Should(Succeed())
		writes.take()

		mr.Spec.Service = nil
		mr.Generation++
		_, err = applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(writes.take()).To(ConsistOf("Apply Deployment drop-service/web", "Delete Service drop-service/web"))
		err = m1.Client.Get(t.Context(), client.ObjectKey{Namespace: "drop-service", Name: "web"}, &corev1.Service{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "got %v", err)
	})

	t.Run("Delete removes the owned objects, reports gone, and keeps the namespace", func(t *testing.T) {
		g := NewWithT(t)
		mr := newMR("delete")
		_, err := applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		writes.take()

		g.Eventually(func(g Gomega) {
			gone, err := applier.Delete(t.Context(), "delete", "web", target)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(gone).To(BeTrue())
		}).WithContext(t.Context()).WithTimeout(waitTimeout).Should(Succeed())

		g.Expect(writes.take()).To(ConsistOf("Delete Deployment delete/web", "Delete Service delete/web"))
		for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}} {
			err := m1.Client.Get(t.Context(), client.ObjectKey{Namespace: "delete", Name: "web"}, obj)
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "got %v", err)
		}
		ns := &corev1.Namespace{}
		g.Expect(m1.Client.Get(t.Context(), client.ObjectKey{Name: "delete"}, ns)).To(Succeed())
		g.Expect(ns.DeletionTimestamp).To(BeNil())

		gone, err := applier.Delete(t.Context(), "delete", "web", target)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(gone).To(BeTrue(), "Delete is idempotent")

		g.Eventually(func(g Gomega) {
			st, err := applier.Observe(t.Context(), mr, target)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(appliedCondition(st).Status).To(Equal(metav1.ConditionFalse))
			g.Expect(appliedCondition(st).Reason).To(Equal(hubv1.ReasonPending))
		}).WithContext(t.Context()).WithTimeout(waitTimeout).Should(Succeed())
		g.Expect(writes.take()).To(BeEmpty())
	})

	t.Run("an unreachable member is ClusterUnreachable and deletes nothing", func(t *testing.T) {
		g := NewWithT(t)
		cfg, err := clientcmd.RESTConfigFromKubeConfig(m1.OperatorKubeconfig)
		g.Expect(err).NotTo(HaveOccurred())
		cfg.Host = "https://127.0.0.1:1" // nothing listens there
		dead, err := client.New(cfg, client.Options{Scheme: controlplane.Scheme()})
		g.Expect(err).NotTo(HaveOccurred())
		deadTarget := Target{Name: "m1", Labels: clusterLabels, Reader: dead, Writer: dead}

		st, err := (&Applier{}).Apply(t.Context(), newMR("unreachable"), deadTarget)
		g.Expect(Reason(err)).To(Equal(hubv1.ReasonClusterUnreachable), "got %v", err)
		g.Expect(appliedCondition(st).Reason).To(Equal(hubv1.ReasonClusterUnreachable))

		gone, err := (&Applier{}).Delete(t.Context(), "create", "web", deadTarget)
		g.Expect(Reason(err)).To(Equal(hubv1.ReasonClusterUnreachable), "got %v", err)
		g.Expect(gone).To(BeFalse(), "an unreachable member never reports its objects gone")
	})

	t.Run("no secret material appears in errors", func(t *testing.T) {
		g := NewWithT(t)
		_, err := applier.Apply(t.Context(), newMR("conflict"), target)
		g.Expect(err).To(HaveOccurred())
		cfg, cerr := clientcmd.RESTConfigFromKubeConfig(m1.OperatorKubeconfig)
		g.Expect(cerr).NotTo(HaveOccurred())
		for _, secret := range [][]byte{cfg.CertData, cfg.KeyData, []byte(cfg.BearerToken)} {
			if len(secret) > 0 {
				g.Expect(err.Error()).NotTo(ContainSubstring(string(secret)))
			}
		}
	})
}

// cachedBoth waits until target's cache holds ns/web's Deployment and
// Service as the member has them now.
func cachedBoth(t *testing.T, g Gomega, m *controlplane.Cluster, target Target, ns string) {
	t.Helper()
	for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}} {
		key := client.ObjectKey{Namespace: ns, Name: "web"}
		g.Expect(m.Client.Get(t.Context(), key, obj)).To(Succeed())
		rv := obj.GetResourceVersion()
		g.Eventually(func(g Gomega) {
			g.Expect(target.Cache.Get(t.Context(), key, obj)).To(Succeed())
			g.Expect(obj.GetResourceVersion()).To(Equal(rv))
		}).WithContext(t.Context()).WithTimeout(waitTimeout).Should(Succeed())
	}
}

// seenByCache waits until target's cache holds obj, so that a test of an
// object that exists before the apply tests that and not the cache's lag.
func seenByCache(ctx context.Context, g Gomega, target Target, obj client.Object) {
	g.Eventually(func() error {
		return target.Cache.Get(ctx, client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object))
	}).WithContext(ctx).WithTimeout(waitTimeout).Should(Succeed())
}

// missingReader is a cache that has seen nothing.
type missingReader struct{}

func (missingReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	gvk, _ := apiutil.GVKForObject(obj, controlplane.Scheme())
	return apierrors.NewNotFound(schema.GroupResource{Group: gvk.Group, Resource: strings.ToLower(gvk.Kind) + "s"}, key.Name)
}

func (missingReader) List(context.Context, client.ObjectList, ...client.ListOption) error { return nil }

// stripLabel removes label from the object ns/web in m's member as a member
// user would, and waits until target's cache holds the result.
func stripLabel(t *testing.T, g Gomega, m *controlplane.Cluster, target Target, obj client.Object, ns, label string) {
	t.Helper()
	key := client.ObjectKey{Namespace: ns, Name: "web"}
	g.Expect(m.Client.Get(t.Context(), key, obj)).To(Succeed())
	l := obj.GetLabels()
	delete(l, label)
	obj.SetLabels(l)
	g.Expect(m.Client.Update(t.Context(), obj)).To(Succeed())
	rv := obj.GetResourceVersion()
	g.Eventually(func(g Gomega) {
		cached := obj.DeepCopyObject().(client.Object)
		g.Expect(target.Cache.Get(t.Context(), key, cached)).To(Succeed())
		g.Expect(cached.GetResourceVersion()).To(Equal(rv))
		g.Expect(cached.GetManagedFields()).To(BeEmpty(), "the production cache strips managed fields")
	}).WithContext(t.Context()).WithTimeout(waitTimeout).Should(Succeed())
}
