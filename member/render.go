package member

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
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
	// Cache reads the cluster's owned objects without a request. It must
	// hold only objects labelled app.kubernetes.io/managed-by=hub-operator
	// (Deployments and Services at least); a miss there is confirmed with
	// Reader. When nil, Reader is used.
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
	// Deployment runs the workload.
	Deployment *appsv1.Deployment `json:"deployment"`
	// Service exposes it; nil when spec.service is absent.
	Service *corev1.Service `json:"service,omitempty"`
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

	tmpl := mr.Spec.Deployment.Template.DeepCopy()
	replicas := ptr.Deref(mr.Spec.Deployment.Replicas, 1)
	for i := range mr.Spec.Overrides {
		o := &mr.Spec.Overrides[i]
		selected, err := o.Matches(cluster.Name, cluster.Labels)
		if err != nil {
			return nil, fmt.Errorf("render MyResource %s/%s for cluster %s: %w", mr.Namespace, mr.Name, cluster.Name,
				&InvalidSpecError{Field: fmt.Sprintf("spec.overrides[%d].clusterSelector", i), Err: err})
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

	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: kindDeployment},
		ObjectMeta: ownedMeta(mr),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: *tmpl,
		},
	}
	if err := stampHash(dep); err != nil {
		return nil, fmt.Errorf("render Deployment %s/%s for cluster %s: %w", mr.Namespace, mr.Name, cluster.Name, err)
	}

	var svc *corev1.Service
	if s := mr.Spec.Service; s != nil {
		ports := make([]corev1.ServicePort, len(s.Ports))
		for i, p := range s.Ports {
			p.DeepCopyInto(&ports[i])
			// The API server defaults an unset targetPort to port. Rendering
			// the default keeps a zero from being sent, which would read as
			// drift on every reconcile.
			if ports[i].TargetPort.Type == intstr.Int && ports[i].TargetPort.IntVal == 0 {
				ports[i].TargetPort = intstr.FromInt32(ports[i].Port)
			}
		}
		svc = &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: corev1.SchemeGroupVersion.String(), Kind: kindService},
			ObjectMeta: ownedMeta(mr),
			Spec: corev1.ServiceSpec{
				Type:     s.Type,
				Ports:    ports,
				Selector: selector,
			},
		}
		if err := stampHash(svc); err != nil {
			return nil, fmt.Errorf("render Service %s/%s for cluster %s: %w", mr.Namespace, mr.Name, cluster.Name, err)
		}
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

// ownedMeta is the contract metadata of a member Deployment or Service.
func ownedMeta(mr *hubv1.MyResource) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      mr.Name,
		Namespace: mr.Namespace,
		Labels: map[string]string{
			hubv1.ManagedByLabel:      hubv1.ManagedByValue,
			hubv1.OwnerNamespaceLabel: mr.Namespace,
			hubv1.OwnerNameLabel:      mr.Name,
		},
		Annotations: map[string]string{
			hubv1.OwnerUIDAnnotation:      string(mr.UID),
			hubv1.HubGenerationAnnotation: strconv.FormatInt(mr.Generation, 10),
		},
	}
}

// stampHash sets the spec-hash annotation to the hash of obj as rendered so
// far. Encoding/json sorts map keys and follows struct order, so the hash is
// stable for equal objects.
func stampHash(obj client.Object) error {
	b, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("hash %T: %w", obj, err)
	}
	sum := sha256.Sum256(b)
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[hubv1.SpecHashAnnotation] = hex.EncodeToString(sum[:16])
	obj.SetAnnotations(ann)
	return nil
}
