package member

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
)

// Target is one member cluster, as the hub hands it to this package.
type Target struct {
	// Name is the cluster's name (its registry Secret's name); it is used
	// for override selection and in every error.
	Name string
	// Labels are the cluster's labels (its registry Secret's labels), which
	// override clusterSelectors match.
	Labels map[string]string
	// Cache reads the cluster without a request. It must hold every
	// Deployment and Service of the cluster, whole when labelled
	// app.kubernetes.io/managed-by=hub-operator and at least by name when
	// not (clusterregistry.MemberCacheOptions): a miss there is taken to
	// mean the object does not exist, and an object found there that is not
	// plainly ours is read again with Reader before it is judged. When nil,
	// Reader is used.
	Cache client.Reader
	// Reader reads the cluster live, bypassing any cache. When nil, Writer
	// is used, which must then be an uncached client.
	Reader client.Reader
	// Writer writes to the cluster.
	Writer client.Client
}

func (t Target) cache() client.Reader {
	if t.Cache != nil {
		return t.Cache
	}
	return t.live()
}

func (t Target) live() client.Reader {
	if t.Reader != nil {
		return t.Reader
	}
	return t.Writer
}

// Desired is what one MyResource wants in one member cluster.
type Desired struct {
	// Namespace is the namespace named like the MyResource's hub namespace.
	// It is created when missing and never deleted.
	Namespace *corev1.Namespace `json:"namespace"`
	// Deployment runs the workload, as the apply configuration sent with
	// server-side apply: only the fields the operator sets.
	Deployment *appsv1ac.DeploymentApplyConfiguration `json:"deployment"`
	// Service exposes it; nil when spec.service is absent.
	Service *corev1ac.ServiceApplyConfiguration `json:"service,omitempty"`
}

// Render computes the desired objects for mr in cluster. It is pure: it reads
// only mr and the cluster's name and labels. Overrides are applied in order
// to the clusters they select, so a later override wins. Invalid input
// returns an error wrapping *InvalidSpecError.
func Render(mr *hubv1.MyResource, cluster Target) (*Desired, error) {
	if mr == nil {
		return nil, errors.New("render: nil MyResource")
	}
	if err := validate(mr); err != nil {
		return nil, fmt.Errorf("render MyResource %s/%s for cluster %s: %w", mr.Namespace, mr.Name, cluster.Name, err)
	}

	tmpl, replicas, err := overridden(mr, cluster)
	if err != nil {
		return nil, fmt.Errorf("render MyResource %s/%s for cluster %s: %w", mr.Namespace, mr.Name, cluster.Name, err)
	}

	selector := map[string]string{hubv1.SelectorLabel: mr.Name}
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	// The owner labels ride on the pod template (never the selector, which
	// is immutable) so that ReplicaSets and Pods carry them too: the member
	// cache holds only objects labelled managed-by, and member events about
	// them are mapped back to the MyResource by these labels.
	tmpl.Labels[hubv1.SelectorLabel] = mr.Name
	tmpl.Labels[hubv1.ManagedByLabel] = hubv1.ManagedByValue
	tmpl.Labels[hubv1.OwnerNamespaceLabel] = mr.Namespace
	tmpl.Labels[hubv1.OwnerNameLabel] = mr.Name
	podTmpl, err := podTemplate(tmpl)
	if err != nil {
		return nil, fmt.Errorf("render Deployment %s/%s for cluster %s: %w", mr.Namespace, mr.Name, cluster.Name, err)
	}

	dep := appsv1ac.Deployment(mr.Name, mr.Namespace).
		WithLabels(contractLabels(mr)).
		WithAnnotations(contractAnnotations(mr)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(replicas).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selector)).
			WithTemplate(podTmpl))
	if ro := mr.Spec.Rollout; ro != nil && ro.ProgressDeadlineSeconds != nil {
		// The member's own Deployment controller then reports
		// ProgressDeadlineExceeded on the rollout's deadline: a failure the
		// rollout reads at once, exact to the pods' progress.
		dep.Spec.WithProgressDeadlineSeconds(*ro.ProgressDeadlineSeconds)
	}

	var svc *corev1ac.ServiceApplyConfiguration
	if s := mr.Spec.Service; s != nil {
		spec := corev1ac.ServiceSpec().WithSelector(selector)
		if s.Type != "" {
			spec.WithType(s.Type)
		}
		for i := range s.Ports {
			spec.WithPorts(servicePort(&s.Ports[i]))
		}
		svc = corev1ac.Service(mr.Name, mr.Namespace).
			WithLabels(contractLabels(mr)).
			WithAnnotations(contractAnnotations(mr)).
			WithSpec(spec)
	}

	return &Desired{
		Namespace: &corev1.Namespace{
			TypeMeta: metav1.TypeMeta{APIVersion: corev1.SchemeGroupVersion.String(), Kind: kindNamespace},
			ObjectMeta: metav1.ObjectMeta{
				Name:   mr.Namespace,
				Labels: map[string]string{hubv1.ManagedByLabel: hubv1.ManagedByValue},
			},
		},
		Deployment: dep,
		Service:    svc,
	}, nil
}

// overridden is the pod template and replica count for cluster after the
// overrides that select it, in order.
func overridden(mr *hubv1.MyResource, cluster Target) (*corev1.PodTemplateSpec, int32, error) {
	tmpl := mr.Spec.Deployment.Template.DeepCopy()
	replicas := ptr.Deref(mr.Spec.Deployment.Replicas, 1)
	for i := range mr.Spec.Overrides {
		o := &mr.Spec.Overrides[i]
		selected, err := o.Matches(cluster.Name, cluster.Labels)
		if err != nil {
			return nil, 0, &InvalidSpecError{Field: fmt.Sprintf("spec.overrides[%d].clusterSelector", i), Err: err}
		}
		if !selected {
			continue
		}
		if o.Replicas != nil {
			replicas = *o.Replicas
		}
		for _, c := range overrideTargets(&tmpl.Spec, o.ContainerName) {
			if o.Image != "" {
				c.Image = o.Image
			}
			c.Env = mergeEnv(c.Env, o.Env)
		}
	}
	return tmpl, replicas, nil
}

