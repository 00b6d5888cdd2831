package v1_test

import (
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
)

// validSpec is the smallest spec the API server accepts; each case breaks
// one thing in it, so a rejection can only come from that one thing.
func validSpec() hubv1.MyResourceSpec {
	return hubv1.MyResourceSpec{
		Placement: hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"member-1"}}},
		Deployment: hubv1.DeploymentSpec{
			Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
			},
		},
	}
}

func withService(ports ...corev1.ServicePort) func(*hubv1.MyResourceSpec) {
	return func(s *hubv1.MyResourceSpec) { s.Service = &hubv1.ServiceSpec{Ports: ports} }
}

func withOverride(o hubv1.Override) func(*hubv1.MyResourceSpec) {
	return func(s *hubv1.MyResourceSpec) { s.Overrides = append(s.Overrides, o) }
}

func withPlacementSelector(sel *metav1.LabelSelector) func(*hubv1.MyResourceSpec) {
	return func(s *hubv1.MyResourceSpec) { s.Placement.ClusterSelector = sel }
}

func withContainers(cs ...corev1.Container) func(*hubv1.MyResourceSpec) {
	return func(s *hubv1.MyResourceSpec) { s.Deployment.Template.Spec.Containers = cs }
}

// withRollout sets spec.rollout, each stage selecting member-1 by name
// unless it says otherwise.
func withRollout(r hubv1.RolloutSpec) func(*hubv1.MyResourceSpec) {
	return func(s *hubv1.MyResourceSpec) { s.Rollout = &r }
}

// stage is a valid stage: it selects member-1 by name.
func stage(name string) hubv1.RolloutStage {
	return hubv1.RolloutStage{Name: name, Selection: hubv1.Selection{ClusterNames: []string{"member-1"}}}
}

// withStageConcurrency is a rollout of one stage with this maxConcurrency.
func withStageConcurrency(v intstr.IntOrString) func(*hubv1.MyResourceSpec) {
	st := stage("canary")
	st.MaxConcurrency = &v
	return withRollout(hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{st}})
}

