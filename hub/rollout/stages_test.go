package rollout

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/intstr"

	hubv1 "example.com/hub-operator/api/v1"
)

func TestStages(t *testing.T) {
	clusters := []Cluster{ready("b", 1), ready("a", 1), ready("c", 1), ready("d", 1)}
	tests := []struct {
		name    string
		spec    *hubv1.RolloutSpec
		want    []Stage
		wantErr string
	}{
		{name: "no spec.rollout is one default stage of unbounded concurrency",
			want: []Stage{{Name: "default", Clusters: []string{"a", "b", "c", "d"}, MaxConcurrency: 4}}},
		{name: "stages in spec order, names sorted, the rest in default with the spec's maxConcurrency",
			spec: &hubv1.RolloutSpec{MaxConcurrency: ptr(intstr.FromString("50%")),
				Stages: []hubv1.RolloutStage{gated(stage("z", "d", "b")), stage("y", "b", "c")}},
			want: []Stage{
				{Name: "z", Clusters: []string{"b", "d"}, MaxConcurrency: 1, RequireApproval: true},
				{Name: "y", Clusters: []string{"c"}, MaxConcurrency: 1},
				{Name: "default", Clusters: []string{"a"}, MaxConcurrency: 1},
			}},
		{name: "a percent is rounded up; the implicit stage is left out when empty",
			spec: &hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{limited(stage("all", "a", "b", "c", "d"), intstr.FromString("30%"))}},
			want: []Stage{{Name: "all", Clusters: []string{"a", "b", "c", "d"}, MaxConcurrency: 2}}},
		{name: "a stage that selects nothing is kept, empty",
			spec: &hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{stage("none", "x"), limited(stage("all", "a", "b", "c", "d"), intstr.FromInt32(3))}},
			want: []Stage{{Name: "none", MaxConcurrency: 1}, {Name: "all", Clusters: []string{"a", "b", "c", "d"}, MaxConcurrency: 3}}},
		{name: "an invalid maxConcurrency of the implicit stage is an error naming the field",
			spec:    &hubv1.RolloutSpec{MaxConcurrency: ptr(intstr.FromString("many"))},
			wantErr: "spec.rollout.maxConcurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Stages(tt.spec, clusters)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Stages error = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Stages (-want +got):\n%s", diff)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