// podTemplate turns the (overridden) pod template into its apply
// configuration. The template is a whole corev1.PodTemplateSpec of the
// user's choosing, so it goes through the JSON form both types share rather
// than a hand-written copy, which would silently drop any field it forgot.
func podTemplate(tmpl *corev1.PodTemplateSpec) (*corev1ac.PodTemplateSpecApplyConfiguration, error) {
	b, err := json.Marshal(tmpl)
	if err != nil {
		return nil, fmt.Errorf("encode pod template: %w", err)
	}
	out := corev1ac.PodTemplateSpec()
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("decode pod template as an apply configuration: %w", err)
	}
	return out, nil
}

// servicePort sends only the fields the user set: an unset targetPort,
// protocol or nodePort is left to the member's defaults instead of being
// claimed as a zero.
func servicePort(p *corev1.ServicePort) *corev1ac.ServicePortApplyConfiguration {
	out := corev1ac.ServicePort().WithPort(p.Port)
	if p.Name != "" {
		out.WithName(p.Name)
	}
	if p.Protocol != "" {
		out.WithProtocol(p.Protocol)
	}
	if p.AppProtocol != nil {
		out.WithAppProtocol(*p.AppProtocol)
	}
	if p.TargetPort.Type == intstr.String || p.TargetPort.IntVal != 0 {
		out.WithTargetPort(p.TargetPort)
	}
	if p.NodePort != 0 {
		out.WithNodePort(p.NodePort)
	}
	return out
}

// validate rejects input no retry can fix, so the hub can stop retrying and
// say which field to change.
func validate(mr *hubv1.MyResource) error {
	if mr.Name == "" || mr.Namespace == "" {
		return &InvalidSpecError{Field: "metadata", Err: errors.New("name and namespace must be set")}
	}
	// The name becomes the value of the owner and selector labels.
	if errs := validation.IsValidLabelValue(mr.Name); len(errs) > 0 {
		return &InvalidSpecError{Field: "metadata.name", Err: fmt.Errorf("must be usable as a label value: %s", strings.Join(errs, "; "))}
	}
	if mr.Spec.Service != nil {
		if errs := validation.IsDNS1035Label(mr.Name); len(errs) > 0 {
			return &InvalidSpecError{Field: "metadata.name", Err: fmt.Errorf("must be a valid Service name when spec.service is set: %s", strings.Join(errs, "; "))}
		}
	}
	pod := &mr.Spec.Deployment.Template.Spec
	if len(pod.Containers) == 0 {
		return &InvalidSpecError{Field: "spec.deployment.template.spec.containers", Err: errors.New("must list at least one container")}
	}
	for i := range mr.Spec.Overrides {
		o := &mr.Spec.Overrides[i]
		if o.ContainerName != "" && len(overrideTargets(pod, o.ContainerName)) == 0 {
			return &InvalidSpecError{
				Field: fmt.Sprintf("spec.overrides[%d].containerName", i),
				Err:   fmt.Errorf("no container named %q in spec.deployment.template", o.ContainerName),
			}
		}
	}
	return nil
}

// overrideTargets returns the containers an override changes: every regular
// container, or the one named (init containers included, since naming one is
// deliberate).
func overrideTargets(pod *corev1.PodSpec, containerName string) []*corev1.Container {
	var out []*corev1.Container
	if containerName == "" {
		for i := range pod.Containers {
			out = append(out, &pod.Containers[i])
		}
		return out
	}
	for i := range pod.Containers {
		if pod.Containers[i].Name == containerName {
			out = append(out, &pod.Containers[i])
		}
	}
	for i := range pod.InitContainers {
		if pod.InitContainers[i].Name == containerName {
			out = append(out, &pod.InitContainers[i])
		}
	}
	return out
}

// mergeEnv sets each variable of set in env: replaced in place when the name
// exists (so order, and thus $(VAR) references, are kept), appended otherwise.
func mergeEnv(env, set []corev1.EnvVar) []corev1.EnvVar {
	for _, v := range set {
		i := slices.IndexFunc(env, func(e corev1.EnvVar) bool { return e.Name == v.Name })
		if i >= 0 {
			v.DeepCopyInto(&env[i])
			continue
		}
		env = append(env, *v.DeepCopy())
	}
	return env
}

// contractLabels are the contract labels of a member Deployment or Service.
func contractLabels(mr *hubv1.MyResource) map[string]string {
	return map[string]string{
		hubv1.ManagedByLabel:      hubv1.ManagedByValue,
		hubv1.OwnerNamespaceLabel: mr.Namespace,
		hubv1.OwnerNameLabel:      mr.Name,
	}
}

// contractAnnotations are the contract annotations of a member Deployment or
// Service, and the hub generation its status is read against.
//
// The hub hands Render the MyResource as of the revision a cluster must run:
// a copy whose spec is that revision's and whose example.com/revision
// annotation names it, which the member objects then carry.
func contractAnnotations(mr *hubv1.MyResource) map[string]string {
	a := map[string]string{
		hubv1.OwnerUIDAnnotation:      string(mr.UID),
		hubv1.HubGenerationAnnotation: strconv.FormatInt(mr.Generation, 10),
	}
	if rev, ok := mr.Annotations[hubv1.RevisionAnnotation]; ok {
		a[hubv1.RevisionAnnotation] = rev
	}
	return a
}