// TestCRDValidation creates MyResources on a real API server with the chart's
// CRD installed: what can never work is rejected with a message a person
// understands, and what is valid is accepted with its defaults filled in.
func TestCRDValidation(t *testing.T) {
	env := controlplane.StartForTest(t, controlplane.Options{})
	NewWithT(t).Expect(env.Hub.InstallCRDs(t.Context())).To(Succeed())
	c := env.Hub.Client

	create := func(t *testing.T, mutate func(*hubv1.MyResourceSpec)) (*hubv1.MyResource, error) {
		t.Helper()
		mr := &hubv1.MyResource{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "v-", Namespace: metav1.NamespaceDefault},
			Spec:       validSpec(),
		}
		mutate(&mr.Spec)
		return mr, c.Create(t.Context(), mr)
	}

	invalid := []struct {
		name   string
		mutate func(*hubv1.MyResourceSpec)
		// want are substrings of the error: the field and a readable reason.
		want []string
	}{
		{
			name:   "negative deployment replicas are rejected",
			mutate: func(s *hubv1.MyResourceSpec) { s.Deployment.Replicas = ptr.To[int32](-1) },
			want:   []string{"spec.deployment.replicas", "greater than or equal to 0"},
		},
		{
			name: "negative override replicas are rejected",
			mutate: withOverride(hubv1.Override{
				Selection: hubv1.Selection{ClusterNames: []string{"member-1"}},
				Replicas:  ptr.To[int32](-3),
			}),
			want: []string{"spec.overrides[0].replicas", "greater than or equal to 0"},
		},
		{
			name:   "a pod template with an empty container list is rejected",
			mutate: withContainers([]corev1.Container{}...),
			want:   []string{"must list at least one container"},
		},
		{
			name:   "a pod template without a container list is rejected",
			mutate: func(s *hubv1.MyResourceSpec) { s.Deployment.Template.Spec.Containers = nil },
			want:   []string{"spec.deployment.template.spec.containers", "Required value"},
		},
		{
			name:   "a container without a name is rejected",
			mutate: withContainers(corev1.Container{Image: "nginx"}),
			want:   []string{"spec.deployment.template.spec.containers", "needs a name"},
		},
		{
			name:   "a container without an image is rejected",
			mutate: withContainers(corev1.Container{Name: "web"}),
			want:   []string{"spec.deployment.template.spec.containers", "needs an image"},
		},
		{
			name: "an init container without an image is rejected",
			mutate: func(s *hubv1.MyResourceSpec) {
				s.Deployment.Template.Spec.InitContainers = []corev1.Container{{Name: "init"}}
			},
			want: []string{"spec.deployment.template.spec.initContainers", "needs a name and an image"},
		},
		{
			name: "a restartPolicy a Deployment cannot run is rejected",
			mutate: func(s *hubv1.MyResourceSpec) {
				s.Deployment.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
			},
			want: []string{"spec.deployment.template.spec.restartPolicy", "restartPolicy Always"},
		},
		{
			name:   "an override that selects no cluster is rejected",
			mutate: withOverride(hubv1.Override{Image: "nginx:1.28"}),
			want:   []string{"spec.overrides[0]", "an override must select clusters"},
		},
		{
			name:   "an override that changes nothing is rejected",
			mutate: withOverride(hubv1.Override{Selection: hubv1.Selection{ClusterNames: []string{"member-1"}}}),
			want:   []string{"spec.overrides[0]", "an override must change something"},
		},
		{
			name: "an override with containerName but nothing to narrow is rejected",
			mutate: withOverride(hubv1.Override{
				Selection:     hubv1.Selection{ClusterNames: []string{"member-1"}},
				ContainerName: "web",
				Replicas:      ptr.To[int32](2),
			}),
			want: []string{"spec.overrides[0]", "containerName narrows image or env"},
		},
		{
			name:   "a Service without ports is rejected",
			mutate: withService(),
			want:   []string{"spec.service.ports", "Required value"},
		},
		{
			name: "a Service with an empty port list is rejected",
			mutate: func(s *hubv1.MyResourceSpec) {
				s.Service = &hubv1.ServiceSpec{Ports: []corev1.ServicePort{}}
			},
			want: []string{"spec.service.ports", "at least 1 items"},
		},
		{
			name:   "a Service port above 65535 is rejected",
			mutate: withService(corev1.ServicePort{Port: 70000}),
			want:   []string{"spec.service.ports[0].port", "between 1 and 65535"},
		},
		{
			name:   "a Service port of 0 is rejected",
			mutate: withService(corev1.ServicePort{Port: 0}),
			want:   []string{"spec.service.ports[0].port", "between 1 and 65535"},
		},
		{
			name:   "a numeric targetPort out of range is rejected",
			mutate: withService(corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(-8)}),
			want:   []string{"spec.service.ports[0].targetPort", "between 1 and 65535"},
		},
		{
			name:   "an unknown port protocol is rejected",
			mutate: withService(corev1.ServicePort{Port: 80, Protocol: "QUIC"}),
			want:   []string{"spec.service.ports[0].protocol", "TCP, UDP or SCTP"},
		},
		{
			name:   "several Service ports without names are rejected",
			mutate: withService(corev1.ServicePort{Port: 80}, corev1.ServicePort{Port: 443}),
			want:   []string{"spec.service.ports", "needs a name on every port"},
		},
		{
			name: "duplicate Service ports are rejected",
			mutate: withService(
				corev1.ServicePort{Name: "a", Port: 80}, corev1.ServicePort{Name: "b", Port: 80}),
			want: []string{"spec.service.ports[1]", `Duplicate value: {"port":80,"protocol":"TCP"}`},
		},
		{
			name: "duplicate Service port names are rejected",
			mutate: withService(
				corev1.ServicePort{Name: "http", Port: 80}, corev1.ServicePort{Name: "http", Port: 8080}),
			want: []string{"spec.service.ports", "Service port names must be unique"},
		},
		{
			name:   "a nodePort on a ClusterIP Service is rejected",
			mutate: withService(corev1.ServicePort{Port: 80, NodePort: 30080}),
			want:   []string{"spec.service.ports", "nodePort needs service.type NodePort or LoadBalancer"},
		},
		{
			name: "an unknown service type is rejected",
			mutate: func(s *hubv1.MyResourceSpec) {
				s.Service = &hubv1.ServiceSpec{Type: "Headless", Ports: []corev1.ServicePort{{Port: 80}}}
			},
			want: []string{"spec.service.type", `Unsupported value: "Headless"`, `"ClusterIP"`},
		},
		{
			name:   "an unknown deletionPolicy is rejected",
			mutate: func(s *hubv1.MyResourceSpec) { s.DeletionPolicy = "Keep" },
			want:   []string{"spec.deletionPolicy", `Unsupported value: "Keep"`, `"Delete", "Orphan"`},
		},
		{
			name: "a clusterSelector with an unknown operator is rejected",
			mutate: withPlacementSelector(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "region", Operator: "Near", Values: []string{"eu"}},
			}}),
			want: []string{
				"spec.placement.clusterSelector.matchExpressions[0].operator",
				`Unsupported value: "Near": supported values: "In", "NotIn", "Exists", "DoesNotExist"`,
			},
		},
		{
			name: "a clusterSelector In without values is rejected",
			mutate: withPlacementSelector(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "region", Operator: metav1.LabelSelectorOpIn},
			}}),
			want: []string{"spec.placement.clusterSelector.matchExpressions", "In and NotIn need at least one value"},
		},
		{
			name: "a clusterSelector Exists with values is rejected",
			mutate: withPlacementSelector(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "region", Operator: metav1.LabelSelectorOpExists, Values: []string{"eu"}},
			}}),
			want: []string{"spec.placement.clusterSelector.matchExpressions", "Exists and DoesNotExist take no values"},
		},
		{
			name: "a clusterSelector with an invalid label key is rejected",
			mutate: withPlacementSelector(&metav1.LabelSelector{
				MatchLabels: map[string]string{"not a key!": "x"},
			}),
			want: []string{"spec.placement.clusterSelector.matchLabels", "each key must be a label key"},
		},
		{
			name: "a clusterSelector with an invalid label value is rejected",
			mutate: withPlacementSelector(&metav1.LabelSelector{
				MatchLabels: map[string]string{"region": "eu west"},
			}),
			want: []string{"spec.placement.clusterSelector.matchLabels", "each value must be a label value"},
		},
		{
			name: "a clusterSelector with an invalid matchExpressions key is rejected",
			mutate: withPlacementSelector(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "-region", Operator: metav1.LabelSelectorOpExists},
			}}),
			want: []string{"spec.placement.clusterSelector.matchExpressions", "each key must be a label key"},
		},
		{
			name: "an override clusterSelector with an unknown operator is rejected",
			mutate: withOverride(hubv1.Override{
				Image: "nginx:1.28",
				Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "region", Operator: "in", Values: []string{"eu"}},
				}}},
			}),
			want: []string{"spec.overrides[0].clusterSelector.matchExpressions[0].operator", `Unsupported value: "in"`},
		},
		{
			name: "an override clusterSelector In without values is rejected",
			mutate: withOverride(hubv1.Override{
				Replicas: ptr.To[int32](2),
				Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "region", Operator: metav1.LabelSelectorOpNotIn},
				}}},
			}),
			want: []string{"spec.overrides[0].clusterSelector.matchExpressions", "In and NotIn need at least one value"},
		},
		{
			name:   "an empty cluster name is rejected",
			mutate: func(s *hubv1.MyResourceSpec) { s.Placement.ClusterNames = []string{""} },
			want:   []string{"spec.placement.clusterNames[0]", "at least 1 chars long"},
		},
		{
			name:   "a cluster name no Secret can have is rejected",
			mutate: func(s *hubv1.MyResourceSpec) { s.Placement.ClusterNames = []string{"Member_1"} },
			want:   []string{"spec.placement.clusterNames[0]", `Invalid value: "Member_1"`, "should match '^[a-z0-9]"},
		},
		{
			name:   "duplicate clusterNames are rejected",
			mutate: func(s *hubv1.MyResourceSpec) { s.Placement.ClusterNames = []string{"member-1", "member-1"} },
			want:   []string{"spec.placement.clusterNames[1]", `Duplicate value: "member-1"`},
		},
		{
			name: "duplicate override clusterNames are rejected",
			mutate: withOverride(hubv1.Override{
				Selection: hubv1.Selection{ClusterNames: []string{"member-2", "member-2"}},
				Image:     "nginx:1.28",
			}),
			want: []string{"spec.overrides[0].clusterNames[1]", `Duplicate value: "member-2"`},
		},
		{
			name: "an empty override cluster name is rejected",
			mutate: withOverride(hubv1.Override{
				Selection: hubv1.Selection{ClusterNames: []string{""}},
				Image:     "nginx:1.28",
			}),
			want: []string{"spec.overrides[0].clusterNames[0]", "at least 1 chars long"},
		},
		{
			name: "more than 100 overrides are rejected",
			mutate: func(s *hubv1.MyResourceSpec) {
				for range 101 {
					s.Overrides = append(s.Overrides, hubv1.Override{Selection: hubv1.Selection{ClusterNames: []string{"member-1"}}, Image: "nginx:1.28"})
				}
			},
			want: []string{"spec.overrides", "must have at most 100 items"},
		},
		{
			name: "more than 1000 clusterNames are rejected",
			mutate: func(s *hubv1.MyResourceSpec) {
				s.Placement.ClusterNames = nil
				for i := range 1001 {
					s.Placement.ClusterNames = append(s.Placement.ClusterNames, fmt.Sprintf("member-%d", i))
				}
			},
			want: []string{"spec.placement.clusterNames", "must have at most 1000 items"},
		},
		{
			name: "an override containerName longer than a container name can be is rejected",
			mutate: withOverride(hubv1.Override{
				Selection:     hubv1.Selection{ClusterNames: []string{"member-1"}},
				ContainerName: strings.Repeat("c", 64),
				Image:         "nginx:1.28",
			}),
			want: []string{"spec.overrides[0].containerName", "63"},
		},
		{
			name:   "duplicate rollout stage names are rejected",
			mutate: withRollout(hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{stage("canary"), stage("canary")}}),
			want:   []string{"spec.rollout.stages[1]", "Duplicate value", `"name":"canary"`},
		},
		{
			name:   "an upper-case stage name is rejected",
			mutate: withRollout(hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{stage("Canary")}}),
			want:   []string{"spec.rollout.stages[0].name", `Invalid value: "Canary"`, "should match '^[a-z0-9]"},
		},
		{
			name:   "a stage name with a dot is rejected: it is a DNS label, not a subdomain",
			mutate: withRollout(hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{stage("eu.prod")}}),
			want:   []string{"spec.rollout.stages[0].name", "should match '^[a-z0-9]"},
		},
		{
			name:   "a stage name longer than a DNS label is rejected",
			mutate: withRollout(hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{stage(strings.Repeat("s", 64))}}),
			want:   []string{"spec.rollout.stages[0].name", "Too long", "63"},
		},
		{
			name:   "an empty stage name is rejected",
			mutate: withRollout(hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{stage("")}}),
			want:   []string{"spec.rollout.stages[0].name", "at least 1 chars long"},
		},
		{
			name:   "a stage maxConcurrency of 0 is rejected",
			mutate: withStageConcurrency(intstr.FromInt32(0)),
			want:   []string{"spec.rollout.stages[0].maxConcurrency", "maxConcurrency must be a positive integer or a percent from 1% to 100%"},
		},
		{
			name:   "a negative stage maxConcurrency is rejected",
			mutate: withStageConcurrency(intstr.FromInt32(-1)),
			want:   []string{"spec.rollout.stages[0].maxConcurrency", "maxConcurrency must be a positive integer"},
		},
		// A percent out of range is rejected by a pattern or a CEL rule, with
		// either message; the cases pin that it is rejected, on that field.
		{
			name:   "a stage maxConcurrency of 0% is rejected",
			mutate: withStageConcurrency(intstr.FromString("0%")),
			want:   []string{"spec.rollout.stages[0].maxConcurrency", "Invalid value"},
		},
		{
			name:   "a stage maxConcurrency above 100% is rejected",
			mutate: withStageConcurrency(intstr.FromString("101%")),
			want:   []string{"spec.rollout.stages[0].maxConcurrency", "Invalid value"},
		},
		{
			name:   "a stage maxConcurrency that is neither a count nor a percent is rejected",
			mutate: withStageConcurrency(intstr.FromString("abc")),
			want:   []string{"spec.rollout.stages[0].maxConcurrency", "Invalid value"},
		},
		{
			name:   "a numeric string as maxConcurrency is rejected: a count is written as a number",
			mutate: withStageConcurrency(intstr.FromString("2")),
			want:   []string{"spec.rollout.stages[0].maxConcurrency", "Invalid value"},
		},
		{
			name:   "a rollout-wide maxConcurrency of 0 is rejected",
			mutate: withRollout(hubv1.RolloutSpec{MaxConcurrency: ptr.To(intstr.FromInt32(0))}),
			want:   []string{"spec.rollout.maxConcurrency", "maxConcurrency must be a positive integer"},
		},
		{
			name:   "a rollout-wide maxConcurrency of 101% is rejected",
			mutate: withRollout(hubv1.RolloutSpec{MaxConcurrency: ptr.To(intstr.FromString("101%"))}),
			want:   []string{"spec.rollout.maxConcurrency", "Invalid value"},
		},
		{
			name:   "a progressDeadlineSeconds of 0 is rejected",
			mutate: withRollout(hubv1.RolloutSpec{ProgressDeadlineSeconds: ptr.To[int32](0)}),
			want:   []string{"spec.rollout.progressDeadlineSeconds", "greater than or equal to 1"},
		},
		{
			name:   "a negative minReadySeconds is rejected",
			mutate: withRollout(hubv1.RolloutSpec{MinReadySeconds: -1}),
			want:   []string{"spec.rollout.minReadySeconds", "greater than or equal to 0"},
		},
		{
			name: "more than 20 stages are rejected",
			mutate: func(s *hubv1.MyResourceSpec) {
				r := hubv1.RolloutSpec{}
				for i := range hubv1.MaxRolloutStages + 1 {
					r.Stages = append(r.Stages, stage(fmt.Sprintf("s%d", i)))
				}
				s.Rollout = &r
			},
			want: []string{"spec.rollout.stages", "must have at most 20 items"},
		},
		{
			name:   "a stage that selects no cluster is rejected",
			mutate: withRollout(hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{{Name: "canary"}}}),
			want:   []string{"spec.rollout.stages[0]", "a stage must select clusters: set clusterNames or clusterSelector"},
		},
		{
			name: "a stage with an empty clusterNames list and no selector is rejected",
			mutate: withRollout(hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{
				{Name: "canary", Selection: hubv1.Selection{ClusterNames: []string{}}},
			}}),
			want: []string{"spec.rollout.stages[0]", "a stage must select clusters"},
		},
		{
			name: "a stage clusterSelector with an invalid label key is rejected",
			mutate: withRollout(hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{
				{Name: "prod", Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"not a key!": "x"}}}},
			}}),
			want: []string{"spec.rollout.stages[0].clusterSelector.matchLabels", "each key must be a label key"},
		},
		{
			name:   "an unknown onFailure is rejected",
			mutate: withRollout(hubv1.RolloutSpec{OnFailure: "Retry"}),
			want:   []string{"spec.rollout.onFailure", `Unsupported value: "Retry"`, `"Pause", "Rollback"`},
		},
		{
			name:   "a negative revisionHistoryLimit is rejected",
			mutate: func(s *hubv1.MyResourceSpec) { s.RevisionHistoryLimit = ptr.To[int32](-1) },
			want:   []string{"spec.revisionHistoryLimit", "greater than or equal to 0"},
		},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := create(t, tt.mutate)
			g.Expect(err).To(HaveOccurred())
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got %v", err)
			for _, w := range tt.want {
				g.Expect(err.Error()).To(ContainSubstring(w))
			}
		})
	}

	valid := []struct {
		name   string
		mutate func(*hubv1.MyResourceSpec)
		check  func(g Gomega, got *hubv1.MyResource)
	}{
		{
			name:   "a minimal spec gets replicas 1 and deletionPolicy Delete",
			mutate: func(*hubv1.MyResourceSpec) {},
			check: func(g Gomega, got *hubv1.MyResource) {
				g.Expect(got.Spec.Deployment.Replicas).To(HaveValue(Equal(int32(1))))
				g.Expect(got.Spec.DeletionPolicy).To(Equal(hubv1.DeletionPolicyDelete))
				g.Expect(got.Spec.Service).To(BeNil())
				g.Expect(got.Spec.RevisionHistoryLimit).To(HaveValue(Equal(int32(hubv1.DefaultRevisionHistoryLimit))))
				g.Expect(got.Spec.Rollout).To(BeNil(), "no rollout unless asked for: a revision reaches every cluster at once")
			},
		},
		{
			name:   "an empty rollout gets onFailure Pause",
			mutate: withRollout(hubv1.RolloutSpec{}),
			check: func(g Gomega, got *hubv1.MyResource) {
				g.Expect(got.Spec.Rollout).NotTo(BeNil())
				g.Expect(got.Spec.Rollout.OnFailure).To(Equal(hubv1.RolloutPause))
				g.Expect(got.Spec.Rollout.Paused).To(BeFalse())
				g.Expect(got.Spec.Rollout.MaxConcurrency).To(BeNil(), "the default of 1 is the planner's, not stored")
			},
		},
		{
			name: "a rollout with named and selected stages, counts and percents is accepted as written",
			mutate: func(s *hubv1.MyResourceSpec) {
				canary := stage("canary")
				canary.MaxConcurrency = ptr.To(intstr.FromInt32(2))
				eu := hubv1.RolloutStage{Name: "prod-eu", RequireApproval: true,
					MaxConcurrency: ptr.To(intstr.FromString("25%")),
					Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{
						MatchLabels: map[string]string{"env": "prod", "region": "eu"},
					}}}
				rest := hubv1.RolloutStage{Name: strings.Repeat("r", 63), MaxConcurrency: ptr.To(intstr.FromString("100%")),
					Selection: hubv1.Selection{
						ClusterNames:    []string{"member-2", "member-3"},
						ClusterSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: metav1.LabelSelectorOpExists}}},
					}}
				all := hubv1.RolloutStage{Name: "everything-else", MaxConcurrency: ptr.To(intstr.FromString("1%")),
					Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{}}}
				s.Rollout = &hubv1.RolloutSpec{
					Stages:                  []hubv1.RolloutStage{canary, eu, rest, all},
					MaxConcurrency:          ptr.To(intstr.FromString("50%")),
					MinReadySeconds:         0,
					ProgressDeadlineSeconds: ptr.To[int32](1),
					OnFailure:               hubv1.RolloutRollback,
					Paused:                  true,
				}
				s.RevisionHistoryLimit = ptr.To[int32](0)
			},
			check: func(g Gomega, got *hubv1.MyResource) {
				r := got.Spec.Rollout
				g.Expect(r.Stages).To(HaveLen(4))
				g.Expect(r.Stages[0].MaxConcurrency).To(HaveValue(Equal(intstr.FromInt32(2))))
				g.Expect(r.Stages[1].MaxConcurrency).To(HaveValue(Equal(intstr.FromString("25%"))))
				g.Expect(r.Stages[1].RequireApproval).To(BeTrue())
				g.Expect(r.Stages[2].MaxConcurrency).To(HaveValue(Equal(intstr.FromString("100%"))))
				g.Expect(r.Stages[3].ClusterSelector).NotTo(BeNil(), "an empty selector selects every remaining cluster")
				g.Expect(r.MaxConcurrency).To(HaveValue(Equal(intstr.FromString("50%"))))
				g.Expect(r.MinReadySeconds).To(BeZero())
				g.Expect(r.ProgressDeadlineSeconds).To(HaveValue(Equal(int32(1))))
				g.Expect(r.OnFailure).To(Equal(hubv1.RolloutRollback))
				g.Expect(r.Paused).To(BeTrue())
				g.Expect(got.Spec.RevisionHistoryLimit).To(HaveValue(BeZero()), "0 keeps no old revision, and is not replaced by the default")
			},
		},
		{
			name: "a rollout-wide maxConcurrency of 100% and a long minReadySeconds are accepted",
			mutate: withRollout(hubv1.RolloutSpec{
				MaxConcurrency:  ptr.To(intstr.FromString("100%")),
				MinReadySeconds: 3600,
				Stages:          []hubv1.RolloutStage{stage("canary")},
			}),
			check: func(g Gomega, got *hubv1.MyResource) {
				g.Expect(got.Spec.Rollout.MaxConcurrency).To(HaveValue(Equal(intstr.FromString("100%"))))
				g.Expect(got.Spec.Rollout.MinReadySeconds).To(Equal(int32(3600)))
				g.Expect(got.Spec.Rollout.OnFailure).To(Equal(hubv1.RolloutPause))
			},
		},
		{
			name: "exactly 20 stages are accepted",
			mutate: func(s *hubv1.MyResourceSpec) {
				r := hubv1.RolloutSpec{}
				for i := range hubv1.MaxRolloutStages {
					r.Stages = append(r.Stages, stage(fmt.Sprintf("s%d", i)))
				}
				s.Rollout = &r
			},
			check: func(g Gomega, got *hubv1.MyResource) {
				g.Expect(got.Spec.Rollout.Stages).To(HaveLen(hubv1.MaxRolloutStages))
			},
		},
		{
			name:   "a Service gets type ClusterIP and protocol TCP",
			mutate: withService(corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("http")}),
			check: func(g Gomega, got *hubv1.MyResource) {
				g.Expect(got.Spec.Service.Type).To(Equal(corev1.ServiceTypeClusterIP))
				g.Expect(got.Spec.Service.Ports).To(ConsistOf(HaveField("Protocol", corev1.ProtocolTCP)))
			},
		},
		{
			name: "pod template labels and annotations are kept, not pruned",
			mutate: func(s *hubv1.MyResourceSpec) {
				s.Deployment.Template.Labels = map[string]string{"app": "web"}
				s.Deployment.Template.Annotations = map[string]string{"example.com/note": "kept"}
			},
			check: func(g Gomega, got *hubv1.MyResource) {
				g.Expect(got.Spec.Deployment.Template.Labels).To(HaveKeyWithValue("app", "web"))
				g.Expect(got.Spec.Deployment.Template.Annotations).To(HaveKeyWithValue("example.com/note", "kept"))
			},
		},
		{
			name: "a full spec with named ports, selectors and overrides is accepted as written",
			mutate: func(s *hubv1.MyResourceSpec) {
				s.Deployment.Replicas = ptr.To[int32](0)
				s.Deployment.Template.Spec.Containers = append(s.Deployment.Template.Spec.Containers,
					corev1.Container{Name: "sidecar", Image: "busybox"})
				s.Placement.ClusterSelector = &metav1.LabelSelector{
					MatchLabels: map[string]string{"example.com/env": "prod"},
					MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "region", Operator: metav1.LabelSelectorOpIn, Values: []string{"eu", "us"}},
						{Key: "deprecated", Operator: metav1.LabelSelectorOpDoesNotExist},
					},
				}
				s.Service = &hubv1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{
					{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 30080},
					{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
					{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP},
				}}
				s.Overrides = []hubv1.Override{
					{Selection: hubv1.Selection{ClusterNames: []string{"member-1"}}, Replicas: ptr.To[int32](5)},
					{Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{}}, ContainerName: "sidecar", Image: "busybox:1.37"},
					{Selection: hubv1.Selection{ClusterNames: []string{"member-2"}}, Env: []corev1.EnvVar{{Name: "LOG", Value: "debug"}}},
				}
				s.DeletionPolicy = hubv1.DeletionPolicyOrphan
				s.Suspend = true
			},
			check: func(g Gomega, got *hubv1.MyResource) {
				g.Expect(got.Spec.Deployment.Replicas).To(HaveValue(Equal(int32(0))))
				g.Expect(got.Spec.Service.Type).To(Equal(corev1.ServiceTypeNodePort))
				g.Expect(got.Spec.Overrides).To(HaveLen(3))
				g.Expect(got.Spec.Overrides[1].ClusterSelector).NotTo(BeNil(), "an empty selector selects every cluster")
				g.Expect(got.Spec.DeletionPolicy).To(Equal(hubv1.DeletionPolicyOrphan))
			},
		},
		{
			name: "a placement that selects nothing yet is accepted",
			mutate: func(s *hubv1.MyResourceSpec) {
				s.Placement = hubv1.Placement{}
			},
			check: func(g Gomega, got *hubv1.MyResource) {
				g.Expect(got.Spec.Placement.ClusterNames).To(BeEmpty())
				g.Expect(got.Spec.Placement.ClusterSelector).To(BeNil())
			},
		},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			mr, err := create(t, tt.mutate)
			g.Expect(err).NotTo(HaveOccurred())
			tt.check(g, mr)
		})
	}
}
