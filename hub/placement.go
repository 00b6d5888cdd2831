package hub

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
)

// placement is the outcome of matching a MyResource's placement against the
// registry: the clusters it selects, by name.
type placement struct {
	// selected are the selected clusters, sorted by name, registered or not.
	selected []string
	// registered maps every registered cluster to its registry view.
	registered map[string]clusterregistry.ClusterInfo
}

// place selects clusters: a cluster is selected when its name is listed OR
// its labels match the selector. An empty selector selects every registered
// cluster; an absent one selects none by itself. A listed name that is not
// registered is still selected, so its status can say ClusterNotFound.
func place(p hubv1.Placement, registry []clusterregistry.ClusterInfo) (placement, error) {
	out := placement{registered: make(map[string]clusterregistry.ClusterInfo, len(registry))}
	for _, c := range registry {
		out.registered[c.Name] = c
	}
	set := map[string]bool{}
	for _, n := range p.ClusterNames {
		set[n] = true
	}
	if p.ClusterSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(p.ClusterSelector)
		if err != nil {
			return out, fmt.Errorf("invalid placement.clusterSelector: %w", err)
		}
		for _, c := range registry {
			if sel.Matches(labels.Set(c.Labels)) {
				set[c.Name] = true
			}
		}
	}
	for n := range set {
		out.selected = append(out.selected, n)
	}
	slices.Sort(out.selected)
	return out, nil
}

// isSelected says whether name is among the selected clusters.
func (p placement) isSelected(name string) bool {
	_, ok := slices.BinarySearch(p.selected, name)
	return ok
}
