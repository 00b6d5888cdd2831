package v1_test

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	hubv1 "example.com/hub-operator/api/v1"
)

func TestSelectionMatches(t *testing.T) {
	prod := map[string]string{"env": "prod"}
	byEnv := &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
	invalid := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: "Near"}}}
	tests := []struct {
		name      string
		selection hubv1.Selection
		cluster   string
		labels    map[string]string
		want      bool
		wantErr   bool
	}{
		{name: "a listed name is selected", selection: hubv1.Selection{ClusterNames: []string{"m1", "m2"}},
			cluster: "m2", want: true},
		{name: "an unlisted name without a selector is not selected", selection: hubv1.Selection{ClusterNames: []string{"m1"}},
			cluster: "m2", labels: prod},
		{name: "a selector selects by labels", selection: hubv1.Selection{ClusterSelector: byEnv},
			cluster: "m3", labels: prod, want: true},
		{name: "a selector does not select other labels", selection: hubv1.Selection{ClusterSelector: byEnv},
			cluster: "m3", labels: map[string]string{"env": "dev"}},
		{name: "names OR selector: the name alone is enough",
			selection: hubv1.Selection{ClusterNames: []string{"m1"}, ClusterSelector: byEnv},
			cluster:   "m1", labels: map[string]string{"env": "dev"}, want: true},
		{name: "names OR selector: the labels alone are enough",
			selection: hubv1.Selection{ClusterNames: []string{"m1"}, ClusterSelector: byEnv},
			cluster:   "m9", labels: prod, want: true},
		{name: "names OR selector: neither is not selected",
			selection: hubv1.Selection{ClusterNames: []string{"m1"}, ClusterSelector: byEnv},
			cluster:   "m9", labels: map[string]string{"env": "dev"}},
		{name: "an empty selector selects every cluster", selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{}},
			cluster: "m1", labels: prod, want: true},
		{name: "an empty selector selects a cluster without labels", selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{}},
			cluster: "m1", want: true},
		{name: "a nil selector selects none by itself", selection: hubv1.Selection{},
			cluster: "m1", labels: prod},
		{name: "an invalid selector is an error", selection: hubv1.Selection{ClusterSelector: invalid},
			cluster: "m1", labels: prod, wantErr: true},
		{name: "an invalid selector is an error even for a listed name",
			selection: hubv1.Selection{ClusterNames: []string{"m1"}, ClusterSelector: invalid},
			cluster:   "m1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := tt.selection.Matches(tt.cluster, tt.labels)
			if tt.wantErr {
				g.Expect(err).To(HaveOccurred())
				g.Expect(got).To(BeFalse())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}
