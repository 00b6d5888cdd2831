package hub

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
)

func TestPlace(t *testing.T) {
	registry := []clusterregistry.ClusterInfo{
		{Name: "a", Labels: map[string]string{"env": "prod"}},
		{Name: "b", Labels: map[string]string{"env": "staging"}},
		{Name: "c", Labels: map[string]string{"env": "prod", "region": "us"}},
	}
	tests := []struct {
		name      string
		placement hubv1.Placement
		registry  []clusterregistry.ClusterInfo
		want      []string
		wantErr   bool
	}{
		{name: "an absent selector and no names select nothing", want: nil},
		{name: "an empty selector selects every registered cluster",
			placement: hubv1.Placement{Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{}}}, want: []string{"a", "b", "c"}},
		{name: "names OR selector", placement: hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"b"},
			ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"region": "us"}}}}, want: []string{"b", "c"}},
		{name: "a listed name that is not registered is still selected, to report ClusterNotFound",
			placement: hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"zz", "a"}}}, want: []string{"a", "zz"}},
		{name: "an empty registry selects nothing by selector, so nothing is ever cleaned up",
			placement: hubv1.Placement{Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{}}}, registry: []clusterregistry.ClusterInfo{}, want: nil},
		{name: "an invalid selector is an error", wantErr: true, placement: hubv1.Placement{Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: "Near"}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			reg := registry
			if tt.registry != nil {
				reg = tt.registry
			}
			p, err := place(tt.placement, reg)
			if tt.wantErr {
				g.Expect(err).To(HaveOccurred())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(p.selected).To(Equal(tt.want))
			for _, n := range tt.want {
				g.Expect(p.isSelected(n)).To(BeTrue())
			}
		})
	}
}
