package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	hubv1 "example.com/hub-operator/api/v1"
)

const mrUID = types.UID("uid-web")

// rolloutSpec is a canary stage of one named cluster, then prod by
// selector 25% at a time after an approval; the rest go last.
func rolloutSpec() *hubv1.RolloutSpec {
	return &hubv1.RolloutSpec{
		Stages: []hubv1.RolloutStage{
			{Name: "canary", Selection: hubv1.Selection{ClusterNames: []string{"canary-1"}}},
			{Name: "prod", RequireApproval: true, MaxConcurrency: ptr.To(intstr.FromString("25%")),
				Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}},
		},
		MinReadySeconds: 30,
		OnFailure:       hubv1.RolloutRollback,
	}
}

// registry are the labels of the registry Secrets; lab-1 has no Secret.
var registry = map[string]map[string]string{
	"canary-1": {"env": "canary"},
	"prod-eu":  {"env": "prod"},
	"prod-us":  {"env": "prod"},
	"prod-ap":  {"env": "prod"},
	"prod-sa":  {"env": "prod"},
}

// at is a cluster at a revision, Available or not, with extra conditions
// replacing the defaults.
func at(name string, revision int64, available bool, conds ...metav1.Condition) hubv1.ClusterStatus {
	applied := cond(hubv1.ClusterConditionApplied, metav1.ConditionTrue, hubv1.ReasonApplied, "objects are applied")
	avail := cond(hubv1.ClusterConditionAvailable, metav1.ConditionTrue, hubv1.ReasonDeploymentAvailable, "Deployment has minimum availability.")
	if !available {
		avail = cond(hubv1.ClusterConditionAvailable, metav1.ConditionFalse, hubv1.ReasonDeploymentProgressing, "ReplicaSet \"web-7c9\" is progressing.")
	}
	cs := []metav1.Condition{applied, avail}
	for _, c := range conds {
		for i := range cs {
			if cs[i].Type == c.Type {
				cs[i] = c
			}
		}
	}
	return hubv1.ClusterStatus{Name: name, Revision: revision, Conditions: cs, Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, ObservedGeneration: 2}
}

func rolloutMR(r hubv1.RolloutStatus, clusters ...hubv1.ClusterStatus) *hubv1.MyResource {
	return &hubv1.MyResource{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Generation: 2, UID: mrUID},
		Spec:       hubv1.MyResourceSpec{Rollout: rolloutSpec()},
		Status: hubv1.MyResourceStatus{ObservedGeneration: 2, SelectedClusters: int32(len(clusters)),
			Rollout: &r, Clusters: clusters},
	}
}

func TestPrintRolloutStatus(t *testing.T) {
	unreachable := cond(hubv1.ClusterConditionApplied, metav1.ConditionFalse, hubv1.ReasonClusterUnreachable, "cluster did not answer within 5s")
	deadline := cond(hubv1.ClusterConditionAvailable, metav1.ConditionFalse, hubv1.ReasonProgressDeadline, "ReplicaSet \"web-7c9\" has timed out progressing.")
	pending := cond(hubv1.ClusterConditionApplied, metav1.ConditionFalse, hubv1.ReasonRolloutPending, "waits for stage default")

	approval := rolloutMR(hubv1.RolloutStatus{Revision: 3, StableRevision: 2, Phase: hubv1.RolloutWaitingForApproval, Stage: "prod", UpdatedClusters: 1,
		Message: "stage prod waits for approval: kubectl hub rollout approve web"},
		at("canary-1", 3, true), at("lab-1", 2, true), at("prod-ap", 2, true), at("prod-eu", 2, true), at("prod-us", 2, true))
	approved := approval.DeepCopy()
	approved.Annotations = map[string]string{hubv1.RolloutApprovedAnnotation: "3/prod"}
	approved.Status.Rollout.Phase = hubv1.RolloutProgressing
	approved.Status.Rollout.UpdatedClusters = 2
	approved.Status.Rollout.Message = "stage prod: 1 of 3 clusters updated, 1 updating"
	approved.Status.Clusters = []hubv1.ClusterStatus{at("canary-1", 3, true), at("lab-1", 2, true), at("prod-ap", 3, true),
		at("prod-eu", 3, false), at("prod-us", 2, false, unreachable)}

	halted := approved.DeepCopy()
	halted.Spec.Rollout.OnFailure = hubv1.RolloutPause
	halted.Status.Rollout.Phase = hubv1.RolloutHalted
	halted.Status.Rollout.Message = "cluster prod-eu failed revision 3: ProgressDeadlineExceeded: ReplicaSet \"web-7c9\" has timed out progressing."
	halted.Status.Clusters[3] = at("prod-eu", 3, false, deadline)

	rolledBack := approved.DeepCopy()
	rolledBack.Status.Rollout.Phase = hubv1.RolloutRolledBack
	rolledBack.Status.Rollout.UpdatedClusters = 0
	rolledBack.Status.Rollout.Message = "cluster prod-eu failed revision 3 (ProgressDeadlineExceeded); canary-1, prod-ap, prod-eu are back on revision 2"
	rolledBack.Status.Clusters = []hubv1.ClusterStatus{at("canary-1", 2, true), at("lab-1", 2, true), at("prod-ap", 2, true),
		at("prod-eu", 2, true), at("prod-us", 2, true)}

	complete := rolloutMR(hubv1.RolloutStatus{Revision: 3, StableRevision: 3, Phase: hubv1.RolloutComplete, Stage: "", UpdatedClusters: 5,
		Message: "revision 3 runs in every selected cluster"},
		at("canary-1", 3, true), at("lab-1", 3, true), at("prod-ap", 3, true), at("prod-eu", 3, true), at("prod-us", 3, true))

	first := rolloutMR(hubv1.RolloutStatus{Revision: 1, Phase: hubv1.RolloutProgressing, Stage: "canary",
		Message: "stage canary: 0 of 1 clusters updated, 1 updating"},
		at("canary-1", 1, false), hubv1.ClusterStatus{Name: "prod-eu", Conditions: []metav1.Condition{pending}})
	first.Spec.Rollout.Paused = true
	first.Generation = 3

	allAtOnce := complete.DeepCopy()
	allAtOnce.Spec.Rollout = nil
	allAtOnce.Status.Rollout = nil

	tests := []struct {
		name string
		mr   *hubv1.MyResource
	}{
		{"waiting-for-approval", approval},
		{"progressing", approved},
		{"halted", halted},
		{"rolled-back", rolledBack},
		{"complete", complete},
		{"first-revision-paused", first},
		{"no-rollout", allAtOnce},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			NewWithT(t).Expect(printRolloutStatus(&out, tt.mr, registry)).To(Succeed())
			golden(t, "rollout-status-"+tt.name+".golden", out.Bytes())
		})
	}
}

