package controlplane

import "strings"

// A member API server with default flags serves and caches every built-in
// API group (about 60 resources, each with a watch cache) and renews its own
// identity Lease: measured here, 281 MiB RSS and 1.8 % of a core at idle,
// so a hundred of them would need about 28 GiB and most of two cores. A
// member of hub-operator is asked for far less: namespaces, Deployments,
// ReplicaSets, Services, Pods and Events, by an identity authorized through
// RBAC. leanArgs keep what that and the API server's own start-up need, and
// nothing else.
var leanArgs = []string{
	"--runtime-config=" + strings.Join(leanGroups, ","),
	// Watch caches only for what the operator watches; everything else is
	// read from etcd, which for an idle member means never.
	"--watch-cache-sizes=" + strings.Join(uncachedResources, ","),
	"--disable-admission-plugins=" + strings.Join(unusedAdmission, ","),
	// The identity Lease is a write to etcd every 10 s per API server; a
	// member runs one API server and has no peers to tell apart (nor to
	// proxy requests to, which the interoperability proxy needs it for).
	"--feature-gates=APIServerIdentity=false,UnknownVersionInteroperabilityProxy=false",
}

// leanGroups are the API groups a lean API server serves. Beyond the groups
// the operator and its clients use, the API server needs, as found by
// starting one without each: networking.k8s.io (the
// start-service-ip-repair-controllers hook watches ServiceCIDRs and
// IPAddresses and fails readiness without them), apiregistration.k8s.io and
// apiextensions.k8s.io (refused at start-up, and the aggregator's
// informers), discovery.k8s.io and admissionregistration.k8s.io (informers
// the server starts whatever plugins are enabled: readyz never passes
// without them), flowcontrol.apiserver.k8s.io (priority and fairness) and
// rbac.authorization.k8s.io (the authorizer and its bootstrap policy).
var leanGroups = []string{
	"api/all=false",
	"api/v1=true",
	"apps/v1=true",
	"authentication.k8s.io/v1=true",
	"authorization.k8s.io/v1=true",
	"rbac.authorization.k8s.io/v1=true",
	"coordination.k8s.io/v1=true",
	"networking.k8s.io/v1=true",
	"flowcontrol.apiserver.k8s.io/v1=true",
	"events.k8s.io/v1=true",
	"apiregistration.k8s.io/v1=true",
	"apiextensions.k8s.io/v1=true",
	"discovery.k8s.io/v1=true",
	"admissionregistration.k8s.io/v1=true",
}

// uncachedResources are served resources the operator never watches on a
// member: a watch cache of each is memory held for nothing.
var uncachedResources = []string{
	"secrets#0", "configmaps#0", "serviceaccounts#0", "limitranges#0", "resourcequotas#0",
	"persistentvolumes#0", "persistentvolumeclaims#0", "podtemplates#0",
	"replicationcontrollers#0", "endpoints#0", "nodes#0",
	"controllerrevisions.apps#0", "statefulsets.apps#0", "daemonsets.apps#0",
	"leases.coordination.k8s.io#0", "endpointslices.discovery.k8s.io#0",
	"ingresses.networking.k8s.io#0", "ingressclasses.networking.k8s.io#0", "networkpolicies.networking.k8s.io#0",
}

// unusedAdmission are default admission plugins whose objects a lean API
// server does not serve or the benchmark never creates.
var unusedAdmission = []string{
	"DefaultStorageClass", "DefaultIngressClass", "StorageObjectInUseProtection",
	"PersistentVolumeClaimResize", "RuntimeClass", "CertificateApproval", "CertificateSigning",
	"ClusterTrustBundleAttest", "CertificateSubjectRestriction", "MutatingAdmissionPolicy",
	"ValidatingAdmissionPolicy", "MutatingAdmissionWebhook", "ValidatingAdmissionWebhook",
	"PodSecurity", "Priority", "DefaultTolerationSeconds", "TaintNodesByCondition",
}

// leanEnv makes the Go runtime return memory sooner: an idle API server's
// heap is mostly garbage between its periodic loops.
var leanEnv = []string{"GOGC=50"}
