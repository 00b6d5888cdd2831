package v1

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Selection selects member clusters: a cluster is selected when its name is
// listed OR its labels match the selector. Kubernetes selector semantics
// apply: an empty selector ({}) selects every cluster; an absent one selects
// none by itself. Placement, Override and rollout stages embed it, so the
// fields, their validation and their meaning are the same in each.
type Selection struct {
	// ClusterNames lists clusters by registry Secret name, so each is a
	// lowercase DNS subdomain such as member-1.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ClusterNames []string `json:"clusterNames,omitempty"`

	// ClusterSelector selects clusters by the labels of their registry Secret.
	// A selector that is not a valid label selector is rejected here rather
	// than silently selecting nothing; it may hold at most 16 matchExpressions
	// and 64 matchLabels.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, !(e.operator in ['In', 'NotIn']) || (has(e.values) && size(e.values) > 0))",message="In and NotIn need at least one value",fieldPath=".matchExpressions"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, !(e.operator in ['Exists', 'DoesNotExist']) || !has(e.values) || size(e.values) == 0)",message="Exists and DoesNotExist take no values",fieldPath=".matchExpressions"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, !format.qualifiedName().validate(e.key).hasValue())",message="each key must be a label key such as region or example.com/region",fieldPath=".matchExpressions"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchLabels) || self.matchLabels.all(k, !format.qualifiedName().validate(k).hasValue())",message="each key must be a label key such as region or example.com/region",fieldPath=".matchLabels"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchLabels) || self.matchLabels.all(k, !format.labelValue().validate(self.matchLabels[k]).hasValue())",message="each value must be a label value: at most 63 letters, digits, '-', '_' or '.'",fieldPath=".matchLabels"
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`
}

// Matches reports whether the cluster with this name and these labels is
// selected. The selector is parsed even when the name is listed, so that an
// invalid selector is an error whichever cluster is asked about, never a
// selection that depends on the cluster.
func (s Selection) Matches(name string, clusterLabels map[string]string) (bool, error) {
	matches, err := s.Matcher()
	if err != nil {
		return false, err
	}
	return matches(name, clusterLabels), nil
}

// Matcher parses the selection once, for matching it against many clusters
// (placement over the whole registry). An invalid selector is an error
// whatever the clusters are.
func (s Selection) Matcher() (func(name string, clusterLabels map[string]string) bool, error) {
	// A nil selector becomes labels.Nothing(): it selects none by itself.
	sel, err := metav1.LabelSelectorAsSelector(s.ClusterSelector)
	if err != nil {
		return nil, err
	}
	return func(name string, clusterLabels map[string]string) bool {
		return slices.Contains(s.ClusterNames, name) || sel.Matches(labels.Set(clusterLabels))
	}, nil
}
