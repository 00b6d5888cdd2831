package v1

import (
	"k8s.io/apimachinery/pkg/util/intstr"
)

// RolloutFailurePolicy says what a failed rollout does.
// +kubebuilder:validation:Enum=Pause;Rollback
type RolloutFailurePolicy string

const (
	// RolloutPause stops the rollout: no further cluster starts the failed
	// revision, the clusters that got it keep it.
	RolloutPause RolloutFailurePolicy = "Pause"
	// RolloutRollback gives every cluster that got the failed revision the
	// stable revision again.
	RolloutRollback RolloutFailurePolicy = "Rollback"
)

// Defaults of RolloutSpec.
const (
	DefaultMaxConcurrency          = 1
	DefaultProgressDeadlineSeconds = 600
	DefaultRevisionHistoryLimit    = 10
	// DefaultStageName is the implicit last stage: the selected clusters no
	// stage selects.
	DefaultStageName = "default"
	// MaxRolloutStages bounds spec.rollout.stages.
	MaxRolloutStages = 20
)

// RolloutSpec makes a new revision move through the selected clusters in
// stages, each cluster gated on its own health, instead of reaching every
// cluster at once.
type RolloutSpec struct {
	// Stages are taken in order. A cluster belongs to the first stage that
	// selects it (names OR selector, as placement); selected clusters that no
	// stage selects form a last implicit stage named "default".
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=20
	Stages []RolloutStage `json:"stages,omitempty"`

	// The percent form is checked by a pattern, not by CEL: a CEL match on an
	// int-or-string is costed as if the string could be of any length, and
	// 20 stages of it exceed the CRD's validation cost budget.

	// MaxConcurrency is how many clusters of the implicit "default" stage may
	// be updating at once: a count (at least 1) or a percent of the stage's
	// clusters ("25%", rounded up, at least one cluster). Default 1.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:Pattern=`^([1-9][0-9]?|100)%$`
	// +kubebuilder:validation:XValidation:rule="type(self) != int || self >= 1",message="maxConcurrency must be a positive integer or a percent from 1% to 100%"
	MaxConcurrency *intstr.IntOrString `json:"maxConcurrency,omitempty"`

	// MinReadySeconds is how long a cluster's Deployment must have been
	// Available at the new revision before the cluster counts as updated.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MinReadySeconds int32 `json:"minReadySeconds,omitempty"`

	// ProgressDeadlineSeconds: a cluster that is not Available at the new
	// revision this long after it was applied there has failed. Default 600.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`

	// OnFailure is what a failed cluster does to the rollout: Pause (no
	// further cluster starts the revision) or Rollback (every cluster that
	// got it is given the stable revision again). Either way the failed
	// revision is not retried until the spec changes.
	// +optional
	// +kubebuilder:default=Pause
	OnFailure RolloutFailurePolicy `json:"onFailure,omitempty"`

	// Paused, while true, lets no further cluster start a new revision;
	// clusters already updating go on.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// RolloutStage is one step of a rollout.
// +kubebuilder:validation:XValidation:rule="(has(self.clusterNames) && size(self.clusterNames) > 0) || has(self.clusterSelector)",message="a stage must select clusters: set clusterNames or clusterSelector"
type RolloutStage struct {
	// Name names the stage in status, events and approvals: a DNS label.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// Selection picks the stage's clusters among the selected ones.
	Selection `json:",inline"`

	// MaxConcurrency is how many of the stage's clusters may be updating at
	// once: a count (at least 1) or a percent of the stage's clusters.
	// Default 1.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:Pattern=`^([1-9][0-9]?|100)%$`
	// +kubebuilder:validation:XValidation:rule="type(self) != int || self >= 1",message="maxConcurrency must be a positive integer or a percent from 1% to 100%"
	MaxConcurrency *intstr.IntOrString `json:"maxConcurrency,omitempty"`

	// RequireApproval holds the stage before it starts until the MyResource
	// carries the annotation example.com/rollout-approved: "<revision>/<stage>".
	// +optional
	RequireApproval bool `json:"requireApproval,omitempty"`
}

// RolloutPhase is where a rollout is.
type RolloutPhase string

// Rollout phases: part of the contract.
const (
	RolloutProgressing        RolloutPhase = "Progressing"
	RolloutPaused             RolloutPhase = "Paused"
	RolloutWaitingForApproval RolloutPhase = "WaitingForApproval"
	RolloutHalted             RolloutPhase = "Halted"
	RolloutRolledBack         RolloutPhase = "RolledBack"
	RolloutComplete           RolloutPhase = "Complete"
)

// RolloutStatus is where the newest revision is on its way through the clusters.
type RolloutStatus struct {
	// Revision is the newest revision: the one the spec renders.
	// +optional
	Revision int64 `json:"revision,omitempty"`
	// StableRevision is the last revision that reached every selected
	// cluster; clusters waiting for their stage run it. 0 when none has.
	// +optional
	StableRevision int64 `json:"stableRevision,omitempty"`
	// Phase is Progressing, Paused, WaitingForApproval, Halted (onFailure
	// Pause), RolledBack or Complete.
	// +optional
	// +kubebuilder:validation:Enum=Progressing;Paused;WaitingForApproval;Halted;RolledBack;Complete
	Phase RolloutPhase `json:"phase,omitempty"`
	// Stage is the stage the rollout is at (the one that failed, once halted).
	// +optional
	Stage string `json:"stage,omitempty"`
	// UpdatedClusters is how many selected clusters run revision and have
	// been Available for minReadySeconds.
	// +optional
	UpdatedClusters int32 `json:"updatedClusters,omitempty"`
	// Message says what the rollout waits for, or which cluster failed and why.
	// +optional
	Message string `json:"message,omitempty"`
}

// Rollout annotations and events: part of the contract.
const (
	// RevisionAnnotation on a member Deployment and Service is the revision applied there.
	RevisionAnnotation = "example.com/revision"
	// RolloutApprovedAnnotation "<revision>/<stage>" on a MyResource lets that
	// stage of that revision start.
	RolloutApprovedAnnotation = "example.com/rollout-approved"
	// RevisionHistoryAnnotation on a ControllerRevision lists the numbers it
	// had before it was renumbered (a spec brought back to an older
	// revision's), like a ReplicaSet's deployment.kubernetes.io/revision-history.
	RevisionHistoryAnnotation = "example.com/revision-history"

	ReasonRolloutPending        = "RolloutPending"
	ReasonRolloutFailed         = "RolloutFailed"
	ReasonRolloutStageStarted   = "RolloutStageStarted"
	ReasonRolloutWaitingApprove = "RolloutWaitingForApproval"
	ReasonRolloutHalted         = "RolloutHalted"
	ReasonRolledBack            = "RolledBack"
	ReasonRolloutComplete       = "RolloutComplete"
)
