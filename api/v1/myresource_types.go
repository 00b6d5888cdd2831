package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeletionPolicy says what happens to member objects when a MyResource is
// deleted or a cluster leaves its placement.
// +kubebuilder:validation:Enum=Delete;Orphan
type DeletionPolicy string

const (
	// DeletionPolicyDelete removes the member objects.
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyOrphan leaves the member objects in place.
	DeletionPolicyOrphan DeletionPolicy = "Orphan"
)

// Placement selects the member clusters a MyResource runs in.
type Placement struct {
	Selection `json:",inline"`
}

// DeploymentSpec is the workload run in every selected cluster.
type DeploymentSpec struct {
	// Replicas is the desired number of pods in each cluster.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Template is the pod template. Its labels get the selector label
	// example.com/myresource added.
	//
	// Mistakes every member cluster would reject (no containers, a container
	// without a name or an image, a restartPolicy other than Always) are
	// rejected here, once, instead of failing in each cluster.
	// +kubebuilder:validation:XValidation:rule="has(self.spec) && has(self.spec.containers) && size(self.spec.containers) > 0",message="deployment.template.spec.containers must list at least one container"
	// +kubebuilder:validation:XValidation:rule="!has(self.spec) || !has(self.spec.containers) || self.spec.containers.all(c, size(c.name) > 0)",message="every container in deployment.template.spec.containers needs a name",fieldPath=".spec.containers"
	// +kubebuilder:validation:XValidation:rule="!has(self.spec) || !has(self.spec.containers) || self.spec.containers.all(c, has(c.image) && size(c.image) > 0)",message="every container in deployment.template.spec.containers needs an image",fieldPath=".spec.containers"
	// +kubebuilder:validation:XValidation:rule="!has(self.spec) || !has(self.spec.initContainers) || self.spec.initContainers.all(c, size(c.name) > 0 && has(c.image) && size(c.image) > 0)",message="every container in deployment.template.spec.initContainers needs a name and an image",fieldPath=".spec.initContainers"
	// +kubebuilder:validation:XValidation:rule="!has(self.spec) || !has(self.spec.restartPolicy) || self.spec.restartPolicy == 'Always'",message="a Deployment's pods must use restartPolicy Always",fieldPath=".spec.restartPolicy"
	Template corev1.PodTemplateSpec `json:"template"`
}

// ServiceSpec is the Service exposed in every selected cluster.
// +kubebuilder:validation:XValidation:rule="size(self.ports) <= 1 || self.ports.all(p, has(p.name) && size(p.name) > 0)",message="a Service with more than one port needs a name on every port",fieldPath=".ports"
// +kubebuilder:validation:XValidation:rule="self.ports.all(p, !has(p.name) || self.ports.exists_one(q, has(q.name) && q.name == p.name))",message="Service port names must be unique",fieldPath=".ports"
// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'ClusterIP' || self.ports.all(p, !has(p.nodePort) || p.nodePort == 0)",message="nodePort needs service.type NodePort or LoadBalancer",fieldPath=".ports"
type ServiceSpec struct {
	// Type is the Service type.
	// +kubebuilder:default=ClusterIP
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	// +optional
	Type corev1.ServiceType `json:"type,omitempty"`

	// Ports are the Service ports: at least one, each port and protocol
	// pair once.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	// +listType=map
	// +listMapKey=port
	// +listMapKey=protocol
	// +kubebuilder:validation:items:XValidation:rule="self.port >= 1 && self.port <= 65535",message="a Service port must be between 1 and 65535",fieldPath=".port"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.targetPort) || type(self.targetPort) == string || (self.targetPort >= 0 && self.targetPort <= 65535)",message="a numeric targetPort must be between 1 and 65535, or 0 for the same as port",fieldPath=".targetPort"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.nodePort) || (self.nodePort >= 0 && self.nodePort <= 65535)",message="a nodePort must be between 0 (allocated) and 65535",fieldPath=".nodePort"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.protocol) || self.protocol in ['TCP', 'UDP', 'SCTP']",message="a Service port's protocol must be TCP, UDP or SCTP",fieldPath=".protocol"
	Ports []corev1.ServicePort `json:"ports"`
}