func revisionOf(t *testing.T, owner types.UID, n int64, image string, overrides int, age time.Duration, history string) *appsv1.ControllerRevision {
	t.Helper()
	d := revisionData{Deployment: hubv1.DeploymentSpec{Replicas: ptr.To[int32](2), Template: corev1.PodTemplateSpec{
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}}}}}
	for range overrides {
		d.Overrides = append(d.Overrides, hubv1.Override{Selection: hubv1.Selection{ClusterNames: []string{"prod-eu"}}, Replicas: ptr.To[int32](5)})
	}
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-" + string(rune('a'+n)), CreationTimestamp: ago(age),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "MyResource", Name: "web", UID: owner}}},
		Revision: n, Data: runtime.RawExtension{Raw: raw},
	}
	if history != "" {
		cr.Annotations = map[string]string{hubv1.RevisionHistoryAnnotation: history}
	}
	return cr
}

// history is revisions 2, 4, 5 of web (5 was renumbered from 1 and 3 by
// an undo) and one revision of another MyResource of the same name.
func history(t *testing.T) []client.Object {
	return []client.Object{
		revisionOf(t, mrUID, 5, "nginx:1.26", 0, 5*time.Minute, "1,3"),
		revisionOf(t, mrUID, 2, "nginx:1.25", 1, 72*time.Hour, ""),
		revisionOf(t, mrUID, 4, "nginx:1.27", 2, 2*time.Hour, ""),
		revisionOf(t, "uid-of-an-older-web", 9, "httpd:2", 0, 24*time.Hour, ""),
	}
}

func historyMR() *hubv1.MyResource {
	mr := rolloutMR(hubv1.RolloutStatus{Revision: 5, StableRevision: 4, Phase: hubv1.RolloutProgressing, Stage: "prod"},
		at("canary-1", 5, true), at("prod-eu", 4, true), at("prod-us", 4, true))
	mr.Spec.Deployment = hubv1.DeploymentSpec{Replicas: ptr.To[int32](2), Template: corev1.PodTemplateSpec{
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.26"}}}}}
	return mr
}

func newFakeClient(t *testing.T, funcs *interceptor.Funcs, objs ...client.Object) client.WithWatch {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := hubv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	for name, l := range registry {
		labels := map[string]string{hubv1.MemberClusterLabel: "true"}
		for k, v := range l {
			labels[k] = v
		}
		objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: hubv1.DefaultRegistryNamespace, Name: name, Labels: labels}})
	}
	b := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(&hubv1.MyResource{})
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	return b.Build()
}

