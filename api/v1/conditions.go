package v1

// Condition types on the MyResource.
const (
	// ConditionReady is True exactly when every selected cluster has Applied=True
	// and Available=True for the current generation.
	ConditionReady = "Ready"
	// ConditionDegraded is True when any selected cluster is failing; its
	// message names the clusters.
	ConditionDegraded = "Degraded"
	// ConditionProgressing is True while some selected cluster is still rolling out.
	ConditionProgressing = "Progressing"
	// ConditionReconciling is kstatus's "still converging" (Flux, Helm,
	// kpt): True while a selected cluster is still being applied or its
	// Deployment is not Available yet, and nothing needs a person.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is kstatus's "cannot progress without a person":
	// True while a cluster is in Conflict or InvalidKubeconfig, or the spec
	// is invalid, so that a pipeline waiting on the MyResource fails at once
	// with the reason instead of at its own timeout.
	ConditionStalled = "Stalled"
)

// Condition types on one entry of status.clusters.
const (
	// ClusterConditionApplied says whether the desired objects were written to the cluster.
	ClusterConditionApplied = "Applied"
	// ClusterConditionAvailable says whether the cluster's Deployment is Available.
	ClusterConditionAvailable = "Available"
)

// Condition reasons. They are CamelCase, stable, and part of the contract:
// users alert on them and the kubectl plugin prints them.
const (
	ReasonApplied               = "Applied"
	ReasonApplyFailed           = "ApplyFailed"
	ReasonConflict              = "Conflict"
	ReasonClusterUnreachable    = "ClusterUnreachable"
	ReasonInvalidKubeconfig     = "InvalidKubeconfig"
	ReasonClusterNotFound       = "ClusterNotFound"
	ReasonDeploymentAvailable   = "DeploymentAvailable"
	ReasonDeploymentProgressing = "DeploymentProgressing"
	ReasonDeploymentUnavailable = "DeploymentUnavailable"
	ReasonProgressDeadline      = "ProgressDeadlineExceeded"
	ReasonCleanupPending        = "CleanupPending"
	ReasonSuspended             = "Suspended"
	ReasonPending               = "Pending"
	ReasonAllClustersReady      = "AllClustersReady"
	ReasonClustersNotReady      = "ClustersNotReady"
	ReasonClustersFailing       = "ClustersFailing"
	ReasonNoClustersSelected    = "NoClustersSelected"
	ReasonAsExpected            = "AsExpected"
	ReasonDeleting              = "Deleting"
	ReasonOrphaned              = "Orphaned"
	ReasonDeleted               = "Deleted"
	ReasonInvalidSpec           = "InvalidSpec"
)

// Labels and annotations of the contract.
const (
	// FinalizerName holds a MyResource until every member is cleaned up.
	FinalizerName = "myresource.example.com/finalizer"
	// ForceOrphanAnnotation set to "true" on a MyResource being deleted drops
	// the finalizer at once and leaves member objects where they are.
	ForceOrphanAnnotation = "example.com/force-orphan"

	// DefaultRegistryNamespace is the namespace of the registry Secrets when
	// neither a flag nor POD_NAMESPACE names one. It lives here, not in
	// clusterregistry, so that kubectl-hub can default to it without linking
	// the operator's runtime.
	DefaultRegistryNamespace = "hub-operator-system"
	// MemberClusterLabel marks a hub Secret as a registry entry.
	MemberClusterLabel = "example.com/member-cluster"
	// KubeconfigKey is the data key of a registry Secret holding the kubeconfig.
	KubeconfigKey = "kubeconfig"

	// ManagedByLabel with value ManagedByValue marks every member object the operator owns.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of ManagedByLabel and the server-side apply field manager.
	ManagedByValue = "hub-operator"
	// OwnerNamespaceLabel and OwnerNameLabel map a member object back to its MyResource.
	OwnerNamespaceLabel = "example.com/owner-namespace"
	OwnerNameLabel      = "example.com/owner-name"
	// OwnerUIDAnnotation carries the hub MyResource's UID.
	OwnerUIDAnnotation = "example.com/owner-uid"
	// SelectorLabel is the pod selector label; its value is the MyResource name.
	SelectorLabel = "example.com/myresource"
	// HubGenerationAnnotation carries the hub generation a member object was rendered from.
	HubGenerationAnnotation = "example.com/hub-generation"
	// SpecHashAnnotation was stamped on member objects by releases that
	// skipped applies by comparing it.
	//
	// Deprecated: no longer written; the first server-side apply of a newer
	// release removes it from member objects.
	SpecHashAnnotation = "example.com/spec-hash"
)

// Cluster health annotations on a registry Secret. The operator writes them
// when a cluster's health changes (never at rest) so that people and tools
// such as kubectl-hub can read it without asking the operator.
const (
	// ClusterStateAnnotation is the cluster's state: Ready, Unreachable,
	// Invalid or Connecting.
	ClusterStateAnnotation = "example.com/cluster-state"
	// ClusterReasonAnnotation is the reason constant of that state.
	ClusterReasonAnnotation = "example.com/cluster-reason"
	// ClusterMessageAnnotation says why, in fixed text that never quotes the kubeconfig.
	ClusterMessageAnnotation = "example.com/cluster-message"
	// ClusterLastTransitionAnnotation is when the state last changed (RFC 3339).
	ClusterLastTransitionAnnotation = "example.com/cluster-last-transition"
)