// Override changes the workload for the clusters it selects. Overrides are
// applied in order; a later one wins.
// +kubebuilder:validation:XValidation:rule="(has(self.clusterNames) && size(self.clusterNames) > 0) || has(self.clusterSelector)",message="an override must select clusters: set clusterNames or clusterSelector"
// +kubebuilder:validation:XValidation:rule="has(self.replicas) || has(self.image) || (has(self.env) && size(self.env) > 0)",message="an override must change something: set replicas, image or env"
// +kubebuilder:validation:XValidation:rule="!has(self.containerName) || has(self.image) || has(self.env)",message="containerName narrows image or env: set one of them"
type Override struct {
	// Selection picks the clusters this override applies to, with the same
	// rules as placement.
	Selection `json:",inline"`

	// Replicas replaces deployment.replicas.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Image replaces the image of every container, or of containerName only.
	// +kubebuilder:validation:MinLength=1
	// +optional
	Image string `json:"image,omitempty"`

	// ContainerName narrows image and env to one container.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	ContainerName string `json:"containerName,omitempty"`

	// Env sets (adds or replaces by name) environment variables.
	// +optional
	// +listType=map
	// +listMapKey=name
	Env []corev1.EnvVar `json:"env,omitempty"`
}

// MyResourceSpec is the desired state: what runs, and where.
type MyResourceSpec struct {
	// Placement selects the member clusters.
	// +optional
	Placement Placement `json:"placement,omitempty"`

	// Deployment is the workload run in every selected cluster.
	Deployment DeploymentSpec `json:"deployment"`

	// Service, when set, is exposed in every selected cluster. When unset,
	// no Service is created and one created earlier is deleted.
	// +optional
	Service *ServiceSpec `json:"service,omitempty"`

	// Overrides change the workload per cluster, applied in order.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	Overrides []Override `json:"overrides,omitempty"`

	// DeletionPolicy says whether member objects are deleted (Delete) or left
	// (Orphan) when the MyResource is deleted or a cluster leaves the placement.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// Suspend, while true, stops every write to and deletion from members;
	// status keeps being reported.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// Rollout, when set, moves each new revision through the clusters in
	// stages, each cluster gated on its own health. Without it a new revision
	// reaches every selected cluster at once.
	// +optional
	Rollout *RolloutSpec `json:"rollout,omitempty"`

	// RevisionHistoryLimit is how many old revisions are kept as
	// ControllerRevisions on the hub, besides any a cluster still runs.
	// Default 10.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=0
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`
}

// ClusterStatus is the compact state of the workload in one member cluster.
type ClusterStatus struct {
	// Name is the cluster's name (its registry Secret's name).
	Name string `json:"name"`

	// Conditions are Applied and Available.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Replicas is the member Deployment's desired replica count.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// ReadyReplicas is the member Deployment's ready replica count.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// AvailableReplicas is the member Deployment's available replica count.
	// +optional
	AvailableReplicas int32 `json:"availableReplicas,omitempty"`

	// ObservedGeneration is the hub generation the member objects were last
	// applied from, read back from the member.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Revision is the revision applied there, read back from the member
	// objects' example.com/revision annotation.
	// +optional
	Revision int64 `json:"revision,omitempty"`
}

// MyResourceStatus is the observed state across all selected clusters.
type MyResourceStatus struct {
	// ObservedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Ready, Degraded and Progressing.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// SelectedClusters is how many clusters the placement selects.
	// +optional
	SelectedClusters int32 `json:"selectedClusters,omitempty"`
	// ReadyClusters is how many selected clusters are Applied and Available.
	// +optional
	ReadyClusters int32 `json:"readyClusters,omitempty"`

	// ReadySummary is readyClusters/selectedClusters, for the READY column.
	// +optional
	ReadySummary string `json:"readySummary,omitempty"`

	// Rollout is where the newest revision is on its way through the clusters.
	// +optional
	Rollout *RolloutStatus `json:"rollout,omitempty"`

	// Clusters is the per-cluster state, sorted by name.
	// +optional
	// +listType=map
	// +listMapKey=name
	Clusters []ClusterStatus `json:"clusters,omitempty"`
}

// MyResource runs one workload in many member clusters.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=myr
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.readySummary`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="REVISION",type=integer,JSONPath=`.status.rollout.revision`
// +kubebuilder:printcolumn:name="ROLLOUT",type=string,JSONPath=`.status.rollout.phase`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type MyResource struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   MyResourceSpec   `json:"spec"`
	Status MyResourceStatus `json:"status,omitempty"`
}

// MyResourceList is a list of MyResources.
//
// +kubebuilder:object:root=true
type MyResourceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MyResource `json:"items"`
}