func TestRolloutHistory(t *testing.T) {
	c := newFakeClient(t, nil, append(history(t), historyMR())...)
	mr := historyMR()
	revs, err := listRevisions(t.Context(), c, mr)
	g := NewWithT(t)
	g.Expect(err).NotTo(HaveOccurred())
	var out bytes.Buffer
	g.Expect(printHistory(&out, mr, revs, now)).To(Succeed())
	golden(t, "rollout-history.golden", out.Bytes())

	out.Reset()
	g.Expect(rolloutHistoryCmd(t.Context(), c, &out, "shop", "web", 5)).To(Succeed())
	golden(t, "rollout-history-revision.golden", out.Bytes())

	g.Expect(rolloutHistoryCmd(t.Context(), c, &out, "shop", "web", 9)).To(MatchError(
		"MyResource shop/web has no revision 9 (revisions: 2, 4, 5)"), "a revision of another owner is not this MyResource's")
}

func TestRolloutStatusExitCode(t *testing.T) {
	tests := []struct {
		name    string
		phase   hubv1.RolloutPhase
		watch   bool
		wantErr error
	}{
		{"complete exits 0", hubv1.RolloutComplete, false, nil},
		{"progressing without --watch exits 0", hubv1.RolloutProgressing, false, nil},
		{"waiting for approval without --watch exits 0", hubv1.RolloutWaitingForApproval, false, nil},
		{"halted exits 1", hubv1.RolloutHalted, false, errRolloutFailed},
		{"rolled back exits 1", hubv1.RolloutRolledBack, true, errRolloutFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			mr := historyMR()
			mr.Status.Rollout.Phase = tt.phase
			c := newFakeClient(t, nil, mr)
			var out bytes.Buffer
			err := rolloutStatusCmd(t.Context(), c, &out, "shop", "web", hubv1.DefaultRegistryNamespace, rolloutOptions{watch: tt.watch})
			if tt.wantErr == nil {
				g.Expect(err).NotTo(HaveOccurred())
			} else {
				g.Expect(err).To(MatchError(tt.wantErr))
			}
			g.Expect(out.String()).To(MatchRegexp(`Phase: +` + string(tt.phase) + "\n"))
		})
	}
}

// TestRolloutStatusWatch follows a rollout from Progressing through
// WaitingForApproval to Complete, printing each change once.
func TestRolloutStatusWatch(t *testing.T) {
	g := NewWithT(t)
	phases := []hubv1.RolloutPhase{hubv1.RolloutProgressing, hubv1.RolloutProgressing, hubv1.RolloutWaitingForApproval, hubv1.RolloutComplete}
	gets := 0
	funcs := &interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if err := c.Get(ctx, key, obj, opts...); err != nil {
			return err
		}
		if mr, ok := obj.(*hubv1.MyResource); ok {
			mr.Status.Rollout.Phase = phases[min(gets, len(phases)-1)]
			gets++
		}
		return nil
	}}
	c := newFakeClient(t, funcs, historyMR())
	var out bytes.Buffer
	g.Expect(rolloutStatusCmd(t.Context(), c, &out, "shop", "web", hubv1.DefaultRegistryNamespace,
		rolloutOptions{watch: true, pollPeriod: time.Millisecond})).To(Succeed())
	g.Expect(gets).To(Equal(4))
	g.Expect(bytes.Count(out.Bytes(), []byte("Phase:"))).To(Equal(3), "an unchanged status is not printed again:\n%s", out.String())

	// Never Complete: the timeout ends it with an error.
	phases = []hubv1.RolloutPhase{hubv1.RolloutPaused}
	gets = 0
	err := rolloutStatusCmd(t.Context(), c, &out, "shop", "web", hubv1.DefaultRegistryNamespace,
		rolloutOptions{watch: true, pollPeriod: time.Millisecond, timeout: 50 * time.Millisecond})
	g.Expect(err).To(MatchError(ContainSubstring("timed out waiting for the rollout of MyResource shop/web")))
}

func TestPauseResume(t *testing.T) {
	g := NewWithT(t)
	c := newFakeClient(t, nil, historyMR())
	var out bytes.Buffer
	got := &hubv1.MyResource{}

	g.Expect(setPaused(t.Context(), c, &out, "shop", "web", true)).To(Succeed())
	g.Expect(c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "web"}, got)).To(Succeed())
	g.Expect(got.Spec.Rollout.Paused).To(BeTrue())
	g.Expect(got.Spec.Rollout.Stages).To(HaveLen(2), "the rest of spec.rollout is kept")
	g.Expect(setPaused(t.Context(), c, &out, "shop", "web", true)).To(Succeed())
	g.Expect(setPaused(t.Context(), c, &out, "shop", "web", false)).To(Succeed())
	g.Expect(c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "web"}, got)).To(Succeed())
	g.Expect(got.Spec.Rollout.Paused).To(BeFalse())
	g.Expect(out.String()).To(Equal("myresource.example.com/web paused\nmyresource.example.com/web already paused\nmyresource.example.com/web resumed\n"))

	plain := historyMR()
	plain.Spec.Rollout = nil
	c = newFakeClient(t, nil, plain)
	g.Expect(setPaused(t.Context(), c, &out, "shop", "web", true)).To(MatchError("MyResource shop/web has no spec.rollout; nothing to pause"))
	g.Expect(c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "web"}, got)).To(Succeed())
	g.Expect(got.Spec.Rollout).To(BeNil(), "nothing was written")
}

