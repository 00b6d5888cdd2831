package clusterregistry

import (
	"errors"
	"net"
	"net/url"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// DefaultMaxKubeconfigBytes is the default size limit of a registry kubeconfig.
// Real kubeconfigs with a certificate chain are a few KiB; the limit exists so
// that a hostile Secret cannot make the YAML parser chew through megabytes.
const DefaultMaxKubeconfigBytes = 1 << 20

// ValidationOptions tune ValidateKubeconfig.
type ValidationOptions struct {
	// MaxBytes is the largest kubeconfig accepted; larger input is rejected
	// before it is parsed. Zero means DefaultMaxKubeconfigBytes.
	MaxBytes int

	// ForbiddenHosts lists API servers a member kubeconfig must not point at,
	// typically the hub's own API server, so that a registry entry cannot make
	// the operator treat the hub as one of its members. An entry is a URL
	// ("https://10.0.0.1:6443"), a "host:port" or a bare host; a bare host
	// matches any port. Matching needs no DNS lookup: names compare
	// case-insensitively, IP addresses by value (an IPv4-mapped IPv6 address
	// is its IPv4 address), and every loopback or unspecified address and
	// localhost name is one host, since they all reach this machine.
	ForbiddenHosts []string
}

// Problem names what is wrong with a rejected kubeconfig. Each Problem maps to
// one fixed, human-readable message that never contains any of the input.
type Problem string

// The problems ValidateKubeconfig reports.
const (
	// ProblemEmpty means the Secret has no kubeconfig, or it is empty.
	ProblemEmpty Problem = "Empty"
	// ProblemTooLarge means the kubeconfig exceeds ValidationOptions.MaxBytes.
	ProblemTooLarge Problem = "TooLarge"
	// ProblemMalformed means the bytes are not a kubeconfig document.
	ProblemMalformed Problem = "Malformed"
	// ProblemNoCurrentContext means current-context is unset or names a context,
	// cluster or user that is not defined.
	ProblemNoCurrentContext Problem = "NoCurrentContext"
	// ProblemExecPlugin means some user runs an exec credential plugin.
	ProblemExecPlugin Problem = "ExecPlugin"
	// ProblemAuthProvider means some user uses an auth-provider plugin.
	ProblemAuthProvider Problem = "AuthProvider"
	// ProblemFileReference means some user or cluster reads a file (tokenFile,
	// client-certificate, client-key, certificate-authority).
	ProblemFileReference Problem = "FileReference"
	// ProblemInsecure means the cluster disables TLS verification.
	ProblemInsecure Problem = "InsecureSkipTLSVerify"
	// ProblemServerURL means the server is not an https URL with a host.
	ProblemServerURL Problem = "ServerURL"
	// ProblemForbiddenHost means the server is one of ValidationOptions.ForbiddenHosts.
	ProblemForbiddenHost Problem = "ForbiddenHost"
	// ProblemTLSData means embedded certificate, key or CA data does not parse.
	ProblemTLSData Problem = "TLSData"
	// ProblemIncomplete means client-go refuses the configuration for another reason
	// (e.g. a certificate without its key, an invalid proxy-url).
	ProblemIncomplete Problem = "Incomplete"
)

// problemMessages are the only texts an InvalidKubeconfigError ever carries.
// They are constants on purpose: parse errors from YAML and client-go quote
// the input, and the input may hold tokens and private keys.
var problemMessages = map[Problem]string{
	ProblemEmpty:            "kubeconfig is missing or empty",
	ProblemTooLarge:         "kubeconfig is larger than the size limit",
	ProblemMalformed:        "kubeconfig is not a valid kubeconfig YAML or JSON document",
	ProblemNoCurrentContext: "kubeconfig has no current-context, or it names a context, cluster or user that is not defined",
	ProblemExecPlugin:       "kubeconfig uses an exec credential plugin, which is not allowed",
	ProblemAuthProvider:     "kubeconfig uses an auth-provider plugin, which is not allowed",
	ProblemFileReference:    "kubeconfig references a file (tokenFile, client-certificate, client-key or certificate-authority), which is not allowed: embed the data instead",
	ProblemInsecure:         "kubeconfig disables TLS verification (insecure-skip-tls-verify), which is not allowed",
	ProblemServerURL:        "kubeconfig server must be an https URL with a host (a name or a canonical IP address) and no user info",
	ProblemForbiddenHost:    "kubeconfig server is a forbidden host (the hub's own API server)",
	ProblemTLSData:          "kubeconfig certificate, key or certificate-authority data cannot be parsed",
	ProblemIncomplete:       "kubeconfig is incomplete or inconsistent for its current context",
}

// InvalidKubeconfigError reports a kubeconfig that ValidateKubeconfig refused.
// Its message is fixed per Problem and safe to log, record in an event or
// write to a status: it never contains any byte of the kubeconfig.
type InvalidKubeconfigError struct {
	// Problem says what is wrong.
	Problem Problem
}

// Error returns the fixed message of e.Problem.
func (e *InvalidKubeconfigError) Error() string {
	if msg, ok := problemMessages[e.Problem]; ok {
		return msg
	}
	return "kubeconfig is invalid"
}

func invalid(p Problem) error { return &InvalidKubeconfigError{Problem: p} }

// ValidateKubeconfig parses a registry kubeconfig and returns the rest.Config of
// its current context. It accepts only self-contained kubeconfigs: inline
// certificates, keys and tokens, an https server, TLS verification on. It
// rejects, anywhere in the document (not only in the current context, so that
// switching current-context cannot smuggle one in), exec and auth-provider
// plugins and every field that makes client-go read a file: running a plugin or
// reading a file on the hub from a Secret's content would let whoever can write
// a registry Secret run code or read files as the operator.
//
// Every error is an *InvalidKubeconfigError with a fixed message. The function
// is pure: no network, no file system, no environment.
func ValidateKubeconfig(data []byte, opts ValidationOptions) (*rest.Config, error) {
	maxBytes := opts.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxKubeconfigBytes
	}
	if len(data) == 0 {
		return nil, invalid(ProblemEmpty)
	}
	if len(data) > maxBytes {
		return nil, invalid(ProblemTooLarge)
	}

	cfg, err := clientcmd.Load(data)
	if err != nil || cfg == nil {
		// err is dropped on purpose: decoder errors quote the input.
		return nil, invalid(ProblemMalformed)
	}
	if p, ok := forbiddenMechanism(cfg); ok {
		return nil, invalid(p)
	}

	kctx, ok := cfg.Contexts[cfg.CurrentContext]
	if cfg.CurrentContext == "" || !ok || kctx == nil {
		return nil, invalid(ProblemNoCurrentContext)
	}
	kcluster, ok := cfg.Clusters[kctx.Cluster]
	if !ok || kcluster == nil {
		return nil, invalid(ProblemNoCurrentContext)
	}
	if kctx.AuthInfo != "" {
		if u, ok := cfg.AuthInfos[kctx.AuthInfo]; !ok || u == nil {
			return nil, invalid(ProblemNoCurrentContext)
		}
	}
	if kcluster.InsecureSkipTLSVerify {
		return nil, invalid(ProblemInsecure)
	}
	server, ok := parseServer(kcluster.Server)
	if !ok {
		return nil, invalid(ProblemServerURL)
	}
	if isForbidden(server, opts.ForbiddenHosts) {
		return nil, invalid(ProblemForbiddenHost)
	}

	restConfig, err := clientcmd.NewNonInteractiveClientConfig(*cfg, cfg.CurrentContext, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil || restConfig == nil {
		return nil, invalid(ProblemIncomplete)
	}
	// Belt and braces: the checks above must have made these impossible; if
	// client-go ever grows another way to get them, fail closed.
	if restConfig.ExecProvider != nil || restConfig.AuthProvider != nil ||
		restConfig.BearerTokenFile != "" || restConfig.CertFile != "" ||
		restConfig.KeyFile != "" || restConfig.CAFile != "" || restConfig.Insecure {
		return nil, invalid(ProblemFileReference)
	}
	// Parse the embedded PEM now, so that a broken certificate is reported as
	// an invalid kubeconfig instead of failing every connect attempt forever.
	if _, err := rest.TLSConfigFor(restConfig); err != nil {
		return nil, invalid(ProblemTLSData)
	}
	return restConfig, nil
}

// forbiddenMechanism looks for plugins and file references in every user and
// cluster of cfg.
func forbiddenMechanism(cfg *clientcmdapi.Config) (Problem, bool) {
	for _, u := range cfg.AuthInfos {
		switch {
		case u == nil:
			continue
		case u.Exec != nil:
			return ProblemExecPlugin, true
		case u.AuthProvider != nil:
			return ProblemAuthProvider, true
		case u.TokenFile != "" || u.ClientCertificate != "" || u.ClientKey != "":
			return ProblemFileReference, true
		}
	}
	for _, c := range cfg.Clusters {
		if c != nil && c.CertificateAuthority != "" {
			return ProblemFileReference, true
		}
	}
	return "", false
}

// hostPort is a normalized API server address. port is empty only for a
// ForbiddenHosts entry given as a bare host, which matches any port.
type hostPort struct {
	host string
	port string
}

// parseServer accepts only https URLs with a host and without user info
// (credentials in a URL end up in logs and error messages).
func parseServer(server string) (hostPort, bool) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Opaque != "" {
		return hostPort{}, false
	}
	hp := hostPort{host: normalizeHost(u.Hostname()), port: u.Port()}
	if hp.host == "" || numericAlias(hp.host) {
		return hostPort{}, false
	}
	if hp.port == "" {
		hp.port = "443"
	}
	return hp, true
}

