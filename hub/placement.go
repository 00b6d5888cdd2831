package hub

import (
	"fmt"
	"maps"
	"slices"

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
	matches, err := p.Matcher()
	if err != nil {
		return out, fmt.Errorf("invalid placement.clusterSelector: %w", err)
	}
	// A listed name is selected even when it is not registered, so the
	// candidates are the registry and the list.
	set := map[string]bool{}
	for _, n := range slices.Concat(slices.Collect(maps.Keys(out.registered)), p.ClusterNames) {
		if matches(n, out.registered[n].Labels) {
			set[n] = true
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