func TestApprove(t *testing.T) {
	waiting := historyMR()
	waiting.Status.Rollout.Phase = hubv1.RolloutWaitingForApproval
	tests := []struct {
		name    string
		mr      *hubv1.MyResource
		stage   string
		want    string
		wantErr string
	}{
		{name: "the stage that waits", mr: waiting, want: "5/prod"},
		{name: "a named stage ahead of time", mr: historyMR(), stage: "default", want: "5/default"},
		{name: "nothing waits and no stage is named", mr: historyMR(),
			wantErr: `nothing of MyResource shop/web waits for approval (rollout is Progressing at stage "prod"); name a stage with --stage to approve it ahead`},
		{name: "an unknown stage", mr: waiting, stage: "qa",
			wantErr: `MyResource shop/web has no stage "qa" (stages: canary, prod, default)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c := newFakeClient(t, nil, tt.mr)
			var out bytes.Buffer
			err := approve(t.Context(), c, &out, "shop", "web", tt.stage)
			got := &hubv1.MyResource{}
			g.Expect(c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "web"}, got)).To(Succeed())
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				g.Expect(got.Annotations).NotTo(HaveKey(hubv1.RolloutApprovedAnnotation))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.Annotations).To(HaveKeyWithValue(hubv1.RolloutApprovedAnnotation, tt.want))
		})
	}
}

func TestUndo(t *testing.T) {
	image := func(mr *hubv1.MyResource) string { return mr.Spec.Deployment.Template.Spec.Containers[0].Image }
	tests := []struct {
		name          string
		to            int64
		wantImage     string
		wantOverrides int
		wantOut       string
		wantErr       string
	}{
		{name: "to the revision before the current one", wantImage: "nginx:1.27", wantOverrides: 2,
			wantOut: "myresource.example.com/web rolled back to revision 4\n"},
		{name: "to a named revision", to: 2, wantImage: "nginx:1.25", wantOverrides: 1,
			wantOut: "myresource.example.com/web rolled back to revision 2\n"},
		{name: "to the revision the spec already has", to: 5, wantImage: "nginx:1.26",
			wantOut: "myresource.example.com/web skipped rollback (the spec already matches revision 5)\n"},
		{name: "to a revision that does not exist", to: 3, wantImage: "nginx:1.26",
			wantErr: "MyResource shop/web has no revision 3 (revisions: 2, 4, 5)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c := newFakeClient(t, nil, append(history(t), historyMR())...)
			var out bytes.Buffer
			err := undo(t.Context(), c, &out, "shop", "web", tt.to)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
			} else {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(out.String()).To(Equal(tt.wantOut))
			}
			got := &hubv1.MyResource{}
			g.Expect(c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "web"}, got)).To(Succeed())
			g.Expect(image(got)).To(Equal(tt.wantImage))
			g.Expect(got.Spec.Overrides).To(HaveLen(tt.wantOverrides))
			g.Expect(got.Spec.Rollout).To(Equal(rolloutSpec()), "undo writes only deployment, service and overrides")
		})
	}
}

// TestUndoLosesNoConcurrentChange: the patch is locked on the
// resourceVersion undo read, so a spec changed in between is not overwritten.
func TestUndoLosesNoConcurrentChange(t *testing.T) {
	g := NewWithT(t)
	var c client.WithWatch
	funcs := &interceptor.Funcs{Patch: func(ctx context.Context, cl client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
		// Someone else writes between undo's read and its patch.
		other := &hubv1.MyResource{}
		if err := cl.Get(ctx, client.ObjectKeyFromObject(obj), other); err != nil {
			return err
		}
		other.Spec.Suspend = true
		if err := cl.Update(ctx, other); err != nil {
			return err
		}
		return cl.Patch(ctx, obj, patch, opts...)
	}}
	c = newFakeClient(t, funcs, append(history(t), historyMR())...)
	err := undo(t.Context(), c, &bytes.Buffer{}, "shop", "web", 0)
	g.Expect(err).To(HaveOccurred())
	var status interface{ Status() metav1.Status }
	g.Expect(errors.As(err, &status)).To(BeTrue())
	g.Expect(status.Status().Reason).To(Equal(metav1.StatusReasonConflict))
}