// parseForbidden reads a ForbiddenHosts entry: a URL, a host:port or a host.
func parseForbidden(entry string) (hostPort, bool) {
	entry = strings.TrimSpace(entry)
	if strings.Contains(entry, "://") {
		u, err := url.Parse(entry)
		if err != nil || u.Hostname() == "" {
			return hostPort{}, false
		}
		hp := hostPort{host: normalizeHost(u.Hostname()), port: u.Port()}
		if hp.port == "" {
			switch u.Scheme {
			case "https":
				hp.port = "443"
			case "http":
				hp.port = "80"
			}
		}
		return hp, true
	}
	if host, port, err := net.SplitHostPort(entry); err == nil {
		return hostPort{host: normalizeHost(host), port: port}, host != ""
	}
	host := normalizeHost(strings.TrimSuffix(strings.TrimPrefix(entry, "["), "]"))
	return hostPort{host: host}, host != ""
}

// normalizeHost lowercases a name and writes an IP address canonically, so
// that "::ffff:10.0.0.1" and "10.0.0.1" compare equal.
func normalizeHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if ip := net.ParseIP(h); ip != nil {
		return ip.String()
	}
	return h
}

// numericAlias reports a host that a resolver may read as an IPv4 address
// although it is not written as one (inet_aton forms: "127.1", "2130706433",
// "0x7f.1"): a DNS name never ends in an all-numeric label, and such a host
// could reach a forbidden address under a spelling no entry matches.
func numericAlias(host string) bool {
	if net.ParseIP(host) != nil {
		return false
	}
	labels := strings.Split(host, ".")
	last := labels[len(labels)-1]
	if strings.HasPrefix(last, "0x") {
		return true
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// isLocal reports a host that always means this machine.
func isLocal(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

func sameHost(a, b string) bool {
	return a == b || (isLocal(a) && isLocal(b))
}

func isForbidden(server hostPort, forbidden []string) bool {
	for _, entry := range forbidden {
		f, ok := parseForbidden(entry)
		if !ok {
			continue
		}
		if sameHost(f.host, server.host) && (f.port == "" || f.port == server.port) {
			return true
		}
	}
	return false
}

// safeMessage returns err's message if it is an InvalidKubeconfigError and a
// generic text otherwise, so that callers can put it in events and status
// without reasoning about where err came from.
func safeMessage(err error) string {
	if ike, ok := errors.AsType[*InvalidKubeconfigError](err); ok {
		return ike.Error()
	}
	return "kubeconfig is invalid"
}
