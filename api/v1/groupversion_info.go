package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of MyResource.
var GroupVersion = schema.GroupVersion{Group: "example.com", Version: "v1"}

// AddToScheme registers MyResource and MyResourceList with a scheme. It is a
// plain function, not an init-time registry, so every binary builds its own
// scheme explicitly.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &MyResource{}, &MyResourceList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
