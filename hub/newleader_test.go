package hub

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
	"example.com/hub-operator/member"
)

// converge reconciles until the status stops changing, the clock moving on
// past the settler's hold each time, as watch events and requeues would.
func (h *harness) converge(g Gomega) {
	start := time.Now()
	tick := 0
	h.r.now = func() time.Time { return start.Add(time.Duration(tick) * 2 * statusSettle) }
	for same := 0; same < 2; tick++ {
		g.Expect(tick).To(BeNumerically("<", 20), "the status settles")
		before := h.statusWrites
		_, _ = h.reconcile() // a Conflict or a halted rollout is an outcome here, not a test failure
		if h.statusWrites == before {
			same++
		} else {
			same = 0
		}
	}
}

// registryIn is prodDev with every cluster in state, engaged or not.
func registryIn(state clusterregistry.State, engage bool) *fakeRegistry {
	r := &fakeRegistry{}
	for _, info := range prodDev {
		info.State = state
		if state == clusterregistry.StateConnecting {
			info.Reason, info.Message = hubv1.ReasonPending, "connecting to the cluster"
		}
		m := clusterregistry.Member{Info: info}
		if engage {
			m.Cluster = engaged{}
		}
		r.members = append(r.members, m)
	}
	return r
}

// A restarted operator, or a new leader, starts with nothing in memory and
// every cluster Connecting: its registry connects each, engages it (still
// Connecting) and only then calls it Ready. Over a MyResource the previous
// process converged, none of those steps may change the status: at
// Connecting the last entries stand, at Ready they are observed again as
// they were.
func TestReconcileAsANewLeaderOverAConvergedStatusWritesNothing(t *testing.T) {
	conflict := &member.ConflictError{Cluster: "a", Kind: "Deployment", Namespace: "team-a", Name: "web", Managers: []string{"kubectl"}}
	onABC := hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a", "b", "c"}}}
	tests := []struct {
		name string
		mr   *hubv1.MyResource
		// before runs between two converges, as a spec change or a member's
		// change would.
		before func(g Gomega, h *harness)
		// state is what the converged status says (of the ready condition
		// or the rollout), so that each case is the state it names.
		state string
	}{
		{name: "placed by name, every cluster Ready", mr: placedOn(onABC), state: hubv1.ReasonAllClustersReady},
		{name: "placed by selector", mr: placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}}), state: hubv1.ReasonAllClustersReady},
		{name: "a listed cluster that is not registered", mr: placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a", "gone"}}}), state: hubv1.ReasonClustersNotReady},
		{
			name: "a cluster in Conflict",
			mr:   placedOn(onABC),
			before: func(_ Gomega, h *harness) {
				h.members.cluster("a").applyErr = conflict
			},
			state: hubv1.ReasonClustersNotReady,
		},
		{name: "suspended", mr: func() *hubv1.MyResource { mr := placedOn(onABC); mr.Spec.Suspend = true; return mr }(), state: hubv1.ReasonSuspended},
		{
			name:   "a rollout complete at revision 2",
			mr:     staged(hubv1.RolloutPause),
			before: func(g Gomega, h *harness) { h.setImage(g, "nginx:2") },
			state:  string(hubv1.RolloutComplete),
		},
		{
			name: "a rollout halted by a Conflict at the canary",
			mr:   staged(hubv1.RolloutPause),
			before: func(g Gomega, h *harness) {
				h.members.cluster("a").applyErr = conflict
				h.setImage(g, "nginx:2")
			},
			state: string(hubv1.RolloutHalted),
		},
		{
			name: "a rollout paused before its first stage",
			mr:   staged(hubv1.RolloutPause),
			before: func(g Gomega, h *harness) {
				mr := h.get(g)
				mr.Spec.Rollout.Paused = true
				mr.Spec.Deployment.Template.Spec.Containers[0].Image = "nginx:2"
				mr.Generation++
				g.Expect(h.hub.Update(h.ctx, mr)).To(Succeed())
			},
			state: string(hubv1.RolloutPaused),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			h := newHarness(t, tt.mr, registryOf(prodDev), newFakeMembers())
			h.converge(g)
			if tt.before != nil {
				tt.before(g, h)
				h.converge(g)
			}
			converged := h.get(g).Status
			if ro := converged.Rollout; tt.mr.Spec.Rollout != nil {
				g.Expect(string(ro.Phase)).To(Equal(tt.state), "%+v", ro)
			} else {
				g.Expect(cond(h.get(g), hubv1.ConditionReady).Reason).To(Equal(tt.state))
			}
			writes := h.statusWrites
			h.events()

			// The new process: a fresh Reconciler (nothing remembered, a
			// later clock) over the same hub and members.
			later := time.Now().Add(10 * time.Minute)
			h.r = &Reconciler{Hub: h.hub, Members: h.members, Recorder: h.recorder, ClusterTimeout: time.Second,
				now: func() time.Time { return later }}
			for _, phase := range []struct {
				name     string
				registry *fakeRegistry
			}{
				{"Connecting", registryIn(clusterregistry.StateConnecting, false)},
				{"Connecting, engaged", registryIn(clusterregistry.StateConnecting, true)},
				{"Ready", registryIn(clusterregistry.StateReady, true)},
			} {
				h.r.Registry = phase.registry
				_, _ = h.reconcile()
				got := h.get(g).Status
				g.Expect(equality.Semantic.DeepEqual(got, converged)).To(BeTrue(),
					"with every cluster %s the status is unchanged; diff (-converged +now):\n%s", phase.name, cmp.Diff(converged, got))
				g.Expect(h.statusWrites).To(Equal(writes), "no status write with every cluster %s", phase.name)
			}
			g.Expect(h.events()).To(BeEmpty(), "and no event: nothing happened")
		})
	}
}
