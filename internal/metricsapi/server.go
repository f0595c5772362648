package metricsapi

import (
	"context"
	"fmt"
	"net"

	"github.com/spf13/pflag"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
)

// ServerOptions configure the metrics API server.
type ServerOptions struct {
	// BindAddress and SecurePort: where the API server (through its
	// APIService) reaches us. Port 0 disables the metrics APIs.
	BindAddress string
	SecurePort  int
	// CertFile and KeyFile serve TLS; empty generates a self-signed pair in
	// CertDir (fine behind an APIService with insecureSkipTLSVerify or a
	// caBundle of your own).
	CertFile, KeyFile, CertDir string
	// Kubeconfig is used for delegated authentication and authorization and
	// to list described objects; empty means in-cluster.
	Kubeconfig string
}

// Run serves custom.metrics.k8s.io and external.metrics.k8s.io from p until
// ctx ends. Authentication and authorization are delegated to the cluster's
// API server (TokenReview, SubjectAccessReview, and the front proxy's client
// certificate), as the custom-metrics-apiserver library does.
func Run(ctx context.Context, opts ServerOptions, p *Provider) error {
	adapter := &basecmd.AdapterBase{Name: "opportunist-metrics", FlagSet: pflag.NewFlagSet("metrics-api", pflag.ContinueOnError)}
	adapter.InstallFlags()
	o := adapter.CustomMetricsAdapterServerOptions
	o.SecureServing.BindAddress = net.ParseIP(opts.BindAddress)
	if o.SecureServing.BindAddress == nil {
		return fmt.Errorf("--metrics-api-bind-address %q is not an IP address", opts.BindAddress)
	}
	o.SecureServing.BindPort = opts.SecurePort
	o.SecureServing.ServerCert.CertKey.CertFile = opts.CertFile
	o.SecureServing.ServerCert.CertKey.KeyFile = opts.KeyFile
	o.SecureServing.ServerCert.CertDirectory = opts.CertDir
	o.Authentication.RemoteKubeConfigFile = opts.Kubeconfig
	o.Authorization.RemoteKubeConfigFile = opts.Kubeconfig
	o.Authentication.TolerateInClusterLookupFailure = false
	adapter.RemoteKubeConfigFile = opts.Kubeconfig
	o.EnableMetrics = false // our own /metrics serves what matters
	adapter.WithCustomMetrics(p)
	adapter.WithExternalMetrics(p)
	if err := adapter.CustomMetricsAdapterServerOptions.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{net.ParseIP("127.0.0.1")}); err != nil {
		return fmt.Errorf("metrics API serving certificate: %w", err)
	}
	if err := adapter.Run(ctx); err != nil {
		return fmt.Errorf("metrics API server: %w", err)
	}
	return nil
}
